/* loopback.h: a TCP listener on 127.0.0.1 for the unit tests that need a
 * peer. The kernel completes connections to it; nothing reads them. */
#ifndef SLUICE_TEST_LOOPBACK_H
#define SLUICE_TEST_LOOPBACK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

/* The listening socket (its port in *port), or -1. */
static int listen_loopback(uint16_t *port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0 ||
      getsockname(s, (struct sockaddr *)&a, &len) < 0)
    return -1;
  *port = ntohs(a.sin_port);
  return s;
}

#endif
