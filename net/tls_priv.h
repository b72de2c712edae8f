/* tls_priv.h: what the TLS files share: the option copy (tls_opts.c), the
 * loaded configurations (tls_conf.c) and the sessions (tls.c). */
#ifndef SLUICE_TLS_PRIV_H
#define SLUICE_TLS_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#include "helper.h"
#include "tls.h"

#if MBEDTLS_VERSION_NUMBER < 0x021C0000 || \
    (MBEDTLS_VERSION_NUMBER >= 0x03000000 && MBEDTLS_VERSION_NUMBER < 0x03020000)
#error "sluice needs mbedTLS 2.28 or 3.2 and later"
#endif
#if MBEDTLS_VERSION_NUMBER >= 0x03000000 && defined(MBEDTLS_SSL_PROTO_TLS1_3)
#define HAVE_TLS13 1
#else
#define HAVE_TLS13 0
#endif

#define MAX_ALPN 16

/* The caller's options, copied (owner thread) and then read-only. */
struct net_tls_cfg {
  atomic_int refs;              /* a server shares its own with every accepted connection */
  bool server;
  bool verify;                  /* servers: require and check a client certificate */
  bool resume;                  /* sessions resumed (clients), tickets issued (servers) */
  int min_version;
  int iplen;                    /* > 0: the checked name is an IP literal, matched to IP SANs */
  unsigned char ip[16];
  char *server_name;            /* SNI and checked name; NULL for IP literals */
  char *ca_file, *ca_path, *cert_file, *key_file, *key_password;
  char *alpn[MAX_ALPN + 1];
  size_t keylen;
  char key[];                   /* the fields a configuration depends on, length-prefixed */
};

/* The CA bundle setting (tls_opts.c): a change makes configurations that
 * use the default bundle stale. */
unsigned net__tls_cacert_gen(void);
/* net_get_cacert_path, and which variables were set to nothing usable (or
 * NULL); dir (may be NULL) gets SSL_CERT_DIR when SSL_CERT_FILE is the path
 * and both exist, else "". SSL_CERT_DIR may list folders, as for OpenSSL. */
int net__tls_cacert_find(char *buf, size_t len, char *dir, size_t dirlen, const char **unusable);
/* The next folder of a list (SSL_CERT_DIR: ':'-separated, ';' on Windows)
 * into out; false at its end. An entry too long for out is skipped. */
bool net__tls_dir_list_next(const char **list, char *out, size_t len);
#define CA_DIRS_MAX 8           /* entries of such a list looked at */
#ifdef _WIN32
#define DIR_LIST_SEP ';'
#else
#define DIR_LIST_SEP ':'
#endif

/* One file a configuration was loaded from, and what it looked like then. */
typedef struct conf_file {
  char *path;                   /* NULL: unused slot */
  bool dir;
  uint64_t id;                  /* device, inode, size and mtime (of every entry, for a directory) */
} conf_file;

enum { CONF_LOADING, CONF_READY, CONF_FAILED };
#define CONF_FILES (3 + CA_DIRS_MAX)   /* CA file, certificate, key, CA folders */

/* A loaded configuration, shared by every connection with the same options.
 * Built on a helper thread (or the owner's, for servers); used read-only on
 * the I/O thread once `state` is released as READY. */
struct net_tls_conf {
  atomic_int refs;
  atomic_int state;             /* CONF_*, released after everything below is written */
  atomic_int checking;          /* a helper is comparing the files with what was loaded */
  atomic_int changed;           /* ...and found them changed: load afresh */
  atomic_uint_fast64_t checked_at;   /* ms of the last load or check */
  net_error err;                /* CONF_FAILED: why */
  mbedtls_ssl_config ssl;
  mbedtls_x509_crt ca, cert;
  mbedtls_pk_context pk;
  int ca_count;
  const char *ca_store;         /* the system store the CAs came from, NULL: files */
  const char *alpn[MAX_ALPN + 1];
  conf_file files[CONF_FILES];
  unsigned gen;                 /* net__tls_cacert_gen it was built for (default CAs only) */
  net_tls_cfg *cfg;             /* what to load (a reference) */
  net_job job;                  /* load or check, on the file lane */
  struct net_tls_conf *next;    /* the I/O thread's cache */
  struct net_tls_cache *cache;  /* sessions to resume (clients), ticket keys (servers) */
};

/* The random generator every configuration uses (thread-safe: mbedTLS's
 * threading layer locks it); false when it cannot be seeded. */
bool net__tls_rng(mbedtls_ctr_drbg_context **out);
/* The key-exchange groups and cipher suites we offer, fastest first, and
 * the hook that hands AES-GCM keys to our own record layer (tls_pref.c). */
void net__tls_conf_prefs(mbedtls_ssl_config *c);

/* Records under AES-GCM are sealed and opened by tls_rec.c once the
 * handshake is through, where this mbedTLS hands out its keys (2.x, TLS 1.2). */
#if MBEDTLS_VERSION_NUMBER < 0x03000000 && defined(MBEDTLS_SSL_EXPORT_KEYS) && \
    defined(MBEDTLS_SSL_PROTO_TLS1_2)
#define NET_TLS_OWN_RECORDS 1
#endif
/* An AEAD suite's key block with 4 fixed IV bytes (AES-GCM; CCM too), as
 * the handshake made it; key 0 until then. */
typedef struct net_tls_keys {
  size_t key;
  unsigned char kb[2 * 32 + 2 * 4];
} net_tls_keys;
/* Where the handshake steps run on this thread until the next call put
 * their keys (NULL: nowhere). */
void net__tls_keys_catch(net_tls_keys *k);

/* Session resumption (tls_cache.c). Keys name the server: checked name and
 * peer address. I/O thread, but for tickets (the loader) and free (the last
 * reference). */
#define NET_TLS_CACHE_KEY 32   /* a SHA-256 (tls.c, cache_key) */
typedef struct net_tls_cache net_tls_cache;
void net__tls_cache_resume(net_tls_conf *f, mbedtls_ssl_context *ssl, const unsigned char *key,
                           size_t keylen);
void net__tls_cache_store(net_tls_conf *f, const mbedtls_ssl_context *ssl, const unsigned char *key,
                          size_t keylen);
void net__tls_cache_forget(net_tls_conf *f, const unsigned char *key, size_t keylen);
bool net__tls_cache_tickets(net_tls_conf *f, mbedtls_ctr_drbg_context *rng);
void net__tls_cache_free(net_tls_conf *f);

/* Adds the system's trusted roots where the system keeps them in a store,
 * not a file (Windows: ROOT); returns how many, 0 elsewhere. *store: its
 * name, for messages. Helper threads. */
int net__tls_system_cas(mbedtls_x509_crt *chain, const char **store);
#define NET_TLS_CHAIN_WHY 160
/* The chain engine of a system whose roots come from a store (those of
 * net__tls_system_cas), asked about a server chain mbedTLS found no trusted
 * root for before it fails. Its verdict on the chain (DER, the leaf first): 1 trusted for a TLS server named name (NULL: an IP literal, whose
 * match mbedTLS checked), 0 not, with why. May take the network: helper
 * threads only. */
int net__tls_system_chain(const unsigned char *const *der, const size_t *len, int n, const char *name,
                          char *why, size_t whylen);
/* The check of one handshake (tls_chain.c): started on the I/O thread,
 * run on a helper lane; the waiting connection is kicked when it is done. */
typedef struct net_tls_chain net_tls_chain;
net_tls_chain *net__tls_chain_start(const mbedtls_x509_crt *peer, const char *name, char *why,
                                    size_t whylen);
/* 0 running, 1 trusted, -1 not trusted (*why says why). */
int net__tls_chain_result(net_tls_chain *k, const char **why);
void net__tls_chain_unref(net_tls_chain *k);

/* Whether the certificate lists ip (4 or 16 bytes) among its subjectAltName
 * iPAddress entries; parsed by hand, as mbedTLS 2.28 keeps only dNSName
 * entries. Any thread. */
bool net__tls_cert_has_ip(const mbedtls_x509_crt *crt, const unsigned char *ip, int iplen);

#endif
