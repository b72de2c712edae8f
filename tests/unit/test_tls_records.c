/* test_tls_records.c: TLS records a plain peer rarely sends, read through
 * the engine. A server thread made with mbedTLS (its test certificate; the
 * client does not verify) sends "hello", empty application-data records
 * (legal in TLS 1.2), "world", then close_notify. The client must read
 * "helloworld" and an orderly end, never a truncation. */
#include <mbedtls/certs.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "loopback.h"
#include "net.h"
#include "os.h"
#include "tap.h"

typedef struct server {
  int listener, empties;
  bool ok;
} server;

static bool serve_tls(int fd, int empties) {
  mbedtls_entropy_context en;
  mbedtls_ctr_drbg_context dr;
  mbedtls_ssl_config conf;
  mbedtls_ssl_context ssl;
  mbedtls_x509_crt crt;
  mbedtls_pk_context key;
  mbedtls_net_context net = {.fd = fd};
  mbedtls_entropy_init(&en), mbedtls_ctr_drbg_init(&dr), mbedtls_ssl_config_init(&conf);
  mbedtls_ssl_init(&ssl), mbedtls_x509_crt_init(&crt), mbedtls_pk_init(&key);
  bool ok = !mbedtls_ctr_drbg_seed(&dr, mbedtls_entropy_func, &en, NULL, 0) &&
            !mbedtls_x509_crt_parse(&crt, (const unsigned char *)mbedtls_test_srv_crt, mbedtls_test_srv_crt_len) &&
            !mbedtls_pk_parse_key(&key, (const unsigned char *)mbedtls_test_srv_key, mbedtls_test_srv_key_len, NULL, 0) &&
            !mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT);
  if (ok) {
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &dr);
    ok = !mbedtls_ssl_conf_own_cert(&conf, &crt, &key) && !mbedtls_ssl_setup(&ssl, &conf);
  }
  if (ok) mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, mbedtls_net_recv, NULL);
  ok = ok && !mbedtls_ssl_handshake(&ssl) && mbedtls_ssl_write(&ssl, (const unsigned char *)"hello", 5) == 5;
  for (int i = 0; ok && i < empties; i++) ok = mbedtls_ssl_write(&ssl, (const unsigned char *)"", 0) == 0;
  ok = ok && mbedtls_ssl_write(&ssl, (const unsigned char *)"world", 5) == 5 && !mbedtls_ssl_close_notify(&ssl);
  net__sleep_ms(200);   /* the client reads before the FIN */
  mbedtls_ssl_free(&ssl), mbedtls_ssl_config_free(&conf), mbedtls_x509_crt_free(&crt);
  mbedtls_pk_free(&key), mbedtls_ctr_drbg_free(&dr), mbedtls_entropy_free(&en);
  return ok;
}

static void *server_main(void *arg) {
  server *s = arg;
  int fd = accept(s->listener, NULL, NULL);
  s->ok = fd >= 0 && serve_tls(fd, s->empties);
  if (fd >= 0) close(fd);
  return NULL;
}

/* Reads the connection to its end: "" on failure, with why. */
static bool read_all(net_conn *c, char *got, size_t cap, long *end) {
  size_t n = 0;
  for (int waited = 0; waited < 10000; waited += 10) {
    long r = net_conn_read(c, got + n, cap - 1 - n);
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

static bool empty_records(int empties) {
  uint16_t port;
  server s = {.listener = listen_loopback(&port), .empties = empties};
  CHECK(s.listener >= 0, "no listener");
  pthread_t th;
  CHECK(pthread_create(&th, NULL, server_main, &s) == 0, "no server thread");
  const char *err;
  net_err code;
  net_tls_opts tls = {.no_verify = 1};
  net_conn_opts o = {.tls = &tls};
  net_conn *c = net_tcp_open_host(NULL, "127.0.0.1", 9, port, &o, &err, &code);
  char got[64];
  long end = 0;
  bool done = c && read_all(c, got, sizeof got, &end);
  net_result st = c ? net_conn_status(c) : (net_result){0};
  if (c) net_conn_close(c);
  pthread_join(th, NULL);
  close(s.listener);
  CHECK(c, "open: %s", err);
  CHECK(s.ok, "the server could not send its records");
  CHECK(done, "no end after 10 s (read \"%s\")", got);
  CHECK(!strcmp(got, "helloworld"), "read \"%s\", then %s", got, st.msg);
  CHECK(end == NET_READ_EOF, "ended with %ld: %s", end, st.msg);
  return true;
}

int main(void) {
  if (net_init() != 0) return 1;
  report("one empty record between two with data", empty_records(1));
  report("three empty records in a row: not taken for the end", empty_records(3));
  net_quit();
  return tap_done();
}
