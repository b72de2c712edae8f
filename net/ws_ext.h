/* ws_ext.h: Sec-WebSocket-Extensions values (RFC 6455 section 9.1) and the
 * permessage-deflate negotiation (RFC 7692 section 7): the client's offer,
 * the server's choice of an offer and its answer, the client's check of that
 * answer. Compression itself is elsewhere. Values are OWS-trimmed, repeated
 * headers joined with ", " by the HTTP parser's caller. Any thread; pure. */
#ifndef SLUICE_WS_EXT_H
#define SLUICE_WS_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_WS_EXT_PARAMS 8   /* kept per extension; more are counted, not kept */
#define NET_WS_EXT_VALUE 15   /* longest parameter value kept (unquoted) */
#define NET_WS_EXT_LINE 160   /* room for any offer or answer built here */

typedef struct net_ws_ext_param {
  const char *name; /* into the header value */
  size_t name_len;
  bool has_value;
  bool value_long; /* longer than NET_WS_EXT_VALUE: value[] holds nothing */
  char value[NET_WS_EXT_VALUE + 1]; /* unquoted, NUL-terminated */
} net_ws_ext_param;

typedef struct net_ws_ext {
  const char *name;
  size_t name_len;
  unsigned nparams; /* all of them, even past NET_WS_EXT_PARAMS */
  net_ws_ext_param params[NET_WS_EXT_PARAMS];
} net_ws_ext;

/* Next extension of a header value: 1 with *e filled, 0 at the end, -1 when
 * the value does not follow the grammar (tokens, ";" parameters, values as
 * tokens or quoted strings that unquote to tokens). *at advances. */
int net__ws_ext_next(const char **at, const char *end, net_ws_ext *e);

/* What both sides agreed on. Window bits are 8..15 (15 when not limited). */
typedef struct net_ws_deflate {
  bool server_no_context_takeover, client_no_context_takeover;
  uint8_t server_max_window_bits, client_max_window_bits;
} net_ws_deflate;

/* A side's wishes. Client: what it asks of the server's compressor
 * (server_*) and the most its own compressor uses (client_*). Server: the
 * most its own compressor uses (server_*) and what it asks of the client's
 * (client_*). Window bits 9..15 (zlib cannot deflate with 8, so no side
 * asks for it; a client may still ask 8 of the server, which declines);
 * 15 asks for nothing. Values out of range are clamped. */
typedef struct net_ws_deflate_conf {
  bool server_no_context_takeover, client_no_context_takeover;
  uint8_t server_max_window_bits, client_max_window_bits;
} net_ws_deflate_conf;

/* Defaults: no limits, context takeover both ways. */
void net__ws_deflate_conf_init(net_ws_deflate_conf *c);

/* Client: the Sec-WebSocket-Extensions value to send (NUL-terminated);
 * false when out is too small or the conf is out of range. */
bool net__ws_deflate_offer(const net_ws_deflate_conf *c, char *out, size_t outlen);

/* Client: checks the server's Sec-WebSocket-Extensions value (NULL or len 0
 * when it sent none) against the offer made from c. 1: compression agreed
 * (*agreed); 0: the server declined it (no compression); -1: the answer is
 * invalid and the connection must fail (*why says why). */
int net__ws_deflate_check(const net_ws_deflate_conf *c, const char *value, size_t len,
                          net_ws_deflate *agreed, const char **why);

/* Server: picks the first acceptable permessage-deflate offer of a client's
 * Sec-WebSocket-Extensions value. 1: agreed, *agreed and the answer to send
 * (NUL-terminated, in out); 0: nothing acceptable offered (answer without
 * the header); -1: the value is malformed (*why; the engine may refuse the
 * upgrade with 400). */
int net__ws_deflate_select(const net_ws_deflate_conf *c, const char *value, size_t len,
                           net_ws_deflate *agreed, char *out, size_t outlen, const char **why);

#endif
