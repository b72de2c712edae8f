/* test_api_edges.c: the C API at the edges of its contract, where a host's
 * arithmetic can land: a search from past the buffered bytes (an unsigned
 * underflow), a read with no room left after the body ended, an opener
 * given no code pointer, a CA path that does not fit the caller's buffer,
 * the CA folder trusted beside SSL_CERT_FILE, UDP errors that outlive the
 * address they came from, NULLs a sibling takes, and net.h itself as C99 (tests/unit/run.sh builds it -pedantic). TAP. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"
#include "loopback.h"
#include "tap.h"

/* A connection to a listener that sent it `data`, all of it buffered here. */
static net_conn *fed(int l, uint16_t port, const char *data, size_t n, int *peer) {
  const char *err;
  net_conn *c = net_tcp_open_host(NULL, "127.0.0.1", 9, port, NULL, &err, NULL);
  if (!c || net_conn_wait_connected(c, 5000).status != NET_SUCCESS) return NULL;
  *peer = accept(l, NULL, NULL);
  if (*peer < 0 || send(*peer, data, n, 0) != (ssize_t)n) return NULL;
  for (int i = 0; i < 500 && net_conn_available(c) < n; i++) net_wait_activity(10);
  return c;
}

static bool find_from_past_the_end(void) {
  uint16_t port;
  int l = listen_loopback(&port), peer = -1;
  char data[200], first[100];
  memset(data, 'x', sizeof data);
  memcpy(data + 150, "\r\n", 2);
  net_conn *c = fed(l, port, data, sizeof data, &peer);
  CHECK(c && net_conn_available(c) == sizeof data, "the bytes never arrived");
  /* read past some first: from + the read position would wrap below it */
  CHECK(net_conn_read(c, first, sizeof first) == sizeof first, "read");
  CHECK(net_conn_find(c, "\r\n", 2, 0, SIZE_MAX) == 50, "no match where it is");
  CHECK(net_conn_find(c, "\r\n", 2, SIZE_MAX - 5, SIZE_MAX) == -1, "found from SIZE_MAX - 5");
  CHECK(net_conn_find(c, "x", 1, 100, SIZE_MAX) == -1, "found from the end");
  CHECK(net_conn_find(c, "\r\n", 2, 60, 40) == -1, "found from past the limit");
  net_conn_close(c);
  close(peer);
  close(l);
  return true;
}

static bool no_room_is_not_the_end(void) {
  uint16_t port;
  int l = listen_loopback(&port);
  char url[64], req[1024], buf[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/", (unsigned)port);
  net_http_opts o = {.url = url, .proxy = ""};
  const char *err;
  net_http *h = net_http_request(&o, &err, NULL);
  CHECK(h, "request: %s", err);
  int peer = accept(l, NULL, NULL);
  CHECK(peer >= 0 && recv(peer, req, sizeof req, 0) > 0, "no request came");
  static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n";
  CHECK(send(peer, answer, sizeof answer - 1, 0) > 0, "send");
  memset(buf, 'b', 100);
  CHECK(send(peer, buf, 100, 0) == 100, "send body");
  CHECK(net_http_wait(h, 5000).status == NET_SUCCESS, "the exchange did not end well");
  CHECK(net_http_read(h, buf, 0) == 0, "a read with no room said the body ended");
  int k = 0;
  net_span sp[1];
  CHECK(net_http_peek(h, SIZE_MAX, sp, &k) == 0, "a peek with no spans said the body ended");
  CHECK(net_http_read(h, buf, sizeof buf) == 100, "the body was not all there");
  CHECK(net_http_read(h, buf, sizeof buf) == NET_READ_EOF, "no end after the body");
  net_http_close(h);
  close(peer);
  close(l);
  return true;
}

static bool openers_take_no_code(void) {
  const char *err;
  net_addr *a = net_parse_ip("127.0.0.1", 9, &err);
  net_server *s = net_server_open(a, 0, NULL, &err, NULL);
  CHECK(s, "open: %s", err);
  net_endpoint at;
  CHECK(net_server_local(s, &at) == 1 && at.port > 0, "no port");
  net_server *again = net_server_open(a, (uint16_t)at.port, &(net_server_opts){.no_reuseaddr = 1}, &err, NULL);
  CHECK(!again, "the port was taken twice");
  net_server_close(s);
  net_addr_unref(a);
  return true;
}

static bool cacert_path_that_does_not_fit(void) {
  char buf[256];
  CHECK(net_set_cacert_path("/nonexistent/ca-bundle.pem") == 0, "set");
  CHECK(net_get_cacert_path(buf, 8) == -1 && buf[0] == '\0', "a path cut short was handed out");
  CHECK(net_get_cacert_path(buf, 0) == -1, "no room, yet a path");
  CHECK(net_get_cacert_path(buf, sizeof buf) == 1 && !strcmp(buf, "/nonexistent/ca-bundle.pem"), "the path");
  net_set_cacert_path(NULL);
  return true;
}

/* SSL_CERT_FILE and SSL_CERT_DIR both there: the folder is the second path. */
static bool cacert_dir_beside_the_file(void) {
  char dir[] = "/tmp/sluice-cadir-XXXXXX", file[300], buf[300];
  CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  snprintf(file, sizeof file, "%s/ca.pem", dir);
  FILE *f = fopen(file, "w");
  CHECK(f != NULL, "the bundle");
  fclose(f);
  setenv("SSL_CERT_FILE", file, 1);
  setenv("SSL_CERT_DIR", dir, 1);
  bool ok = net_get_cacert_dir(buf, sizeof buf) == 1 && !strcmp(buf, dir) &&
            net_get_cacert_path(buf, sizeof buf) == 1 && !strcmp(buf, file);
  bool cut = net_get_cacert_dir(buf, 8) == -1 && buf[0] == '\0';
  setenv("SSL_CERT_DIR", "/nonexistent", 1);
  bool gone = net_get_cacert_dir(buf, sizeof buf) == 0 && buf[0] == '\0';
  setenv("SSL_CERT_DIR", dir, 1);
  net_set_cacert_path(file);   /* a path set: it alone decides */
  bool set = net_get_cacert_dir(buf, sizeof buf) == 0;
  net_set_cacert_path(NULL);
  unsetenv("SSL_CERT_FILE");
  unsetenv("SSL_CERT_DIR");
  remove(file);
  rmdir(dir);
  CHECK(ok, "both paths");
  CHECK(cut, "a folder cut short was handed out");
  CHECK(gone, "a folder that is not there");
  CHECK(set, "a folder beside a path set");
  return true;
}

/* An address that failed to resolve: a nameserver on a closed loopback port. */
static net_addr *failed_addr(void) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(s, (struct sockaddr *)&a, &alen) < 0)
    return NULL;
  close(s);
  char ns[32];
  snprintf(ns, sizeof ns, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
  const char *nss[] = {ns}, *err;
  net_resolver_opts o = {.nameservers = nss, .count = 1, .timeout_ms = 200, .tries = 1};
  net_resolver *r = net_resolver_new(&o, &err, NULL);
  net_addr *addr = r ? net_resolver_resolve(r, "sluice-nope.test", 16, &err, NULL) : NULL;
  if (r) net_resolver_free(r);
  if (addr && net_addr_wait(addr, 10000).status == NET_FAILURE) return addr;
  if (addr) net_addr_unref(addr);
  return NULL;
}

/* The message of a failed address stays readable after the address is freed. */
static bool udp_errors_outlive_the_address(void) {
  const char *err = NULL;
  net_addr *a = failed_addr();
  CHECK(a, "no failed address");
  CHECK(!net_udp_open(a, 0, NULL, &err, NULL), "bound to a failed address");   /* code NULL: taken */
  net_addr_unref(a);
  CHECK(strstr(err, "sluice-nope.test"), "the open's message: %s", err);
  net_udp *u = net_udp_open(NULL, 0, NULL, &err, NULL);
  CHECK(u, "open: %s", err);
  CHECK((a = failed_addr()), "no failed address");
  net_err code = net_udp_send(u, a, 9, "x", 1, &err);
  net_addr_unref(a);
  CHECK(code != NET_E_NONE && strstr(err, "sluice-nope.test"), "the send's message: %s", err);
  CHECK(net_udp_send(u, NULL, 9, "x", 1, &err) == NET_E_INVALID, "a send to no address");
  net_udp_close(u);
  return true;
}

/* A port taken, with no code pointer; the interface text that does not fit. */
static bool udp_edges(void) {
  const char *err;
  char why[64], buf[16];
  net_udp *u = net_udp_open(NULL, 0, NULL, &err, NULL);
  CHECK(u, "open: %s", err);
  CHECK(!net_udp_open(NULL, net_udp_port(u), NULL, &err, NULL), "bound a port taken");
  net_addr *lo = net_parse_ip("127.0.0.1", 9, &err);
  net_udp *v4 = lo ? net_udp_open(lo, 0, NULL, &err, NULL) : NULL;
  CHECK(v4, "open 127.0.0.1: %s", err);
  CHECK(net_udp_set_multicast_if(v4, "127.0.0.1", &err) == NET_E_NONE, "set: %s", err);
  memset(buf, 'Q', sizeof buf);
  CHECK(net_udp_get_multicast_if(v4, buf, 4) == -1 && buf[0] == '\0', "a cut address was handed out");
  CHECK(net_udp_get_multicast_if(v4, buf, sizeof buf) == 4 && !strcmp(buf, "127.0.0.1"), "the address");
  CHECK(net_udp_send_to(v4, "127.0.0.1", 9, 0, "x", 1, &err) == NET_E_INVALID, "a datagram to port 0 was taken");
  net_udp_close(v4);
  net_udp_close(u);
  net_addr_unref(lo);
  CHECK(net_proxy_check(NULL, why, sizeof why) == 0 && !strcmp(why, "no proxy URL"), "no proxy URL");
  net_addr *b = net_parse_ip("[::1]", 5, &err);
  CHECK(b && !strcmp(net_addr_hostname(b), "::1"), "[::1] is named %s", b ? net_addr_hostname(b) : "-");
  net_addr_unref(b);
  return true;
}

int main(void) {
  if (net_init() != 0) {
    printf("not ok 1 - net_init failed\n1..1\n");
    return 1;
  }
  report("net_conn_find from past the buffered bytes or the limit finds nothing", find_from_past_the_end());
  report("a read or peek with no room after the exchange ended is not the end of the body", no_room_is_not_the_end());
  report("net_server_open takes a NULL code, as every opener does", openers_take_no_code());
  report("net_get_cacert_path says when the path does not fit", cacert_path_that_does_not_fit());
  report("a UDP open's or send's message outlives the failed address it came from", udp_errors_outlive_the_address());
  report("UDP: a port taken with no code pointer, an interface that does not fit, NULLs, [::1]", udp_edges());
  report("net_get_cacert_dir names SSL_CERT_DIR trusted beside SSL_CERT_FILE", cacert_dir_beside_the_file());
  net_quit();
  return tap_done();
}
