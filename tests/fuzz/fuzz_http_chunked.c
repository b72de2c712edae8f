/* fuzz_http_chunked.c: chunked bodies (net/http_chunked.c). The first input byte seeds
 * the split; the rest is the stream. Fed in random pieces through http_chunked_feed it
 * must give what http_chunked_decode gives over the whole buffer (result, bytes used,
 * body, message), and a finished body must be what a plain reference decoder of the
 * chunked grammar finds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static int hex(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The grammar, read plainly: 1 done (body in out, *used), 0 cut short, -1 malformed.
 * Extensions and trailer lines are skipped, not judged. */
static int reference(const uint8_t *p, size_t n, uint8_t *out, size_t *out_n, size_t *used) {
  size_t i = 0, o = 0;
  for (;;) {
    uint64_t size = 0;
    int digits = 0;
    while (i < n && hex(p[i]) >= 0) {
      if (size > (UINT64_MAX >> 4)) return -1;
      size = size * 16 + (uint64_t)hex(p[i++]);
      digits++;
    }
    if (i == n) return 0;
    if (!digits) return -1;
    while (i < n && p[i] != '\r' && p[i] != '\n') i++;
    if (i + 1 >= n) return i < n && p[i] == '\n' ? -1 : 0;
    if (p[i] != '\r' || p[i + 1] != '\n') return -1;
    i += 2;
    if (size == 0) break;
    if (size > n - i) return 0;
    memcpy(out + o, p + i, (size_t)size);
    o += (size_t)size;
    i += (size_t)size;
    if (i + 2 > n) return 0;
    if (p[i] != '\r' || p[i + 1] != '\n') return -1;
    i += 2;
  }
  for (;;) {   /* trailer lines up to an empty one */
    const uint8_t *nl = memchr(p + i, '\n', n - i);
    if (!nl) return 0;
    size_t end = (size_t)(nl - p) + 1;
    if (end - i == 2) {
      *used = end;
      *out_n = o;
      return 1;
    }
    i = end;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint32_t seed = data[0] * 2654435761u + (uint32_t)size;
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  char *whole = malloc(n + 1), *split = malloc(n + 1);
  memcpy(whole, p, n);
  http_chunked a, b;
  size_t ua, oa, off = 0, ob = 0;
  http_chunked_init(&a);
  http_chunked_init(&b);
  http_result ra = http_chunked_decode(&a, whole, n, &ua, &oa), rb = HTTP_MORE;
  check(ua <= n && oa <= ua);
  while (off < n) {
    size_t k = n - off, used, bl;
    const char *body;
    seed = seed * 1103515245u + 12345u;
    k = 1 + (seed >> 16) % (k < 50 ? k : 50);
    rb = http_chunked_feed(&b, (const char *)p + off, k, &used, &body, &bl);
    check(used <= k && bl <= used);
    check(bl == 0 || (body >= (const char *)p + off && body + bl <= (const char *)p + off + used));
    if (bl) memcpy(split + ob, body, bl);
    ob += bl;
    off += used;
    if (rb != HTTP_MORE) break;
  }
  check(ra == rb);   /* body and position count only when it did not fail */
  if (ra == HTTP_ERROR) check(strcmp(a.err, b.err) == 0);
  else check(ua == off && oa == ob && memcmp(whole, split, oa) == 0);
  uint8_t *ref = malloc(n + 1);
  size_t rn = 0, ru = 0;
  int rr = reference(p, n, ref, &rn, &ru);
  if (ra == HTTP_DONE) check(rr == 1 && rn == oa && ru == ua && memcmp(ref, whole, rn) == 0);
  if (rr == -1) check(ra == HTTP_ERROR);
  if (rr == 1 && ra != HTTP_DONE) check(ra == HTTP_ERROR);   /* a trailer it refused */
  free(ref);
  free(whole);
  free(split);
  http_chunked_free(&a);
  http_chunked_free(&b);
  return 0;
}
