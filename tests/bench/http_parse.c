/* http_parse.c (bench): MB/s of the HTTP head parser, the chunked decoder and bounded
 * inflate, each next to a baseline doing the least the same work needs in the same run
 * (finding the end of the head with memmem, copying the body with memcpy, zlib's
 * inflate into one big buffer). Prints figures and ratios; never asserts on time.
 *   build/release/bench_http_parse [MB]     (default 64 MB of input per figure) */
#include "http_parse.h"
#include "inflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

static const char HEAD[] =
    "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 30 Nov 2026 20:00:00 GMT\r\n"
    "Content-Type: application/octet-stream\r\nContent-Length: 104857600\r\n"
    "Last-Modified: Tue, 13 Jun 2023 15:08:10 GMT\r\nConnection: keep-alive\r\n"
    "ETag: \"6488865a-6400000\"\r\nAccept-Ranges: bytes\r\n\r\n";

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile size_t sink;

static void line(const char *what, size_t bytes, double t, double base) {
  double mbs = (double)bytes / t / 1e6, bmbs = (double)bytes / base / 1e6;
  printf("%-34s %9.1f MB/s   baseline %9.1f MB/s   ratio %.2f\n", what, mbs, bmbs, mbs / bmbs);
}

static void bench_heads(size_t total) {
  size_t n = strlen(HEAD), reps = total / n, used;
  http_head h;
  http_head_init(&h, HTTP_HEAD_RESPONSE, 0, 0);
  double t0 = now();
  for (size_t i = 0; i < reps; i++) {
    http_head_reset(&h);
    if (http_head_feed(&h, HEAD, n, &used) != HTTP_DONE) abort();
    sink += http_head_framing(&h, "GET").length;
  }
  double t = now() - t0;
  t0 = now();
  for (size_t i = 0; i < reps; i++) sink += (size_t)((const char *)memmem(HEAD, n, "\r\n\r\n", 4) - HEAD);
  double base = now() - t0;
  http_head_free(&h);
  printf("heads: %.0f per second\n", (double)reps / t);
  line("head parse (nginx head)", reps * n, t, base);
}

/* A body of total bytes in chunks of size bytes, chunked-encoded. */
static char *chunked_body(size_t total, size_t size, size_t *n) {
  char *s = malloc(total + (total / size + 2) * 16), *p = s;
  for (size_t done = 0; done < total; done += size) {
    p += sprintf(p, "%zx\r\n", size);
    memset(p, 'x', size);
    p += size;
    memcpy(p, "\r\n", 2), p += 2;
  }
  memcpy(p, "0\r\n\r\n", 5), p += 5;
  *n = (size_t)(p - s);
  return s;
}

static void bench_chunked(size_t total, size_t size) {
  size_t n, i = 0, used, bl, out = 0;
  char *s = chunked_body(total, size, &n), *dst = malloc(65536);
  const char *b;
  http_chunked c;
  http_chunked_init(&c);
  double t0 = now();
  http_result r = HTTP_MORE;
  while (r == HTTP_MORE) {   /* 16 KiB reads, each body span copied out as the engine would */
    size_t piece = n - i < 16384 ? n - i : 16384, pos = 0;
    while (pos < piece && r == HTTP_MORE) {
      r = http_chunked_feed(&c, s + i + pos, piece - pos, &used, &b, &bl);
      memcpy(dst, b, bl);
      sink += bl ? (unsigned char)dst[0] : 0;
      out += bl;
      pos += used;
    }
    i += pos;
  }
  double t = now() - t0;
  if (r != HTTP_DONE || out < total) abort();
  t0 = now();
  for (i = 0; i < n; i += 16384) {
    memcpy(dst, s + i, n - i < 16384 ? n - i : 16384);
    sink += (unsigned char)dst[i % 1000];
  }
  double base = now() - t0;
  char what[64];
  snprintf(what, sizeof what, "chunked decode (%zu B chunks)", size);
  line(what, n, t, base);
  http_chunked_free(&c);
  free(s);
  free(dst);
}

/* A gzip body of about total bytes of log-like text. */
static unsigned char *gzip_body(size_t total, size_t *zn) {
  char *text = malloc(total);
  for (size_t i = 0; i < total; i++) text[i] = "0123456789 abcdef GET /plugins HTTP/1.1 200\n"[(i * 7 + i / 13) % 44];
  z_stream z;
  memset(&z, 0, sizeof z);
  deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
  size_t cap = deflateBound(&z, (uLong)total);
  unsigned char *out = malloc(cap);
  z.next_in = (unsigned char *)text, z.avail_in = (uInt)total, z.next_out = out, z.avail_out = (uInt)cap;
  deflate(&z, Z_FINISH);
  *zn = cap - z.avail_out;
  deflateEnd(&z);
  free(text);
  return out;
}

static void bench_inflate(size_t total) {
  size_t zn, i = 0, used, made, out = 0;
  unsigned char *z = gzip_body(total, &zn), *dst = malloc(16384);
  net_inflate f;
  inflate_init(&f, INFLATE_GZIP, 0, (uint64_t)total * 2, 1000);
  double t0 = now();
  int r = INFLATE_MORE;
  while (r == INFLATE_MORE) {   /* 16 KiB in, 16 KiB out: what the engine has at hand */
    size_t give = zn - i < 16384 ? zn - i : 16384;
    r = inflate_feed(&f, z + i, give, &used, dst, 16384, &made);
    i += used;
    out += made;
  }
  double t = now() - t0;
  if (r != INFLATE_DONE || out != total) abort();
  inflate_free(&f);
  z_stream s;
  memset(&s, 0, sizeof s);
  inflateInit2(&s, 31);
  t0 = now();
  s.next_in = z, s.avail_in = (uInt)zn;
  int zr = Z_OK;
  for (out = 0; zr == Z_OK; out += 16384 - s.avail_out) {   /* the same 16 KiB of room */
    s.next_out = dst, s.avail_out = 16384;
    zr = inflate(&s, Z_NO_FLUSH);
  }
  double base = now() - t0;
  if (zr != Z_STREAM_END || out != total) abort();
  inflateEnd(&s);
  printf("gzip: %zu bytes from %zu (%.1f:1)\n", total, zn, (double)total / (double)zn);
  line("inflate gzip (output MB/s)", total, t, base);
  free(z);
  free(dst);
}

int main(int argc, char **argv) {
  size_t mb = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 64;
  size_t total = (mb ? mb : 1) << 20;
  bench_heads(total);
  bench_chunked(total, 16384);
  bench_chunked(total, 256);
  bench_inflate(total);
  return 0;
}
