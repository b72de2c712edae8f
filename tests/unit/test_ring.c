/* test_ring.c: unit tests for net/ring.c (model-based, empty-ring trim, two-thread
 * stress, chunk pool) and net/pages.c (the chunks' own pages); prints TAP. RING_STRESS_MB sets the stress volume (default 1024). */
#include "ring.h"
#include "alloc.h"
#include "os.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tap.h"

#define CHUNK ((size_t)NET_CHUNK_SIZE)
#define MAXSPANS 4

/* ---- setup -------------------------------------------------------------------- */

static size_t env_size(const char *name, size_t dflt) {
  const char *v = getenv(name);
  return v && *v ? (size_t)strtoull(v, NULL, 10) : dflt;
}

static double now_s(void) { return (double)net__now_ns() * 1e-9; }

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* ---- random numbers and a byte stream ------------------------------------------ */
static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t xorshift(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* An endless xorshift byte stream; any split of fill calls yields the same bytes. */
typedef struct stream {
  uint64_t x;
  unsigned char buf[8];
  unsigned used;                    /* bytes of buf already handed out */
} stream;

static void stream_init(stream *g, uint64_t seed) {
  g->x = seed | 1;
  g->used = 8;
}

static void stream_fill(stream *g, unsigned char *dst, size_t n) {
  while (n && g->used < 8) {
    *dst++ = g->buf[g->used++];
    n--;
  }
  for (; n >= 8; dst += 8, n -= 8) {
    uint64_t w = xorshift(&g->x);
    memcpy(dst, &w, 8);
  }
  if (n) {
    uint64_t w = xorshift(&g->x);
    memcpy(g->buf, &w, 8);
    memcpy(dst, g->buf, n);
    g->used = (unsigned)n;
  }
}

/* A streaming 64-bit checksum, word at a time, independent of how input is split. */
typedef struct hasher {
  uint64_t h, len;
  unsigned char buf[8];
  unsigned fill;
} hasher;

static void hash_word(hasher *s, uint64_t w) {
  s->h = (s->h ^ w) * 0x9E3779B97F4A7C15ull;
  s->h ^= s->h >> 29;
}

static void hash_feed(hasher *s, const unsigned char *p, size_t n) {
  uint64_t w;
  s->len += n;
  while (n && s->fill) {
    s->buf[s->fill++] = *p++;
    n--;
    if (s->fill == 8) {
      memcpy(&w, s->buf, 8);
      hash_word(s, w);
      s->fill = 0;
    }
  }
  for (; n >= 8; p += 8, n -= 8) {
    memcpy(&w, p, 8);
    hash_word(s, w);
  }
  while (n--)
    s->buf[s->fill++] = *p++;
}

static uint64_t hash_final(const hasher *s) {
  hasher t = *s;
  for (unsigned i = 0; i < s->fill; i++)
    hash_word(&t, s->buf[i]);
  hash_word(&t, s->len);
  return t.h;
}

static size_t span_total(const net_span *sp, int k) {
  size_t n = 0;
  for (int i = 0; i < k; i++)
    n += sp[i].len;
  return n;
}

/* What reserve/peek must offer from position pos: chunk-bounded spans over
 * min(max, avail) bytes, at most maxspans of them. */
static size_t expected_offer(size_t pos, size_t avail, int maxspans, int *nspans) {
  size_t left = avail, off = pos % CHUNK, total = 0;
  int k = 0;
  while (left && k < maxspans) {
    size_t len = min_size(left, CHUNK - off);
    total += len;
    left -= len;
    off = 0;
    k++;
  }
  *nspans = k;
  return total;
}

/* ---- 1. model-based single-thread test ----------------------------------------- */
typedef struct model {               /* reference FIFO: circular buffer of cap bytes */
  unsigned char *buf;
  size_t cap, head, tail;            /* free-running, like the ring */
  size_t rcap, max;                  /* the ring's cap now, and how far it may grow */
  bool stalled;                      /* a producing call wanted more than the room */
} model;

/* A ring that stalled its producer and was read empty since doubles its cap. */
static void model_grow(model *m) {
  if (m->stalled && m->head == m->tail && m->rcap < m->max) {
    m->rcap = min_size(2 * m->rcap, m->max);
    m->stalled = false;
  }
}

/* The room a producing call finds (growing first); wanting more stalls it. */
static size_t model_free(model *m) {
  model_grow(m);
  return m->rcap - (m->tail - m->head);
}

static void model_want(model *m, size_t want, size_t free) {
  if (want > free)
    m->stalled = true;
}

static void model_push(model *m, const unsigned char *p, size_t n) {
  size_t at = m->tail % m->cap, first = min_size(n, m->cap - at);
  memcpy(m->buf + at, p, first);
  memcpy(m->buf, p + first, n - first);
  m->tail += n;
}

/* Compares p with the n queued bytes starting i bytes past head; returns the index
 * of the first difference, or n. */
static size_t model_cmp(const model *m, size_t i, const unsigned char *p, size_t n) {
  for (size_t done = 0; done < n;) {
    size_t at = (m->head + i + done) % m->cap, len = min_size(n - done, m->cap - at);
    if (memcmp(m->buf + at, p + done, len))
      for (size_t j = 0;; j++)
        if (m->buf[at + j] != p[done + j])
          return done + j;
    done += len;
  }
  return n;
}

static void fill_random(uint64_t *rng, unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t w = splitmix(rng);
    memcpy(p + i, &w, min_size(8, n - i));
  }
}

/* Sizes 0..3 chunks, biased to the chunk boundary seen from pos and to "all". */
static size_t pick_size(uint64_t *rng, size_t pos, size_t all) {
  uint64_t x = splitmix(rng);
  size_t d = (size_t)(x >> 8) % 5;
  switch (x % 8) {
  case 0: return (size_t)(x >> 8) % 65;
  case 1: return CHUNK - pos % CHUNK + d >= 2 ? CHUNK - pos % CHUNK + d - 2 : 0;
  case 2: return (1 + d % 3) * CHUNK + d % 3 - 1;
  case 3: return all;
  case 4: return all + d;
  default: return (size_t)(x >> 8) % (3 * CHUNK + 1);
  }
}

/* How many bytes to commit or consume out of offered: 0, all, or in between. */
static size_t pick_take(uint64_t *rng, size_t offered) {
  uint64_t x = splitmix(rng);
  if (x % 5 == 0)
    return 0;
  if (x % 5 < 3)
    return offered;
  return (size_t)(x >> 8) % (offered + 1);
}

typedef struct model_ctx {
  net_ring *r;
  model *m;
  uint64_t *rng;
  unsigned char *tmp;
} model_ctx;

static bool op_write(model_ctx *c) {
  size_t free = model_free(c->m);
  size_t n = pick_size(c->rng, c->m->tail, free);
  model_want(c->m, n, free);
  fill_random(c->rng, c->tmp, n);
  size_t got = ring_write(c->r, c->tmp, n);
  CHECK(got == min_size(n, free), "write %zu with %zu free took %zu", n, free, got);
  model_push(c->m, c->tmp, got);
  return true;
}

/* A record in two parts: all of it when it fits, else nothing. */
static bool op_write_record(model_ctx *c) {
  size_t free = model_free(c->m);
  size_t n = pick_size(c->rng, c->m->tail, free), split = n ? (size_t)(splitmix(c->rng) % (n + 1)) : 0;
  model_want(c->m, n, free);
  fill_random(c->rng, c->tmp, n);
  bool whole = ring_write_record(c->r, c->tmp, split, c->tmp + split, n - split);
  CHECK(whole == (n <= free), "record of %zu with %zu free: %s", n, free, whole ? "written" : "refused");
  if (whole) model_push(c->m, c->tmp, n);
  return true;
}

static bool op_reserve(model_ctx *c) {
  size_t used = c->m->tail - c->m->head, free = model_free(c->m);
  size_t max = pick_size(c->rng, c->m->tail, free);
  int maxspans = 1 + (int)(splitmix(c->rng) % MAXSPANS), want;
  model_want(c->m, max, free);
  net_span sp[MAXSPANS];
  int k = ring_reserve(c->r, sp, maxspans, max);
  size_t offered = span_total(sp, k);
  size_t expect = expected_offer(c->m->tail, min_size(max, free), maxspans, &want);
  CHECK(k == want && offered == expect, "reserve max %zu free %zu: %d spans/%zu bytes, "
        "expected %d/%zu", max, free, k, offered, want, expect);
  size_t take = pick_take(c->rng, offered), done = 0;
  fill_random(c->rng, c->tmp, offered);
  for (int i = 0; i < k; i++) {      /* junk past take must not reach the reader */
    CHECK(sp[i].len <= CHUNK, "span %d longer than a chunk", i);
    memcpy(sp[i].base, c->tmp + done, sp[i].len);
    done += sp[i].len;
  }
  ring_commit(c->r, take);
  if (k > 0 && used == 0)
    model_grow(c->m);                /* the commit found the ring read empty */
  model_push(c->m, c->tmp, take);
  return true;
}

/* Producer: an empty ring gives its table back; a ring holding bytes keeps it. */
static bool op_shrink(model_ctx *c) {
  size_t used = c->m->tail - c->m->head;
  /* a ring on a run keeps it while a run's worth of bytes came since the last call */
  bool keep = c->r->run && c->m->tail - c->r->shrink_tail >= (ring_cap(c->r) / CHUNK + 1) * CHUNK;
  bool empty = ring_shrink(c->r);
  CHECK(empty == (used == 0 && !keep), "shrink with %zu used (a run kept: %d) said %s", used, keep,
        empty ? "empty" : "not empty");
  if (keep && !used) CHECK(ring_shrink(c->r), "a run kept twice without bytes in between");
  CHECK(!empty || (c->r->slots == NULL && ring_memory(c->r) == 0), "shrunk ring kept memory");
  return true;
}

static bool op_read(model_ctx *c) {
  size_t used = c->m->tail - c->m->head;
  size_t n = pick_size(c->rng, c->m->head, used);
  size_t got = ring_read(c->r, c->tmp, n);
  CHECK(got == min_size(n, used), "read %zu with %zu used got %zu", n, used, got);
  size_t bad = model_cmp(c->m, 0, c->tmp, got);
  CHECK(bad == got, "read byte %zu of %zu differs", bad, got);
  c->m->head += got;
  return true;
}

static bool op_peek(model_ctx *c) {
  size_t used = c->m->tail - c->m->head;
  size_t max = pick_size(c->rng, c->m->head, used);
  int maxspans = 1 + (int)(splitmix(c->rng) % MAXSPANS), want;
  net_span sp[MAXSPANS];
  int k = ring_peek(c->r, sp, maxspans, max);
  size_t seen = span_total(sp, k), at = 0, all = min_size(max, used);
  /* chunks side by side (a run, or neighbours from the pages) make one span,
   * so more may fit in maxspans than one span per chunk */
  size_t expect = expected_offer(c->m->head, all, maxspans, &want);
  CHECK(k <= maxspans && seen >= expect && seen <= all && (seen == all || k == maxspans),
        "peek max %zu used %zu: %d spans/%zu bytes, expected %d/%zu or more", max, used, k, seen, want, expect);
  for (int i = 0; i < k; at += sp[i++].len) {
    size_t bad = model_cmp(c->m, at, (unsigned char *)sp[i].base, sp[i].len);
    CHECK(bad == sp[i].len, "peek byte %zu differs", at + bad);
    CHECK(i == 0 || ((c->m->head + at) % CHUNK == 0 && sp[i - 1].base + sp[i - 1].len != sp[i].base),
          "peek span %d starts inside a chunk, or where the one before ends", i);
  }
  size_t take = pick_take(c->rng, seen);
  ring_consume(c->r, take);
  c->m->head += take;
  return true;
}

/* Chunks that hold unread bytes: exactly what the ring may keep between calls. */
static size_t expected_memory(const model *m) {
  if (m->head == m->tail)
    return 0;
  return ((m->tail - 1) / CHUNK - m->head / CHUNK + 1) * CHUNK;
}

static size_t ring_memory_of_run(const net_ring *r) { return (ring_cap(r) / CHUNK + 1) * CHUNK; }

static bool model_check(model_ctx *c) {
  size_t used = c->m->tail - c->m->head, mem = ring_memory(c->r);
  CHECK(ring_used(c->r) == used, "ring_used %zu, model %zu", ring_used(c->r), used);
  CHECK(ring_cap(c->r) == c->m->rcap, "cap %zu, expected %zu", ring_cap(c->r), c->m->rcap);
  CHECK(ring_free_space(c->r) == c->m->rcap - used, "free %zu, expected %zu",
        ring_free_space(c->r), c->m->rcap - used);
  CHECK(mem <= c->r->cap + CHUNK, "memory %zu over cap %zu + chunk", mem, c->r->cap);
  /* a ring that grew holds its run whole (own pages), others only chunks with unread bytes */
  size_t want = c->r->run && c->r->slots && c->m->tail ? ring_memory_of_run(c->r) : expected_memory(c->m);
  CHECK(!c->r->run || c->m->rcap > c->r->base, "a ring that never grew took a run");
  CHECK(mem == want, "memory %zu, expected %zu (used %zu)", mem, want, used);
  return true;
}

static bool model_run(size_t cap, size_t max, uint64_t seed, size_t ops, unsigned char *tmp) {
  net_ring r;
  model m = { malloc(max), max, 0, 0, cap, max, false };
  uint64_t rng = seed, bias = 50;
  model_ctx c = { &r, &m, &rng, tmp };
  bool ok = m.buf != NULL;
  ring_init(&r, cap);
  ring_allow_growth(&r, max, 0);
  ring_take_runs(&r);
  for (size_t i = 0; ok && i < ops; i++) {
    if (i % 64 == 0)                /* phases that fill up, drain, or churn */
      bias = (uint64_t[]){ 15, 50, 85 }[splitmix(&rng) % 3];
    uint64_t x = splitmix(&rng);
    bool produce = x % 100 < bias, alt = (x >> 32) & 1, rec = produce && alt && (x >> 33) % 3 == 0;
    bool shrink = produce && !alt && (x >> 33) % 5 == 0;
    ok = shrink ? op_shrink(&c) : rec ? op_write_record(&c)
         : produce ? (alt ? op_write(&c) : op_reserve(&c)) : (alt ? op_read(&c) : op_peek(&c));
    ok = ok && model_check(&c);
    if (!ok) {
      char inner[sizeof why];
      memcpy(inner, why, sizeof inner);
      fail("cap %zu seed %llu op %zu (%s): %s", cap, (unsigned long long)seed, i,
           shrink ? "shrink" : rec ? "write_record" : produce ? (alt ? "write" : "reserve") : (alt ? "read" : "peek"),
           inner);
    }
  }
  ring_destroy(&r);
  free(m.buf);
  return ok;
}

/* Single-threaded, so ThreadSanitizer adds only cost here: fewer seeds under it. */
#if defined(__SANITIZE_THREAD__)
#define MODEL_SEEDS 4
#else
#define MODEL_SEEDS 32
#endif

/* grow: the cap may double up to 8 times itself. */
static bool test_model(size_t cap, bool grow) {
  size_t seeds = env_size("RING_MODEL_SEEDS", MODEL_SEEDS);
  size_t ops = env_size("RING_MODEL_OPS", 4000);
  net_chunk_stats base = net_chunk_get_stats();
  net_ring probe;
  ring_init(&probe, cap);
  size_t rcap = ring_cap(&probe), max = grow ? 8 * rcap : rcap;
  unsigned char *tmp = malloc(max + 4 * CHUNK);  /* sizes reach free + 4 or 3 chunks + 1 */
  bool ok = tmp != NULL;
  for (uint64_t s = 1; ok && s <= seeds; s++)
    ok = model_run(rcap, max, s * 7919 + cap, ops, tmp);
  free(tmp);
  if (!ok)
    return false;                   /* why says which seed and op */
  CHECK(net_chunk_get_stats().live == base.live, "chunks leaked: %zu live, baseline %zu",
        net_chunk_get_stats().live, base.live);
  return true;
}

/* ---- 2. explicit cases ---------------------------------------------------------- */
static bool test_init_caps(void) {
  static const size_t in[] = { 0, 1, CHUNK, 3 * CHUNK + 1, 65536, (size_t)1 << 20,
                               (size_t)NET_RING_MAX_CAP + 1, SIZE_MAX };
  static const size_t out[] = { CHUNK, CHUNK, CHUNK, 4 * CHUNK, 65536, (size_t)1 << 20,
                                NET_RING_MAX_CAP, NET_RING_MAX_CAP };
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
    net_ring r;
    ring_init(&r, in[i]);
    CHECK(r.cap == out[i] && r.nslots == out[i] / CHUNK + 1, "cap %zu -> %zu", in[i], r.cap);
    CHECK(ring_memory(&r) == 0 && r.slots == NULL, "fresh ring holds memory");
    CHECK(ring_free_space(&r) == r.cap && ring_used(&r) == 0, "fresh ring not empty");
    ring_destroy(&r);
  }
  return true;
}

static bool test_small_roundtrip(void) {
  net_ring r;
  char out[16];
  ring_init(&r, 0);
  CHECK(ring_write(&r, "0123456789", 10) == 10, "write 10");
  CHECK(ring_memory(&r) == CHUNK, "10 bytes should hold one chunk");
  CHECK(ring_read(&r, out, sizeof out) == 10 && !memcmp(out, "0123456789", 10), "read 10");
  CHECK(ring_memory(&r) == 0, "drained ring holds %zu bytes", ring_memory(&r));
  CHECK(ring_read(&r, out, sizeof out) == 0, "read from empty ring");
  ring_destroy(&r);
  return true;
}

/* Reserve, commit 0: aligned tail (ring empty or not), and unaligned after a trim. */
static bool test_reserve_commit_zero(void) {
  net_ring r;
  net_span sp[2];
  char buf[CHUNK];
  ring_init(&r, 4 * CHUNK);
  memset(buf, 'x', sizeof buf);
  CHECK(ring_reserve(&r, sp, 2, 3 * CHUNK) == 2, "reserve at 0");
  ring_commit(&r, 0);
  CHECK(ring_memory(&r) == 0, "commit 0 at tail 0 kept memory");
  CHECK(ring_write(&r, buf, CHUNK) == CHUNK, "write one chunk");
  CHECK(ring_reserve(&r, sp, 2, 3 * CHUNK) == 2, "reserve after a full chunk");
  ring_commit(&r, 0);
  CHECK(ring_memory(&r) == CHUNK, "spare reserved chunks kept: %zu", ring_memory(&r));
  CHECK(ring_read(&r, buf, CHUNK) == CHUNK && ring_memory(&r) == 0, "drain at aligned tail");
  CHECK(ring_reserve(&r, sp, 1, 100) == 1 && sp[0].len == 100, "reserve at aligned tail");
  ring_commit(&r, 0);
  CHECK(ring_memory(&r) == 0, "commit 0 at aligned tail kept %zu", ring_memory(&r));
  CHECK(ring_write(&r, buf, 10) == 10 && ring_read(&r, buf, 10) == 10, "10 through");
  CHECK(ring_reserve(&r, sp, 1, 100) == 1, "reserve at unaligned empty tail");
  ring_commit(&r, 0);
  CHECK(ring_memory(&r) == 0, "commit 0 at unaligned empty tail kept %zu", ring_memory(&r));
  ring_destroy(&r);
  return true;
}

/* Fill to the cap with write or reserve, drain with read or peek/consume. */
static bool test_full_then_drain(int how) {
  net_ring r;
  net_span sp[MAXSPANS];
  static char buf[3 * CHUNK];
  ring_init(&r, 3 * CHUNK);
  ring_write(&r, buf, 123);          /* start unaligned: the full ring spans 4 chunks */
  ring_read(&r, buf, 123);
  for (int guard = 0; ring_free_space(&r) > 0; guard++) {
    CHECK(guard < 100 && ring_used(&r) < 3 * CHUNK, "filling overshot: used %zu",
          ring_used(&r));
    if (how & 1) {
      CHECK(ring_write(&r, buf, 5000) > 0, "write refused below cap");
    } else {
      int k = ring_reserve(&r, sp, MAXSPANS, 5000);
      CHECK(k > 0, "reserve refused below cap");
      ring_commit(&r, span_total(sp, k));
    }
  }
  CHECK(ring_used(&r) == 3 * CHUNK, "full ring holds %zu", ring_used(&r));
  CHECK(ring_write(&r, buf, 1) == 0 && ring_reserve(&r, sp, 1, 1) == 0, "over the cap");
  ring_commit(&r, 0);
  CHECK(ring_memory(&r) == 4 * CHUNK, "full unaligned ring holds %zu", ring_memory(&r));
  for (int guard = 0; ring_used(&r) > 0; guard++) {
    CHECK(guard < 100, "draining never ends: used %zu", ring_used(&r));
    if (how & 2) {
      CHECK(ring_read(&r, buf, 7000) > 0, "read nothing from a non-empty ring");
    } else {
      int k = ring_peek(&r, sp, MAXSPANS, 7000);
      CHECK(k > 0, "peek nothing from a non-empty ring");
      ring_consume(&r, span_total(sp, k));
    }
  }
  CHECK(ring_memory(&r) == 0, "drained ring holds %zu", ring_memory(&r));
  ring_destroy(&r);
  return true;
}

static bool test_full_drain_all(void) {
  char inner[sizeof why];
  for (int how = 0; how < 4; how++)
    if (!test_full_then_drain(how)) {
      memcpy(inner, why, sizeof inner);
      return fail("mode %d: %.400s", how, inner);
    }
  return true;
}

/* A reader that empties a ring that had filled doubles its cap, up to the max; one
 * that leaves bytes behind does not. */
static bool test_growth_steps(void) {
  net_ring r;
  static char buf[8 * CHUNK];
  ring_init(&r, 2 * CHUNK);
  ring_allow_growth(&r, 8 * CHUNK + 5, 0);          /* rounded down to whole chunks */
  ring_take_runs(&r);
  for (size_t i = 0, cap = 2 * CHUNK; i < 4; i++, cap = min_size(2 * cap, 8 * CHUNK)) {
    size_t got = ring_write(&r, buf, sizeof buf);
    CHECK(got == cap && ring_cap(&r) == cap, "round %zu: took %zu, cap %zu, expected %zu", i, got,
          ring_cap(&r), cap);
    CHECK(ring_read(&r, buf, sizeof buf) == cap, "round %zu: drain", i);
  }
  /* with own pages it keeps its run (9 chunks side by side) until it shrinks */
  size_t held = net__chunk_own_pages() ? 9 * CHUNK : 0;
  CHECK(ring_memory(&r) == held, "a grown ring read empty holds %zu, expected %zu", ring_memory(&r), held);
  CHECK(ring_shrink(&r) == !held && ring_shrink(&r) && ring_memory(&r) == 0,
        "a run kept after the first shrink since bytes came, given back at the second");
  ring_destroy(&r);
  ring_init(&r, 2 * CHUNK);
  ring_allow_growth(&r, 8 * CHUNK, 0);
  CHECK(ring_write(&r, buf, sizeof buf) == 2 * CHUNK, "fill");
  CHECK(ring_read(&r, buf, CHUNK) == CHUNK, "read half");
  CHECK(ring_write(&r, buf, sizeof buf) == CHUNK && ring_cap(&r) == 2 * CHUNK,
        "a ring not read empty grew to %zu", ring_cap(&r));
  ring_destroy(&r);
  CHECK(ring_cap(&r) == 2 * CHUNK && r.grow_max == 8 * CHUNK, "destroy reset the growth");
  return true;
}

/* A stall shorter than the ring's threshold grows nothing; a longer one does. */
static bool test_growth_needs_long_stall(void) {
  net_ring r;
  static char buf[4 * CHUNK];
  ring_init(&r, CHUNK);
  ring_allow_growth(&r, 4 * CHUNK, 20000000);     /* 20 ms */
  CHECK(ring_write(&r, buf, sizeof buf) == CHUNK && ring_read(&r, buf, sizeof buf) == CHUNK, "fill, drain");
  CHECK(ring_write(&r, buf, sizeof buf) == CHUNK, "a stall of a moment grew the ring to %zu", ring_cap(&r));
  for (uint64_t t0 = net__now_ns(); net__now_ns() - t0 < 30000000;) {}
  CHECK(ring_read(&r, buf, sizeof buf) == CHUNK, "drain after 30 ms");
  CHECK(ring_write(&r, buf, sizeof buf) == 2 * CHUNK, "a 30 ms stall left the cap at %zu", ring_cap(&r));
  ring_destroy(&r);
  return true;
}

/* A consumer that empties the ring while the producer sits between a stalled
 * reserve and its commit: the commit grows the ring and moves the chunks holding
 * the new bytes, unaligned, to their new slots. */
static bool test_growth_at_commit(void) {
  net_ring r;
  net_span sp[MAXSPANS];
  static unsigned char in[2 * CHUNK], out[2 * CHUNK];
  for (size_t i = 0; i < sizeof in; i++) in[i] = (unsigned char)(i * 7 + i / 251);
  ring_init(&r, 2 * CHUNK);
  ring_allow_growth(&r, 16 * CHUNK, 0);
  ring_take_runs(&r);
  CHECK(ring_write(&r, in, 100) == 100, "write 100");
  int k = ring_reserve(&r, sp, MAXSPANS, 4 * CHUNK);   /* more than the room: stalled */
  CHECK(k == 2 && ring_spans_len(sp, k) == 2 * CHUNK - 100, "reserve offered %zu", ring_spans_len(sp, k));
  CHECK(ring_read(&r, out, 100) == 100, "read 100 while the producer is busy");
  size_t done = 0;
  for (int i = 0; i < k; done += sp[i++].len) memcpy(sp[i].base, in + 100 + done, sp[i].len);
  ring_commit(&r, done);
  CHECK(ring_cap(&r) == 4 * CHUNK, "commit after an emptying read: cap %zu", ring_cap(&r));
  /* the bytes went into the grown ring's run, 5 chunks, where there is one */
  size_t held = net__chunk_own_pages() ? 5 * CHUNK : 2 * CHUNK;
  CHECK(ring_memory(&r) == held, "moved chunks: %zu held, expected %zu", ring_memory(&r), held);
  CHECK(ring_read(&r, out, sizeof out) == done && !memcmp(out, in + 100, done), "bytes moved intact");
  CHECK(ring_write(&r, in, sizeof in) == sizeof in, "the grown ring takes more");
  CHECK(ring_read(&r, out, sizeof out) == sizeof in && !memcmp(out, in, sizeof in), "and gives it back");
  ring_destroy(&r);
  return true;
}

/* The handshake paths, played on one thread: a consumer that empties the ring while
 * the producer sits between reserve and commit must leave the chunk to the commit;
 * a producer that meets trim_req must back off without touching anything. */
static bool test_trim_handshake(void) {
  net_ring r;
  net_span sp[1];
  char buf[64];
  ring_init(&r, 0);
  CHECK(ring_write(&r, "abcdefghij", 10) == 10, "write 10");
  CHECK(ring_reserve(&r, sp, 1, 20) == 1 && atomic_load(&r.busy) == 1, "reserve sets busy");
  CHECK(ring_read(&r, buf, 64) == 10, "read 10 while producer busy");
  CHECK(ring_memory(&r) == CHUNK, "consumer freed a chunk the producer holds");
  memcpy(sp[0].base, "KLMNO", 5);
  ring_commit(&r, 5);
  CHECK(ring_read(&r, buf, 64) == 5 && !memcmp(buf, "KLMNO", 5), "committed bytes");
  CHECK(ring_memory(&r) == 0, "trim after commit 5: %zu", ring_memory(&r));
  CHECK(ring_write(&r, "xy", 2) == 2 && ring_reserve(&r, sp, 1, 20) == 1, "setup 2");
  CHECK(ring_read(&r, buf, 64) == 2 && ring_memory(&r) == CHUNK, "skip while busy");
  ring_commit(&r, 0);
  CHECK(ring_memory(&r) == 0, "producer exit did not trim: %zu", ring_memory(&r));
  atomic_store(&r.trim_req, 1);      /* as if the consumer were mid-trim */
  CHECK(ring_write(&r, "z", 1) == 0, "write went ahead during a trim");
  CHECK(ring_reserve(&r, sp, 1, 1) == 0 && atomic_load(&r.busy) == 0, "reserve during trim");
  ring_commit(&r, 0);
  atomic_store(&r.trim_req, 0);
  CHECK(ring_used(&r) == 0 && ring_memory(&r) == 0, "back-off changed the ring");
  CHECK(ring_write(&r, "z", 1) == 1 && ring_read(&r, buf, 1) == 1 && buf[0] == 'z', "after");
  ring_destroy(&r);
  return true;
}

static bool test_destroy_returns_chunks(void) {
  net_chunk_stats base = net_chunk_get_stats();
  static char buf[5 * CHUNK];
  net_ring r;
  net_span sp[MAXSPANS];
  ring_init(&r, 8 * CHUNK);
  CHECK(ring_write(&r, buf, sizeof buf) == sizeof buf, "write 5 chunks");
  CHECK(ring_read(&r, buf, CHUNK + 7) == CHUNK + 7, "read some");
  CHECK(ring_reserve(&r, sp, MAXSPANS, 3 * CHUNK) > 0, "reserve");  /* destroy mid-reserve */
  CHECK(net_chunk_get_stats().live > base.live, "no chunks live");
  ring_destroy(&r);
  CHECK(net_chunk_get_stats().live == base.live, "live %zu after destroy, baseline %zu",
        net_chunk_get_stats().live, base.live);
  CHECK(r.slots == NULL && ring_memory(&r) == 0, "destroyed ring still holds memory");
  return true;
}

static bool test_pool_bounds(void) {
  enum { N = 300 };
  static void *c[N];
  net_chunk_pool_trim();
  net_chunk_stats base = net_chunk_get_stats();
  CHECK(base.cached == 0, "trim left %zu cached", base.cached);
  for (int i = 0; i < N; i++) {
    c[i] = net_chunk_alloc();
    CHECK(c[i] && ((uintptr_t)c[i] & (NET_CACHELINE - 1)) == 0, "chunk %d misaligned", i);
    memset(c[i], i, CHUNK);
  }
  CHECK(net_chunk_get_stats().live == base.live + N, "live count off");
  for (int i = 0; i < N; i++)
    net_chunk_free(c[i]);
  net_chunk_stats s = net_chunk_get_stats();
  CHECK(s.live == base.live && s.cached == 256, "after free: live %zu cached %zu", s.live,
        s.cached);
  net_chunk_free(NULL);
  net_chunk_pool_trim();
  CHECK(net_chunk_get_stats().cached == 0, "trim left chunks");
  return true;
}

/* ---- 3. two-thread stress ------------------------------------------------------- */

/* A side that gets nothing for this long reports a stall instead of hanging. */
#define STALL_SECONDS 30.0

typedef struct idle {
  unsigned turns;                    /* empty-handed turns in a row */
  double since;
} idle;

/* Yields the CPU; true once the other side has made no progress for too long. */
static bool idle_wait(idle *w) {
  if (w->turns++ == 0)
    w->since = now_s();
  net__yield();
  return w->turns % 1024 == 0 && now_s() - w->since > STALL_SECONDS;
}

static void stall(atomic_int *stop, char *err, size_t errlen, const char *who, size_t at) {
  snprintf(err, errlen, "%s stalled at byte %zu", who, at);
  atomic_store(stop, 1);
}
typedef struct stress {
  net_ring ring;
  size_t total;                      /* bytes to move */
  uint64_t seed;
  atomic_int stop;                   /* set by whichever side finds a fault */
  uint64_t prod_hash, cons_hash;
  size_t received;                   /* bytes the consumer verified */
  size_t prod_yields, cons_yields;
  char err[256];
} stress;

static size_t stress_size(uint64_t *rng) {
  uint64_t x = splitmix(rng);
  switch (x % 8) {
  case 0: return 1 + (size_t)(x >> 8) % 64;
  case 1: return CHUNK;
  default: return 1 + (size_t)(x >> 8) % (3 * CHUNK);
  }
}

static int stress_producer(void *arg) {
  stress *st = arg;
  stream g;
  hasher h = { 0 };
  uint64_t rng = st->seed * 31 + 7;
  unsigned char *stage = malloc(3 * CHUNK);
  size_t staged = 0, off = 0, sent = 0;
  bool record = false;               /* what is staged goes as one record, whole or not at all */
  net_span sp[MAXSPANS];
  idle w = { 0 };
  stream_init(&g, st->seed);
  for (unsigned turn = 0; stage && sent < st->total && !atomic_load(&st->stop); turn++) {
    size_t got, n = min_size(stress_size(&rng), st->total - sent);
    if (turn % 5 == 4) ring_shrink(&st->ring);   /* races the consumer's reads and trims */
    if (off < staged && record) {    /* a record the ring had no room for (or was trimming) */
      got = ring_write_record(&st->ring, stage, staged / 2, stage + staged / 2, staged - staged / 2) ? staged : 0;
      off += got;
    } else if (off < staged) {       /* finish a ring_write the ring only partly took */
      got = ring_write(&st->ring, stage + off, staged - off);
      off += got;
    } else if (turn % 3 != 0) {
      record = turn % 3 == 2;
      if (record) n = min_size(n, st->ring.cap);
      stream_fill(&g, stage, n);
      hash_feed(&h, stage, n);
      staged = n;
      off = 0;
      got = record ? 0 : (off = ring_write(&st->ring, stage, n));
      if (record && ring_write_record(&st->ring, stage, n / 2, stage + n / 2, n - n / 2)) got = off = n;
    } else {
      int k = ring_reserve(&st->ring, sp, 1 + (int)(rng % MAXSPANS), n);
      size_t take = pick_take(&rng, span_total(sp, k)), left = take;
      for (int i = 0; i < k && left; i++) {
        size_t len = min_size(left, sp[i].len);
        stream_fill(&g, (unsigned char *)sp[i].base, len);
        hash_feed(&h, (unsigned char *)sp[i].base, len);
        left -= len;
      }
      ring_commit(&st->ring, take);
      got = take;
    }
    sent += got;
    w.turns = got ? 0 : w.turns;
    if (!got && (st->prod_yields++, idle_wait(&w)))
      stall(&st->stop, st->err, sizeof st->err, "producer", sent);
  }
  st->prod_hash = hash_final(&h);
  free(stage);
  return 0;
}

static bool stress_verify(stress *st, stream *g, hasher *h, const unsigned char *p, size_t n,
                          unsigned char *exp, size_t at) {
  stream_fill(g, exp, n);
  hash_feed(h, p, n);
  if (!memcmp(p, exp, n))
    return true;
  size_t i = 0;
  while (p[i] == exp[i])
    i++;
  snprintf(st->err, sizeof st->err, "byte %zu: got %02x, expected %02x (seed %llu)", at + i,
           p[i], exp[i], (unsigned long long)st->seed);
  atomic_store(&st->stop, 1);
  return false;
}

static int stress_consumer(void *arg) {
  stress *st = arg;
  stream g;
  hasher h = { 0 };
  uint64_t rng = st->seed * 17 + 3;
  unsigned char *buf = malloc(3 * CHUNK), *exp = malloc(3 * CHUNK);
  size_t got = 0;
  net_span sp[MAXSPANS];
  idle w = { 0 };
  stream_init(&g, st->seed);
  for (unsigned turn = 0; buf && exp && got < st->total && !atomic_load(&st->stop); turn++) {
    size_t n = stress_size(&rng), take = 0;
    if (turn & 1) {
      take = ring_read(&st->ring, buf, n);
      if (take && !stress_verify(st, &g, &h, buf, take, exp, got))
        break;
    } else {
      int k = ring_peek(&st->ring, sp, 1 + (int)(rng % MAXSPANS), n);
      size_t left = take = pick_take(&rng, span_total(sp, k));
      for (int i = 0; i < k && left; i++) {
        size_t len = min_size(left, sp[i].len);
        if (!stress_verify(st, &g, &h, (unsigned char *)sp[i].base, len, exp, got + take - left))
          goto out;
        left -= len;
      }
      ring_consume(&st->ring, take);
    }
    got += take;
    w.turns = take ? 0 : w.turns;
    if (!take && (st->cons_yields++, idle_wait(&w)))
      stall(&st->stop, st->err, sizeof st->err, "consumer", got);
  }
out:
  st->received = got;
  st->cons_hash = hash_final(&h);
  free(buf);
  free(exp);
  return 0;
}

static bool test_stress(size_t cap, size_t grow, size_t mb) {
  net_chunk_stats base = net_chunk_get_stats();
  stress *st = calloc(1, sizeof *st);
  CHECK(st, "out of memory");
  ring_init(&st->ring, cap);
  ring_allow_growth(&st->ring, grow, 0);
  ring_take_runs(&st->ring);
  st->total = mb << 20;
  st->seed = 0x5eed0000u + cap;
  double t0 = now_s();
  net_thread *p = NULL, *c = NULL;
  bool started = net__thread_start(stress_producer, st, "ring-producer", false, &p) &&
                 net__thread_start(stress_consumer, st, "ring-consumer", false, &c);
  CHECK(started, "net__thread_start failed");
  net__thread_join(p);
  net__thread_join(c);
  double dt = now_s() - t0;
  printf("# stress cap %zu KiB (at the end): %zu MiB in %.2f s, %.0f MB/s (yields: producer %zu, "
         "consumer %zu)\n", ring_cap(&st->ring) >> 10, st->received >> 20, dt,
         (double)st->received / dt / 1e6,
         st->prod_yields, st->cons_yields);
  bool ok = !st->err[0] || fail("%s", st->err);
  ok = ok && (st->prod_hash == st->cons_hash || fail("checksums differ"));
  ok = ok && (ring_used(&st->ring) == 0 || fail("%zu bytes left", ring_used(&st->ring)));
  /* a ring on a run keeps it on the first call after a run's worth of bytes came */
  ok = ok && (ring_shrink(&st->ring) || ring_shrink(&st->ring) || fail("an empty ring would not shrink"));
  ok = ok && (ring_memory(&st->ring) == 0 || fail("idle ring holds %zu bytes",
                                                  ring_memory(&st->ring)));
  ring_destroy(&st->ring);
  free(st);
  if (!ok)
    return false;
  CHECK(net_chunk_get_stats().live == base.live, "chunks leaked");
  return true;
}

/* Bursts with a quiescent point after each: the producer writes a burst while the
 * consumer drains it concurrently, then both stop; an idle empty ring must hold no
 * chunk, whichever of the two sides raced to the trim. */
typedef struct burst {
  net_ring ring;
  size_t rounds;
  atomic_size_t target;              /* bytes sent once the producer finished a burst */
  atomic_size_t acked;               /* bytes the consumer received and has settled */
  atomic_int stop;
  char err[256];
} burst;

static int burst_producer(void *arg) {
  burst *b = arg;
  uint64_t rng = 99;
  size_t sent = 0;
  net_span sp[MAXSPANS];
  unsigned char buf[2 * CHUNK];
  memset(buf, 0x5a, sizeof buf);
  for (size_t round = 0; round < b->rounds && !atomic_load(&b->stop); round++) {
    size_t n = 1 + (size_t)splitmix(&rng) % (2 * CHUNK), done = 0;
    idle w = { 0 };
    while (done < n && !atomic_load(&b->stop)) {
      int k = ring_reserve(&b->ring, sp, MAXSPANS, n - done);
      size_t t = k && (splitmix(&rng) & 1) ? span_total(sp, k) : 0;
      for (int i = 0; i < k; i++)
        memset(sp[i].base, 0x5a, sp[i].len);
      ring_commit(&b->ring, t);
      if (!t && (t = ring_write(&b->ring, buf, n - done)) == 0 && idle_wait(&w))
        stall(&b->stop, b->err, sizeof b->err, "burst producer", sent + done);
      done += t;
      w.turns = t ? 0 : w.turns;
    }
    if (splitmix(&rng) & 1) {        /* an empty reserve/commit at the very end */
      ring_reserve(&b->ring, sp, 1, CHUNK);
      ring_commit(&b->ring, 0);
    }
    sent += n;
    w.turns = 0;
    atomic_store_explicit(&b->target, sent, memory_order_release);
    while (atomic_load_explicit(&b->acked, memory_order_acquire) != sent &&
           !atomic_load(&b->stop))
      if (idle_wait(&w))
        stall(&b->stop, b->err, sizeof b->err, "burst consumer", sent);
    size_t mem = ring_memory(&b->ring);
    if (mem && !atomic_load(&b->stop)) {
      snprintf(b->err, sizeof b->err, "round %zu: idle empty ring holds %zu bytes", round, mem);
      atomic_store(&b->stop, 1);
    }
  }
  atomic_store(&b->stop, 1);
  return 0;
}

static int burst_consumer(void *arg) {
  burst *b = arg;
  size_t got = 0;
  unsigned char buf[3 * CHUNK];
  net_span sp[MAXSPANS];
  for (unsigned turn = 0; !atomic_load(&b->stop); turn++) {
    size_t n;
    if (turn & 1) {
      n = ring_read(&b->ring, buf, sizeof buf);
    } else {
      int k = ring_peek(&b->ring, sp, MAXSPANS, sizeof buf);
      ring_consume(&b->ring, n = span_total(sp, k));
    }
    got += n;
    if (n)
      continue;
    if (atomic_load_explicit(&b->target, memory_order_acquire) == got)
      atomic_store_explicit(&b->acked, got, memory_order_release);
    if (turn % 64 == 0)             /* mostly spin: meet the producer's exit head-on */
      net__yield();
  }
  return 0;
}

static bool test_idle_after_bursts(size_t rounds) {
  burst *b = calloc(1, sizeof *b);
  CHECK(b, "out of memory");
  ring_init(&b->ring, 2 * CHUNK);
  b->rounds = rounds;
  double t0 = now_s();
  net_thread *p = NULL, *c = NULL;
  bool started = net__thread_start(burst_producer, b, "burst-producer", false, &p) &&
                 net__thread_start(burst_consumer, b, "burst-consumer", false, &c);
  CHECK(started, "net__thread_start failed");
  net__thread_join(p);
  net__thread_join(c);
  printf("# %zu bursts in %.2f s\n", rounds, now_s() - t0);
  bool ok = !b->err[0] || fail("%s", b->err);
  ring_destroy(&b->ring);
  free(b);
  return ok;
}

/* ---- 4. chunk pool under concurrency ------------------------------------------- */
#define STASH_MAX 256

typedef struct pool_worker {
  int id;
  size_t iters;
  int stash;                         /* chunks held at most; 0: 48 */
  bool direct;                       /* the own pages' stacks, past the pool */
  char err[128];
} pool_worker;

/* Each chunk is tagged with its holder and a serial; a chunk handed to two threads
 * at once shows up as a tag that changed under its holder. */
static int pool_thread(void *arg) {
  pool_worker *w = arg;
  const int STASH = w->stash ? w->stash : 48;
  uint64_t *stash[STASH_MAX], rng = (uint64_t)w->id * 1000003u, serial = 0;
  int n = 0;
  for (size_t i = 0; i < w->iters && !w->err[0]; i++) {
    uint64_t x = splitmix(&rng);
    if (n && (n == STASH || (x & 1))) {
      uint64_t *c = stash[--n];
      uint64_t tag = c[0];
      if (tag >> 48 != (uint64_t)w->id || c[CHUNK / 8 - 1] != tag)
        snprintf(w->err, sizeof w->err, "thread %d: chunk tag %llx changed", w->id,
                 (unsigned long long)tag);
      w->direct ? net__chunk_put(c) : net_chunk_free(c);
    } else if ((stash[n] = w->direct ? net__chunk_get() : net_chunk_alloc()) != NULL) {
      uint64_t tag = (uint64_t)w->id << 48 | ++serial;
      stash[n][0] = stash[n][CHUNK / 8 - 1] = tag;
      n++;
    } else {
      snprintf(w->err, sizeof w->err, "thread %d: alloc failed", w->id);
    }
  }
  while (n)
    w->direct ? net__chunk_put(stash[--n]) : net_chunk_free(stash[--n]);
  return 0;
}

static bool test_pool_threads(size_t iters) {
  enum { T = 4 };
  pool_worker w[T];
  net_thread *t[T];
  net_chunk_stats base = net_chunk_get_stats();
  for (int i = 0; i < T; i++) {
    w[i] = (pool_worker){ .id = i + 1, .iters = iters };
    t[i] = NULL;
    CHECK(net__thread_start(pool_thread, &w[i], "pool", false, &t[i]), "net__thread_start failed");
  }
  for (int i = 0; i < T; i++)
    net__thread_join(t[i]);
  for (int i = 0; i < T; i++)
    CHECK(!w[i].err[0], "%s", w[i].err);
  net_chunk_stats s = net_chunk_get_stats();
  CHECK(s.live == base.live, "live %zu, baseline %zu", s.live, base.live);
  CHECK(s.cached <= 256, "cached %zu over the bound", s.cached);
  net_chunk_pool_trim();
  CHECK(net_chunk_get_stats().cached == 0, "trim left chunks");
  return true;
}

/* ---- 5. the chunks' own pages ------------------------------------------------- */

static long resident_kib(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static bool all_zero(const unsigned char *p) {
  for (size_t i = 0; i < CHUNK; i++)
    if (p[i]) return false;
  return true;
}

/* Chunks freed past the pool wait as dirty; a release gives their pages back
 * (resident memory falls by them), and they come back zeroed. */
static bool test_own_pages_release(void) {
  enum { N = 1256, PAST = N - 256 };
  static unsigned char *c[N];
  net_chunk_pool_trim();
  net__chunk_release();
  if (!net__chunk_own_pages()) {   /* ASan: malloc's chunks, nothing waits */
    printf("# chunks are malloc's here: only the fallback is checked\n");
    CHECK(net__chunk_dirty() == 0 && net__chunk_release() == 0, "malloc's chunks waited for a release");
    return true;
  }
  for (int i = 0; i < N; i++) {
    CHECK((c[i] = net_chunk_alloc()) != NULL, "chunk %d: none", i);
    memset(c[i], 0xab, CHUNK);
  }
  for (int i = 0; i < N; i++)
    net_chunk_free(c[i]);
  CHECK(net__chunk_dirty() == PAST * CHUNK, "%zu bytes dirty, not %zu", net__chunk_dirty(), PAST * CHUNK);
  long before = resident_kib();
  size_t given = net__chunk_release();
  long after = resident_kib();
  CHECK(given == PAST * CHUNK && net__chunk_dirty() == 0, "released %zu, %zu still dirty", given,
        net__chunk_dirty());
  CHECK(!before || before - after >= (long)(PAST * CHUNK / 1024) * 9 / 10,   /* 0: no /proc here */
        "resident memory fell by %ld KiB of %zu", before - after, PAST * CHUNK / 1024);
  int zeroed = 0;
  for (int i = 0; i < N; i++) {
    CHECK((c[i] = net_chunk_alloc()) != NULL, "chunk %d again: none", i);
    zeroed += all_zero(c[i]);
  }
  CHECK(zeroed == PAST, "%d chunks came back zeroed, not %d", zeroed, PAST);
  for (int i = 0; i < N; i++)
    net_chunk_free(c[i]);
  net_chunk_pool_trim();
  net__chunk_release();
  return true;
}

/* A ring that grew takes its chunks side by side (a run): bytes across chunk
 * boundaries peek as one span, to be copied once. It keeps the run while bytes
 * flow; shrunk, the run waits as dirty, its pages go back at the next release,
 * and the next ring of its size takes it again. A ring that never grew takes none. */
static bool test_run(void) {
  net_ring r;
  net_span sp[MAXSPANS];
  static unsigned char in[6 * CHUNK];
  for (size_t i = 0; i < sizeof in; i++) in[i] = (unsigned char)(i * 13 + i / 509);
  net__chunk_release();
  ring_init(&r, 2 * CHUNK);
  ring_allow_growth(&r, 8 * CHUNK, 0);
  ring_take_runs(&r);
  CHECK(ring_write(&r, in, sizeof in) == 2 * CHUNK && r.run == NULL, "a ring that never grew took a run");
  CHECK(ring_consume_upto(&r, SIZE_MAX) == 2 * CHUNK, "drain");
  CHECK(ring_write(&r, in, sizeof in) == 4 * CHUNK, "grown: took %zu", ring_cap(&r));
  if (!net__chunk_own_pages()) {   /* ASan: malloc's chunks, no runs */
    CHECK(r.run == NULL, "a run without own pages");
    ring_destroy(&r);
    return true;
  }
  char *run = r.run;
  CHECK(run != NULL, "a grown ring took no run");
  ring_consume(&r, 100);
  int k = ring_peek(&r, sp, MAXSPANS, 2 * CHUNK);   /* slots 2, 3 and 4 of 5: no wrap */
  CHECK(k == 1 && sp[0].len == 2 * CHUNK && !memcmp(sp[0].base, in + 100, 2 * CHUNK),
        "2 chunks' worth across 3 chunks: %d spans, the first of %zu", k, sp[0].len);
  ring_consume_upto(&r, SIZE_MAX);
  CHECK(!ring_shrink(&r) && ring_shrink(&r) && r.run == NULL, "shrink: kept the run once, then gave it back");
  CHECK(net__chunk_dirty() >= 5 * CHUNK, "the run is not waiting as dirty: %zu", net__chunk_dirty());
  CHECK(net__chunk_release() >= 5 * CHUNK && net__chunk_dirty() == 0, "the run's pages did not go back");
  CHECK(all_zero((unsigned char *)run + 3 * CHUNK), "a run whose pages went back still has bytes");
  CHECK(ring_write(&r, in, CHUNK) == CHUNK && r.run != NULL, "the grown ring took no run again");
  CHECK(ring_consume_upto(&r, SIZE_MAX) == CHUNK && ring_shrink(&r) && r.run == NULL,
        "a trickle (less than a run's worth since the last shrink) kept the run");
  ring_destroy(&r);
  ring_init(&r, 2 * CHUNK);   /* growing, but not asked to take runs (a send buffer) */
  ring_allow_growth(&r, 8 * CHUNK, 0);
  CHECK(ring_write(&r, in, sizeof in) == 2 * CHUNK && ring_consume_upto(&r, SIZE_MAX) == 2 * CHUNK &&
        ring_write(&r, in, sizeof in) == 4 * CHUNK && r.run == NULL, "a ring not asked to take runs took one");
  ring_destroy(&r);
  return true;
}

/* Writes until the ring is full; returns the bytes accepted. */
static size_t fill_ring(net_ring *r, const unsigned char *in, size_t len) {
  size_t total = 0, k;
  while ((k = ring_write(r, in, len)) > 0)
    total += k;
  return total;
}

/* A fixed ring of NET_RING_RUN_MIN or more earns a run as a growing one grows:
 * read empty after it held the producer back. Smaller, or never held back,
 * it takes none. Earned, the run comes back after a shrink gave it back. */
static bool test_run_fixed(void) {
  if (!net__chunk_own_pages()) return true;   /* ASan: malloc's chunks, no runs */
  static unsigned char in[3 * CHUNK];
  for (size_t i = 0; i < sizeof in; i++) in[i] = (unsigned char)(i * 7 + i / 251);
  net_span sp[MAXSPANS];
  const size_t caps[] = { NET_RING_RUN_MIN, NET_RING_RUN_MIN - CHUNK };
  for (int i = 0; i < 2; i++) {
    net_ring r;
    size_t cap = caps[i];
    bool big = cap >= NET_RING_RUN_MIN;
    ring_init(&r, cap);
    ring_allow_growth(&r, 0, 0);
    ring_take_runs(&r);
    CHECK(ring_write(&r, in, CHUNK) == CHUNK && ring_consume_upto(&r, SIZE_MAX) == CHUNK &&
          ring_write(&r, in, CHUNK) == CHUNK && r.run == NULL, "a fixed ring never held back took a run");
    ring_consume_upto(&r, SIZE_MAX);
    CHECK(fill_ring(&r, in, sizeof in) == cap && r.run == NULL, "a full fixed ring took a run before it was read empty");
    CHECK(ring_consume_upto(&r, SIZE_MAX) == cap, "drain");
    CHECK(ring_write(&r, in, sizeof in) == sizeof in && ring_cap(&r) == cap, "the fixed cap changed: %zu",
          ring_cap(&r));
    CHECK((r.run != NULL) == big, "a fixed ring of %zu KiB: %s", cap >> 10, big ? "earned no run" : "took a run");
    ring_consume(&r, 100);
    int k = ring_peek(&r, sp, MAXSPANS, 2 * CHUNK);
    CHECK(k >= 1 && !memcmp(sp[0].base, in + 100, sp[0].len) && (!big || sp[0].len == 2 * CHUNK),
          "%d spans, the first of %zu bytes", k, sp[0].len);
    ring_consume_upto(&r, SIZE_MAX);
    CHECK(!big || (!ring_shrink(&r) && ring_shrink(&r) && r.run == NULL), "shrink kept the run");
    ring_shrink(&r);
    CHECK(ring_write(&r, in, CHUNK) == CHUNK && (r.run != NULL) == big, "an earned run did not come back");
    ring_destroy(&r);
  }
  net__chunk_release();
  return true;
}

#ifdef __linux__
/* 1 or 0: smaps' THPeligible for the mapping holding p; -1: the system gives
 * no large pages on request (THP off or always on), or does not say. */
static int large_pages_asked(const void *p) {
  char line[256];
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  bool on_request = f && fgets(line, sizeof line, f) && strstr(line, "[madvise]");
  if (f) fclose(f);
  if (!on_request || !(f = fopen("/proc/self/smaps", "r"))) return -1;
  int found = -1;
  bool inside = false;
  while (found < 0 && fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    int v;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)   /* a mapping's first line; fields never read so */
      inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
    else if (inside && sscanf(line, "THPeligible: %d", &v) == 1)
      found = v;
  }
  fclose(f);
  return found;
}
#endif

/* A run is written through whole: it starts on a large page's boundary and
 * asks for large pages, where a fault per small page costs more than the
 * bytes' copy (9.6 µs each seen in a virtual machine). */
static bool test_run_large_pages(void) {
  if (!net__chunk_own_pages()) return true;   /* ASan: malloc's chunks, no runs */
  size_t big = (size_t)2 << 20, n = big + CHUNK;
  char *a = net__run_get(n), *b = net__run_get(n);
  CHECK(a && b, "no runs");
  CHECK((uintptr_t)a % big == 0 && (uintptr_t)b % big == 0, "a run off a 2 MiB boundary: %p, %p",
        (void *)a, (void *)b);
  memset(b, 1, n);
#ifdef __linux__
  int asked = large_pages_asked(b);
  CHECK(asked != 0, "a run that did not ask for large pages (smaps: THPeligible 0)");
  if (asked < 0) printf("# large pages not given on request here: only the boundaries checked\n");
#endif
  net__run_put(a);
  net__run_put(b);
  net__chunk_release();
  CHECK(all_zero((unsigned char *)b + big), "a run whose pages went back still has bytes");
  return true;
}

/* A pop reads the head and the chunk below the top, then swaps. If others pop
 * the top and the one below and push the top back in between, the head
 * shows the same top: it must not read the same, or that swap would put the
 * chunk below, still held, back on the stack (ABA). */
static bool test_own_pages_aba(void) {
  if (!net__chunk_own_pages()) return true;   /* ASan: malloc's chunks */
  net__chunk_release();
  void *a, *b, *c;
  CHECK((c = net__chunk_get()) && (b = net__chunk_get()) && (a = net__chunk_get()), "no chunks");
  net__chunk_put(c);
  net__chunk_put(b);
  net__chunk_put(a);   /* dirty: a, b, c */
  uint64_t seen = net__chunk_dirty_head();
  void *a2 = net__chunk_get(), *b2 = net__chunk_get();
  CHECK(a2 == a && b2 == b, "the dirty stack did not give its top first");
  net__chunk_put(a2);   /* dirty: a, c; b is held */
  uint64_t now = net__chunk_dirty_head();
  CHECK((uint32_t)now == (uint32_t)seen, "the top changed: not the case under test");
  CHECK(now != seen, "the head reads as it did before two pops and a push");
  net__chunk_put(b2);
  net__chunk_release();
  return true;
}

static int releaser(void *arg) {
  atomic_int *stop = arg;
  while (!atomic_load(stop)) {
    net__chunk_release();
    net__yield();
  }
  return 0;
}

/* Four threads hold up to 200 chunks each, taken through the pool or
 * from the stacks behind it, while a fifth gives the dirty ones back: no
 * chunk is ever held by two. */
static bool test_own_pages_threads(size_t iters, bool direct) {
  enum { T = 4 };
  pool_worker w[T];
  net_thread *t[T], *rel = NULL;
  atomic_int stop = 0;
  net_chunk_stats base = net_chunk_get_stats();
  CHECK(net__thread_start(releaser, &stop, "release", false, &rel), "net__thread_start failed");
  for (int i = 0; i < T; i++) {
    w[i] = (pool_worker){ .id = i + 1, .iters = iters, .stash = 200, .direct = direct };
    t[i] = NULL;
    CHECK(net__thread_start(pool_thread, &w[i], "pool", false, &t[i]), "net__thread_start failed");
  }
  for (int i = 0; i < T; i++)
    net__thread_join(t[i]);
  atomic_store(&stop, 1);
  net__thread_join(rel);
  for (int i = 0; i < T; i++)
    CHECK(!w[i].err[0], "%s", w[i].err);
  CHECK(net_chunk_get_stats().live == base.live, "live %zu, baseline %zu", net_chunk_get_stats().live,
        base.live);
  net_chunk_pool_trim();
  net__chunk_release();
  CHECK(net__chunk_dirty() == 0, "%zu bytes still dirty", net__chunk_dirty());
  return true;
}

int main(void) {
  size_t mb = env_size("RING_STRESS_MB", 1024);
  static const size_t caps[] = { CHUNK, 3 * CHUNK + 1, 65536, (size_t)1 << 20 };
  char name[96];
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
    snprintf(name, sizeof name, "model-based ops against a reference queue, cap %zu requested", caps[i]);
    report(name, test_model(caps[i], false));
    if (caps[i] >= (size_t)1 << 20)
      continue;                      /* growth to 8 MiB: the byte model costs seconds */
    snprintf(name, sizeof name, "model-based ops, cap %zu requested, growing to 8 times it", caps[i]);
    report(name, test_model(caps[i], true));
  }
  report("init rounds and clamps the cap, allocates nothing", test_init_caps());
  report("write 10, read 10 leaves no memory", test_small_roundtrip());
  report("reserve then commit 0 leaves no spare chunk", test_reserve_commit_zero());
  report("full ring drained leaves no memory", test_full_drain_all());
  report("growth: a ring read empty after it filled doubles its cap, up to the max",
         test_growth_steps());
  report("growth: a stall shorter than the threshold grows nothing", test_growth_needs_long_stall());
  report("growth at a commit the reader emptied the ring under moves the new bytes",
         test_growth_at_commit());
  report("trim handshake: busy producer keeps its chunk, trim_req backs off",
         test_trim_handshake());
  report("ring_destroy returns every chunk to the pool", test_destroy_returns_chunks());
  report("pool keeps at most 256 chunks, counts live ones", test_pool_bounds());
  snprintf(name, sizeof name, "two-thread stress, %zu MiB, one-chunk cap", mb);
  report(name, test_stress(CHUNK, 0, mb));
  snprintf(name, sizeof name, "two-thread stress, %zu MiB, default cap", mb);
  report(name, test_stress(NET_RING_DEFAULT_CAP, 0, mb));
  snprintf(name, sizeof name, "two-thread stress, %zu MiB, one chunk growing to 64", mb);
  report(name, test_stress(CHUNK, 64 * CHUNK, mb));
  report("idle empty ring holds no chunk after each burst", test_idle_after_bursts(mb * 100));
  report("pool: 4 threads alloc/free, live count back to baseline",
         test_pool_threads(mb * 256 + 10000));
  report("a ring that grew takes a run: one span across chunks; its pages go back once it shrinks", test_run());
  report("runs start on a large page's boundary and ask for large pages", test_run_large_pages());
  report("a fixed ring of 2 MiB or more earns a run as a growing one grows", test_run_fixed());
  report("own pages: chunks freed past the pool give their pages back, and come back zeroed",
         test_own_pages_release());
  report("own pages: a chunk popped and pushed back changes the stack's head (ABA)", test_own_pages_aba());
  report("own pages: 4 threads alloc/free through the pool while a fifth releases, none held twice",
         test_own_pages_threads(mb * 256 + 10000, false));
  report("own pages: 4 threads alloc/free on the stacks themselves while a fifth releases, none held twice",
         test_own_pages_threads(mb * 256 + 10000, true));
  net_chunk_pool_trim();
  return tap_done();
}
