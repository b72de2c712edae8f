/* test_wake.c: host wake-ups stop once nothing is left to read: an HTTP
 * request or a websocket its owner closes while it waits leaves no unread
 * news behind. The
 * host here wakes on each callback and polls, as a frame loop does. TAP. */
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

int main(void) {
  const char *why;
  if (net_init() != 0 || net_set_wakeup(NET_WAKE_CALLBACK, on_wake, NULL, &why) != 0) {
    printf("not ok 1 - set-up failed\n1..1\n");
    return 1;
  }
  report("an HTTP request closed while it waits leaves no wake-ups behind", closed_while_waiting(0));
  report("a websocket freed while it connects leaves no wake-ups behind", closed_while_waiting(1));
  net_quit();
  return tap_done();
}
