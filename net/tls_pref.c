/* tls_pref.c: the key-exchange groups and cipher suites a configuration
 * offers, fastest first. mbedTLS's default group list starts with the big
 * NIST curves, and a peer that follows the client's order (OpenSSL servers do
 * by default) or a server of ours then spends far more per handshake than it
 * needs to: X25519 halves the client's handshake CPU against P-256. Its suite
 * list starts with ChaCha20-Poly1305, which its C code moves at about 300 MB/s;
 * where our own record layer runs AES-GCM on the CPU's AES instructions
 * (tls_rec.c, 3-4 GB/s), the ECDHE AES-GCM suites come first, 128-bit keys
 * before 256. Any thread. */
#include <string.h>

#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>

#include "gcm.h"
#include "os.h"

#include "tls_priv.h"

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
static const uint16_t groups[] = {
    MBEDTLS_SSL_IANA_TLS_GROUP_X25519, MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
    MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1, MBEDTLS_SSL_IANA_TLS_GROUP_SECP521R1,
    MBEDTLS_SSL_IANA_TLS_GROUP_NONE};
#else
static const mbedtls_ecp_group_id groups[] = {
#ifdef MBEDTLS_ECP_DP_CURVE25519_ENABLED
    MBEDTLS_ECP_DP_CURVE25519,
#endif
#ifdef MBEDTLS_ECP_DP_SECP256R1_ENABLED
    MBEDTLS_ECP_DP_SECP256R1,
#endif
#ifdef MBEDTLS_ECP_DP_SECP384R1_ENABLED
    MBEDTLS_ECP_DP_SECP384R1,
#endif
#ifdef MBEDTLS_ECP_DP_SECP521R1_ENABLED
    MBEDTLS_ECP_DP_SECP521R1,
#endif
    MBEDTLS_ECP_DP_NONE};
#endif

#ifdef NET_TLS_OWN_RECORDS
#define SUITES_MAX 512
static int suites[SUITES_MAX];
static atomic_int suites_once;

/* 0: ECDHE with AES-128-GCM, 1: with AES-256-GCM, 2: the rest. */
static int rank(int id) {
  const mbedtls_ssl_ciphersuite_t *cs = mbedtls_ssl_ciphersuite_from_id(id);
  bool ecdhe = cs && (cs->key_exchange == MBEDTLS_KEY_EXCHANGE_ECDHE_RSA ||
                      cs->key_exchange == MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA);
  if (ecdhe && cs->cipher == MBEDTLS_CIPHER_AES_128_GCM) return 0;
  if (ecdhe && cs->cipher == MBEDTLS_CIPHER_AES_256_GCM) return 1;
  return 2;
}

static _Thread_local net_tls_keys *catcher;

void net__tls_keys_catch(net_tls_keys *k) { catcher = k; }

static int export_keys(void *p, const unsigned char *ms, const unsigned char *kb, size_t maclen, size_t keylen,
                       size_t ivlen, const unsigned char client_random[32], const unsigned char server_random[32],
                       mbedtls_tls_prf_types prf) {
  (void)p, (void)ms, (void)client_random, (void)server_random, (void)prf;
  if (!catcher || maclen || ivlen != 4 || (keylen != 16 && keylen != 32)) return 0;
  memcpy(catcher->kb, kb, 2 * keylen + 2 * ivlen);
  catcher->key = keylen;
  return 0;
}

/* mbedTLS's list, its order kept within each rank; false (its own order
 * stays) without the CPU's AES instructions or when the list is too long. */
static bool order_suites(void *arg) {
  (void)arg;
  const int *all = mbedtls_ssl_list_ciphersuites();
  size_t n = 0;
  for (const int *s = all; *s; s++) n++;
  if (!net__gcm_supported() || n >= SUITES_MAX) return false;
  n = 0;
  for (int r = 0; r < 3; r++)
    for (const int *s = all; *s; s++)
      if (rank(*s) == r) suites[n++] = *s;
  suites[n] = 0;
  return true;
}
#else
void net__tls_keys_catch(net_tls_keys *k) { (void)k; }
#endif

void net__tls_conf_prefs(mbedtls_ssl_config *c) {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  mbedtls_ssl_conf_groups(c, groups);
#else
  mbedtls_ssl_conf_curves(c, groups);
#endif
#ifdef NET_TLS_OWN_RECORDS
  if (net__once(&suites_once, order_suites, NULL)) mbedtls_ssl_conf_ciphersuites(c, suites);
  mbedtls_ssl_conf_export_keys_ext_cb(c, export_keys, NULL);
#endif
}
