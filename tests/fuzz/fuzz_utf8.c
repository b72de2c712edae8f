/* fuzz_utf8.c: the streaming UTF-8 validator (net/ws_utf8.c) against a plain
 * decoder written for the test. Input: 2 bytes seeding the splits, then the
 * text. Whole or in random pieces, the verdict is the reference's; a prefix
 * is refused exactly when no continuation could make it valid. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/utf8_ref.h"
#include "ws_utf8.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint32_t seed = (uint32_t)data[0] << 8 | data[1];
  uint8_t *s = malloc(size - 2 ? size - 2 : 1);
  size_t n = size - 2;
  memcpy(s, data + 2, n);
  int ref = utf8_ref(s, n);
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
    check(ok == (utf8_ref(s, at) != 0));
    check(!alive ? !ok : true);
    alive = ok;
  }
  check((alive && net__utf8_done(&u)) == (ref == 1));
  free(s);
  return 0;
}
