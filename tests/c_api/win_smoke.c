/* win_smoke.c: the Windows engine through the C API, on loopback (run under
 * wine by tests/c_api/win_smoke.sh, which starts the peers): a refused
 * connect's code, our server and client, "address in use", UDP (also after an
 * ICMP unreachable), a Unix socket, TLS against the ROOT store and a ca_file,
 * an HTTP download into a file (twice: the rename replaces the first). One
 * thread (the test's); the engine runs its own.
 *   win_smoke TLSPORT UNIXPATH HTTPPORT   (run in the folder holding c.pem) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

static int fails;
#define CHECK(c, ...) do { if (c) printf("ok - " __VA_ARGS__); else { fails++; printf("not ok - " __VA_ARGS__); } printf("\n"); } while (0)

static net_addr *lo(void) {
  const char *err;
  net_addr *a = net_resolve("127.0.0.1", 9, &err, NULL);
  net_addr_wait(a, 1000);
  return a;
}

static net_result wait_conn(net_conn *c) { return net_conn_wait_connected(c, 10000); }

static void refused(void) {
  const char *err;
  net_addr *a = lo();
  net_conn *c = net_tcp_open(a, 1, NULL, &err, NULL);
  net_result r = wait_conn(c);
  CHECK(r.status == NET_FAILURE && !strcmp(net_errcode(r.err), "refused"), "refused: %s (%s)", r.msg,
        net_errcode(r.err));
  net_conn_close(c);
  net_addr_unref(a);
}

static int roundtrip(net_conn *c, net_conn *s, const char *what) {
  char buf[64] = "";
  net_conn_write(c, "ping", 4);
  long got = 0;
  for (int i = 0; i < 500 && got < 4; i++) {
    net_wait_activity(20);
    long n = net_conn_read(s, buf + got, sizeof buf - 1 - (size_t)got);
    if (n > 0) got += n;
  }
  net_conn_write(s, buf, (size_t)got);
  char back[64] = "";
  long bg = 0;
  for (int i = 0; i < 500 && bg < 4; i++) {
    net_wait_activity(20);
    long n = net_conn_read(c, back + bg, sizeof back - 1 - (size_t)bg);
    if (n > 0) bg += n;
  }
  CHECK(got == 4 && bg == 4 && !memcmp(back, "ping", 4), "%s echo through our server: '%s'", what, back);
  return 0;
}

static net_conn *accept_one(net_server *s) {
  net_result why;
  for (int i = 0; i < 500; i++) {
    net_conn *c = net_server_accept(s, &why);
    if (c) return c;
    net_wait_activity(20);
  }
  return NULL;
}

static void tcp_server(void) {
  const char *err;
  net_err code;
  net_addr *a = lo();
  net_server *s = net_server_open(a, 0, NULL, &err, &code);
  CHECK(s != NULL, "server open %s", s ? "" : err);
  if (!s) return;
  net_endpoint ep;
  net_server_local(s, &ep);
  net_conn *c = net_tcp_open(a, ep.port, NULL, &err, NULL);
  net_conn *sc = accept_one(s);
  net_result r = wait_conn(c);
  CHECK(r.status == NET_SUCCESS && sc, "tcp connect+accept port %u", (unsigned)ep.port);
  if (sc) roundtrip(c, sc, "tcp");
  net_conn_close(c);
  if (sc) net_conn_close(sc);
  /* address in use */
  net_server *s2 = net_server_open(a, ep.port, NULL, &err, &code);
  CHECK(!s2, "second bind of the port fails: %s (%s)", s2 ? "" : err, net_errcode(code));
  net_server_close(s);
  net_addr_unref(a);
}

static void unix_server(const char *path) {
  const char *err;
  net_err code;
  net_server_opts o = {.unix_path = path};
  net_server *s = net_server_open(NULL, 0, &o, &err, &code);
  if (!s && strstr(err, "family not supported")) {   /* wine 8 has no AF_UNIX; Windows 10 (1803) has */
    printf("ok - unix sockets # SKIP %s\n", err);
    return;
  }
  CHECK(s != NULL, "unix server open %s %s", path, s ? "" : err);
  if (!s) return;
  net_conn *c = net_unix_open(path, NULL, &err, &code);
  net_conn *sc = accept_one(s);
  net_result r = c ? wait_conn(c) : (net_result){NET_FAILURE, code, err};
  CHECK(r.status == NET_SUCCESS && sc, "unix connect+accept %s", r.msg ? r.msg : "");
  if (sc && c) roundtrip(c, sc, "unix");
  if (c) net_conn_close(c);
  if (sc) net_conn_close(sc);
  net_server_close(s);
}

static void udp(void) {
  const char *err;
  net_err code;
  net_addr *a = lo();
  net_udp *u1 = net_udp_open(a, 0, NULL, &err, &code), *u2 = net_udp_open(a, 0, NULL, &err, &code);
  CHECK(u1 && u2, "udp open");
  if (!u1 || !u2) return;
  net_err e = net_udp_send(u1, a, net_udp_port(u2), "dgram", 5, &err);
  char buf[64] = "";
  long n = NET_UDP_NONE;
  for (int i = 0; i < 500 && n == NET_UDP_NONE; i++) {
    net_wait_activity(20);
    n = net_udp_receive(u2, buf, sizeof buf, NULL, NULL);
  }
  CHECK(e == NET_E_NONE && n == 5 && !memcmp(buf, "dgram", 5), "udp datagram: %ld '%s'", n, buf);
  /* to a closed port: Windows would report the ICMP as a reset on the next receive */
  net_udp_send_to(u1, "127.0.0.1", 9, 1, "x", 1, &err);
  net_wait_activity(200);
  net_udp_send(u2, a, net_udp_port(u1), "again", 5, &err);
  n = NET_UDP_NONE;
  for (int i = 0; i < 500 && n == NET_UDP_NONE; i++) {
    net_wait_activity(20);
    n = net_udp_receive(u1, buf, sizeof buf, NULL, NULL);
  }
  net_result st = net_udp_status(u1);
  CHECK(n == 5 && st.status == NET_SUCCESS, "udp socket alive after an ICMP unreachable: %ld %s", n,
        st.msg ? st.msg : "");
  net_udp_close(u1);
  net_udp_close(u2);
  net_addr_unref(a);
}

static void tls_store(int port) {
  const char *err;
  net_addr *a = lo();
  net_tls_opts t = {.server_name = "localhost"};
  net_conn_opts o = {.tls = &t};
  net_conn *c = net_tcp_open(a, (uint16_t)port, &o, &err, NULL);
  net_result r = wait_conn(c);
  CHECK(r.status == NET_FAILURE && r.msg && strstr(r.msg, "Windows ROOT store"),
        "tls verify names the store: %s", r.msg);
  net_conn_close(c);
  net_addr_unref(a);
}

static void tls_file(int port) {
  const char *err;
  net_addr *a = lo();
  net_tls_opts t = {.server_name = "localhost", .ca_file = "c.pem"};
  net_conn_opts o = {.tls = &t};
  net_conn *c = net_tcp_open(a, (uint16_t)port, &o, &err, NULL);
  net_result r = wait_conn(c);
  CHECK(r.status == NET_SUCCESS, "tls with ca_file: %s", r.msg ? r.msg : "connected");
  net_conn_close(c);
  net_addr_unref(a);
}

static void http_file(int port) {
  char url[128];
  const char *err;
  net_err code;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/c.pem", port);
  for (int round = 0; round < 2; round++) {   /* the second renames over the first */
    net_http_opts o = {.url = url, .output = "dl.out"};
    net_http *h = net_http_request(&o, &err, &code);
    net_result r = h ? net_http_wait(h, 20000) : (net_result){NET_FAILURE, code, err};
    FILE *f = fopen("dl.out", "rb"), *g = fopen("c.pem", "rb");
    char a[4096] = "", b[4096] = "";
    size_t na = f ? fread(a, 1, sizeof a, f) : 0, nb = g ? fread(b, 1, sizeof b, g) : 0;
    if (f) fclose(f);
    if (g) fclose(g);
    CHECK(r.status == NET_SUCCESS && na == nb && na > 0 && !memcmp(a, b, na), "http download to a file (%d): %s %zu bytes",
          round, r.msg ? r.msg : "", na);
    if (h) net_http_close(h);
  }
  /* a folder as the body file: what POSIX says, not "Permission denied" */
  net_http_opts o = {.url = url, .method = "PUT", .body_file = "."};
  net_http *h = net_http_request(&o, &err, &code);
  net_result r = h ? net_http_wait(h, 20000) : (net_result){NET_FAILURE, code, err};
  CHECK(r.status == NET_FAILURE && r.msg && strstr(r.msg, "Is a directory"), "a folder as the body: %s",
        r.msg ? r.msg : "");
  if (h) net_http_close(h);
}

int main(int argc, char **argv) {
  if (net_init() != 0) return 1;
  char ca[512];
  printf("# cacert path: %s\n", net_get_cacert_path(ca, sizeof ca) ? ca : "(none: system store)");
  refused();
  tcp_server();
  udp();
  if (argc > 2) unix_server(argv[2]);
  if (argc > 1) tls_store(atoi(argv[1]));
  if (argc > 1) tls_file(atoi(argv[1]));
  if (argc > 3) http_file(atoi(argv[3]));
  printf("# %d failed\n", fails);
  return fails != 0;
}
