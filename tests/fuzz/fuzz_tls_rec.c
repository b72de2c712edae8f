/* fuzz_tls_rec.c: the TLS record layer's reader (net/tls_rec.c). The input
 * spells a stream of records, sealed by a peer with the same keys (data,
 * alerts, handshake and change_cipher_spec records, some of them changed in
 * one byte), and raw bytes; and how the stream arrives and is read (chunk
 * and read sizes). The reader must give exactly the application bytes sent
 * before the first thing that ends or breaks the stream, end the way that
 * thing says, and owe one refusal per handshake record before it. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "tls_rec.h"

#define STREAM_MAX (1u << 20)
#define PLAIN_MAX (NET_TLS_REC_PLAIN + 600)   /* more than a record: the sealer splits */
#define RAW (-3)       /* raw bytes came: any end, but no more data */
#define CHANGED (-4)   /* a changed record: fails, or waits for more if its length grew */

typedef struct model {
  uint8_t *stream, *want;
  size_t len, want_len;
  int stop;       /* 0 going on, else how the reader must end (RAW, CHANGED: see drive) */
  int owed;
  bool full;
} model;

/* What a control record does to the reader, as RFC 5246 and tls_rec.c say. */
static void control(model *m, int type, const uint8_t *p, size_t n) {
  if (m->stop) return;
  if (type == 22 && m->owed == NET_TLS_REC_OWED_MAX) m->stop = NET_TLS_REC_FAILED;
  else if (type == 22) m->owed++;
  else if (type != 21 || n != 2) m->stop = NET_TLS_REC_FAILED;
  else if (p[1] == 0) m->stop = NET_TLS_REC_CLOSED;
  else if (p[0] == 2) m->stop = NET_TLS_REC_FAILED;
}

/* Seals plain as records of type (split at the sealer's limit) into the stream. */
static void seal(net_tls_rec *peer, model *m, int type, const uint8_t *plain, size_t n, unsigned corrupt) {
  size_t off = 0;
  do {
    size_t took = net__tls_rec_seal(peer, type, plain + off, n - off), left;
    const unsigned char *o = net__tls_rec_out(peer, &left);
    if (m->len + left > STREAM_MAX) {   /* ends at a record's end: nothing is skipped */
      m->full = true;
      return;
    }
    memcpy(m->stream + m->len, o, left);
    if (corrupt) m->stream[m->len + corrupt % left] ^= (uint8_t)(corrupt >> 16 | 1);
    m->len += left;
    net__tls_rec_sent(peer, left);
    if (!m->stop && corrupt) m->stop = CHANGED;
    if (type != 23) control(m, type, plain + off, took);   /* each record of a split one */
    if (!m->stop && type == 23) memcpy(m->want + m->want_len, plain + off, took), m->want_len += took;
    off += took;
  } while (off < n);
}

static void build(input *in, net_tls_rec *peer, model *m, uint8_t *plain) {
  while (in->n && !m->full) {
    unsigned op = take(in, 1), n = take(in, 2) % PLAIN_MAX;
    if (op % 4 == 0) {   /* raw bytes, up to what the input has */
      n = n < in->n ? n : (unsigned)in->n;
      if (m->len + n > STREAM_MAX) break;
      memcpy(m->stream + m->len, in->p, n), in->p += n, in->n -= n;
      m->len += n;
      if (n && !m->stop) m->stop = RAW;
      continue;
    }
    int type = op % 4 == 1 ? 20 + (int)(op >> 2) % 3 : 23;
    if (type != 23) n %= 4;
    for (unsigned i = 0; i < n; i++) plain[i] = in->n ? in->p[i % in->n] : (uint8_t)i;
    unsigned corrupt = op % 4 == 3 ? take(in, 3) : 0;
    seal(peer, m, type, plain, n, corrupt);
  }
}

/* Feeds the stream in chunks and reads with varied sizes; returns the end. */
static long drive(net_tls_rec *r, model *m, uint8_t *got, size_t *got_len, uint32_t seed) {
  size_t fed = 0;
  for (;;) {
    seed = seed * 1103515245u + 12345u;
    size_t want = 1 + (seed >> 8) % (seed & 1 ? 64 : PLAIN_MAX);
    const char *why;
    int alert;
    long n = net__tls_rec_read(r, got + *got_len, want, &why, &alert);
    check(n <= (long)want);
    if (n > 0) {
      *got_len += (size_t)n;
      continue;
    }
    if (n < 0) return n;
    check(!net__tls_rec_pending(r));
    if (fed == m->len) return 0;
    size_t room, chunk = 1 + (seed >> 4) % (seed & 2 ? 7 : 40000);
    unsigned char *dst = net__tls_rec_room(r, &room);
    check(room > 0);
    chunk = chunk < room ? chunk : room;
    chunk = chunk < m->len - fed ? chunk : m->len - fed;
    memcpy(dst, m->stream + fed, chunk);
    net__tls_rec_got(r, chunk);
    fed += chunk;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t stream[STREAM_MAX], want[STREAM_MAX], got[STREAM_MAX + PLAIN_MAX], plain[PLAIN_MAX];
  static const unsigned char kb[2 * 16 + 8] = "0123456789abcdefFEDCBA9876543210ivIV";
  input in = {data, size};
  uint32_t seed = take(&in, 4);
  unsigned max_out = take(&in, 2);
  unsigned char seq[8] = {0, 0, 0, 0, 0, 0, 0, (unsigned char)take(&in, 1)};
  net_tls_rec *peer = net__tls_rec_new(true, kb, 16, seq, seq, max_out);
  net_tls_rec *r = net__tls_rec_new(false, kb, 16, seq, seq, 0);
  if (!peer || !r) {   /* a CPU without AES-NI: nothing to test */
    net__tls_rec_free(peer), net__tls_rec_free(r);
    return 0;
  }
  model m = {.stream = stream, .want = want};
  build(&in, peer, &m, plain);
  size_t got_len = 0;
  long end = drive(r, &m, got, &got_len, seed);
  check(got_len == m.want_len && !memcmp(got, want, got_len));
  if (m.stop == 0) check(end == 0);   /* no more whole records: waits for bytes */
  else if (m.stop == CHANGED) check(end == NET_TLS_REC_FAILED || end == 0);
  else if (m.stop != RAW) check(end == m.stop);
  check(net__tls_rec_owed(r) == m.owed);
  net__tls_rec_free(peer), net__tls_rec_free(r);
  return 0;
}
