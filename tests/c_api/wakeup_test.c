/* wakeup_test.c: an SDL event loop sleeping in SDL_WaitEventTimeout(10 s)
 * must wake within 50 ms of data arriving when wake-ups are on, and get no
 * event when they are off. Prints TAP and the latency figures.
 *   wakeup_test [ROUNDS]   (default 1000) */
#include <SDL.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

static int server_fd = -1;
static SDL_sem *go;
static atomic_int quit;
static _Atomic double sent_at;

/* The peer: sends one byte each time the main loop asks for it. */
static int peer_main(void *unused) {
  (void)unused;
  while (SDL_SemWait(go) == 0 && !atomic_load(&quit)) {
    atomic_store(&sent_at, net_clock());
    if (send(server_fd, "x", 1, MSG_NOSIGNAL) != 1) break;
  }
  return 0;
}

static int listen_loopback(uint16_t *port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 1) < 0 ||
      getsockname(s, (struct sockaddr *)&a, &len) < 0)
    return -1;
  *port = ntohs(a.sin_port);
  return s;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int tap(int n, int ok, const char *what) {
  printf("%sok %d - %s\n", ok ? "" : "not ", n, what);
  return ok;
}

/* Waits for our event (other events are skipped); returns 1 if it came. */
static int wait_wakeup(Uint32 type, int timeout_ms) {
  Uint32 deadline = SDL_GetTicks() + (Uint32)timeout_ms;
  SDL_Event ev;
  for (;;) {
    int left = (int)(deadline - SDL_GetTicks());
    if (left <= 0 || !SDL_WaitEventTimeout(&ev, left)) return 0;
    if (ev.type == type) return 1;
  }
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 1000;
  if (SDL_Init(SDL_INIT_EVENTS) != 0 || net_init() != 0) return 1;
  uint16_t port = 0;
  int lfd = listen_loopback(&port);
  if (lfd < 0) return perror("listen"), 1;
  const char *err;
  net_addr *addr = net_resolve("127.0.0.1", 9, &err, NULL);
  net_conn *conn = net_tcp_open(addr, port, NULL, &err, NULL);
  net_addr_unref(addr);
  server_fd = accept(lfd, NULL, NULL);
  int failed = 0, t = 0;
  failed += !tap(++t, conn && server_fd >= 0 &&
                          net_conn_wait_connected(conn, 5000).status == NET_SUCCESS, "connected");
  go = SDL_CreateSemaphore(0);
  SDL_Thread *peer = SDL_CreateThread(peer_main, "peer", NULL);

  /* Off: the byte arrives, no event is pushed. */
  net_set_wakeup(NET_WAKE_OFF, NULL, NULL, NULL);
  SDL_SemPost(go);
  while (net_conn_available(conn) == 0) net_wait_activity(100);
  SDL_Event ev;
  failed += !tap(++t, SDL_WaitEventTimeout(&ev, 200) == 0, "no event while wake-ups are off");
  char c;
  net_conn_read(conn, &c, 1);

  /* On: each byte wakes the loop. */
  failed += !tap(++t, net_set_wakeup(NET_WAKE_SDL, NULL, NULL, NULL) == 0, "wake-ups on");
  Uint32 type = net_wakeup_event_type();
  double *lat = calloc((size_t)rounds, sizeof *lat);
  int late = 0, missed = 0;
  for (int i = 0; i < rounds; i++) {
    SDL_FlushEvent(type);
    net_conn_available(conn);   /* the host polls: re-arms the wake-up */
    SDL_SemPost(go);
    if (!wait_wakeup(type, 10000)) {
      missed++;
      continue;
    }
    lat[i] = net_clock() - atomic_load(&sent_at);
    late += lat[i] > 0.050;
    while (net_conn_read(conn, &c, 1) == 0) net_wait_activity(10);
  }
  failed += !tap(++t, missed == 0, "every byte woke the loop");
  failed += !tap(++t, late == 0, "every wake-up within 50 ms");
  qsort(lat, (size_t)rounds, sizeof *lat, cmp);
  printf("# wake-up latency over %d rounds: median %.1f us, p99 %.1f us, worst %.1f us\n", rounds,
         lat[rounds / 2] * 1e6, lat[rounds * 99 / 100] * 1e6, lat[rounds - 1] * 1e6);

  atomic_store(&quit, 1);
  SDL_SemPost(go);
  SDL_WaitThread(peer, NULL);
  net_conn_close(conn);
  net_quit();
  close(server_fd);
  close(lfd);
  free(lat);
  SDL_DestroySemaphore(go);
  SDL_Quit();
  printf("# %d passed, %d failed\n", t - failed, failed);
  return failed != 0;
}
