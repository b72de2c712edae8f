/* fuzz_frame.c: framed messages (net/frame.c). The input spells a stream of
 * packets or LSP messages (literal bytes, and well-formed messages of sizes up
 * to 64 KiB, larger than the 16 KiB receive buffer, so they are gathered),
 * and how it is fed into a real connection's receive buffer between reads.
 * The messages read must be exactly those a plain parse of the whole stream
 * finds, ending the same way (a clean end, or a failure). The LSP header
 * parser must also agree with itself on every prefix of the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "fuzz_input.h"

#define STREAM_MAX (1u << 18)
#define MSG_MAX (STREAM_MAX / 4 + 1)   /* empty packets: 4 bytes each */

/* Every prefix of a header that parses is "incomplete" or the same header. */
static void header_prefixes(const uint8_t *data, size_t size) {
  uint64_t body = 0, b2;
  const char *why;
  long h = net_lsp_header((const char *)data, size, &body, &why);
  check(h <= (long)size && (h != 0 || size <= NET_LSP_HEADER_MAX + 4));
  if (h <= 0) return;
  for (size_t k = 0; k <= size; k += 1 + k / 16) {
    long hk = net_lsp_header((const char *)data, k, &b2, &why);
    check(k < (size_t)h ? hk == 0 : hk == h && b2 == body);
  }
}

static bool blank_lines(const char *s, size_t n) {
  for (size_t i = 0; i < n; i += 2)
    if (n - i < 2 || s[i] != '\r' || s[i + 1] != '\n') return false;
  return true;
}

/* The messages of the whole stream, parsed plainly: count, and whether it
 * ended cleanly (1) or with a failure (0). */
static int model(const char *s, size_t n, net_frame_kind kind, size_t max, size_t *off, size_t *len, int *count) {
  size_t at = 0;
  *count = 0;
  while (at < n) {
    uint64_t body;
    long h;
    if (kind == NET_FRAME_PACKET) {
      if (n - at < 4) return 0;
      const uint8_t *b = (const uint8_t *)s + at;
      body = (uint64_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3];
      h = 4;
    } else {
      const char *why;
      size_t look = n - at < NET_LSP_HEADER_MAX + 4 ? n - at : NET_LSP_HEADER_MAX + 4;
      h = net_lsp_header(s + at, look, &body, &why);
      if (h == 0 && blank_lines(s + at, n - at)) return 1;   /* a clean end after them */
      if (h <= 0) return 0;
    }
    if (body > max || at + (size_t)h + body > n || *count == MSG_MAX) return 0;
    off[*count] = at + (size_t)h;
    len[(*count)++] = (size_t)body;
    at += (size_t)h + (size_t)body;
  }
  return 1;
}

/* Builds the stream the input spells. */
static size_t build(input *in, net_frame_kind kind, char *s) {
  size_t n = 0;
  while (in->n && n < STREAM_MAX - 70000) {
    unsigned op = take(in, 1);
    if (op & 1) {   /* a well-formed message with a synthetic body */
      size_t len = take(in, 2);
      if (kind == NET_FRAME_PACKET) {
        s[n++] = 0, s[n++] = 0, s[n++] = (char)(len >> 8), s[n++] = (char)len;
      } else {
        n += (size_t)snprintf(s + n, 40, (op & 2) ? "content-length:%zu\r\n\r\n" : "Content-Length: %zu\r\n\r\n", len);
      }
      for (size_t i = 0; i < len; i++) s[n++] = (char)(i * 31 + op);
    } else {   /* literal bytes from the input */
      size_t len = op >> 1;
      for (size_t i = 0; i < len && in->n; i++) s[n++] = (char)take(in, 1);
    }
  }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char *s;
  if (!s) s = malloc(STREAM_MAX);
  header_prefixes(data, size);
  input in = {data, size};
  net_frame_kind kind = take(&in, 1) & 1 ? NET_FRAME_LSP : NET_FRAME_PACKET;
  size_t max = take(&in, 3), feed = take(&in, 2) % 40000 + 1;
  size_t n = build(&in, kind, s);
  if (feed < n / 64) feed = n / 64;   /* at most ~64 reads per stream: keeps runs quick */
  static size_t off[MSG_MAX], len[MSG_MAX];
  int want, clean = model(s, n, kind, max, off, len, &want);

  net_conn_opts o = {.buffer_size = NET_CHUNK_SIZE};
  net_conn *c = net__conn_new(&o, 2);
  net_frame *f = net_frame_new();
  check(c && f);
  atomic_store(&c->state, NET_SUCCESS);
  size_t fed = 0;
  int got = 0;
  long r;
  for (;;) {
    size_t wrote = 0;
    bool ended = fed == n;   /* the end is told only after the last byte was read once */
    if (!ended) fed += wrote = ring_write(&c->rx, s + fed, n - fed < feed ? n - fed : feed);
    else atomic_store(&c->rx_eof, 1);
    r = net_frame_next(f, c, kind, max);
    if (r == NET_FRAME_PARTIAL) {   /* waiting for more: there must be more, and room for it */
      check(!ended && (fed == n || wrote > 0 || ring_free_space(&c->rx) > 0));
      continue;
    }
    if (r < 0) break;
    check(got < want && (size_t)r == len[got]);
    char *m = malloc((size_t)r + 1);
    const void *v = net_frame_view(f, c);
    check(net_frame_copy(f, c, m) == (size_t)r);
    check(memcmp(m, s + off[got], (size_t)r) == 0 && (!v || memcmp(v, m, (size_t)r) == 0));
    free(m);
    net_frame_done(f, c);
    got++;
  }
  check(got == want && (r == NET_READ_EOF) == (clean == 1));
  /* a failure names what failed: never the peer's close, whatever the size */
  check(clean == 1 || (c->aborted && (c->abort_err.code == NET_E_PROTOCOL || c->abort_err.code == NET_E_LIMIT)));
  net_frame_free(f);
  net__conn_destroy(c);
  return 0;
}
