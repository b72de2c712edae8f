/* test_gcm.c: net/gcm.c against mbedTLS's own AES-GCM, which is the
 * reference here: both key sizes, every length from 0 to 600 bytes and a
 * few records' worth, additional data of every length to 40, in place and
 * apart; and a tag or ciphertext changed anywhere must not open. */
#include <mbedtls/gcm.h>
#include <stdlib.h>
#include <string.h>

#include "gcm.h"
#include "tap.h"

#define MAXLEN (16384 + 300)

static unsigned char key[32], iv[12], aad[64], pt[MAXLEN], ref[MAXLEN], got[MAXLEN];

static void fill(unsigned char *p, size_t n, unsigned *seed) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(rand_r(seed) >> 7);
}

/* One case: ours and mbedTLS's seal alike; ours opens it, in place too. */
static bool one(size_t keylen, size_t len, size_t aadlen, unsigned seed) {
  unsigned char rtag[16], tag[16];
  fill(key, sizeof key, &seed), fill(iv, sizeof iv, &seed), fill(aad, aadlen, &seed), fill(pt, len, &seed);
  mbedtls_gcm_context m;
  mbedtls_gcm_init(&m);
  mbedtls_gcm_setkey(&m, MBEDTLS_CIPHER_ID_AES, key, (unsigned)keylen * 8);
  mbedtls_gcm_crypt_and_tag(&m, MBEDTLS_GCM_ENCRYPT, len, iv, 12, aad, aadlen, pt, ref, 16, rtag);
  mbedtls_gcm_free(&m);
  net_gcm g;
  CHECK(net__gcm_key(&g, key, keylen), "key of %zu bytes refused", keylen);
  net__gcm_seal(&g, iv, aad, aadlen, pt, got, len, tag);
  CHECK(!memcmp(got, ref, len), "ciphertext differs (key %zu, len %zu, aad %zu)", keylen, len, aadlen);
  CHECK(!memcmp(tag, rtag, 16), "tag differs (key %zu, len %zu, aad %zu)", keylen, len, aadlen);
  memcpy(got, pt, len);
  net__gcm_seal(&g, iv, aad, aadlen, got, got, len, tag);
  CHECK(!memcmp(got, ref, len) && !memcmp(tag, rtag, 16), "in place differs (len %zu)", len);
  CHECK(net__gcm_open(&g, iv, aad, aadlen, got, got, len, tag), "own seal does not open (len %zu)", len);
  CHECK(!memcmp(got, pt, len), "opened in place to other bytes (len %zu)", len);
  CHECK(net__gcm_open(&g, iv, aad, aadlen, ref, got, len, rtag), "mbedTLS's seal does not open (len %zu)", len);
  CHECK(!memcmp(got, pt, len), "opened to other bytes (len %zu)", len);
  return true;
}

static bool lengths(size_t keylen) {
  unsigned seed = 1;
  for (size_t len = 0; len <= 600; len++)
    if (!one(keylen, len, len % 41, seed++)) return false;
  const size_t big[] = {1024, 4096, 16383, 16384, 16384 + 17, MAXLEN};
  for (size_t i = 0; i < sizeof big / sizeof *big; i++)
    if (!one(keylen, big[i], 13, seed++)) return false;
  return true;
}

/* Any one bit changed in the ciphertext, the tag or the additional data. */
static bool tamper(void) {
  unsigned seed = 7;
  const size_t len = 300, aadlen = 13;
  unsigned char tag[16], ct[300], bad[300];
  fill(key, 16, &seed), fill(iv, 12, &seed), fill(aad, aadlen, &seed), fill(pt, len, &seed);
  net_gcm g;
  net__gcm_key(&g, key, 16);
  net__gcm_seal(&g, iv, aad, aadlen, pt, ct, len, tag);
  for (size_t bit = 0; bit < (len + 16 + aadlen) * 8; bit += 3) {
    size_t byte = bit / 8;
    unsigned char mask = (unsigned char)(1u << bit % 8);
    memcpy(bad, ct, len);
    unsigned char t2[16], a2[13];
    memcpy(t2, tag, 16), memcpy(a2, aad, aadlen);
    if (byte < len) bad[byte] ^= mask;
    else if (byte < len + 16) t2[byte - len] ^= mask;
    else a2[byte - len - 16] ^= mask;
    CHECK(!net__gcm_open(&g, iv, a2, aadlen, bad, got, len, t2), "opened with bit %zu changed", bit);
    for (size_t i = 0; i < len; i++) CHECK(got[i] == 0, "a refused open left plaintext");
  }
  return true;
}

int main(void) {
  if (!net__gcm_supported()) {
    printf("1..0 # SKIP this CPU has no AES-NI and PCLMULQDQ\n");
    return 0;
  }
  report("AES-128-GCM as mbedTLS makes it, every length to 600 and records", lengths(16));
  report("AES-256-GCM as mbedTLS makes it, every length to 600 and records", lengths(32));
  report("a changed bit anywhere does not open", tamper());
  net_gcm g;
  report("a 24-byte key is refused", !net__gcm_key(&g, key, 24) || fail("accepted"));
  return tap_done();
}
