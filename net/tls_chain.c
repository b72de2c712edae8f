/* tls_chain.c: the system's chain engine as a second opinion on a server
 * chain mbedTLS found no trusted root for, where the system keeps its trust
 * in a store (Windows). The store's roots are loaded into mbedTLS, but a
 * fresh Windows holds only some of them: its chain engine fetches missing
 * roots and intermediates on demand, which may take the network, so it runs
 * on a helper lane while the handshake waits. I/O thread, but for the job
 * (a helper thread) and the last unref (either). */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "engine.h"
#include "tls_priv.h"

#define CHAIN_MAX 8   /* the leaf and its intermediates, as the server sent them */

struct net_tls_chain {
  net_job job;
  atomic_int refs;          /* the session's and the queued job's */
  atomic_int result;        /* 0 running, 1 trusted, -1 not (why) */
  char why[NET_TLS_CHAIN_WHY];
  char *name;               /* the checked host name; NULL: an IP, checked already */
  int n;
  size_t len[CHAIN_MAX];
  unsigned char *der[CHAIN_MAX];
};

static net_lane trust_lane = {.name = "sluice-trust", .max_threads = 2, .max_queued = 256};

static void chain_free(net_tls_chain *k) {
  for (int i = 0; i < k->n; i++) net__free(k->der[i]);
  net__free(k->name);
  net__free(k);
}

void net__tls_chain_unref(net_tls_chain *k) {
  if (k && atomic_fetch_sub(&k->refs, 1) == 1) chain_free(k);
}

static void chain_job(net_job *job) {
  net_tls_chain *k = (net_tls_chain *)((char *)job - offsetof(net_tls_chain, job));
  int r = net__tls_system_chain((const unsigned char *const *)k->der, k->len, k->n, k->name, k->why,
                                sizeof k->why);
  /* release: why is written before the verdict is seen */
  atomic_store_explicit(&k->result, r > 0 ? 1 : -1, memory_order_release);
  net__tls_chain_unref(k);
  net__engine_background_done();   /* the waiting handshake is kicked */
}

/* Copies the peer's chain and starts the check; NULL with why when it
 * cannot start (out of memory, or the lane is full). */
net_tls_chain *net__tls_chain_start(const mbedtls_x509_crt *peer, const char *name, char *why,
                                    size_t whylen) {
  net_tls_chain *k = net__calloc(1, sizeof *k);
  bool ok = k && (!name || (k->name = net__strdup(name)));
  for (const mbedtls_x509_crt *c = peer; ok && c && c->raw.len && k->n < CHAIN_MAX; c = c->next) {
    ok = (k->der[k->n] = net__malloc(c->raw.len)) != NULL;
    if (!ok) break;
    memcpy(k->der[k->n], c->raw.p, c->raw.len);
    k->len[k->n++] = c->raw.len;
  }
  if (!ok || k->n == 0) {
    snprintf(why, whylen, "%s", ok ? "no certificate" : "out of memory");
    if (k) chain_free(k);
    return NULL;
  }
  atomic_init(&k->refs, 2);
  k->job.run = chain_job;
  if (net__lane_submit(&trust_lane, &k->job)) return k;
  snprintf(why, whylen, "too many checks at once");
  chain_free(k);
  return NULL;
}

int net__tls_chain_result(net_tls_chain *k, const char **why) {
  /* acquire: pairs with the job's release */
  int r = atomic_load_explicit(&k->result, memory_order_acquire);
  if (r < 0) *why = k->why;
  return r;
}
