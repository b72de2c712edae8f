/* tls_rec.h: TLS 1.2 application records under AES-GCM, sealed and opened
 * with gcm.c once mbedTLS's handshake is through (tls.c hands over the keys
 * and sequence numbers). Bytes only: the caller moves them to and from the
 * socket. I/O thread. */
#ifndef SLUICE_TLS_REC_H
#define SLUICE_TLS_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_TLS_REC_PLAIN 16384                          /* the largest payload */
#define NET_TLS_REC_OVERHEAD (5 + 8 + 16)                /* header, explicit nonce, tag */

typedef struct net_tls_rec net_tls_rec;

/* kb: the key block as TLS 1.2 derives it for an AEAD suite (client key,
 * server key, client's 4 IV bytes, server's); seqs as big-endian counters;
 * max_out: the largest payload the peer takes (maximum fragment length).
 * NULL when out of memory or the key is not 16 or 32 bytes. */
net_tls_rec *net__tls_rec_new(bool server, const unsigned char *kb, size_t keylen, const unsigned char in_seq[8],
                              const unsigned char out_seq[8], size_t max_out);
void net__tls_rec_free(net_tls_rec *r);

/* Once _read said MORE: received bytes go at the pointer (room bytes,
 * never 0), then _got says how many. */
unsigned char *net__tls_rec_room(net_tls_rec *r, size_t *room);
void net__tls_rec_got(net_tls_rec *r, size_t n);

enum {
  NET_TLS_REC_MORE = 0,      /* a record is incomplete: receive */
  NET_TLS_REC_CLOSED = -1,   /* the peer's close_notify */
  NET_TLS_REC_FAILED = -2,   /* *why, and *alert the fatal alert to send; *why NULL: the
                                peer's fatal alert came, *alert its code */
};
/* Application data (> 0 bytes, at most len) or one of the above. */
long net__tls_rec_read(net_tls_rec *r, unsigned char *buf, size_t len, const char **why, int *alert);
/* Opened bytes wait, or a whole record does. */
bool net__tls_rec_pending(const net_tls_rec *r);
/* Handshake records (renegotiation requests) came, each owed a warning
 * no_renegotiation, the answer mbedTLS gives: _seal makes those first.
 * One more than OWED_MAX unanswered fails the read. */
#define NET_TLS_REC_OWED_MAX 16
int net__tls_rec_owed(const net_tls_rec *r);

/* Seals a record of type from up to max_out bytes of p, and returns how
 * many it took; only when nothing waits to go out (_out says 0). An owed
 * refusal is sealed first instead (0 taken). */
size_t net__tls_rec_seal(net_tls_rec *r, int type, const unsigned char *p, size_t n);
/* Sealed bytes still to send; _sent drops n of them. */
const unsigned char *net__tls_rec_out(const net_tls_rec *r, size_t *left);
void net__tls_rec_sent(net_tls_rec *r, size_t n);

#endif
