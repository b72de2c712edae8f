/* gcm.h: AES-GCM (128 and 256-bit keys, 96-bit nonces, 16-byte tags) on
 * the CPU's AES and carry-less multiply instructions, eight blocks at a
 * time. mbedTLS 2.28 runs both one block at a time and moves a tenth of
 * what these instructions allow; the TLS record layer (tls_rec.c) uses this
 * instead once a handshake has chosen an AES-GCM suite. Any thread; a key
 * is read-only once set. */
#ifndef SLUICE_GCM_H
#define SLUICE_GCM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct net_gcm {
  _Alignas(16) unsigned char rk[15][16];   /* AES round keys */
  _Alignas(16) unsigned char hpow[8][16];  /* H^1..H^8, byte-reversed */
  int rounds;
} net_gcm;

/* Whether this CPU (and this build) has what net_gcm needs. */
bool net__gcm_supported(void);
/* keylen 16 or 32; false for any other (or when unsupported). */
bool net__gcm_key(net_gcm *g, const unsigned char *key, size_t keylen);
/* out may be in; tag gets 16 bytes. */
void net__gcm_seal(const net_gcm *g, const unsigned char iv[12], const unsigned char *aad, size_t aadlen,
                   const unsigned char *in, unsigned char *out, size_t len, unsigned char tag[16]);
/* false when the tag does not match: out then holds bytes that must not be
 * used (out may be in). */
bool net__gcm_open(const net_gcm *g, const unsigned char iv[12], const unsigned char *aad, size_t aadlen,
                   const unsigned char *in, unsigned char *out, size_t len, const unsigned char tag[16]);

#endif
