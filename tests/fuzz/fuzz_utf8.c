/* fuzz_utf8.c: the streaming UTF-8 validator (net/ws_utf8.c) against a plain
 * decoder written for the test. Input: 2 bytes seeding the splits, then the
 * text. Whole or in random pieces, the verdict is the reference's; a prefix
 * is refused exactly when no continuation could make it valid. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_utf8.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

/* Could `missing` continuation bytes after this prefix give a valid code point? */
static bool completable(uint32_t prefix, unsigned len, unsigned missing) {
  static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
  uint32_t lo = prefix << 6 * missing, hi = lo | ((1u << 6 * missing) - 1);
  if (lo < min[len]) lo = min[len];
  if (hi > 0x10ffff) hi = 0x10ffff;
  return lo <= hi && !(lo >= 0xd800 && hi <= 0xdfff);
}

/* 1 valid, 0 invalid, 2 a valid text cut inside its last character. */
static int reference(const uint8_t *s, size_t n) {
  static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    unsigned len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!len) return 0;
    uint32_t cp = len == 1 ? c : c & (0x7fu >> len);
    for (unsigned k = 1; k < len; k++) {
      if (i + k == n) return completable(cp, len, len - k) ? 2 : 0;
      if ((s[i + k] & 0xc0) != 0x80) return 0;
      cp = cp << 6 | (s[i + k] & 0x3f);
    }
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    i += len;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint32_t seed = (uint32_t)data[0] << 8 | data[1];
  uint8_t *s = malloc(size - 2 ? size - 2 : 1);
  size_t n = size - 2;
  memcpy(s, data + 2, n);
  int ref = reference(s, n);
  check(net__utf8_valid(s, n) == (ref == 1));
  net_utf8 u;
  net__utf8_init(&u);
  bool alive = true;
  for (size_t at = 0; at < n;) {
    seed = seed * 1103515245u + 12345u;
    size_t step = 1 + (seed >> 8) % (n - at);
    /* each piece in its own exact-size block */
    uint8_t *piece = malloc(step);
    memcpy(piece, s + at, step);
    bool ok = net__utf8_feed(&u, piece, step);
    free(piece);
    at += step;
    check(ok == (reference(s, at) != 0));
    check(!alive ? !ok : true);
    alive = ok;
  }
  check((alive && net__utf8_done(&u)) == (ref == 1));
  free(s);
  return 0;
}
