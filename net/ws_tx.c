/* ws_tx.c: a websocket's sending side on the I/O thread: the owner's
 * message records out as frames (a fresh mask per client frame, fragments of
 * at most WS_FRAG so control frames can go between them, permessage-deflate
 * streamed in pieces), pongs, pings, the close frame; and the websocket's
 * end, which every part reaches. I/O thread. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

#include "alloc.h"
#include "ws.h"

#define AREA (NET_WS_HEADER_MAX + WS_FRAG)   /* a frame: header room, then payload */
#define ZIN 16384                             /* message bytes deflated per step */
#define DEFLATE_LEVEL 1                       /* the I/O thread's time matters more than the last bytes */
/* A sender may use less window than agreed: 4 KiB and a small hash keep a
 * compressor near 70 KiB instead of 260 KiB per websocket. */
#define DEFLATE_BITS 12
#define DEFLATE_MEM 5
#define OUT_KEEP 16384                        /* the frame buffer an idle websocket keeps */

/* ---- the end ----------------------------------------------------------------------- */

void net__ws_publish_end(net_ws *w, int close_code, const uint8_t *reason, size_t len) {
  if (atomic_load_explicit(&w->ended, memory_order_relaxed)) return;
  w->close_code = close_code;
  if (len > NET_WS_REASON_MAX) len = NET_WS_REASON_MAX;
  if (len) memcpy(w->close_reason, reason, len);
  w->close_reason_len = len;
  w->phase = WP_DONE;
  /* release: err, the close code and every message record come before */
  atomic_store_explicit(&w->ended, 1, memory_order_release);
  net__io_publish(&w->obj);
}

void net__ws_fail(net_ws *w, net_err code, const char *fmt, ...) {
  if (w->phase == WP_DONE) return;
  char msg[NET_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  net__seterr(&w->err, code, "ws %s: %s", w->where, msg);
  net__ws_publish_end(w, w->fail_code ? w->fail_code : NET_WS_CLOSE_ABNORMAL, NULL, 0);
}

/* ---- frames -------------------------------------------------------------------------- */

static net_ws_rng rng;   /* the I/O thread's, for every websocket (see ws_frame.h) */

net_ws_rng *net__ws_rng(void) {
  if (!rng.ready && !net__ws_rng_init(&rng)) return NULL;
  return &rng;
}

static bool out_cap(net_ws *w, size_t payload) {
  ws_frame_out *o = &w->out;
  size_t need = NET_WS_HEADER_MAX + payload;
  if (o->cap >= need) return true;
  uint8_t *b = net__realloc(o->buf, need);
  if (!b) return net__ws_fail(w, NET_E_LIMIT, "out of memory"), false;
  o->buf = b;
  o->cap = need;
  return true;
}

/* The payload at buf + NET_WS_HEADER_MAX becomes a whole frame: its header
 * just before it, masked when a client sends it. */
static bool finish_frame(net_ws *w, unsigned op, bool fin, bool rsv1, size_t len) {
  uint8_t h[NET_WS_HEADER_MAX], key[4];
  bool mask = w->conf.role == NET_WS_CLIENT;
  net_ws_rng *r = mask ? net__ws_rng() : NULL;
  if (mask && (!r || !net__ws_rng_bytes(r, key, sizeof key)))
    return net__ws_fail(w, NET_E_LIMIT, "the random generator for mask keys failed"), false;
  size_t hl = net__ws_header(h, op, fin, rsv1, len, mask ? key : NULL);
  uint8_t *payload = w->out.buf + NET_WS_HEADER_MAX;
  if (mask) net__ws_mask(payload, len, key, 0);
  memcpy(payload - hl, h, hl);
  w->out.pos = NET_WS_HEADER_MAX - hl;
  w->out.len = NET_WS_HEADER_MAX + len;
  return true;
}

static bool control(net_ws *w, unsigned op, const uint8_t *p, size_t n) {
  if (!out_cap(w, NET_WS_CONTROL_MAX)) return false;
  if (n) memcpy(w->out.buf + NET_WS_HEADER_MAX, p, n);
  if (!finish_frame(w, op, true, false, n)) return false;
  w->ctl_out += w->out.len - w->out.pos;   /* no sign that the peer reads (peer_taking, ws_io.c) */
  return true;
}

/* What is left of the frame being written into the connection: true when all went. */
static bool flush_out(net_ws *w) {
  ws_frame_out *o = &w->out;
  while (o->pos < o->len) {
    long n = net_conn_write(w->c, o->buf + o->pos, o->len - o->pos);
    if (n <= 0) return false;   /* full: it kicks us with room; failed: reading says */
    o->pos += (size_t)n;
  }
  o->pos = o->len = 0;
  return true;
}

static bool close_frame(net_ws *w, int code, const char *reason, size_t len) {
  uint8_t p[NET_WS_CONTROL_MAX];
  int n = net__ws_close_build(p, (unsigned)code, reason, len);
  if (n < 0) n = net__ws_close_build(p, (unsigned)code, "", 0);
  if (!control(w, NET_WS_OP_CLOSE, p, n < 0 ? 0 : (size_t)n)) return false;
  w->close_queued = true;
  return true;
}

void net__ws_tx_close(net_ws *w, int code, const char *reason) {
  w->fail_code = code;
  if (w->close_queued || !w->c || w->phase < WP_OPEN || !flush_out(w)) return;   /* best effort */
  if (close_frame(w, code, reason, strlen(reason))) flush_out(w);
}

/* ---- the owner's records --------------------------------------------------------------- */

static uint32_t rec_len(const uint8_t *h) {
  return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/* The next whole record's head, taken: false when none is whole yet. */
/* zlib cannot deflate with the 256-byte window a peer may grant (8 bits):
 * such an endpoint sends every message uncompressed, as it always may. */
static bool may_deflate(const net_ws *w) {
  bool client = w->conf.role == NET_WS_CLIENT;
  return (client ? w->deflate.client_max_window_bits : w->deflate.server_max_window_bits) > 8;
}

static bool take_record(net_ws *w) {
  uint8_t h[WS_REC_HDR];
  if (ring_copy(&w->tx, 0, h, sizeof h) != sizeof h || ring_used(&w->tx) < WS_REC_HDR + (size_t)rec_len(h))
    return false;
  ring_consume(&w->tx, WS_REC_HDR);
  w->tx_type = h[4];
  w->tx_left = rec_len(h);
  w->tx_first = true;
  w->tx_deflate = w->compressed && w->tx_type != WS_REC_PING && w->tx_left >= WS_COMPRESS_MIN && may_deflate(w);
  w->tx_flushed = false;
  w->zpend = 0;
  return true;
}

/* Nothing whole to send: say so, unless a record came meanwhile (Dekker with net_ws_send). */
static bool tx_idle(net_ws *w) {
  if (w->out.cap > OUT_KEEP) {   /* a big message's frame memory goes with it */
    net__free(w->out.buf);
    w->out = (ws_frame_out){0};
  }
  atomic_store(&w->tx_idle, 1);
  atomic_thread_fence(memory_order_seq_cst);
  uint8_t h[WS_REC_HDR];
  bool whole = ring_copy(&w->tx, 0, h, sizeof h) == sizeof h && ring_used(&w->tx) >= WS_REC_HDR + (size_t)rec_len(h);
  return !(whole && atomic_exchange(&w->tx_idle, 0));
}

static void record_done(net_ws *w) {
  w->tx_type = 0;
  net__io_activity(&w->obj);   /* room in the queue: a host asleep in a wait may send again */
}

static bool plain_frame(net_ws *w) {
  size_t n = w->tx_left < WS_FRAG ? (size_t)w->tx_left : WS_FRAG;
  if (!out_cap(w, n)) return false;
  ring_read(&w->tx, w->out.buf + NET_WS_HEADER_MAX, n);
  w->tx_left -= n;
  unsigned op = w->tx_type == WS_REC_PING ? NET_WS_OP_PING
                : !w->tx_first             ? NET_WS_OP_CONT
                : w->tx_type == NET_WS_TEXT ? NET_WS_OP_TEXT
                                            : NET_WS_OP_BINARY;
  w->tx_first = false;
  if (!w->tx_left) record_done(w);
  return finish_frame(w, op, w->tx_left == 0, false, n);
}

/* ---- permessage-deflate ------------------------------------------------------------------- */

static bool deflater(net_ws *w) {
  if (w->def) return true;
  bool client = w->conf.role == NET_WS_CLIENT;
  int bits = client ? w->deflate.client_max_window_bits : w->deflate.server_max_window_bits;
  z_stream *z = net__calloc(1, sizeof *z);
  bits = bits < 9 ? 9 : bits > DEFLATE_BITS ? DEFLATE_BITS : bits;
  if (z && deflateInit2(z, DEFLATE_LEVEL, Z_DEFLATED, -bits, DEFLATE_MEM, Z_DEFAULT_STRATEGY) == Z_OK) {
    w->def = z;
    return true;
  }
  net__free(z);
  return net__ws_fail(w, NET_E_LIMIT, "out of memory (compressor)"), false;
}

/* Deflates the record into the payload area until it is full or the message
 * is flushed; the last 4 bytes stay back, as the end of a flush is not sent. */
static bool deflate_more(net_ws *w) {
  z_stream *z = w->def;
  uint8_t *area = w->out.buf + NET_WS_HEADER_MAX;
  while (w->zpend < WS_FRAG && !w->tx_flushed) {
    net_span sp;
    int k = w->tx_left ? ring_peek(&w->tx, &sp, 1, w->tx_left < ZIN ? (size_t)w->tx_left : ZIN) : 0;
    z->next_in = k ? (Bytef *)sp.base : Z_NULL;
    z->avail_in = k ? (uInt)sp.len : 0;
    z->next_out = area + w->zpend;
    z->avail_out = (uInt)(WS_FRAG - w->zpend);
    int flush = w->tx_left ? Z_NO_FLUSH : Z_SYNC_FLUSH;
    int r = deflate(z, flush);
    if (r != Z_OK && r != Z_BUF_ERROR) return net__ws_fail(w, NET_E_LIMIT, "compressor failed (%d)", r), false;
    size_t took = k ? sp.len - z->avail_in : 0;
    ring_consume(&w->tx, took);
    w->tx_left -= took;
    w->zpend = WS_FRAG - z->avail_out;
    if (flush == Z_SYNC_FLUSH && z->avail_out) w->tx_flushed = true;   /* the flush fit: all of it is out */
  }
  return true;
}

static bool deflate_frame(net_ws *w) {
  if (!deflater(w) || !out_cap(w, WS_FRAG)) return false;
  if (w->zcarry_n) {   /* the held-back tail of the last frame opens this one */
    memcpy(w->out.buf + NET_WS_HEADER_MAX, w->zcarry, w->zcarry_n);
    w->zpend = w->zcarry_n;
    w->zcarry_n = 0;
  }
  if (!deflate_more(w)) return false;
  bool fin = w->tx_flushed;
  size_t n = w->zpend - 4;
  unsigned op = w->tx_first ? (w->tx_type == NET_WS_TEXT ? NET_WS_OP_TEXT : NET_WS_OP_BINARY) : NET_WS_OP_CONT;
  bool rsv1 = w->tx_first;
  if (!fin) {
    memcpy(w->zcarry, w->out.buf + NET_WS_HEADER_MAX + n, 4);
    w->zcarry_n = 4;
  } else {
    bool own_reset = w->conf.role == NET_WS_CLIENT ? w->deflate.client_no_context_takeover
                                                   : w->deflate.server_no_context_takeover;
    if (own_reset) deflateReset(w->def);
    record_done(w);
  }
  w->zpend = 0;
  w->tx_first = false;
  return finish_frame(w, op, fin, rsv1, n);
}

/* ---- the pump --------------------------------------------------------------------------- */

static bool next_frame(net_ws *w) {
  if (w->ping_due) {
    w->ping_due = false;
    return control(w, NET_WS_OP_PING, NULL, 0);
  }
  if (w->pong_due) {
    w->pong_due = false;
    return control(w, NET_WS_OP_PONG, w->pong, w->pong_len);
  }
  /* after the peer's close ours goes at once (between fragments is allowed);
   * after our owner's, once every queued message is out */
  if (w->close_due && (w->close_got || (!w->tx_type && !ring_used(&w->tx)))) {
    w->close_due = false;
    return close_frame(w, w->send_code, w->send_reason, w->send_reason_len);
  }
  if (w->close_got) return false;   /* the peer closed: nothing more is sent */
  if (!w->tx_type && !take_record(w)) return !tx_idle(w);
  return w->tx_deflate ? deflate_frame(w) : plain_frame(w);
}

void net__ws_tx_pump(net_ws *w) {
  while (w->phase == WP_OPEN || w->phase == WP_CLOSING) {
    if (!flush_out(w)) return;
    if (w->close_queued) {
      w->close_sent = true;
      return;
    }
    if (!next_frame(w)) return;
  }
}

void net__ws_tx_free(net_ws *w) {
  if (w->def) {
    deflateEnd(w->def);
    net__free(w->def);
    w->def = NULL;
  }
  net__free(w->out.buf);
  w->out = (ws_frame_out){0};
}
