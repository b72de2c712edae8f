/* test_wake.c: host wake-ups stop once nothing is left to read: an HTTP
 * request or a websocket its owner closes while it waits leaves no unread
 * news behind; a host that closed everything and calls nothing more is left
 * asleep; an accept that takes the last connection leaves the server read.
 * The host here wakes on each callback and polls, as a frame loop does. TAP. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"
#include "os.h"
#include "loopback.h"
#include "tap.h"

static atomic_int nudges;

static void on_wake(void *ud) {
  (void)ud;
  atomic_fetch_add(&nudges, 1);
}

/* Nudges in ms milliseconds of a host that polls after each one. */
static int nudges_while_polling(net_addr *probe, int ms) {
  int start = atomic_load(&nudges), seen = start;
  for (int t = 0; t < ms; t += 10) {
    net__sleep_ms(10);
    int n = atomic_load(&nudges);
    if (n != seen) {
      seen = n;
      net_addr_status(probe);
    }
  }
  return atomic_load(&nudges) - start;
}

/* Opens a request (ws 0: HTTP, 1: a websocket) to a server that never
 * answers, closes it while it waits, and counts the wake-ups after. */
static bool closed_while_waiting(int ws) {
  uint16_t port;
  int srv = listen_loopback(&port);
  CHECK(srv >= 0, "no loopback listener");
  const char *err;
  net_err code;
  net_addr *probe = net_resolve("127.0.0.1", 9, &err, &code);   /* something to poll */
  CHECK(probe, "net_resolve: %s", err);
  char url[64];
  snprintf(url, sizeof url, "%s://127.0.0.1:%u/", ws ? "ws" : "http", port);
  net_http_opts ho = {.url = url, .proxy = ""};
  net_ws_opts wo = {.url = url};
  net_http *h = ws ? NULL : net_http_request(&ho, &err, &code);
  net_ws *w = ws ? net_ws_open(&wo, &err, &code) : NULL;
  CHECK(h || w, "open: %s", err);
  nudges_while_polling(probe, 200);   /* connected and sent; the server never answers */
  if (h) net_http_close(h);
  else net_ws_free(w);
  nudges_while_polling(probe, 200);   /* the close is done */
  int n = nudges_while_polling(probe, 1000);
  net_addr_unref(probe);
  close(srv);
  CHECK(n <= 1, "%d host wake-ups in the second after, with nothing left to read", n);
  return true;
}

/* A connection to srv, connected (the host polls while it connects). */
static net_conn *connected(uint16_t port) {
  const char *err;
  net_conn *c = net_tcp_open_host(NULL, "127.0.0.1", 9, port, NULL, &err, NULL);
  return c && net_conn_wait_connected(c, 5000).status == NET_SUCCESS ? c : NULL;
}

/* The last object closed, its close finished: no wake-up, polled or not. */
static bool idle_host_sleeps(void) {
  uint16_t port;
  int srv = listen_loopback(&port);
  CHECK(srv >= 0, "no loopback listener");
  net_conn *c = connected(port);
  CHECK(c, "no connection");
  CHECK(net_conn_write(c, "x", 1) == 1, "write");
  net_conn_close(c);
  /* the close finishes; the host calls nothing from here on (a nudge for the
     room the write left may be repeated for a second) */
  net__sleep_ms(1500);
  int start = atomic_load(&nudges);
  net__sleep_ms(3000);
  int n = atomic_load(&nudges) - start;
  close(srv);
  CHECK(n == 0, "%d host wake-ups in 3 s of a host with nothing left to poll", n);
  return true;
}

/* accept takes the only connection; the host then polls only the two ends. */
static bool accepted_leaves_server_read(void) {
  const char *err;
  net_addr *a = net_parse_ip("127.0.0.1", 9, &err);
  net_server *s = a ? net_server_open(a, 0, NULL, &err, NULL) : NULL;
  CHECK(s, "server: %s", err);
  net_endpoint at;
  CHECK(net_server_local(s, &at) == 1, "no port");
  net_conn *c = connected((uint16_t)at.port), *got = NULL;
  for (int i = 0; i < 500 && !got; i++, net__sleep_ms(10)) got = net_server_accept(s, NULL);
  CHECK(c && got, "not accepted");
  net_conn_status(got);   /* both ends seen once: nothing is unread */
  net_conn_status(c);
  net__sleep_ms(100);
  int start = atomic_load(&nudges);
  for (int t = 0; t < 2000; t += 200) {
    net__sleep_ms(200);
    net_conn_status(got);   /* a frame loop that polls its connections now and then */
    net_conn_status(c);
  }
  int n = atomic_load(&nudges) - start;
  net_conn_close(got);
  net_conn_close(c);
  net_server_close(s);
  net_addr_unref(a);
  CHECK(n <= 2, "%d host wake-ups in 2 s with nothing unread", n);
  return true;
}

int main(void) {
  const char *why;
  if (net_init() != 0 || net_set_wakeup(NET_WAKE_CALLBACK, on_wake, NULL, &why) != 0) {
    printf("not ok 1 - set-up failed\n1..1\n");
    return 1;
  }
  report("an HTTP request closed while it waits leaves no wake-ups behind", closed_while_waiting(0));
  report("a websocket freed while it connects leaves no wake-ups behind", closed_while_waiting(1));
  report("a host with nothing left to poll is left asleep", idle_host_sleeps());
  report("an accept that took the last connection leaves no wake-ups behind", accepted_leaves_server_read());
  net_quit();
  return tap_done();
}
