/* tls_cache.c: TLS session resumption. A client keeps the sessions of its
 * last servers, per configuration (so per CA set, verification setting and
 * ALPN list) and per checked name and peer address, and offers one when it
 * connects there again: the server then skips the certificate and the key
 * exchange, the bulk of a handshake's cost on both sides. A session is
 * stored only after a handshake that completed (verified, or resuming one
 * that was) and forgotten after one that failed; a server that does not know
 * it any more answers with a full handshake. Servers issue session tickets
 * (keys made per configuration, rotated by mbedTLS). I/O thread only, except
 * net__tls_cache_tickets (the loader, before the configuration is shared)
 * and net__tls_cache_free (the last reference's thread). */
#include <string.h>

#include <mbedtls/ssl_ticket.h>

#include "alloc.h"
#include "os.h"
#include "tls_priv.h"

#define CACHE_MAX 16                      /* servers remembered per configuration */
#define CACHE_TTL_MS (2u * 60 * 60 * 1000)   /* no server keeps a session longer */
#define TICKET_LIFETIME_S (2 * 60 * 60)

typedef struct cached {
  uint64_t at;                 /* ms stored; 0: empty slot */
  size_t keylen;
  unsigned char key[NET_TLS_CACHE_KEY];
  mbedtls_ssl_session s;
} cached;

struct net_tls_cache {
  cached slot[CACHE_MAX];
#if defined(MBEDTLS_SSL_TICKET_C)
  mbedtls_ssl_ticket_context tickets;
  bool tickets_on;
#endif
};

static net_tls_cache *cache_of(net_tls_conf *f) {
  if (!f->cache && (f->cache = net__calloc(1, sizeof *f->cache)))
    for (int i = 0; i < CACHE_MAX; i++) mbedtls_ssl_session_init(&f->cache->slot[i].s);
  return f->cache;
}

static cached *find(net_tls_cache *c, const unsigned char *key, size_t keylen) {
  for (int i = 0; i < CACHE_MAX; i++)
    if (c->slot[i].at && c->slot[i].keylen == keylen && !memcmp(c->slot[i].key, key, keylen))
      return &c->slot[i];
  return NULL;
}

static void drop(cached *e) {
  mbedtls_ssl_session_free(&e->s);
  mbedtls_ssl_session_init(&e->s);
  e->at = 0;
}

void net__tls_cache_resume(net_tls_conf *f, mbedtls_ssl_context *ssl, const unsigned char *key,
                           size_t keylen) {
  cached *e = f->cache ? find(f->cache, key, keylen) : NULL;
  if (!e) return;
  /* at may be a millisecond ahead of now (odd, to tell a used slot): no subtraction */
  if (net__now_ms() > e->at + CACHE_TTL_MS || mbedtls_ssl_set_session(ssl, &e->s) != 0) drop(e);
}

/* A slot for a new key: an empty one, else the oldest. */
static cached *free_slot(net_tls_cache *c) {
  cached *e = &c->slot[0];
  for (int i = 0; i < CACHE_MAX; i++) {
    if (!c->slot[i].at) return &c->slot[i];
    if (c->slot[i].at < e->at) e = &c->slot[i];
  }
  return e;
}

#if MBEDTLS_VERSION_NUMBER < 0x03000000
#define MASTER(s) ((s)->master)
#else
#define MASTER(s) ((s)->MBEDTLS_PRIVATE(master))
#endif

/* A resumed session stored again keeps the age of the handshake that made
 * its keys: CACHE_TTL_MS bounds a session's life, not the time since its
 * last use. */
void net__tls_cache_store(net_tls_conf *f, const mbedtls_ssl_context *ssl, const unsigned char *key,
                          size_t keylen) {
  net_tls_cache *c = keylen <= NET_TLS_CACHE_KEY ? cache_of(f) : NULL;
  if (!c) return;
  mbedtls_ssl_session s;
  mbedtls_ssl_session_init(&s);
  if (mbedtls_ssl_get_session(ssl, &s) != 0) {
    mbedtls_ssl_session_free(&s);
    net__tls_cache_forget(f, key, keylen);
    return;
  }
  cached *was = find(c, key, keylen), *e = was ? was : free_slot(c);
  bool same = was && !memcmp(MASTER(&was->s), MASTER(&s), sizeof MASTER(&s));
  uint64_t at = same ? was->at : net__now_ms() | 1;
  drop(e);
  e->s = s;   /* what it holds is the slot's now */
  memcpy(e->key, key, keylen);
  e->keylen = keylen;
  e->at = at;
}

void net__tls_cache_forget(net_tls_conf *f, const unsigned char *key, size_t keylen) {
  cached *e = f->cache ? find(f->cache, key, keylen) : NULL;
  if (e) drop(e);
}

bool net__tls_cache_tickets(net_tls_conf *f, mbedtls_ctr_drbg_context *rng) {
#if defined(MBEDTLS_SSL_TICKET_C) && defined(MBEDTLS_SSL_SESSION_TICKETS)
  net_tls_cache *c = cache_of(f);
  if (!c) return false;
  mbedtls_ssl_ticket_init(&c->tickets);
  if (mbedtls_ssl_ticket_setup(&c->tickets, mbedtls_ctr_drbg_random, rng, MBEDTLS_CIPHER_AES_256_GCM,
                               TICKET_LIFETIME_S) != 0) {
    mbedtls_ssl_ticket_free(&c->tickets);
    return false;
  }
  c->tickets_on = true;
  mbedtls_ssl_conf_session_tickets_cb(&f->ssl, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse,
                                      &c->tickets);
  return true;
#else
  (void)f, (void)rng;
  return false;
#endif
}

void net__tls_cache_free(net_tls_conf *f) {
  net_tls_cache *c = f->cache;
  if (!c) return;
  for (int i = 0; i < CACHE_MAX; i++) mbedtls_ssl_session_free(&c->slot[i].s);
#if defined(MBEDTLS_SSL_TICKET_C)
  if (c->tickets_on) mbedtls_ssl_ticket_free(&c->tickets);
#endif
  net__free(c);
  f->cache = NULL;
}
