/* helper.h: lanes of helper threads for work that may block (name lookups,
 * reading certificate files), so that neither an owner nor the I/O thread
 * ever waits on it. Each lane has its own bounded queue and its own threads:
 * work stuck in one lane never delays another. Any thread submits. */
#ifndef SLUICE_HELPER_H
#define SLUICE_HELPER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct net_job net_job;
struct net_job {
  void (*run)(net_job *job);   /* on a helper thread; owns the job from here on */
  net_job *next;
};

typedef struct net_lane {
  const char *name;            /* thread name */
  int max_threads;             /* threads at most; the first stays, the others leave when idle */
  int max_queued;              /* jobs waiting at most; past it, submit refuses */
  /* the rest is the lane's own; zero-initialise it */
  _Atomic(net_job *) incoming;   /* Treiber stack: submitters push */
  struct net_sem *sem;           /* one post per job */
  struct net_mutex *mx;          /* helpers only: turns the stack into a FIFO */
  net_job *head, *tail;          /* FIFO, under mx */
  atomic_int threads, idle, queued, once, started;
} net_lane;

/* Queues job on lane; false when the lane is full or cannot start a thread
 * (the caller still owns job). Never blocks. */
bool net__lane_submit(net_lane *lane, net_job *job);
/* Why submit refused: full unless the lane has no thread (none could start). */
const char *net__lane_refusal(net_lane *lane, const char *full);

#endif
