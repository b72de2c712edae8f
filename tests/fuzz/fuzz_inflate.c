/* fuzz_inflate.c: bounded decompression (net/inflate.c). The first input byte picks the
 * kind (gzip, deflate, raw), the output cap and a seed; the rest is compressed data.
 * Decoding it at once and in random input and output pieces must give the same bytes
 * and the same outcome; the output never passes the cap, with or without a ratio cap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inflate.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static const uint64_t CAPS[4] = { 65536, 4096, 100, 1 };

typedef struct run {
  int r, fin;
  size_t out_n;
  char err[INFLATE_ERR_MAX];
} run;

static void decode(inflate_kind kind, int window, uint64_t cap, uint32_t ratio, const uint8_t *p,
                   size_t n, uint32_t seed, uint8_t *out, size_t out_max, run *res) {
  net_inflate f;
  size_t i = 0, o = 0;
  int r = INFLATE_MORE;
  check(inflate_init(&f, kind, window, cap, ratio) == 0);
  for (int idle = 0; idle < 2;) {
    size_t give = n - i, room = out_max - o, used, made;
    if (seed) {
      seed = seed * 1103515245u + 12345u;
      give = give ? 1 + (seed >> 8) % (give < 64 ? give : 64) : 0;
      room = 1 + (seed >> 20) % (room < 2000 ? room : 2000);
    }
    r = inflate_feed(&f, p + i, give, &used, out + o, room, &made);
    check(used <= give && made <= room);
    i += used;
    o += made;
    check(o <= cap);
    if (r < 0) break;
    idle = (used == 0 && made == 0) ? idle + 1 : 0;
  }
  res->r = r;
  res->fin = r < 0 ? r : inflate_finish(&f);
  res->out_n = o;
  memcpy(res->err, f.err, sizeof res->err);
  inflate_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t sel = data[0];
  inflate_kind kind = (inflate_kind)((sel & 3) % 3);
  uint64_t cap = CAPS[(sel >> 2) & 3];
  uint32_t seed = (uint32_t)(sel >> 4) * 2654435761u + (uint32_t)size;
  const uint8_t *p = data + 1;
  size_t n = size - 1, out_max = (size_t)cap + 1;
  uint8_t *a = malloc(out_max), *b = malloc(out_max);
  run ra, rb, rc;
  int window = 9 + (sel >> 4) % 7;   /* 9..15 */
  decode(kind, window, cap, 0, p, n, 0, a, out_max, &ra);
  decode(kind, window, cap, 0, p, n, seed | 1, b, out_max, &rb);
  /* zlib checks a distance against the window plus what the current call wrote, so
   * a raw stream reaching past a window under 32 KiB is refused or decoded
   * depending on the room given: invariance holds for the full window only */
  if (kind != INFLATE_RAW || window == 15) {
    check(ra.r == rb.r && ra.fin == rb.fin && strcmp(ra.err, rb.err) == 0);
    if (ra.r >= 0 || ra.r == INFLATE_LIMIT) check(ra.out_n == rb.out_n && !memcmp(a, b, ra.out_n));
  }
  /* with a ratio cap: never more output than without one, never past the cap */
  decode(kind, window, cap, 2, p, n, seed | 1, b, out_max, &rc);
  check(rc.out_n <= ra.out_n || ra.r < 0);
  free(a);
  free(b);
  return 0;
}
