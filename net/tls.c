/* tls.c: one connection's TLS session over mbedTLS: the handshake, records,
 * the certificate checks mbedTLS 2.28 cannot make itself, and failures in
 * words a user can act on. I/O thread only. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/asn1.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/sha256.h>

#include "alloc.h"
#include "err.h"
#include "sock.h"
#include "tls_priv.h"
#include "tls_rec.h"

struct net_tls {
  mbedtls_ssl_context ssl;
  net_tls_conf *conf;
  const net_tls_cfg *cfg;
  net_sock fd;
  int want;
  int sys_errno;
  bool self_signed;             /* the leaf names itself as issuer */
  bool ask_system;              /* roots from the system's store: its chain engine decides */
  bool no_root;                 /* mbedTLS found none of the store's roots */
  bool eof;                     /* recv saw the peer's FIN */
  size_t wrec;                  /* payload of our record waiting in the output buffer */
  bool notified;                /* close_notify made (maybe still waiting to go out) */
  net_tls_chain *chain;         /* its check, once the handshake is through */
  char where[96];
  size_t keylen;                /* clients: the session cache's name for this server */
  unsigned char key[NET_TLS_CACHE_KEY];
  net_tls_rec *rec;             /* our own record layer, once the handshake chose AES-GCM */
  net_tls_keys keys;            /* the handshake's, till own_records takes them */
};

static void tls_err(net_error *e, net_err code, const char *where, const char *what, int r) {
  char buf[128];
  mbedtls_strerror(r, buf, sizeof buf);
  net__seterr(e, code, "%s: %s: %s", where, what, buf);
}

/* ---- one connection ----------------------------------------------------- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len) {
  net_tls *t = ctx;
  for (;;) {
    ssize_t n = net_sock_send(t->fd, buf, len, NET_SEND_FLAGS);
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
    ssize_t n = net_sock_recv(t->fd, buf, len, 0);
    if (n == 0) t->eof = true;   /* the peer's FIN, which mbedTLS reports as EOF */
    if (n >= 0) return (int)n;
    if (errno == EINTR) continue;
    if (net_sock_would_block(errno)) return MBEDTLS_ERR_SSL_WANT_READ;
    t->sys_errno = errno;
    return MBEDTLS_ERR_NET_RECV_FAILED;
  }
}

/* Whether the certificate lists ip among its subjectAltName iPAddress entries.
 * Parsed by hand: mbedTLS 2.28 keeps only dNSName entries. */
bool net__tls_cert_has_ip(const mbedtls_x509_crt *crt, const unsigned char *ip, int iplen) {
  unsigned char *p = crt->v3_ext.p;
  if (!p) return false;   /* no extensions (and NULL + 0 would be undefined) */
  unsigned char *end = p + crt->v3_ext.len;
  size_t len;
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

/* pat (a dNSName, or a CN) names name: the same name in any case, or "*."
 * for its first label, but never directly under a top-level domain (RFC
 * 6125 6.4.3 as browsers and OpenSSL apply it; mbedTLS 2.28 lets "*.test"
 * name every host under .test). */
static bool names(const unsigned char *pat, size_t plen, const char *name) {
  size_t nlen = strlen(name);
  if (plen == nlen && !strncasecmp((const char *)pat, name, nlen)) return true;
  if (plen < 4 || pat[0] != '*' || pat[1] != '.' || !memchr(pat + 2, '.', plen - 2)) return false;
  const char *dot = strchr(name, '.');
  return dot && dot != name && nlen - (size_t)(dot - name) == plen - 1 &&
         !strncasecmp(dot, (const char *)pat + 1, plen - 1);
}

/* Whether the leaf is for name by the rule above: its dNSNames, else its CN. */
static bool cert_names(const mbedtls_x509_crt *crt, const char *name) {
  if (crt->subject_alt_names.buf.p) {
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s; s = s->next)
      if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2) && names(s->buf.p, s->buf.len, name)) return true;
    return false;
  }
  for (const mbedtls_x509_name *n = &crt->subject; n; n = n->next)
    if (!MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) && names(n->val.p, n->val.len, name)) return true;
  return false;
}

static bool is_self_signed(const mbedtls_x509_crt *crt) {
  return crt->issuer_raw.len == crt->subject_raw.len &&
         !memcmp(crt->issuer_raw.p, crt->subject_raw.p, crt->issuer_raw.len);
}

/* Runs for each certificate of the chain; notes what the error message needs
 * and checks IP literals, which mbedTLS 2.28 cannot match itself. */
static int verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags) {
  net_tls *t = ctx;
  if (t->cfg->server) {   /* a client's certificate: no name to check, only the failure to tell */
    if (depth == 0) t->self_signed = is_self_signed(crt);
    return 0;
  }
  /* roots from the system's store (Windows): its chain engine decides after
   * the handshake (net__tls_handshake). It may fetch a root the store lacks,
   * and it knows what the store's certificates alone do not say: roots
   * restricted or disabled for servers, the Disallowed store. */
  if (t->conf->ca_store) {
    if (*flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) t->no_root = true;
    *flags &= ~(uint32_t)MBEDTLS_X509_BADCERT_NOT_TRUSTED;
    t->ask_system = true;
  }
  if (depth != 0) return 0;
  t->self_signed = is_self_signed(crt);
  if (t->cfg->iplen && !net__tls_cert_has_ip(crt, t->cfg->ip, t->cfg->iplen))
    *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
  if (!t->cfg->server && t->cfg->server_name && !(*flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) &&
      !cert_names(crt, t->cfg->server_name))
    *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;   /* what mbedTLS matched too broadly */
  return 0;
}

/* A digest of the checked name (marked as a name or an IP), where the
 * connection goes (through a proxy: the target's host and port, and the
 * proxy) and the peer's address: a session is offered only to the server it
 * was made with. 0 when the address is unknown. */
static size_t cache_key(const net_tls_cfg *cfg, net_sock fd, const char *where, unsigned char *key) {
  struct sockaddr_storage sa;
  socklen_t salen = sizeof sa;
  if (net_sock_getpeername(fd, &sa, &salen) != 0 || (size_t)salen > sizeof sa) return 0;
  const unsigned char kind = cfg->server_name ? 'n' : 'i';
  mbedtls_sha256_context sha;
  mbedtls_sha256_init(&sha);
  mbedtls_sha256_starts_ret(&sha, 0);
  mbedtls_sha256_update_ret(&sha, &kind, 1);
  if (cfg->server_name) mbedtls_sha256_update_ret(&sha, (const unsigned char *)cfg->server_name, strlen(cfg->server_name) + 1);
  else mbedtls_sha256_update_ret(&sha, cfg->ip, (size_t)cfg->iplen);
  mbedtls_sha256_update_ret(&sha, (const unsigned char *)where, strlen(where) + 1);
  mbedtls_sha256_update_ret(&sha, (const unsigned char *)&sa, (size_t)salen);
  mbedtls_sha256_finish_ret(&sha, key);
  mbedtls_sha256_free(&sha);
  return NET_TLS_CACHE_KEY;
}

net_tls *net__tls_new(net_tls_conf *conf, const net_tls_cfg *cfg, net_sock fd, const char *where,
                      net_error *e) {
  net_tls *t = net__calloc(1, sizeof *t);
  if (!t) return net__seterr(e, NET_E_LIMIT, "%s: out of memory", where), NULL;
  snprintf(t->where, sizeof t->where, "%s", where);
  t->cfg = cfg;
  t->fd = fd;
  mbedtls_ssl_init(&t->ssl);
  t->conf = net__tls_conf_ref(conf);
  int r = mbedtls_ssl_setup(&t->ssl, &conf->ssl);
  if (r == 0 && !cfg->server) r = mbedtls_ssl_set_hostname(&t->ssl, cfg->server_name);
  if (r != 0) {
    tls_err(e, NET_E_TLS, where, "setup", r);
    net__tls_free(t);
    return NULL;
  }
  if (cfg->verify) mbedtls_ssl_set_verify(&t->ssl, verify_cb, t);
  mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
  if (!cfg->server && cfg->resume && (t->keylen = cache_key(cfg, fd, where, t->key)))
    net__tls_cache_resume(conf, &t->ssl, t->key, t->keylen);
  return t;
}

void net__tls_free(net_tls *t) {
  if (!t) return;
  net__tls_chain_unref(t->chain);
  net__tls_rec_free(t->rec);
  net__wipe(&t->keys, sizeof t->keys);
  mbedtls_ssl_free(&t->ssl);
  net__tls_conf_unref(t->conf);
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
    ADD("%snot meant for TLS %s", n ? ", " : "", t->cfg->server ? "clients" : "servers");
  if (flags & (MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK | MBEDTLS_X509_BADCERT_BAD_KEY))
    ADD("%sweak key or signature", n ? ", " : "");
  if (!n) ADD("verification failed");
  if (t->conf->ca_store) ADD(", checked against %s", t->conf->ca_store);
#undef ADD
  net__seterr(e, NET_E_TLS_VERIFY, "%s: certificate not trusted (%s)", t->where, why);
}

static void describe(net_tls *t, int r, bool handshake, net_error *e) {
  char buf[128];
  const char *stage = handshake ? "handshake failed" : "record error";
  uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
  switch (r) {
#if MBEDTLS_VERSION_NUMBER < 0x03000000
    case MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE:   /* a chain that verified, but for another use */
#else
    case MBEDTLS_ERR_SSL_BAD_CERTIFICATE:
#endif
      if (flags == (uint32_t)-1 || !(flags & (MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE)))
        break;
      /* fall through */
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
      verify_error(t, e);
      return;
    case MBEDTLS_ERR_NET_SEND_FAILED:
    case MBEDTLS_ERR_NET_RECV_FAILED:
      net__seterr(e, net__errno_code(t->sys_errno), "%s: %s: %s", t->where,
                  r == MBEDTLS_ERR_NET_SEND_FAILED ? "send" : "recv",
                  net__errstr(t->sys_errno, buf, sizeof buf));
      return;
    case MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE:
      if (!handshake) break;
      net__seterr(e, NET_E_TLS, "%s: %s: the peer needs what this mbedTLS lacks (most often a handshake "
                  "message split across TLS records, as a certificate chain over 16 KiB is)", t->where, stage);
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
      break;
  }
  tls_err(e, NET_E_TLS, t->where, stage, r);
}

/* ---- handshake and records ---------------------------------------------- */

static int blocked(net_tls *t, int r) {
  if (r == MBEDTLS_ERR_SSL_WANT_READ) return t->want = NET_TLS_WANT_READ;
  if (r == MBEDTLS_ERR_SSL_WANT_WRITE) return t->want = NET_TLS_WANT_WRITE;
  return 0;
}

/* ---- our own records ----------------------------------------------------- */

/* Takes the records over from mbedTLS when the suite is AES-GCM and mbedTLS
 * holds nothing received or to send: its sequence numbers go on in ours. */
static void own_records(net_tls *t) {
#ifdef NET_TLS_OWN_RECORDS
  const mbedtls_ssl_ciphersuite_t *cs = mbedtls_ssl_ciphersuite_from_string(mbedtls_ssl_get_ciphersuite(&t->ssl));
  bool gcm = cs && (cs->cipher == MBEDTLS_CIPHER_AES_128_GCM || cs->cipher == MBEDTLS_CIPHER_AES_256_GCM);
  if (t->keys.key && gcm && t->ssl.minor_ver == MBEDTLS_SSL_MINOR_VERSION_3 && !t->ssl.in_left &&
      !t->ssl.out_left && !mbedtls_ssl_check_pending(&t->ssl) && !mbedtls_ssl_get_bytes_avail(&t->ssl)) {
    int max = mbedtls_ssl_get_max_out_record_payload(&t->ssl);
    t->rec = net__tls_rec_new(t->cfg->server, t->keys.kb, t->keys.key, t->ssl.in_ctr, t->ssl.cur_out_ctr,
                              max > 0 ? (size_t)max : 0);   /* NULL (no memory): mbedTLS goes on */
  }
#endif
  net__wipe(&t->keys, sizeof t->keys);
}

static int handshake_step(net_tls *t) {
  net__tls_keys_catch(&t->keys);
  int r = mbedtls_ssl_handshake(&t->ssl);
  net__tls_keys_catch(NULL);
  return r;
}

/* Sends what our records hold (a refusal owed comes next): 0 once out,
 * else an mbedTLS error as bio_send gives. */
static int rec_flush(net_tls *t) {
  for (;;) {
    size_t left;
    const unsigned char *p = net__tls_rec_out(t->rec, &left);
    if (!left && !net__tls_rec_owed(t->rec)) return 0;
    if (!left) {
      net__tls_rec_seal(t->rec, 0, NULL, 0);
      continue;
    }
    int n = bio_send(t, p, left);
    if (n < 0) return n;
    net__tls_rec_sent(t->rec, (size_t)n);
  }
}

static long rec_failed(net_tls *t, const char *why, int alert, net_error *e) {
  if (!why) {
    const char *a = alert_name(alert);
    net__seterr(e, NET_E_TLS, "%s: record error: the peer sent the alert \"%s\"", t->where, a ? a : "fatal");
    return NET_TLS_ERROR;
  }
  size_t left;
  net__tls_rec_out(t->rec, &left);
  if (!left) {   /* our alert, if it can go at once */
    unsigned char fatal[2] = {2, (unsigned char)alert};
    net__tls_rec_seal(t->rec, 21, fatal, 2);
    rec_flush(t);
  }
  net__seterr(e, NET_E_TLS, "%s: record error: %s", t->where, why);
  return NET_TLS_ERROR;
}

static long rec_read(net_tls *t, unsigned char *buf, size_t len, net_error *e) {
  for (;;) {
    const char *why;
    int alert;
    long n = net__tls_rec_read(t->rec, buf, len, &why, &alert);
    if (net__tls_rec_owed(t->rec)) rec_flush(t);   /* else the next write or flush sends it */
    if (n > 0) return n;
    if (n == NET_TLS_REC_CLOSED) return NET_TLS_EOF;
    if (n == NET_TLS_REC_FAILED) return rec_failed(t, why, alert, e);
    size_t room;
    unsigned char *p = net__tls_rec_room(t->rec, &room);
    int got = bio_recv(t, p, room);
    if (got > 0) {
      net__tls_rec_got(t->rec, (size_t)got);
      continue;
    }
    if (blocked(t, got)) return 0;
    describe(t, got ? got : MBEDTLS_ERR_SSL_CONN_EOF, false, e);
    return NET_TLS_ERROR;
  }
}

/* mbedtls_ssl_write for our records: seals a record of buf's first bytes
 * and sends it, giving how many it took once out, else bio_send's error with
 * the record waiting (wrec). */
static int rec_put(net_tls *t, const unsigned char *buf, size_t len) {
  if (!len) return 0;
  size_t n = net__tls_rec_seal(t->rec, 23, buf, len);
  int r = rec_flush(t);
  if (r) t->wrec = n;
  return r ? r : (int)n;
}

static int handshake_done(net_tls *t) {
  if (t->keylen) net__tls_cache_store(t->conf, &t->ssl, t->key, t->keylen);
  own_records(t);
  return NET_TLS_DONE;
}

static int handshake_failed(net_tls *t) {
  if (t->keylen) net__tls_cache_forget(t->conf, t->key, t->keylen);   /* no second try with it */
  return NET_TLS_ERROR;
}

/* The system chain engine's verdict, asked for once the handshake is through
 * (nothing is sent or read meanwhile): NET_TLS_WANT_CHECK while it runs. */
static int system_verdict(net_tls *t, net_error *e) {
  char buf[NET_TLS_CHAIN_WHY];
  const char *why = buf;
  int r;
  if (!t->chain) {
    t->chain = net__tls_chain_start(mbedtls_ssl_get_peer_cert(&t->ssl), t->cfg->server_name, buf,
                                    sizeof buf);
    r = t->chain ? 0 : -1;
  } else {
    r = net__tls_chain_result(t->chain, &why);
  }
  if (r == 0) return t->want = NET_TLS_WANT_CHECK;
  if (r > 0) return handshake_done(t);
  net__seterr(e, NET_E_TLS_VERIFY,
              "%s: certificate not trusted (%s, checked against %s and the system's chain engine: %s)", t->where,
              !t->no_root ? "its root is restricted" : t->self_signed ? "self-signed" : "unknown CA",
              t->conf->ca_store, why);
  return handshake_failed(t);
}

int net__tls_handshake(net_tls *t, net_error *e) {
  if (t->chain) return system_verdict(t, e);
  int r = handshake_step(t);
  if (r == 0) return t->ask_system ? system_verdict(t, e) : handshake_done(t);
  if (blocked(t, r)) return t->want;
  describe(t, r, true, e);
  return handshake_failed(t);
}

long net__tls_read(net_tls *t, void *buf, size_t len, net_error *e) {
  if (t->rec) return rec_read(t, buf, len, e);
  for (;;) {
    int r = mbedtls_ssl_read(&t->ssl, buf, len);
    if (r > 0) return r;
    if (r == 0 && !t->eof) continue;   /* empty records (legal): not the end, whatever 0 says */
    if (blocked(t, r)) return 0;
#ifdef MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
    if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) continue;   /* TLS 1.3: not data, not an error */
#endif
    if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return NET_TLS_EOF;
    describe(t, r, false, e);
    return NET_TLS_ERROR;
  }
}

#if MBEDTLS_VERSION_NUMBER < 0x03000000
#define OUT_LEFT(t) ((t)->ssl.out_left)
#else
#define OUT_LEFT(t) ((t)->ssl.MBEDTLS_PRIVATE(out_left))
#endif

/* Sends what the output buffer holds: 0 once out, else mbedTLS's error.
 * The read side writes there too (the alert refusing a renegotiation),
 * and mbedtls_ssl_write or _close_notify, finding it busy, would only
 * flush and report success: a write's bytes or the close_notify lost.
 * A write of nothing is the public way to flush (it makes no record
 * while one waits). */
static int flush(net_tls *t) {
  static const unsigned char none[1];
  if (t->rec) return rec_flush(t);
  if (!OUT_LEFT(t)) return 0;
  int r = mbedtls_ssl_write(&t->ssl, none, 0);
  return r > 0 ? 0 : r;
}

int net__tls_flush(net_tls *t, net_error *e) {
  int r = flush(t);
  if (r == 0) return NET_TLS_DONE;
  if (blocked(t, r)) return t->want;
  describe(t, r, false, e);
  return NET_TLS_ERROR;
}

long net__tls_write(net_tls *t, const void *buf, size_t len, net_error *e) {
  int r = flush(t);
  if (r == 0 && t->wrec) {   /* our record went out (maybe flushed by the read side): its bytes are sent */
    size_t n = t->wrec;
    t->wrec = 0;
    return (long)n;
  }
  if (r == 0) r = t->rec ? rec_put(t, buf, len) : mbedtls_ssl_write(&t->ssl, buf, len);
  if (r >= 0) return r;
  if (blocked(t, r)) {
    if (!t->rec && !t->wrec && OUT_LEFT(t)) {   /* the record is made, with this much of buf */
      int max = mbedtls_ssl_get_max_out_record_payload(&t->ssl);
      t->wrec = max > 0 && (size_t)max < len ? (size_t)max : len;
    }
    return 0;
  }
  describe(t, r, false, e);
  return NET_TLS_ERROR;
}

int net__tls_close_notify(net_tls *t) {
  int r = flush(t);   /* what came before it; then, on a later call, the alert itself */
  if (r == 0 && !t->notified) {
    static const unsigned char close_notify[2] = {1, 0};
    t->notified = true;
    if (t->rec) net__tls_rec_seal(t->rec, 21, close_notify, 2), r = rec_flush(t);
    else r = mbedtls_ssl_close_notify(&t->ssl);
  }
  return blocked(t, r) ? t->want : NET_TLS_DONE;   /* other failures: nothing left to say */
}

bool net__tls_out_pending(const net_tls *t) {
  if (!t->rec) return OUT_LEFT(t) != 0;
  size_t left;
  net__tls_rec_out(t->rec, &left);
  return left || net__tls_rec_owed(t->rec);
}

int net__tls_want(const net_tls *t) { return t->want; }

bool net__tls_pending(const net_tls *t) {
  if (t->rec) return net__tls_rec_pending(t->rec);
  return mbedtls_ssl_get_bytes_avail(&t->ssl) > 0 || mbedtls_ssl_check_pending(&t->ssl);
}

void net__tls_get_info(const net_tls *t, net_tls_info *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->version, sizeof out->version, "%s", mbedtls_ssl_get_version(&t->ssl));
  snprintf(out->cipher, sizeof out->cipher, "%s", mbedtls_ssl_get_ciphersuite(&t->ssl));
  const char *alpn = mbedtls_ssl_get_alpn_protocol(&t->ssl);
  if (alpn) snprintf(out->alpn, sizeof out->alpn, "%s", alpn);
  const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&t->ssl);
  /* a subject too long keeps what fit, marked: "" would read as no certificate */
  if (peer && mbedtls_x509_dn_gets(out->peer_subject, sizeof out->peer_subject - 3, &peer->subject) < 0) {
    out->peer_subject[sizeof out->peer_subject - 4] = '\0';
    strcat(out->peer_subject, "...");
  }
}
