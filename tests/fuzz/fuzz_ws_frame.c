/* fuzz_ws_frame.c: the WebSocket frame parser (net/ws_frame.c). Input: a
 * flags byte (role, compression, size cap), 4 bytes seeding how the rest is
 * split, then the byte stream. The stream fed whole, in random pieces and a
 * byte at a time gives the same frames, payload and error; every piece is
 * its own exact-size allocation, so a read past it is caught. Every complete
 * frame, rebuilt with the builder, gives back exactly the input's bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_frame.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

typedef struct fr {
  net_ws_frame_info info;
  size_t off; /* of its payload in the transcript's data */
  bool ended;
} fr;

typedef struct tr {
  fr *f;
  size_t nf;
  uint8_t *data;
  size_t nd;
  unsigned msgs;
  uint16_t err;
  const char *why;
} tr;

typedef struct conf {
  net_ws_role role;
  bool rsv1;
  uint64_t cap;
} conf;

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void on_header(const net_ws_parser *p, tr *t) {
  const net_ws_frame_info *f = &p->frame;
  if (f->opcode >= NET_WS_OP_CLOSE) check(f->len <= NET_WS_CONTROL_MAX && f->fin && !f->rsv1);
  else if (!p->msg_rsv1) check(p->msg_len <= p->max_message);
  else if (p->max_message < UINT64_MAX / 2) check(p->msg_len <= p->max_message + p->max_message / 4096 + 64);
  check(f->masked == (p->role == NET_WS_SERVER));
  t->f[t->nf].info = *f;
  t->f[t->nf].off = t->nd;
  t->f[t->nf].ended = false;
  t->nf++;
}

/* One piece, copied to an allocation of its exact size; false after an error. */
static bool feed(net_ws_parser *p, tr *t, const uint8_t *src, size_t n) {
  uint8_t *buf = malloc(n ? n : 1), *at = buf, *piece;
  size_t left = n, used, plen;
  memcpy(buf, src, n);
  bool going = true;
  while (going) {
    net_ws_event ev = net__ws_parse(p, at, left, &used, &piece, &plen);
    check(used <= left);
    if (ev == NET_WS_PAYLOAD) check(piece == at && plen == used && plen > 0);
    else check(plen == 0);
    at += used, left -= used;
    switch (ev) {
    case NET_WS_MORE: check(left == 0); going = false; break;
    case NET_WS_HEADER: on_header(p, t); break;
    case NET_WS_PAYLOAD: memcpy(t->data + t->nd, piece, plen), t->nd += plen; break;
    case NET_WS_END:
      check(t->nf && t->nd - t->f[t->nf - 1].off == t->f[t->nf - 1].info.len);
      t->f[t->nf - 1].ended = true;
      t->msgs += net__ws_message_done(p);
      break;
    case NET_WS_ERROR:
      check((p->close_code == 1002 || p->close_code == 1009) && p->why && *p->why);
      t->err = p->close_code, t->why = p->why;
      going = false;
      break;
    }
  }
  free(buf);
  return !t->err;
}

/* split: 0 whole, 1 a byte at a time, else random pieces from seed. */
static tr run(const conf *c, const uint8_t *in, size_t n, int split, uint64_t seed) {
  tr t = {0};
  t.f = calloc(n / 2 + 1, sizeof *t.f);
  t.data = malloc(n + 1);
  net_ws_parser p;
  net__ws_parser_init(&p, c->role, c->rsv1, c->cap);
  size_t at = 0;
  do {
    size_t step = n - at;
    if (split == 1 && step > 1) step = 1;
    if (split > 1 && step) step = splitmix(&seed) % 5 == 0 ? 0 : 1 + splitmix(&seed) % step;
    if (!feed(&p, &t, in + at, step)) break;
    at += step;
  } while (at < n);
  return t;
}

static void same(const tr *a, const tr *b) {
  check(a->nf == b->nf && a->nd == b->nd && a->msgs == b->msgs && a->err == b->err && a->why == b->why);
  for (size_t i = 0; i < a->nf; i++) {
    const net_ws_frame_info *x = &a->f[i].info, *y = &b->f[i].info;
    check(x->len == y->len && x->opcode == y->opcode && x->fin == y->fin && x->rsv1 == y->rsv1 &&
          x->masked == y->masked && !memcmp(x->key, y->key, 4));
    check(a->f[i].off == b->f[i].off && a->f[i].ended == b->f[i].ended);
  }
  check(!memcmp(a->data, b->data, a->nd));
}

/* The builder rebuilds every complete frame byte for byte. */
static void rebuild(const tr *t, const uint8_t *in, size_t n) {
  uint8_t *out = malloc(n + NET_WS_HEADER_MAX), hdr[NET_WS_HEADER_MAX];
  size_t o = 0;
  for (size_t i = 0; i < t->nf && t->f[i].ended; i++) {
    const net_ws_frame_info *f = &t->f[i].info;
    size_t h = net__ws_header(hdr, f->opcode, f->fin, f->rsv1, f->len, f->masked ? f->key : NULL);
    check(o + h + f->len <= n);
    memcpy(out + o, hdr, h);
    memcpy(out + o + h, t->data + t->f[i].off, (size_t)f->len);
    if (f->masked) net__ws_mask(out + o + h, (size_t)f->len, f->key, 0);
    o += h + (size_t)f->len;
  }
  check(!memcmp(out, in, o));
  free(out);
}

static void done(tr *t) {
  free(t->f);
  free(t->data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint64_t caps[] = {0, 125, 70000, UINT64_MAX};
  if (size < 5) return 0;
  conf c = {data[0] & 1 ? NET_WS_SERVER : NET_WS_CLIENT, data[0] & 2, caps[data[0] >> 2 & 3]};
  uint64_t seed = (uint64_t)data[1] << 24 | (uint64_t)data[2] << 16 | data[3] << 8 | data[4];
  data += 5, size -= 5;
  tr whole = run(&c, data, size, 0, 0), bytes = run(&c, data, size, 1, 0);
  same(&whole, &bytes);
  done(&bytes);
  for (int k = 0; k < 3; k++) {
    tr pieces = run(&c, data, size, 2, seed + (uint64_t)k);
    same(&whole, &pieces);
    done(&pieces);
  }
  rebuild(&whole, data, size);
  done(&whole);
  return 0;
}
