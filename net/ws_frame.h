/* ws_frame.h: WebSocket frames (RFC 6455 section 5): an incremental parser fed
 * bytes in pieces of any size, a header builder, masking, and the mask-key
 * generator. Any thread; pure (no I/O), one parser per connection. */
#ifndef SLUICE_WS_FRAME_H
#define SLUICE_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>

enum {
  NET_WS_OP_CONT = 0x0,
  NET_WS_OP_TEXT = 0x1,
  NET_WS_OP_BINARY = 0x2,
  NET_WS_OP_CLOSE = 0x8,
  NET_WS_OP_PING = 0x9,
  NET_WS_OP_PONG = 0xA,
};

/* Close codes the protocol layer itself sends (RFC 6455 section 7.4.1). */
enum {
  NET_WS_CLOSE_NORMAL = 1000,
  NET_WS_CLOSE_GOING_AWAY = 1001,
  NET_WS_CLOSE_PROTOCOL = 1002,
  NET_WS_CLOSE_NO_STATUS = 1005,    /* never sent: a close frame without a code */
  NET_WS_CLOSE_ABNORMAL = 1006,     /* never sent: the connection dropped */
  NET_WS_CLOSE_INVALID_DATA = 1007, /* text that is not UTF-8 */
  NET_WS_CLOSE_TOO_BIG = 1009,
  NET_WS_CLOSE_EXTENSION = 1010,
  NET_WS_CLOSE_INTERNAL = 1011,
};

#define NET_WS_HEADER_MAX 14   /* 2 + 8 length bytes + 4 mask bytes */
#define NET_WS_CONTROL_MAX 125 /* payload limit of close, ping and pong */

typedef enum { NET_WS_CLIENT, NET_WS_SERVER } net_ws_role;

/* What one call of net__ws_parse found. */
typedef enum {
  NET_WS_MORE,    /* every byte given was consumed; nothing else to report */
  NET_WS_HEADER,  /* a frame header: p->frame says what follows */
  NET_WS_PAYLOAD, /* a piece of the current frame's payload, unmasked in place */
  NET_WS_END,     /* the current frame's payload is complete */
  NET_WS_ERROR,   /* p->close_code and p->why; sticky */
} net_ws_event;

typedef struct net_ws_frame_info {
  uint64_t len;   /* declared payload length */
  uint8_t opcode; /* as sent (NET_WS_OP_CONT for a continuation) */
  bool fin, rsv1, masked;
  uint8_t key[4];
} net_ws_frame_info;

typedef struct net_ws_parser {
  /* configuration, set by net__ws_parser_init */
  net_ws_role role;
  bool rsv1_ok;         /* permessage-deflate was negotiated */
  uint64_t max_message; /* cap on a data message's total payload */
  /* the current frame */
  net_ws_frame_info frame;
  uint64_t left;   /* payload bytes still to come */
  unsigned key_at; /* mask key offset of the next payload byte */
  uint8_t hdr[NET_WS_HEADER_MAX];
  uint8_t hdr_have, state;
  /* the open data message (between its first frame and its FIN frame) */
  bool in_message;
  uint8_t msg_opcode; /* NET_WS_OP_TEXT or NET_WS_OP_BINARY */
  bool msg_rsv1;      /* compressed */
  uint64_t msg_len;   /* payload declared so far, the current frame included
                       * (compressed: less each frame's flush allowance) */
  /* after NET_WS_ERROR */
  uint16_t close_code;
  const char *why; /* static text */
} net_ws_parser;

/* role: which side this parser's owner is (a server reads masked frames,
 * a client unmasked ones). rsv1_ok: compression was negotiated. */
void net__ws_parser_init(net_ws_parser *p, net_ws_role role, bool rsv1_ok, uint64_t max_message);

/* Consumes bytes of buf[0..len) up to the next event and sets *used to how
 * many. What it does not check is the caller's: UTF-8 of text (ws_utf8.h, on
 * the inflated bytes when compressed), close payloads (ws_hs.h), and the
 * inflated size of a compressed message against max_message (its wire size
 * is checked here, with a little slack for deflate's stored blocks and each
 * compressed fragment's flush). NET_WS_PAYLOAD: *piece and *piece_len (inside buf, unmasked in place)
 * are the payload bytes just consumed. Feed the rest of buf (buf + *used)
 * again until NET_WS_MORE. A frame's header (NET_WS_HEADER) always comes
 * before any of its payload, so p->frame.len and p->msg_len can be checked
 * before anything is allocated; they are already checked against the caps. */
net_ws_event net__ws_parse(net_ws_parser *p, uint8_t *buf, size_t len, size_t *used,
                           uint8_t **piece, size_t *piece_len);

/* True when the last NET_WS_END closed a whole data message (a FIN data frame). */
static inline bool net__ws_message_done(const net_ws_parser *p) {
  return p->frame.fin && p->frame.opcode < NET_WS_OP_CLOSE;
}

/* Writes a frame header into out; returns its length (2..14). len < 2^63.
 * key: NULL for an unmasked frame (server), else the 4-byte mask key
 * (client; a fresh one per frame from net__ws_rng_bytes). */
size_t net__ws_header(uint8_t out[NET_WS_HEADER_MAX], unsigned opcode, bool fin, bool rsv1,
                      uint64_t len, const uint8_t *key);

/* XORs data with key, starting at key offset at (0..3); returns the offset
 * of the byte after, so a payload can be masked in pieces. */
unsigned net__ws_mask(uint8_t *data, size_t n, const uint8_t key[4], unsigned at);

/* Mask keys and handshake nonces: CTR_DRBG seeded once from the platform's
 * entropy source. One per thread that builds frames (the I/O thread), held
 * for the thread's life (mbedTLS's entropy pool makes it ~38 KiB: never one
 * per connection); never shared between threads. */
typedef struct net_ws_rng {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  uint8_t buf[256]; /* drawn ahead: one generator call per 64 mask keys */
  unsigned at;
  bool ready;
} net_ws_rng;

bool net__ws_rng_init(net_ws_rng *r);
void net__ws_rng_free(net_ws_rng *r);
/* n random bytes into out; false when the generator failed (out unusable). */
bool net__ws_rng_bytes(net_ws_rng *r, void *out, size_t n);

#endif
