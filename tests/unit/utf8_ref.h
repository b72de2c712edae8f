/* utf8_ref.h: a plain UTF-8 decoder written for the tests, the reference the
 * validator in net/ws_utf8.c is checked against (tests/unit/test_ws.c and
 * tests/fuzz/fuzz_utf8.c): code points decoded one by one, the obvious way. */
#ifndef SLUICE_UTF8_REF_H
#define SLUICE_UTF8_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A sequence cut short after its prefix: could `missing` more continuation
 * bytes make it a valid code point? By the range the prefix still allows. */
static bool utf8_ref_completable(uint32_t prefix, unsigned len, unsigned missing) {
  static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
  uint32_t lo = prefix << 6 * missing, hi = lo | ((1u << 6 * missing) - 1);
  if (lo < min[len]) lo = min[len];
  if (hi > 0x10ffff) hi = 0x10ffff;
  return lo <= hi && !(lo >= 0xd800 && hi <= 0xdfff);
}

/* 1 valid, 0 invalid, 2 a valid text cut inside its last character. */
static int utf8_ref(const uint8_t *s, size_t n) {
  static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    unsigned len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!len) return 0;
    uint32_t cp = len == 1 ? c : c & (0x7fu >> len);
    for (unsigned k = 1; k < len; k++) {
      if (i + k == n) return utf8_ref_completable(cp, len, len - k) ? 2 : 0;
      if ((s[i + k] & 0xc0) != 0x80) return 0;
      cp = cp << 6 | (s[i + k] & 0x3f);
    }
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    i += len;
  }
  return 1;
}

#endif
