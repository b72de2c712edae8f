/* ws_frame.c: WebSocket frame parsing and building (RFC 6455 section 5).
 * Any thread; pure: the caller hands in bytes and gets events back.
 * Strictness: a length not in its shortest encoding is refused (section 5.2
 * says the minimal number of bytes MUST be used), as is every reserved bit
 * and opcode; each failure carries the close code the peer gets. */
#include <string.h>

#include "ws_frame.h"

enum { ST_HEADER, ST_PAYLOAD, ST_END, ST_ERROR };

void net__ws_parser_init(net_ws_parser *p, net_ws_role role, bool rsv1_ok, uint64_t max_message) {
  memset(p, 0, sizeof *p);
  p->role = role;
  p->rsv1_ok = rsv1_ok;
  p->max_message = max_message;
  p->state = ST_HEADER;
}

static net_ws_event fail(net_ws_parser *p, uint16_t code, const char *why) {
  p->state = ST_ERROR;
  p->close_code = code;
  p->why = why;
  return NET_WS_ERROR;
}

/* Header bytes needed, knowing the first `have` of them (have >= 2 for more than 2). */
static unsigned header_need(const uint8_t *h, unsigned have) {
  if (have < 2) return 2;
  unsigned len7 = h[1] & 0x7f, n = 2;
  if (len7 == 126) n += 2;
  if (len7 == 127) n += 8;
  if (h[1] & 0x80) n += 4;
  return n;
}

/* What the first two bytes alone can refuse; NULL when they are acceptable. */
static const char *check_start(const net_ws_parser *p, uint8_t b0, uint8_t b1) {
  unsigned op = b0 & 0x0f, len7 = b1 & 0x7f;
  bool fin = b0 & 0x80, rsv1 = b0 & 0x40, masked = b1 & 0x80;
  if (b0 & 0x30) return "reserved bit RSV2 or RSV3 set";
  if ((op > NET_WS_OP_BINARY && op < NET_WS_OP_CLOSE) || op > NET_WS_OP_PONG)
    return "reserved opcode";
  if (p->role == NET_WS_SERVER && !masked) return "unmasked frame from a client";
  if (p->role == NET_WS_CLIENT && masked) return "masked frame from a server";
  if (rsv1 && !p->rsv1_ok) return "RSV1 set but no extension was negotiated";
  if (op >= NET_WS_OP_CLOSE) {
    if (!fin) return "fragmented control frame";
    if (len7 > NET_WS_CONTROL_MAX) return "control frame payload over 125 bytes";
    if (rsv1) return "RSV1 set on a control frame";
    return NULL;
  }
  if (op == NET_WS_OP_CONT && !p->in_message) return "continuation frame without a message";
  if (op != NET_WS_OP_CONT && p->in_message) return "new data message inside a fragmented one";
  if (op == NET_WS_OP_CONT && rsv1) return "RSV1 set on a continuation frame";
  return NULL;
}

static uint64_t be(const uint8_t *b, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++) v = v << 8 | b[i];
  return v;
}

/* The wire size a message may take: compressed data can exceed its inflated
 * size by a few bytes per stored block (5 per 64 KiB), so it gets that slack;
 * the inflated size is checked against max_message by whoever inflates. */
static uint64_t wire_cap(const net_ws_parser *p, bool compressed) {
  uint64_t cap = p->max_message;
  if (!compressed) return cap;
  uint64_t slack = cap / 4096 + 64;
  return cap > UINT64_MAX - slack ? UINT64_MAX : cap + slack;
}

/* What a frame counts against that cap: a compressed fragment's first
 * FRAME_FLUSH bytes are its flush's (a sync marker, a block header), which a
 * sender that compresses fragment by fragment adds to every one. */
#define FRAME_FLUSH 16
static uint64_t wire_counted(bool compressed, uint64_t len) {
  if (!compressed) return len;
  return len > FRAME_FLUSH ? len - FRAME_FLUSH : 0;
}

/* The whole header is in p->hdr: decode it and open the frame. */
static net_ws_event header_done(net_ws_parser *p) {
  const uint8_t *h = p->hdr;
  unsigned len7 = h[1] & 0x7f, at = 2;
  uint64_t len = len7;
  if (len7 == 126) {
    len = be(h + 2, 2), at = 4;
    if (len < 126) return fail(p, NET_WS_CLOSE_PROTOCOL, "16-bit length not minimal");
  } else if (len7 == 127) {
    len = be(h + 2, 8), at = 10;
    if (len >> 63) return fail(p, NET_WS_CLOSE_PROTOCOL, "64-bit length with the high bit set");
    if (len <= 0xffff) return fail(p, NET_WS_CLOSE_PROTOCOL, "64-bit length not minimal");
  }
  net_ws_frame_info *f = &p->frame;
  f->len = len;
  f->opcode = h[0] & 0x0f;
  f->fin = h[0] & 0x80;
  f->rsv1 = h[0] & 0x40;
  f->masked = h[1] & 0x80;
  if (f->masked) memcpy(f->key, h + at, 4);
  else memset(f->key, 0, 4);
  if (f->opcode < NET_WS_OP_CLOSE) {
    if (f->opcode != NET_WS_OP_CONT) {
      p->msg_opcode = f->opcode;
      p->msg_rsv1 = f->rsv1;
      p->msg_len = 0;
    }
    uint64_t cap = wire_cap(p, p->msg_rsv1), counted = wire_counted(p->msg_rsv1, len);
    if (counted > cap || p->msg_len > cap - counted)
      return fail(p, NET_WS_CLOSE_TOO_BIG, "message over the size limit");
    p->msg_len += counted;
    p->in_message = !f->fin;
  }
  p->left = len;
  p->key_at = 0;
  p->hdr_have = 0;
  p->state = len ? ST_PAYLOAD : ST_END;
  return NET_WS_HEADER;
}

static net_ws_event parse_header(net_ws_parser *p, const uint8_t *buf, size_t len, size_t *used) {
  size_t i = 0;
  for (;;) {
    unsigned need = header_need(p->hdr, p->hdr_have);
    while (p->hdr_have < need && i < len) p->hdr[p->hdr_have++] = buf[i++];
    *used = i;
    if (p->hdr_have < need) return NET_WS_MORE;
    if (need == 2) {
      const char *why = check_start(p, p->hdr[0], p->hdr[1]);
      if (why) return fail(p, NET_WS_CLOSE_PROTOCOL, why);
      if (header_need(p->hdr, 2) > 2) continue;
    }
    return header_done(p);
  }
}

net_ws_event net__ws_parse(net_ws_parser *p, uint8_t *buf, size_t len, size_t *used,
                           uint8_t **piece, size_t *piece_len) {
  *used = 0;
  *piece = NULL;
  *piece_len = 0;
  switch (p->state) {
  case ST_ERROR:
    return NET_WS_ERROR;
  case ST_END:
    p->state = ST_HEADER;
    return NET_WS_END;
  case ST_HEADER:
    return parse_header(p, buf, len, used);
  default:
    break;
  }
  if (!len) return NET_WS_MORE;
  size_t n = len < p->left ? len : (size_t)p->left;
  if (p->frame.masked) p->key_at = net__ws_mask(buf, n, p->frame.key, p->key_at);
  p->left -= n;
  if (!p->left) p->state = ST_END;
  *used = n;
  *piece = buf;
  *piece_len = n;
  return NET_WS_PAYLOAD;
}

/* ---- building ------------------------------------------------------------- */

size_t net__ws_header(uint8_t out[NET_WS_HEADER_MAX], unsigned opcode, bool fin, bool rsv1,
                      uint64_t len, const uint8_t *key) {
  size_t n = 2;
  uint8_t m = key ? 0x80 : 0;
  out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
  if (len < 126) {
    out[1] = (uint8_t)(m | len);
  } else if (len <= 0xffff) {
    out[1] = m | 126;
    out[2] = (uint8_t)(len >> 8), out[3] = (uint8_t)len;
    n = 4;
  } else {
    out[1] = m | 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    n = 10;
  }
  if (key) memcpy(out + n, key, 4), n += 4;
  return n;
}

unsigned net__ws_mask(uint8_t *data, size_t n, const uint8_t key[4], unsigned at) {
  uint8_t k8[8];
  uint64_t k, w;
  for (unsigned j = 0; j < 8; j++) k8[j] = key[(at + j) & 3];
  memcpy(&k, k8, 8);
  size_t i = 0;
  /* a word at a time; the key pattern repeats every 4 bytes, so every 8 too */
  for (; i + 8 <= n; i += 8) {
    memcpy(&w, data + i, 8);
    w ^= k;
    memcpy(data + i, &w, 8);
  }
  for (; i < n; i++) data[i] ^= k8[i & 7];
  return (unsigned)((at + n) & 3);
}

/* ---- the generator -------------------------------------------------------- */

bool net__ws_rng_init(net_ws_rng *r) {
  static const unsigned char who[] = "sluice websocket";
  memset(r, 0, sizeof *r);
  mbedtls_entropy_init(&r->entropy);
  mbedtls_ctr_drbg_init(&r->drbg);
  r->at = sizeof r->buf;
  if (mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy, who, sizeof who) != 0) {
    net__ws_rng_free(r);
    return false;
  }
  r->ready = true;
  return true;
}

void net__ws_rng_free(net_ws_rng *r) {
  mbedtls_ctr_drbg_free(&r->drbg);
  mbedtls_entropy_free(&r->entropy);
  memset(r->buf, 0, sizeof r->buf);
  r->ready = false;
}

bool net__ws_rng_bytes(net_ws_rng *r, void *out, size_t n) {
  uint8_t *o = out;
  while (n) {
    if (!r->ready) return false;
    if (r->at == sizeof r->buf) {
      if (mbedtls_ctr_drbg_random(&r->drbg, r->buf, sizeof r->buf) != 0) return false;
      r->at = 0;
    }
    size_t take = sizeof r->buf - r->at;
    if (take > n) take = n;
    memcpy(o, r->buf + r->at, take);
    memset(r->buf + r->at, 0, take);   /* a key once handed out is not kept */
    r->at += (unsigned)take;
    o += take;
    n -= take;
  }
  return true;
}
