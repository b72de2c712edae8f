/* engine.h: what the I/O thread offers the object kinds (connections,
 * servers, UDP sockets): the object head, kicks from owners, poller
 * interest, one timer per object, retirement, and the waits owners block in.
 * Internal to net/. */
#ifndef SLUICE_ENGINE_H
#define SLUICE_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "sock.h"

typedef struct net_io net_io;
typedef struct net_io_ops {
  void (*kicked)(net_io *io);            /* the owner asked for something, or an awaited address resolved */
  void (*event)(net_io *io, int mask);   /* its socket is ready (NET_POLL_*) */
  void (*timer)(net_io *io, uint64_t now);   /* its deadline passed */
  void (*destroy)(net_io *io);           /* the last reference went (any thread) */
} net_io_ops;

/* The head every connection, server and UDP socket embeds (and every
 * connection attempt, which only gets events). Poller events carry a net_io *.
 * Every function below marked "I/O thread" runs only there. */
struct net_io {
  const net_io_ops *ops;
  atomic_int refs;
  atomic_int kicked;                /* on the kick stack */
  atomic_int unread;                /* holds news its owner has not read; -1: it has no owner */
  net_io *kick_next;
  /* I/O thread only */
  net_io *prev, *next;              /* the list of objects awaiting an address */
  net_io *retired_next;
  uint64_t timer_at;                /* 0: no timer */
  size_t timer_slot;                /* heap index + 1; 0: no timer; SIZE_MAX: on the late list */
  net_io *timer_next;               /* the late list (engine.c) */
  bool awaiting, retired;
};

/* refs: the owner's handle and the I/O thread's (2), or what the caller holds. */
void net__io_init(net_io *io, const net_io_ops *ops, int refs);
void net__io_unref(net_io *io);
net_io *net__io_ref(net_io *io);   /* returns io */

/* Any thread: schedules io for the I/O thread (ops->kicked runs there, once
 * per burst of kicks). */
void net__engine_kick(net_io *io);
/* I/O thread: io waits for background work (an address to resolve, a TLS
 * configuration to load); ops->kicked runs when some has finished. */
void net__io_await_resolve(net_io *io);
/* I/O thread: ops->timer runs once at `at` (ms, net__now_ms); 0 cancels. */
void net__io_timer(net_io *io, uint64_t at);
/* I/O thread: io is done: no more timers or awaiting, and the I/O thread's
 * reference is dropped between poller batches (events of this batch may
 * still point at it: handlers must see their object as closed). */
void net__io_retire(net_io *io);
/* I/O thread: net__free(p) between poller batches. p's first pointer-sized
 * bytes are reused as the link. */
void net__engine_defer_free(void *p);

/* Owner: takes the engine for an object handle (starts the I/O thread on
 * first use); release when the handle is closed. Never blocks. */
bool net__engine_acquire(void);
/* Why net__engine_acquire (or a helper lane) refused: for messages. */
const char *net__engine_refusal(void);
/* In a forked child, what every inherited object says (true, *r set): no I/O
 * thread moves it there, so it fails rather than take what never goes out. */
bool net__engine_inherited(net_result *r);
void net__engine_release(void);
/* Anyone: the process's malloc heap in use for net_get_stats, as sampled
 * at most a moment ago off the caller's thread (see alloc.h). */
size_t net__engine_heap_bytes(void);
/* Anyone: wakes the I/O thread (coalesced). */
void net__engine_wake(void);
/* I/O thread: io changed with nothing to read (room to write); its owner,
 * if it still has one, is notified once this turn ends. */
void net__io_activity(net_io *io);
/* I/O thread: io has news its owner must read (bytes, a datagram, a
 * connection to accept, a new state): activity, and io counts as unread,
 * so the host is nudged until it reads it, until its owner drains it. */
void net__io_publish(net_io *io);
/* Owner: io holds nothing unread any more (a call found it drained). */
void net__io_seen(net_io *io);
/* Owner: it closed its handle: what io publishes from here on (the end of
 * a close it asked for) is nobody's news and never counts as unread. */
void net__io_disown(net_io *io);
/* Any publisher but the I/O thread (resolver helpers): notify now. */
void net__engine_notify(void);
/* Helper threads: a job something may await finished (an address was
 * published, a TLS configuration loaded): the awaiting are kicked. */
void net__engine_background_done(void);
/* I/O thread: sets fd's poller interest (NET_POLL_*; 0 removes it).
 * *registered holds the current mask. Returns 0, or -1 with errno. */
int net__engine_set_interest(net_sock fd, int *registered, int mask, net_io *io);

/* Closes still handing queued bytes to the kernel: the owner counts one in
 * when it closes (+1), the I/O thread out when they are sent or given up
 * (-1). At process exit the engine waits for the count to reach 0 (each
 * close bounded by its linger), so a script that writes, closes and ends
 * loses nothing; no API call ever waits for it. */
void net__engine_closing(int delta);

/* Owner: blocks until done(arg) or timeout_ms (-1: forever); 1 when done. */
int net__wait_until(bool (*done)(void *), void *arg, int timeout_ms);
/* Objects the exit waits for while they hold something to send, besides
 * the closes (connections, UDP sockets left open): an intrusive list under
 * its own mutex, whose pending() the engine asks of each member (a pointer,
 * so the engine calls nothing of theirs directly). Zero-initialized. A list
 * without pending() is only a list: the exit waits for nothing in it. */
typedef struct net_exit_link {
  struct net_exit_link *prev, *next;
  bool listed;
} net_exit_link;

typedef struct net_exit_list {
  bool (*pending)(net_exit_link *member);   /* asked under the list's mutex */
  atomic_int once;
  net_mutex *mx;
  net_exit_link *head;
} net_exit_list;

/* Any thread. Unlisted objects (no mutex to be had) are not waited for. */
void net__exit_list_add(net_exit_list *l, net_exit_link *member);
void net__exit_list_remove(net_exit_list *l, net_exit_link *member);
/* Any thread: holds the list's mutex to walk it from head (false: no mutex
 * to be had, so nothing was listed). */
bool net__exit_list_lock(net_exit_list *l);
void net__exit_list_unlock(net_exit_list *l);
/* Owner: a read of obj found nothing (empty) or something. A caller that
 * spins on empty reads gives its core up now and then: on few cores it would
 * otherwise starve the I/O thread that fills them. A loop back to the same
 * empty objects within 0.1 ms while the cores are short: a nap until the
 * engine's next news (at most 0.5 ms); a dense empty streak over many
 * objects for over a millisecond: a yield. */
void net__host_read(const void *obj, bool empty);

/* Object counts for net_get_stats. */
extern atomic_size_t net__live_conns, net__live_udp, net__live_servers, net__live_http, net__live_ws;

#endif
