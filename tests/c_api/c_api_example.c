/* c_api_example.c: the engine through its C API alone, as a game engine
 * without Lua would use it: one non-blocking poll per frame, never a wait.
 *   c_api_example HOST PORT   (an echo server: prints what came back) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net.h"

static int fail(const char *what, net_result r) {
  fprintf(stderr, "%s: %s (%s)\n", what, r.msg, net_errcode(r.err));
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
    return 2;
  }
  const char *err;
  if (net_init() != 0) return 1;
  net_addr *addr = net_resolve(argv[1], strlen(argv[1]), &err, NULL);
  if (!addr) return fprintf(stderr, "resolve: %s\n", err), 1;
  net_conn *conn = net_tcp_open(addr, (uint16_t)atoi(argv[2]), NULL, &err, NULL);
  net_addr_unref(addr);   /* the connection keeps its own reference */
  if (!conn) return fprintf(stderr, "open: %s\n", err), 1;

  static const char msg[] = "hello from the C API\n";
  size_t sent = 0, got = 0;
  char back[sizeof msg];
  int status = 1;
  for (int frame = 0; frame < 600; frame++) {   /* 10 s at 60 frames per second */
    net_result r = net_conn_status(conn);
    if (r.status == NET_FAILURE) {
      status = fail("connection", r);
      break;
    }
    if (sent < sizeof msg - 1) {   /* accepted even while still connecting */
      long n = net_conn_write(conn, msg + sent, sizeof msg - 1 - sent);
      if (n > 0) sent += (size_t)n;
    }
    long n = net_conn_read(conn, back + got, sizeof msg - 1 - got);
    if (n > 0) got += (size_t)n;
    if (got == sizeof msg - 1) {
      back[got] = '\0';
      printf("echoed: %s", back);
      status = memcmp(back, msg, got) != 0;
      break;
    }
    nanosleep(&(struct timespec){0, 16000000}, NULL);   /* the rest of the frame */
  }
  net_conn_close(conn);   /* graceful; returns at once */
  net_quit();             /* never waits: the close finishes in the background */
  return status;
}
