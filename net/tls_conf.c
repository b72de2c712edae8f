/* tls_conf.c: TLS configurations: loaded from their files on a helper
 * thread of the file lane (or the owner's thread, for a server), shared by
 * every connection with the same options, checked against their files again
 * before use once a second has passed, and loaded afresh when one changed.
 * Files are read only if they are regular files, opened non-blocking (a
 * FIFO never stalls anything) and within a size cap. The cache is the I/O
 * thread's; a configuration's fields are written by one loader and released
 * with its state. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/cipher.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pkcs5.h>

#include "alloc.h"
#include "engine.h"
#include "os.h"
#include "tls_priv.h"

#define FILE_MAX (8u << 20)       /* a CA bundle, certificate or key file */
#define DIR_FILES_MAX 4096        /* files of a ca_path folder */
#define DIR_BYTES_MAX (64u << 20)
#define RECHECK_MS 1000           /* a configuration older than this is checked before use */
#define RETRY_MS 1000             /* a failed load is reported, not retried, this long */
#define MAX_CONFS 32

/* a file that never answers (a dead mount) holds one thread, not every load */
static net_lane file_lane = {.name = "sluice-files", .max_threads = 8, .max_queued = 256};
static net_tls_conf *confs;       /* I/O thread */
static int nconfs;

/* ---- the random generator ------------------------------------------------- */

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static atomic_int rng_once;

static bool rng_init(void *unused) {
  (void)unused;
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  if (psa_crypto_init() != PSA_SUCCESS) return false;   /* TLS 1.3 and PSA-backed keys need it */
#endif
  static const unsigned char who[] = "sluice";
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, who, sizeof who) == 0) return true;
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&entropy);
  return false;
}

bool net__tls_rng(mbedtls_ctr_drbg_context **out) {
  *out = &drbg;
  return net__once(&rng_once, rng_init, NULL);
}

/* ---- files ------------------------------------------------------------------ */

/* Reads a regular file of at most FILE_MAX bytes, NUL-terminated (PEM
 * parsers want it); *id tells a replaced or edited file. NULL with *why. */
static char *read_file(const char *path, size_t *len, uint64_t *id, const char **why) {
  int fd = net__file_open(path, NET_OPEN_READ | NET_OPEN_NONBLOCK);
  net_file_info st = {0};
  char *buf = NULL;
  *why = NULL;
  if (fd < 0) *why = strerror(errno);
  else if (net__file_fstat(fd, &st) < 0) *why = strerror(errno);
  else if (st.kind != NET_FILE_REG) *why = "not a regular file";
  else if (st.size > FILE_MAX) *why = "larger than 8 MiB";
  else if (!(buf = net__malloc((size_t)st.size + 1))) *why = "out of memory";
  size_t got = 0;
  while (!*why && got < (size_t)st.size) {
    ssize_t n = net__file_read(fd, buf + got, (size_t)st.size - got);
    if (n <= 0) *why = n < 0 ? strerror(errno) : "it changed while being read";
    else got += (size_t)n;
  }
  if (fd >= 0) net__file_close(fd);
  if (*why) {
    net__free(buf);
    return NULL;
  }
  buf[got] = '\0';
  *len = got;
  if (id) *id = st.id;
  return buf;
}

/* dir/name into buf; false when it does not fit. */
static bool join(char *buf, size_t len, const char *dir, const char *name) {
  int n = snprintf(buf, len, "%s/%s", dir, name);
  return n > 0 && (size_t)n < len;
}

/* The length a parser of this buffer wants: PEM counts the NUL, DER does not. */
static size_t parse_len(const char *buf, size_t len) {
  return strstr(buf, "-----BEGIN") ? len + 1 : len;
}

/* The identity of a folder: every entry's name and what it looks like. */
static bool dir_id(const char *path, uint64_t *id) {
  net_dir *d = net__dir_open(path);
  if (!d) return false;
  uint64_t h = 0;
  char full[4096];
  for (const char *name; (name = net__dir_next(d));) {
    net_file_info st;
    if (!join(full, sizeof full, path, name) || net__file_stat(full, true, &st) < 0) continue;
    uint64_t x = st.id;
    for (const char *p = name; *p; p++) x = (x ^ (unsigned char)*p) * 1099511628211u;
    h += x;   /* order-independent: readdir's order is not stable */
  }
  net__dir_close(d);
  *id = h;
  return true;
}

/* Parses every regular file of a folder (as mbedtls_x509_crt_parse_path
 * does, skipping what is not a certificate), within the caps. */
static int parse_dir(mbedtls_x509_crt *chain, const char *path) {
  net_dir *d = net__dir_open(path);
  if (!d) return -1;
  size_t files = 0, bytes = 0;
  char full[4096];
  for (const char *name; (name = net__dir_next(d)) && files < DIR_FILES_MAX && bytes < DIR_BYTES_MAX;) {
    if (name[0] == '.' || !join(full, sizeof full, path, name)) continue;
    size_t len;
    const char *why;
    char *buf = read_file(full, &len, NULL, &why);
    if (!buf) continue;
    files++;
    bytes += len;
    mbedtls_x509_crt_parse(chain, (const unsigned char *)buf, parse_len(buf, len));
    net__free(buf);
  }
  net__dir_close(d);
  return 0;
}

static void remember(net_tls_conf *f, const char *path, bool dir, uint64_t id) {
  for (int i = 0; i < CONF_FILES; i++)
    if (!f->files[i].path) {
      f->files[i] = (conf_file){net__strdup(path), dir, id};
      return;
    }
}

/* Whether any file the configuration was loaded from looks different now. */
static bool files_changed(const net_tls_conf *f) {
  for (int i = 0; i < CONF_FILES && f->files[i].path; i++) {
    uint64_t id = 0;
    net_file_info st;
    bool ok = f->files[i].dir ? dir_id(f->files[i].path, &id)
                              : net__file_stat(f->files[i].path, true, &st) == 0 && (id = st.id, true);
    if (!ok || id != f->files[i].id) return true;
  }
  return false;
}

/* ---- loading --------------------------------------------------------------------- */

static bool mbed_fail(net_error *e, int r, const char *fmt, const char *a) {
  char buf[128], what[256];
  mbedtls_strerror(r, buf, sizeof buf);
  snprintf(what, sizeof what, fmt, a);
  net__seterr(e, NET_E_TLS, "%s: %s", what, buf);
  return false;
}

/* One source of CAs: a PEM bundle, or a folder of them. */
static bool load_ca_source(net_tls_conf *f, const char *path, bool dir, net_error *e) {
  uint64_t id = 0;
  if (dir) {
    net_file_info st;
    char buf[64];
    if (net__file_stat(path, true, &st) != 0)
      return net__seterr(e, NET_E_TLS, "cannot load the CAs from %s: %s", path, net__errstr(errno, buf, sizeof buf)), false;
    if (st.kind != NET_FILE_DIR) return net__seterr(e, NET_E_TLS, "cannot load the CAs from %s: not a folder", path), false;
    if (!dir_id(path, &id) || parse_dir(&f->ca, path) != 0)
      return net__seterr(e, NET_E_TLS, "no CA certificate could be read from %s", path), false;
  } else {
    size_t len;
    const char *why;
    char *buf = read_file(path, &len, &id, &why);
    if (!buf) return net__seterr(e, NET_E_TLS, "cannot load the CAs from %s: %s", path, why), false;
    mbedtls_x509_crt_parse(&f->ca, (const unsigned char *)buf, parse_len(buf, len));
    net__free(buf);
  }
  remember(f, path, dir, id);
  return true;
}

/* The folders of a list that exist among its first CA_DIRS_MAX entries
 * (SSL_CERT_DIR may name several, as for OpenSSL; one folder is a list of one). */
static bool load_ca_folders(net_tls_conf *f, const char *list, net_error *e) {
  char one[4096];
  int loaded = 0;
  net_file_info st;
  if (net__file_stat(list, true, &st) == 0) return load_ca_source(f, list, true, e);   /* one folder, ':' and all */
  for (int i = 0; i < CA_DIRS_MAX && net__tls_dir_list_next(&list, one, sizeof one); i++) {
    if (net__file_stat(one, true, &st) != 0 || st.kind != NET_FILE_DIR) continue;   /* OpenSSL skips them too */
    if (!load_ca_source(f, one, true, e)) return false;
    loaded++;
  }
  return loaded > 0 || (net__seterr(e, NET_E_TLS, "cannot load the CAs from %s: no such folder", list), false);
}

/* The default bundle (set_cacert_path, SSL_CERT_FILE / SSL_CERT_DIR, the
 * system's); found[0] is left empty when there is no file or folder to name. */
static bool load_default_cas(net_tls_conf *f, char *found, size_t size, net_error *e) {
  const char *unusable;
  char dir[4096];
  found[0] = '\0';
  int r = net__tls_cacert_find(found, size, dir, sizeof dir, &unusable);
  if (r < 0) return net__seterr(e, NET_E_TLS, "the CA bundle's path is longer than %zu bytes", size - 1), false;
  if (unusable) {   /* they alone decide, as for OpenSSL: never the system's store instead */
    net__seterr(e, NET_E_TLS_VERIFY, "%s set to no CA bundle that exists; fix or unset it, call "
                "net.set_cacert_path(path) or pass {verify = false}", unusable);
    return false;
  }
  if (r == 0) {   /* no bundle file: the system's store, if any */
    f->ca_count = net__tls_system_cas(&f->ca, &f->ca_store);
    return true;
  }
  net_file_info st;
  bool there = net__file_stat(found, true, &st) == 0;
  if (!there && strchr(found, DIR_LIST_SEP)) return load_ca_folders(f, found, e);   /* SSL_CERT_DIR's list alone */
  if (!load_ca_source(f, found, there && st.kind == NET_FILE_DIR, e)) return false;
  return !dir[0] || load_ca_folders(f, dir, e);   /* SSL_CERT_DIR with SSL_CERT_FILE */
}

/* The CAs: ca_file and ca_path (both when both are given), else (verifying
 * clients) the default bundle. */
static bool load_cas(net_tls_conf *f, const net_tls_cfg *cfg, net_error *e) {
  char found[4096];
  bool given = cfg->ca_file || cfg->ca_path;
  if (!given && (!cfg->verify || cfg->server)) return true;
  if (given) {
    if (cfg->ca_file && !load_ca_source(f, cfg->ca_file, false, e)) return false;
    if (cfg->ca_path && !load_ca_source(f, cfg->ca_path, true, e)) return false;
  } else if (!load_default_cas(f, found, sizeof found, e)) {
    return false;
  }
  if (!f->ca_store)
    for (mbedtls_x509_crt *c = &f->ca; c && c->raw.len; c = c->next) f->ca_count++;
  if (f->ca_count > 0) return true;
  if (given)
    return net__seterr(e, NET_E_TLS, "no CA certificate could be read from %s%s%s", cfg->ca_file ? cfg->ca_file : "",
                       cfg->ca_file && cfg->ca_path ? " nor " : "", cfg->ca_path ? cfg->ca_path : ""), false;
  net__seterr(e, NET_E_TLS_VERIFY, "no CA certificates found to verify the server%s%s; call "
              "net.set_cacert_path(path) or pass {verify = false}", found[0] || f->ca_store ? " in " : "",
              found[0] ? found : f->ca_store ? f->ca_store : "");
  return false;
}

static int parse_key(net_tls_conf *f, const char *buf, size_t len, const char *pw) {
  size_t pwlen = pw ? strlen(pw) : 0;
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  mbedtls_ctr_drbg_context *rng;
  if (!net__tls_rng(&rng)) return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
  return mbedtls_pk_parse_key(&f->pk, (const unsigned char *)buf, parse_len(buf, len),
                              (const unsigned char *)pw, pwlen, mbedtls_ctr_drbg_random, rng);
#else
  return mbedtls_pk_parse_key(&f->pk, (const unsigned char *)buf, parse_len(buf, len),
                              (const unsigned char *)pw, pwlen);
#endif
}

/* A key mbedTLS could not take apart (the high-level code; a low-level ASN.1
 * one is added to it), as against one it could not decrypt or does not know. */
static bool malformed(int r) {
  int high = r < 0 ? -(-r & 0xFF80) : 0;
  return high == MBEDTLS_ERR_PK_KEY_INVALID_FORMAT || high == MBEDTLS_ERR_PK_KEY_INVALID_VERSION;
}

static bool load_key(net_tls_conf *f, const net_tls_cfg *cfg, net_error *e) {
  size_t len;
  uint64_t id;
  const char *why;
  char *buf = read_file(cfg->key_file, &len, &id, &why);
  if (!buf) return net__seterr(e, NET_E_TLS, "cannot load key_file %s: %s", cfg->key_file, why), false;
  const char *pw = cfg->key_password;
  int r = parse_key(f, buf, len, pw);
  /* mbedTLS spots a wrong password by the first bytes it decrypts; about one wrong
     password in 500 passes that and fails later as a malformed key instead */
  if (pw && malformed(r) && parse_key(f, buf, len, NULL) == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
    r = MBEDTLS_ERR_PK_PASSWORD_MISMATCH;
  net__free_secret(buf, len);
  remember(f, cfg->key_file, false, id);
  if (r == MBEDTLS_ERR_PK_PASSWORD_MISMATCH || r == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
    return net__seterr(e, NET_E_TLS, "cannot load key_file %s: %s", cfg->key_file,
                       pw ? "wrong key_password" : "it is encrypted and key_password is not set"), false;
  if (r == MBEDTLS_ERR_PKCS5_FEATURE_UNAVAILABLE || r == MBEDTLS_ERR_CIPHER_FEATURE_UNAVAILABLE ||
      r == MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE)   /* openssl 3's default: PKCS#8 with AES */
    return net__seterr(e, NET_E_TLS, "cannot load key_file %s: this mbedTLS cannot decrypt its encryption; "
                       "re-encrypt it with: openssl pkey -traditional -aes256", cfg->key_file), false;
  return r == 0 || mbed_fail(e, r, "cannot load key_file %s", cfg->key_file);
}

static bool key_fits(net_tls_conf *f) {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  mbedtls_ctr_drbg_context *rng;
  return net__tls_rng(&rng) && mbedtls_pk_check_pair(&f->cert.pk, &f->pk, mbedtls_ctr_drbg_random, rng) == 0;
#else
  return mbedtls_pk_check_pair(&f->cert.pk, &f->pk) == 0;
#endif
}

static bool load_own_cert(net_tls_conf *f, const net_tls_cfg *cfg, net_error *e) {
  if (!cfg->cert_file) return true;
  size_t len;
  uint64_t id;
  const char *why;
  char *buf = read_file(cfg->cert_file, &len, &id, &why);
  if (!buf) return net__seterr(e, NET_E_TLS, "cannot load cert_file %s: %s", cfg->cert_file, why), false;
  int r = mbedtls_x509_crt_parse(&f->cert, (const unsigned char *)buf, parse_len(buf, len));
  net__free_secret(buf, len);   /* one PEM file may hold the key too */
  remember(f, cfg->cert_file, false, id);
  if (r > 0)   /* mbedTLS counts the blocks it could not parse */
    return net__seterr(e, NET_E_TLS, "cannot load cert_file %s: %d of its certificates could not be parsed",
                       cfg->cert_file, r), false;
  if (r != 0) return mbed_fail(e, r, "cannot load cert_file %s", cfg->cert_file);
  if (!load_key(f, cfg, e)) return false;
  if (!key_fits(f))   /* else every handshake fails on its signature, saying nothing of why */
    return net__seterr(e, NET_E_TLS, "cannot load key_file %s: it does not belong to cert_file %s", cfg->key_file,
                       cfg->cert_file), false;
  if ((r = mbedtls_ssl_conf_own_cert(&f->ssl, &f->cert, &f->pk)) != 0)
    return mbed_fail(e, r, "%s", "certificate and key do not go together");
  return true;
}

static bool setup(net_tls_conf *f, const net_tls_cfg *cfg, net_error *e) {
  mbedtls_ctr_drbg_context *rng;
  if (!net__tls_rng(&rng)) return net__seterr(e, NET_E_TLS, "cannot seed the random generator"), false;
  int r = mbedtls_ssl_config_defaults(&f->ssl, cfg->server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                      MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
  if (r != 0) return mbed_fail(e, r, "%s", "configuration");
  mbedtls_ssl_conf_rng(&f->ssl, mbedtls_ctr_drbg_random, rng);
  net__tls_conf_prefs(&f->ssl);
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  mbedtls_ssl_conf_min_tls_version(&f->ssl, cfg->min_version == 13 ? MBEDTLS_SSL_VERSION_TLS1_3
                                                                  : MBEDTLS_SSL_VERSION_TLS1_2);
#else
  mbedtls_ssl_conf_min_version(&f->ssl, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
  if (!load_cas(f, cfg, e) || !load_own_cert(f, cfg, e)) return false;
  if (cfg->server && cfg->resume) net__tls_cache_tickets(f, rng);   /* without tickets: full handshakes only */
  mbedtls_ssl_conf_authmode(&f->ssl, cfg->verify ? MBEDTLS_SSL_VERIFY_REQUIRED : MBEDTLS_SSL_VERIFY_NONE);
  if (f->ca_count) mbedtls_ssl_conf_ca_chain(&f->ssl, &f->ca, NULL);
  for (int i = 0; cfg->alpn[i]; i++)
    if (!(f->alpn[i] = net__strdup(cfg->alpn[i]))) return net__seterr(e, NET_E_LIMIT, "out of memory"), false;
  if (f->alpn[0] && mbedtls_ssl_conf_alpn_protocols(&f->ssl, f->alpn) != 0)
    return net__seterr(e, NET_E_TLS, "bad alpn list"), false;
  return true;
}

static net_tls_conf *conf_new(net_tls_cfg *cfg, unsigned gen) {
  net_tls_conf *f = net__calloc(1, sizeof *f);
  if (!f) return NULL;
  atomic_init(&f->refs, 1);
  atomic_init(&f->state, CONF_LOADING);
  mbedtls_ssl_config_init(&f->ssl);
  mbedtls_x509_crt_init(&f->ca);
  mbedtls_x509_crt_init(&f->cert);
  mbedtls_pk_init(&f->pk);
  f->cfg = net__tls_cfg_ref(cfg);
  f->gen = gen;
  return f;
}

/* Loads f from its files (a helper, or the owner for a server), then
 * releases its state. */
static void load(net_tls_conf *f) {
  bool ok = setup(f, f->cfg, &f->err);
  atomic_store(&f->checked_at, net__now_ms());
  /* release: every field above is written before anyone sees the state */
  atomic_store_explicit(&f->state, ok ? CONF_READY : CONF_FAILED, memory_order_release);
}

net_tls_conf *net__tls_conf_ref(net_tls_conf *f) {
  atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
  return f;
}

void net__tls_conf_unref(net_tls_conf *f) {
  if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1) return;
  net__tls_cache_free(f);
  mbedtls_ssl_config_free(&f->ssl);
  mbedtls_x509_crt_free(&f->ca);
  mbedtls_x509_crt_free(&f->cert);
  mbedtls_pk_free(&f->pk);
  for (int i = 0; f->alpn[i]; i++) net__free((char *)f->alpn[i]);
  for (int i = 0; i < CONF_FILES; i++) net__free(f->files[i].path);
  net__tls_cfg_free(f->cfg);
  net__free(f);
}

/* ---- jobs on the file lane ---------------------------------------------------------- */

static void load_job(net_job *job) {
  net_tls_conf *f = (net_tls_conf *)((char *)job - offsetof(net_tls_conf, job));
  load(f);
  net__tls_conf_unref(f);   /* the job's reference */
  net__engine_background_done();
}

static void check_job(net_job *job) {
  net_tls_conf *f = (net_tls_conf *)((char *)job - offsetof(net_tls_conf, job));
  if (files_changed(f)) atomic_store(&f->changed, 1);
  atomic_store(&f->checked_at, net__now_ms());
  atomic_store_explicit(&f->checking, 0, memory_order_release);   /* pairs with the I/O thread's acquire */
  net__tls_conf_unref(f);
  net__engine_background_done();
}

static bool submit(net_tls_conf *f, void (*run)(net_job *)) {
  f->job.run = run;
  net__tls_conf_ref(f);
  if (net__lane_submit(&file_lane, &f->job)) return true;
  net__tls_conf_unref(f);
  return false;
}

/* ---- the cache (I/O thread) ---------------------------------------------------------- */

static void cache_drop(net_tls_conf *f) {
  for (net_tls_conf **p = &confs; *p; p = &(*p)->next)
    if (*p == f) {
      *p = f->next;
      nconfs--;
      net__tls_conf_unref(f);
      return;
    }
}

/* Many one-off option sets: forget idle configurations, least recently used
 * first (the list runs from the most recently used; a configuration keeps
 * its resumable sessions, so the busy ones should stay). */
static void cache_trim(void) {
  while (nconfs >= MAX_CONFS) {
    net_tls_conf *idle = NULL;
    for (net_tls_conf *f = confs; f; f = f->next)
      if (atomic_load(&f->refs) == 1 && atomic_load(&f->state) != CONF_LOADING && !atomic_load(&f->checking))
        idle = f;
    if (!idle) return;
    cache_drop(idle);
  }
}

static net_tls_conf *cache_find(const net_tls_cfg *cfg, unsigned gen) {
  for (net_tls_conf **p = &confs; *p; p = &(*p)->next) {
    net_tls_conf *f = *p;
    if (f->gen == gen && f->cfg->keylen == cfg->keylen && memcmp(f->cfg->key, cfg->key, cfg->keylen) == 0) {
      *p = f->next;   /* to the front: most recently used */
      f->next = confs;
      confs = f;
      return f;
    }
  }
  return NULL;
}

static net_tls_conf *cache_add(net_tls_cfg *cfg, unsigned gen, net_error *err) {
  cache_trim();
  net_tls_conf *f = conf_new(cfg, gen);
  if (!f) return net__seterr(err, NET_E_LIMIT, "out of memory"), NULL;
  if (!submit(f, load_job)) {
    net__tls_conf_unref(f);
    return net__seterr(err, NET_E_LIMIT, "too many certificate files being read"), NULL;
  }
  f->next = confs;
  confs = f;
  nconfs++;
  return f;
}

/* What a ready configuration needs before use: nothing, a check of its
 * files, or (they changed) to be loaded afresh. */
static net_tls_conf *fresh(net_tls_conf *f, net_tls_cfg *cfg, bool *pending, net_error *err) {
  uint64_t now = net__now_ms();
  if (atomic_load(&f->changed)) {
    unsigned gen = f->gen;
    cache_drop(f);   /* connections using it keep it */
    f = cache_add(cfg, gen, err);
    *pending = f != NULL;
    return NULL;
  }
  if (now < atomic_load(&f->checked_at) + RECHECK_MS) return net__tls_conf_ref(f);
  atomic_store(&f->checking, 1);
  if (!submit(f, check_job)) {
    atomic_store(&f->checking, 0);
    return net__tls_conf_ref(f);   /* the lane is full: use it unchecked rather than fail */
  }
  *pending = true;
  return NULL;
}

net_tls_conf *net__tls_conf_get(net_tls_cfg *cfg, struct net_io *waiter, bool *pending, net_error *err) {
  bool default_cas = cfg->verify && !cfg->server && !cfg->ca_file && !cfg->ca_path;
  unsigned gen = default_cas ? net__tls_cacert_gen() : 0;
  net_tls_conf *f = cache_find(cfg, gen), *got = NULL;
  *pending = false;
  if (!f) {
    *pending = cache_add(cfg, gen, err) != NULL;
  } else if (atomic_load_explicit(&f->checking, memory_order_acquire)) {
    *pending = true;
  } else {
    /* acquire: pairs with the release in load; the fields are complete */
    int state = atomic_load_explicit(&f->state, memory_order_acquire);
    if (state == CONF_LOADING) *pending = true;
    else if (state == CONF_READY) got = fresh(f, cfg, pending, err);
    else if (net__now_ms() < atomic_load(&f->checked_at) + RETRY_MS) *err = f->err;
    else cache_drop(f), *pending = cache_add(cfg, gen, err) != NULL;
  }
  if (*pending) net__io_await_resolve(waiter);
  return got;
}
