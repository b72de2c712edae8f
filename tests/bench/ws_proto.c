/* ws_proto.c: speed of the WebSocket protocol core on one thread: UTF-8
 * validation (ASCII, Latin, CJK, emoji texts), unmasking and frame parsing,
 * each next to baselines measured in the same run (memcpy of the same bytes,
 * and a plain decode-every-code-point validator). Prints figures, asserts
 * nothing. Usage: build/release/bench_ws_proto [MiB per text, default 16] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ws_frame.h"
#include "ws_utf8.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile unsigned sink;

/* A plain validator: decode each code point and check its range. */
static bool naive_utf8(const uint8_t *s, size_t n) {
  static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    unsigned len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || i + len > n) return false;
    uint32_t cp = len == 1 ? c : c & (0x7fu >> len);
    for (unsigned k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (s[i + k] & 0x3f);
    }
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

/* Fills buf with copies of a sample, ending on a character boundary. */
static size_t fill(uint8_t *buf, size_t cap, const char *sample) {
  size_t n = strlen(sample), at = 0;
  while (at + n <= cap) memcpy(buf + at, sample, n), at += n;
  return at;
}

typedef enum { DO_MEMCPY, DO_NAIVE, DO_UTF8, DO_UTF8_PIECES, DO_MASK } job;

static double mbps(job j, uint8_t *buf, uint8_t *dst, size_t n) {
  static const uint8_t key[4] = {1, 2, 3, 4};
  int reps = 0;
  double t0 = now_s(), t;
  do {
    switch (j) {
    case DO_MEMCPY: memcpy(dst, buf, n), sink += dst[n / 2]; break;
    case DO_NAIVE: sink += naive_utf8(buf, n); break;
    case DO_UTF8: sink += net__utf8_valid(buf, n); break;
    case DO_UTF8_PIECES: {   /* 1400-byte pieces, as TCP segments arrive */
      net_utf8 u;
      net__utf8_init(&u);
      for (size_t at = 0; at < n; at += 1400) net__utf8_feed(&u, buf + at, n - at < 1400 ? n - at : 1400);
      sink += net__utf8_done(&u);
      break;
    }
    case DO_MASK: sink += net__ws_mask(buf, n, key, 1); break;
    }
    reps++;
  } while ((t = now_s() - t0) < 0.3);
  return (double)n * reps / t / 1e6;
}

/* Frames of `size` bytes, masked (server side), parsed from 1400-byte pieces. */
static void frames(size_t size, size_t total) {
  static const uint8_t key[4] = {9, 8, 7, 6};
  size_t per = NET_WS_HEADER_MAX + size, count = total / per ? total / per : 1;
  uint8_t *in = malloc(per * count), *work = malloc(per * count);
  size_t n = 0;
  for (size_t i = 0; i < count; i++) {
    n += net__ws_header(in + n, NET_WS_OP_BINARY, true, false, size, key);
    memset(in + n, 'a', size);
    net__ws_mask(in + n, size, key, 0);
    n += size;
  }
  int reps = 0;
  double t0 = now_s(), t;
  do {
    memcpy(work, in, n);   /* the parser unmasks in place */
    net_ws_parser p;
    net__ws_parser_init(&p, NET_WS_SERVER, false, (uint64_t)1 << 30);
    for (size_t at = 0; at < n; at += 1400) {
      uint8_t *b = work + at, *piece;
      size_t len = n - at < 1400 ? n - at : 1400, used, plen;
      net_ws_event ev;
      while ((ev = net__ws_parse(&p, b, len, &used, &piece, &plen)) != NET_WS_MORE && ev != NET_WS_ERROR)
        b += used, len -= used;
    }
    reps++;
  } while ((t = now_s() - t0) < 0.3);
  printf("parse %7zu-byte masked frames: %9.0f frames/s, %7.0f MB/s (memcpy included)\n", size,
         (double)count * reps / t, (double)n * reps / t / 1e6);
  free(in);
  free(work);
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 16, cap = mib << 20;
  uint8_t *buf = malloc(cap), *dst = malloc(cap);
  memset(dst, 0, cap);   /* fault its pages in before the first memcpy is timed */
  static const struct { const char *name, *sample; } texts[] = {
      {"ASCII", "The quick brown fox jumps over the lazy dog; {\"id\": 42, \"ok\": true}\n"},
      {"Latin", "Größenmaßstäbe für Übergänge: café, naïve, façade, señor, smørrebrød. "},
      {"CJK", "敏捷的棕色狐狸跳过了懒狗。日本語のテキストと한국어 텍스트。"},
      {"emoji", "😀😃😄😁😆😅🤣😂🙂🙃😉😊😇🥰😍🤩"},
  };
  printf("UTF-8 validation, MB/s over %zu MiB (ratio: against the plain validator)\n", mib);
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    size_t n = fill(buf, cap, texts[i].sample);
    double copy = mbps(DO_MEMCPY, buf, dst, n), naive = mbps(DO_NAIVE, buf, dst, n);
    double fast = mbps(DO_UTF8, buf, dst, n), pieces = mbps(DO_UTF8_PIECES, buf, dst, n);
    printf("  %-6s memcpy %7.0f  plain %6.0f  net__utf8 %6.0f (x%.1f)  in 1400-byte pieces %6.0f\n",
           texts[i].name, copy, naive, fast, fast / naive, pieces);
  }
  memset(buf, 'x', cap);
  printf("masking %zu MiB: %.0f MB/s (memcpy %.0f MB/s)\n", mib, mbps(DO_MASK, buf, dst, cap),
         mbps(DO_MEMCPY, buf, dst, cap));
  frames(16, cap);
  frames(1024, cap);
  frames(1 << 20, cap);
  free(buf);
  free(dst);
  return sink == 0xffffffffu;
}
