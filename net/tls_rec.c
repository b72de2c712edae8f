/* tls_rec.c: TLS 1.2 AES-GCM records (RFC 5246 6.2, RFC 5288): the nonce
 * is the 4 fixed IV bytes and the 8 explicit ones each record carries (the
 * sequence number when we seal), the additional data the sequence number,
 * type, version and payload length. A record opens straight into the
 * caller's buffer when it fits there, else in place, to be read out in
 * pieces. I/O thread. */
#include <string.h>

#include "alloc.h"
#include "gcm.h"
#include "tls_rec.h"

#define REC_MAX (NET_TLS_REC_PLAIN + NET_TLS_REC_OVERHEAD)
#define IN_CAP (2 * REC_MAX)   /* a record and most of the next per recv */

enum { T_CCS = 20, T_ALERT = 21, T_HANDSHAKE = 22, T_DATA = 23 };
enum { A_UNEXPECTED = 10, A_BAD_MAC = 20, A_OVERFLOW = 22, A_DECODE = 50, A_VERSION = 70 };

struct net_tls_rec {
  net_gcm seal, open;
  unsigned char seal_iv[4], open_iv[4];
  uint64_t seal_seq, open_seq;
  size_t max_out;
  int owed;                         /* no_renegotiation warnings to send */
  long ended;                       /* once closed or failed, every read says so again */
  const char *why;
  int alert;
  size_t start, end;                /* received bytes in in[] not yet opened */
  size_t plain, plain_end;          /* opened application bytes waiting in in[] */
  size_t out_off, out_len;          /* sealed bytes in out[] */
  unsigned char in[IN_CAP];
  unsigned char out[REC_MAX];
};

static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

static void put64(unsigned char *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}

net_tls_rec *net__tls_rec_new(bool server, const unsigned char *kb, size_t keylen, const unsigned char in_seq[8],
                              const unsigned char out_seq[8], size_t max_out) {
  net_tls_rec *r = net__aligned(sizeof *r);
  if (!r) return NULL;
  memset(r, 0, offsetof(net_tls_rec, in));
  const unsigned char *ckey = kb, *skey = kb + keylen, *civ = kb + 2 * keylen, *siv = civ + 4;
  if (!net__gcm_key(&r->seal, server ? skey : ckey, keylen) || !net__gcm_key(&r->open, server ? ckey : skey, keylen)) {
    net__tls_rec_free(r);
    return NULL;
  }
  memcpy(r->seal_iv, server ? siv : civ, 4);
  memcpy(r->open_iv, server ? civ : siv, 4);
  r->seal_seq = get64(out_seq);
  r->open_seq = get64(in_seq);
  r->max_out = max_out && max_out < NET_TLS_REC_PLAIN ? max_out : NET_TLS_REC_PLAIN;
  return r;
}

void net__tls_rec_free(net_tls_rec *r) {
  if (!r) return;
  net__wipe(r, sizeof *r);   /* keys, and plaintext */
  net__free_aligned(r);
}

unsigned char *net__tls_rec_room(net_tls_rec *r, size_t *room) {
  if (r->start == r->end) r->start = r->end = 0;
  if (r->end == IN_CAP || (r->start && IN_CAP - r->start < REC_MAX)) {   /* keep a whole record's room */
    memmove(r->in, r->in + r->start, r->end - r->start);
    r->end -= r->start;
    r->start = 0;
  }
  *room = IN_CAP - r->end;
  return r->in + r->end;
}

void net__tls_rec_got(net_tls_rec *r, size_t n) { r->end += n; }

static void aad(unsigned char a[13], uint64_t seq, int type, size_t len) {
  put64(a, seq);
  a[8] = (unsigned char)type, a[9] = 3, a[10] = 3;
  a[11] = (unsigned char)(len >> 8), a[12] = (unsigned char)len;
}

static long failed(const char **why, int *alert, const char *what, int a) {
  *why = what;
  *alert = a;
  return NET_TLS_REC_FAILED;
}

/* Opens the record at in[start] (whole, len payload bytes) into dst. */
static bool open_record(net_tls_rec *r, int type, size_t len, unsigned char *dst) {
  const unsigned char *p = r->in + r->start;
  unsigned char nonce[12], a[13];
  memcpy(nonce, r->open_iv, 4);
  memcpy(nonce + 4, p + 5, 8);
  aad(a, r->open_seq, type, len);
  return net__gcm_open(&r->open, nonce, a, 13, p + 13, dst, len, p + 13 + len);
}

/* What a record other than data says: 0 to go on, or how the read ends. */
static long control(net_tls_rec *r, int type, const unsigned char *m, size_t len, const char **why, int *alert) {
  if (type == T_HANDSHAKE) {   /* a peer that sends them faster than it reads the answers is refused */
    if (r->owed == NET_TLS_REC_OWED_MAX) return failed(why, alert, "renegotiation requests kept coming", A_UNEXPECTED);
    r->owed++;
    return 0;
  }
  if (type != T_ALERT) return failed(why, alert, "a change_cipher_spec after the handshake", A_UNEXPECTED);
  if (len != 2) return failed(why, alert, "an alert record of the wrong size", A_DECODE);
  if (m[1] == 0) return NET_TLS_REC_CLOSED;   /* close_notify */
  if (m[0] == 2) return failed(why, alert, NULL, m[1]);   /* fatal: *why NULL, *alert what the peer sent */
  return 0;   /* a warning: like mbedTLS, read on */
}

static long next(net_tls_rec *r, unsigned char *buf, size_t len, const char **why, int *alert) {
  for (;;) {
    if (r->plain < r->plain_end) {
      size_t n = r->plain_end - r->plain < len ? r->plain_end - r->plain : len;
      memcpy(buf, r->in + r->plain, n);
      r->plain += n;
      return (long)n;
    }
    size_t have = r->end - r->start;
    if (have < 5) return NET_TLS_REC_MORE;
    const unsigned char *h = r->in + r->start;
    int type = h[0];
    size_t clen = (size_t)h[3] << 8 | h[4];
    if (type < T_CCS || type > T_DATA) return failed(why, alert, "a record of unknown type", A_UNEXPECTED);
    if (h[1] != 3 || h[2] != 3) return failed(why, alert, "a record of another protocol version", A_VERSION);
    if (clen > REC_MAX - 5) return failed(why, alert, "a record over 16 KiB (record_overflow)", A_OVERFLOW);
    if (clen < 8 + 16) return failed(why, alert, "a record too short to hold its nonce and tag", A_DECODE);
    if (have < 5 + clen) return NET_TLS_REC_MORE;
    if (r->open_seq == UINT64_MAX) return failed(why, alert, "the sequence numbers ran out", A_UNEXPECTED);
    size_t plen = clen - 8 - 16;
    unsigned char *direct = type == T_DATA && plen <= len ? buf : NULL;
    unsigned char *m = r->in + r->start + 13;
    if (!open_record(r, type, plen, direct ? direct : m))
      return failed(why, alert, "a record failed its integrity check (bad_record_mac)", A_BAD_MAC);
    r->open_seq++;
    r->start += 5 + clen;
    if (direct && plen) return (long)plen;
    if (type == T_DATA) {
      r->plain = (size_t)(m - r->in), r->plain_end = r->plain + plen;
      continue;
    }
    long c = control(r, type, m, plen, why, alert);
    if (c) return c;
  }
}

long net__tls_rec_read(net_tls_rec *r, unsigned char *buf, size_t len, const char **why, int *alert) {
  if (!r->ended) {
    long n = next(r, buf, len, &r->why, &r->alert);
    if (n >= 0) return n;
    r->ended = n;
  }
  *why = r->why, *alert = r->alert;
  return r->ended;
}

bool net__tls_rec_pending(const net_tls_rec *r) {
  if (r->plain < r->plain_end) return true;
  size_t have = r->end - r->start;
  return have >= 5 && have >= 5 + ((size_t)r->in[r->start + 3] << 8 | r->in[r->start + 4]);
}

int net__tls_rec_owed(const net_tls_rec *r) { return r->owed; }

size_t net__tls_rec_seal(net_tls_rec *r, int type, const unsigned char *p, size_t n) {
  static const unsigned char refusal[2] = {1, 100};   /* warning, no_renegotiation */
  size_t take = n < r->max_out ? n : r->max_out;
  if (r->owed) r->owed--, type = T_ALERT, p = refusal, take = 2;
  unsigned char *o = r->out, nonce[12], a[13];
  o[0] = (unsigned char)type, o[1] = 3, o[2] = 3;
  o[3] = (unsigned char)((take + 24) >> 8), o[4] = (unsigned char)(take + 24);
  put64(o + 5, r->seal_seq);
  memcpy(nonce, r->seal_iv, 4);
  memcpy(nonce + 4, o + 5, 8);
  aad(a, r->seal_seq, type, take);
  net__gcm_seal(&r->seal, nonce, a, 13, p, o + 13, take, o + 13 + take);
  r->seal_seq++;
  r->out_off = 0, r->out_len = NET_TLS_REC_OVERHEAD + take;
  return p == refusal ? 0 : take;
}

const unsigned char *net__tls_rec_out(const net_tls_rec *r, size_t *left) {
  *left = r->out_len - r->out_off;
  return r->out + r->out_off;
}

void net__tls_rec_sent(net_tls_rec *r, size_t n) {
  r->out_off += n;
  if (r->out_off == r->out_len) r->out_off = r->out_len = 0;
}
