/* helper.c: lanes of helper threads. Submitters (owners, the I/O thread,
 * other helpers) push jobs onto a lock-free stack and post a semaphore, so
 * they never wait on a helper; a submitter that finds every helper busy
 * starts another, up to the lane's bound (owners submit only to lanes of one
 * thread, started with the lane). The helpers of a lane share a mutex among
 * themselves to take jobs oldest first. A lane's first helper stays; the
 * others leave when idle. All are detached. Helper threads run the jobs. */
#include "helper.h"

#include "os.h"

#define HELPER_IDLE_MS 10000

static bool lane_init(void *lane) {
  net_lane *l = lane;
  l->mx = net__mutex_new();
  l->sem = net__sem_new(0);
  if (!l->mx || !l->sem || !net__os_fork_watch()) return false;   /* a forked child must refuse */
  net__os_pin_library();   /* detached helpers may run when the host unloads us */
  return true;
}

static int helper_main(net_lane *l, bool permanent);
static int stay_main(void *lane) { return helper_main(lane, true); }
static int leave_main(void *lane) { return helper_main(lane, false); }

/* Starts a helper in a place already counted in l->threads. */
static bool spawn_counted(net_lane *l, bool permanent) {
  if (net__thread_start(permanent ? stay_main : leave_main, l, l->name, true, NULL)) return true;
  atomic_fetch_sub(&l->threads, 1);
  return false;
}

static bool spawn(net_lane *l, bool permanent) {
  atomic_fetch_add(&l->threads, 1);
  return spawn_counted(l, permanent);
}

/* Every helper busy (a name that does not answer, say): one more, up to
 * the bound, or a queued job would wait for a busy one. The place is taken
 * before the thread starts, so helpers growing at once stay within it. */
static void grow(net_lane *l) {
  if (atomic_load(&l->idle) != 0) return;
  int n = atomic_load(&l->threads);
  while (n < l->max_threads) {
    if (atomic_compare_exchange_weak(&l->threads, &n, n + 1)) {
      spawn_counted(l, false);
      return;
    }
  }
}

/* A post was consumed, so a job is queued: take the oldest. */
static net_job *take(net_lane *l) {
  net__mutex_lock(l->mx);
  if (!l->head) {   /* move what submitters pushed, reversing it into arrival order */
    /* acquire: pairs with the release in net__lane_submit; the job is complete */
    net_job *j = atomic_exchange_explicit(&l->incoming, NULL, memory_order_acquire), *rev = NULL;
    l->tail = j;
    while (j) {
      net_job *next = j->next;
      j->next = rev;
      rev = j;
      j = next;
    }
    l->head = rev;
  }
  net_job *j = l->head;
  l->head = j->next;
  if (!l->head) l->tail = NULL;
  bool more = l->head || atomic_load(&l->incoming);
  net__mutex_unlock(l->mx);
  atomic_fetch_sub(&l->queued, 1);
  if (more) grow(l);   /* from here, not on a submitter */
  return j;
}

static int helper_main(net_lane *l, bool permanent) {
  net__thread_background();
  for (;;) {
    atomic_fetch_add(&l->idle, 1);
    bool got = net__sem_wait(l->sem, permanent ? -1 : HELPER_IDLE_MS);
    atomic_fetch_sub(&l->idle, 1);
    if (!got) break;   /* idle too long */
    net_job *j = take(l);
    j->run(j);
  }
  atomic_fetch_sub(&l->threads, 1);
  /* A submitter that posted while this thread still counted as idle, or as
   * one of max_threads, started nobody: its job would wait for a busy
   * helper. It queued before posting, so it shows here. */
  if (atomic_load(&l->queued) > 0) grow(l);
  return 0;
}

/* The lane's first use sets it up and starts the helper that stays. */
static bool ready(net_lane *l) {
  if (!net__once(&l->once, lane_init, l)) return false;
  int zero = 0;
  if (atomic_load(&l->started) || !atomic_compare_exchange_strong(&l->started, &zero, 1)) return true;
  if (spawn(l, true)) return true;
  atomic_store(&l->started, 0);
  return false;
}

const char *net__lane_refusal(net_lane *l, const char *full) {
  return atomic_load(&l->started) ? full : "cannot start a helper thread";
}

bool net__lane_submit(net_lane *l, net_job *job) {
  if (net__os_forked()) return false;   /* a forked child has none of the helpers the lane counts */
  if (atomic_fetch_add(&l->queued, 1) >= l->max_queued) {
    atomic_fetch_sub(&l->queued, 1);
    return false;
  }
  if (!ready(l)) {
    atomic_fetch_sub(&l->queued, 1);
    return false;
  }
  net_job *top = atomic_load_explicit(&l->incoming, memory_order_relaxed);
  do job->next = top;
  /* release: the job is complete before a helper can take it */
  while (!atomic_compare_exchange_weak_explicit(&l->incoming, &top, job, memory_order_release,
                                                memory_order_relaxed));
  net__sem_post(l->sem);
  grow(l);
  return true;
}
