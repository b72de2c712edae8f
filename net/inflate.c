/* inflate.c: bounded streaming decompression over zlib: gzip members, zlib or raw
 * "deflate", raw deflate for permessage-deflate. Any thread; pure. */
#include "inflate.h"
#include "alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

const unsigned char INFLATE_WS_TAIL[4] = { 0x00, 0x00, 0xff, 0xff };

enum {
  S_DETECT,     /* INFLATE_DEFLATE before its first two bytes */
  S_STREAM,     /* inside a stream */
  S_BETWEEN,    /* INFLATE_GZIP after a member: padding, another member or the end */
  S_ENDED,      /* INFLATE_DEFLATE after its stream: nothing may follow */
};

static int fail(net_inflate *f, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->err, sizeof f->err, fmt, ap);
  va_end(ap);
  f->failed = code;
  return code;
}

static voidpf zalloc_cb(voidpf opaque, uInt items, uInt size) {
  (void)opaque;
  return net__calloc(items, size);
}

static void zfree_cb(voidpf opaque, voidpf p) {
  (void)opaque;
  net__free(p);
}

static const char *kind_name(const net_inflate *f) {
  return f->kind == INFLATE_GZIP ? "gzip" : f->kind == INFLATE_DEFLATE ? "deflate" : "raw deflate";
}

/* zlib's windowBits for the stream about to start (deflate: from its first bytes). */
static int zbits(const net_inflate *f, unsigned char b0, unsigned char b1) {
  if (f->kind == INFLATE_GZIP) return 15 + 32;   /* gzip, or zlib mislabelled as gzip */
  if (f->kind == INFLATE_RAW) return -f->window_bits;
  /* a zlib header: method 8, a window of at most 32 KiB, check bits (RFC 1950 2.2) */
  bool zlib = (b0 & 0x0f) == 8 && (b0 >> 4) <= 7 && ((unsigned)b0 * 256 + b1) % 31 == 0;
  return zlib ? 15 : -15;
}

int inflate_init(net_inflate *f, inflate_kind kind, int window_bits, uint64_t max_out,
                 uint32_t max_ratio) {
  memset(f, 0, sizeof *f);
  f->kind = kind;
  f->window_bits = window_bits;
  f->max_out = max_out;
  f->max_ratio = max_ratio;
  if (kind == INFLATE_RAW && (window_bits < 8 || window_bits > 15))
    return fail(f, INFLATE_ERROR, "raw deflate window of 2^%d bytes (8..15 allowed)", window_bits), -1;
  f->z = net__calloc(1, sizeof *f->z);
  if (!f->z) return fail(f, INFLATE_ERROR, "out of memory for %s decoding", kind_name(f)), -1;
  f->z->zalloc = zalloc_cb;
  f->z->zfree = zfree_cb;
  f->state = kind == INFLATE_DEFLATE ? S_DETECT : S_STREAM;
  /* deflate decides its window bits at the first bytes; init with zlib's, reset later */
  if (inflateInit2(f->z, kind == INFLATE_DEFLATE ? 15 : zbits(f, 0, 0)) != Z_OK) {
    net__free(f->z);
    f->z = NULL;
    return fail(f, INFLATE_ERROR, "out of memory for %s decoding", kind_name(f)), -1;
  }
  return 0;
}

void inflate_free(net_inflate *f) {
  if (f->z) {
    inflateEnd(f->z);
    net__free(f->z);
    f->z = NULL;
  }
}

void inflate_new_message(net_inflate *f) {
  f->in_total = 0;
  f->out_total = 0;
}

void inflate_reset(net_inflate *f) {
  inflate_new_message(f);
  if (f->z && !f->failed) inflateReset(f->z);
}

int inflate_finish(net_inflate *f) {
  if (f->failed) return -1;
  if (f->state == S_BETWEEN || f->state == S_ENDED) return 0;
  if (f->in_total == 0) return 0;   /* an empty body is an empty body, encoded or not */
  fail(f, INFLATE_ERROR, "%s body truncated after %llu compressed bytes", kind_name(f),
       (unsigned long long)f->in_total);
  return -1;
}

/* Both caps, after output grew. */
static int check_caps(net_inflate *f) {
  if (f->max_out && f->out_total > f->max_out)
    return fail(f, INFLATE_LIMIT, "%s body decodes to more than %llu bytes", kind_name(f),
                (unsigned long long)f->max_out);
  if (f->max_ratio && f->out_total > INFLATE_RATIO_FLOOR &&
      f->out_total / f->max_ratio > f->in_total)
    return fail(f, INFLATE_LIMIT, "%s body expands more than %u times (%llu bytes from %llu)",
                kind_name(f), f->max_ratio, (unsigned long long)f->out_total,
                (unsigned long long)f->in_total);
  return 0;
}

/* A stream ended: what may follow depends on the kind. */
static void stream_end(net_inflate *f) {
  if (f->kind == INFLATE_GZIP) f->state = S_BETWEEN;
  else if (f->kind == INFLATE_DEFLATE) f->state = S_ENDED;
  else inflateReset(f->z);   /* raw: a final block ends the peer's context */
}

/* One zlib call over what is left; *progress tells whether anything moved. */
static int run(net_inflate *f, const unsigned char *in, size_t *i, size_t in_len,
               unsigned char *out, size_t *o, size_t out_cap, bool *progress) {
  size_t room = out_cap - *o;
  uint64_t left = f->max_out - f->out_total;
  if (f->max_out && left < room) room = (size_t)left + 1;   /* one past the cap tells */
  size_t avail_in = in_len - *i;
  f->z->next_in = (unsigned char *)(uintptr_t)(in + *i);
  f->z->avail_in = avail_in > UINT32_MAX ? UINT32_MAX : (uInt)avail_in;
  f->z->next_out = out + *o;
  f->z->avail_out = room > UINT32_MAX ? UINT32_MAX : (uInt)room;
  uInt in0 = f->z->avail_in, out0 = f->z->avail_out;
  int rc = inflate(f->z, Z_NO_FLUSH);
  size_t took = in0 - f->z->avail_in, made = out0 - f->z->avail_out;
  *i += took;
  f->in_total += took;
  f->out_total += made;
  *progress = took || made;
  if (f->max_out && f->out_total > f->max_out) made -= (size_t)(f->out_total - f->max_out);
  *o += made;
  if (check_caps(f)) return f->failed;
  if (rc == Z_STREAM_END) stream_end(f);
  else if (rc == Z_NEED_DICT) return fail(f, INFLATE_ERROR, "%s data needs a preset dictionary", kind_name(f));
  else if (rc == Z_DATA_ERROR) return fail(f, INFLATE_ERROR, "corrupt %s data: %s", kind_name(f), f->z->msg ? f->z->msg : "?");
  else if (rc == Z_MEM_ERROR) return fail(f, INFLATE_ERROR, "out of memory decoding %s", kind_name(f));
  return 0;
}

/* S_DETECT: the first two bytes of a "deflate" body pick zlib or raw. */
static int detect(net_inflate *f, const unsigned char *in, size_t *i, size_t in_len) {
  if (!f->have_hdr) {
    f->hdr = in[(*i)++];
    f->have_hdr = true;
    f->in_total++;
    if (*i == in_len) return 0;
  }
  if (inflateReset2(f->z, zbits(f, f->hdr, in[*i])) != Z_OK)
    return fail(f, INFLATE_ERROR, "cannot start deflate decoding");
  f->state = S_STREAM;
  /* one byte alone never completes an output byte, so zlib takes it whole */
  unsigned char b = f->hdr;
  f->z->next_in = &b;
  f->z->avail_in = 1;
  f->z->next_out = &b;
  f->z->avail_out = 0;
  int rc = inflate(f->z, Z_NO_FLUSH);
  if (f->z->avail_in != 0 || (rc != Z_OK && rc != Z_BUF_ERROR))
    return fail(f, INFLATE_ERROR, "corrupt deflate data: %s", f->z->msg ? f->z->msg : "bad header");
  return 0;
}

/* S_BETWEEN: zero padding, or another gzip member; anything else is garbage. */
static int between(net_inflate *f, const unsigned char *in, size_t *i, size_t in_len) {
  while (*i < in_len && in[*i] == 0) {
    (*i)++;
    f->in_total++;
  }
  if (*i == in_len) return 0;
  if (in[*i] != 0x1f)
    return fail(f, INFLATE_ERROR, "trailing garbage after the gzip data (byte 0x%02x)", in[*i]);
  inflateReset(f->z);
  f->state = S_STREAM;
  return 0;
}

inflate_result inflate_feed(net_inflate *f, const void *in_, size_t in_len, size_t *in_used,
                            void *out_, size_t out_cap, size_t *out_len) {
  const unsigned char *in = in_;
  size_t i = 0, o = 0;
  int rc = 0;
  bool progress = true;
  *in_used = 0;
  *out_len = 0;
  if (f->failed || !f->z) return f->failed ? f->failed : INFLATE_ERROR;
  while (rc == 0 && progress) {
    if (f->state == S_DETECT) {
      if (i == in_len) break;
      rc = detect(f, in, &i, in_len);
    } else if (f->state == S_BETWEEN) {
      rc = between(f, in, &i, in_len);
      if (f->state == S_BETWEEN) break;
    } else if (f->state == S_ENDED) {
      if (i < in_len) rc = fail(f, INFLATE_ERROR, "trailing data after the deflate stream");
      break;
    } else {
      if (o == out_cap) break;
      rc = run(f, in, &i, in_len, out_, &o, out_cap, &progress);
    }
  }
  *in_used = i;
  *out_len = o;
  if (rc) return rc;
  if ((f->state == S_BETWEEN || f->state == S_ENDED) && i == in_len) return INFLATE_DONE;
  return INFLATE_MORE;
}
