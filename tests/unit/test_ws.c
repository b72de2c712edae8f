/* test_ws.c: unit tests for the WebSocket protocol core (net/ws_frame.c,
 * ws_utf8.c, ws_hs.c, ws_ext.c): RFC 6455's and RFC 7692's examples, every
 * parser error with its close code, feeding in pieces of every size, UTF-8
 * boundary cases against a reference decoder; prints TAP. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_ext.h"
#include "ws_frame.h"
#include "ws_hs.h"
#include "ws_utf8.h"
#include "tap.h"
#include "utf8_ref.h"

/* ---- TAP ---------------------------------------------------------------------- */

/* ---- running the parser ---------------------------------------------------------- */

#define MAXF 16

typedef struct rec {
  uint8_t op;
  bool fin, rsv1;
  uint64_t len;
} rec;

typedef struct transcript {
  rec f[MAXF];
  int nf;
  unsigned msgs;       /* whole data messages seen */
  uint8_t *data;       /* every payload byte, in order */
  size_t ndata;
  uint16_t err;        /* close code, 0 when none */
  const char *why;
} transcript;

static bool feed(net_ws_parser *p, transcript *t, uint8_t *buf, size_t len) {
  for (;;) {
    size_t used, plen;
    uint8_t *piece;
    net_ws_event ev = net__ws_parse(p, buf, len, &used, &piece, &plen);
    buf += used, len -= used;
    switch (ev) {
    case NET_WS_MORE:
      return true;
    case NET_WS_HEADER:
      if (t->nf < MAXF) t->f[t->nf] = (rec){p->frame.opcode, p->frame.fin, p->frame.rsv1, p->frame.len};
      t->nf++;
      break;
    case NET_WS_PAYLOAD:
      memcpy(t->data + t->ndata, piece, plen);
      t->ndata += plen;
      break;
    case NET_WS_END:
      if (net__ws_message_done(p)) t->msgs++;
      break;
    case NET_WS_ERROR:
      t->err = p->close_code;
      t->why = p->why;
      return false;
    }
  }
}

/* Parses in[0..n) fed in pieces of `step` bytes (0: all at once). */
static transcript run(net_ws_role role, bool rsv1, uint64_t max, const uint8_t *in, size_t n,
                      size_t step) {
  transcript t;
  memset(&t, 0, sizeof t);
  t.data = malloc(n + 1);
  uint8_t *copy = malloc(n + 1);
  memcpy(copy, in, n);
  net_ws_parser p;
  net__ws_parser_init(&p, role, rsv1, max);
  if (!step) step = n ? n : 1;
  for (size_t at = 0; at < n; at += step)
    if (!feed(&p, &t, copy + at, n - at < step ? n - at : step)) break;
  free(copy);
  return t;
}

static bool same_transcript(const transcript *a, const transcript *b) {
  if (a->nf != b->nf || a->msgs != b->msgs || a->ndata != b->ndata || a->err != b->err) return false;
  if (memcmp(a->f, b->f, sizeof(rec) * (size_t)(a->nf < MAXF ? a->nf : MAXF))) return false;
  return memcmp(a->data, b->data, a->ndata) == 0;
}

/* Runs with every piece size up to 16 and a few larger; all must agree with whole feeding. */
static bool run_all(net_ws_role role, bool rsv1, uint64_t max, const uint8_t *in, size_t n,
                    transcript *out) {
  static const size_t big[] = {100, 1000, 4096, 65535};
  *out = run(role, rsv1, max, in, n, 0);
  for (size_t s = 1; s < 16 + sizeof big / sizeof *big; s++) {
    size_t step = s <= 16 ? s : big[s - 17];
    transcript t = run(role, rsv1, max, in, n, step);
    bool ok = same_transcript(out, &t);
    free(t.data);
    if (!ok) return fail("feeding %zu bytes at a time differs", step);
  }
  return true;
}

#define RUN_ALL(role, rsv1, max, in, n, t)                                      \
  do {                                                                          \
    if (!run_all(role, rsv1, max, in, n, t)) { free((t)->data); return false; } \
  } while (0)

/* ---- RFC 6455 section 5.7 ------------------------------------------------------- */

static const uint8_t hello_unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t hello_masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
static const uint8_t hello_fragmented[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
static const uint8_t ping_unmasked[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t pong_masked[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};

static bool expect_hello(const transcript *t, int nf, unsigned msgs) {
  CHECK(t->err == 0, "error %u: %s", t->err, t->why);
  CHECK(t->nf == nf && t->msgs == msgs, "%d frames, %u messages", t->nf, t->msgs);
  CHECK(t->ndata == 5 && !memcmp(t->data, "Hello", 5), "payload %.*s", (int)t->ndata, t->data);
  return true;
}

static bool test_rfc_hello(void) {
  transcript t;
  bool ok;
  RUN_ALL(NET_WS_CLIENT, false, 1000, hello_unmasked, sizeof hello_unmasked, &t);
  ok = expect_hello(&t, 1, 1) && t.f[0].op == NET_WS_OP_TEXT && t.f[0].fin;
  free(t.data);
  CHECK(ok, "unmasked: %s", why);
  RUN_ALL(NET_WS_SERVER, false, 1000, hello_masked, sizeof hello_masked, &t);
  ok = expect_hello(&t, 1, 1);
  free(t.data);
  CHECK(ok, "masked: %s", why);
  RUN_ALL(NET_WS_CLIENT, false, 1000, hello_fragmented, sizeof hello_fragmented, &t);
  ok = expect_hello(&t, 2, 1) && t.f[0].op == NET_WS_OP_TEXT && !t.f[0].fin &&
       t.f[1].op == NET_WS_OP_CONT && t.f[1].fin;
  free(t.data);
  CHECK(ok, "fragmented: %s", why);
  RUN_ALL(NET_WS_CLIENT, false, 1000, ping_unmasked, sizeof ping_unmasked, &t);
  ok = expect_hello(&t, 1, 0) && t.f[0].op == NET_WS_OP_PING;
  free(t.data);
  CHECK(ok, "ping: %s", why);
  RUN_ALL(NET_WS_SERVER, false, 1000, pong_masked, sizeof pong_masked, &t);
  ok = expect_hello(&t, 1, 0) && t.f[0].op == NET_WS_OP_PONG;
  free(t.data);
  CHECK(ok, "pong: %s", why);
  return true;
}

/* The builder makes exactly the RFC's bytes. */
static bool test_rfc_build(void) {
  static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  uint8_t out[NET_WS_HEADER_MAX + 8];
  size_t n = net__ws_header(out, NET_WS_OP_TEXT, true, false, 5, NULL);
  CHECK(n == 2 && !memcmp(out, hello_unmasked, 2), "unmasked header");
  n = net__ws_header(out, NET_WS_OP_TEXT, true, false, 5, key);
  memcpy(out + n, "Hello", 5);
  CHECK(net__ws_mask(out + n, 5, key, 0) == 1, "mask offset after 5 bytes");
  CHECK(n == 6 && !memcmp(out, hello_masked, sizeof hello_masked), "masked frame");
  n = net__ws_header(out, NET_WS_OP_TEXT, false, false, 3, NULL);
  CHECK(n == 2 && !memcmp(out, hello_fragmented, 2), "first fragment");
  n = net__ws_header(out, NET_WS_OP_CONT, true, false, 2, NULL);
  CHECK(n == 2 && !memcmp(out, hello_fragmented + 5, 2), "last fragment");
  n = net__ws_header(out, NET_WS_OP_BINARY, true, false, 256, NULL);
  CHECK(n == 4 && !memcmp(out, "\x82\x7e\x01\x00", 4), "256-byte header");
  n = net__ws_header(out, NET_WS_OP_BINARY, true, false, 65536, NULL);
  CHECK(n == 10 && !memcmp(out, "\x82\x7f\0\0\0\0\0\x01\0\0", 10), "64 KiB header");
  n = net__ws_header(out, NET_WS_OP_PONG, true, true, 65535, key);
  CHECK(n == 8 && !memcmp(out, "\xca\xfe\xff\xff\x37\xfa\x21\x3d", 8), "rsv1 masked 16-bit");
  return true;
}

static bool test_rfc_lengths(void) {
  static const size_t sizes[] = {125, 126, 256, 65535, 65536, 70000};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    size_t len = sizes[i];
    uint8_t *in = malloc(len + NET_WS_HEADER_MAX);
    size_t h = net__ws_header(in, NET_WS_OP_BINARY, true, false, len, NULL);
    for (size_t j = 0; j < len; j++) in[h + j] = (uint8_t)(j * 7 + 1);
    transcript t;
    bool ok = run_all(NET_WS_CLIENT, false, 1 << 20, in, h + len, &t);
    ok = ok && t.err == 0 && t.nf == 1 && t.f[0].len == len && t.ndata == len && t.msgs == 1 &&
         !memcmp(t.data, in + h, len);
    free(t.data);
    free(in);
    CHECK(ok, "length %zu (%s)", len, why);
  }
  return true;
}

/* A masked message built in odd pieces parses back to the same bytes, in both roles' sense. */
static bool test_mask_pieces(void) {
  static const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
  uint8_t a[1000], b[1000];
  for (size_t i = 0; i < sizeof a; i++) a[i] = b[i] = (uint8_t)(i * 31);
  net__ws_mask(a, sizeof a, key, 0);
  unsigned at = 0;
  for (size_t i = 0, step = 1; i < sizeof b; i += step, step = step % 13 + 1) {
    size_t n = sizeof b - i < step ? sizeof b - i : step;
    at = net__ws_mask(b + i, n, key, at);
  }
  CHECK(!memcmp(a, b, sizeof a), "masking in pieces differs from masking at once");
  for (size_t i = 0; i < sizeof a; i++) CHECK(a[i] == (uint8_t)((i * 31) ^ key[i & 3]), "byte %zu", i);
  return true;
}

/* Control frames between fragments are delivered; the message completes after them. */
static bool test_control_between_fragments(void) {
  static const uint8_t in[] = {0x01, 0x03, 'H', 'e', 'l', 0x89, 0x01, '!', 0x8a, 0x00,
                               0x00, 0x01, 'l', 0x80, 0x01, 'o', 0x82, 0x00};
  transcript t;
  RUN_ALL(NET_WS_CLIENT, false, 5, in, sizeof in, &t);
  bool ok = t.err == 0 && t.nf == 6 && t.msgs == 2 && t.ndata == 6 && !memcmp(t.data, "Hel!lo", 6) &&
            t.f[1].op == NET_WS_OP_PING && t.f[2].op == NET_WS_OP_PONG && t.f[5].len == 0;
  free(t.data);
  CHECK(ok, "transcript: err %u, %d frames, %u messages", t.err, t.nf, t.msgs);
  return true;
}

/* ---- every error, with its close code ------------------------------------------- */

typedef struct bad_case {
  const char *name;
  net_ws_role role;
  bool rsv1;
  uint64_t max;
  const char *bytes;
  size_t n;
  uint16_t code;
  int frames_before; /* headers reported before the error */
} bad_case;

#define B(s) s, sizeof(s) - 1
static const bad_case bad_cases[] = {
    {"RSV2 set", NET_WS_CLIENT, true, 100, B("\xa1\x00"), 1002, 0},
    {"RSV3 set", NET_WS_CLIENT, true, 100, B("\x91\x00"), 1002, 0},
    {"RSV1 without negotiation", NET_WS_CLIENT, false, 100, B("\xc1\x00"), 1002, 0},
    {"RSV1 on a control frame", NET_WS_CLIENT, true, 100, B("\xc9\x00"), 1002, 0},
    {"RSV1 on a continuation", NET_WS_CLIENT, true, 100, B("\x41\x00\xc0\x00"), 1002, 1},
    {"opcode 3", NET_WS_CLIENT, false, 100, B("\x83\x00"), 1002, 0},
    {"opcode 7", NET_WS_CLIENT, false, 100, B("\x87\x00"), 1002, 0},
    {"opcode 0xB", NET_WS_CLIENT, false, 100, B("\x8b\x00"), 1002, 0},
    {"opcode 0xF", NET_WS_CLIENT, false, 100, B("\x8f\x00"), 1002, 0},
    {"unmasked frame to a server", NET_WS_SERVER, false, 100, B("\x81\x00"), 1002, 0},
    {"masked frame to a client", NET_WS_CLIENT, false, 100, B("\x81\x80\x01\x02\x03\x04"), 1002, 0},
    {"fragmented ping", NET_WS_CLIENT, false, 100, B("\x09\x00"), 1002, 0},
    {"fragmented close", NET_WS_CLIENT, false, 100, B("\x08\x00"), 1002, 0},
    {"ping of 126 bytes", NET_WS_CLIENT, false, 100, B("\x89\x7e\x00\x7e"), 1002, 0},
    {"close with a 64-bit length", NET_WS_CLIENT, false, 100, B("\x88\x7f"), 1002, 0},
    {"continuation first", NET_WS_CLIENT, false, 100, B("\x80\x00"), 1002, 0},
    {"text inside a fragmented message", NET_WS_CLIENT, false, 100, B("\x01\x00\x81\x00"), 1002, 1},
    {"binary inside a fragmented message", NET_WS_CLIENT, false, 100, B("\x02\x00\x82\x00"), 1002, 1},
    {"continuation after a whole message", NET_WS_CLIENT, false, 100, B("\x81\x00\x80\x00"), 1002, 1},
    {"16-bit length under 126", NET_WS_CLIENT, false, 1000, B("\x82\x7e\x00\x7d"), 1002, 0},
    {"64-bit length under 65536", NET_WS_CLIENT, false, 1 << 20,
     B("\x82\x7f\x00\x00\x00\x00\x00\x00\xff\xff"), 1002, 0},
    {"64-bit length with the high bit", NET_WS_CLIENT, false, UINT64_MAX,
     B("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00"), 1002, 0},
    {"message over the cap", NET_WS_CLIENT, false, 10, B("\x82\x0b"), 1009, 0},
    {"fragments over the cap", NET_WS_CLIENT, false, 10, B("\x02\x06\0\0\0\0\0\0\x80\x05"), 1009, 1},
    {"64-bit length over the cap", NET_WS_SERVER, false, 1 << 20,
     B("\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x01\x02\x03\x04"), 1009, 0},
    {"compressed message over the cap and its slack", NET_WS_CLIENT, true, 4096,
     B("\xc2\x7e\x10\x52"), 1009, 0},
};
#undef B

static bool test_errors(void) {
  for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
    const bad_case *c = &bad_cases[i];
    transcript t;
    if (!run_all(c->role, c->rsv1, c->max, (const uint8_t *)c->bytes, c->n, &t)) {
      free(t.data);
      return fail("%s: %s", c->name, why);
    }
    free(t.data);
    CHECK(t.err == c->code && t.why && *t.why, "%s: code %u (%s)", c->name, t.err, t.why);
    CHECK(t.nf == c->frames_before, "%s: %d headers before the error", c->name, t.nf);
  }
  return true;
}

/* The error sticks; the caps pass exactly at their limits. */
static bool test_error_edges(void) {
  net_ws_parser p;
  uint8_t bad[] = {0x83, 0x00, 0x81, 0x00}, *piece;
  size_t used, plen;
  net__ws_parser_init(&p, NET_WS_CLIENT, false, 100);
  CHECK(net__ws_parse(&p, bad, 4, &used, &piece, &plen) == NET_WS_ERROR, "first error");
  CHECK(net__ws_parse(&p, bad + 2, 2, &used, &piece, &plen) == NET_WS_ERROR && used == 0, "sticky");
  static const uint8_t ten[] = {0x02, 0x05, 1, 2, 3, 4, 5, 0x80, 0x05, 6, 7, 8, 9, 10};
  transcript t;
  RUN_ALL(NET_WS_CLIENT, false, 10, ten, sizeof ten, &t);
  free(t.data);
  CHECK(t.err == 0 && t.msgs == 1 && t.ndata == 10, "10 bytes in two fragments under a cap of 10");
  uint8_t slack[4] = {0xc2, 0x7e, 0x10, 0x51};   /* 4177 = 4096 + 4096/4096 + 64, and a flush's 16 */
  p = (net_ws_parser){0};
  net__ws_parser_init(&p, NET_WS_CLIENT, true, 4096);
  CHECK(net__ws_parse(&p, slack, 4, &used, &piece, &plen) == NET_WS_HEADER && p.msg_rsv1,
        "compressed frame within the slack");
  /* compressed fragment by fragment, each with its flush: 400 of 20 bytes under a cap of 4096 */
  uint8_t frags[400 * 22];
  for (int i = 0; i < 400; i++) {
    frags[i * 22] = i == 0 ? 0x42 : i == 399 ? 0x80 : 0x00;
    frags[i * 22 + 1] = 20;
    memset(frags + i * 22 + 2, 0x5a, 20);
  }
  RUN_ALL(NET_WS_CLIENT, true, 4096, frags, sizeof frags, &t);
  free(t.data);
  CHECK(t.err == 0 && t.msgs == 1 && t.nf == 400, "400 compressed fragments of 20 bytes: %u %s", t.err, t.why);
  static const uint8_t zero_cap[] = {0x81, 0x00, 0x89, 0x03, 'a', 'b', 'c'};
  RUN_ALL(NET_WS_CLIENT, false, 0, zero_cap, sizeof zero_cap, &t);
  free(t.data);
  CHECK(t.err == 0 && t.msgs == 1 && t.nf == 2, "a cap of 0 still passes empty messages and pings");
  return true;
}

/* ---- UTF-8 ------------------------------------------------------------------------ */

static bool same_verdict(const uint8_t *s, size_t n) {
  int r = utf8_ref(s, n);
  bool truncated = r == 2, ref = r == 1;
  if (net__utf8_valid(s, n) != ref) return false;
  /* streaming, split at every point: still the same */
  for (size_t cut = 0; cut <= n; cut++) {
    net_utf8 u;
    net__utf8_init(&u);
    bool ok = net__utf8_feed(&u, s, cut) && net__utf8_feed(&u, s + cut, n - cut) && net__utf8_done(&u);
    if (ok != ref) return false;
  }
  /* a truncated but otherwise good text is not refused before its end */
  if (truncated) {
    net_utf8 u;
    net__utf8_init(&u);
    if (!net__utf8_feed(&u, s, n) || net__utf8_done(&u)) return false;
  }
  return true;
}

static bool test_utf8_exhaustive(void) {
  uint8_t s[4];
  for (unsigned a = 0; a < 256; a++) {
    s[0] = (uint8_t)a;
    CHECK(same_verdict(s, 1), "%02x", a);
    for (unsigned b = 0; b < 256; b++) {
      s[1] = (uint8_t)b;
      CHECK(same_verdict(s, 2), "%02x %02x", a, b);
      if (a < 0xc0) continue;   /* 3 bytes: every lead that can start a sequence */
      for (unsigned c = 0; c < 256; c++) {
        s[2] = (uint8_t)c;
        CHECK(net__utf8_valid(s, 3) == (utf8_ref(s, 3) == 1), "%02x %02x %02x", a, b, c);
      }
    }
  }
  static const uint8_t edge[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff};
  for (unsigned a = 0xf0; a < 0x100; a++)
    for (unsigned b = 0; b < 256; b++)
      for (size_t c = 0; c < sizeof edge; c++)
        for (size_t d = 0; d < sizeof edge; d++) {
          uint8_t q[4] = {(uint8_t)a, (uint8_t)b, edge[c], edge[d]};
          CHECK(same_verdict(q, 4), "%02x %02x %02x %02x", a, b, edge[c], edge[d]);
        }
  return true;
}

typedef struct utf8_case {
  const char *s;
  size_t n;
  bool valid;
} utf8_case;

#define U(s, v) {s, sizeof(s) - 1, v}
static const utf8_case utf8_cases[] = {
    U("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true),   /* a Greek word */
    U("", true), U("\x00", true), U("\x7f", true),
    U("\xc2\x80", true), U("\xdf\xbf", true),                        /* 2-byte bounds */
    U("\xe0\xa0\x80", true), U("\xef\xbf\xbf", true),                /* 3-byte bounds */
    U("\xf0\x90\x80\x80", true), U("\xf4\x8f\xbf\xbf", true),        /* 4-byte bounds */
    U("\xed\x9f\xbf", true), U("\xee\x80\x80", true), U("\xef\xbf\xbd", true),
    U("\xef\xbf\xbe", true),                                         /* U+FFFE: a noncharacter, still UTF-8 */
    U("\xf4\x90\x80\x80", false),                                    /* U+110000 */
    U("\xf7\xbf\xbf\xbf", false), U("\xf8\x88\x80\x80\x80", false), U("\xfc\x84\x80\x80\x80\x80", false),
    U("\x80", false), U("\xbf", false), U("\x80\xbf\x80", false),   /* lone continuations */
    U("\xc0 ", false), U("\xe0\x80 ", false), U("\xf0\x80\x80 ", false),
    U("\xc0\xaf", false), U("\xe0\x80\xaf", false), U("\xf0\x80\x80\xaf", false),   /* overlong '/' */
    U("\xc1\xbf", false), U("\xe0\x9f\xbf", false), U("\xf0\x8f\xbf\xbf", false),   /* largest overlongs */
    U("\xc0\x80", false), U("\xe0\x80\x80", false),                                 /* overlong NUL */
    U("\xed\xa0\x80", false), U("\xed\xad\xbf", false), U("\xed\xae\x80", false),
    U("\xed\xaf\xbf", false), U("\xed\xb0\x80", false), U("\xed\xbf\xbf", false),   /* surrogates */
    U("\xed\xa0\x80\xed\xb0\x80", false),                                           /* a surrogate pair */
    U("\xfe", false), U("\xff", false), U("\xfe\xfe\xff\xff", false),
    U("\xc2", false), U("\xe0\xa0", false), U("\xf0\x90\x80", false), U("\xf4\x8f\xbf", false),
    U("ab\xce\xba\xe1\xbd\xb9\xcf", false),   /* truncated at the end */
    U("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", true),
};
#undef U

static bool test_utf8_cases(void) {
  for (size_t i = 0; i < sizeof utf8_cases / sizeof *utf8_cases; i++) {
    const utf8_case *c = &utf8_cases[i];
    CHECK(net__utf8_valid(c->s, c->n) == c->valid, "case %zu", i);
    CHECK(same_verdict((const uint8_t *)c->s, c->n), "case %zu against the reference", i);
  }
  /* fail fast: a bad byte is refused at once, with the text not yet ended */
  net_utf8 u;
  net__utf8_init(&u);
  CHECK(net__utf8_feed(&u, "abc\xce", 4), "a good prefix");
  CHECK(!net__utf8_feed(&u, "A", 1) && !net__utf8_feed(&u, "a", 1), "refused, and it sticks");
  /* long ASCII runs through the fast path, with a bad byte at every offset */
  char buf[80];
  memset(buf, 'x', sizeof buf);
  CHECK(net__utf8_valid(buf, sizeof buf), "80 ASCII bytes");
  for (size_t i = 0; i < sizeof buf; i++) {
    buf[i] = (char)0xff;
    CHECK(!net__utf8_valid(buf, sizeof buf), "0xff at %zu", i);
    buf[i] = 'x';
  }
  return true;
}

/* ---- handshake values ------------------------------------------------------------- */

static bool test_keys(void) {
  static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";   /* RFC 6455 section 1.3 */
  char acc[NET_WS_ACCEPT_LEN + 1], k1[NET_WS_KEY_LEN + 1], k2[NET_WS_KEY_LEN + 1];
  CHECK(net__ws_accept(key, 24, acc) && !strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "accept %s", acc);
  CHECK(net__ws_accept_ok(key, 24, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28), "accept checks");
  CHECK(!net__ws_accept_ok(key, 24, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo", 27), "short accept");
  CHECK(!net__ws_accept_ok(key, 24, "s3pPLMBiTxaQ9kYGzzhZRbK+xOO=", 28), "wrong accept");
  CHECK(net__ws_key_valid(key, 24), "RFC key valid");
  CHECK(!net__ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=", 23), "23 chars");
  CHECK(!net__ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==A", 25), "25 chars");
  CHECK(!net__ws_key_valid("dGhlIHNhbXBsZSBub25jZQAA", 24), "18 bytes");
  CHECK(!net__ws_key_valid("dGhlIHNhbXBsZSBub25j*Q==", 24), "bad character");
  CHECK(!net__ws_accept("dGhlIHNhbXBsZSBub25jZQ=", 23, acc), "no accept for a bad key");
  net_ws_rng r;
  CHECK(net__ws_rng_init(&r), "generator");
  bool ok = net__ws_key_make(&r, k1) && net__ws_key_make(&r, k2);
  uint8_t big[1000] = {0};
  ok = ok && net__ws_rng_bytes(&r, big, sizeof big);
  net__ws_rng_free(&r);
  CHECK(ok, "keys made");
  CHECK(strlen(k1) == 24 && net__ws_key_valid(k1, 24) && strcmp(k1, k2), "keys %s %s", k1, k2);
  int zeros = 0;
  for (size_t i = 0; i < sizeof big; i++) zeros += !big[i];
  CHECK(zeros < 30, "%d zero bytes of 1000 random ones", zeros);
  return true;
}

static size_t len_or_0(const char *s) { return s ? strlen(s) : 0; }

static bool test_protocols(void) {
  const char *mine[] = {"superchat", "chat"}, *other[] = {"x"};
#define PICK(s, m, n) net__ws_protocol_pick(s, strlen(s), m, n)
#define CHK(s, m, n) net__ws_protocol_check(s, len_or_0(s), m, n)
  CHECK(PICK("chat, superchat", mine, 2) == 0, "server's preference first");
  CHECK(PICK("chat", mine, 2) == 1, "the one offered");
  CHECK(PICK(" ,chat ,, \t", mine, 2) == 1, "empty list elements and OWS");
  CHECK(PICK("chat", other, 1) == -1 && PICK("", mine, 2) == -1, "none");
  CHECK(PICK("Chat", mine, 2) == -1, "case-sensitive");
  CHECK(PICK("chat superchat", mine, 2) == -2 && PICK("chat;x", mine, 2) == -2, "malformed");
  CHECK(CHK("chat", mine, 2) == 1 && CHK(" superchat ", mine, 2) == 0, "client check");
  CHECK(CHK(NULL, mine, 2) == -1 && CHK("", mine, 2) == -1, "no answer");
  CHECK(CHK("chat, superchat", mine, 2) == -2 && CHK("x", mine, 2) == -2 && CHK(",", mine, 2) == -2,
        "not exactly one offered protocol");
#undef PICK
#undef CHK
  return true;
}

static bool test_close_payloads(void) {
  static const unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1014, 3000, 3999, 4000, 4999};
  static const unsigned bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
  uint8_t out[NET_WS_CONTROL_MAX], pay[2];
  unsigned code;
  const uint8_t *reason;
  size_t rlen;
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    pay[0] = (uint8_t)(good[i] >> 8), pay[1] = (uint8_t)good[i];
    CHECK(net__ws_close_code_ok(good[i]) && net__ws_close_parse(pay, 2, &code, &reason, &rlen) == 0 &&
          code == good[i], "code %u", good[i]);
  }
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    pay[0] = (uint8_t)(bad[i] >> 8), pay[1] = (uint8_t)bad[i];
    CHECK(!net__ws_close_code_ok(bad[i]) && net__ws_close_parse(pay, 2, &code, &reason, &rlen) == 1002 &&
          net__ws_close_build(out, bad[i], "x", 1) == -1, "code %u", bad[i]);
  }
  CHECK(net__ws_close_build(out, 1000, "bye", 3) == 5 && !memcmp(out, "\x03\xe8" "bye", 5), "build");
  CHECK(net__ws_close_build(out, 0, NULL, 0) == 0 && net__ws_close_build(out, 0, "x", 1) == -1, "no code");
  char r123[124];
  memset(r123, 'r', sizeof r123);
  CHECK(net__ws_close_build(out, 4000, r123, 123) == 125 && net__ws_close_build(out, 4000, r123, 124) == -1,
        "reason bound");
  CHECK(net__ws_close_build(out, 1000, "\xc0\xaf", 2) == -1, "reason not UTF-8");
  CHECK(net__ws_close_parse(out, 0, &code, &reason, &rlen) == 0 && code == 1005, "empty: 1005");
  CHECK(net__ws_close_parse((const uint8_t *)"\x03", 1, &code, &reason, &rlen) == 1002, "1 byte");
  CHECK(net__ws_close_parse((const uint8_t *)"\x03\xe8\xce", 3, &code, &reason, &rlen) == 1007, "bad reason");
  CHECK(net__ws_close_parse((const uint8_t *)"\x03\xe8ok", 4, &code, &reason, &rlen) == 0 && rlen == 2 &&
        !memcmp(reason, "ok", 2), "reason");
  return true;
}

/* ---- permessage-deflate ------------------------------------------------------------ */

static bool deflate_is(const net_ws_deflate *a, bool snct, bool cnct, int smwb, int cmwb) {
  return a->server_no_context_takeover == snct && a->client_no_context_takeover == cnct &&
         a->server_max_window_bits == smwb && a->client_max_window_bits == cmwb;
}

static int sel(const net_ws_deflate_conf *c, const char *v, net_ws_deflate *a, char *out) {
  const char *w;
  return net__ws_deflate_select(c, v, strlen(v), a, out, NET_WS_EXT_LINE, &w);
}

static int chk(const net_ws_deflate_conf *c, const char *v, net_ws_deflate *a) {
  const char *w;
  int r = net__ws_deflate_check(c, v, v ? strlen(v) : 0, a, &w);
  CHECK(r >= 0 || (w && *w), "no reason given for %s", v);
  return r;
}

static bool test_deflate_server(void) {
  net_ws_deflate_conf c;
  net_ws_deflate a;
  char out[NET_WS_EXT_LINE];
  net__ws_deflate_conf_init(&c);
  /* RFC 7692 section 5.1's example: the first offer is accepted */
  CHECK(sel(&c, "permessage-deflate; client_max_window_bits; server_max_window_bits=10, "
                "permessage-deflate; client_max_window_bits", &a, out) == 1, "two offers");
  CHECK(!strcmp(out, "permessage-deflate; server_max_window_bits=10") && deflate_is(&a, false, false, 10, 15),
        "answer %s", out);
  CHECK(sel(&c, "permessage-deflate", &a, out) == 1 && !strcmp(out, "permessage-deflate") &&
        deflate_is(&a, false, false, 15, 15), "plain offer: %s", out);
  CHECK(sel(&c, "permessage-deflate; server_max_window_bits=8, permessage-deflate", &a, out) == 1 &&
        !strcmp(out, "permessage-deflate"), "8 declined, the fallback taken: %s", out);
  CHECK(sel(&c, "permessage-deflate; foo, x-other; a=1, permessage-deflate; server_no_context_takeover",
            &a, out) == 1 && !strcmp(out, "permessage-deflate; server_no_context_takeover") &&
        deflate_is(&a, true, false, 15, 15), "unknown parameter declined: %s", out);
  CHECK(sel(&c, "permessage-deflate; client_max_window_bits=\"10\"; client_no_context_takeover", &a, out) == 1 &&
        deflate_is(&a, false, true, 15, 10) &&
        !strcmp(out, "permessage-deflate; client_no_context_takeover; client_max_window_bits=10"),
        "quoted value: %s", out);
  CHECK(sel(&c, "permessage-deflate; server_max_window_bits=15", &a, out) == 1 &&
        !strcmp(out, "permessage-deflate; server_max_window_bits=15"), "an offered value is answered: %s", out);
  static const char *declined[] = {
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
      "permessage-deflate; server_no_context_takeover=1", "permessage-deflate; server_max_window_bits",
      "permessage-deflate; server_max_window_bits=16", "permessage-deflate; client_max_window_bits=08",
      "permessage-deflate; client_max_window_bits=7", "x-webkit-deflate-frame", "",
      "permessage-deflate; a; b; c; d; e; f; g; h; i"};
  for (size_t i = 0; i < sizeof declined / sizeof *declined; i++)
    CHECK(sel(&c, declined[i], &a, out) == 0, "declined: %s", declined[i]);
  static const char *malformed[] = {"permessage-deflate; =", "permessage-deflate;", "permessage-deflate x",
                                    "permessage-deflate; a=\"b", "permessage-deflate; a=\"b c\"", "; a"};
  for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++)
    CHECK(sel(&c, malformed[i], &a, out) == -1, "malformed: %s", malformed[i]);
  /* the server's own limits */
  c.server_max_window_bits = 10, c.client_max_window_bits = 9, c.server_no_context_takeover = true;
  CHECK(sel(&c, "permessage-deflate; client_max_window_bits", &a, out) == 1 && deflate_is(&a, true, false, 10, 9) &&
        !strcmp(out, "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; "
                     "client_max_window_bits=9"), "limits: %s", out);
  CHECK(sel(&c, "permessage-deflate", &a, out) == 1 && deflate_is(&a, true, false, 10, 15), "no client limit asked");
  CHECK(net__ws_deflate_select(&c, "permessage-deflate", 18, &a, out, 20, &(const char *){0}) == 0,
        "an answer that does not fit declines");
  return true;
}

static bool test_deflate_client(void) {
  net_ws_deflate_conf c;
  net_ws_deflate a;
  char out[NET_WS_EXT_LINE];
  net__ws_deflate_conf_init(&c);
  CHECK(net__ws_deflate_offer(&c, out, sizeof out) && !strcmp(out, "permessage-deflate; client_max_window_bits"),
        "offer %s", out);
  CHECK(chk(&c, NULL, &a) == 0 && chk(&c, "", &a) == 0, "no answer");
  CHECK(chk(&c, "permessage-deflate", &a) == 1 && deflate_is(&a, false, false, 15, 15), "plain");
  CHECK(chk(&c, "permessage-deflate; server_no_context_takeover; client_max_window_bits=12", &a) == 1 &&
        deflate_is(&a, true, false, 15, 12), "limits");
  CHECK(chk(&c, "permessage-deflate;server_max_window_bits=9;client_no_context_takeover", &a) == 1 &&
        deflate_is(&a, false, true, 9, 15), "unasked server limit and no takeover");
  /* RFC 7692 7.1.2.2 allows 8: taken, and our messages then go uncompressed */
  CHECK(chk(&c, "permessage-deflate; client_max_window_bits=8", &a) == 1 && deflate_is(&a, false, false, 15, 8),
        "client_max_window_bits=8");
  static const char *invalid[] = {
      "permessage-deflate; client_max_window_bits", "permessage-deflate; foo", "x-other",
      "permessage-deflate, permessage-deflate",
      "permessage-deflate; server_max_window_bits=16", "permessage-deflate; server_max_window_bits=08",
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover", "permessage-deflate; x=\"",
      "permessage-deflate, x-other"};
  for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
    CHECK(chk(&c, invalid[i], &a) == -1, "invalid: %s", invalid[i]);
  c.server_max_window_bits = 10, c.client_max_window_bits = 11, c.server_no_context_takeover = true;
  c.client_no_context_takeover = true;
  CHECK(net__ws_deflate_offer(&c, out, sizeof out) &&
        !strcmp(out, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                     "server_max_window_bits=10; client_max_window_bits=11"), "offer %s", out);
  CHECK(chk(&c, "permessage-deflate; server_no_context_takeover; server_max_window_bits=9", &a) == 1 &&
        deflate_is(&a, true, true, 9, 11), "within the offer");
  CHECK(chk(&c, "permessage-deflate; server_no_context_takeover; server_max_window_bits=11", &a) == -1, "above");
  CHECK(chk(&c, "permessage-deflate; server_no_context_takeover", &a) == -1, "limit ignored");
  CHECK(chk(&c, "permessage-deflate; server_max_window_bits=10", &a) == -1, "no-takeover ignored");
  CHECK(chk(&c, "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; "
                "client_max_window_bits=12", &a) == -1, "client window above the offer");
  CHECK(!net__ws_deflate_offer(&c, out, 20), "too small a buffer");
  return true;
}

/* Every combination of wishes: the client accepts what the server answers, and both agree. */
static bool test_deflate_round_trip(void) {
  static const uint8_t bits[] = {8, 9, 12, 15};
  for (unsigned m = 0; m < 4 * 4 * 4 * 4 * 16; m++) {
    net_ws_deflate_conf cc, sc;
    net_ws_deflate ca, sa;
    char offer[NET_WS_EXT_LINE], answer[NET_WS_EXT_LINE];
    const char *w;
    net__ws_deflate_conf_init(&cc);
    net__ws_deflate_conf_init(&sc);
    cc.server_max_window_bits = bits[m & 3], cc.client_max_window_bits = bits[m >> 2 & 3];
    sc.server_max_window_bits = bits[m >> 4 & 3], sc.client_max_window_bits = bits[m >> 6 & 3];
    cc.server_no_context_takeover = m >> 8 & 1, cc.client_no_context_takeover = m >> 9 & 1;
    sc.server_no_context_takeover = m >> 10 & 1, sc.client_no_context_takeover = m >> 11 & 1;
    CHECK(net__ws_deflate_offer(&cc, offer, sizeof offer), "offer %u", m);
    int r = net__ws_deflate_select(&sc, offer, strlen(offer), &sa, answer, sizeof answer, &w);
    if (cc.server_max_window_bits == 8) {
      CHECK(r == 0, "an offer of 8 is declined: %s", offer);
      continue;
    }
    CHECK(r == 1, "offer %s not taken", offer);
    CHECK(net__ws_deflate_check(&cc, answer, strlen(answer), &ca, &w) == 1, "%s -> %s refused: %s", offer,
          answer, w);
    CHECK(!memcmp(&ca, &sa, sizeof ca), "%s -> %s: the sides disagree", offer, answer);
    CHECK(ca.client_max_window_bits >= 9 && ca.server_max_window_bits >= 9, "a window zlib cannot use");
  }
  return true;
}

/* ---- the builder and the parser agree ------------------------------------------- */

static bool test_build_parse(void) {
  net_ws_rng r;
  CHECK(net__ws_rng_init(&r), "generator");
  static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 100000};
  uint8_t *buf = malloc(100000 + NET_WS_HEADER_MAX);
  bool ok = true;
  for (size_t i = 0; ok && i < sizeof sizes / sizeof *sizes; i++) {
    uint8_t key[4];
    ok = net__ws_rng_bytes(&r, key, 4);
    size_t h = net__ws_header(buf, NET_WS_OP_BINARY, true, true, sizes[i], key);
    for (size_t j = 0; j < sizes[i]; j++) buf[h + j] = (uint8_t)(j ^ (j >> 8));
    net__ws_mask(buf + h, sizes[i], key, 0);
    transcript t = run(NET_WS_SERVER, true, 1 << 20, buf, h + sizes[i], 777);
    ok = ok && t.err == 0 && t.nf == 1 && t.f[0].rsv1 && t.ndata == sizes[i];
    for (size_t j = 0; ok && j < sizes[i]; j++) ok = t.data[j] == (uint8_t)(j ^ (j >> 8));
    free(t.data);
    if (!ok) fail("size %zu", sizes[i]);
  }
  free(buf);
  net__ws_rng_free(&r);
  return ok;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  report("RFC 6455 5.7: Hello unmasked, masked, fragmented, ping, pong, in pieces", test_rfc_hello());
  report("RFC 6455 5.7: the builder makes the same bytes", test_rfc_build());
  report("RFC 6455 5.7: 7-, 16- and 64-bit lengths (256 bytes, 64 KiB)", test_rfc_lengths());
  report("masking in pieces carries the key offset", test_mask_pieces());
  report("control frames between fragments", test_control_between_fragments());
  report("every frame error with its close code, in pieces", test_errors());
  report("errors stick; caps pass at their limits", test_error_edges());
  report("UTF-8: every 1-3 byte sequence and 4-byte edges against a reference", test_utf8_exhaustive());
  report("UTF-8: boundary, overlong, surrogate, truncated cases", test_utf8_cases());
  report("keys: RFC 6455 accept example, key checks, random keys", test_keys());
  report("subprotocols: server pick and client check", test_protocols());
  report("close payloads: codes, reasons, bounds", test_close_payloads());
  report("permessage-deflate: server selection (RFC 7692 examples)", test_deflate_server());
  report("permessage-deflate: client offer and answer checks", test_deflate_client());
  report("permessage-deflate: every wish, offer to answer to agreement", test_deflate_round_trip());
  report("masked frames built with random keys parse back", test_build_parse());
  return tap_done();
}
