/* test_lane.c: lanes of helper threads (net/helper.c), with the timing that
 * matters forced: a job submitted while a helper's idle wait has just timed
 * out (it still counts as idle, so the submitter starts nobody) must still
 * run on a new helper while the lane's other helper is busy. helper.c is
 * compiled in here with its semaphore wait wrapped to make that moment. TAP. */
#include <stdatomic.h>
#include <stdio.h>

#include "helper.h"
#include "os.h"
#include "tap.h"

typedef struct test_job {
  net_job job;
  atomic_int ran;
} test_job;

static net_lane lane = {.name = "test-lane", .max_threads = 2, .max_queued = 16};
static test_job blocker, quick, late;
static net_sem *unblock;
static atomic_int armed;
static _Thread_local bool leaves;   /* this helper leaves when idle */

/* Holds the helper that stays; one that leaves passes it on. */
static void run_blocker(net_job *j) {
  if (leaves) {
    net__lane_submit(&lane, j);
    return;
  }
  atomic_store(&((test_job *)j)->ran, 1);
  net__sem_wait(unblock, -1);
}

static void run_quick(net_job *j) { atomic_store(&((test_job *)j)->ran, 1); }

/* Once armed, an idle leaving helper "times out", and the late job is
 * submitted first, as by another thread at that very moment. */
static bool gap_wait(net_sem *s, int ms) {
  leaves = ms >= 0;
  if (!leaves) return net__sem_wait(s, ms);
  for (;;) {
    if (net__sem_wait(s, 1)) return true;
    if (atomic_exchange(&armed, 0)) {
      net__lane_submit(&lane, &late.job);
      return false;
    }
  }
}

#define net__sem_wait gap_wait
#include "helper.c"
#undef net__sem_wait

static bool ran_within(test_job *j, unsigned ms) {
  for (uint64_t end = net__now_ms() + ms; !atomic_load(&j->ran) && net__now_ms() < end;) net__sleep_ms(1);
  return atomic_load(&j->ran);
}

static bool late_job_runs(void) {
  blocker.job.run = run_blocker;
  quick.job.run = late.job.run = run_quick;
  CHECK((unblock = net__sem_new(0)), "no semaphore");
  CHECK(net__lane_submit(&lane, &blocker.job) && ran_within(&blocker, 5000), "the blocker never ran");
  /* the helper that stays is busy: this job starts one that leaves */
  CHECK(net__lane_submit(&lane, &quick.job) && ran_within(&quick, 5000), "no second helper for a job");
  atomic_store(&armed, 1);
  bool ok = ran_within(&late, 5000);
  int threads = atomic_load(&lane.threads);
  net__sem_post(unblock);
  CHECK(ok, "the late job waited behind the busy helper with %d of 2 threads", threads);
  return true;
}

int main(void) {
  report("a job submitted as an idle helper leaves gets a helper of its own", late_job_runs());
  return tap_done();
}
