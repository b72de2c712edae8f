/* ws.c: the owner API of websockets (net_ws_*). Owner thread: it touches
 * only the two record queues and atomics, and hands the rest to the I/O
 * thread by a kick. A record is WS_REC_HDR bytes (u32 length, u8 type) and
 * the payload; the I/O thread takes one only once it is whole. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "wake.h"
#include "ws.h"

static void request(net_ws *w, int bit) {
  atomic_fetch_or(&w->requests, bit);
  net__engine_kick(&w->obj);
}

/* The I/O thread lets the held connection go on: it alone may touch w->c,
 * which ends with the websocket (a close or a bad frame may come with the upgrade). */
void net__ws_taken(net_ws *w) { request(w, WREQ_TAKEN); }

static bool client_url(net_ws *w, const char *url, const char **err) {
  static _Thread_local char why[NET_URL_WHY_MAX];
  if (!net__url_parse_given(url, &w->url, why, sizeof why)) return *err = why, false;
  if (strcmp(w->url.scheme, "ws") && strcmp(w->url.scheme, "wss"))
    return *err = "only ws:// and wss:// URLs open websockets", false;
  if (w->url.has_userinfo) return *err = "credentials in the URL are not sent: give an Authorization header", false;
  snprintf(w->where, sizeof w->where, w->url.host_family == 6 ? "[%s]:%u" : "%s:%u", w->url.host, w->url.port);
  return true;
}

net_ws *net_ws_open(const net_ws_opts *o, const char **err, net_err *code) {
  net_err ignored;
  if (!code) code = &ignored;
  *code = NET_E_INVALID;
  if (!o || !o->url) return *err = "a URL is required", NULL;
  net_ws *w = net__ws_new(NET_WS_CLIENT);
  if (!w) return *code = NET_E_LIMIT, *err = "out of memory", NULL;
  if (!client_url(w, o->url, err) || !net__ws_conf_client(&w->conf, o, err)) {
    net__io_unref(&w->obj);
    net__io_unref(&w->obj);
    return NULL;
  }
  net__ws_queues(w);
  if (!net__engine_acquire()) {
    net__io_unref(&w->obj);
    net__io_unref(&w->obj);
    *code = NET_E_LIMIT;
    return *err = net__engine_refusal(), NULL;
  }
  net__engine_kick(&w->obj);
  return w;
}

static bool ended(net_ws *w) {
  /* acquire: pairs with the release in net__ws_publish_end; err and the last record are in */
  return atomic_load_explicit(&w->ended, memory_order_acquire) != 0;
}

net_result net_ws_status(net_ws *w) {
  net_result r;
  if (net__engine_inherited(&r)) return r;
  net__host_polled();
  bool end = ended(w);
  bool empty = ring_used(&w->rx) == 0;
  if (end && empty) {
    net__io_seen(&w->obj);
    return (net_result){NET_FAILURE, w->err.code, w->err.msg};
  }
  int st = atomic_load_explicit(&w->state, memory_order_acquire);
  if (empty && st != NET_WAITING) net__io_seen(&w->obj);
  return (net_result){end ? NET_SUCCESS : (net_status)st, NET_E_NONE, ""};
}

int net_ws_ended(net_ws *w, net_result *out) {
  if (!ended(w)) return 0;
  *out = (net_result){NET_FAILURE, w->err.code, w->err.msg};
  return 1;
}

static bool not_waiting(void *p) {
  net_ws *w = p;
  return atomic_load_explicit(&w->state, memory_order_acquire) != NET_WAITING || ended(w);
}

net_result net_ws_wait(net_ws *w, int timeout_ms) {
  net__wait_until(not_waiting, w, timeout_ms);
  return net_ws_status(w);
}

/* One whole record, or nothing. */
static int queue(net_ws *w, int type, const void *data, size_t len) {
  if (w->close_asked || ended(w) || net__os_forked()) return -1;
  uint8_t hdr[WS_REC_HDR] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len,
                             (uint8_t)type};
  if (!ring_write_record(&w->tx, hdr, sizeof hdr, data, len)) return NET_WS_QUEUE_FULL;   /* nothing written */
  /* seq_cst fence: pairs with the one in the I/O thread's idle check (Dekker):
   * it sees the record, or we see it idle and kick it */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&w->tx_idle, memory_order_relaxed) && atomic_exchange(&w->tx_idle, 0))
    request(w, WREQ_SEND);
  return 1;
}

int net_ws_send(net_ws *w, int type, const void *data, size_t len) {
  net__host_polled();
  if (type != NET_WS_TEXT) type = NET_WS_BINARY;
  if (len > w->conf.max_message) return NET_WS_TOO_BIG;
  return queue(w, type, data, len);
}

int net_ws_ping(net_ws *w, const void *data, size_t len) {
  net__host_polled();
  if (len > NET_WS_CONTROL_MAX) return NET_WS_TOO_BIG;
  return queue(w, WS_REC_PING, data, len);
}

long net_ws_next(net_ws *w, int *type) {
  net__host_polled();
  bool end = ended(w);   /* first: every record committed before the end is visible */
  if (!w->announced) {
    uint8_t hdr[WS_REC_HDR];
    /* the I/O thread may commit a record's head before its payload: announce it whole only */
    if (ring_copy(&w->rx, 0, hdr, sizeof hdr) == sizeof hdr) {
      uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
      if (ring_used(&w->rx) >= WS_REC_HDR + (size_t)len) {
        w->next_len = len;
        w->next_type = hdr[4];
        w->announced = true;
      }
    }
  }
  net__host_read(w, !w->announced);
  if (w->announced) {
    if (type) *type = w->next_type;
    return (long)w->next_len;
  }
  if (ring_used(&w->rx) == 0) net__io_seen(&w->obj);
  return end ? NET_READ_ERROR : NET_WS_NONE;   /* ended: a record cut short by a failure is not one */
}

const void *net_ws_view(net_ws *w) {
  if (!w->announced) return NULL;
  net_span sp;
  int n = ring_peek(&w->rx, &sp, 1, WS_REC_HDR + w->next_len);
  return n == 1 && sp.len == WS_REC_HDR + (size_t)w->next_len ? sp.base + WS_REC_HDR : NULL;
}

size_t net_ws_copy(net_ws *w, void *dst) {
  return w->announced ? ring_copy(&w->rx, WS_REC_HDR, dst, w->next_len) : 0;
}

void net_ws_drop(net_ws *w) {
  if (!w->announced) return;
  ring_consume(&w->rx, WS_REC_HDR + (size_t)w->next_len);
  w->announced = false;
  /* seq_cst fence: pairs with the one in the I/O thread's pause: it sees the
   * room, or we see it paused and kick */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load(&w->rx_paused) && atomic_exchange(&w->rx_paused, 0)) request(w, WREQ_RESUME);
}

int net_ws_close(net_ws *w, int code, const char *reason, size_t len) {
  uint8_t probe[NET_WS_CONTROL_MAX];
  if (code && net__ws_close_build(probe, (unsigned)code, reason ? reason : "", reason ? len : 0) < 0) return -1;
  if (!code && len) return -1;   /* a reason needs a code */
  if (!w || w->close_asked) return 0;
  w->close_asked = true;
  w->want_code = code;
  w->want_len = reason ? len : 0;
  if (w->want_len) memcpy(w->want_reason, reason, len);
  request(w, WREQ_CLOSE);   /* seq_cst: the fields above are written before the I/O thread takes the bit */
  return 0;
}

int net_ws_get_close(net_ws *w, int *code, char *reason, size_t *len) {
  if (!ended(w)) return 0;
  if (code) *code = w->close_code;
  if (reason && len) {
    size_t n = w->close_reason_len < *len ? w->close_reason_len : *len;
    memcpy(reason, w->close_reason, n);
    if (n < *len) reason[n] = '\0';
    *len = n;
  }
  return 1;
}

int net_ws_get_info(net_ws *w, net_ws_info *out) {
  /* acquire: pairs with the release in the I/O thread's publish */
  ws_info *i = atomic_load_explicit(&w->info, memory_order_acquire);
  if (!i) return 0;
  *out = i->i;
  return 1;
}

int net_ws_remote(net_ws *w, net_endpoint *out) {
  ws_info *i = atomic_load_explicit(&w->info, memory_order_acquire);
  if (!i) return 0;
  *out = i->peer;
  return 1;
}

void net_ws_describe(net_ws *w, char *buf, size_t len) { snprintf(buf, len, "%s", w->where); }

void net_ws_free(net_ws *w) {
  net__io_disown(&w->obj);   /* the close handshake it starts is nobody's news */
  request(w, WREQ_FREE);
  net__io_unref(&w->obj);
  net__engine_release();
}
