/* engine.c: the I/O thread's loop, its lifetime, the coalesced wake-up, the kick
 * stack owners use to hand it work, and the waits owners block in.
 * The loop runs on the I/O thread; the rest is called from any thread. */
#include <SDL.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#ifdef __linux__
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#endif

#include "engine.h"
#include "poller.h"
#include "tls.h"

#define MAX_EVENTS 256

typedef struct engine {
  SDL_Thread *thread;
  net_poller *poller;
  int wake_rd, wake_wr;             /* eventfd: both the same fd */
  atomic_int wake_pending;          /* one wake syscall per burst */
  atomic_int stop;
  atomic_int resolved;              /* an address finished; recheck waiters */
  _Atomic(net_io *) kicks;          /* Treiber stack, taken whole by the I/O thread */
  int users;                        /* net_init calls + open connection handles */
  bool running;
} engine;

static engine E = {.wake_rd = -1, .wake_wr = -1};
static bool io_dirty;               /* I/O thread: something was published this turn */
static net_io wake_token;           /* poller user data of the wake fd; never dispatched */

/* Process-wide, created once and never destroyed: resolver helpers may still
 * publish through them after the engine stopped. */
static SDL_mutex *life_mx, *wait_mx, *settings_mx;
static SDL_cond *wait_cv;
static atomic_int once_state;
static atomic_uint_fast64_t activity_gen;
static atomic_int waiters;

atomic_size_t net__live_conns, net__live_addrs;

static bool wake_fd_init(void);

static bool global_init(void) {
  int s = atomic_load_explicit(&once_state, memory_order_acquire);
  while (s != 2) {
    int zero = 0;
    if (s == 0 && atomic_compare_exchange_strong(&once_state, &zero, 1)) {
      life_mx = SDL_CreateMutex();
      wait_mx = SDL_CreateMutex();
      wait_cv = SDL_CreateCond();
      settings_mx = SDL_CreateMutex();
      if (!life_mx || !wait_mx || !wait_cv || !settings_mx || !wake_fd_init()) {
        atomic_store(&once_state, 0);
        return false;
      }
      atomic_store_explicit(&once_state, 2, memory_order_release);  /* pairs with the acquire above */
      return true;
    }
    SDL_Delay(0);
    s = atomic_load_explicit(&once_state, memory_order_acquire);
  }
  return true;
}

uint64_t net__now_ms(void) { return SDL_GetTicks64(); }

/* Background threads yield to the host's frame loop when both want a core:
 * an owner call that wakes one of them should not lose its CPU to it. */
void net__background_priority(void) {
#ifdef __linux__
  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 5);   /* this thread only, on Linux */
#endif
}

void net__settings_lock(void) {
  if (global_init()) SDL_LockMutex(settings_mx);
}

void net__settings_unlock(void) { SDL_UnlockMutex(settings_mx); }

double net_clock(void) {
  return (double)SDL_GetPerformanceCounter() / (double)SDL_GetPerformanceFrequency();
}

/* ---- wake-up of the I/O thread -------------------------------------- */

void net__engine_wake(void) {
  /* Only the first waker of a burst pays for the syscall; the I/O thread
   * clears the flag before it looks at the kick stack. */
  if (atomic_exchange(&E.wake_pending, 1)) return;
  uint64_t one = 1;
  ssize_t r;
  do r = write(E.wake_wr, &one, sizeof one);
  while (r < 0 && errno == EINTR);
}

static void drain_wake(void) {
  char buf[64];
  while (read(E.wake_rd, buf, sizeof buf) > 0) {
  }
}

void net__io_init(net_io *io, const net_io_ops *ops, int refs) {
  io->ops = ops;
  atomic_init(&io->refs, refs);
  atomic_init(&io->kicked, 0);
  io->kick_next = NULL;
}

void net__io_unref(net_io *io) {
  if (atomic_fetch_sub_explicit(&io->refs, 1, memory_order_acq_rel) == 1) io->ops->destroy(io);
}

void net__engine_kick(net_io *io) {
  if (atomic_exchange(&io->kicked, 1)) return;   /* already queued */
  atomic_fetch_add_explicit(&io->refs, 1, memory_order_relaxed);   /* the stack's reference */
  net_io *top = atomic_load_explicit(&E.kicks, memory_order_relaxed);
  do io->kick_next = top;
  /* release: kick_next and the owner's prior writes reach the I/O thread's exchange */
  while (!atomic_compare_exchange_weak_explicit(&E.kicks, &top, io, memory_order_release,
                                                memory_order_relaxed));
  net__engine_wake();
}

static void run_kicks(void) {
  /* acquire: pairs with the release in net__engine_kick */
  net_io *io = atomic_exchange_explicit(&E.kicks, NULL, memory_order_acquire);
  while (io) {
    net_io *next = io->kick_next;
    atomic_store(&io->kicked, 0);   /* from here a new kick queues it again */
    io->ops->kicked(io);
    net__io_unref(io);
    io = next;
  }
}

static const net_module *const modules[] = {&net__tcp_module, &net__server_module,
                                            &net__udp_module};
#define EACH_MODULE(m) \
  for (const net_module *const *m = modules; m < modules + sizeof modules / sizeof *modules; m++)

static uint64_t run_timers(uint64_t now) {
  uint64_t next = 0;
  EACH_MODULE(m) {
    uint64_t t = (*m)->timers(now);
    if (t && (!next || t < next)) next = t;
  }
  return next;
}

static bool all_idle(void) {
  EACH_MODULE(m) if (!(*m)->idle()) return false;
  return true;
}

/* ---- waits ------------------------------------------------------------ */

/* ---- host wake-ups -------------------------------------------------------- */

static atomic_int wake_mode;              /* net_wake_mode */
static atomic_int host_woken;             /* an event is outstanding: the host has not polled */
static _Atomic(uint32_t) wake_event_type;
static void (*_Atomic wake_fn)(void *);
static void *_Atomic wake_ud;

int net_set_wakeup(net_wake_mode mode, void (*fn)(void *ud), void *ud) {
  if (mode == NET_WAKE_CALLBACK && !fn) return -1;
  if (mode == NET_WAKE_SDL && !atomic_load(&wake_event_type)) {
    Uint32 t = SDL_RegisterEvents(1);
    if (t == (Uint32)-1) return -1;
    uint32_t none = 0;
    atomic_compare_exchange_strong(&wake_event_type, &none, t);   /* one type per process */
  }
  atomic_store(&wake_mode, NET_WAKE_OFF);   /* the I/O thread never sees fn and ud half set */
  atomic_store(&wake_ud, ud);
  atomic_store(&wake_fn, fn);
  atomic_store(&host_woken, 0);
  atomic_store(&wake_mode, mode);
  return 0;
}

uint32_t net_wakeup_event_type(void) { return atomic_load(&wake_event_type); }

void net__host_polled(void) {
  if (atomic_load_explicit(&host_woken, memory_order_relaxed))
    atomic_store_explicit(&host_woken, 0, memory_order_relaxed);
}

static void wake_host(void) {
  int mode = atomic_load(&wake_mode);
  if (mode == NET_WAKE_OFF || atomic_exchange(&host_woken, 1)) return;
  if (mode == NET_WAKE_SDL) {
    SDL_Event ev;
    SDL_zero(ev);
    ev.type = atomic_load(&wake_event_type);
    ev.user.type = ev.type;
    ev.user.code = 1;
    if (SDL_PushEvent(&ev) != 1) atomic_store(&host_woken, 0);   /* queue full or filtered */
  } else {
    void (*fn)(void *) = atomic_load(&wake_fn);
    if (fn) fn(atomic_load(&wake_ud));
  }
}

void net__engine_notify(void) {
  atomic_fetch_add(&activity_gen, 1);
  wake_host();
  /* seq_cst: a waiter increments `waiters` before it re-checks, so either it
   * sees the new generation or we see it and take the lock to signal. */
  if (atomic_load(&waiters) == 0) return;
  SDL_LockMutex(wait_mx);
  SDL_CondBroadcast(wait_cv);
  SDL_UnlockMutex(wait_mx);
}

/* Waits until the generation moves past *seen or the deadline passes. */
static bool wait_gen(uint64_t *seen, uint64_t deadline, bool forever) {
  if (!global_init()) return false;
  atomic_fetch_add(&waiters, 1);
  SDL_LockMutex(wait_mx);
  bool moved;
  while (!(moved = atomic_load(&activity_gen) != *seen)) {
    if (forever) {
      SDL_CondWait(wait_cv, wait_mx);
      continue;
    }
    uint64_t now = net__now_ms();
    if (now >= deadline) break;
    SDL_CondWaitTimeout(wait_cv, wait_mx, (Uint32)(deadline - now));
  }
  SDL_UnlockMutex(wait_mx);
  atomic_fetch_sub(&waiters, 1);
  *seen = atomic_load(&activity_gen);
  return moved;
}

void net__engine_activity(void) { io_dirty = true; }

int net__wait_until(bool (*done)(void *), void *arg, int timeout_ms) {
  uint64_t seen = atomic_load(&activity_gen);
  if (done(arg)) return 1;
  if (timeout_ms == 0) return 0;
  uint64_t deadline = net__now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
  for (;;) {
    bool moved = wait_gen(&seen, deadline, timeout_ms < 0);
    if (done(arg)) return 1;
    if (!moved) return 0;
  }
}

int net_wait_activity_since(uint64_t *seen, int timeout_ms) {
  uint64_t now_gen = atomic_load(&activity_gen);
  if (now_gen != *seen) {
    *seen = now_gen;
    return 1;
  }
  if (timeout_ms == 0) return 0;
  uint64_t deadline = net__now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
  return wait_gen(seen, deadline, timeout_ms < 0);
}

int net_wait_activity(int timeout_ms) {
  uint64_t seen = atomic_load(&activity_gen);
  return net_wait_activity_since(&seen, timeout_ms);
}

/* ---- the I/O thread ----------------------------------------------------- */

int net__engine_set_interest(net_sock fd, int *registered, int mask, net_io *ud) {
  if (mask == *registered) return 0;
  int r;
  /* An fd with no interest leaves the poller: hang-ups are reported even
   * without interest and would spin a level-triggered loop. */
  if (mask == 0) r = net__poller_del(E.poller, fd);
  else if (*registered == 0) r = net__poller_add(E.poller, fd, mask, ud);
  else r = net__poller_mod(E.poller, fd, mask, ud);
  if (r == 0) *registered = mask;
  return r;
}

static int poll_timeout(uint64_t next) {
  if (!next) return -1;
  uint64_t now = net__now_ms();
  if (next <= now) return 0;
  uint64_t d = next - now;
  return d > 60000 ? 60000 : (int)d;
}

static int io_main(void *unused) {
  (void)unused;
  net__background_priority();
  static net_poll_event ev[MAX_EVENTS];
  for (;;) {
    run_kicks();
    if (atomic_exchange(&E.resolved, 0)) EACH_MODULE(m) (*m)->resolved();
    uint64_t next = run_timers(net__now_ms());
    if (io_dirty) {
      io_dirty = false;
      net__engine_notify();
    }
    if (atomic_load(&E.stop) && all_idle()) break;
    int n = net__poller_wait(E.poller, ev, MAX_EVENTS, poll_timeout(next));
    if (n < 0) {
      SDL_Delay(1);   /* cannot happen with valid fds; never spin at full speed */
      continue;
    }
    for (int i = 0; i < n; i++) {
      if (ev[i].ud == &wake_token) {
        drain_wake();
        /* seq_cst: a waker that sets the flag after this sees our clear and
         * writes again, and its kick is found by the run_kicks below. */
        atomic_store(&E.wake_pending, 0);
      } else {
        net_io *io = ev[i].ud;
        io->ops->event(io, ev[i].mask);
      }
    }
    if (io_dirty) {
      io_dirty = false;
      net__engine_notify();
    }
  }
  EACH_MODULE(m) (*m)->shutdown();
  net__tls_shutdown();
  return 0;
}

/* The wake-up fd lives as long as the process (made once, in global_init):
 * a resolver helper may write to it whenever it likes, with no lock. */
static bool wake_fd_init(void) {
#ifdef __linux__
  E.wake_rd = E.wake_wr = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return E.wake_rd >= 0;
#else
  int p[2];
  if (pipe(p) < 0) return false;
  for (int i = 0; i < 2; i++) {
    fcntl(p[i], F_SETFL, O_NONBLOCK);
    fcntl(p[i], F_SETFD, FD_CLOEXEC);
  }
  E.wake_rd = p[0];
  E.wake_wr = p[1];
  return true;
#endif
}

static bool start_thread(void) {
  E.poller = net__poller_create();
  int reg = 0;
  if (!E.poller || net__engine_set_interest(E.wake_rd, &reg, NET_POLL_IN, &wake_token) < 0) {
    net__poller_free(E.poller);
    E.poller = NULL;
    return false;
  }
  atomic_store(&E.stop, 0);
  atomic_store(&E.wake_pending, 0);
  E.thread = SDL_CreateThread(io_main, "sluice-io", NULL);
  if (!E.thread) {
    net__poller_free(E.poller);
    E.poller = NULL;
    return false;
  }
  E.running = true;
  return true;
}

static void stop_thread(void) {
  atomic_store(&E.stop, 1);
  net__engine_wake();
  SDL_WaitThread(E.thread, NULL);   /* bounded by the linger of closing connections */
  E.thread = NULL;
  net__poller_free(E.poller);
  E.poller = NULL;
  E.running = false;
}

/* need_thread: connections need the I/O thread; net_init only keeps it alive. */
static bool acquire(bool need_thread) {
  if (!global_init()) return false;
  SDL_LockMutex(life_mx);
  bool ok = true;
  if (need_thread && !E.running) ok = start_thread();
  if (ok) E.users++;
  SDL_UnlockMutex(life_mx);
  return ok;
}

bool net__engine_acquire(void) { return acquire(true); }

void net__engine_release(void) {
  SDL_LockMutex(life_mx);
  if (--E.users == 0 && E.running) stop_thread();
  SDL_UnlockMutex(life_mx);
}

/* Resolver helpers: no lock, so an owner never waits on a helper (which
 * runs at a lower priority) holding one. */
void net__engine_addr_resolved(void) {
  atomic_store(&E.resolved, 1);
  net__engine_wake();   /* harmless while no I/O thread runs: the next one drains it */
  net__engine_notify();
}

int net_init(void) { return acquire(false) ? 0 : -1; }

void net_quit(void) { net__engine_release(); }

net_stats net_get_stats(void) {
  net_chunk_stats cs = net_chunk_get_stats();
  size_t heap = 0;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 mi = mallinfo2();
  heap = mi.uordblks + mi.hblkhd;
#endif
  return (net_stats){
      .heap_bytes = heap,
      .connections = atomic_load(&net__live_conns),
      .udp = atomic_load(&net__live_udp),
      .addresses = atomic_load(&net__live_addrs),
      .buffer_bytes = cs.live * NET_CHUNK_SIZE,
      .chunks = cs.live,
  };
}

/* ---- errors ------------------------------------------------------------- */

static const char *const err_codes[] = {
#define NET_ERR_CODE(name, code, text) code,
    NET_ERRORS(NET_ERR_CODE)
#undef NET_ERR_CODE
};
static const char *const err_texts[] = {
#define NET_ERR_TEXT(name, code, text) text,
    NET_ERRORS(NET_ERR_TEXT)
#undef NET_ERR_TEXT
};

const char *net_errcode(net_err e) { return (unsigned)e < NET_E_COUNT ? err_codes[e] : "io"; }
const char *net_strerror(net_err e) {
  return (unsigned)e < NET_E_COUNT ? err_texts[e] : "unknown error";
}

void net__seterr(net_error *e, net_err code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  e->code = code;
}

const char *net__errstr(int e, char *buf, size_t len) {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  return strerror_r(e, buf, len);
#else
  if (strerror_r(e, buf, len) != 0) snprintf(buf, len, "error %d", e);
  return buf;
#endif
}

net_err net__errno_code(int e) {
  switch (e) {
    case ECONNREFUSED: return NET_E_REFUSED;
    case ECONNRESET: case EPIPE: case ECONNABORTED: return NET_E_RESET;
    case ETIMEDOUT: return NET_E_TIMEOUT;
    case ENETUNREACH: case EHOSTUNREACH: case ENETDOWN: case EHOSTDOWN:
    case EADDRNOTAVAIL: case EAFNOSUPPORT: return NET_E_UNREACHABLE;
    case EMFILE: case ENFILE: case ENOBUFS: case ENOMEM: return NET_E_LIMIT;
    case EINVAL: case EACCES: case EPERM: return NET_E_INVALID;
    default: return NET_E_IO;
  }
}
