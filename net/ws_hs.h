/* ws_hs.h: the WebSocket opening and closing handshakes' values (RFC 6455
 * sections 4, 5.5.1 and 7.4): Sec-WebSocket-Key and -Accept, subprotocol
 * choice, close-frame payloads, and the header-list lexer the extension
 * negotiation shares. The HTTP head itself is parsed elsewhere: these take
 * header values (OWS-trimmed; repeated headers joined with ", "). Any thread;
 * pure but for the caller's generator. */
#ifndef SLUICE_WS_HS_H
#define SLUICE_WS_HS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ws_frame.h"

#define NET_WS_KEY_LEN 24    /* base64 of 16 bytes */
#define NET_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */
#define NET_WS_REASON_MAX 123

/* A fresh client key (16 random bytes, base64), NUL-terminated. */
bool net__ws_key_make(net_ws_rng *r, char out[NET_WS_KEY_LEN + 1]);
/* Server: is a client's key the base64 of 16 bytes? */
bool net__ws_key_valid(const char *key, size_t len);
/* The Sec-WebSocket-Accept value for a valid key, NUL-terminated; false
 * when the key is not valid. */
bool net__ws_accept(const char *key, size_t len, char out[NET_WS_ACCEPT_LEN + 1]);
/* Client: does the server's answer match the key it sent? */
bool net__ws_accept_ok(const char *key, size_t keylen, const char *accept, size_t len);

/* Next element of a comma-separated header list of tokens (empty elements
 * allowed, as HTTP's #rule does). 1: *tok and *toklen set; 0: end; -1: malformed.
 * *at advances through [*at, end). */
int net__ws_list_token(const char **at, const char *end, const char **tok, size_t *toklen);
/* Is c a token character (RFC 9110 tchar)? */
bool net__ws_tchar(unsigned char c);

/* Server: the first protocol of `mine` (the server's order of preference)
 * that the client's Sec-WebSocket-Protocol value offers: its index, -1 when
 * none is offered, -2 when the value is malformed. Names are case-sensitive. */
int net__ws_protocol_pick(const char *offer, size_t len, const char *const *mine, size_t n);
/* Client: the server's answer (NULL or len 0: none) against what the client
 * offered: the index, -1 for no answer, -2 when it is not exactly one of them. */
int net__ws_protocol_check(const char *answer, size_t len, const char *const *offered, size_t n);

/* Codes a close frame may carry (1000-1003, 1007-1014, 3000-4999). */
bool net__ws_close_code_ok(unsigned code);
/* A close payload into out: code 0 gives the empty payload (no code, no
 * reason). Returns its length, or -1 when the code is not sendable or the
 * reason is not UTF-8 of at most 123 bytes. */
int net__ws_close_build(uint8_t out[NET_WS_CONTROL_MAX], unsigned code, const char *reason,
                        size_t rlen);
/* A received close payload: *code (NET_WS_CLOSE_NO_STATUS when empty) and
 * the reason's bytes. Returns 0, or the close code to fail with (1002 for a
 * 1-byte payload or a code not allowed on the wire, 1007 for a reason that
 * is not UTF-8). */
unsigned net__ws_close_parse(const uint8_t *p, size_t n, unsigned *code, const uint8_t **reason,
                             size_t *rlen);

#endif
