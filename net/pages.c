/* pages.c: ring chunks in pages of the engine's own, outside malloc's heap.
 * The heap keeps the pages of freed blocks until a trim walks it, and the
 * walk holds each arena's lock: the host's allocations, in the middle of a
 * frame, wait behind it (up to milliseconds while a bulk transfer churns
 * chunks). So chunks come from one range of address space reserved at the
 * first, committed 2 MiB at a time. A chunk freed past the pool's cache
 * (ring.c) goes on the dirty stack; the trim's thread takes that stack
 * whole, gives the pages back a run of neighbours at a time, and moves them
 * to the clean stack, holding no lock anyone else takes. Rings that grew
 * take their chunks side by side, as runs (below). Under ASan chunks stay
 * malloc's, whose red zones catch overruns between them. Any thread. */
#include <stdlib.h>

#include "alloc.h"
#include "os.h"
#include "ring.h"

#define CHUNK ((size_t)NET_CHUNK_SIZE)
#define SLAB_CHUNKS 128u   /* committed together: 2 MiB */
#define NONE UINT32_MAX

#if defined(__SANITIZE_ADDRESS__)
#define OWN_PAGES 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OWN_PAGES 0
#endif
#endif
#ifndef OWN_PAGES
#define OWN_PAGES (SIZE_MAX > 0xffffffffu)   /* 32-bit address space is too short to reserve */
#endif

#if OWN_PAGES
#define RANGE ((size_t)64 << 30)
#define RUNS_AT (RANGE / 2)   /* chunks below, runs above */
#define SLABS (RUNS_AT / CHUNK / SLAB_CHUNKS)

/* The links of a slab's chunks while they wait on a stack: index + 1 of
 * the next one down, 0 at the bottom. Atomic: a pop may read a link that
 * a racing pop's owner rewrites; the head's tag then fails its swap. */
typedef struct slab {
  _Atomic uint32_t next[SLAB_CHUNKS];
} slab;

/* head: index + 1 of the top chunk in the low half (0: empty), a count of
 * swaps in the high half, so a chunk popped and pushed back between a
 * pop's read and its swap does not pass for the same head (ABA). */
typedef struct stack {
  _Atomic uint64_t head;
  atomic_size_t n;
} stack;

static char *base;                  /* NULL: chunks are malloc's */
static slab *_Atomic slabs[SLABS];
static stack dirty, clean;
static net_mutex *carve_mx;
static uint32_t carved, committed;  /* chunks, under carve_mx */
static atomic_int once;

static bool reserve(void *unused) {
  (void)unused;
  if (!(carve_mx = net__mutex_new())) return true;   /* no store, for good: chunks are malloc's */
  base = net__os_pages_reserve(RANGE);
  return true;
}

static bool own_pages(void) { return net__once(&once, reserve, NULL) && base; }

static _Atomic uint32_t *link_of(uint32_t i) {
  return &atomic_load_explicit(&slabs[i / SLAB_CHUNKS], memory_order_acquire)->next[i % SLAB_CHUNKS];
}

static char *at(uint32_t i) { return base + (size_t)i * CHUNK; }

/* The link below t (index + 1, as on the stack). */
static uint32_t below_of(uint32_t t) { return atomic_load_explicit(link_of(t - 1), memory_order_relaxed); }

static uint64_t head_of(uint64_t old, uint32_t top) { return ((old >> 32) + 1) << 32 | top; }

/* Pushes the chain first..last (linked already), n chunks. */
static size_t push(stack *s, uint32_t first, uint32_t last, size_t n) {
  /* counted before they can be popped, so a racing pop never takes n below 0 */
  size_t before = atomic_fetch_add_explicit(&s->n, n, memory_order_relaxed);
  uint64_t h = atomic_load_explicit(&s->head, memory_order_relaxed);
  do atomic_store_explicit(link_of(last), (uint32_t)h, memory_order_relaxed);
  /* release: the link and the chunk's last writes reach the popper */
  while (!atomic_compare_exchange_weak_explicit(&s->head, &h, head_of(h, first + 1), memory_order_release,
                                                memory_order_relaxed));
  return before;
}

static uint32_t pop(stack *s) {
  uint64_t h = atomic_load_explicit(&s->head, memory_order_acquire);
  for (;;) {
    uint32_t top = (uint32_t)h;
    if (!top) return NONE;
    uint32_t below = below_of(top);
    if (atomic_compare_exchange_weak_explicit(&s->head, &h, head_of(h, below), memory_order_acquire,
                                              memory_order_acquire)) {
      atomic_fetch_sub_explicit(&s->n, 1, memory_order_relaxed);
      return top - 1;
    }
  }
}

/* The whole stack, as index + 1 of its top (0: empty); its chunks are the
 * caller's, and so are their links. */
static uint32_t take_all(stack *s) {
  uint64_t h = atomic_load_explicit(&s->head, memory_order_acquire);
  while ((uint32_t)h &&
         !atomic_compare_exchange_weak_explicit(&s->head, &h, head_of(h, 0), memory_order_acquire,
                                                memory_order_acquire));
  return (uint32_t)h;
}

/* A chunk never handed out before, committing a slab when the last is used
 * up; NONE when the range is, or the system has no memory to commit. */
static uint32_t carve(void) {
  uint32_t i = NONE;
  net__mutex_lock(carve_mx);
  if (carved == committed && committed < RUNS_AT / CHUNK) {
    slab *s = net__calloc(1, sizeof *s);
    if (s && net__os_pages_commit(at(committed), SLAB_CHUNKS * CHUNK)) {
      atomic_store_explicit(&slabs[committed / SLAB_CHUNKS], s, memory_order_release);
      committed += SLAB_CHUNKS;
    } else {
      net__free(s);
    }
  }
  if (carved < committed) i = carved++;
  net__mutex_unlock(carve_mx);
  return i;
}

/* Dirty chunks first: their pages are still there. */
static uint32_t get_index(void) {
  uint32_t i = pop(&dirty);
  if (i != NONE) return i;
  i = pop(&clean);
  if (i == NONE) return carve();
  if (NET_OS_PAGES_RECOMMIT && !net__os_pages_commit(at(i), CHUNK)) {
    push(&clean, i, i, 1);
    return NONE;
  }
  return i;
}

void *net__chunk_get(void) {
  if (!own_pages()) return net__aligned(CHUNK);
  if (net__alloc_fails()) return NULL;
  uint32_t i = get_index();
  if (i == NONE) return NULL;
  net__mem_counted((ptrdiff_t)CHUNK);
  return at(i);
}

void net__chunk_put(void *p) {
  if (!p) return;
  if (!own_pages()) {
    net__free_aligned(p);
    return;
  }
  uint32_t i = (uint32_t)(((char *)p - base) / CHUNK);
  net__mem_counted(-(ptrdiff_t)CHUNK);
  size_t before = push(&dirty, i, i, 1);
  if (before < NET_MEM_BURST / CHUNK && before + 1 >= NET_MEM_BURST / CHUNK) net__mem_burst();
}

static atomic_size_t runs_dirty;   /* bytes of freed runs whose pages are still there */

size_t net__chunk_dirty(void) {
  if (!own_pages()) return 0;
  return atomic_load_explicit(&dirty.n, memory_order_relaxed) * CHUNK +
         atomic_load_explicit(&runs_dirty, memory_order_relaxed);
}

uint64_t net__chunk_dirty_head(void) { return own_pages() ? atomic_load(&dirty.head) : 0; }

bool net__chunk_own_pages(void) { return own_pages(); }

static int by_index(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Gives back the pages of n chunks listed in order, a run of neighbours
 * per call, and links them in that order. */
static void release_sorted(const uint32_t *list, size_t n) {
  size_t run = 0;
  for (size_t k = 1; k <= n; k++) {
    if (k < n && list[k] == list[k - 1] + 1) continue;
    net__os_pages_release(at(list[run]), (size_t)(list[k - 1] - list[run] + 1) * CHUNK);
    run = k;
  }
  for (size_t k = 0; k < n; k++)
    atomic_store_explicit(link_of(list[k]), k + 1 < n ? list[k + 1] + 1 : 0, memory_order_relaxed);
}

static size_t release_runs(void);

size_t net__chunk_release(void) {
  if (!own_pages()) return 0;
  size_t runs_n = release_runs();
  uint32_t top = take_all(&dirty), last = NONE;
  size_t n = 0;
  for (uint32_t t = top; t; t = below_of(t)) n++, last = t - 1;
  if (!n) return runs_n;
  atomic_fetch_sub_explicit(&dirty.n, n, memory_order_relaxed);
  uint32_t *list = malloc(n * sizeof *list);   /* not counted: gone before the call returns */
  if (list) {
    size_t k = 0;
    for (uint32_t t = top; t; t = below_of(t)) list[k++] = t - 1;
    qsort(list, n, sizeof *list, by_index);
    release_sorted(list, n);
    push(&clean, list[0], list[n - 1], n);
    free(list);
  } else {   /* one call each, in the stack's order */
    for (uint32_t t = top; t; t = below_of(t))
      net__os_pages_release(at(t - 1), CHUNK);
    push(&clean, top - 1, last, n);
  }
  return runs_n + n * CHUNK;
}

/* ---- runs: a ring's chunks side by side ---------------------------------------
 * A ring that grew (a frame loop draining a bulk stream) takes its chunks as
 * one run, so a large read finds its bytes in one piece and copies them once
 * (ring.c). Runs are few and long-lived: a list under carve_mx, each carved
 * once above RUNS_AT. A freed run keeps its pages until the trim's thread
 * gives them back (without the lock held), and the next ring of its size
 * takes it first. */
typedef struct run {
  char *p;
  size_t n;
  bool used, dirty;
  struct run *next;
} run;

static run *runs;        /* every run carved, under carve_mx */
static atomic_size_t runs_used;   /* bytes of runs rings hold */
static size_t run_top;   /* bytes carved above RUNS_AT, under carve_mx */

/* A free run of n bytes, one whose pages are still there first. */
static run *free_run(size_t n) {
  run *clean_one = NULL;
  for (run *r = runs; r; r = r->next) {
    if (r->used || r->n != n) continue;
    if (r->dirty) return r;
    if (!clean_one) clean_one = r;
  }
  if (clean_one && NET_OS_PAGES_RECOMMIT && !net__os_pages_commit(clean_one->p, n)) return NULL;
  return clean_one;
}

/* Runs start on a large page's boundary and ask for large pages: a ring
 * writes its run through whole, and where a small page's first touch costs
 * microseconds (seen: 9.6 µs in a virtual machine) a new 64 MiB run took a
 * stream 160 ms to fault in, 3 ms in 2 MiB pages. */
#define RUN_ALIGN ((size_t)2 << 20)

static run *carve_run(size_t n) {
  char *top = base + RUNS_AT + run_top;
  size_t skip = (RUN_ALIGN - (uintptr_t)top % RUN_ALIGN) % RUN_ALIGN;
  if (skip > RANGE - RUNS_AT - run_top || n > RANGE - RUNS_AT - run_top - skip) return NULL;
  char *p = top + skip;
  run *r = net__calloc(1, sizeof *r);
  if (!r || !net__os_pages_commit(p, n)) {
    net__free(r);
    return NULL;
  }
  net__os_pages_large(p, n);
  *r = (run){.p = p, .n = n, .next = runs};
  runs = r;
  run_top += skip + n;
  return r;
}

void *net__run_get(size_t n) {
  if (!n || n % CHUNK || !own_pages() || net__alloc_fails()) return NULL;
  net__mutex_lock(carve_mx);
  run *r = free_run(n);
  if (!r) r = carve_run(n);
  if (r && r->dirty) atomic_fetch_sub_explicit(&runs_dirty, n, memory_order_relaxed);
  if (r) r->used = true, r->dirty = false;
  net__mutex_unlock(carve_mx);
  if (!r) return NULL;
  net__mem_counted((ptrdiff_t)n);
  atomic_fetch_add_explicit(&runs_used, n, memory_order_relaxed);
  return r->p;
}

void net__run_put(void *p) {
  if (!p) return;
  net__mutex_lock(carve_mx);
  run *r = runs;
  while (r && r->p != p) r = r->next;
  if (r) {   /* counted before the trim can see it dirty and count it off */
    atomic_fetch_add_explicit(&runs_dirty, r->n, memory_order_relaxed);
    r->used = false, r->dirty = true;
  }
  net__mutex_unlock(carve_mx);
  if (!r) return;
  net__mem_counted(-(ptrdiff_t)r->n);   /* n never changes: read without the lock */
  atomic_fetch_sub_explicit(&runs_used, r->n, memory_order_relaxed);
  size_t now = net__chunk_dirty();
  if (now >= NET_MEM_BURST && now - r->n < NET_MEM_BURST) net__mem_burst();
}

size_t net__run_bytes(void) { return atomic_load_explicit(&runs_used, memory_order_relaxed); }

/* Gives back the pages of every freed run, one at a time, marked used
 * meanwhile so that no ring takes it. */
static size_t release_runs(void) {
  size_t total = 0;
  for (;;) {
    net__mutex_lock(carve_mx);
    run *r = runs;
    while (r && (r->used || !r->dirty)) r = r->next;
    if (r) r->used = true;
    net__mutex_unlock(carve_mx);
    if (!r) return total;
    net__os_pages_release(r->p, r->n);
    atomic_fetch_sub_explicit(&runs_dirty, r->n, memory_order_relaxed);
    total += r->n;
    net__mutex_lock(carve_mx);
    r->used = r->dirty = false;
    net__mutex_unlock(carve_mx);
  }
}
#else
void *net__chunk_get(void) { return net__aligned(CHUNK); }
void net__chunk_put(void *p) { net__free_aligned(p); }
size_t net__chunk_dirty(void) { return 0; }
uint64_t net__chunk_dirty_head(void) { return 0; }
bool net__chunk_own_pages(void) { return false; }
size_t net__chunk_release(void) { return 0; }
void *net__run_get(size_t n) {
  (void)n;
  return NULL;
}
void net__run_put(void *p) { (void)p; }
size_t net__run_bytes(void) { return 0; }
#endif
