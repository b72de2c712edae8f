/* ws_utf8.c: UTF-8 validation as a state machine whose transitions for one
 * byte are packed in one 64-bit word (6 bits per state), so a step is a load
 * that does not wait for the state, a shift and a mask; ASCII runs go 16
 * bytes a step. Any thread; pure.
 * The states follow the well-formed byte sequences of Unicode's table 3-7:
 * after E0 the next byte is A0..BF (no overlongs), after ED 80..9F (no
 * surrogates), after F0 90..BF, after F4 80..8F (nothing past U+10FFFF). */
#include <string.h>

#include "net.h"
#include "ws_utf8.h"

/* BAD is 0, so every transition not listed leads there, and it never leaves. */
enum { BAD, OK, NEED1, NEED2, NEED3, AFTER_E0, AFTER_ED, AFTER_F0, AFTER_F4 };

#define S(x) ((x) * 6)   /* a state as the shift that selects its transition */
#define E(from, to) ((uint64_t)S(to) << S(from))
#define CONT(x) (E(NEED1, OK) | E(NEED2, NEED1) | E(NEED3, NEED2) | (x))
#define C_ASCII E(OK, OK)
#define C_80_8F CONT(E(AFTER_ED, NEED1) | E(AFTER_F4, NEED2))
#define C_90_9F CONT(E(AFTER_ED, NEED1) | E(AFTER_F0, NEED2))
#define C_A0_BF CONT(E(AFTER_E0, NEED1) | E(AFTER_F0, NEED2))
#define C_LEAD2 E(OK, NEED1)
#define C_E0 E(OK, AFTER_E0)
#define C_LEAD3 E(OK, NEED2)
#define C_ED E(OK, AFTER_ED)
#define C_F0 E(OK, AFTER_F0)
#define C_LEAD4 E(OK, NEED3)
#define C_F4 E(OK, AFTER_F4)
#define C_NEVER 0   /* C0, C1, F5..FF */

#define R4(c) c, c, c, c
#define R16(c) R4(c), R4(c), R4(c), R4(c)
static const uint64_t step_of[256] = {
    R16(C_ASCII), R16(C_ASCII), R16(C_ASCII), R16(C_ASCII),
    R16(C_ASCII), R16(C_ASCII), R16(C_ASCII), R16(C_ASCII),
    R16(C_80_8F), R16(C_90_9F), R16(C_A0_BF), R16(C_A0_BF),
    C_NEVER, C_NEVER, C_LEAD2, C_LEAD2, R4(C_LEAD2), R4(C_LEAD2), R4(C_LEAD2), R16(C_LEAD2),
    C_E0, C_LEAD3, C_LEAD3, C_LEAD3, C_LEAD3, R4(C_LEAD3), R4(C_LEAD3), C_ED, C_LEAD3, C_LEAD3,
    C_F0, C_LEAD4, C_LEAD4, C_LEAD4, C_F4, C_NEVER, C_NEVER, C_NEVER, R4(C_NEVER), R4(C_NEVER),
};

#define HIGH_BITS 0x8080808080808080ull

static size_t ascii_run(const uint8_t *p, size_t i, size_t n) {
  uint64_t a, b;
  while (i + 16 <= n) {
    memcpy(&a, p + i, 8);
    memcpy(&b, p + i + 8, 8);
    if ((a | b) & HIGH_BITS) break;
    i += 16;
  }
  while (i < n && p[i] < 0x80) i++;
  return i;
}

bool net__utf8_feed(net_utf8 *u, const void *data, size_t n) {
  const uint8_t *p = data;
  /* net_utf8's numbering: 0 between characters, 1 invalid, the rest as here */
  uint64_t s = S(u->state == 0 ? OK : u->state == 1 ? BAD : u->state);
  size_t i = 0;
  /* Only the low 6 bits of s are the state: the shift uses no more (as the
   * CPU's own shift does), so a step is a single shift on the chain. */
  while (i < n && (s & 63) != S(BAD)) {
    if ((s & 63) == S(OK) && p[i] < 0x80 && (i = ascii_run(p, i, n)) == n) break;
    /* up to 16 bytes without a branch: BAD absorbs, so one check after is enough */
    size_t stop = n - i < 16 ? n : i + 16;
    for (; i < stop; i++) s = step_of[p[i]] >> (s & 63);
  }
  unsigned st = (unsigned)((s & 63) / 6);
  u->state = (uint8_t)(st == OK ? 0 : st == BAD ? 1 : st);
  return st != BAD;
}

bool net__utf8_valid(const void *p, size_t n) {
  net_utf8 u;
  net__utf8_init(&u);
  return net__utf8_feed(&u, p, n) && net__utf8_done(&u);
}

int net_utf8_valid(const void *p, size_t n) { return net__utf8_valid(p, n); }
