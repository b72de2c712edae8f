/* fuzz_ring.c: a model-based fuzzer of the SPSC ring (one thread plays both
 * sides): every operation sequence the input spells must leave the ring
 * holding exactly the bytes a plain queue holds, and every peek, copy and
 * find must agree with that queue. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

#define MODEL_MAX (4u * NET_CHUNK_SIZE)   /* the largest ring a run makes */

typedef struct model {
  unsigned char *q;   /* the bytes the ring should hold */
  size_t n;
  uint32_t next;      /* the next byte value written */
} model;

static void fill(unsigned char *buf, size_t n, uint32_t *next) {
  for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)((*next)++ * 2654435761u >> 24);
}

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static void op_write(net_ring *r, model *m, size_t n) {
  static unsigned char buf[1 << 16];
  n = n > sizeof buf ? sizeof buf : n;
  if (n > r->cap - m->n + 16) n = r->cap - m->n + 16;   /* a little past full: bytes refused */
  uint32_t next = m->next;
  fill(buf, n, &next);
  size_t got = ring_write(r, buf, n);
  check(got <= n && m->n + got <= r->cap);
  memcpy(m->q + m->n, buf, got);
  m->n += got;
  m->next += (uint32_t)got;
}

static void op_reserve(net_ring *r, model *m, size_t n, size_t commit_pct) {
  net_span sp[8];
  int k = ring_reserve(r, sp, 8, n);
  if (k <= 0) {
    ring_commit(r, 0);
    return;
  }
  size_t offered = 0;
  for (int i = 0; i < k; i++) offered += sp[i].len;
  size_t c = offered * commit_pct / 100, done = 0;
  for (int i = 0; i < k && done < c; i++) {
    size_t len = sp[i].len < c - done ? sp[i].len : c - done;
    fill((unsigned char *)sp[i].base, len, &m->next);
    memcpy(m->q + m->n + done, sp[i].base, len);
    done += len;
  }
  ring_commit(r, c);
  m->n += c;
}

static void op_read(net_ring *r, model *m, size_t n) {
  static unsigned char buf[1 << 16];
  n = n > sizeof buf ? sizeof buf : n;
  size_t got = ring_read(r, buf, n);
  check(got == (n < m->n ? n : m->n) && memcmp(buf, m->q, got) == 0);
  memmove(m->q, m->q + got, m->n - got);
  m->n -= got;
}

static void op_peek_consume(net_ring *r, model *m, size_t n) {
  net_span sp[8];
  int k = ring_peek(r, sp, 8, n);
  size_t at = 0;
  for (int i = 0; i < k; i++) {
    check(at + sp[i].len <= m->n && memcmp(sp[i].base, m->q + at, sp[i].len) == 0);
    at += sp[i].len;
  }
  ring_consume(r, at / 2);
  memmove(m->q, m->q + at / 2, m->n - at / 2);
  m->n -= at / 2;
}

static void op_find(net_ring *r, const model *m, const uint8_t *d, size_t dlen, size_t from, size_t limit) {
  long got = ring_find(r, d, dlen, from, limit);
  long want = -1;
  size_t end = limit < m->n ? limit : m->n;
  for (size_t i = from; dlen && i + dlen <= end; i++)
    if (memcmp(m->q + i, d, dlen) == 0) {
      want = (long)i;
      break;
    }
  check(got == want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  net_ring r;
  ring_init(&r, (size_t)(data[0] % 4 + 1) * NET_CHUNK_SIZE);
  static unsigned char q[MODEL_MAX];   /* static: a fresh 256 KiB per run is most of the time */
  model m = {q, 0, 1};
  for (size_t i = 1; i + 3 < size; i += 4) {
    size_t n = (size_t)data[i + 1] * 257 + data[i + 2];
    switch (data[i] % 6) {
      case 0: op_write(&r, &m, n); break;
      case 1: op_reserve(&r, &m, n, data[i + 3] % 101); break;
      case 2: op_read(&r, &m, n); break;
      case 3: op_peek_consume(&r, &m, n); break;
      case 4: op_find(&r, &m, data + i + 1, data[i + 3] % 3 + 1, n % 4096, n); break;
      default: {
        unsigned char buf[64];
        size_t got = ring_copy(&r, n % (m.n + 1), buf, sizeof buf);
        size_t off = n % (m.n + 1);
        check(got == (m.n - off < sizeof buf ? m.n - off : sizeof buf) && memcmp(buf, m.q + off, got) == 0);
      }
    }
    check(ring_used(&r) == m.n);
  }
  ring_destroy(&r);
  return 0;
}
