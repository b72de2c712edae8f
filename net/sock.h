/* sock.h: the one place where platform socket differences live (POSIX here).
 * Used by the I/O thread and resolver helpers. */
#ifndef SLUICE_SOCK_H
#define SLUICE_SOCK_H

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

typedef int net_sock;
#define NET_BAD_SOCK (-1)

#ifdef MSG_NOSIGNAL
#define NET_SEND_FLAGS MSG_NOSIGNAL
#else
#define NET_SEND_FLAGS 0   /* SO_NOSIGPIPE is set per socket instead */
#endif

static inline int net_sock_errno(void) { return errno; }
static inline int net_sock_would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK; }
static inline int net_sock_in_progress(int e) { return e == EINPROGRESS || e == EINTR; }
static inline void net_sock_close(net_sock s) { close(s); }

/* A non-blocking, close-on-exec socket that never raises SIGPIPE. */
static inline net_sock net_sock_open(int family, int type) {
#ifdef SOCK_NONBLOCK
  net_sock s = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
  net_sock s = socket(family, type, 0);
  if (s >= 0) {
    fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
    fcntl(s, F_SETFD, FD_CLOEXEC);
  }
#endif
#ifdef SO_NOSIGPIPE
  if (s >= 0) {
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
  }
#endif
  return s;
}

#endif
