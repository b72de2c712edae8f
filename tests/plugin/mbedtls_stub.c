/* mbedtls_stub.c: a host that carries its own, different mbedTLS (as
 * Pragtical does, with mbedTLS 4), as a stub: every mbedtls_* function the
 * plugin uses, exported under the same name, and each one aborts with its
 * name. Preloaded into the test host (XL_HOST_PRELOAD, or LD_PRELOAD for a
 * module that imports mbedTLS by name), it proves which library a module's
 * TLS calls really reach. Any thread. */
#include <stdio.h>
#include <stdlib.h>

#define STUB(name)                                                              \
  __attribute__((visibility("default"))) void name(void);                      \
  void name(void) {                                                            \
    fprintf(stderr, "mbedtls_stub: the host's " #name " was called\n");        \
    abort();                                                                   \
  }

STUB(mbedtls_ssl_init)
STUB(mbedtls_ssl_setup)
STUB(mbedtls_ssl_set_hostname)
STUB(mbedtls_ssl_set_verify)
STUB(mbedtls_ssl_set_bio)
STUB(mbedtls_ssl_free)
STUB(mbedtls_ssl_handshake)
STUB(mbedtls_ssl_read)
STUB(mbedtls_ssl_write)
STUB(mbedtls_ssl_close_notify)
STUB(mbedtls_ssl_get_bytes_avail)
STUB(mbedtls_ssl_check_pending)
STUB(mbedtls_ssl_get_version)
STUB(mbedtls_ssl_get_ciphersuite)
STUB(mbedtls_ssl_get_alpn_protocol)
STUB(mbedtls_ssl_get_peer_cert)
STUB(mbedtls_ssl_get_verify_result)
STUB(mbedtls_ssl_config_init)
STUB(mbedtls_ssl_config_defaults)
STUB(mbedtls_ssl_config_free)
STUB(mbedtls_ssl_conf_rng)
STUB(mbedtls_ssl_conf_min_version)
STUB(mbedtls_ssl_conf_authmode)
STUB(mbedtls_ssl_conf_ca_chain)
STUB(mbedtls_ssl_conf_alpn_protocols)
STUB(mbedtls_ssl_conf_own_cert)
STUB(mbedtls_x509_crt_init)
STUB(mbedtls_x509_crt_free)
STUB(mbedtls_x509_crt_parse_file)
STUB(mbedtls_x509_crt_parse_path)
STUB(mbedtls_x509_dn_gets)
STUB(mbedtls_pk_init)
STUB(mbedtls_pk_free)
STUB(mbedtls_pk_parse_keyfile)
STUB(mbedtls_ctr_drbg_init)
STUB(mbedtls_ctr_drbg_seed)
STUB(mbedtls_ctr_drbg_free)
STUB(mbedtls_ctr_drbg_random)
STUB(mbedtls_entropy_init)
STUB(mbedtls_entropy_free)
STUB(mbedtls_entropy_func)
STUB(mbedtls_strerror)
STUB(mbedtls_asn1_get_tag)
STUB(mbedtls_asn1_get_len)
STUB(mbedtls_asn1_get_bool)
STUB(mbedtls_aes_crypt_ecb)
STUB(mbedtls_gcm_auth_decrypt)
STUB(mbedtls_sha256)
STUB(mbedtls_sha1)
STUB(mbedtls_sha1_ret)
STUB(mbedtls_base64_encode)
STUB(mbedtls_base64_decode)
STUB(mbedtls_sha256_starts_ret)
STUB(mbedtls_sha256_update_ret)
STUB(mbedtls_sha256_finish_ret)
