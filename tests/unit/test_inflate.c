/* test_inflate.c: unit tests for net/inflate.c: round trips through zlib's own
 * compressor (gzip, zlib and raw "deflate", permessage-deflate), multi-member gzip,
 * trailing garbage, corruption, truncation, and bombs cut at the caps; prints TAP. */
#include "inflate.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "tap.h"

/* ---- TAP ---------------------------------------------------------------------- */

/* ---- data ---------------------------------------------------------------------- */
static uint64_t rng = 0x1234567;
static uint32_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}

/* Text-like bytes: compressible, but not trivially. */
static unsigned char *sample(size_t n) {
  static const char *words[] = { "net ", "sluice ", "ring ", "chunk ", "HTTP/1.1 ", "gzip ", "\n" };
  unsigned char *p = malloc(n);
  size_t i = 0;
  while (i < n) {
    const char *w = words[next_rand() % 7];
    for (size_t k = 0; w[k] && i < n; k++) p[i++] = (unsigned char)w[k];
    if (next_rand() % 5 == 0 && i < n) p[i++] = (unsigned char)next_rand();
  }
  return p;
}

/* zlib's compressor: windowBits 31 gzip, 15 zlib, negative raw. */
static unsigned char *compress_with(const unsigned char *src, size_t n, int bits, size_t *out_n) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
  size_t cap = deflateBound(&z, (uLong)n) + 64;
  unsigned char *out = malloc(cap);
  z.next_in = (unsigned char *)src;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  int rc = deflate(&z, Z_FINISH);
  *out_n = cap - z.avail_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) {
    free(out);
    return NULL;
  }
  return out;
}

/* Decodes in[0..n) fed in random pieces (at most max_in bytes) into random output
 * room (at most max_out); returns the last result. */
static int decode(net_inflate *f, const unsigned char *in, size_t n, size_t max_in, size_t max_out,
                  unsigned char *out, size_t out_cap, size_t *out_n) {
  size_t i = 0, o = 0;
  int r = INFLATE_MORE;
  unsigned char room[65536];
  for (int idle = 0; idle < 3;) {
    size_t give = n - i ? 1 + next_rand() % (max_in < n - i ? max_in : n - i) : 0;
    size_t cap = 1 + next_rand() % (max_out < sizeof room ? max_out : sizeof room);
    size_t used, made;
    r = inflate_feed(f, in + i, give, &used, room, cap, &made);
    if (o + made > out_cap) return -100;
    memcpy(out + o, room, made);
    o += made;
    i += used;
    if (r < 0) break;
    idle = (used == 0 && made == 0 && i == n) ? idle + 1 : 0;
  }
  *out_n = o;
  return r;
}

static uint64_t round_trip_cap;   /* max_out of the round trips (0: none) */

static bool round_trip(inflate_kind kind, int bits, size_t len, size_t max_in, size_t max_out) {
  unsigned char *src = sample(len), *out = malloc(len + 1);
  size_t zn, n;
  unsigned char *z = compress_with(src, len, bits, &zn);
  net_inflate f;
  bool ok = z && inflate_init(&f, kind, 15, round_trip_cap, 0) == 0;
  if (ok) {
    int r = decode(&f, z, zn, max_in, max_out, out, len + 1, &n);
    ok = r == INFLATE_DONE && n == len && memcmp(out, src, len) == 0 && inflate_finish(&f) == 0;
    if (!ok) fail("bits %d len %zu: r=%d n=%zu err=%s", bits, len, r, n, f.err);
    inflate_free(&f);
  }
  free(src);
  free(out);
  free(z);
  return ok;
}

static bool t_round_trips(void) {
  size_t sizes[] = { 0, 1, 100, 200000 };
  for (size_t i = 0; i < 4; i++) {
    if (!round_trip(INFLATE_GZIP, 31, sizes[i], 1 << 20, 1 << 20)) return false;
    if (!round_trip(INFLATE_GZIP, 31, sizes[i], 7, 13)) return false;
    if (!round_trip(INFLATE_DEFLATE, 15, sizes[i], 1 << 20, 1 << 20)) return false;
    if (!round_trip(INFLATE_DEFLATE, 15, sizes[i], 1, 5)) return false;      /* detect 1 byte at a time */
    if (!round_trip(INFLATE_DEFLATE, -15, sizes[i], 1 << 20, 1 << 20)) return false;
    if (!round_trip(INFLATE_DEFLATE, -15, sizes[i], 1, 3)) return false;
    if (!round_trip(INFLATE_GZIP, 15, sizes[i], 1000, 1000)) return false;   /* zlib labelled gzip */
  }
  /* caps at the very top or exactly the size do not get in the way */
  round_trip_cap = UINT64_MAX;
  bool ok = round_trip(INFLATE_GZIP, 31, 100000, 4096, 4096);
  round_trip_cap = 100000;
  ok = ok && round_trip(INFLATE_DEFLATE, 15, 100000, 4096, 4096);
  round_trip_cap = 0;
  return ok;
}

/* Whole-buffer decode; returns the result and fills out/n. */
static int decode_all(inflate_kind kind, const unsigned char *in, size_t n, unsigned char *out,
                      size_t cap, size_t *out_n, char *err) {
  net_inflate f;
  if (inflate_init(&f, kind, 15, 0, 0) != 0) return -100;
  int r = decode(&f, in, n, n ? n : 1, cap, out, cap, out_n);
  if (r >= 0 && inflate_finish(&f) != 0) r = INFLATE_ERROR;
  snprintf(err, INFLATE_ERR_MAX, "%s", f.err);
  inflate_free(&f);
  return r;
}

static bool t_gzip_members(void) {
  unsigned char *a = sample(5000), *b = sample(7000);
  size_t an, bn, n;
  unsigned char *za = compress_with(a, 5000, 31, &an), *zb = compress_with(b, 7000, 31, &bn);
  unsigned char *cat = malloc(an + bn + 8), *out = malloc(12001);
  char err[INFLATE_ERR_MAX];
  memcpy(cat, za, an);
  memcpy(cat + an, zb, bn);
  int r = decode_all(INFLATE_GZIP, cat, an + bn, out, 12001, &n, err);
  bool ok = r == INFLATE_DONE && n == 12000 && !memcmp(out, a, 5000) && !memcmp(out + 5000, b, 7000);
  if (!ok) fail("two members: %d %zu %s", r, n, err);
  /* zero padding after the last member is tolerated */
  memset(cat + an, 0, 8);
  r = decode_all(INFLATE_GZIP, cat, an + 8, out, 12001, &n, err);
  if (ok && !(r == INFLATE_DONE && n == 5000)) ok = fail("zero padding: %d %s", r, err);
  /* anything else after a member is garbage */
  memcpy(cat + an, "<html>", 6);
  r = decode_all(INFLATE_GZIP, cat, an + 6, out, 12001, &n, err);
  if (ok && !(r == INFLATE_ERROR && strstr(err, "trailing garbage after the gzip data (byte 0x3c)")))
    ok = fail("garbage: %d %s", r, err);
  free(a), free(b), free(za), free(zb), free(cat), free(out);
  return ok;
}

static bool t_bad_data(void) {
  unsigned char *a = sample(20000), *out = malloc(20001);
  size_t zn, n;
  unsigned char *z = compress_with(a, 20000, 31, &zn);
  char err[INFLATE_ERR_MAX];
  bool ok = true;
  /* truncated: every stream cut short says so at the end */
  int r = decode_all(INFLATE_GZIP, z, zn / 2, out, 20001, &n, err);
  if (!(r == INFLATE_ERROR && strstr(err, "gzip body truncated after"))) ok = fail("truncated: %d %s", r, err);
  /* a flipped byte in the CRC trailer */
  z[zn - 6] ^= 0x55;
  r = decode_all(INFLATE_GZIP, z, zn, out, 20001, &n, err);
  if (ok && !(r == INFLATE_ERROR && strstr(err, "corrupt gzip data: incorrect data check")))
    ok = fail("crc: %d %s", r, err);
  z[zn - 6] ^= 0x55;
  /* not gzip at all */
  r = decode_all(INFLATE_GZIP, (const unsigned char *)"<html>not gzip</html>", 21, out, 20001, &n, err);
  if (ok && !(r == INFLATE_ERROR && strstr(err, "corrupt gzip data: incorrect header check")))
    ok = fail("not gzip: %d %s", r, err);
  /* a deflate stream followed by more bytes */
  unsigned char *d = compress_with(a, 100, 15, &zn);
  memcpy(d + zn, "xx", 2);
  r = decode_all(INFLATE_DEFLATE, d, zn + 2, out, 20001, &n, err);
  if (ok && !(r == INFLATE_ERROR && strstr(err, "trailing data after the deflate stream")))
    ok = fail("deflate trailing: %d %s", r, err);
  /* raw deflate with an invalid block type */
  r = decode_all(INFLATE_DEFLATE, (const unsigned char *)"\xff\xff\xff", 3, out, 20001, &n, err);
  if (ok && !(r == INFLATE_ERROR && strstr(err, "corrupt deflate data")))
    ok = fail("bad block: %d %s", r, err);
  free(a), free(out), free(z), free(d);
  return ok;
}

/* permessage-deflate: messages compressed with a sync flush, the 4-byte tail removed
 * by the sender and added back by the receiver; the window carries over. */
static bool t_websocket_messages(void) {
  z_stream z;
  memset(&z, 0, sizeof z);
  CHECK(deflateInit2(&z, 6, Z_DEFLATED, -10, 8, Z_DEFAULT_STRATEGY) == Z_OK, "deflateInit2");
  net_inflate f;
  CHECK(inflate_init(&f, INFLATE_RAW, 10, 4096, 0) == 0, "init: %s", f.err);
  bool ok = true;
  for (int m = 0; m < 4 && ok; m++) {
    unsigned char msg[3000], comp[4000], out[4096];
    snprintf((char *)msg, sizeof msg, "message %d: the same words again and again and again", m);
    size_t len = strlen((char *)msg), used, n, n2;
    z.next_in = msg, z.avail_in = (uInt)len, z.next_out = comp, z.avail_out = sizeof comp;
    deflate(&z, Z_SYNC_FLUSH);
    size_t cn = sizeof comp - z.avail_out;
    ok = cn > 4 && memcmp(comp + cn - 4, INFLATE_WS_TAIL, 4) == 0;
    inflate_new_message(&f);
    int r = inflate_feed(&f, comp, cn - 4, &used, out, sizeof out, &n);
    int r2 = inflate_feed(&f, INFLATE_WS_TAIL, 4, &used, out + n, sizeof out - n, &n2);
    ok = ok && r == INFLATE_MORE && r2 == INFLATE_MORE && n + n2 == len && !memcmp(out, msg, len);
    if (!ok) fail("message %d: %d %d %zu %s", m, r, r2, n + n2, f.err);
  }
  /* the per-message cap */
  unsigned char zeros[8192] = { 0 }, comp[8192], out[8192];
  size_t used, n;
  z.next_in = zeros, z.avail_in = sizeof zeros, z.next_out = comp, z.avail_out = sizeof comp;
  deflate(&z, Z_SYNC_FLUSH);
  inflate_new_message(&f);
  int r = inflate_feed(&f, comp, sizeof comp - z.avail_out, &used, out, sizeof out, &n);
  if (ok && !(r == INFLATE_LIMIT && n == 4096 && strstr(f.err, "raw deflate body decodes to more than 4096 bytes")))
    ok = fail("cap: %d %zu %s", r, n, f.err);
  deflateEnd(&z);
  inflate_free(&f);
  net_inflate g;
  if (ok && inflate_init(&g, INFLATE_RAW, 16, 0, 0) == 0) ok = fail("window 2^16 accepted");
  return ok;
}

/* ---- bombs --------------------------------------------------------------------- */
/* One segment of a bomb: 1 MiB of zeros as raw deflate ending in a full flush, so
 * that any number of copies in a row is a valid stream (1024 copies: 1 GiB). */
static unsigned char *zero_segment(size_t *n) {
  static unsigned char zeros[1 << 20];
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
  unsigned char *out = malloc(1 << 16);
  z.next_in = zeros, z.avail_in = sizeof zeros, z.next_out = out, z.avail_out = 1 << 16;
  deflate(&z, Z_FULL_FLUSH);
  *n = (1 << 16) - z.avail_out;
  deflateEnd(&z);
  return out;
}

/* Feeds a gzip header and then up to 1024 segments; returns the result. */
static int feed_bomb(net_inflate *f, uint64_t *out_total, size_t *in_total) {
  static const unsigned char gz[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
  static unsigned char room[1 << 16];
  size_t sn = 0, used, made;
  unsigned char *seg = zero_segment(&sn);
  if (!seg) return -100;
  int r = inflate_feed(f, gz, sizeof gz, &used, room, sizeof room, &made);
  *out_total = 0;
  *in_total = used;
  for (int k = 0; k < 1024 && r == INFLATE_MORE; k++) {
    size_t off = 0;
    while (r == INFLATE_MORE && (off < sn || made == sizeof room)) {
      r = inflate_feed(f, seg + off, sn - off, &used, room, sizeof room, &made);
      off += used;
      *in_total += used;
      *out_total += made;
    }
  }
  free(seg);
  return r;
}

static bool t_bomb_size_cap(void) {
  net_inflate f;
  uint64_t out;
  size_t in;
  CHECK(inflate_init(&f, INFLATE_GZIP, 0, 16u << 20, 0) == 0, "init");
  int r = feed_bomb(&f, &out, &in);
  bool ok = r == INFLATE_LIMIT && out == (16u << 20) &&
            strcmp(f.err, "gzip body decodes to more than 16777216 bytes") == 0 && in < (1u << 20);
  if (!ok) fail("r=%d out=%llu in=%zu err=%s", r, (unsigned long long)out, in, f.err);
  /* the error stays */
  size_t u, m;
  unsigned char one;
  if (ok && inflate_feed(&f, "x", 1, &u, &one, 1, &m) != INFLATE_LIMIT) ok = fail("limit did not stay");
  inflate_free(&f);
  return ok;
}

static bool t_bomb_ratio_cap(void) {
  net_inflate f;
  uint64_t out;
  size_t in;
  CHECK(inflate_init(&f, INFLATE_GZIP, 0, 0, 100) == 0, "init");
  int r = feed_bomb(&f, &out, &in);
  bool ok = r == INFLATE_LIMIT && out <= INFLATE_RATIO_FLOOR + (1 << 16) &&
            strstr(f.err, "gzip body expands more than 100 times");
  if (!ok) fail("r=%d out=%llu in=%zu err=%s", r, (unsigned long long)out, in, f.err);
  inflate_free(&f);
  /* an ordinary body well under the ratio passes */
  return ok && round_trip(INFLATE_GZIP, 31, 3 << 20, 1 << 16, 1 << 16);
}

int main(void) {
  report("gzip, zlib and raw deflate round trips in random pieces", t_round_trips());
  report("gzip members, zero padding, trailing garbage", t_gzip_members());
  report("truncated, corrupt and mislabelled data fail with a message", t_bad_data());
  report("permessage-deflate messages with context takeover and a per-message cap", t_websocket_messages());
  report("a 1 GiB gzip bomb is cut at the size cap", t_bomb_size_cap());
  report("a gzip bomb is cut at the ratio cap", t_bomb_ratio_cap());
  return tap_done();
}
