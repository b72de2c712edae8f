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
/* Fault injection: allocations to let through before failing (-1: never),
 * then how many to fail in a row. */
static atomic_long pass_left = -1, fail_left;

static void *counted(void *p) {
  if (p) atomic_fetch_add_explicit(&used, net__os_block_size(p), memory_order_relaxed);
  return p;
}

static void uncount(void *p) {
  if (p) atomic_fetch_sub_explicit(&used, net__os_block_size(p), memory_order_relaxed);
}

/* Aligned blocks are sized by their own function: not every system's
 * malloc can size them (Windows). */
static void *counted_aligned(void *p) {
  if (p) atomic_fetch_add_explicit(&used, net__os_aligned_size(p), memory_order_relaxed);
  return p;
}

static int should_fail(void) {
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
  uncount(p);
  free(p);
}

void *net__aligned(size_t n) {
  return should_fail() ? NULL : counted_aligned(net__os_aligned_alloc(ALIGN, n));
}

void net__free_aligned(void *p) {
  if (p) atomic_fetch_sub_explicit(&used, net__os_aligned_size(p), memory_order_relaxed);
  net__os_aligned_free(p);
}

size_t net__mem_used(void) { return atomic_load_explicit(&used, memory_order_relaxed); }
