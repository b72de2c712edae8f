/* inflate.h: streaming decompression (zlib) of HTTP bodies (gzip, deflate) and of
 * permessage-deflate messages (raw deflate), with caps against decompression bombs.
 * Engine-internal; any thread; pure. */
#ifndef SLUICE_INFLATE_H
#define SLUICE_INFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INFLATE_ERR_MAX 160
/* The ratio cap only applies past this much output: small bodies of repeated bytes
 * legitimately compress 1000:1. */
#define INFLATE_RATIO_FLOOR ((uint64_t)1 << 20)

/* Appended to a permessage-deflate message before decoding it (RFC 7692 7.2.2). */
extern const unsigned char INFLATE_WS_TAIL[4];

typedef enum inflate_kind {
  INFLATE_GZIP,      /* Content-Encoding gzip/x-gzip: members may follow each other
                        (zero padding after a member is tolerated) */
  INFLATE_DEFLATE,   /* Content-Encoding deflate: zlib-wrapped (RFC 1950), or raw
                        deflate as some servers send it; told apart by the first 2 bytes */
  INFLATE_RAW,       /* raw deflate (RFC 1951), a window of 2^window_bits (8..15):
                        permessage-deflate; a final block restarts the context. A peer
                        reaching back past a window under 15 bits may be refused or
                        decoded (rightly) depending on the room given: zlib counts what
                        the current call wrote as history too */
} inflate_kind;

typedef enum inflate_result {
  INFLATE_LIMIT = -2,   /* past max_out or max_ratio: err says how far */
  INFLATE_ERROR = -1,   /* corrupt or trailing data: err says what */
  INFLATE_MORE = 0,     /* all input taken, or the output is full (*out_len == out_cap):
                           call again with more input or more room */
  INFLATE_DONE = 1,     /* a complete stream (gzip member) ended and all input was taken */
} inflate_result;

struct z_stream_s;

typedef struct net_inflate {
  struct z_stream_s *z;      /* allocated by inflate_init */
  inflate_kind kind;
  int window_bits;
  int state;
  unsigned char hdr;         /* INFLATE_DEFLATE: a first byte seen alone */
  bool have_hdr;
  uint64_t in_total, out_total;   /* compressed bytes taken, bytes produced */
  uint64_t max_out;          /* 0: no cap */
  uint32_t max_ratio;        /* output / input past INFLATE_RATIO_FLOOR; 0: no cap */
  int failed;                /* 0, INFLATE_ERROR or INFLATE_LIMIT */
  char err[INFLATE_ERR_MAX];
} net_inflate;

/* Returns 0, or -1 with f->err set (out of memory, bad window). window_bits is used by
 * INFLATE_RAW only. Pair every successful init with inflate_free. */
int inflate_init(net_inflate *f, inflate_kind kind, int window_bits, uint64_t max_out,
                 uint32_t max_ratio);
void inflate_free(net_inflate *f);

/* Decodes in[0..in_len) into out[0..out_cap): *in_used bytes taken, *out_len written.
 * The total output never passes max_out; splitting input or output differently gives
 * the same bytes and the same outcome (the ratio check aside, which looks at totals
 * after each call). After an error every call repeats it. */
inflate_result inflate_feed(net_inflate *f, const void *in, size_t in_len, size_t *in_used,
                            void *out, size_t out_cap, size_t *out_len);

/* At the end of an HTTP body: 0 if a whole stream was decoded, else -1 with f->err
 * ("compressed body truncated"). */
int inflate_finish(net_inflate *f);

/* permessage-deflate: zero the counters before each message (caps are per message);
 * inflate_reset also forgets the window (the peer's no_context_takeover). */
void inflate_new_message(net_inflate *f);
void inflate_reset(net_inflate *f);

#endif
