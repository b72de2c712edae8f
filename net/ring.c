/* ring.c: the SPSC chunked byte ring and the process-wide chunk pool behind it.
 * Producer calls run on one thread, consumer calls on one other; the pool on any. */
#include "ring.h"

#include "alloc.h"
#include "os.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK ((size_t)NET_CHUNK_SIZE)
#define POOL_CELLS 256u               /* power of two: positions wrap cleanly */

/* Two per connection: a fourth cache line would cost every idle one 128 bytes. */
_Static_assert(sizeof(net_ring) <= 3 * NET_CACHELINE, "net_ring grew past three cache lines");

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* ---- chunk pool: Vyukov's bounded MPMC queue in front of malloc ---------------
 * Each cell carries a sequence number saying whose turn it is: seq == pos means
 * free for the pusher at pos, seq == pos + 1 means full for the popper at pos.
 * A cell stores seq minus its index, so the zeroed static queue starts out valid
 * (seq == index) without an init call or a once-lock. */
typedef struct pool_cell {
  atomic_size_t seq;
  void *chunk;
} pool_cell;

static struct {
  _Alignas(NET_CACHELINE) atomic_size_t push_pos;
  _Alignas(NET_CACHELINE) atomic_size_t pop_pos;
  _Alignas(NET_CACHELINE) atomic_size_t live;
  atomic_size_t cached;
  _Alignas(NET_CACHELINE) pool_cell cells[POOL_CELLS];
} pool;

static size_t cell_seq(size_t pos) {
  size_t i = pos % POOL_CELLS;
  /* acquire: pairs with cell_set_seq's release, so the chunk field is visible */
  return atomic_load_explicit(&pool.cells[i].seq, memory_order_acquire) + i;
}

static void cell_set_seq(size_t pos, size_t seq) {
  size_t i = pos % POOL_CELLS;
  /* release: pairs with cell_seq's acquire; publishes (or retires) the chunk field */
  atomic_store_explicit(&pool.cells[i].seq, seq - i, memory_order_release);
}

/* Claims the next position *pos of the counter at *at; false when its cell is not
 * ready (queue full for pushers, empty for poppers). The cell is ready when its seq
 * equals pos + lag (0 for push, 1 for pop). Never waits: a cell still being filled
 * or drained by a preempted thread reads as full/empty, and the caller falls back
 * to malloc/free. */
static bool pool_claim(atomic_size_t *at, size_t *pos, size_t lag) {
  *pos = atomic_load_explicit(at, memory_order_relaxed);
  for (;;) {
    ptrdiff_t dif = (ptrdiff_t)(cell_seq(*pos) - (*pos + lag));
    if (dif < 0)
      return false;
    if (dif > 0)                      /* another thread took this position */
      *pos = atomic_load_explicit(at, memory_order_relaxed);
    else if (atomic_compare_exchange_weak_explicit(at, pos, *pos + 1,
                 memory_order_relaxed, memory_order_relaxed))
      return true;                    /* the cell's seq orders the data, not this CAS */
  }
}

static bool pool_push(void *chunk) {
  size_t pos;
  if (!pool_claim(&pool.push_pos, &pos, 0))
    return false;
  pool.cells[pos % POOL_CELLS].chunk = chunk;
  cell_set_seq(pos, pos + 1);         /* full: the popper at pos may take it */
  return true;
}

static void *pool_pop(void) {
  size_t pos;
  if (!pool_claim(&pool.pop_pos, &pos, 1))
    return NULL;
  void *chunk = pool.cells[pos % POOL_CELLS].chunk;
  cell_set_seq(pos, pos + POOL_CELLS); /* free again for the pusher one lap later */
  return chunk;
}

void *net_chunk_alloc(void) {
  void *c = pool_pop();
  if (c)
    atomic_fetch_sub_explicit(&pool.cached, 1, memory_order_relaxed);
  else
    c = net__chunk_get();
  if (c)
    atomic_fetch_add_explicit(&pool.live, 1, memory_order_relaxed);
  return c;
}

void net_chunk_free(void *chunk) {
  if (!chunk)
    return;
  atomic_fetch_sub_explicit(&pool.live, 1, memory_order_relaxed);
  /* count it before it becomes poppable, so a racing pop never drives cached below 0 */
  atomic_fetch_add_explicit(&pool.cached, 1, memory_order_relaxed);
  if (!pool_push(chunk)) {
    atomic_fetch_sub_explicit(&pool.cached, 1, memory_order_relaxed);
    net__chunk_put(chunk);            /* pool full: its pages go back (pages.c) */
  }
}

net_chunk_stats net_chunk_get_stats(void) {
  net_chunk_stats s;
  s.live = atomic_load_explicit(&pool.live, memory_order_relaxed);
  s.cached = atomic_load_explicit(&pool.cached, memory_order_relaxed);
  return s;
}

void net_chunk_pool_trim(void) {
  void *c;
  while ((c = pool_pop()) != NULL) {
    atomic_fetch_sub_explicit(&pool.cached, 1, memory_order_relaxed);
    net__chunk_put(c);
  }
}

/* ---- ring: setup ---------------------------------------------------------------
 * Slot ownership: the consumer owns the slots of chunks holding bytes in
 * [head, tail); the producer owns the others. nslots = cap/CHUNK + 1 keeps every
 * window of positions the producer may fill, [tail, head + cap), off the slots the
 * consumer still reads. Caveat: (pos / CHUNK) % nslots assumes positions never wrap,
 * true for a 64-bit size_t (2^64 bytes); a 32-bit size_t wraps after 4 GiB. */
static size_t nslots_of(const net_ring *r) { return atomic_load_explicit(&r->nslots, memory_order_relaxed); }

static _Atomic(char *) *slot_of(const net_ring *r, size_t pos) {
  return &r->slots[(pos / CHUNK) % nslots_of(r)];
}

size_t ring_cap(const net_ring *r) { return atomic_load_explicit(&r->cap, memory_order_relaxed); }

/* A ring on a run holds only the run's chunks, which stay with it; others go
 * back to the pool. The run changes only while the consumer looks at no slot
 * (producer_grow, free_slots), so either side may ask. */
static void chunk_drop(const net_ring *r, char *c) {
  if (!atomic_load_explicit(&r->run, memory_order_relaxed))
    net_chunk_free(c);
}

/* Returns every chunk, the run and the slot table (producer side, or no side running). */
static void free_slots(net_ring *r) {
  if (!r->slots)
    return;
  for (size_t i = 0, n = nslots_of(r); i < n; i++)
    chunk_drop(r, atomic_exchange_explicit(&r->slots[i], NULL, memory_order_relaxed));
  net__free(r->slots);
  r->slots = NULL;
  net__run_put(atomic_exchange_explicit(&r->run, NULL, memory_order_relaxed));
}

void ring_init(net_ring *r, size_t cap) {
  cap = cap < CHUNK ? CHUNK : cap > NET_RING_MAX_CAP ? NET_RING_MAX_CAP : cap;
  atomic_init(&r->tail, 0);
  atomic_init(&r->busy, 0);
  r->head_cache = 0;
  r->oom = false;
  atomic_init(&r->head, 0);
  atomic_init(&r->trim_req, 0);
  r->tail_cache = 0;
  r->stalled = false;
  r->stall_at = r->grow_stall_ns = 0;
  cap = (cap + CHUNK - 1) / CHUNK * CHUNK;  /* MAX_CAP is a multiple: no overflow */
  atomic_init(&r->cap, cap);
  atomic_init(&r->nslots, cap / CHUNK + 1);
  r->base = r->grow_max = cap;
  r->slots = NULL;                  /* allocated by the producer on first need */
  atomic_init(&r->run, NULL);
  r->runs = r->run_earned = false;
  r->shrink_tail = 0;
}

void ring_allow_growth(net_ring *r, size_t max, uint64_t stall_ns) {
  max = max > NET_RING_MAX_CAP ? NET_RING_MAX_CAP : max / CHUNK * CHUNK;
  if (max > ring_cap(r))
    r->grow_max = max;
  r->grow_stall_ns = stall_ns;
}

void ring_take_runs(net_ring *r) { r->runs = true; }

void ring_destroy(net_ring *r) {
  size_t max = r->grow_max;
  uint64_t stall_ns = r->grow_stall_ns;
  bool runs = r->runs;
  free_slots(r);
  ring_init(r, r->base);
  r->grow_max = max;
  r->grow_stall_ns = stall_ns;
  r->runs = runs;
}

/* ---- ring: producer ------------------------------------------------------------ */

/* Free bytes, reloading head only when the cached view falls short of want. */
static size_t producer_room(net_ring *r, size_t tail, size_t want) {
  size_t cap = ring_cap(r), room = cap - (tail - r->head_cache);
  if (room < want) {
    /* acquire: pairs with the release of head in consumer_advance, so the slots of
     * chunks the consumer freed read as NULL before we refill them */
    r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
    room = cap - (tail - r->head_cache);
  }
  return room;
}

/* Frees the partial tail chunk of an empty ring. Runs after busy is cleared, so it
 * can race only with consumer_trim; the exchange lets exactly one of us free it. */
static void producer_trim(net_ring *r) {
  size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  _Atomic(char *) *s = slot_of(r, tail);
  if (!atomic_load_explicit(s, memory_order_relaxed))
    return;
  /* acquire: pairs with the release of head; the consumer is done with this chunk */
  if (atomic_load_explicit(&r->head, memory_order_acquire) != tail)
    return;
  chunk_drop(r, atomic_exchange_explicit(s, NULL, memory_order_acq_rel));
}

/* Leaves the producer's critical section (Dekker pair of consumer_trim).
 * seq_cst store of busy: if consumer_trim's load of busy came before it, it saw 1
 * and skipped; then its trim_req store precedes our seq_cst load of trim_req below,
 * which therefore reads that store or a later one, synchronizes with it, and makes
 * the consumer's new head visible to producer_trim, which frees the chunk instead. */
static void producer_exit(net_ring *r) {
  atomic_store_explicit(&r->busy, 0, memory_order_seq_cst);
  (void)atomic_load_explicit(&r->trim_req, memory_order_seq_cst);
  if (r->slots)
    producer_trim(r);
}

/* Enters the critical section in which the producer touches the tail chunk.
 * seq_cst pair with consumer_trim (store trim_req; load busy): at least one side
 * sees the other's flag, so the consumer never frees a chunk we are filling. */
static bool producer_enter(net_ring *r) {
  atomic_store_explicit(&r->busy, 1, memory_order_seq_cst);
  if (!atomic_load_explicit(&r->trim_req, memory_order_seq_cst))
    return true;
  producer_exit(r);                 /* consumer is trimming: report "no space" now */
  return false;
}

/* Inside the producer's section, with head == tail: the consumer has read every
 * published byte and looks at no slot until the next tail publish (its trim
 * waits out our section), so the slot mapping may change. The cap doubles (up
 * to grow_max: a fixed ring keeps its cap and only earns its run); the
 * chunks holding [tail, tail + n), not yet published, move to their new slots,
 * or their bytes into the new run when one can be had. */
static void producer_grow(net_ring *r, size_t tail, size_t n) {
  size_t cap = ring_cap(r) * 2 < r->grow_max ? ring_cap(r) * 2 : r->grow_max;
  size_t nslots = cap / CHUNK + 1;
  _Atomic(char *) *slots = NULL;
  if (n && !(slots = net__calloc(nslots, sizeof *slots)))
    return;                         /* growing only speeds things up: later */
  char *run = n && r->runs ? net__run_get(nslots * CHUNK) : NULL;   /* else producer_table takes one */
  if (n && !run && atomic_load_explicit(&r->run, memory_order_relaxed)) {
    net__free(slots);               /* the bytes lie in the run that goes: later */
    return;
  }
  for (size_t p = tail - tail % CHUNK; n && p < tail + n; p += CHUNK) {
    char *c = atomic_exchange_explicit(slot_of(r, p), NULL, memory_order_relaxed);
    size_t i = (p / CHUNK) % nslots;
    char *to = run ? run + i * CHUNK : c;
    if (run) {
      size_t from = p < tail ? tail - p : 0, end = min_size(CHUNK, tail + n - p);
      memcpy(to + from, c + from, end - from);
      chunk_drop(r, c);
    }
    atomic_init(&slots[i], to);
  }
  free_slots(r);                    /* what is left held read bytes only */
  r->slots = slots;
  atomic_store_explicit(&r->run, run, memory_order_relaxed);
  /* relaxed: the consumer reads them after the next tail publish (release) */
  atomic_store_explicit(&r->nslots, nslots, memory_order_relaxed);
  atomic_store_explicit(&r->cap, cap, memory_order_relaxed);
  r->run_earned = true;
}

/* The producer stalled on a cap that may still grow, or on a fixed one that
 * would earn its ring a run: the same evidence of a frame loop streaming, where
 * one copy per read and pages faulted in once pay. */
static bool may_grow(const net_ring *r) {
  return r->stalled && (ring_cap(r) < r->grow_max ||
                        (r->runs && !r->run_earned && ring_cap(r) >= NET_RING_RUN_MIN));
}

/* Inside the producer's section: a ring that stalled the producer and has since
 * been read empty grows (n bytes at tail are not yet published). */
static void producer_check_grow(net_ring *r, size_t tail, size_t n) {
  if (!may_grow(r))
    return;
  /* acquire: pairs with the release of head; the consumer is done with every chunk */
  if (atomic_load_explicit(&r->head, memory_order_acquire) != tail)
    return;
  r->stalled = false;
  if (!r->grow_stall_ns || net__now_ns() - r->stall_at >= r->grow_stall_ns)
    producer_grow(r, tail, n);
}

/* Outside the producer's section: room for want bytes, after the growth check;
 * short of it, the producer is stalled by the cap. */
static size_t producer_want(net_ring *r, size_t tail, size_t want) {
  if (may_grow(r) && producer_enter(r)) {
    producer_check_grow(r, tail, 0);
    producer_exit(r);
  }
  size_t room = producer_room(r, tail, want);
  if (room < want && !r->stalled) {
    r->stalled = true;
    r->stall_at = r->grow_stall_ns ? net__now_ns() : 0;
  }
  return room;
}

/* The slot table, written before any tail publish, so the consumer sees it via
 * tail's acquire. A ring that earned a run (may_grow) takes one besides: a frame
 * loop drains it in large reads, each then one piece of memory, copied once. */
static bool producer_table(net_ring *r) {
  r->slots = net__calloc(nslots_of(r), sizeof *r->slots);
  if (!r->slots)
    return false;
  if (r->runs && r->run_earned)
    atomic_store_explicit(&r->run, net__run_get(nslots_of(r) * CHUNK), memory_order_relaxed);
  return true;
}

/* The chunk holding byte pos, allocated on first need; NULL when memory is short. */
static char *producer_chunk(net_ring *r, size_t pos) {
  if (!r->slots && !producer_table(r))
    return NULL;
  _Atomic(char *) *s = slot_of(r, pos);
  char *c = atomic_load_explicit(s, memory_order_relaxed);
  if (!c) {
    char *run = atomic_load_explicit(&r->run, memory_order_relaxed);
    c = run ? run + (size_t)(s - r->slots) * CHUNK : net_chunk_alloc();   /* slot i: the run's i-th */
    if (c)
      atomic_store_explicit(s, c, memory_order_relaxed);  /* published by tail's release */
  }
  return c;
}

/* Copies n bytes to stream position pos (inside producer_enter/exit);
 * returns how many fitted before memory for a chunk ran short. */
static size_t copy_in(net_ring *r, size_t pos, const void *src, size_t n) {
  size_t done = 0;
  while (done < n) {
    size_t off = (pos + done) % CHUNK, len = min_size(n - done, CHUNK - off);
    char *c = producer_chunk(r, pos + done);
    if (!c) {
      r->oom = true;
      break;
    }
    memcpy(c + off, (const char *)src + done, len);
    done += len;
  }
  return done;
}

/* Enters, waiting out a consumer that is trimming the ring it just emptied
 * (a few instructions): a write into a ring with room must not fail for it.
 * false only when the consumer stays inside (preempted there). */
static bool producer_enter_soon(net_ring *r) {
  for (int tries = 0; tries < 1000; tries++)
    if (producer_enter(r))
      return true;
  return false;
}

size_t ring_write(net_ring *r, const void *src, size_t n) {
  size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  r->oom = false;
  n = min_size(n, producer_want(r, tail, n));
  if (n == 0 || !producer_enter_soon(r))
    return 0;
  size_t done = copy_in(r, tail, src, n);   /* out of memory: accept what fitted */
  /* release: pairs with the consumer's acquire of tail; the bytes copied above
   * and the chunk pointers are visible before the new tail is */
  if (done)
    atomic_store_explicit(&r->tail, tail + done, memory_order_release);
  producer_exit(r);
  return done;
}

bool ring_write_record(net_ring *r, const void *head, size_t hlen, const void *body, size_t blen) {
  size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  r->oom = false;
  if (producer_want(r, tail, hlen + blen) < hlen + blen) return false;
  if (!producer_enter_soon(r)) return false;
  bool whole = copy_in(r, tail, head, hlen) == hlen && copy_in(r, tail + hlen, body, blen) == blen;
  /* release: pairs with the consumer's acquire of tail; all of the record at once */
  if (whole) atomic_store_explicit(&r->tail, tail + hlen + blen, memory_order_release);
  producer_exit(r);
  return whole;
}

int ring_reserve(net_ring *r, net_span *spans, int maxspans, size_t max) {
  size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  size_t done = 0;
  int k = 0;
  if (maxspans > 0)
    max = min_size(max, producer_want(r, tail, max));
  if (maxspans <= 0 || max == 0 || !producer_enter_soon(r))
    return 0;                       /* busy stays 0: ring_commit(r, 0) is a no-op */
  while (done < max && k < maxspans) {
    size_t off = (tail + done) % CHUNK, len = min_size(max - done, CHUNK - off);
    char *c = producer_chunk(r, tail + done);
    if (!c)
      break;
    spans[k].base = c + off;
    spans[k++].len = len;
    done += len;
  }
  if (k == 0) {
    producer_exit(r);               /* nothing offered, so nothing to commit */
    return -1;                      /* there was room: the first chunk could not be had */
  }
  return k;
}

/* Returns reserved chunks that got no committed byte, so an idle ring keeps none.
 * They lie at or past tail, where the consumer never looks. */
static void producer_drop_spare(net_ring *r, size_t tail) {
  size_t end = r->head_cache + ring_cap(r);     /* reserve offered nothing past this */
  for (size_t p = (tail + CHUNK - 1) / CHUNK * CHUNK; p - tail < end - tail; p += CHUNK) {
    _Atomic(char *) *s = slot_of(r, p);
    char *c = atomic_load_explicit(s, memory_order_relaxed);
    if (!c)
      break;                        /* reserve fills slots contiguously from tail */
    atomic_store_explicit(s, NULL, memory_order_relaxed);
    chunk_drop(r, c);
  }
}

void ring_commit(net_ring *r, size_t n) {
  if (!atomic_load_explicit(&r->busy, memory_order_relaxed)) {
    assert(n == 0 && "ring_commit after an empty reserve");
    return;                         /* the reserve offered nothing */
  }
  size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed) + n;
  producer_drop_spare(r, tail);
  producer_check_grow(r, tail - n, n);
  /* release: pairs with the consumer's acquire of tail; the caller's bytes in the
   * reserved spans are visible before the new tail is */
  if (n)
    atomic_store_explicit(&r->tail, tail, memory_order_release);
  producer_exit(r);
}

bool ring_shrink(net_ring *r) {
  if (!r->slots)
    return true;
  size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  /* A run taken again costs its page faults again: it stays while a run's
   * worth of bytes passed since the last call (a stream, not a trickle). */
  size_t since = tail - r->shrink_tail;
  r->shrink_tail = tail;
  if (atomic_load_explicit(&r->run, memory_order_relaxed) && since >= nslots_of(r) * CHUNK)
    return false;
  if (!producer_enter(r))
    return false;                   /* the consumer is trimming: later */
  /* acquire: pairs with the release of head; the consumer is done with every chunk */
  bool empty = atomic_load_explicit(&r->head, memory_order_acquire) == tail;
  if (empty)
    free_slots(r);                  /* the partial chunk at tail too, if any */
  producer_exit(r);
  return empty;
}

size_t ring_free_space(net_ring *r) {
  size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  return producer_room(r, tail, SIZE_MAX);
}

/* ---- ring: consumer ------------------------------------------------------------ */

/* Readable bytes, reloading tail only when the cached view falls short of want. */
static size_t consumer_avail(net_ring *r, size_t head, size_t want) {
  size_t avail = r->tail_cache - head;
  if (avail < want) {
    /* acquire: pairs with the release of tail in ring_write/ring_commit, so the
     * bytes and chunk pointers below tail are visible */
    r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
    avail = r->tail_cache - head;
  }
  return avail;
}

static char *consumer_chunk(const net_ring *r, size_t pos) {
  return atomic_load_explicit(slot_of(r, pos), memory_order_relaxed);
}

/* Frees the partial chunk left in an empty ring (Dekker pair of producer_enter and
 * producer_exit). If the producer is busy we skip: its producer_exit sees our
 * trim_req and head and frees the chunk itself. */
static void consumer_trim(net_ring *r, size_t head) {
  /* acquire: pairs with the release of tail; a newer tail means not empty */
  r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
  if (r->tail_cache != head || head % CHUNK == 0)
    return;                         /* aligned: the chunks we read were freed already */
  /* seq_cst store then seq_cst load: pairs with producer_enter's store of busy and
   * load of trim_req; the tail re-check (acquire, pairs with the tail release)
   * catches bytes published before busy was cleared. Only then may the slot
   * table be looked at: ring_shrink frees it inside the producer's section. */
  atomic_store_explicit(&r->trim_req, 1, memory_order_seq_cst);
  if (!atomic_load_explicit(&r->busy, memory_order_seq_cst) && r->slots &&
      atomic_load_explicit(&r->tail, memory_order_acquire) == head)
    chunk_drop(r, atomic_exchange_explicit(slot_of(r, head), NULL, memory_order_acq_rel));
  /* release: a producer that reads this 0 also sees the slot we emptied */
  atomic_store_explicit(&r->trim_req, 0, memory_order_release);
}

/* Drops n bytes: frees every chunk they finish, publishes head, trims if empty. */
static void consumer_advance(net_ring *r, size_t head, size_t n) {
  size_t nhead = head + n;
  if (n == 0)
    return;
  for (size_t p = head - head % CHUNK; nhead - p >= CHUNK; p += CHUNK) {
    _Atomic(char *) *s = slot_of(r, p);
    char *c = atomic_load_explicit(s, memory_order_relaxed);
    atomic_store_explicit(s, NULL, memory_order_relaxed);  /* published by head's release */
    chunk_drop(r, c);
  }
  /* release: pairs with the producer's acquire of head (producer_room,
   * producer_trim): our reads of the dropped bytes and the NULL slots come first */
  atomic_store_explicit(&r->head, nhead, memory_order_release);
  if (nhead == r->tail_cache)
    consumer_trim(r, nhead);
}

size_t ring_read(net_ring *r, void *dst, size_t n) {
  size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  n = min_size(n, consumer_avail(r, head, n));
  for (size_t done = 0; done < n;) {
    size_t off = (head + done) % CHUNK, len = min_size(n - done, CHUNK - off);
    memcpy((char *)dst + done, consumer_chunk(r, head + done) + off, len);
    done += len;
  }
  consumer_advance(r, head, n);
  return n;
}

int ring_peek(net_ring *r, net_span *spans, int maxspans, size_t max) {
  size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  size_t done = 0;
  int k = 0;
  if (maxspans <= 0)
    return 0;
  max = min_size(max, consumer_avail(r, head, max));
  while (done < max) {
    size_t off = (head + done) % CHUNK, len = min_size(max - done, CHUNK - off);
    char *at = consumer_chunk(r, head + done) + off;
    if (k && spans[k - 1].base + spans[k - 1].len == at)
      spans[k - 1].len += len;      /* the next chunk of a run: one piece */
    else if (k < maxspans)
      spans[k].base = at, spans[k++].len = len;
    else
      break;
    done += len;
  }
  return k;
}

void ring_consume(net_ring *r, size_t n) {
  size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  size_t avail = consumer_avail(r, head, n);
  assert(n <= avail && "ring_consume past the readable bytes");
  consumer_advance(r, head, min_size(n, avail));
}

size_t ring_consume_upto(net_ring *r, size_t n) {
  size_t used = ring_used(r);
  if (n > used) n = used;
  if (n) ring_consume(r, n);
  return n;
}

size_t ring_spans_len(const net_span *spans, int k) {
  size_t n = 0;
  for (int i = 0; i < k; i++) n += spans[i].len;
  return n;
}

size_t ring_consumed(net_ring *r) { return atomic_load_explicit(&r->head, memory_order_relaxed); }

size_t ring_used(net_ring *r) {
  /* head first (acquire, pairs with its release): the tail loaded after it is at
   * least as new as the tail the consumer saw, so the difference never underflows */
  size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
  return atomic_load_explicit(&r->tail, memory_order_acquire) - head;
}

size_t ring_memory(net_ring *r) {
  size_t n = 0;
  /* acquire: pairs with the first tail release, which follows the slot-table
   * allocation; while tail is 0 the ring holds chunks only inside a producer call */
  if (!atomic_load_explicit(&r->tail, memory_order_acquire) || !r->slots)
    return 0;
  if (atomic_load_explicit(&r->run, memory_order_relaxed))
    return nslots_of(r) * CHUNK;    /* held whole while the ring has it */
  for (size_t i = 0, k = nslots_of(r); i < k; i++)
    n += atomic_load_explicit(&r->slots[i], memory_order_relaxed) != NULL;
  return n * CHUNK;
}

size_t ring_copy(net_ring *r, size_t off, void *dst, size_t n) {
  size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  size_t avail = consumer_avail(r, head, off + n);
  if (off >= avail) return 0;
  n = min_size(n, avail - off);
  for (size_t done = 0; done < n;) {
    size_t pos = head + off + done, at = pos % CHUNK, len = min_size(n - done, CHUNK - at);
    memcpy((char *)dst + done, consumer_chunk(r, pos) + at, len);
    done += len;
  }
  return n;
}

/* A needle that straddles the chunk boundary at pos: the last nlen-1 bytes
 * before it and the first nlen-1 after it, searched as one piece. */
static long find_across(net_ring *r, size_t head, const char *needle, size_t nlen, size_t pos,
                        size_t lo, size_t hi) {
  char stitch[2 * NET_FIND_MAX];
  size_t a = pos - lo < nlen - 1 ? pos - lo : nlen - 1;
  size_t b = hi - pos < nlen - 1 ? hi - pos : nlen - 1;
  if (a == 0 || a + b < nlen) return -1;
  size_t n = ring_copy(r, pos - a - head, stitch, a + b);
  const char *hit = net__os_memmem(stitch, n, needle, nlen);
  return hit ? (long)(pos - a - head + (size_t)(hit - stitch)) : -1;
}

long ring_find(net_ring *r, const void *needle, size_t nlen, size_t from, size_t limit) {
  size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  size_t end = min_size(limit, consumer_avail(r, head, limit));
  /* checked before adding to head: a huge from would wrap below it */
  if (nlen == 0 || nlen > NET_FIND_MAX || from >= end || end - from < nlen) return -1;
  size_t lo = head + from, hi = head + end;
  for (size_t pos = lo; pos < hi;) {
    size_t at = pos % CHUNK, len = min_size(hi - pos, CHUNK - at);
    const char *base = consumer_chunk(r, pos) + at;
    const char *hit = net__os_memmem(base, len, needle, nlen);
    if (hit) return (long)(pos - head + (size_t)(hit - base));
    pos += len;
    if (pos < hi && nlen > 1) {   /* matches that start in this piece and end in the next */
      long k = find_across(r, head, needle, nlen, pos, lo, hi);
      if (k >= 0) return k;
    }
  }
  return -1;
}
