/* close_nowait.c: closing never waits for the peer. A connection whose peer
 * reads nothing holds a full send buffer and a 10-minute linger; closing it
 * and quitting the engine must return at once (a watchdog fails the test if
 * they are still inside after 60 s), and every byte written must still reach
 * the peer once it starts reading. TAP on stdout. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

#define WATCHDOG_S 60
#define CHUNK 65536

static atomic_int returned;

static void *watchdog(void *what) {
  for (int i = 0; i < WATCHDOG_S * 10 && !atomic_load(&returned); i++) usleep(100000);
  if (!atomic_load(&returned)) {
    printf("not ok - %s still blocked after %d s\n", (const char *)what, WATCHDOG_S);
    fflush(stdout);
    _exit(1);
  }
  return NULL;
}

/* A listener with a tiny receive buffer that nobody accepts for now. */
static int listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 1) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
    return -1;
  *port = ntohs(sa.sin_port);
  return fd;
}

/* Writes the pattern until the engine takes no more for a while. */
static size_t fill(net_conn *c) {
  static unsigned char buf[CHUNK];
  size_t total = 0;
  for (int refused = 0; refused < 20;) {
    for (size_t i = 0; i < CHUNK; i++) buf[i] = (unsigned char)((total + i) % 251);
    long n = net_conn_write(c, buf, CHUNK);
    if (n < 0) return 0;
    if (n == 0) {
      refused++;
      usleep(20000);
    }
    total += (size_t)n;   /* a partial write: the next chunk continues the pattern */
  }
  return total;
}

/* Reads everything until EOF; the count, or (size_t)-1 at a wrong byte. */
static size_t drain(int fd) {
  static unsigned char buf[CHUNK];
  size_t total = 0;
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] != (unsigned char)((total + (size_t)i) % 251)) return (size_t)-1;
    total += (size_t)n;
  }
  return total;
}

int main(void) {
  int port, lfd = listener(&port);
  const char *err;
  printf("1..3\n");
  if (lfd < 0 || net_init() != 0) return printf("not ok 1 - setup\n"), 1;
  net_addr *a = net_parse_ip("127.0.0.1", 9, &err);
  net_conn_opts o = {.linger_ms = 600000};
  net_conn *c = net_tcp_open(a, (uint16_t)port, &o, &err, NULL);
  net_addr_unref(a);
  if (!c || net_conn_wait_connected(c, 10000).status != NET_SUCCESS) return printf("not ok 1 - connect\n"), 1;
  size_t written = fill(c);
  size_t pending = net_conn_pending_writes(c);
  printf("%s 1 - the peer reads nothing: %zu bytes written, %zu still in the send buffer\n",
         written > 0 && pending > 0 ? "ok" : "not ok", written, pending);

  pthread_t t;
  pthread_create(&t, NULL, watchdog, "net_conn_close and net_quit");
  net_conn_close(c);
  net_quit();
  if (net_init() == 0) net_quit();   /* another user coming and going meanwhile */
  atomic_store(&returned, 1);
  pthread_join(t, NULL);
  printf("ok 2 - net_conn_close and net_quit returned with %zu bytes lingering\n", pending);

  int fd = accept(lfd, NULL, NULL);
  size_t got = fd >= 0 ? drain(fd) : 0;
  printf("%s 3 - the peer got every byte written before the close (%zu of %zu)\n",
         got == written ? "ok" : "not ok", got, written);
  return got == written ? 0 : 1;
}
