/* tls.c: TLS over mbedTLS: option copies (owner thread), the CA path setting
 * (any thread), and on the I/O thread the shared configurations, the lazily
 * parsed CA store, and each connection's handshake and record I/O. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#include <psa/crypto.h>
#endif

#include "alloc.h"
#include "err.h"
#include "os.h"
#include "sock.h"
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
#define MAX_CONFS 32

int net_tls_has_13(void) { return HAVE_TLS13; }

/* ---- option copies (owner thread) --------------------------------------- */

struct net_tls_cfg {
  atomic_int refs;              /* a server shares its own with every accepted connection */
  bool server;
  bool verify;                  /* servers: require and check a client certificate */
  int min_version;
  int iplen;                    /* > 0: the host is an IP literal checked against IP SANs */
  unsigned char ip[16];
  char *server_name;            /* SNI and checked name; NULL for IP literals */
  char *ca_file, *ca_path, *cert_file, *key_file, *key_password;
  char *alpn[MAX_ALPN + 1];
  char key[];                   /* the fields a shared configuration depends on */
};

static char *dup_opt(const char *s) { return s ? net__strdup(s) : NULL; }

net_tls_cfg *net__tls_cfg_ref(const net_tls_cfg *cfg) {
  net_tls_cfg *c = (net_tls_cfg *)cfg;
  atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
  return c;
}

void net__tls_cfg_free(net_tls_cfg *cfg) {
  if (!cfg || atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) != 1) return;
  char **fields[] = {&cfg->server_name, &cfg->ca_file, &cfg->ca_path,
                     &cfg->cert_file, &cfg->key_file, &cfg->key_password};
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) net__free(*fields[i]);
  for (int i = 0; cfg->alpn[i]; i++) net__free(cfg->alpn[i]);
  net__free(cfg);
}

/* Validates before any allocation, so errors need no clean-up. */
static const char *check_opts(const net_tls_opts *o, bool server, int *nalpn) {
  *nalpn = 0;
  if (server && (!o->cert_file || !o->key_file)) return "a TLS server needs cert_file and key_file";
  if (server && o->require_client_cert && !o->ca_file && !o->ca_path)
    return "verifying client certificates needs ca_file or ca_path";
  if (o->min_version && o->min_version != 12 && o->min_version != 13)
    return "min_version must be \"tls1.2\" or \"tls1.3\"";
  if (o->min_version == 13 && !HAVE_TLS13) return "tls: TLS 1.3 is not supported by this mbedTLS";
  if ((o->cert_file == NULL) != (o->key_file == NULL))
    return "cert_file and key_file go together";
  for (const char *const *p = o->alpn; p && *p; p++) {
    size_t n = strlen(*p);
    if (n == 0 || n > 255) return "alpn names must be 1..255 bytes";
    if (++*nalpn > MAX_ALPN) return "at most 16 alpn names";
  }
  return NULL;
}

static bool parse_ip(const char *host, unsigned char ip[16], int *len) {
  char buf[NET_IP_MAX];
  size_t n = strlen(host);
  if (n >= sizeof buf) return false;
  memcpy(buf, host, n + 1);
  if (n > 2 && buf[0] == '[' && buf[n - 1] == ']') {
    memmove(buf, buf + 1, n - 2);
    buf[n - 2] = '\0';
  }
  if (inet_pton(AF_INET, buf, ip) == 1) return *len = 4, true;
  if (inet_pton(AF_INET6, buf, ip) == 1) return *len = 16, true;
  return false;
}

net_tls_cfg *net__tls_cfg_new(const net_tls_opts *o, const char *host, bool server,
                              const char **err) {
  static const net_tls_opts defaults;
  if (!o) o = &defaults;
  int nalpn;
  if ((*err = check_opts(o, server, &nalpn))) return NULL;
  bool verify = server ? o->require_client_cert != 0 : !o->no_verify;
  char key[4096];
  int kn = snprintf(key, sizeof key, "%s|%d|%d|%s|%s|%s|%s|%s", server ? "S" : "C", verify, o->min_version,
                    o->ca_file ? o->ca_file : "", o->ca_path ? o->ca_path : "",
                    o->cert_file ? o->cert_file : "", o->key_file ? o->key_file : "",
                    o->key_password ? o->key_password : "");
  for (int i = 0; i < nalpn && kn > 0 && (size_t)kn < sizeof key; i++)
    kn += snprintf(key + kn, sizeof key - (size_t)kn, "|%s", o->alpn[i]);
  if (kn < 0 || (size_t)kn >= sizeof key) return *err = "tls options are too long", NULL;
  net_tls_cfg *cfg = net__calloc(1, sizeof *cfg + (size_t)kn + 1);
  if (!cfg) return *err = "out of memory", NULL;
  memcpy(cfg->key, key, (size_t)kn + 1);
  atomic_init(&cfg->refs, 1);
  cfg->server = server;
  cfg->verify = verify;
  cfg->min_version = o->min_version ? o->min_version : 12;
  const char *name = o->server_name;
  if (!server && !name && !parse_ip(host, cfg->ip, &cfg->iplen)) name = host;
  cfg->server_name = dup_opt(name);
  cfg->ca_file = dup_opt(o->ca_file);
  cfg->ca_path = dup_opt(o->ca_path);
  cfg->cert_file = dup_opt(o->cert_file);
  cfg->key_file = dup_opt(o->key_file);
  cfg->key_password = dup_opt(o->key_password);
  bool ok = (!name || cfg->server_name) && (!o->ca_file || cfg->ca_file) &&
            (!o->ca_path || cfg->ca_path) && (!o->cert_file || cfg->cert_file) &&
            (!o->key_file || cfg->key_file) && (!o->key_password || cfg->key_password);
  for (int i = 0; i < nalpn && ok; i++) ok = (cfg->alpn[i] = net__strdup(o->alpn[i])) != NULL;
  if (!ok) {
    net__tls_cfg_free(cfg);
    return *err = "out of memory", NULL;
  }
  return cfg;
}

/* ---- the CA bundle setting (any thread) --------------------------------- */

static char *cacert_set;           /* guarded by settings_mx */
static atomic_uint cacert_gen;     /* bumped by every set: configs built earlier go stale */
static net_mutex *settings_mx;     /* owners and the I/O thread, for a string copy only */
static atomic_int settings_once;

static bool settings_init(void) { return (settings_mx = net__mutex_new()) != NULL; }

void net_set_cacert_path(const char *path) {
  char *copy = path ? net__strdup(path) : NULL;
  if (!net__once(&settings_once, settings_init)) {
    net__free(copy);
    return;
  }
  net__mutex_lock(settings_mx);
  net__free(cacert_set);
  cacert_set = copy;
  atomic_fetch_add(&cacert_gen, 1);
  net__mutex_unlock(settings_mx);
}

static bool exists(const char *path, bool dir) {
  struct stat st;
  return path && *path && stat(path, &st) == 0 && (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
}

/* Where verification gets its CAs: the path set, else SSL_CERT_FILE or
 * SSL_CERT_DIR as OpenSSL-based programs honour them (exclusively, like
 * OpenSSL), else the usual places on Linux and the BSDs. Only stat()s. */
int net_get_cacert_path(char *buf, size_t len) {
  static const char *const files[] = {
      "/etc/ssl/certs/ca-certificates.crt",   /* Debian, Ubuntu, Arch, Gentoo */
      "/etc/pki/tls/certs/ca-bundle.crt",     /* Fedora, RHEL */
      "/etc/ssl/ca-bundle.pem",               /* openSUSE */
      "/etc/pki/tls/cacert.pem",              /* OpenELEC */
      "/etc/ssl/cert.pem",                    /* Alpine, OpenBSD, macOS */
      "/usr/local/share/certs/ca-root-nss.crt",   /* FreeBSD */
      "/usr/local/etc/ssl/cert.pem",          /* FreeBSD */
      "/etc/certs/ca-certificates.crt",
  };
  static const char *const dirs[] = {"/etc/ssl/certs", "/etc/pki/tls/certs",
                                     "/system/etc/security/cacerts"};
  const char *found = NULL;
  if (!net__once(&settings_once, settings_init)) return 0;
  net__mutex_lock(settings_mx);
  if (cacert_set) {
    snprintf(buf, len, "%s", cacert_set);
    net__mutex_unlock(settings_mx);
    return 1;
  }
  net__mutex_unlock(settings_mx);
  const char *env_file = getenv("SSL_CERT_FILE"), *env_dir = getenv("SSL_CERT_DIR");
  if ((env_file && *env_file) || (env_dir && *env_dir)) {
    found = exists(env_file, false) ? env_file : exists(env_dir, true) ? env_dir : NULL;
  } else {
    for (size_t i = 0; !found && i < sizeof files / sizeof *files; i++)
      if (exists(files[i], false)) found = files[i];
    for (size_t i = 0; !found && i < sizeof dirs / sizeof *dirs; i++)
      if (exists(dirs[i], true)) found = dirs[i];
  }
  if (!found) return 0;
  snprintf(buf, len, "%s", found);
  return 1;
}

/* ---- shared state (I/O thread) ------------------------------------------ */

static bool rng_ready;
static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;

typedef struct ca_store {
  int refs;
  unsigned gen;
  int count;
  mbedtls_x509_crt chain;
  char path[PATH_MAX];
} ca_store;
static ca_store *default_ca;

typedef struct conf {
  struct conf *next;
  int refs;
  unsigned gen;                  /* cacert_gen it was built for (default CA only) */
  ca_store *ca;                  /* default or own CAs */
  mbedtls_ssl_config ssl;
  mbedtls_x509_crt cert;
  mbedtls_pk_context pk;
  const char *alpn[MAX_ALPN + 1];   /* owned copies: confs outlive connections */
  char key[];
} conf;
static conf *confs;
static int nconfs;

struct net_tls {
  mbedtls_ssl_context ssl;
  conf *conf;
  const net_tls_cfg *cfg;
  int fd;
  int want;
  int sys_errno;
  bool self_signed;             /* the leaf names itself as issuer */
  char where[96];
};

static bool rng_init(void) {
  if (rng_ready) return true;
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  if (psa_crypto_init() != PSA_SUCCESS) return false;   /* TLS 1.3 and PSA-backed keys need it */
#endif
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  static const unsigned char who[] = "sluice";
  if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, who, sizeof who) != 0) {
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    return false;
  }
  return rng_ready = true;
}

static void ca_unref(ca_store *ca) {
  if (!ca || --ca->refs > 0) return;
  mbedtls_x509_crt_free(&ca->chain);
  net__free(ca);
}

/* Parses a PEM/DER file or a directory of them; count is how many certs loaded. */
static ca_store *ca_load(const char *path, bool dir) {
  ca_store *ca = net__calloc(1, sizeof *ca);
  if (!ca) return NULL;
  ca->refs = 1;
  mbedtls_x509_crt_init(&ca->chain);
  snprintf(ca->path, sizeof ca->path, "%s", path);
  int r = dir ? mbedtls_x509_crt_parse_path(&ca->chain, path)
              : mbedtls_x509_crt_parse_file(&ca->chain, path);
  if (r >= 0)   /* a positive value counts certificates it skipped */
    for (mbedtls_x509_crt *c = &ca->chain; c && c->raw.len; c = c->next) ca->count++;
  return ca;
}

static ca_store *default_ca_get(unsigned gen) {
  if (default_ca && default_ca->gen == gen) return default_ca;
  ca_unref(default_ca);
  default_ca = NULL;
  char path[PATH_MAX];
  if (net_get_cacert_path(path, sizeof path)) {
    struct stat st;
    default_ca = ca_load(path, stat(path, &st) == 0 && S_ISDIR(st.st_mode));
  } else if ((default_ca = net__calloc(1, sizeof *default_ca))) {
    default_ca->refs = 1;
    mbedtls_x509_crt_init(&default_ca->chain);
  }
  if (default_ca) default_ca->gen = gen;
  return default_ca;
}

static void conf_unref(conf *f) {
  if (!f || --f->refs > 0) return;
  for (conf **p = &confs; *p; p = &(*p)->next)
    if (*p == f) {
      *p = f->next;
      nconfs--;
      break;
    }
  mbedtls_ssl_config_free(&f->ssl);
  mbedtls_x509_crt_free(&f->cert);
  mbedtls_pk_free(&f->pk);
  ca_unref(f->ca);
  for (int i = 0; f->alpn[i]; i++) net__free((char *)f->alpn[i]);
  net__free(f);
}

static void tls_err(net_error *e, net_err code, const char *where, const char *what, int r) {
  char buf[128];
  mbedtls_strerror(r, buf, sizeof buf);
  net__seterr(e, code, "%s: %s: %s", where, what, buf);
}

static void file_err(net_error *e, const char *where, const char *field, const char *path, int r) {
  char buf[128];
  mbedtls_strerror(r, buf, sizeof buf);
  net__seterr(e, NET_E_TLS, "%s: cannot load %s %s: %s", where, field, path, buf);
}

static bool conf_load_files(conf *f, const net_tls_cfg *cfg, const char *where, net_error *e) {
  if (cfg->ca_file || cfg->ca_path) {
    f->ca = ca_load(cfg->ca_file ? cfg->ca_file : cfg->ca_path, !cfg->ca_file);
    if (!f->ca) return net__seterr(e, NET_E_LIMIT, "%s: out of memory", where), false;
    if (f->ca->count == 0) {
      net__seterr(e, NET_E_TLS, "%s: no CA certificate could be read from %s", where, f->ca->path);
      return false;
    }
  }
  if (cfg->cert_file) {
    int r = mbedtls_x509_crt_parse_file(&f->cert, cfg->cert_file);
    if (r != 0) return file_err(e, where, "cert_file", cfg->cert_file, r), false;
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    r = mbedtls_pk_parse_keyfile(&f->pk, cfg->key_file, cfg->key_password,
                                 mbedtls_ctr_drbg_random, &drbg);
#else
    r = mbedtls_pk_parse_keyfile(&f->pk, cfg->key_file, cfg->key_password);
#endif
    if (r == MBEDTLS_ERR_PK_PASSWORD_MISMATCH || r == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
      net__seterr(e, NET_E_TLS, "%s: cannot load key_file %s: %s", where, cfg->key_file,
                  cfg->key_password ? "wrong key_password" : "it is encrypted and key_password is not set");
      return false;
    }
    if (r != 0) return file_err(e, where, "key_file", cfg->key_file, r), false;
    if ((r = mbedtls_ssl_conf_own_cert(&f->ssl, &f->cert, &f->pk)) != 0)
      return tls_err(e, NET_E_TLS, where, "certificate and key", r), false;
  }
  return true;
}

static bool conf_setup(conf *f, const net_tls_cfg *cfg, const char *where, net_error *e) {
  int r = mbedtls_ssl_config_defaults(&f->ssl, cfg->server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                      MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
  if (r != 0) return tls_err(e, NET_E_TLS, where, "configuration", r), false;
  mbedtls_ssl_conf_rng(&f->ssl, mbedtls_ctr_drbg_random, &drbg);
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  mbedtls_ssl_conf_min_tls_version(&f->ssl, cfg->min_version == 13 ? MBEDTLS_SSL_VERSION_TLS1_3
                                                                  : MBEDTLS_SSL_VERSION_TLS1_2);
#else
  mbedtls_ssl_conf_min_version(&f->ssl, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
  if (!conf_load_files(f, cfg, where, e)) return false;
  if (cfg->verify) {
    if (!f->ca && !cfg->server) {
      f->ca = default_ca_get(f->gen);
      if (f->ca) f->ca->refs++;
    }
    if (!f->ca || f->ca->count == 0) {
      net__seterr(e, NET_E_TLS_VERIFY,
                  "%s: no CA certificates found to verify the server; call "
                  "net.set_cacert_path(path) or pass {verify = false}", where);
      return false;
    }
    mbedtls_ssl_conf_authmode(&f->ssl, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&f->ssl, &f->ca->chain, NULL);
  } else {
    mbedtls_ssl_conf_authmode(&f->ssl, MBEDTLS_SSL_VERIFY_NONE);
  }
  for (int i = 0; cfg->alpn[i]; i++)
    if (!(f->alpn[i] = net__strdup(cfg->alpn[i])))
      return net__seterr(e, NET_E_LIMIT, "%s: out of memory", where), false;
  if (f->alpn[0] && mbedtls_ssl_conf_alpn_protocols(&f->ssl, f->alpn) != 0)
    return net__seterr(e, NET_E_TLS, "%s: bad alpn list", where), false;
  return true;
}

/* Configurations are shared by every connection with the same options (and,
 * for the default CAs, the same cacert setting). A failed one is not kept, so
 * fixing a file and reconnecting works. */
static conf *conf_get(const net_tls_cfg *cfg, const char *where, net_error *e) {
  unsigned gen = (cfg->verify && !cfg->server && !cfg->ca_file && !cfg->ca_path)
                     ? atomic_load(&cacert_gen) : 0;
  for (conf *f = confs; f; f = f->next)
    if (f->gen == gen && strcmp(f->key, cfg->key) == 0) return f->refs++, f;
  if (nconfs >= MAX_CONFS)   /* many one-off option sets: drop the idle ones */
    for (conf *f = confs, *next; f; f = next) {
      next = f->next;
      if (f->refs == 1) conf_unref(f);
    }
  size_t klen = strlen(cfg->key);
  conf *f = net__calloc(1, sizeof *f + klen + 1);
  if (!f) return net__seterr(e, NET_E_LIMIT, "%s: out of memory", where), NULL;
  memcpy(f->key, cfg->key, klen + 1);
  f->refs = 1;
  f->gen = gen;
  mbedtls_ssl_config_init(&f->ssl);
  mbedtls_x509_crt_init(&f->cert);
  mbedtls_pk_init(&f->pk);
  f->next = confs;
  confs = f;
  nconfs++;
  if (!conf_setup(f, cfg, where, e)) {
    conf_unref(f);
    return NULL;
  }
  f->refs++;   /* the list's reference keeps it for the next connection */
  return f;
}

/* ---- one connection ----------------------------------------------------- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len) {
  net_tls *t = ctx;
  for (;;) {
    ssize_t n = send(t->fd, buf, len, NET_SEND_FLAGS);
    if (n >= 0) return (int)n;
    if (errno == EINTR) continue;
    if (net_sock_would_block(errno)) return MBEDTLS_ERR_SSL_WANT_WRITE;
    t->sys_errno = errno;
    return MBEDTLS_ERR_NET_SEND_FAILED;
  }
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len) {
  net_tls *t = ctx;
  for (;;) {
    ssize_t n = recv(t->fd, buf, len, 0);
    if (n >= 0) return (int)n;   /* 0: the peer's FIN, which mbedTLS reports as EOF */
    if (errno == EINTR) continue;
    if (net_sock_would_block(errno)) return MBEDTLS_ERR_SSL_WANT_READ;
    t->sys_errno = errno;
    return MBEDTLS_ERR_NET_RECV_FAILED;
  }
}

/* Whether the certificate lists ip among its subjectAltName iPAddress entries.
 * Parsed by hand: mbedTLS 2.28 keeps only dNSName entries. */
static bool san_has_ip(const mbedtls_x509_crt *crt, const unsigned char *ip, int iplen) {
  unsigned char *p = crt->v3_ext.p, *end = p + crt->v3_ext.len;
  size_t len;
  if (!p) return false;
  if (p < end && *p == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 3)) {
    if (mbedtls_asn1_get_tag(&p, end, &len, *p) != 0) return false;
    end = p + len;
  }
  if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) return false;
  end = p + len;
  while (p < end) {
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) return false;
    unsigned char *ext_end = p + len;
    if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OID)) return false;
    bool san = len == 3 && memcmp(p, "\x55\x1d\x11", 3) == 0;   /* 2.5.29.17 */
    p += len;
    int critical;
    mbedtls_asn1_get_bool(&p, ext_end, &critical);   /* optional: leaves p alone if absent */
    if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING)) return false;
    unsigned char *q = p, *q_end = p + len;
    p = ext_end;
    if (!san || mbedtls_asn1_get_tag(&q, q_end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
      continue;
    for (q_end = q + len; q < q_end;) {
      unsigned char tag = *q++;
      if (mbedtls_asn1_get_len(&q, q_end, &len)) return false;
      if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && len == (size_t)iplen && !memcmp(q, ip, len))
        return true;
      q += len;
    }
  }
  return false;
}

/* Runs for each certificate of the chain; notes what the error message needs
 * and checks IP literals, which mbedTLS 2.28 cannot match itself. */
static int verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags) {
  net_tls *t = ctx;
  if (depth != 0) return 0;
  t->self_signed = crt->issuer_raw.len == crt->subject_raw.len &&
                   !memcmp(crt->issuer_raw.p, crt->subject_raw.p, crt->issuer_raw.len);
  if (t->cfg->iplen && !san_has_ip(crt, t->cfg->ip, t->cfg->iplen))
    *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
  return 0;
}

net_tls *net__tls_new(const net_tls_cfg *cfg, int fd, const char *where, net_error *e) {
  if (!rng_init()) return net__seterr(e, NET_E_TLS, "%s: cannot seed the random generator", where), NULL;
  net_tls *t = net__calloc(1, sizeof *t);
  if (!t) return net__seterr(e, NET_E_LIMIT, "%s: out of memory", where), NULL;
  snprintf(t->where, sizeof t->where, "%s", where);
  t->cfg = cfg;
  t->fd = fd;
  mbedtls_ssl_init(&t->ssl);
  t->conf = conf_get(cfg, where, e);
  int r = 0;
  if (!t->conf || (r = mbedtls_ssl_setup(&t->ssl, &t->conf->ssl)) != 0 ||
      (!cfg->server && (r = mbedtls_ssl_set_hostname(&t->ssl, cfg->server_name)) != 0)) {
    if (r) tls_err(e, NET_E_TLS, where, "setup", r);
    net__tls_free(t);
    return NULL;
  }
  if (cfg->verify && !cfg->server) mbedtls_ssl_set_verify(&t->ssl, verify_cb, t);
  mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
  return t;
}

void net__tls_free(net_tls *t) {
  if (!t) return;
  mbedtls_ssl_free(&t->ssl);
  conf_unref(t->conf);
  net__free(t);
}

/* ---- errors --------------------------------------------------------------- */

static const char *alert_name(int a) {
  switch (a) {
    case 10: return "unexpected message";
    case 20: return "bad record mac";
    case 40: return "handshake failure";
    case 42: return "bad certificate";
    case 43: return "unsupported certificate";
    case 44: return "certificate revoked";
    case 45: return "certificate expired";
    case 46: return "certificate unknown";
    case 47: return "illegal parameter";
    case 48: return "unknown CA";
    case 49: return "access denied";
    case 50: return "decode error";
    case 51: return "decrypt error";
    case 70: return "protocol version";
    case 71: return "insufficient security";
    case 80: return "internal error";
    case 112: return "unrecognized name";
    case 116: return "certificate required";
    case 120: return "no application protocol";
    default: return NULL;
  }
}

/* "certificate not trusted (expired, wrong name: ...)": what a user can act on. */
static void verify_error(net_tls *t, net_error *e) {
  uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
  char why[NET_ERRMSG_MAX] = "";
  size_t n = 0;
#define ADD(...) n += (size_t)snprintf(why + n, n < sizeof why ? sizeof why - n : 0, __VA_ARGS__)
  if (flags & MBEDTLS_X509_BADCERT_EXPIRED) ADD("%sexpired", n ? ", " : "");
  if (flags & MBEDTLS_X509_BADCERT_FUTURE) ADD("%snot yet valid", n ? ", " : "");
  if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
    char ip[NET_IP_MAX] = "";
    if (t->cfg->iplen) inet_ntop(t->cfg->iplen == 4 ? AF_INET : AF_INET6, t->cfg->ip, ip, sizeof ip);
    ADD("%swrong name: certificate is not for %s", n ? ", " : "",
        t->cfg->server_name ? t->cfg->server_name : ip);
  }
  if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
    ADD("%s%s", n ? ", " : "", t->self_signed ? "self-signed" : "unknown CA");
  if (flags & MBEDTLS_X509_BADCERT_REVOKED) ADD("%srevoked", n ? ", " : "");
  if (flags & (MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE))
    ADD("%snot meant for TLS servers", n ? ", " : "");
  if (flags & (MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK | MBEDTLS_X509_BADCERT_BAD_KEY))
    ADD("%sweak key or signature", n ? ", " : "");
  if (!n) ADD("verification failed");
#undef ADD
  net__seterr(e, NET_E_TLS_VERIFY, "%s: certificate not trusted (%s)", t->where, why);
}

static void describe(net_tls *t, int r, bool handshake, net_error *e) {
  char buf[128];
  const char *stage = handshake ? "handshake failed" : "record error";
  switch (r) {
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
      verify_error(t, e);
      return;
    case MBEDTLS_ERR_NET_SEND_FAILED:
    case MBEDTLS_ERR_NET_RECV_FAILED:
      net__seterr(e, net__errno_code(t->sys_errno), "%s: %s: %s", t->where,
                  r == MBEDTLS_ERR_NET_SEND_FAILED ? "send" : "recv",
                  net__errstr(t->sys_errno, buf, sizeof buf));
      return;
    case 0:
    case MBEDTLS_ERR_SSL_CONN_EOF:
      net__seterr(e, NET_E_TLS, "%s: %s", t->where,
                  handshake ? "handshake failed: the peer closed the connection"
                            : "the peer closed the connection without close_notify (truncated)");
      return;
#if MBEDTLS_VERSION_NUMBER < 0x03000000
    case MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION:
#else
    case MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION:
#endif
      net__seterr(e, NET_E_TLS, "%s: %s: protocol version not supported by both sides", t->where, stage);
      return;
    case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE: {
#if MBEDTLS_VERSION_NUMBER < 0x03000000
      const char *a = t->ssl.in_msg ? alert_name(t->ssl.in_msg[1]) : NULL;
#else
      const char *a = NULL;
#endif
      net__seterr(e, NET_E_TLS, "%s: %s: the peer sent the alert \"%s\"", t->where, stage,
                  a ? a : "fatal");
      return;
    }
    default:
      tls_err(e, NET_E_TLS, t->where, stage, r);
  }
}

/* ---- handshake and records ---------------------------------------------- */

static int blocked(net_tls *t, int r) {
  if (r == MBEDTLS_ERR_SSL_WANT_READ) return t->want = NET_TLS_WANT_READ;
  if (r == MBEDTLS_ERR_SSL_WANT_WRITE) return t->want = NET_TLS_WANT_WRITE;
  return 0;
}

int net__tls_handshake(net_tls *t, net_error *e) {
  int r = mbedtls_ssl_handshake(&t->ssl);
  if (r == 0) return NET_TLS_DONE;
  if (blocked(t, r)) return t->want;
  describe(t, r, true, e);
  return NET_TLS_ERROR;
}

long net__tls_read(net_tls *t, void *buf, size_t len, net_error *e) {
  for (;;) {
    int r = mbedtls_ssl_read(&t->ssl, buf, len);
    if (r > 0) return r;
    if (blocked(t, r)) return 0;
#ifdef MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
    if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) continue;   /* TLS 1.3: not data, not an error */
#endif
    if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return NET_TLS_EOF;
    describe(t, r, false, e);
    return NET_TLS_ERROR;
  }
}

long net__tls_write(net_tls *t, const void *buf, size_t len, net_error *e) {
  int r = mbedtls_ssl_write(&t->ssl, buf, len);
  if (r >= 0) return r;
  if (blocked(t, r)) return 0;
  describe(t, r, false, e);
  return NET_TLS_ERROR;
}

int net__tls_close_notify(net_tls *t) {
  int r = mbedtls_ssl_close_notify(&t->ssl);
  return blocked(t, r) ? t->want : NET_TLS_DONE;   /* other failures: nothing left to say */
}

int net__tls_want(const net_tls *t) { return t->want; }

bool net__tls_pending(const net_tls *t) {
  return mbedtls_ssl_get_bytes_avail(&t->ssl) > 0 || mbedtls_ssl_check_pending(&t->ssl);
}

void net__tls_get_info(const net_tls *t, net_tls_info *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->version, sizeof out->version, "%s", mbedtls_ssl_get_version(&t->ssl));
  snprintf(out->cipher, sizeof out->cipher, "%s", mbedtls_ssl_get_ciphersuite(&t->ssl));
  const char *alpn = mbedtls_ssl_get_alpn_protocol(&t->ssl);
  if (alpn) snprintf(out->alpn, sizeof out->alpn, "%s", alpn);
  const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&t->ssl);
  if (peer && mbedtls_x509_dn_gets(out->peer_subject, sizeof out->peer_subject, &peer->subject) < 0)
    out->peer_subject[0] = '\0';
}
