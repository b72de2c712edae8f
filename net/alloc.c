/* alloc.c: the engine's allocation wrappers: a byte count of what the module
 * holds, and a test switch that makes allocations fail. Any thread. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "net.h"
#include "os.h"

#define ALIGN 64

static atomic_size_t used;
/* Bytes of aligned blocks (ring chunks, connections) freed since the heap
 * last gave its free pages back; and of every block, by this thread, since
 * it last asked for that (no shared counter on the path of every free). */
static atomic_size_t freed;
static _Thread_local size_t freed_here;
static void (*_Atomic on_burst)(void);
#define BURST_BYTES NET_MEM_BURST
/* Fault injection: allocations to let through before failing (-1: never),
 * then how many to fail in a row. */
static atomic_long pass_left = -1, fail_left;

static void *counted(void *p) {
  if (p) atomic_fetch_add_explicit(&used, net__os_block_size(p), memory_order_relaxed);
  return p;
}

/* Aligned blocks are sized by their own function: not every system's
 * malloc can size them (Windows). */
static void *counted_aligned(void *p) {
  if (p) atomic_fetch_add_explicit(&used, net__os_aligned_size(p), memory_order_relaxed);
  return p;
}

static bool should_fail(void) {
  if (atomic_load_explicit(&pass_left, memory_order_relaxed) < 0) return 0;
  if (atomic_fetch_sub(&pass_left, 1) > 0) return 0;
  atomic_store(&pass_left, 0);
  long f = atomic_fetch_sub(&fail_left, 1);
  if (f > 0) return 1;
  atomic_store(&pass_left, -1);   /* the burst is over */
  return 0;
}

void net_debug_fail_allocs(long after, long count) {
  atomic_store(&fail_left, count);
  atomic_store(&pass_left, count > 0 ? after : -1);
}

void *net__malloc(size_t n) { return should_fail() ? NULL : counted(malloc(n ? n : 1)); }

void *net__calloc(size_t n, size_t size) {
  return should_fail() ? NULL : counted(calloc(n ? n : 1, size ? size : 1));
}

void *net__realloc(void *p, size_t n) {
  if (should_fail()) return NULL;
  size_t before = net__os_block_size(p);
  void *q = realloc(p, n ? n : 1);
  if (!q) return NULL;
  atomic_fetch_sub_explicit(&used, before, memory_order_relaxed);
  return counted(q);
}

char *net__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = net__malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

void net__free(void *p) {
  if (!p) return;
  size_t n = net__os_block_size(p);
  atomic_fetch_sub_explicit(&used, n, memory_order_relaxed);
  freed_here += n;
  free(p);
}

void net__wipe(void *p, size_t n) {
  volatile unsigned char *v = p;   /* volatile: the wipe of memory about to go is not optimized out */
  while (n--) *v++ = 0;
}

void net__free_secret(void *p, size_t n) {
  if (!p) return;
  net__wipe(p, n);
  net__free(p);
}

void net__free_secret_str(char *s) {
  if (s) net__free_secret(s, strlen(s));
}

void *net__aligned(size_t n) {
  return should_fail() ? NULL : counted_aligned(net__os_aligned_alloc(ALIGN, n));
}

/* Connections (and ring chunks, where they are malloc's: pages.c) come and
 * go here in bursts (10,000 connections at once), and the heap keeps the
 * pages they freed: past BURST_BYTES the owner of the heap is told, once. */
void net__free_aligned(void *p) {
  if (!p) return;
  size_t n = net__os_aligned_size(p);
  atomic_fetch_sub_explicit(&used, n, memory_order_relaxed);
  net__os_aligned_free(p);
  freed_here += n;
  size_t before = atomic_fetch_add_explicit(&freed, n, memory_order_relaxed);
  if (before < BURST_BYTES && before + n >= BURST_BYTES) net__mem_burst();
}

void net__mem_on_burst(void (*fn)(void)) { atomic_store(&on_burst, fn); }

void net__mem_burst(void) {
  void (*fn)(void) = atomic_load_explicit(&on_burst, memory_order_relaxed);
  if (fn) fn();
}

bool net__alloc_fails(void) { return should_fail(); }

void net__mem_counted(ptrdiff_t delta) {
  atomic_fetch_add_explicit(&used, (size_t)delta, memory_order_relaxed);   /* wraps: adds a negative */
}

/* Small blocks freed in bulk (each connection's tables and buffers after
 * traffic) leave pages too, but a walk of the heap holds up every thread
 * that allocates: for those, only once the engine is quiet. */
net_mem_due net__mem_release_due(void) {
  if (atomic_load_explicit(&freed, memory_order_relaxed) >= BURST_BYTES) return NET_MEM_DUE_NOW;
  return freed_here >= BURST_BYTES ? NET_MEM_DUE_QUIET : NET_MEM_DUE_NONE;
}

bool net__mem_release_heap(bool quiet) {
  if (atomic_load_explicit(&freed, memory_order_relaxed) < BURST_BYTES && !(quiet && freed_here >= BURST_BYTES))
    return false;
  freed_here = 0;
  return true;
}

/* The heap's size is read by walking it (mallinfo: milliseconds when it
 * is fragmented), as the trim does, holding its lock: both run on the
 * engine's one trim thread, one after the other. Owners get the last
 * sample. */
static atomic_size_t heap_seen;
static _Atomic uint64_t heap_at;   /* ms of heap_seen; 0: none yet */

void net__mem_release(bool heap) {
  if (!heap && atomic_load_explicit(&freed, memory_order_relaxed) < BURST_BYTES) return;
  atomic_store_explicit(&freed, 0, memory_order_relaxed);   /* frees from here on count again */
  net__os_release_memory();
}

void net__mem_sample_heap(void) {
  atomic_store_explicit(&heap_seen, net__os_process_heap(), memory_order_relaxed);
  atomic_store(&heap_at, net__now_ms());
}

size_t net__mem_process_heap(uint64_t *age_ms) {
  uint64_t at = atomic_load(&heap_at), now = net__now_ms();
  *age_ms = !at ? UINT64_MAX : now > at ? now - at : 0;
  return atomic_load_explicit(&heap_seen, memory_order_relaxed);
}

size_t net__mem_used(void) { return atomic_load_explicit(&used, memory_order_relaxed); }
