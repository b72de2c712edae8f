/* ws_rx.c: a websocket's receiving side on the I/O thread: frames parsed in
 * place in the connection's buffer, data gathered (and inflated) into whole
 * messages checked for size and UTF-8, each handed to the owner as one
 * record; pings, pongs and the peer's close frame. A message that finds no
 * room in the owner's queue stops the reading here, so the peer feels it. */
#include <string.h>

#include "alloc.h"
#include "ws.h"

#define PEEK_MAX (1u << 20)
#define PIECE_OUT 65536   /* inflated bytes made room for per step */

/* ---- failing ---------------------------------------------------------------------- */

static bool protocol_fail(net_ws *w, int close_code, const char *why) {
  net__ws_tx_close(w, close_code, close_code == NET_WS_CLOSE_TOO_BIG ? "message too big" : why);
  net__ws_fail(w, close_code == NET_WS_CLOSE_TOO_BIG ? NET_E_LIMIT : NET_E_PROTOCOL, "%s (closed with %d)", why,
               close_code);
  return false;
}

/* ---- the message buffer ------------------------------------------------------------- */

/* Room for need bytes, grown by doubling but never past cap. */
static bool msg_room(net_ws *w, size_t need, uint64_t cap) {
  if (w->msg_cap >= need) return true;
  size_t n = w->msg_cap ? w->msg_cap * 2 : 4096;
  if (n < need) n = need;
  if (n > cap) n = (size_t)cap;
  uint8_t *m = net__realloc(w->msg, n);
  if (!m) {   /* 1011: the peer learns it was our fault (get_close says so too) */
    net__ws_tx_close(w, NET_WS_CLOSE_INTERNAL, "out of memory");
    return net__ws_fail(w, NET_E_LIMIT, "out of memory for a %zu-byte message", need), false;
  }
  w->msg = m;
  w->msg_cap = n;
  return true;
}

/* The whole message into the owner's queue as one record; false when there is no room yet. */
static bool deliver(net_ws *w) {
  size_t need = WS_REC_HDR + w->msg_len;
  if (!w->ownerless && ring_free_space(&w->rx) < need) {
    atomic_store(&w->rx_paused, 1);
    /* seq_cst fence: pairs with the one in net_ws_drop (Dekker) */
    atomic_thread_fence(memory_order_seq_cst);
    if (ring_free_space(&w->rx) < need || !atomic_exchange(&w->rx_paused, 0)) return w->held_back = true, false;
  }
  uint32_t n = (uint32_t)w->msg_len;
  uint8_t h[WS_REC_HDR] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, w->msg_type};
  if (!w->ownerless) {   /* an ownerless one's is dropped: nobody will read it */
    if (!ring_write_record(&w->rx, h, sizeof h, w->msg, w->msg_len)) {
      if (w->rx.oom) return net__ws_fail(w, NET_E_LIMIT, "out of memory for the receive queue"), false;
      net__engine_kick(&w->obj);   /* the owner was trimming the emptied queue: again next turn */
      return false;
    }
    net__io_publish(&w->obj);
  }
  w->msg_ready = false;
  w->msg_len = 0;
  if (w->msg_cap > WS_MSG_KEEP) {   /* a big message's memory goes with it */
    net__free(w->msg);
    w->msg = NULL;
    w->msg_cap = 0;
  }
  return true;
}

/* ---- data ---------------------------------------------------------------------------- */

static bool inflater(net_ws *w) {
  bool client = w->conf.role == NET_WS_CLIENT;
  int bits = client ? w->deflate.server_max_window_bits : w->deflate.client_max_window_bits;
  /* zlib never deflates with a 256-byte window (8 bits): a peer granted it
   * may well use 512, and a larger window takes any peer's stream */
  if (bits < 9) bits = 9;
  if (!w->inf_ready && inflate_init(&w->inf, INFLATE_RAW, bits, w->conf.max_message, 0) < 0)
    return net__ws_fail(w, NET_E_LIMIT, "%s", w->inf.err), false;
  w->inf_ready = true;
  bool reset = client ? w->deflate.server_no_context_takeover : w->deflate.client_no_context_takeover;
  if (reset) inflate_reset(&w->inf);
  else inflate_new_message(&w->inf);
  return true;
}

static bool text_ok(net_ws *w, const uint8_t *p, size_t n) {
  if (w->msg_type != NET_WS_TEXT || net__utf8_feed(&w->utf8, p, n)) return true;
  return protocol_fail(w, NET_WS_CLOSE_INVALID_DATA, "a text message is not UTF-8");
}

static bool inflate_piece(net_ws *w, const uint8_t *p, size_t n) {
  while (n) {
    if (!msg_room(w, w->msg_len + PIECE_OUT, w->conf.max_message + 1)) return false;
    size_t used, made;
    inflate_result r = inflate_feed(&w->inf, p, n, &used, w->msg + w->msg_len, w->msg_cap - w->msg_len, &made);
    if (r == INFLATE_LIMIT) return protocol_fail(w, NET_WS_CLOSE_TOO_BIG, "a message inflates past max_message");
    if (r == INFLATE_ERROR) return protocol_fail(w, NET_WS_CLOSE_INVALID_DATA, "a compressed message is corrupt");
    if (!text_ok(w, w->msg + w->msg_len, made)) return false;
    w->msg_len += made;
    p += used;
    n -= used;
    if (!used && !made && w->msg_cap - w->msg_len > 0) break;   /* nothing more to do with these */
  }
  return true;
}

static bool data_payload(net_ws *w, const uint8_t *p, size_t n) {
  if (w->msg_inflate) return inflate_piece(w, p, n);
  /* doubling (not growing frame by frame, which copied a fragmented message
   * over and over); never past max_message, nor twice what arrived */
  if (!msg_room(w, w->msg_len + n, w->conf.max_message)) return false;
  if (!text_ok(w, p, n)) return false;
  memcpy(w->msg + w->msg_len, p, n);
  w->msg_len += n;
  return true;
}

/* The last frame of a message: the end of its inflation, and of its text. */
static bool data_end(net_ws *w) {
  if (w->msg_inflate && (!inflate_piece(w, INFLATE_WS_TAIL, 4))) return false;
  if (w->msg_type == NET_WS_TEXT && !net__utf8_done(&w->utf8))
    return protocol_fail(w, NET_WS_CLOSE_INVALID_DATA, "a text message ends inside a character");
  w->msg_ready = true;
  return deliver(w);
}

/* ---- control frames --------------------------------------------------------------------- */

static bool peer_close(net_ws *w) {
  unsigned code;
  const uint8_t *reason;
  size_t rlen;
  unsigned bad = net__ws_close_parse(w->ctl, w->ctl_len, &code, &reason, &rlen);
  if (bad) return protocol_fail(w, (int)bad, bad == NET_WS_CLOSE_INVALID_DATA ? "a close reason is not UTF-8"
                                                                                : "a close frame is malformed");
  w->close_got = true;
  w->peer_code = (int)code;
  w->peer_reason_len = rlen;
  memcpy(w->peer_reason, reason, rlen);
  if (!w->close_queued && !w->close_due) {   /* the answer echoes the code (none for none) */
    w->close_due = true;
    w->send_code = code == NET_WS_CLOSE_NO_STATUS ? 0 : (int)code;
    w->send_reason_len = 0;
  }
  if (w->phase == WP_OPEN) w->phase = WP_CLOSING;
  return false;   /* nothing after a close frame is read */
}

static bool control_end(net_ws *w) {
  switch (w->p.frame.opcode) {
    case NET_WS_OP_PING:   /* only the latest ping needs its pong */
      memcpy(w->pong, w->ctl, w->ctl_len);
      w->pong_len = w->ctl_len;
      w->pong_due = !w->close_queued;
      return true;
    case NET_WS_OP_CLOSE: return peer_close(w);
    default: return true;   /* a pong: that the peer is alive is all it says */
  }
}

/* ---- frames ------------------------------------------------------------------------------ */

static bool on_header(net_ws *w) {
  const net_ws_frame_info *f = &w->p.frame;
  if (f->opcode >= NET_WS_OP_CLOSE) {
    w->ctl_len = 0;
    return true;
  }
  if (f->opcode != NET_WS_OP_CONT) {   /* a message begins */
    w->msg_len = 0;
    w->msg_type = f->opcode == NET_WS_OP_TEXT ? NET_WS_TEXT : NET_WS_BINARY;
    w->msg_inflate = f->rsv1;
    net__utf8_init(&w->utf8);
    if (w->msg_inflate && !inflater(w)) return false;
  }
  return true;
}

static bool on_payload(net_ws *w, const uint8_t *p, size_t n) {
  if (w->p.frame.opcode < NET_WS_OP_CLOSE) return data_payload(w, p, n);
  memcpy(w->ctl + w->ctl_len, p, n);   /* the parser caps control payloads at 125 */
  w->ctl_len += n;
  return true;
}

static bool on_end(net_ws *w) {
  if (w->p.frame.opcode >= NET_WS_OP_CLOSE) return control_end(w);
  return net__ws_message_done(&w->p) ? data_end(w) : true;
}

/* One parser step over buf[*off..len) (an end may come with no byte left):
 * 1 for another step, 0 when these bytes are done, -1 to stop reading
 * (failed, closed, or no room). */
static int feed(net_ws *w, uint8_t *buf, size_t len, size_t *off) {
  size_t used, n;
  uint8_t *piece;
  net_ws_event e = net__ws_parse(&w->p, buf + *off, len - *off, &used, &piece, &n);
  *off += used;
  bool go = true;
  switch (e) {
    case NET_WS_HEADER: go = on_header(w); break;
    case NET_WS_PAYLOAD: go = on_payload(w, piece, n); break;
    case NET_WS_END: go = on_end(w); break;
    case NET_WS_ERROR: go = protocol_fail(w, w->p.close_code, w->p.why); break;
    default: return 0;
  }
  return go ? 1 : -1;
}

/* The connection gave no more: after a close frame that is the end; before, an abnormal one. */
static void input_ended(net_ws *w, long why) {
  if (why == NET_READ_ERROR) {
    net_result st = net_conn_status(w->c);
    net__ws_fail(w, st.err, "%s", st.msg);
  } else {
    net__ws_fail(w, NET_E_CLOSED, "the peer closed the connection without a closing handshake");
  }
}

bool net__ws_rx_pump(net_ws *w) {
  if (w->msg_ready && !deliver(w)) return w->phase != WP_DONE;
  while (!w->close_got && w->phase != WP_DONE) {
    net_span sp;
    int k = 1;
    long n = net_conn_peek(w->c, PEEK_MAX, &sp, &k);
    if (n == 0) break;
    if (n < 0) {
      input_ended(w, n);
      break;
    }
    size_t off = 0;
    int r;
    while ((r = feed(w, (uint8_t *)sp.base, sp.len, &off)) > 0) {
    }
    net_conn_consume(w->c, off);
    if (off) w->last_rx = net__now_ms();   /* any byte says the peer lives: a long frame holds back its pong */
    if (r < 0) break;
  }
  return w->phase != WP_DONE;
}

void net__ws_rx_free(net_ws *w) {
  net__free(w->msg);
  w->msg = NULL;
  w->msg_cap = w->msg_len = 0;
  if (w->inf_ready) inflate_free(&w->inf);
  w->inf_ready = false;
}
