/* fuzz_ws_hs.c: the handshake and close values a peer sends:
 * net__ws_close_parse (a peer's close payload), net__ws_key_valid (a client's
 * Sec-WebSocket-Key), net__ws_accept_ok (a server's Sec-WebSocket-Accept).
 * Checked against plain references. Input: selector byte, then the value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../unit/utf8_ref.h"
#include "ws_hs.h"

static void check(int ok) { if (!ok) __builtin_trap(); }

static int b64(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t n = size - 1;
  uint8_t *v = malloc(n ? n : 1);   /* exact size: reads past it are caught */
  memcpy(v, data + 1, n);
  switch (data[0] % 3) {
    case 0: {
      unsigned code;
      const uint8_t *reason;
      size_t rlen;
      unsigned bad = net__ws_close_parse(v, n, &code, &reason, &rlen);
      unsigned want;
      if (n == 0) want = 0;
      else if (n == 1 || n > 125) want = 1002;
      else {
        unsigned c = (unsigned)v[0] << 8 | v[1];
        bool ok = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
        want = !ok ? 1002 : utf8_ref(v + 2, n - 2) != 1 ? 1007 : 0;
      }
      check(bad == want);
      if (!bad) check(rlen == (n ? n - 2 : 0) && reason >= v && reason + rlen <= v + (n ? n : 0));
      break;
    }
    case 1: {
      bool got = net__ws_key_valid((const char *)v, n);
      /* 22 base64 symbols then "==" (RFC 6455 4.2.1: decodes to 16 bytes) */
      bool want = n == 24 && v[22] == '=' && v[23] == '=';
      for (size_t i = 0; want && i < 22; i++) want = b64(v[i]) >= 0;
      if (want && (b64(v[21]) & 15)) want = got;   /* non-canonical last symbol: either way */
      check(got == want);
      char acc[NET_WS_ACCEPT_LEN + 1];
      check(net__ws_accept((const char *)v, n, acc) == got);
      if (got) check(strlen(acc) == NET_WS_ACCEPT_LEN && net__ws_accept_ok((const char *)v, n, acc, NET_WS_ACCEPT_LEN));
      break;
    }
    default: {
      /* a server's Accept value against a fixed key */
      static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
      bool got = net__ws_accept_ok(key, 24, (const char *)v, n);
      check(got == (n == 28 && !memcmp(v, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28)));
    }
  }
  free(v);
  return 0;
}
