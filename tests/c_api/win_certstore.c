/* win_certstore.c: adds one DER certificate to a system store of the local
 * machine (Root, CA), for tests/windows/trust_check.sh under wine (which
 * removes it with `reg delete`: wine's store provider keeps deleted
 * certificates in the registry).
 *   win_certstore.exe add STORE FILE.der      exit 0 on success */
#ifdef _WIN32
#include <windows.h>
#include <wincrypt.h>
#include <stdio.h>
#include <string.h>

static int load(const char *path, unsigned char *buf, long max) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  long n = (long)fread(buf, 1, (size_t)max, f);
  fclose(f);
  return n > 0 && n < max ? (int)n : -1;
}

int main(int argc, char **argv) {
  static unsigned char der[65536];
  wchar_t store[32];
  int n = argc == 4 && !strcmp(argv[1], "add") ? load(argv[3], der, sizeof der) : -1;
  if (n < 0 || !MultiByteToWideChar(CP_UTF8, 0, argv[2], -1, store, 32)) {
    fprintf(stderr, "usage: win_certstore add STORE FILE.der\n");
    return 2;
  }
  HCERTSTORE h = CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0, CERT_SYSTEM_STORE_LOCAL_MACHINE, store);
  PCCERT_CONTEXT c = CertCreateCertificateContext(X509_ASN_ENCODING, der, (DWORD)n);
  BOOL ok = h && c;
  if (ok) ok = CertAddCertificateContextToStore(h, c, CERT_STORE_ADD_REPLACE_EXISTING, NULL);
  if (!ok) fprintf(stderr, "win_certstore %s %s: error 0x%08lx\n", argv[1], argv[2], GetLastError());
  if (c) CertFreeCertificateContext(c);
  if (h) CertCloseStore(h, 0);
  return ok ? 0 : 1;
}
#else
int main(void) { return 2; }
#endif
