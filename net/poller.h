/* poller.h: the readiness interface every backend file implements
 * (poll_epoll.c, poll_poll.c, poll_wsapoll.c on Windows; one is compiled).
 * Used only by the I/O thread. */
#ifndef SLUICE_POLLER_H
#define SLUICE_POLLER_H

#include "sock.h"

#define NET_POLL_IN 1
#define NET_POLL_OUT 2
#define NET_POLL_ERR 4   /* error or hang-up; reported even when not asked for */

typedef struct net_poller net_poller;

typedef struct net_poll_event {
  void *ud;    /* what was registered with the fd */
  int mask;    /* NET_POLL_* that are ready */
} net_poll_event;

/* All return 0 on success, -1 with errno set on failure. Level-triggered:
 * an fd stays reported while it is ready for what its mask asks. */
net_poller *net__poller_create(void);
void net__poller_free(net_poller *p);
int net__poller_add(net_poller *p, net_sock fd, int mask, void *ud);
int net__poller_mod(net_poller *p, net_sock fd, int mask, void *ud);
int net__poller_del(net_poller *p, net_sock fd);
/* Waits at most timeout_ms (-1: forever); returns the number of events
 * written to out (at most max), 0 on timeout or EINTR, -1 on failure. */
int net__poller_wait(net_poller *p, net_poll_event *out, int max, int timeout_ms);
const char *net__poller_name(void);

#endif
