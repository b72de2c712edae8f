/* test_engine.c: the I/O thread's timers when memory runs out, waits that
 * time out while news arrives, waits that watch before they sleep, wake-ups
 * that kicks share, and a user coming as the last one leaves. Test objects are armed from their kick,
 * on the I/O thread, as the object kinds arm theirs. TAP. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "engine.h"
#include "os.h"
#include "poller.h"
#include "tap.h"

typedef struct tobj {
  net_io obj;
  atomic_int fired;
  _Atomic uint64_t fired_now, fired_real;   /* the handler's `now`, and the clock then */
  atomic_int order;                         /* 1-based place among the timers fired */
} tobj;

static atomic_int fired_total;
static tobj a, b, c;
static _Atomic uint64_t a_at, b_at;
static atomic_int armed, fired_while_arming;

static void t_event(net_io *io, int mask) { (void)io, (void)mask; }
static void t_destroy(net_io *io) { (void)io; }

static void t_timer(net_io *io, uint64_t now) {
  tobj *t = (tobj *)io;
  atomic_store(&t->fired_now, now);
  atomic_store(&t->fired_real, net__now_ms());
  atomic_store(&t->order, atomic_fetch_add(&fired_total, 1) + 1);
  atomic_fetch_add(&t->fired, 1);
  net__engine_notify();
}

/* a's kick arms all three: a and c while the heap cannot grow (c is then
 * cancelled), b once memory is back, due before a. */
static void t_kicked(net_io *io) {
  if (io != &a.obj) return;
  uint64_t now = net__now_ms();
  atomic_store(&a_at, now + 150);
  atomic_store(&b_at, now + 50);
  net_debug_fail_allocs(0, 2);   /* the heap's first growth fails, twice */
  net__io_timer(&a.obj, now + 150);
  net__io_timer(&c.obj, now + 100);
  net_debug_fail_allocs(0, 0);
  net__io_timer(&c.obj, 0);
  net__io_timer(&b.obj, now + 50);
  atomic_store(&fired_while_arming, atomic_load(&fired_total));
  atomic_store(&armed, 1);
}

static const net_io_ops t_ops = {t_kicked, t_event, t_timer, t_destroy};

static bool all_fired(void *unused) {
  (void)unused;
  return atomic_load(&a.fired) && atomic_load(&b.fired);
}

/* Must run first: the heap has never grown yet. */
static bool timers_without_memory(void) {
  net__io_init(&a.obj, &t_ops, 1);
  net__io_init(&b.obj, &t_ops, 1);
  net__io_init(&c.obj, &t_ops, 1);
  CHECK(net__engine_acquire(), "the I/O thread did not start");
  net__engine_kick(&a.obj);
  net__wait_until(all_fired, NULL, 3000);
  net__sleep_ms(150);   /* c's time passes too */
  CHECK(atomic_load(&armed), "the kick never ran");
  CHECK(atomic_load(&fired_while_arming) == 0, "%d timer(s) fired inside the call that armed them",
        atomic_load(&fired_while_arming));
  CHECK(atomic_load(&a.fired) == 1 && atomic_load(&b.fired) == 1, "fired: a %d, b %d times",
        atomic_load(&a.fired), atomic_load(&b.fired));
  CHECK(atomic_load(&c.fired) == 0, "a cancelled timer fired");
  CHECK(atomic_load(&b.order) == 1 && atomic_load(&a.order) == 2, "b (due first) fired as #%d, a as #%d",
        atomic_load(&b.order), atomic_load(&a.order));
  uint64_t at = atomic_load(&a_at), now = atomic_load(&a.fired_now), real = atomic_load(&a.fired_real);
  CHECK(real >= at, "a fired %llu ms early", (unsigned long long)(at - real));
  CHECK(now >= at && now <= real, "a's handler was told now=%llu: due %llu, clock %llu",
        (unsigned long long)now, (unsigned long long)at, (unsigned long long)real);
  CHECK(atomic_load(&b.fired_real) >= atomic_load(&b_at), "b fired early");
  return true;
}

/* Linked with --wrap=net__mutex_unlock (premake5.lua): news can be made to
 * arrive right after a wait leaves its lock, the moment a waiter that timed
 * out can be preempted at. */
void __real_net__mutex_unlock(net_mutex *m);
static _Thread_local bool news_after_unlock;

void __wrap_net__mutex_unlock(net_mutex *m) {
  __real_net__mutex_unlock(m);
  if (!news_after_unlock) return;
  news_after_unlock = false;
  net__engine_notify();
}

/* A wait that times out as news arrives may report it or leave it for the
 * next wait; it must not count it as seen and report nothing. */
static bool wait_keeps_late_news(void) {
  uint64_t seen = 0;
  net_wait_activity_since(&seen, 0);   /* up to date */
  int hit = 0;
  for (int i = 0; i < 20; i++) {
    news_after_unlock = true;
    int r = net_wait_activity_since(&seen, 1);
    if (news_after_unlock) {   /* news before it slept: it returned at once */
      news_after_unlock = false;
      continue;
    }
    hit++;
    CHECK(r == 1 || net_wait_activity_since(&seen, 0) == 1,
          "round %d: news that came as the wait timed out was reported to nobody", i);
  }
  CHECK(hit > 0, "no wait reached its lock");
  return true;
}

/* Also linked with --wrap=write: the wake-up signals are the engine's only
 * writes of 8 bytes (an eventfd's counter, or the same through a pipe). */
ssize_t __real_write(int fd, const void *buf, size_t n);
static atomic_int signals;

ssize_t __wrap_write(int fd, const void *buf, size_t n) {
  if (n == 8) atomic_fetch_add(&signals, 1);
  return __real_write(fd, buf, n);
}

/* Objects that can hold the I/O thread until the test lets it go: in their
 * kick, or in the event of a pipe they wait on (a pipe's byte, not counted). */
typedef struct gobj {
  net_io obj;
  atomic_int ran, hold, held;
  int pipe[2], registered;
} gobj;

static void hold_here(gobj *g) {
  atomic_fetch_add(&g->ran, 1);
  if (!atomic_load(&g->hold)) return;
  atomic_store(&g->held, 1);
  while (atomic_load(&g->hold)) net__sleep_ms(1);
  atomic_store(&g->held, 0);
}

static void g_kicked(net_io *io) {
  gobj *g = (gobj *)io;
  if (g->pipe[0] > 0 && !g->registered) {
    net__engine_set_interest(g->pipe[0], &g->registered, NET_POLL_IN, io);
    atomic_store(&g->ran, 1);
    return;
  }
  hold_here(g);
}

static void g_event(net_io *io, int mask) {
  gobj *g = (gobj *)io;
  char byte;
  (void)mask;
  if (read(g->pipe[0], &byte, 1) == 1) hold_here(g);
}

static void g_timer(net_io *io, uint64_t now) { (void)io, (void)now; }

static const net_io_ops g_ops = {g_kicked, g_event, g_timer, t_destroy};

static gobj h, x, z, w;

/* After a failed check too: a held I/O thread would hang the tests after. */
static void let_go(void) {
  atomic_store(&h.hold, 0);
  atomic_store(&x.hold, 0);
}

static bool wait_for(atomic_int *v, int ms) {
  for (int i = 0; i < ms && !atomic_load(v); i++) net__sleep_ms(1);
  return atomic_load(v);
}

/* While the I/O thread is awake with a wake-up signal still unread, a kick
 * adds no system call: it is found when the signal is read. x is kicked
 * while an event holds the thread (its signal waits unread), and its own kick
 * holds the thread in turn before the poller reads that signal; z comes
 * then. */
static bool kicks_share_an_unread_signal(void) {
  net__io_init(&h.obj, &g_ops, 1);
  net__io_init(&x.obj, &g_ops, 1);
  net__io_init(&z.obj, &g_ops, 1);
  net__io_init(&w.obj, &g_ops, 1);
  CHECK(pipe(h.pipe) == 0, "no pipe");
  net__engine_kick(&h.obj);   /* h waits on its pipe from here */
  CHECK(wait_for(&h.ran, 3000), "the first kick never ran");
  atomic_store(&h.ran, 0);
  atomic_store(&h.hold, 1);
  CHECK(__real_write(h.pipe[1], "x", 1) == 1, "the pipe took no byte");
  CHECK(wait_for(&h.held, 3000), "the pipe's event never came");
  atomic_store(&x.hold, 1);
  int before = atomic_load(&signals);
  net__engine_kick(&x.obj);
  CHECK(atomic_load(&signals) - before == 1, "a kick to a busy thread with no signal unread sent %d",
        atomic_load(&signals) - before);
  atomic_store(&h.hold, 0);
  CHECK(wait_for(&x.held, 3000), "the second kick never ran");
  before = atomic_load(&signals);
  net__engine_kick(&z.obj);
  int sent = atomic_load(&signals) - before;
  atomic_store(&x.hold, 0);
  CHECK(wait_for(&z.ran, 3000), "a kick that sent no signal was never run");
  CHECK(sent == 0, "a kick while a signal was unread sent %d more", sent);
  net__sleep_ms(50);   /* every signal read: the thread sleeps */
  before = atomic_load(&signals);
  net__engine_kick(&w.obj);
  CHECK(wait_for(&w.ran, 3000), "a kick after a quiet spell was never run");
  CHECK(atomic_load(&signals) - before == 1, "a kick to a sleeping thread sent %d signals",
        atomic_load(&signals) - before);
  return true;
}

/* Also linked with --wrap=net__cond_wait_us: the waits that went to sleep. */
bool __real_net__cond_wait_us(net_cond *c, net_mutex *m, uint64_t us);
static atomic_int slept;

bool __wrap_net__cond_wait_us(net_cond *c, net_mutex *m, uint64_t us) {
  atomic_fetch_add(&slept, 1);
  return __real_net__cond_wait_us(c, m, us);
}

static atomic_int round_no, news_for;

/* Brings news as soon as a round's wait begins (or just before). */
static void *newsman(void *unused) {
  (void)unused;
  for (int r; (r = atomic_load(&round_no)) >= 0;) {
    if (r == atomic_load(&news_for)) continue;
    net__sleep_ms(0);
    net__engine_notify();
    atomic_store(&news_for, r);
  }
  return NULL;
}

/* A thread whose waits get news within microseconds watches for the next
 * before it sleeps on the lock; a watch that finds none still ends at the
 * wait's deadline, and news is reported once. */
static bool waits_watch_when_news_comes_soon(void) {
  if (net__os_cpus() < 2) return true;   /* one core: it never watches */
  pthread_t t;
  atomic_store(&news_for, 0);
  CHECK(pthread_create(&t, NULL, newsman, NULL) == 0, "no thread");
  uint64_t seen = 0;
  net_wait_activity_since(&seen, 0);
  int rounds = 200, before = atomic_load(&slept), got = 0;
  for (int r = 1; r <= rounds; r++) {
    atomic_store(&round_no, r);
    got += net_wait_activity_since(&seen, 1000);
  }
  atomic_store(&round_no, -1);
  pthread_join(t, NULL);
  int sleeps = atomic_load(&slept) - before;
  CHECK(got == rounds, "%d of %d waits reported news", got, rounds);
  CHECK(sleeps < rounds, "all %d waits slept on the lock, though news came at once each time", rounds);
  net_wait_activity_since(&seen, 0);
  uint64_t t0 = net__now_ns();
  int r = net_wait_activity_since(&seen, 20);
  uint64_t took = (net__now_ns() - t0) / 1000000;
  CHECK(r == 0, "a wait with no news reported some");
  CHECK(took >= 19, "a wait with no news ended after %llu ms of 20", (unsigned long long)took);
  return true;
}

/* Also linked with --wrap=net__wake_stop: another thread starts using the
 * engine while the last user leaves. */
void __real_net__wake_stop(void);
static atomic_int newcomer_in, newcomer_done, woken;
static bool race_quit;

static void on_wake(void *ud) {
  (void)ud;
  atomic_fetch_add(&woken, 1);
}

static void *newcomer(void *unused) {
  (void)unused;
  atomic_store(&newcomer_in, 1);
  net_init();
  net_set_wakeup(NET_WAKE_CALLBACK, on_wake, NULL, NULL);
  atomic_store(&newcomer_done, 1);
  return NULL;
}

static pthread_t newcomer_thread;

/* The newcomer gets up to 200 ms to finish before the stop goes on. */
void __wrap_net__wake_stop(void) {
  if (race_quit && pthread_create(&newcomer_thread, NULL, newcomer, NULL) == 0) {
    while (!atomic_load(&newcomer_in)) net__yield();
    for (int i = 0; i < 200 && !atomic_load(&newcomer_done); i++) net__sleep_ms(1);
  }
  __real_net__wake_stop();
}

/* Wake-ups set by a user who came as the last one left stay set. */
static bool quit_keeps_newcomers_wakeup(void) {
  race_quit = true;
  net_quit();   /* main's net_init: the last user leaves */
  race_quit = false;
  CHECK(atomic_load(&newcomer_in), "the newcomer never started");
  pthread_join(newcomer_thread, NULL);
  net__engine_notify();
  CHECK(atomic_load(&woken) == 1, "the newcomer's wake-up callback was called %d times, not once",
        atomic_load(&woken));
  return true;
}

int main(void) {
  if (net_init() != 0) {
    printf("not ok 1 - net_init failed\n1..1\n");
    return 1;
  }
  report("a timer armed when the heap cannot grow fires at its time, not at once", timers_without_memory());
  report("a wait that times out as news arrives does not lose it", wait_keeps_late_news());
  report("a kick while a wake-up signal is unread sends none", kicks_share_an_unread_signal());
  let_go();
  report("waits watch for news that comes soon, and still keep their deadline", waits_watch_when_news_comes_soon());
  report("wake-ups set as the last user leaves stay set", quit_keeps_newcomers_wakeup());
  return tap_done();
}
