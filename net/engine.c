/* engine.c: the I/O thread: its loop, the coalesced wake-up, the kick stack
 * owners hand it work through, the objects awaiting an address, one timer
 * per object, the waits owners block in, and the naps of owners that spin
 * on empty objects. The loop runs on the I/O thread; kicks, waits, naps and
 * notifications are called from any thread.
 *
 * The I/O thread starts with the first object and then stays for the life of
 * the process, parked in the poller when there is nothing to do: closing the
 * last handle never waits for it (lingering closes finish in the background),
 * and nothing it uses is ever freed under it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "engine.h"
#include "helper.h"
#include "os.h"
#include "poller.h"
#include "wake.h"

#define MAX_EVENTS 256
#define EXIT_WAIT_MAX_MS 60000   /* a safety cap: each close is bounded by its linger */
#define EXIT_OPEN_WAIT_MS 5000   /* open connections' bytes at exit: a close's default linger */
#define RELEASE_GAP_MS 1000      /* the heap is walked at most this often */
#define QUIET_MS 200             /* an engine this long without events is quiet */
#define HEAP_SAMPLE_MS 100       /* get_stats' heap size may be this old before a new sample */

typedef struct deferred {
  struct deferred *next;
} deferred;

static struct {
  net_poller *poller;
  net_sock wake_rd, wake_wr;        /* eventfd, self-pipe or a loopback socket (sock.h) */
  atomic_int wake_pending;          /* one wake syscall per burst */
  atomic_int resolved;              /* an address finished: run the awaiting */
  _Atomic(net_io *) kicks;          /* Treiber stack, taken whole by the I/O thread */
  atomic_int started;
  /* I/O thread only */
  net_io *awaiting;                 /* waiting for an address to resolve */
  net_io *retired;
  deferred *frees;
  net_io **heap;                    /* timers: a binary min-heap on timer_at */
  size_t nheap, heap_cap;
  net_io *late;                     /* timers the heap had no room for */
  bool dirty;                       /* something was published this turn */
  bool stirred;                     /* news for waiters only (closes finished), not for the host */
  uint64_t release_at;              /* the heap may be walked again from then (ms) */
  uint64_t quiet_from;              /* ms of the first turn after the last busy one */
  bool busy;                        /* the last wait returned events or had work waiting */
} E = {.wake_rd = NET_BAD_SOCK, .wake_wr = NET_BAD_SOCK};

static net_io wake_token;           /* poller user data of the wake fd; never dispatched */
static net_mutex *start_mx, *wait_mx, *users_mx;
static net_cond *wait_cv;
static atomic_int once_state;
static atomic_uint_fast64_t activity_gen;
static atomic_int waiters;
static atomic_int closing;          /* see net__engine_closing */
/* News nobody owns (a close finished) wakes only the exit's waits: an owner
 * woken for it would find nothing of its own. seq_cst with `closing`: the
 * exit sees a count the I/O thread lowered before it looked at this. */
static atomic_bool exit_waiting;

atomic_size_t net__live_conns, net__live_udp, net__live_servers, net__live_http, net__live_ws;

/* ---- process-wide setup ---------------------------------------------------- */

/* The sockets layer (Winsock) is started once, first. The wake-up fd lives
 * as long as the process: a resolver helper may write to it whenever it
 * likes, with no lock. A child forked from here on shares it with us and
 * has no I/O thread: it is told apart, and takes no work. */
static bool global_init(void *unused) {
  (void)unused;
  if (!net_sock_startup() || !net__os_fork_watch()) return false;
  start_mx = net__mutex_new();
  wait_mx = net__mutex_new();
  users_mx = net__mutex_new();
  wait_cv = net__cond_new();
  return start_mx && wait_mx && users_mx && wait_cv && net_sock_wake_open(&E.wake_rd, &E.wake_wr);
}

static bool ready(void) { return net__once(&once_state, global_init, NULL); }

/* The library stays mapped from here on: background threads and finalizers
 * of objects may run its code after a host unloads it (editors dlclose a
 * native plugin when the table holding its handle is collected). */
static int users;   /* net_init calls not yet paired with net_quit; under users_mx */

int net_init(void) {
  if (!ready()) return -1;
  net__os_pin_library();
  net__engine_heap_bytes();   /* the heap's first sample, for get_stats, off this thread */
  net__mutex_lock(users_mx);
  users++;
  net__mutex_unlock(users_mx);
  return 0;
}

static void flush_at_exit(void);

/* The last user leaving turns host wake-ups off: a host tears down its SDL
 * right after closing its Lua state, and nothing may push into it then.
 * The count and the stop go under one lock, so a user arriving meanwhile
 * sets its wake-ups after the stop, never before it. Where a library's exit
 * handlers come too late (Windows), the closes still sending get their
 * linger here instead. */
void net_quit(void) {
  if (!ready()) return;
  net__mutex_lock(users_mx);
  bool last = users == 1;
  if (users > 0) users--;
  if (last) net__wake_stop();
  net__mutex_unlock(users_mx);
  if (last && NET_OS_EXIT_HANDLERS_LATE) flush_at_exit();
}

double net_clock(void) { return (double)net__now_ns() / 1e9; }

/* ---- waking the I/O thread ------------------------------------------------- */

void net__engine_wake(void) {
  /* Only the first waker of a burst pays for the syscall; the I/O thread
   * clears the flag before it looks at the kick stack. */
  if (atomic_exchange(&E.wake_pending, 1)) return;
  if (net__os_forked()) return;   /* the fd would wake our parent's thread */
  /* a signal that was not sent must not silence the wakers after us */
  if (!net_sock_wake_signal(E.wake_wr)) atomic_store(&E.wake_pending, 0);
}

/* seq_cst: a waker that sets the flag after this sees our clear and writes
 * again, and its kick is found by the next run_kicks; one that saw the flag
 * still set pushed its kick before this, so the same holds. Cleared when the
 * signal is read: kicks that come while the thread is awake with a signal
 * still unread add no syscall. On Windows also every turn, so a signal lost
 * on the way (a datagram) costs the wait until the next turn, which the
 * Windows poller bounds, and never every later wake-up. */
static void wake_rearm(void) { atomic_store(&E.wake_pending, 0); }
#ifdef _WIN32
#define REARM_EACH_TURN 1
#else
#define REARM_EACH_TURN 0
#endif

/* ---- objects ----------------------------------------------------------------- */

void net__io_init(net_io *io, const net_io_ops *ops, int refs) {
  memset(io, 0, sizeof *io);
  io->ops = ops;
  atomic_init(&io->refs, refs);
  atomic_init(&io->kicked, 0);
  atomic_init(&io->unread, 0);
}

net_io *net__io_ref(net_io *io) {
  atomic_fetch_add_explicit(&io->refs, 1, memory_order_relaxed);
  return io;
}

void net__io_unref(net_io *io) {
  if (atomic_fetch_sub_explicit(&io->refs, 1, memory_order_acq_rel) != 1) return;
  net__io_seen(io);   /* news nobody can read any more must not keep the host waking */
  io->ops->destroy(io);
}

void net__io_await_resolve(net_io *io) {
  if (io->retired || io->awaiting) return;
  io->prev = NULL;
  io->next = E.awaiting;
  if (E.awaiting) E.awaiting->prev = io;
  E.awaiting = io;
  io->awaiting = true;
}

static void unawait(net_io *io) {
  if (!io->awaiting) return;
  if (io->prev) io->prev->next = io->next;
  else E.awaiting = io->next;
  if (io->next) io->next->prev = io->prev;
  io->prev = io->next = NULL;
  io->awaiting = false;
}

void net__engine_kick(net_io *io) {
  if (atomic_exchange(&io->kicked, 1)) return;   /* already queued */
  atomic_fetch_add_explicit(&io->refs, 1, memory_order_relaxed);   /* the stack's reference */
  net_io *top = atomic_load_explicit(&E.kicks, memory_order_relaxed);
  do io->kick_next = top;
  /* seq_cst (release at least: kick_next and the owner's prior writes reach
   * the I/O thread's exchange): with wake_rearm's store and the exchanges of
   * the flag and the stack, either the waker sees the flag cleared and
   * signals, or the exchange after that store finds this kick */
  while (!atomic_compare_exchange_weak_explicit(&E.kicks, &top, io, memory_order_seq_cst,
                                                memory_order_relaxed));
  /* the I/O thread kicking itself (a protocol driving its connection) runs
   * the kick before it polls again: no wake-up needed */
  if (!net__thread_is_io()) net__engine_wake();
}

static void run_kicks(void) {
  /* seq_cst: pairs with net__engine_kick's (see there) */
  net_io *io = atomic_exchange(&E.kicks, NULL);
  net_io *fifo = NULL;   /* the stack holds the latest first: run them in the order kicked */
  while (io) {
    net_io *next = io->kick_next;
    io->kick_next = fifo;
    fifo = io;
    io = next;
  }
  io = fifo;
  while (io) {
    net_io *next = io->kick_next;
    atomic_store(&io->kicked, 0);   /* from here a new kick queues it again */
    if (!io->retired) io->ops->kicked(io);
    net__io_unref(io);
    io = next;
  }
}

/* Kicks every awaiting object; one whose address is still resolving awaits
 * again (on a fresh list, so this ends). */
static void run_awaiting(void) {
  net_io *io = E.awaiting;
  E.awaiting = NULL;
  while (io) {
    net_io *next = io->next;
    io->prev = io->next = NULL;
    io->awaiting = false;
    io->ops->kicked(io);
    io = next;
  }
}

void net__io_retire(net_io *io) {
  if (io->retired) return;
  net__io_timer(io, 0);
  unawait(io);
  io->retired = true;
  io->retired_next = E.retired;
  E.retired = io;
}

void net__engine_defer_free(void *p) {
  deferred *d = p;
  d->next = E.frees;
  E.frees = d;
}

/* Between poller batches: no event of the last batch can still point here. */
static void reap(void) {
  while (E.retired) {
    net_io *io = E.retired;
    E.retired = io->retired_next;
    net__io_unref(io);
  }
  while (E.frees) {
    deferred *d = E.frees;
    E.frees = d->next;
    net__free(d);
  }
}

/* ---- timers: a binary min-heap of objects ---------------------------------- */

static void heap_set(size_t i, net_io *io) {
  E.heap[i] = io;
  io->timer_slot = i + 1;
}

static void heap_up(size_t i) {
  net_io *io = E.heap[i];
  while (i > 0 && E.heap[(i - 1) / 2]->timer_at > io->timer_at) {
    heap_set(i, E.heap[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  heap_set(i, io);
}

static void heap_down(size_t i) {
  net_io *io = E.heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= E.nheap) break;
    if (c + 1 < E.nheap && E.heap[c + 1]->timer_at < E.heap[c]->timer_at) c++;
    if (E.heap[c]->timer_at >= io->timer_at) break;
    heap_set(i, E.heap[c]);
    i = c;
  }
  heap_set(i, io);
}

static void heap_remove(net_io *io) {
  size_t i = io->timer_slot - 1;
  io->timer_slot = 0;
  net_io *last = E.heap[--E.nheap];
  if (i == E.nheap) return;
  heap_set(i, last);
  heap_up(i);
  heap_down(last->timer_slot - 1);
}

#define TIMER_LATE SIZE_MAX   /* timer_slot of a timer on the late list */

/* Room for one more timer: the heap grows when full. */
static bool heap_room(void) {
  if (E.nheap < E.heap_cap) return true;
  size_t cap = E.heap_cap ? E.heap_cap * 2 : 64;
  net_io **h = net__realloc(E.heap, cap * sizeof *h);
  if (!h) return false;
  E.heap = h;
  E.heap_cap = cap;
  return true;
}

static void heap_push(net_io *io) {
  heap_set(E.nheap++, io);
  heap_up(E.nheap - 1);
}

/* Timers the heap had no room for (memory ran out) wait on the late list
 * until it grows, and meanwhile fire by the same clock as the others: never
 * from inside the call that armed them, nor before their time. */
static void late_remove(net_io *io) {
  for (net_io **p = &E.late; *p; p = &(*p)->timer_next) {
    if (*p == io) {
      *p = io->timer_next;
      break;
    }
  }
  io->timer_slot = 0;
}

void net__io_timer(net_io *io, uint64_t at) {
  if (io->timer_slot == TIMER_LATE) late_remove(io);
  else if (io->timer_slot) heap_remove(io);
  io->timer_at = at;
  if (!at) return;
  if (heap_room()) {
    heap_push(io);
    return;
  }
  io->timer_slot = TIMER_LATE;
  io->timer_next = E.late;
  E.late = io;
}

/* Moves late timers into the heap while it has room, then fires the due
 * ones still left out. A handler may arm or cancel any timer, so the list
 * is searched again after each. */
static void run_late(uint64_t now) {
  while (E.late && heap_room()) {
    net_io *io = E.late;
    E.late = io->timer_next;
    heap_push(io);
  }
  for (;;) {
    net_io *io = E.late;
    while (io && io->timer_at > now) io = io->timer_next;
    if (!io) return;
    late_remove(io);
    io->timer_at = 0;
    io->ops->timer(io, now);
  }
}

/* Runs what is due; returns the next deadline, 0: none. */
static uint64_t run_timers(uint64_t now) {
  if (E.late) run_late(now);
  while (E.nheap && E.heap[0]->timer_at <= now) {
    net_io *io = E.heap[0];
    heap_remove(io);
    io->timer_at = 0;
    io->ops->timer(io, now);
  }
  uint64_t next = E.nheap ? E.heap[0]->timer_at : 0;
  for (net_io *io = E.late; io; io = io->timer_next)
    if (!next || io->timer_at < next) next = io->timer_at;
  uint64_t w = net__wake_tick(now);
  return !next || (w && w < next) ? w : next;
}

/* ---- waits ----------------------------------------------------------------- */

void net__io_activity(net_io *io) {
  /* its owner let go: news for the exit's waits, not the host */
  if (atomic_load_explicit(&io->unread, memory_order_relaxed) < 0) E.stirred = true;
  else E.dirty = true;
}

/* io->unread: 0 nothing new, 1 news its owner has not read, -1 its owner
 * let go (news is nobody's). */
void net__io_publish(net_io *io) {
  int none = 0, unread = atomic_load_explicit(&io->unread, memory_order_relaxed);
  net__io_activity(io);
  if (!unread && atomic_compare_exchange_strong(&io->unread, &none, 1)) net__wake_unread(1);
}

void net__io_seen(net_io *io) {
  int news = 1;
  if (atomic_load_explicit(&io->unread, memory_order_relaxed) == 1 &&
      atomic_compare_exchange_strong(&io->unread, &news, 0))
    net__wake_unread(-1);
}

void net__io_disown(net_io *io) {
  if (atomic_exchange(&io->unread, -1) == 1) net__wake_unread(-1);
}

static void notify_waiters(void) {
  atomic_fetch_add(&activity_gen, 1);
  if (net__os_forked()) return;   /* the waiters counted are our parent's; see wait_gen */
  /* seq_cst: a waiter increments `waiters` before it re-checks, so either it
   * sees the new generation or we see it and take the lock to signal. */
  if (atomic_load(&waiters) == 0) return;
  /* The empty lock orders us after a waiter's check-then-sleep; signalled
   * under the lock, each woken waiter would block on it at once. */
  net__mutex_lock(wait_mx);
  net__mutex_unlock(wait_mx);
  net__cond_broadcast(wait_cv);
}

void net__engine_notify(void) {
  net__wake_host();
  notify_waiters();
}

void net__engine_background_done(void) {
  atomic_store(&E.resolved, 1);
  if (atomic_load(&E.started)) net__engine_wake();
  net__engine_notify();
}

/* A forked child has no I/O thread to bring news, and the wait lock may
 * have been held by a thread of its parent's: it sleeps out a bounded wait
 * without it, and a wait for ever, which would never end, ends at once. */
static bool wait_forked(uint64_t deadline, bool forever) {
  uint64_t now = net__now_ns();
  if (!forever && now < deadline) net__sleep_ms((unsigned)((deadline - now + 999999) / 1000000));
  return false;
}

#define WATCH_NS 100000            /* a wait watches this long first, if news came this soon last time */
#define WATCH_ROUND 16             /* watches counted together: when more than */
#define WATCH_SWITCHED 4           /* this many of them were switched out... */
#define WATCH_HOLD_NS 100000000    /* ...it does not watch for this long */

static _Thread_local bool news_came_soon;
static _Thread_local unsigned watched, switched;   /* this round */
static _Thread_local uint64_t watch_held_until;

/* A thread that watches gives way at each look, so when the cores are short
 * (a bulk stream: its sender, the I/O thread and the reader all want one) it
 * is switched out in many of its watches, and should sleep instead. A
 * request answered now and then lets it watch in peace. */
static void watch_count(bool was_switched, uint64_t now) {
  switched += was_switched;
  if (++watched < WATCH_ROUND) return;
  if (switched > WATCH_SWITCHED) watch_held_until = now + WATCH_HOLD_NS;
  watched = switched = 0;
}

/* An answer over loopback or a fast link comes in tens of microseconds,
 * about what waking a sleeping thread costs. A thread whose last wait had
 * news that soon watches the generation for a moment before it sleeps,
 * unless the cores are short; a wait that found none sleeps at once next
 * time. True: news. */
static bool watch(uint64_t seen, uint64_t start, uint64_t deadline) {
  if (!news_came_soon || start < watch_held_until || net__os_cpus() < 2) return false;
  uint64_t before = net__thread_preempted(), until = deadline < start + WATCH_NS ? deadline : start + WATCH_NS;
  if (before == UINT64_MAX) return false;   /* no way to tell */
  bool news;
  do {
    news = atomic_load_explicit(&activity_gen, memory_order_acquire) != seen;
    if (!news) net__thread_yield();
  } while (!news && net__now_ns() < until);
  watch_count(net__thread_preempted() != before, net__now_ns());
  return news;
}

/* Judged by the generation stored as seen: news that came after the
 * deadline ended a wait is reported now, or the next wait would sleep
 * through it. */
static bool news_since(uint64_t *seen) {
  uint64_t gen = atomic_load(&activity_gen);
  bool moved = gen != *seen;
  *seen = gen;
  return moved;
}

/* Waits until the generation moves past *seen or the deadline (ns) passes;
 * may_watch: a wait of the owner's, not a spinner's nap. */
static bool wait_gen(uint64_t *seen, uint64_t deadline, bool forever, bool may_watch) {
  if (!ready()) return false;
  if (net__os_forked()) return wait_forked(deadline, forever);
  uint64_t start = net__now_ns();
  if (may_watch && watch(*seen, start, forever ? UINT64_MAX : deadline)) {
    news_came_soon = true;
    return news_since(seen);
  }
  atomic_fetch_add(&waiters, 1);
  net__mutex_lock(wait_mx);
  while (atomic_load(&activity_gen) == *seen) {
    if (forever) {
      net__cond_wait(wait_cv, wait_mx);
      continue;
    }
    uint64_t now = net__now_ns();
    if (now >= deadline) break;
    net__cond_wait_us(wait_cv, wait_mx, (deadline - now + 999) / 1000);
  }
  net__mutex_unlock(wait_mx);
  atomic_fetch_sub(&waiters, 1);
  bool moved = news_since(seen);
  if (may_watch) news_came_soon = moved && net__now_ns() - start < WATCH_NS;
  return moved;
}

/* The deadline (ns) of a wait of timeout_ms; a negative one waits forever
 * and has no deadline of its own. */
static uint64_t deadline_of(int timeout_ms) {
  return net__now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
}

int net__wait_until(bool (*done)(void *), void *arg, int timeout_ms) {
  uint64_t seen = atomic_load(&activity_gen);
  if (done(arg)) return 1;
  if (timeout_ms == 0) return 0;
  uint64_t deadline = deadline_of(timeout_ms);
  for (;;) {
    bool moved = wait_gen(&seen, deadline, timeout_ms < 0, true);
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
  return wait_gen(seen, deadline_of(timeout_ms), timeout_ms < 0, true);
}

int net_wait_activity(int timeout_ms) {
  uint64_t seen = atomic_load(&activity_gen);
  return net_wait_activity_since(&seen, timeout_ms);
}

/* ---- owners that spin ------------------------------------------------------ */

#define SPIN_POLLS 256          /* empty polls in a row between looks at the clock */
#define SPIN_DENSE_NS 1000000   /* that many within this: nothing else happens between them */
#define SPIN_YIELD_NS 1000000   /* dense for this long: a spinning loop, not a frame's polls */

#define NAP_LAPS 4              /* dense laps over the same empty objects before a nap */
#define NAP_LAP_NS 100000       /* a lap this short: the loop does nothing else */
#define NAP_LAP_ASKS 1024       /* a head not asked again within this many asks is gone */
#define NAP_NS 500000           /* the longest nap: news ends it sooner */

#define CROWD_LOOK_NS 1000000     /* a spinner looks at most this often... */
#define CROWD_RECENT_NS 10000000  /* ...counting preemptions since a look this recent... */
#define CROWD_HOLD_NS 50000000    /* ...and naps this long after one */

/* Is the spinning thread taken off its core while it spins? Then the cores
 * are short, and the I/O thread is short of them too: a spinner naps. With
 * a core to spare it spins on, as its author chose, and sees news soonest. */
static bool crowded(uint64_t now) {
  static _Thread_local uint64_t looked, count, until;
  if (now - looked >= CROWD_LOOK_NS) {
    uint64_t c = net__thread_preempted();
    if (c == UINT64_MAX || (c != count && now - looked < CROWD_RECENT_NS)) until = now + CROWD_HOLD_NS;
    count = c;
    looked = now;
  }
  return now < until;
}

/* A loop that comes back to the objects it asked within a fraction of a
 * millisecond, and finds nothing again, waits for them: when the cores are
 * short it holds one the I/O thread needs to fill them. It naps until the
 * engine's next news. A frame loop comes back a frame later. */
static _Thread_local const void *nap_head;   /* the first object of the empty streak; NULL: none */
static _Thread_local unsigned nap_laps, nap_asks;
static _Thread_local uint64_t nap_lap_at, nap_gen;

static void nap_if_spinning(const void *obj) {
  if (!nap_head || ++nap_asks > NAP_LAP_ASKS) {
    nap_head = obj;
    nap_laps = nap_asks = 0;
    nap_lap_at = net__now_ns();
    nap_gen = atomic_load(&activity_gen);
    return;
  }
  if (obj != nap_head) return;
  nap_asks = 0;
  /* news published since the lap began ends the nap at once: the lap's
   * asks came after that generation was read */
  uint64_t seen = nap_gen, now = net__now_ns();
  nap_gen = atomic_load(&activity_gen);
  bool dense = now - nap_lap_at < NAP_LAP_NS;
  nap_lap_at = now;
  if (!dense) nap_laps = 0;
  if (!dense || ++nap_laps < NAP_LAPS || !crowded(now)) return;
  wait_gen(&seen, now + NAP_NS, false, false);
  nap_lap_at = net__now_ns();
}

/* A frame loop polls many objects in a burst, then sleeps; a spinning loop
 * never stops. Only the second gets its core taken away. */
void net__host_read(const void *obj, bool empty) {
  static _Thread_local unsigned polls;
  static _Thread_local uint64_t mark, dense_since;
  if (!empty) {
    polls = 0;
    dense_since = 0;
    nap_head = NULL;
    return;
  }
  if (net__thread_is_io()) return;
  nap_if_spinning(obj);
  if (++polls % SPIN_POLLS) return;
  uint64_t now = net__now_ns(), prev = mark;
  mark = now;
  if (polls == SPIN_POLLS || now - prev >= SPIN_DENSE_NS) {
    dense_since = 0;
    return;
  }
  if (!dense_since) dense_since = prev;
  else if (now - dense_since >= SPIN_YIELD_NS) net__thread_yield();   /* let the I/O thread run */
}

void net__engine_closing(int delta) {
  /* for exit waits and net.wait: the host's frame loop has nothing to read from it */
  if (atomic_fetch_add(&closing, delta) + delta == 0 && delta < 0) E.stirred = true;
}

static bool nothing_closing(void *unused) {
  (void)unused;
  return atomic_load(&closing) <= 0;
}

/* At exit, closes still sending get their linger: bytes a program wrote
 * before it ended reach the kernel, which delivers them after we are gone.
 * So do connections and UDP sockets still open (an os.exit without closing
 * them), listed in the exit lists: for as long as a close lingers. */
#define EXIT_LISTS 2   /* connections, UDP sockets */
static net_exit_list *_Atomic exit_lists[EXIT_LISTS];

static bool exit_list_init(void *arg) {
  net_exit_list *l = arg;
  if (!(l->mx = net__mutex_new())) return false;
  for (int i = 0; l->pending && i < EXIT_LISTS; i++) {
    net_exit_list *none = NULL;
    if (atomic_compare_exchange_strong(&exit_lists[i], &none, l)) return true;
  }
  return true;   /* more lists than slots: this one is not waited for */
}

bool net__exit_list_lock(net_exit_list *l) {
  if (!net__once(&l->once, exit_list_init, l)) return false;
  net__mutex_lock(l->mx);
  return true;
}

void net__exit_list_unlock(net_exit_list *l) { net__mutex_unlock(l->mx); }

void net__exit_list_add(net_exit_list *l, net_exit_link *m) {
  if (!net__exit_list_lock(l)) return;
  m->prev = NULL;
  m->next = l->head;
  if (l->head) l->head->prev = m;
  l->head = m;
  m->listed = true;
  net__mutex_unlock(l->mx);
}

void net__exit_list_remove(net_exit_list *l, net_exit_link *m) {
  if (!m->listed || net__os_forked()) return;   /* a child's copy of the list is nobody's */
  net__mutex_lock(l->mx);
  if (m->prev) m->prev->next = m->next;
  else l->head = m->next;
  if (m->next) m->next->prev = m->prev;
  m->listed = false;
  net__mutex_unlock(l->mx);
}

/* No member of any list still has something to send. */
static bool all_sent(void *unused) {
  (void)unused;
  bool sent = true;
  for (int i = 0; i < EXIT_LISTS && sent; i++) {
    net_exit_list *l = atomic_load(&exit_lists[i]);
    if (!l) continue;
    net__mutex_lock(l->mx);
    for (net_exit_link *m = l->head; m && sent; m = m->next) sent = !l->pending(m);
    net__mutex_unlock(l->mx);
  }
  return sent;
}

static void flush_at_exit(void) {
  /* the I/O thread is gone (or, in a forked child, was never there): nothing would ever finish */
  if (net__os_threads_gone() || net__os_forked()) return;
  /* the host's exit handlers (SDL_Quit) run after ours: nothing may push into them */
  net__wake_stop();
  atomic_store(&exit_waiting, true);
  net__wait_until(nothing_closing, NULL, EXIT_WAIT_MAX_MS);
  net__wait_until(all_sent, NULL, EXIT_OPEN_WAIT_MS);
}

/* ---- the I/O thread -------------------------------------------------------- */

int net__engine_set_interest(net_sock fd, int *registered, int mask, net_io *io) {
  if (mask == *registered) return 0;
  int r;
  /* An fd with no interest leaves the poller: hang-ups are reported even
   * without interest and would spin a level-triggered loop. */
  if (mask == 0) r = net__poller_del(E.poller, fd);
  else if (*registered == 0) r = net__poller_add(E.poller, fd, mask, io);
  else r = net__poller_mod(E.poller, fd, mask, io);
  if (r == 0) *registered = mask;
  return r;
}

/* Tests: owners' requests wait until then (ms; 0: they run). */
static _Atomic uint64_t hold_until;

void net_debug_hold_requests(int ms) { atomic_store(&hold_until, ms > 0 ? net__now_ms() + (uint64_t)ms : 0); }

/* The ms for which requests are still held, 0 when they run now. */
static int requests_held(void) {
  uint64_t until = atomic_load_explicit(&hold_until, memory_order_relaxed);
  if (!until) return 0;
  uint64_t now = net__now_ms();
  if (now < until) return (int)(until - now);
  atomic_compare_exchange_strong(&hold_until, &until, 0);   /* unless a new hold came */
  return 0;
}

/* held: kicks wait that long, so they shorten no wait. */
static int poll_timeout(uint64_t next, int held) {
  if (!held && atomic_load_explicit(&E.kicks, memory_order_relaxed)) return 0;   /* kicks of our own */
  uint64_t d = UINT64_MAX;   /* no timer: the clock is not read */
  if (next) {
    uint64_t now = net__now_ms();
    d = next <= now ? 0 : next - now;
  }
  if (held && d > (uint64_t)held) d = (uint64_t)held;
  return d == UINT64_MAX ? -1 : d > 60000 ? 60000 : (int)d;
}

/* A burst of frees left pages in the heap or among the chunks' (alloc.c,
 * pages.c): the I/O thread gives them back when it next idles. Freeing
 * owners wake it, once per burst. */
static void burst_freed(void) {
  if (!net__thread_is_io()) net__engine_wake();
}

/* Releases run on a helper thread of their own, so no socket waits for
 * them (a walk of the heap takes milliseconds after a big burst). */
static net_lane trim_lane = {.name = "sluice-trim", .max_threads = 1, .max_queued = 2};
static atomic_int trimming, sampling;
static atomic_bool trim_heap;   /* the heap's pages too, not only the chunks' */

static void trim_job(net_job *job) {
  (void)job;
  net__chunk_release();
  net__mem_release(atomic_load(&trim_heap));
  net__mem_sample_heap();
  atomic_store(&trimming, 0);
}

static void sample_job(net_job *job) {
  (void)job;
  net__mem_sample_heap();
  atomic_store(&sampling, 0);
}

/* The heap's size for get_stats: the last sample, and a new one asked of
 * the trim thread when it is older than HEAP_SAMPLE_MS. */
size_t net__engine_heap_bytes(void) {
  static net_job job = {.run = sample_job};
  uint64_t age;
  size_t n = net__mem_process_heap(&age);
  if (age >= HEAP_SAMPLE_MS && !atomic_exchange(&sampling, 1) && !net__lane_submit(&trim_lane, &job))
    atomic_store(&sampling, 0);
  return n;
}

/* How long a release that waits for the engine to be quiet must still
 * wait (0: it is). */
static int quiet_left(uint64_t now) {
  if (E.busy) {
    E.quiet_from = now;
    E.busy = false;
  }
  return now >= E.quiet_from + QUIET_MS ? 0 : (int)(E.quiet_from + QUIET_MS - now);
}

static int sooner(int timeout, int d) { return timeout < 0 || d < timeout ? d : timeout; }

/* timeout: the poller's; 0 means work is waiting, so no trim starts then.
 * Gives the pages back at most once per RELEASE_GAP_MS; a burst inside the
 * gap, or small blocks freed while the engine is busy, shorten the timeout
 * to come back when it may. */
static int release_memory(int timeout) {
  static net_job job = {.run = trim_job};
  if (timeout == 0) {
    E.busy = true;
    return timeout;
  }
  net_mem_due due = net__mem_release_due();
  size_t chunks = net__chunk_dirty();   /* their pages go back at no one's cost: even a few, once quiet */
  if (chunks >= NET_MEM_BURST) due = NET_MEM_DUE_NOW;
  else if (chunks && due == NET_MEM_DUE_NONE) due = NET_MEM_DUE_QUIET;
  if (due == NET_MEM_DUE_NONE) return timeout;
  uint64_t now = net__now_ms();
  int quiet = quiet_left(now);
  if (quiet > 0 && due != NET_MEM_DUE_NOW) return sooner(timeout, quiet);
  if (now < E.release_at) return sooner(timeout, (int)(E.release_at - now));
  E.release_at = now + RELEASE_GAP_MS;
  if (atomic_exchange(&trimming, 1)) return timeout;
  atomic_store(&trim_heap, net__mem_release_heap(quiet == 0));
  if (!net__lane_submit(&trim_lane, &job)) atomic_store(&trimming, 0);
  return timeout;
}

static void publish(void) {
  if (E.dirty) net__engine_notify();
  else if (E.stirred && atomic_load(&exit_waiting)) notify_waiters();
  E.dirty = E.stirred = false;
}

/* One turn: owners' requests, resolved addresses, due timers, then the
 * poller; published changes are announced after each half. */
static int io_main(void *unused) {
  (void)unused;
  static net_poll_event ev[MAX_EVENTS];
  net__thread_background();
  net__thread_mark_io();
  for (;;) {
    if (REARM_EACH_TURN) wake_rearm();
    int held = requests_held();
    if (!held) run_kicks();
    if (atomic_exchange(&E.resolved, 0)) run_awaiting();
    uint64_t next = run_timers(net__now_ms());
    reap();
    publish();
    int n = net__poller_wait(E.poller, ev, MAX_EVENTS, release_memory(poll_timeout(next, held)));
    if (n < 0) {
      net__sleep_ms(1);   /* cannot happen with valid fds; never spin at full speed */
      continue;
    }
    if (n > 0) E.busy = true;
    for (int i = 0; i < n; i++) {
      net_io *io = ev[i].ud;
      if (io == &wake_token) {
        /* after the read: cleared before it, the flag could stay set with
         * no signal left to wake us (a waker's signal read in this drain) */
        net_sock_wake_drain(E.wake_rd);
        wake_rearm();
      } else io->ops->event(io, ev[i].mask);
    }
    reap();
    publish();
  }
  return 0;
}

static bool start_thread(void) {
  int reg = 0;
  E.poller = net__poller_create();
  if (!E.poller || net__engine_set_interest(E.wake_rd, &reg, NET_POLL_IN, &wake_token) < 0) {
    net__poller_free(E.poller);
    E.poller = NULL;
    return false;
  }
  net__os_pin_library();   /* the thread outlives any dlclose of this library */
  net__mem_on_burst(burst_freed);
  if (!net__thread_start(io_main, NULL, "sluice-io", true, NULL)) {
    net__poller_free(E.poller);
    E.poller = NULL;
    return false;
  }
  atexit(flush_at_exit);   /* pinned: the handler stays mapped */
  return true;
}

const char *net__engine_refusal(void) {
  return net__os_forked() ? "a forked child cannot use its parent's I/O thread" : "cannot start the I/O thread";
}

bool net__engine_inherited(net_result *r) {
  if (!net__os_forked()) return false;
  *r = (net_result){NET_FAILURE, NET_E_LIMIT, net__engine_refusal()};
  return true;
}

bool net__engine_acquire(void) {
  if (net__os_forked()) return false;   /* see global_init */
  /* acquire: pairs with the release below; the thread's setup is complete */
  if (atomic_load_explicit(&E.started, memory_order_acquire)) return true;
  if (!ready()) return false;
  net__mutex_lock(start_mx);   /* owners only: the I/O thread never takes it */
  bool ok = atomic_load(&E.started) || start_thread();
  if (ok) atomic_store_explicit(&E.started, 1, memory_order_release);
  net__mutex_unlock(start_mx);
  return ok;
}

void net__engine_release(void) {}
