/* wake.h: host wake-ups: the I/O thread nudges the host's frame loop (an SDL
 * user event, or a C callback) when something was published, and keeps
 * nudging at a bounded rate until the host polls. */
#ifndef SLUICE_WAKE_H
#define SLUICE_WAKE_H

#include <stdbool.h>
#include <stdint.h>

/* Owner: called by every call (status, read, write, available, accept...):
 * the host is awake and looking. */
void net__host_polled(void);
/* Objects holding news their owners have not read: +1 / -1. */
void net__wake_unread(int delta);
/* Publishers (the I/O thread, resolver helpers): something changed. */
void net__wake_host(void);
/* I/O thread: nudges again a host that went quiet while it was nudged and has
 * not looked since, or while something it has not read is waiting; returns
 * the next deadline (ms), 0: none. */
uint64_t net__wake_tick(uint64_t now);
/* net_quit of the last user: wake-ups off, none in flight on return. */
void net__wake_stop(void);

#endif
