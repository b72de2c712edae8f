/* tls_opts.c: TLS options copied from the caller (owner thread), each copy
 * keyed by its exact content, and the CA bundle setting (any thread). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "alloc.h"
#include "os.h"
#include "tls_priv.h"

int net_tls_has_13(void) { return HAVE_TLS13; }

/* ---- option copies (owner thread) --------------------------------------- */

static char *dup_opt(const char *s) { return s ? net__strdup(s) : NULL; }

static char *dup_or_fail(const char *s, bool *ok) {
  char *d = dup_opt(s);
  if (s && !d) *ok = false;
  return d;
}

net_tls_opts *net__tls_opts_dup(const net_tls_opts *t, bool *ok) {
  if (!t) return NULL;
  net_tls_opts *c = net__calloc(1, sizeof *c);
  if (!c) return *ok = false, NULL;
  *c = *t;
  c->server_name = dup_or_fail(t->server_name, ok);
  c->ca_file = dup_or_fail(t->ca_file, ok);
  c->ca_path = dup_or_fail(t->ca_path, ok);
  c->cert_file = dup_or_fail(t->cert_file, ok);
  c->key_file = dup_or_fail(t->key_file, ok);
  c->key_password = dup_or_fail(t->key_password, ok);
  c->pkcs12_file = dup_or_fail(t->pkcs12_file, ok);
  c->alpn = NULL;   /* the copies are for protocols that speak one of their own */
  return c;
}

void net__tls_opts_free(net_tls_opts *t) {
  if (!t) return;
  const char *s[] = {t->server_name, t->ca_file, t->ca_path, t->cert_file, t->key_file, t->pkcs12_file};
  for (size_t i = 0; i < sizeof s / sizeof *s; i++) net__free((char *)s[i]);
  net__free_secret_str((char *)t->key_password);
  net__free(t);
}

net_tls_cfg *net__tls_cfg_ref(const net_tls_cfg *cfg) {
  net_tls_cfg *c = (net_tls_cfg *)cfg;
  atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
  return c;
}

void net__tls_cfg_free(net_tls_cfg *cfg) {
  if (!cfg || atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) != 1) return;
  char **fields[] = {&cfg->server_name, &cfg->ca_file, &cfg->ca_path, &cfg->cert_file, &cfg->key_file};
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) net__free(*fields[i]);
  net__free_secret_str(cfg->key_password);
  for (int i = 0; cfg->alpn[i]; i++) net__free(cfg->alpn[i]);
  net__free_secret(cfg, sizeof *cfg + cfg->keylen);   /* the key holds the password too */
}

/* An option that names a file: absent, or a non-empty path. */
static bool bad_path(const char *p) { return p && !*p; }

/* mbedTLS (2.28 and 3.x) has PKCS#12 key derivation but no reader of
 * PKCS#12 files: say how to make the PEM files it reads. */
static const char *pkcs12_refused(const char *path) {
  static _Thread_local char msg[640];
  snprintf(msg, sizeof msg,
           "tls: pkcs12 is not supported (mbedTLS reads no PKCS#12 files); convert it to PEM with "
           "`openssl pkcs12 -in %.200s -out %.200s.pem -nodes` (add -legacy for old RC2-encrypted files) "
           "and use cert_file and key_file = that .pem",
           path, path);
  return msg;
}

/* Validates before any allocation, so errors need no clean-up. */
static const char *check_opts(const net_tls_opts *o, bool server, int *nalpn, net_err *code) {
  *nalpn = 0;
  *code = NET_E_INVALID;
  if (o->pkcs12_file) return pkcs12_refused(o->pkcs12_file);
  if (bad_path(o->ca_file) || bad_path(o->ca_path) || bad_path(o->cert_file) || bad_path(o->key_file))
    return "tls: a file option is an empty path";
  if (o->server_name && !*o->server_name) return "tls: server_name is empty";
  if (o->server_name && strlen(o->server_name) > 253) return "tls: server_name is longer than 253 bytes";
  if (server && o->server_name) return "tls: server_name is a client's (the name it checks)";
  if (o->key_password && !o->key_file) return "tls: key_password without key_file";
  if (server && (!o->cert_file || !o->key_file)) return "a TLS server needs cert_file and key_file";
  if (server && o->require_client_cert && !o->ca_file && !o->ca_path)
    return "verifying client certificates needs ca_file or ca_path";
  if (o->min_version && o->min_version != 12 && o->min_version != 13)
    return "min_version must be \"tls1.2\" or \"tls1.3\"";
  *code = NET_E_TLS;
  if (o->min_version == 13 && !HAVE_TLS13) return "tls: TLS 1.3 is not supported by this mbedTLS";
  *code = NET_E_INVALID;
  if ((o->cert_file == NULL) != (o->key_file == NULL)) return "cert_file and key_file go together";
  for (const char *const *p = o->alpn; p && *p; p++) {
    size_t n = strlen(*p);
    if (n == 0 || n > 255) return "alpn names must be 1..255 bytes";
    if (++*nalpn > MAX_ALPN) return "at most 16 alpn names";
  }
  return NULL;
}

/* Appends one field as <length><bytes> (NULL as a length of all ones), so
 * that no two different option sets ever make the same key. */
static size_t key_put(char *key, size_t at, const char *s) {
  uint32_t n = s ? (uint32_t)strlen(s) : UINT32_MAX;
  if (key) memcpy(key + at, &n, sizeof n);
  at += sizeof n;
  if (s) {
    if (key) memcpy(key + at, s, n);
    at += n;
  }
  return at;
}

/* The key: every field a shared configuration depends on. NULL key: measures. */
static size_t make_key(char *key, const net_tls_opts *o, bool server, bool verify, int nalpn) {
  char head[4] = {server ? 'S' : 'C', verify ? 'V' : 'N', (char)o->min_version, o->no_resume ? 'F' : 'R'};
  size_t at = 0;
  if (key) memcpy(key, head, sizeof head);
  at += sizeof head;
  const char *fields[] = {o->ca_file, o->ca_path, o->cert_file, o->key_file, o->key_password};
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) at = key_put(key, at, fields[i]);
  for (int i = 0; i < nalpn; i++) at = key_put(key, at, o->alpn[i]);
  return at;
}

/* The name to check: server_name, else the host; an IP literal (either one)
 * is matched against the certificate's IP addresses and sends no SNI. */
static const char *checked_name(net_tls_cfg *cfg, const net_tls_opts *o, const char *host) {
  const char *name = o->server_name ? o->server_name : host;
  net_sockaddr sa;
  size_t n = strlen(name);
  if (n > 1 && name[n - 1] == '.') n--;   /* "127.0.0.1." is still the address, not a name */
  if (!net__ip_parse(name, n, &sa)) return name;
  bool v4 = sa.sa.sa_family == AF_INET;
  cfg->iplen = v4 ? 4 : 16;
  memcpy(cfg->ip, v4 ? (void *)&sa.in4.sin_addr : (void *)&sa.in6.sin6_addr, (size_t)cfg->iplen);
  return NULL;
}

static bool copy_strings(net_tls_cfg *cfg, const net_tls_opts *o, const char *name, int nalpn) {
  cfg->server_name = dup_opt(name);
  size_t n = cfg->server_name ? strlen(cfg->server_name) : 0;
  /* "host." is the same name, absolute: matched and sent in SNI without the dot (RFC 6066 3) */
  if (n > 1 && cfg->server_name[n - 1] == '.') cfg->server_name[n - 1] = '\0';
  cfg->ca_file = dup_opt(o->ca_file);
  cfg->ca_path = dup_opt(o->ca_path);
  cfg->cert_file = dup_opt(o->cert_file);
  cfg->key_file = dup_opt(o->key_file);
  cfg->key_password = dup_opt(o->key_password);
  bool ok = (!name || cfg->server_name) && (!o->ca_file || cfg->ca_file) &&
            (!o->ca_path || cfg->ca_path) && (!o->cert_file || cfg->cert_file) &&
            (!o->key_file || cfg->key_file) && (!o->key_password || cfg->key_password);
  for (int i = 0; i < nalpn && ok; i++) ok = (cfg->alpn[i] = net__strdup(o->alpn[i])) != NULL;
  return ok;
}

net_tls_cfg *net__tls_cfg_new(const net_tls_opts *o, const char *host, bool server,
                              const char **err, net_err *code) {
  static const net_tls_opts defaults;
  if (!o) o = &defaults;
  int nalpn;
  if ((*err = check_opts(o, server, &nalpn, code))) return NULL;
  bool verify = server ? o->require_client_cert != 0 : !o->no_verify;
  size_t keylen = make_key(NULL, o, server, verify, nalpn);
  net_tls_cfg *cfg = net__calloc(1, sizeof *cfg + keylen);
  *code = NET_E_LIMIT;
  if (!cfg) return *err = "out of memory", NULL;
  make_key(cfg->key, o, server, verify, nalpn);
  cfg->keylen = keylen;
  atomic_init(&cfg->refs, 1);
  cfg->server = server;
  cfg->verify = verify;
  cfg->resume = !o->no_resume;
  cfg->min_version = o->min_version ? o->min_version : 12;
  if (!copy_strings(cfg, o, server ? NULL : checked_name(cfg, o, host), nalpn)) {
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

static bool settings_init(void *unused) {
  (void)unused;
  return (settings_mx = net__mutex_new()) != NULL;
}

int net_set_cacert_path(const char *path) {
  char *copy = path ? net__strdup(path) : NULL;
  if ((path && !copy) || !net__once(&settings_once, settings_init, NULL)) {
    net__free(copy);
    return -1;
  }
  net__mutex_lock(settings_mx);
  net__free(cacert_set);
  cacert_set = copy;
  atomic_fetch_add(&cacert_gen, 1);
  net__mutex_unlock(settings_mx);
  return 0;
}

static bool exists(const char *path, bool dir) {
  net_file_info st;
  return path && *path && net__file_stat(path, true, &st) == 0 && st.kind == (dir ? NET_FILE_DIR : NET_FILE_REG);
}

bool net__tls_dir_list_next(const char **list, char *out, size_t len) {
  while (**list) {
    const char *at = *list, *end = strchr(at, DIR_LIST_SEP);
    size_t n = end ? (size_t)(end - at) : strlen(at);
    *list = end ? end + 1 : at + n;
    if (n > 0 && n < len) {
      memcpy(out, at, n);
      out[n] = '\0';
      return true;
    }
  }
  return false;
}

/* Whether a folder list names a folder that exists among its first
 * CA_DIRS_MAX entries (a folder whose name holds the separator is one). */
static bool any_folder(const char *list) {
  char one[4096];
  if (exists(list, true)) return true;
  for (int i = 0; i < CA_DIRS_MAX && net__tls_dir_list_next(&list, one, sizeof one); i++)
    if (exists(one, true)) return true;
  return false;
}

/* 1, or -1 and "" when it does not fit: a path cut short names another file. */
static int copy_path(char *buf, size_t len, const char *path) {
  if (strlen(path) < len) return memcpy(buf, path, strlen(path) + 1), 1;
  if (len) buf[0] = '\0';
  return -1;
}

/* Where verification gets its CAs: the path set, else SSL_CERT_FILE and
 * SSL_CERT_DIR as OpenSSL-based programs honour them (exclusively, like
 * OpenSSL; both when both exist), else the usual places on Linux and the
 * BSDs. Only stat()s.
 * Windows has no such place: with none of these set, its ROOT store is used
 * (trust_win.c). *unusable names the variables when they are set but name
 * nothing there: then nothing else is to be trusted instead. */
int net__tls_cacert_find(char *buf, size_t len, char *dir, size_t dirlen, const char **unusable) {
#ifdef _WIN32
  static const char *const files[] = {NULL};
  static const char *const dirs[] = {NULL};
#else
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
#endif
  const char *found = NULL;
  *unusable = NULL;
  if (dir && dirlen) dir[0] = '\0';
  if (!net__once(&settings_once, settings_init, NULL)) return 0;
  net__mutex_lock(settings_mx);
  if (cacert_set) {
    int r = copy_path(buf, len, cacert_set);
    net__mutex_unlock(settings_mx);
    return r;
  }
  net__mutex_unlock(settings_mx);
  /* UTF-8 on Windows too, where getenv would give the code page's bytes */
  char env_file[4096], env_dir[4096];
  int nf = net__os_env("SSL_CERT_FILE", env_file, sizeof env_file);
  int nd = net__os_env("SSL_CERT_DIR", env_dir, sizeof env_dir);
  if (nf || nd) {
    bool file = nf > 0 && exists(env_file, false), folder = nd > 0 && any_folder(env_dir);
    found = file ? env_file : folder ? env_dir : NULL;
    if (!found) *unusable = nf && nd ? "SSL_CERT_FILE and SSL_CERT_DIR" : nf ? "SSL_CERT_FILE" : "SSL_CERT_DIR";
    if (file && folder && dir && copy_path(dir, dirlen, env_dir) < 0) dir[0] = '\0';   /* OpenSSL trusts both */
  } else {
    for (size_t i = 0; !found && i < sizeof files / sizeof *files; i++)
      if (exists(files[i], false)) found = files[i];   /* exists(NULL): false */
    for (size_t i = 0; !found && i < sizeof dirs / sizeof *dirs; i++)
      if (exists(dirs[i], true)) found = dirs[i];
  }
  return found ? copy_path(buf, len, found) : 0;
}

int net_get_cacert_path(char *buf, size_t len) {
  const char *unusable;
  return net__tls_cacert_find(buf, len, NULL, 0, &unusable);
}

int net_get_cacert_dir(char *buf, size_t len) {
  char file[1], dir[4096];   /* the bundle's path is not wanted; SSL_CERT_DIR fits in 4096 */
  const char *unusable;
  dir[0] = '\0';
  /* without SSL_CERT_DIR there is none: no second search of the system's places */
  if (net__os_env("SSL_CERT_DIR", dir, sizeof dir) > 0)
    net__tls_cacert_find(file, sizeof file, dir, sizeof dir, &unusable);
  if (dir[0]) return copy_path(buf, len, dir);
  if (len) buf[0] = '\0';
  return 0;
}

unsigned net__tls_cacert_gen(void) { return atomic_load(&cacert_gen); }
