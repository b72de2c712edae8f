/* fuzz_cert_ip.c: the certificate IP check parses subjectAltName by hand;
 * a certificate mbedTLS accepts must never make it read out of bounds.
 * Input: 1 byte selector, 16 bytes of IP, then a DER certificate. */
#include <stdint.h>
#include <string.h>

#include "tls_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 17) return 0;
  int iplen = data[0] & 1 ? 16 : 4;
  mbedtls_x509_crt crt;
  mbedtls_x509_crt_init(&crt);
  if (mbedtls_x509_crt_parse_der(&crt, data + 17, size - 17) == 0)
    (void)net__tls_cert_has_ip(&crt, data + 1, iplen);
  mbedtls_x509_crt_free(&crt);
  return 0;
}
