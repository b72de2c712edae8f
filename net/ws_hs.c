/* ws_hs.c: handshake values (keys, accept, subprotocols) and close payloads.
 * Any thread; pure but for the caller's generator. */
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>
#include <mbedtls/version.h>

#include "ws_hs.h"
#include "ws_utf8.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool net__ws_key_make(net_ws_rng *r, char out[NET_WS_KEY_LEN + 1]) {
  uint8_t nonce[16];
  size_t olen;
  if (!net__ws_rng_bytes(r, nonce, sizeof nonce)) return false;
  return mbedtls_base64_encode((unsigned char *)out, NET_WS_KEY_LEN + 1, &olen, nonce,
                               sizeof nonce) == 0 && olen == NET_WS_KEY_LEN;
}

bool net__ws_key_valid(const char *key, size_t len) {
  uint8_t raw[18];
  size_t olen;
  if (len != NET_WS_KEY_LEN || key[22] != '=' || key[23] != '=') return false;
  return mbedtls_base64_decode(raw, sizeof raw, &olen, (const unsigned char *)key, len) == 0 &&
         olen == 16;
}

bool net__ws_accept(const char *key, size_t len, char out[NET_WS_ACCEPT_LEN + 1]) {
  unsigned char in[NET_WS_KEY_LEN + sizeof ws_guid], digest[20];
  size_t olen;
  if (!net__ws_key_valid(key, len)) return false;
  memcpy(in, key, len);
  memcpy(in + len, ws_guid, sizeof ws_guid - 1);
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  if (mbedtls_sha1(in, len + sizeof ws_guid - 1, digest) != 0) return false;
#else
  if (mbedtls_sha1_ret(in, len + sizeof ws_guid - 1, digest) != 0) return false;
#endif
  return mbedtls_base64_encode((unsigned char *)out, NET_WS_ACCEPT_LEN + 1, &olen, digest,
                               sizeof digest) == 0 && olen == NET_WS_ACCEPT_LEN;
}

bool net__ws_accept_ok(const char *key, size_t keylen, const char *accept, size_t len) {
  char want[NET_WS_ACCEPT_LEN + 1];
  return net__ws_accept(key, keylen, want) && len == NET_WS_ACCEPT_LEN &&
         memcmp(want, accept, len) == 0;
}

/* ---- header lists ----------------------------------------------------------- */

bool net__ws_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static const char *skip_ows(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  return p;
}

int net__ws_list_token(const char **at, const char *end, const char **tok, size_t *toklen) {
  const char *p = *at;
  for (;;) {
    p = skip_ows(p, end);
    if (p == end) {
      *at = p;
      return 0;
    }
    if (*p != ',') break;
    p++;
  }
  const char *t = p;
  while (p < end && net__ws_tchar((unsigned char)*p)) p++;
  if (p == t) return -1;
  *tok = t;
  *toklen = (size_t)(p - t);
  p = skip_ows(p, end);
  if (p < end && *p != ',') return -1;
  *at = p;
  return 1;
}

/* ---- subprotocols ------------------------------------------------------------ */

static bool same(const char *a, size_t alen, const char *b) {
  return strlen(b) == alen && memcmp(a, b, alen) == 0;
}

int net__ws_protocol_pick(const char *offer, size_t len, const char *const *mine, size_t n) {
  const char *end = offer + len, *tok;
  size_t tlen;
  int r, best = -1;
  while ((r = net__ws_list_token(&offer, end, &tok, &tlen)) == 1)
    for (size_t i = 0; i < n && (best < 0 || i < (size_t)best); i++)
      if (same(tok, tlen, mine[i])) best = (int)i;
  return r < 0 ? -2 : best;
}

int net__ws_protocol_check(const char *answer, size_t len, const char *const *offered, size_t n) {
  if (!answer || !len) return -1;
  const char *end = answer + len, *tok, *more;
  size_t tlen, mlen;
  if (net__ws_list_token(&answer, end, &tok, &tlen) != 1) return -2;
  if (net__ws_list_token(&answer, end, &more, &mlen) != 0) return -2;   /* one, no more */
  for (size_t i = 0; i < n; i++)
    if (same(tok, tlen, offered[i])) return (int)i;
  return -2;
}

/* ---- close payloads ------------------------------------------------------------ */

bool net__ws_close_code_ok(unsigned code) {
  /* 1012-1014 are registered with IANA and sent by common servers */
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

int net__ws_close_build(uint8_t out[NET_WS_CONTROL_MAX], unsigned code, const char *reason,
                        size_t rlen) {
  if (!reason) rlen = 0;
  if (code == 0) return rlen ? -1 : 0;
  if (!net__ws_close_code_ok(code) || rlen > NET_WS_REASON_MAX) return -1;
  if (rlen && !net__utf8_valid(reason, rlen)) return -1;
  out[0] = (uint8_t)(code >> 8);
  out[1] = (uint8_t)code;
  if (rlen) memcpy(out + 2, reason, rlen);
  return (int)(2 + rlen);
}

unsigned net__ws_close_parse(const uint8_t *p, size_t n, unsigned *code, const uint8_t **reason,
                             size_t *rlen) {
  *code = NET_WS_CLOSE_NO_STATUS;
  *reason = p;
  *rlen = 0;
  if (n == 0) return 0;
  if (n == 1 || n > NET_WS_CONTROL_MAX) return NET_WS_CLOSE_PROTOCOL;
  *code = (unsigned)p[0] << 8 | p[1];
  if (!net__ws_close_code_ok(*code)) return NET_WS_CLOSE_PROTOCOL;
  if (!net__utf8_valid(p + 2, n - 2)) return NET_WS_CLOSE_INVALID_DATA;
  *reason = p + 2;
  *rlen = n - 2;
  return 0;
}
