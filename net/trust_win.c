/* trust_win.c: the system's trusted roots where no CA bundle file exists:
 * on Windows the ROOT certificate store (crypt32), parsed into an mbedTLS
 * chain. A fresh Windows has no PEM bundle anywhere, so without this every
 * verified connection would fail. Runs on a helper thread of the file lane
 * (tls_conf.c loads configurations there). Elsewhere it finds nothing: the
 * bundle files (tls_opts.c) are the system's trust. */
#include "tls_priv.h"

#ifdef _WIN32
#include <windows.h>
#include <wincrypt.h>

int net__tls_system_cas(mbedtls_x509_crt *chain, const char **store) {
  HCERTSTORE h = CertOpenSystemStoreW(0, L"ROOT");
  if (!h) return 0;
  int n = 0;
  /* Each root as DER; one mbedTLS cannot read (an old or exotic key) is
   * skipped, it cannot be a server's anchor anyway. */
  for (PCCERT_CONTEXT c = NULL; (c = CertEnumCertificatesInStore(h, c));)
    if (c->dwCertEncodingType == X509_ASN_ENCODING &&
        mbedtls_x509_crt_parse_der(chain, c->pbCertEncoded, c->cbCertEncoded) == 0)
      n++;
  CertCloseStore(h, 0);
  *store = "the Windows ROOT store";
  return n;
}

#else
int net__tls_system_cas(mbedtls_x509_crt *chain, const char **store) {
  (void)chain, (void)store;
  return 0;
}
#endif
