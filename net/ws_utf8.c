/* ws_utf8.c: UTF-8 validation as a table-driven state machine, with an ASCII
 * fast path of 16 bytes a step. Any thread; pure.
 * The states follow the well-formed byte sequences of Unicode's table 3-7:
 * after E0 the next byte is A0..BF (no overlongs), after ED 80..9F (no
 * surrogates), after F0 90..BF, after F4 80..8F (nothing past U+10FFFF). */
#include <string.h>

#include "ws_utf8.h"

enum { OK, BAD, NEED1, NEED2, NEED3, AFTER_E0, AFTER_ED, AFTER_F0, AFTER_F4, NSTATES };

/* byte classes: 0 ASCII, 1 80..8F, 2 90..9F, 3 A0..BF, 4 C2..DF, 5 E0,
 * 6 E1..EC EE..EF, 7 ED, 8 F0, 9 F1..F3, 10 F4, 11 never (C0 C1 F5..FF) */
#define R16(c) c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c
static const uint8_t byte_class[256] = {
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0),
    R16(1), R16(2), R16(3), R16(3),
    11, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, R16(4),
    5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 7, 6, 6,
    8, 9, 9, 9, 10, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11,
};

#define B BAD
static const uint8_t next_state[NSTATES][12] = {
    [OK] = {OK, B, B, B, NEED1, AFTER_E0, NEED2, AFTER_ED, AFTER_F0, NEED3, AFTER_F4, B},
    [BAD] = {B, B, B, B, B, B, B, B, B, B, B, B},
    [NEED1] = {B, OK, OK, OK, B, B, B, B, B, B, B, B},
    [NEED2] = {B, NEED1, NEED1, NEED1, B, B, B, B, B, B, B, B},
    [NEED3] = {B, NEED2, NEED2, NEED2, B, B, B, B, B, B, B, B},
    [AFTER_E0] = {B, B, B, NEED1, B, B, B, B, B, B, B, B},
    [AFTER_ED] = {B, NEED1, NEED1, B, B, B, B, B, B, B, B, B},
    [AFTER_F0] = {B, B, NEED2, NEED2, B, B, B, B, B, B, B, B},
    [AFTER_F4] = {B, NEED2, B, B, B, B, B, B, B, B, B, B},
};
#undef B

#define HIGH_BITS 0x8080808080808080ull

bool net__utf8_feed(net_utf8 *u, const void *data, size_t n) {
  const uint8_t *p = data;
  unsigned s = u->state;
  size_t i = 0;
  while (i < n && s != BAD) {
    if (s == OK) {
      uint64_t a, b;
      while (i + 16 <= n) {
        memcpy(&a, p + i, 8);
        memcpy(&b, p + i + 8, 8);
        if ((a | b) & HIGH_BITS) break;
        i += 16;
      }
      while (i < n && p[i] < 0x80) i++;
      if (i == n) break;
    }
    s = next_state[s][byte_class[p[i++]]];
  }
  u->state = (uint8_t)s;
  return s != BAD;
}

bool net__utf8_valid(const void *p, size_t n) {
  net_utf8 u;
  net__utf8_init(&u);
  return net__utf8_feed(&u, p, n) && net__utf8_done(&u);
}
