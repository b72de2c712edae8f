/* gcm.c: AES-GCM on AES-NI and PCLMULQDQ (see gcm.h). GHASH works on
 * byte-reversed blocks; eight products are summed before one shift and
 * reduction, which is linear, so H^1..H^8 are kept per key. Any thread. */
#include <string.h>

#include "gcm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

#define TGT __attribute__((target("aes,pclmul,ssse3,sse4.1")))
#define X(a, b) _mm_xor_si128(a, b)

bool net__gcm_supported(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const unsigned need = 1u << 25 | 1u << 1 | 1u << 9 | 1u << 19;   /* AES, PCLMULQDQ, SSSE3, SSE4.1 */
  return (c & need) == need;
}

static inline TGT __m128i bswap(__m128i v) {
  return _mm_shuffle_epi8(v, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

static inline TGT __m128i expand(__m128i k, __m128i g) {
  k = X(k, _mm_slli_si128(k, 4));
  k = X(k, _mm_slli_si128(k, 4));
  k = X(k, _mm_slli_si128(k, 4));
  return X(k, g);
}

#define ASSIST(v, rcon, sel) _mm_shuffle_epi32(_mm_aeskeygenassist_si128(v, rcon), sel)
#define K128(i, rcon) rk[i] = expand(rk[i - 1], ASSIST(rk[i - 1], rcon, 0xff))
#define K256(i, rcon) \
  rk[i] = expand(rk[i - 2], ASSIST(rk[i - 1], rcon, 0xff)), \
  rk[i + 1] = expand(rk[i - 1], ASSIST(rk[i], 0, 0xaa))

static TGT void key128(__m128i *rk, const unsigned char *key) {
  rk[0] = _mm_loadu_si128((const __m128i *)key);
  K128(1, 0x01), K128(2, 0x02), K128(3, 0x04), K128(4, 0x08), K128(5, 0x10);
  K128(6, 0x20), K128(7, 0x40), K128(8, 0x80), K128(9, 0x1b), K128(10, 0x36);
}

static TGT void key256(__m128i *rk, const unsigned char *key) {
  rk[0] = _mm_loadu_si128((const __m128i *)key);
  rk[1] = _mm_loadu_si128((const __m128i *)(key + 16));
  K256(2, 0x01), K256(4, 0x02), K256(6, 0x04), K256(8, 0x08), K256(10, 0x10), K256(12, 0x20);
  rk[14] = expand(rk[12], ASSIST(rk[13], 0x40, 0xff));
}

static inline TGT __m128i aes1(const net_gcm *g, __m128i x) {
  const __m128i *rk = (const __m128i *)g->rk;
  x = X(x, rk[0]);
  for (int i = 1; i < g->rounds; i++) x = _mm_aesenc_si128(x, rk[i]);
  return _mm_aesenclast_si128(x, rk[g->rounds]);
}

static inline TGT void aes8(const net_gcm *g, __m128i *b) {
  const __m128i *rk = (const __m128i *)g->rk;
#pragma GCC unroll 8
  for (int j = 0; j < 8; j++) b[j] = X(b[j], rk[0]);
  for (int i = 1; i < g->rounds; i++) {
    __m128i k = rk[i];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) b[j] = _mm_aesenc_si128(b[j], k);
  }
#pragma GCC unroll 8
  for (int j = 0; j < 8; j++) b[j] = _mm_aesenclast_si128(b[j], rk[g->rounds]);
}

/* The 256-bit carry-less product of a and b, added into lo, mid, hi. */
static inline TGT void mul_add(__m128i a, __m128i b, __m128i *lo, __m128i *mid, __m128i *hi) {
  *lo = X(*lo, _mm_clmulepi64_si128(a, b, 0x00));
  *hi = X(*hi, _mm_clmulepi64_si128(a, b, 0x11));
  *mid = X(*mid, X(_mm_clmulepi64_si128(a, b, 0x01), _mm_clmulepi64_si128(a, b, 0x10)));
}

/* The sum's shift left by one (the bit order is reflected) and its
 * reduction modulo x^128 + x^7 + x^2 + x + 1. */
static inline TGT __m128i reduce(__m128i lo, __m128i mid, __m128i hi) {
  __m128i a = X(lo, _mm_slli_si128(mid, 8)), b = X(hi, _mm_srli_si128(mid, 8));
  __m128i ca = _mm_srli_epi32(a, 31), cb = _mm_srli_epi32(b, 31);
  a = _mm_or_si128(_mm_slli_epi32(a, 1), _mm_slli_si128(ca, 4));
  b = _mm_or_si128(_mm_or_si128(_mm_slli_epi32(b, 1), _mm_slli_si128(cb, 4)), _mm_srli_si128(ca, 12));
  __m128i t = X(X(_mm_slli_epi32(a, 31), _mm_slli_epi32(a, 30)), _mm_slli_epi32(a, 25));
  __m128i carry = _mm_srli_si128(t, 4);
  a = X(a, _mm_slli_si128(t, 12));
  __m128i u = X(X(_mm_srli_epi32(a, 1), _mm_srli_epi32(a, 2)), _mm_srli_epi32(a, 7));
  return X(b, X(a, X(u, carry)));
}

static inline TGT __m128i gmul(__m128i a, __m128i b) {
  __m128i lo = _mm_setzero_si128(), mid = lo, hi = lo;
  mul_add(a, b, &lo, &mid, &hi);
  return reduce(lo, mid, hi);
}

/* y absorbs eight byte-reversed blocks: (y + c0)H^8 + c1 H^7 + ... + c7 H. */
static inline TGT __m128i ghash8(const net_gcm *g, __m128i y, const __m128i *c) {
  const __m128i *h = (const __m128i *)g->hpow;
  __m128i lo = _mm_setzero_si128(), mid = lo, hi = lo;
  mul_add(X(y, c[0]), h[7], &lo, &mid, &hi);
#pragma GCC unroll 7
  for (int j = 1; j < 8; j++) mul_add(c[j], h[7 - j], &lo, &mid, &hi);
  return reduce(lo, mid, hi);
}

static inline TGT __m128i load_part(const unsigned char *p, size_t n) {
  unsigned char b[16] = {0};
  memcpy(b, p, n);
  return _mm_loadu_si128((const __m128i *)b);
}

static TGT __m128i ghash_bytes(const net_gcm *g, __m128i y, const unsigned char *p, size_t n) {
  __m128i h = _mm_load_si128((const __m128i *)g->hpow[0]);
  for (; n >= 16; p += 16, n -= 16) y = gmul(X(y, bswap(_mm_loadu_si128((const __m128i *)p))), h);
  if (n) y = gmul(X(y, bswap(load_part(p, n))), h);
  return y;
}

static inline TGT __m128i counter(__m128i iv, uint32_t n) {
  return _mm_insert_epi32(iv, (int)__builtin_bswap32(n), 3);
}

/* Counter mode from block 2 over len bytes, hashing the ciphertext (in when
 * opening, out when sealing; every block is read before it is written). */
static TGT __m128i ctr_hash(const net_gcm *g, __m128i iv, __m128i y, const unsigned char *in,
                            unsigned char *out, size_t len, bool opening) {
  uint32_t n = 2;
  size_t off = 0;
  for (; len - off >= 128; off += 128, n += 8) {
    __m128i ks[8], c[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) ks[j] = counter(iv, n + (uint32_t)j);
    aes8(g, ks);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
      __m128i p = _mm_loadu_si128((const __m128i *)(in + off + 16 * j)), o = X(p, ks[j]);
      _mm_storeu_si128((__m128i *)(out + off + 16 * j), o);
      c[j] = bswap(opening ? p : o);
    }
    y = ghash8(g, y, c);
  }
  for (; off < len; off += 16, n++) {
    size_t k = len - off < 16 ? len - off : 16;
    unsigned char b[16];
    __m128i p = load_part(in + off, k), o = X(p, aes1(g, counter(iv, n)));
    _mm_storeu_si128((__m128i *)b, o);
    y = ghash_bytes(g, y, opening ? in + off : b, k);
    memcpy(out + off, b, k);
  }
  return y;
}

static TGT void crypt(const net_gcm *g, const unsigned char ivb[12], const unsigned char *aad, size_t aadlen,
                      const unsigned char *in, unsigned char *out, size_t len, bool opening,
                      unsigned char tag[16]) {
  __m128i iv = load_part(ivb, 12);
  __m128i y = ghash_bytes(g, _mm_setzero_si128(), aad, aadlen);
  y = ctr_hash(g, iv, y, in, out, len, opening);
  __m128i lens = _mm_set_epi64x((long long)((uint64_t)aadlen * 8), (long long)((uint64_t)len * 8));
  y = gmul(X(y, lens), _mm_load_si128((const __m128i *)g->hpow[0]));
  _mm_storeu_si128((__m128i *)tag, X(bswap(y), aes1(g, counter(iv, 1))));
}

static TGT void powers(net_gcm *g) {
  __m128i *h = (__m128i *)g->hpow;
  h[0] = bswap(aes1(g, _mm_setzero_si128()));
  for (int i = 1; i < 8; i++) h[i] = gmul(h[i - 1], h[0]);
}

bool net__gcm_key(net_gcm *g, const unsigned char *key, size_t keylen) {
  if ((keylen != 16 && keylen != 32) || !net__gcm_supported()) return false;
  if (keylen == 16) key128((__m128i *)g->rk, key);
  else key256((__m128i *)g->rk, key);
  g->rounds = keylen == 16 ? 10 : 14;
  powers(g);
  return true;
}

void net__gcm_seal(const net_gcm *g, const unsigned char iv[12], const unsigned char *aad, size_t aadlen,
                   const unsigned char *in, unsigned char *out, size_t len, unsigned char tag[16]) {
  crypt(g, iv, aad, aadlen, in, out, len, false, tag);
}

bool net__gcm_open(const net_gcm *g, const unsigned char iv[12], const unsigned char *aad, size_t aadlen,
                   const unsigned char *in, unsigned char *out, size_t len, const unsigned char tag[16]) {
  unsigned char want[16], diff = 0;
  crypt(g, iv, aad, aadlen, in, out, len, true, want);
  for (int i = 0; i < 16; i++) diff |= (unsigned char)(want[i] ^ tag[i]);   /* in constant time */
  if (diff) memset(out, 0, len);
  return diff == 0;
}

#else

bool net__gcm_supported(void) { return false; }
bool net__gcm_key(net_gcm *g, const unsigned char *key, size_t keylen) {
  (void)g, (void)key, (void)keylen;
  return false;
}
void net__gcm_seal(const net_gcm *g, const unsigned char iv[12], const unsigned char *aad, size_t aadlen,
                   const unsigned char *in, unsigned char *out, size_t len, unsigned char tag[16]) {
  (void)g, (void)iv, (void)aad, (void)aadlen, (void)in, (void)out, (void)len, (void)tag;
}
bool net__gcm_open(const net_gcm *g, const unsigned char iv[12], const unsigned char *aad, size_t aadlen,
                   const unsigned char *in, unsigned char *out, size_t len, const unsigned char tag[16]) {
  (void)g, (void)iv, (void)aad, (void)aadlen, (void)in, (void)out, (void)len, (void)tag;
  return false;
}

#endif
