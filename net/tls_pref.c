/* tls_pref.c: the key-exchange groups a configuration offers, fastest
 * first. mbedTLS's default list starts with the big NIST curves, and a peer
 * that follows the client's order (OpenSSL servers do by default) or a server
 * of ours then spends far more per handshake than it needs to: X25519 halves
 * the client's handshake CPU against P-256. mbedTLS's cipher-suite order is
 * kept: ChaCha20-Poly1305 comes first there, and its AES-GCM, even with AES-NI,
 * moves about half as many bytes per second. Any thread. */
#include <mbedtls/ssl.h>

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

void net__tls_conf_prefs(mbedtls_ssl_config *c) {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  mbedtls_ssl_conf_groups(c, groups);
#else
  mbedtls_ssl_conf_curves(c, groups);
#endif
}
