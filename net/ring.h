/* ring.h: single-producer/single-consumer byte ring over fixed-size chunks.
 * One thread produces, one consumes; neither ever blocks or takes a lock. */
#ifndef SLUICE_RING_H
#define SLUICE_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define NET_CHUNK_SIZE  16384u          /* one TLS record fits in one chunk */
#define NET_RING_DEFAULT_CAP (1u << 20)
#define NET_RING_MAX_CAP (1u << 30)
#define NET_RING_GROW_MAX (64u << 20)   /* how far a growing ring's cap may double */
/* A stall shorter than this grows nothing: a consumer that naps or is preempted
 * for a moment is not a frame loop held back by the cap, and a bigger ring
 * would only cost it cache. */
#define NET_RING_GROW_STALL_NS 5000000u
#define NET_RING_RUN_MIN (2u << 20)     /* a fixed ring takes runs from this cap up */
#define NET_CACHELINE 64

/* Positions are free-running byte counters: used = tail - head, never masked
 * until a chunk is looked up. Byte p lives in chunk slot (p / CHUNK) % nslots at
 * offset p % CHUNK. nslots = cap / CHUNK + 1, so the chunk being filled never
 * shares a slot with the chunk being drained. */
typedef struct net_ring {
  /* producer side */
  _Alignas(NET_CACHELINE) atomic_size_t tail;
  atomic_int busy;            /* producer is inside write/reserve..commit; with
                                  trim_req a seq_cst (Dekker) handshake, see ring.c */
  size_t head_cache;          /* producer's last view of head */
  bool oom;                   /* the last ring_write stopped for want of a chunk */
  bool stalled;               /* the producer wanted more than the room since it
                                  last found the ring read empty */
  uint64_t stall_at;          /* when it did first (with grow_stall_ns) */
  bool runs;                  /* it may take a run (ring_take_runs) */
  bool run_earned;            /* it held the producer back as growth asks: its
                                  slot tables come with a run */
  size_t shrink_tail;         /* tail at the last ring_shrink */
  /* consumer side */
  _Alignas(NET_CACHELINE) atomic_size_t head;
  atomic_int trim_req;        /* consumer wants to free the partial tail chunk */
  size_t tail_cache;          /* consumer's last view of tail */
  /* shared: cap, nslots and the slot table change only on the producer's side,
   * while the consumer has read every byte (see producer_grow) */
  _Alignas(NET_CACHELINE) atomic_size_t cap;   /* byte cap, multiple of CHUNK */
  atomic_size_t nslots;
  size_t base;                /* the cap at init */
  size_t grow_max;            /* cap may double up to this; set before sharing */
  uint64_t grow_stall_ns;     /* ...after a stall at least this long */
  _Atomic(char *) *slots;     /* nslots chunk pointers; allocated by the producer
                                  on first reserve, before the first tail publish */
  _Atomic(char *) run;        /* a ring that grew: its nslots chunks side by side
                                  (pages.c), set with the slot table */
} net_ring;

/* Setup and teardown: not thread-safe; call before sharing / after both sides stop.
 * cap is rounded up to a multiple of NET_CHUNK_SIZE and clamped to
 * [NET_CHUNK_SIZE, NET_RING_MAX_CAP]. ring_init allocates nothing. */
void ring_init(net_ring *r, size_t cap);
void ring_destroy(net_ring *r);           /* returns every chunk and the slot table */
/* Before sharing: the cap doubles, up to max, each time the consumer reads empty a
 * ring that had held the producer back for stall_ns or more (as TCP autotunes its
 * receive window), so a reader that drains what is there once per frame is not
 * held to cap bytes per frame. It never shrinks back; memory is still held only
 * for unread bytes. A max at or below the cap grows nothing: it sets the stall
 * that earns a fixed ring its run (ring_take_runs). */
void ring_allow_growth(net_ring *r, size_t max, uint64_t stall_ns);
/* Before sharing, for a ring the I/O thread fills and the owner drains in
 * large reads: once it grew (or, fixed at NET_RING_RUN_MIN or more, once it
 * was read empty after holding the producer back as growth asks), its chunks
 * come side by side, as one run of pages (pages.c), so bytes spanning chunks
 * lie in one piece. The run stays with the ring while it streams (ring_shrink). */
void ring_take_runs(net_ring *r);
size_t ring_cap(const net_ring *r);       /* either side */

/* Producer. ring_write copies up to n bytes and returns how many it accepted
 * (0 when full, or when the consumer stays preempted inside its trim of the ring
 * it emptied; r->oom tells when it stopped short for want of memory). ring_reserve
 * offers up to max free bytes as at most maxspans
 * spans (allocating chunks as needed; an allocation failure just shortens the
 * offer) and returns the span count; every reserve must be followed by exactly one
 * ring_commit(r, k) with k <= the bytes offered, even k = 0. The spans point into
 * chunk memory and are valid only until that commit, which returns the reserved
 * chunks that got no committed byte. ring_reserve returns 0 when the ring is full
 * (or the consumer stays preempted inside its trim of the ring it
 * emptied: retry), and -1 when memory for a chunk could
 * not be had (then ring_commit(r, 0) is a no-op). */
size_t ring_write(net_ring *r, const void *src, size_t n);
/* A record (head, then body) written whole or not at all, published at once:
 * false when it does not fit now, when memory for a chunk is short (r->oom),
 * or while the consumer is trimming the empty ring (retry). */
bool ring_write_record(net_ring *r, const void *head, size_t hlen, const void *body, size_t blen);
int ring_reserve(net_ring *r, net_span *spans, int maxspans, size_t max);
void ring_commit(net_ring *r, size_t n);
size_t ring_free_space(net_ring *r);      /* producer's view */
/* Producer: an empty ring gives back its slot table and any chunk, holding no
 * memory until the next write (an idle connection keeps none). false when not
 * empty, while the consumer trims, or while a ring on a run still streams
 * (a run's worth of bytes passed since the last call): try later. */
bool ring_shrink(net_ring *r);

/* Consumer. ring_read copies up to n bytes out and returns the count.
 * ring_peek describes up to max readable bytes as at most maxspans spans without
 * consuming (valid until the next consumer call; chunks side by side make one
 * span, so on a run a span may pass NET_CHUNK_SIZE); ring_consume(r, k) then drops
 * k <= peeked bytes. Chunks fully consumed go back to the pool before head is
 * published. When a consume leaves the ring empty, the partial chunk is freed too
 * (by the producer as it leaves its call, if it was busy). */
size_t ring_read(net_ring *r, void *dst, size_t n);
int ring_peek(net_ring *r, net_span *spans, int maxspans, size_t max);
void ring_consume(net_ring *r, size_t n);
/* Consumer: drops min(n, readable) bytes, whatever the caller did meanwhile; returns it. */
size_t ring_consume_upto(net_ring *r, size_t n);
/* The bytes k spans describe. */
size_t ring_spans_len(const net_span *spans, int k);
size_t ring_used(net_ring *r);            /* consumer's (or anyone's) view */
/* Producer: every byte the consumer has consumed so far (free-running): a
 * change says the consumer moved. */
size_t ring_consumed(net_ring *r);
/* Consumer: copies up to n readable bytes starting off bytes past head,
 * consuming nothing; returns the count. */
size_t ring_copy(net_ring *r, size_t off, void *dst, size_t n);
/* Consumer: the offset (from head) of the first needle lying wholly within
 * the readable bytes [from, limit), or -1. nlen is 1..NET_FIND_MAX. */
long ring_find(net_ring *r, const void *needle, size_t nlen, size_t from, size_t limit);

/* Bytes of chunk memory this ring holds now (either side; approximate while busy). */
size_t ring_memory(net_ring *r);

/* Process-wide chunk pool: a bounded lock-free free list in front of malloc. */
void *net_chunk_alloc(void);
void net_chunk_free(void *chunk);
typedef struct net_chunk_stats {
  size_t live;     /* chunks handed out and not returned */
  size_t cached;   /* chunks kept in the free list */
} net_chunk_stats;
net_chunk_stats net_chunk_get_stats(void);
void net_chunk_pool_trim(void);            /* frees every cached chunk */

#endif
