/* test_tls_records.c: TLS records a plain peer rarely sends, read through
 * the engine, under AES-GCM (the engine's own record layer) and under
 * ChaCha20-Poly1305 (mbedTLS's): both must behave alike. A server thread
 * made with mbedTLS (its test certificate; the client does not verify)
 * sends "hello", then what the case asks for (empty application-data
 * records, legal in TLS 1.2; a warning alert; a renegotiation request; a
 * record with a changed byte; a fatal alert), "world", then close_notify,
 * or only a FIN. */
#include <mbedtls/certs.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "loopback.h"
#include "net.h"
#include "os.h"
#include "tap.h"

typedef enum { END_NOTIFY, END_FIN, END_FATAL, END_BAD_MAC } ending;

typedef struct server {
  int listener, fd;
  int suite;              /* the only one offered */
  int empties;            /* empty records after "hello" */
  bool warning;           /* a warning alert after "hello" */
  bool hello_request;     /* a renegotiation request after "hello" */
  ending end;
  bool corrupt;           /* the next record sent gets a byte changed */
  bool ok, refused;       /* refused: an alert record came back after the request */
} server;

static int send_cb(void *ctx, const unsigned char *buf, size_t len) {
  server *s = ctx;
  unsigned char copy[32768];
  if (s->corrupt && len <= sizeof copy) {
    memcpy(copy, buf, len);
    copy[len - 1] ^= 0x20;   /* in the tag */
    buf = copy;
    s->corrupt = false;
  }
  ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);
  return n < 0 ? MBEDTLS_ERR_NET_SEND_FAILED : (int)n;
}

static int recv_cb(void *ctx, unsigned char *buf, size_t len) {
  server *s = ctx;
  ssize_t n = recv(s->fd, buf, len, 0);
  return n < 0 ? MBEDTLS_ERR_NET_RECV_FAILED : (int)n;
}

/* Whether an alert record (the refusal) comes from the client within 5 s. */
static bool alert_back(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  unsigned char type;
  return poll(&p, 1, 5000) == 1 && recv(fd, &type, 1, MSG_PEEK) == 1 && type == 21;
}

static bool middle(server *s, mbedtls_ssl_context *ssl) {
  bool ok = mbedtls_ssl_write(ssl, (const unsigned char *)"hello", 5) == 5;
  for (int i = 0; ok && i < s->empties; i++) ok = mbedtls_ssl_write(ssl, (const unsigned char *)"", 0) == 0;
  if (ok && s->warning)
    ok = !mbedtls_ssl_send_alert_message(ssl, MBEDTLS_SSL_ALERT_LEVEL_WARNING, MBEDTLS_SSL_ALERT_MSG_USER_CANCELED);
  if (ok && s->hello_request) ok = !mbedtls_ssl_renegotiate(ssl) && (s->refused = alert_back(s->fd), true);
  if (ok && s->end == END_FATAL)
    return !mbedtls_ssl_send_alert_message(ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL, MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED);
  s->corrupt = s->end == END_BAD_MAC;
  ok = ok && mbedtls_ssl_write(ssl, (const unsigned char *)"world", 5) == 5;
  return ok && (s->end != END_NOTIFY || !mbedtls_ssl_close_notify(ssl));
}

static bool serve_tls(server *s) {
  mbedtls_entropy_context en;
  mbedtls_ctr_drbg_context dr;
  mbedtls_ssl_config conf;
  mbedtls_ssl_context ssl;
  mbedtls_x509_crt crt;
  mbedtls_pk_context key;
  const int suites[] = {s->suite, 0};
  mbedtls_entropy_init(&en), mbedtls_ctr_drbg_init(&dr), mbedtls_ssl_config_init(&conf);
  mbedtls_ssl_init(&ssl), mbedtls_x509_crt_init(&crt), mbedtls_pk_init(&key);
  bool ok = !mbedtls_ctr_drbg_seed(&dr, mbedtls_entropy_func, &en, NULL, 0) &&
            !mbedtls_x509_crt_parse(&crt, (const unsigned char *)mbedtls_test_srv_crt, mbedtls_test_srv_crt_len) &&
            !mbedtls_pk_parse_key(&key, (const unsigned char *)mbedtls_test_srv_key, mbedtls_test_srv_key_len, NULL, 0) &&
            !mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT);
  if (ok) {
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &dr);
    mbedtls_ssl_conf_ciphersuites(&conf, suites);
    mbedtls_ssl_conf_renegotiation(&conf, MBEDTLS_SSL_RENEGOTIATION_ENABLED);
    ok = !mbedtls_ssl_conf_own_cert(&conf, &crt, &key) && !mbedtls_ssl_setup(&ssl, &conf);
  }
  if (ok) mbedtls_ssl_set_bio(&ssl, s, send_cb, recv_cb, NULL);
  ok = ok && !mbedtls_ssl_handshake(&ssl) && middle(s, &ssl);
  net__sleep_ms(200);   /* the client reads before the FIN */
  mbedtls_ssl_free(&ssl), mbedtls_ssl_config_free(&conf), mbedtls_x509_crt_free(&crt);
  mbedtls_pk_free(&key), mbedtls_ctr_drbg_free(&dr), mbedtls_entropy_free(&en);
  return ok;
}

static void *server_main(void *arg) {
  server *s = arg;
  s->fd = accept(s->listener, NULL, NULL);
  s->ok = s->fd >= 0 && serve_tls(s);
  if (s->fd >= 0) close(s->fd);
  return NULL;
}

/* Reads the connection to its end (false after 10 s); info once data came. */
static bool read_all(net_conn *c, char *got, size_t cap, long *end, net_tls_info *info) {
  size_t n = 0;
  for (int waited = 0; waited < 10000; waited += 10) {
    long r = net_conn_read(c, got + n, cap - 1 - n);
    if (r > 0 && !n) net_conn_tls_info(c, info);
    if (r > 0) n += (size_t)r;
    if (r < 0) {
      got[n] = '\0';
      *end = r;
      return true;
    }
    if (r == 0) net_wait_activity(10);
  }
  got[n] = '\0';
  return false;
}

typedef struct outcome {
  char got[64], msg[256], cipher[96];
  long end;
} outcome;

/* Runs the case s describes: what the client read, how it ended and why. */
static bool exchange(server *s, outcome *out) {
  uint16_t port;
  s->listener = listen_loopback(&port);
  CHECK(s->listener >= 0, "no listener");
  pthread_t th;
  CHECK(pthread_create(&th, NULL, server_main, s) == 0, "no server thread");
  const char *err;
  net_err code;
  net_tls_opts tls = {.no_verify = 1};
  net_conn_opts o = {.tls = &tls};
  net_conn *c = net_tcp_open_host(NULL, "127.0.0.1", 9, port, &o, &err, &code);
  net_tls_info info = {0};
  bool done = c && read_all(c, out->got, sizeof out->got, &out->end, &info);
  snprintf(out->cipher, sizeof out->cipher, "%s", info.cipher);
  net_result st = c ? net_conn_status(c) : (net_result){0};
  snprintf(out->msg, sizeof out->msg, "%s", st.msg ? st.msg : "");   /* the message goes with c */
  if (c) net_conn_close(c);
  pthread_join(th, NULL);
  close(s->listener);
  CHECK(c, "open: %s", err);
  CHECK(s->ok, "the server could not send its records");
  CHECK(done, "no end after 10 s (read \"%s\")", out->got);
  return true;
}

/* "helloworld" and an orderly end, never a truncation. */
static bool clean(server s) {
  outcome o = {0};
  if (!exchange(&s, &o)) return false;
  CHECK(!strcmp(o.got, "helloworld"), "read \"%s\", then %s (%s)", o.got, o.msg, o.cipher);
  CHECK(o.end == NET_READ_EOF, "ended with %ld: %s (%s)", o.end, o.msg, o.cipher);
  CHECK(!s.hello_request || s.refused, "no alert came back for the renegotiation request (%s)", o.cipher);
  return true;
}

/* read, then a failure whose message has want. */
static bool fails(server s, const char *read, const char *want) {
  outcome o = {0};
  if (!exchange(&s, &o)) return false;
  CHECK(!strcmp(o.got, read), "read \"%s\", then %s (%s)", o.got, o.msg, o.cipher);
  CHECK(o.end == NET_READ_ERROR && strstr(o.msg, want), "ended with %ld: %s, not \"%s\" (%s)", o.end, o.msg,
        want, o.cipher);
  return true;
}

static void cases(const char *name, int suite) {
  char title[128];
#define CASE(what, call) snprintf(title, sizeof title, "%s: %s", name, what), report(title, call)
  CASE("one empty record between two with data", clean((server){.suite = suite, .empties = 1}));
  CASE("three empty records in a row: not taken for the end", clean((server){.suite = suite, .empties = 3}));
  CASE("a warning alert is read past", clean((server){.suite = suite, .warning = true}));
  CASE("a renegotiation request is refused, and reading goes on",
       clean((server){.suite = suite, .hello_request = true}));
  CASE("a FIN without close_notify is a truncation", fails((server){.suite = suite, .end = END_FIN}, "helloworld", "truncated"));
  CASE("a fatal alert is named", fails((server){.suite = suite, .end = END_FATAL}, "hello", "access denied"));
  CASE("a changed byte fails the record", fails((server){.suite = suite, .end = END_BAD_MAC}, "hello", "record error"));
#undef CASE
}

int main(void) {
  if (net_init() != 0) return 1;
  cases("AES-128-GCM", MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256);
  cases("AES-256-GCM", MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384);
  cases("ChaCha20-Poly1305", MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256);
  net_quit();
  return tap_done();
}
