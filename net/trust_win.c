/* trust_win.c: the system's trusted roots where no CA bundle file exists:
 * on Windows the ROOT certificate store (crypt32), parsed into an mbedTLS
 * chain. A fresh Windows has no PEM bundle anywhere, so without this every
 * verified connection would fail. Runs on a helper thread of the file lane
 * (tls_conf.c loads configurations there). Elsewhere it finds nothing: the
 * bundle files (tls_opts.c) are the system's trust. The chain engine's
 * second opinion (tls_chain.c) runs on a helper thread of its own lane. */
#include <stdio.h>

#include "tls_priv.h"

#ifdef _WIN32
#include <windows.h>
#include <wincrypt.h>

#ifndef SECURITY_FLAG_IGNORE_CERT_CN_INVALID   /* wininet.h's, which the SSL policy takes too */
#define SECURITY_FLAG_IGNORE_CERT_CN_INVALID 0x00001000
#endif

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

/* What the SSL policy found wrong, in the words verify_error uses. */
static const char *policy_why(DWORD e) {
  switch (e) {
    case (DWORD)CERT_E_UNTRUSTEDROOT: return "its root is not trusted";
    case (DWORD)CERT_E_CHAINING: return "no chain to a trusted root";
    case (DWORD)CERT_E_EXPIRED: return "expired";
    case (DWORD)CERT_E_CN_NO_MATCH: return "wrong name";
    case (DWORD)CERT_E_WRONG_USAGE: return "not meant for TLS servers";
    case (DWORD)CERT_E_REVOKED: case (DWORD)CRYPT_E_REVOKED: return "revoked";
    case (DWORD)TRUST_E_CERT_SIGNATURE: return "bad signature";
    case (DWORD)TRUST_E_EXPLICIT_DISTRUST: return "explicitly distrusted (the Disallowed store)";
    default: return NULL;
  }
}

/* The chain's own verdict as a policy error: 0 when it reaches a trusted
 * root, valid and meant for servers. Revocation is not asked for (nor
 * checked by mbedTLS): its "unknown" bits do not count. */
static DWORD chain_error(DWORD status) {
  if (status & CERT_TRUST_IS_EXPLICIT_DISTRUST) return (DWORD)TRUST_E_EXPLICIT_DISTRUST;
  if (status & CERT_TRUST_IS_PARTIAL_CHAIN) return (DWORD)CERT_E_CHAINING;
  if (status & CERT_TRUST_IS_UNTRUSTED_ROOT) return (DWORD)CERT_E_UNTRUSTEDROOT;
  if (status & CERT_TRUST_IS_NOT_TIME_VALID) return (DWORD)CERT_E_EXPIRED;
  if (status & CERT_TRUST_IS_NOT_SIGNATURE_VALID) return (DWORD)TRUST_E_CERT_SIGNATURE;
  if (status & CERT_TRUST_IS_NOT_VALID_FOR_USAGE) return (DWORD)CERT_E_WRONG_USAGE;
  if (status & CERT_TRUST_IS_REVOKED) return (DWORD)CERT_E_REVOKED;
  return 0;
}

/* The chain built from the leaf, with the server's intermediates on hand,
 * checked by the SSL policy. */
static DWORD chain_policy(PCCERT_CONTEXT leaf, HCERTSTORE extra, wchar_t *name) {
  static char server_auth[] = szOID_PKIX_KP_SERVER_AUTH;
  LPSTR usage[] = {server_auth};
  CERT_CHAIN_PARA para = {.cbSize = sizeof para};
  para.RequestedUsage.dwType = USAGE_MATCH_TYPE_AND;
  para.RequestedUsage.Usage.cUsageIdentifier = 1;
  para.RequestedUsage.Usage.rgpszUsageIdentifier = usage;
  PCCERT_CHAIN_CONTEXT chain = NULL;
  if (!CertGetCertificateChain(NULL, leaf, NULL, extra, &para, 0, NULL, &chain)) return GetLastError();
  DWORD bad = chain_error(chain->TrustStatus.dwErrorStatus);
  if (bad) {   /* not every policy implementation looks at these (wine's does not) */
    CertFreeCertificateChain(chain);
    return bad;
  }
  SSL_EXTRA_CERT_CHAIN_POLICY_PARA ssl = {.cbSize = sizeof ssl, .dwAuthType = AUTHTYPE_SERVER,
                                          .pwszServerName = name};
  if (!name) ssl.fdwChecks = SECURITY_FLAG_IGNORE_CERT_CN_INVALID;   /* an IP: mbedTLS matched it */
  CERT_CHAIN_POLICY_PARA policy = {.cbSize = sizeof policy, .pvExtraPolicyPara = &ssl};
  CERT_CHAIN_POLICY_STATUS status = {.cbSize = sizeof status};
  DWORD e = CertVerifyCertificateChainPolicy(CERT_CHAIN_POLICY_SSL, chain, &policy, &status)
                ? status.dwError : GetLastError();
  CertFreeCertificateChain(chain);
  return e;
}

int net__tls_system_chain(const unsigned char *const *der, const size_t *len, int n, const char *name,
                          char *why, size_t whylen) {
  wchar_t wname[256];
  if (name && !MultiByteToWideChar(CP_UTF8, 0, name, -1, wname, 256))
    return snprintf(why, whylen, "the name is too long"), 0;
  HCERTSTORE extra = CertOpenStore(CERT_STORE_PROV_MEMORY, 0, 0, CERT_STORE_CREATE_NEW_FLAG, NULL);
  PCCERT_CONTEXT leaf = NULL;
  DWORD e = extra ? 0 : GetLastError();
  for (int i = 0; !e && i < n; i++)
    if (!CertAddEncodedCertificateToStore(extra, X509_ASN_ENCODING, der[i], (DWORD)len[i],
                                          CERT_STORE_ADD_ALWAYS, i == 0 ? &leaf : NULL))
      e = GetLastError();
  if (!e) e = chain_policy(leaf, extra, name ? wname : NULL);
  if (leaf) CertFreeCertificateContext(leaf);
  if (extra) CertCloseStore(extra, 0);
  if (!e) return 1;
  const char *w = policy_why(e);
  if (w) snprintf(why, whylen, "%s", w);
  else snprintf(why, whylen, "error 0x%08lx", (unsigned long)e);
  return 0;
}

#else
int net__tls_system_cas(mbedtls_x509_crt *chain, const char **store) {
  (void)chain, (void)store;
  return 0;
}

int net__tls_system_chain(const unsigned char *const *der, const size_t *len, int n, const char *name,
                          char *why, size_t whylen) {
  (void)der, (void)len, (void)n, (void)name;
  snprintf(why, whylen, "no system chain engine here");
  return 0;
}
#endif
