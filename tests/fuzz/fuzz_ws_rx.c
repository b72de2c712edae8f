/* fuzz_ws_rx.c: the receiving side of a websocket (net/ws_rx.c):
 * frames from a real connection's receive buffer gathered into messages,
 * inflated (permessage-deflate, with and without context takeover), UTF-8
 * checked, control frames and the peer's close, delivered as records into
 * the owner's queue: the path behind fuzz_ws_frame's parser. Input: two
 * config bytes (role, compression, size cap; window bits, context takeover,
 * feed size), then either raw stream bytes or (first byte's bit 7) a
 * script of frames the harness builds (and compresses) itself. Checks: never
 * a crash; every record is at most max_message, a text one valid UTF-8. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "../unit/utf8_ref.h"
#include "ws.h"

static void check(int ok) { if (!ok) __builtin_trap(); }

static const uint64_t CAPS[4] = {125, 1000, 70000, 1u << 20};
#define STREAM_MAX (1u << 20)

/* the frames a script spells: [flags][len][payload...] */
static size_t script(const uint8_t *d, size_t n, bool server, bool compress, int bits, uint8_t *s) {
  size_t o = 0;
  z_stream z;
  memset(&z, 0, sizeof z);
  deflateInit2(&z, 6, Z_DEFLATED, -(bits < 9 ? 9 : bits), 8, Z_DEFAULT_STRATEGY);
  static uint8_t pay[65536 + 64];
  while (n >= 2 && o < STREAM_MAX - 70000) {
    uint8_t f = d[0];
    size_t len = d[1];
    d += 2, n -= 2;
    if (f & 0x40) len *= 251;   /* long ones: synthetic payload */
    size_t plen = 0;
    static const uint8_t ops[8] = {0, 1, 2, 8, 9, 10, 1, 2};
    unsigned op = ops[f & 7];
    bool fin = f & 8, rsv1 = false;
    for (size_t i = 0; i < len; i++) pay[plen++] = (f & 0x40) ? (uint8_t)("hello world "[i % 12]) : (n ? (n--, *d++) : 0);
    if (compress && (f & 0x10) && op < 8) {   /* deflate it; rsv1 on a first frame */
      static uint8_t zout[65536 + 1024];
      z.next_in = pay, z.avail_in = (uInt)plen, z.next_out = zout, z.avail_out = sizeof zout;
      deflate(&z, fin ? Z_SYNC_FLUSH : Z_NO_FLUSH);
      plen = sizeof zout - z.avail_out;
      if (fin && plen >= 4) plen -= 4;   /* the 00 00 ff ff tail */
      memcpy(pay, zout, plen);
      rsv1 = op != 0;
      if ((f & 0x20) && fin) deflateReset(&z);   /* no context takeover, this side */
    }
    uint8_t key[4] = {(uint8_t)f, 0x5a, (uint8_t)len, 0xa5}, h[NET_WS_HEADER_MAX];
    size_t hl = net__ws_header(h, op, fin, rsv1, plen, server ? key : NULL);
    memcpy(s + o, h, hl);
    memcpy(s + o + hl, pay, plen);
    if (server) net__ws_mask(s + o + hl, plen, key, 0);
    o += hl + plen;
  }
  deflateEnd(&z);
  return o;
}

static void drain(net_ws *w) {
  uint8_t h[WS_REC_HDR];
  static uint8_t m[(1u << 20) + 1];
  while (ring_copy(&w->rx, 0, h, sizeof h) == sizeof h) {
    uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    check(len <= w->conf.max_message && ring_used(&w->rx) >= WS_REC_HDR + (size_t)len);
    ring_consume(&w->rx, WS_REC_HDR);
    check(ring_read(&w->rx, m, len) == len);
    check(h[4] == NET_WS_TEXT || h[4] == NET_WS_BINARY);
    if (h[4] == NET_WS_TEXT) check(utf8_ref(m, len) == 1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t *s;
  if (!s) s = malloc(STREAM_MAX);
  if (size < 2) return 0;
  uint8_t sel = data[0], sel2 = data[1];
  data += 2, size -= 2;
  net_ws_role role = sel & 1 ? NET_WS_SERVER : NET_WS_CLIENT;
  bool compressed = sel & 2;
  net_ws *w = net__ws_new(role);
  check(w != NULL);
  w->conf.role = role;
  w->conf.max_message = CAPS[(sel >> 2) & 3];
  w->conf.close_timeout_ms = 1000;
  net__ws_queues(w);
  w->compressed = compressed;
  int bits = 8 + (sel2 & 7);
  w->deflate.server_max_window_bits = w->deflate.client_max_window_bits = (uint8_t)(bits < 9 && role == NET_WS_SERVER ? 9 : bits);
  w->deflate.server_no_context_takeover = w->deflate.client_no_context_takeover = sel2 & 8;
  net_conn_opts o = {.buffer_size = NET_CHUNK_SIZE};
  net_conn *c = net__conn_new(&o, 2);
  check(c != NULL);
  atomic_store(&c->state, NET_SUCCESS);
  w->c = c;
  w->phase = WP_OPEN;
  net__ws_parser_init(&w->p, role, compressed, w->conf.max_message);
  size_t n;
  if (sel & 0x80) {
    n = script(data, size, role == NET_WS_SERVER, compressed, w->deflate.client_max_window_bits, s);
  } else {
    n = size < STREAM_MAX ? size : STREAM_MAX;
    memcpy(s, data, n);
  }
  size_t fed = 0, feed = 1 + ((size_t)sel2 >> 4) * 997;
  for (int rounds = 0; rounds < 4096; rounds++) {
    if (fed < n) fed += ring_write(&c->rx, s + fed, n - fed < feed ? n - fed : feed);
    else atomic_store(&c->rx_eof, 1);
    bool going = net__ws_rx_pump(w);
    drain(w);
    if (!going || w->close_got || (fed == n && atomic_load(&c->rx_eof))) break;
  }
  net__ws_rx_free(w);
  net__ws_tx_free(w);
  ring_destroy(&w->rx);
  ring_destroy(&w->tx);
  http_head_free(&w->head);
  net__conn_destroy(c);
  net__free_aligned(w);
  return 0;
}
