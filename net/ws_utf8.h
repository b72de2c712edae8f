/* ws_utf8.h: a streaming UTF-8 validator (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF) whose state carries across pieces,
 * frames and fragments of a text message. Any thread; pure. */
#ifndef SLUICE_WS_UTF8_H
#define SLUICE_WS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct net_utf8 {
  uint8_t state; /* 0: between characters; 1: invalid (sticky); else inside one */
} net_utf8;

static inline void net__utf8_init(net_utf8 *u) { u->state = 0; }

/* Validates the next n bytes; false as soon as the text so far cannot be
 * UTF-8 (a prefix that can still be completed is fine), and from then on. */
bool net__utf8_feed(net_utf8 *u, const void *p, size_t n);

/* At the end of the text: true when it ended between characters. */
static inline bool net__utf8_done(const net_utf8 *u) { return u->state == 0; }

/* A whole text at once. */
bool net__utf8_valid(const void *p, size_t n);

#endif
