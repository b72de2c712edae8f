/* sock.h: the one place where platform socket differences live: POSIX
 * sockets and Winsock behind one set of names. Used by the I/O thread,
 * resolver helpers and owners opening sockets.
 *
 * Errors: every net_sock_* call that fails leaves a POSIX error number in
 * errno (on Windows the Winsock error, translated), so the engine reads
 * errno the same way everywhere. */
#ifndef SLUICE_SOCK_H
#define SLUICE_SOCK_H

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"

#ifdef _WIN32
/* ---- Winsock ---------------------------------------------------------------- */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <afunix.h>
#include <iphlpapi.h>
#include <mswsock.h>
#include <sys/types.h>

#ifndef TCP_KEEPIDLE
#define TCP_KEEPIDLE 3   /* Windows 10 1709+ (TCP_KEEPALIVE); mingw-w64's headers lack it */
#endif

typedef SOCKET net_sock;
/* net_sock_local_addrs calls this for each address of an interface that is up. */
typedef void (*net_sock_addr_fn)(void *ud, const struct sockaddr *sa, socklen_t len);
/* c-ares' socket callbacks take POSIX iovecs; Windows has none. */
struct iovec {
  void *iov_base;
  size_t iov_len;
};
#define NET_BAD_SOCK INVALID_SOCKET
typedef WSABUF net_iov;
#define NET_IOV(b, l) ((net_iov){(ULONG)(l), (char *)(b)})
#define NET_SEND_FLAGS 0   /* Winsock raises no SIGPIPE */
#define NET_FOPEN_READ "r"   /* msvcrt's fopen may not take N; the file is open for microseconds */
#ifndef SHUT_WR
#define SHUT_WR SD_SEND
#define SHUT_RDWR SD_BOTH
#endif
#ifndef EHOSTDOWN
#define EHOSTDOWN WSAEHOSTDOWN   /* the CRT has no number for it */
#endif

/* The POSIX number for a Winsock error (unknown ones pass through). */
static inline int net_sock_map_error(int w) {
  switch (w) {
    case WSAEWOULDBLOCK: return EWOULDBLOCK;
    case WSAEINPROGRESS: case WSAEALREADY: return EINPROGRESS;
    case WSAEINTR: return EINTR;
    case WSAECONNREFUSED: return ECONNREFUSED;
    case WSAECONNRESET: case WSAENETRESET: return ECONNRESET;
    case WSAECONNABORTED: return ECONNABORTED;
    case WSAESHUTDOWN: return EPIPE;
    case WSAETIMEDOUT: return ETIMEDOUT;
    case WSAEADDRINUSE: return EADDRINUSE;
    case WSAEADDRNOTAVAIL: return EADDRNOTAVAIL;
    case WSAENETUNREACH: return ENETUNREACH;
    case WSAEHOSTUNREACH: return EHOSTUNREACH;
    case WSAENETDOWN: return ENETDOWN;
    case WSAEAFNOSUPPORT: case WSAEPFNOSUPPORT: return EAFNOSUPPORT;
    case WSAEMFILE: return EMFILE;
    case WSAENOBUFS: return ENOBUFS;
    case WSAEMSGSIZE: return EMSGSIZE;
    case WSAEACCES: return EACCES;
    case WSAEINVAL: case WSAEFAULT: return EINVAL;
    case WSAENOTCONN: return ENOTCONN;
    case WSAEISCONN: return EISCONN;
    case WSAENOTSOCK: return ENOTSOCK;
    case WSAENOPROTOOPT: return ENOPROTOOPT;
    case WSAEPROTONOSUPPORT: return EPROTONOSUPPORT;
    case WSAEOPNOTSUPP: return EOPNOTSUPP;
    case WSA_NOT_ENOUGH_MEMORY: return ENOMEM;
    case WSANOTINITIALISED: return EINVAL;
    default: return w;
  }
}
static inline int net_sock_fail(void) { return errno = net_sock_map_error(WSAGetLastError()), -1; }
static inline int net_sock_check(int r) { return r == SOCKET_ERROR ? net_sock_fail() : r; }

/* Winsock is started once per process (engine setup); it stays up. */
static inline bool net_sock_startup(void) {
  WSADATA d;
  return WSAStartup(MAKEWORD(2, 2), &d) == 0;
}
static inline void net_sock_close(net_sock s) { closesocket(s); }

/* A non-blocking socket, not inherited by child processes. A UDP socket
 * also stops reporting ICMP port-unreachable as a reset on its next receive
 * (Windows alone does), which would look like a failure of the socket. */
static inline net_sock net_sock_open3(int family, int type, int proto) {
  net_sock s = WSASocketW(family, type, proto, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET && WSAGetLastError() == WSANOTINITIALISED && net_sock_startup())   /* before net_init */
    s = WSASocketW(family, type, proto, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) return net_sock_fail(), s;
  u_long one = 1;
  if (ioctlsocket(s, FIONBIO, &one) != 0) {
    net_sock_fail();
    closesocket(s);
    return INVALID_SOCKET;
  }
  if (type == SOCK_DGRAM) {
    BOOL off = FALSE;
    DWORD got;
    WSAIoctl(s, SIO_UDP_CONNRESET, &off, sizeof off, NULL, 0, &got, NULL, NULL);
  }
  return s;
}

static inline int net_sock_connect(net_sock s, const void *sa, socklen_t len) {
  if (connect(s, (const struct sockaddr *)sa, len) == 0) return 0;
  int w = WSAGetLastError();   /* a non-blocking connect under way says "would block" */
  errno = w == WSAEWOULDBLOCK ? EINPROGRESS : net_sock_map_error(w);
  return -1;
}
/* Winsock completes no connect inside the call: the poller asks. */
static inline int net_sock_connect_done(net_sock s, const void *sa, socklen_t len) {
  (void)s, (void)sa, (void)len;
  return 0;
}
static inline int net_sock_bind(net_sock s, const void *sa, socklen_t len) {
  return net_sock_check(bind(s, (const struct sockaddr *)sa, len));
}
static inline int net_sock_listen(net_sock s, int backlog) { return net_sock_check(listen(s, backlog)); }
/* The accepted socket inherits the listener's non-blocking mode, but not
 * its refusal to be inherited: a child process would hold it open. */
static inline net_sock net_sock_accept(net_sock s, void *sa, socklen_t *len) {
  net_sock c = accept(s, (struct sockaddr *)sa, len);
  if (c == INVALID_SOCKET) net_sock_fail();
  else SetHandleInformation((HANDLE)c, HANDLE_FLAG_INHERIT, 0);
  return c;
}
static inline int net_sock_shutdown(net_sock s, int how) { return net_sock_check(shutdown(s, how)); }
static inline int net_sock_getsockname(net_sock s, void *sa, socklen_t *len) {
  return net_sock_check(getsockname(s, (struct sockaddr *)sa, len));
}
static inline int net_sock_getpeername(net_sock s, void *sa, socklen_t *len) {
  return net_sock_check(getpeername(s, (struct sockaddr *)sa, len));
}
/* SO_REUSEADDR on a TCP socket is skipped: on Windows it lets a socket take
 * over a port another one listens on (an "address in use" never comes), and
 * rebinding over connections in TIME_WAIT needs no option there. */
static inline int net_sock_setopt(net_sock s, int level, int name, const void *v, socklen_t len) {
  int type = 0;
  socklen_t tlen = sizeof type;
  if (level == SOL_SOCKET && name == SO_REUSEADDR &&
      getsockopt(s, SOL_SOCKET, SO_TYPE, (char *)&type, &tlen) == 0 && type == SOCK_STREAM)
    return 0;
  return net_sock_check(setsockopt(s, level, name, (const char *)v, len));
}
/* SO_ERROR gives a POSIX number too. */
static inline int net_sock_getopt(net_sock s, int level, int name, void *v, socklen_t *len) {
  if (net_sock_check(getsockopt(s, level, name, (char *)v, len)) < 0) return -1;
  if (level == SOL_SOCKET && name == SO_ERROR && *len == sizeof(int)) *(int *)v = net_sock_map_error(*(int *)v);
  return 0;
}
static inline ssize_t net_sock_send(net_sock s, const void *buf, size_t len, int flags) {
  int n = send(s, (const char *)buf, len > INT_MAX ? INT_MAX : (int)len, flags);
  return n == SOCKET_ERROR ? net_sock_fail() : n;
}
static inline ssize_t net_sock_recv(net_sock s, void *buf, size_t len, int flags) {
  int n = recv(s, (char *)buf, len > INT_MAX ? INT_MAX : (int)len, flags);
  return n == SOCKET_ERROR ? net_sock_fail() : n;
}
/* Scatter read of one stream chunk or one datagram (from: its sender, may be
 * NULL). *trunc: the datagram did not fit and its tail is lost. */
static inline ssize_t net_sock_readv(net_sock s, net_iov *iov, int n, void *from, socklen_t *fromlen,
                                     bool *trunc) {
  DWORD got = 0, flags = 0;
  int r = from ? WSARecvFrom(s, iov, (DWORD)n, &got, &flags, (struct sockaddr *)from, fromlen, NULL, NULL)
               : WSARecv(s, iov, (DWORD)n, &got, &flags, NULL, NULL);
  if (trunc) *trunc = false;
  if (r == SOCKET_ERROR && WSAGetLastError() == WSAEMSGSIZE && trunc) return *trunc = true, (ssize_t)got;
  if (r == SOCKET_ERROR) return net_sock_fail();
  return (ssize_t)got;
}
/* Gather write (to: the destination of a datagram, may be NULL). */
static inline ssize_t net_sock_writev(net_sock s, const net_iov *iov, int n, const void *to, socklen_t tolen) {
  DWORD sent = 0;
  int r = to ? WSASendTo(s, (WSABUF *)iov, (DWORD)n, &sent, 0, (const struct sockaddr *)to, tolen, NULL, NULL)
             : WSASend(s, (WSABUF *)iov, (DWORD)n, &sent, 0, NULL, NULL);
  return r == SOCKET_ERROR ? net_sock_fail() : (ssize_t)sent;
}

/* The I/O thread's wake-up without eventfd: one loopback UDP socket
 * connected to itself, read and written through the same handle. */
static inline bool net_sock_wake_open(net_sock *rd, net_sock *wr) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  net_sock s = net_sock_open3(AF_INET, SOCK_DGRAM, 0);
  if (s == INVALID_SOCKET) return false;
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(s, (struct sockaddr *)&a, &len) != 0 ||
      connect(s, (struct sockaddr *)&a, len) != 0) {
    closesocket(s);
    return false;
  }
  *rd = *wr = s;
  return true;
}
/* False when no wake-up can be counted on to be waiting. */
static inline bool net_sock_wake_signal(net_sock wr) {
  char one = 1;
  /* would block: datagrams are already waiting, which is enough */
  return send(wr, &one, 1, 0) == 1 || WSAGetLastError() == WSAEWOULDBLOCK;
}
static inline void net_sock_wake_drain(net_sock rd) {
  char buf[64];
  while (recv(rd, buf, sizeof buf, 0) > 0) {
  }
}

/* getaddrinfo's failure in words (Windows returns Winsock codes; the texts
 * are those POSIX systems give, so messages read the same). */
static inline const char *net_sock_gai_strerror(int rc, char *buf, size_t len) {
  const char *t = rc == EAI_NONAME ? "Name or service not known"
                  : rc == EAI_AGAIN ? "Temporary failure in name resolution"
                  : rc == EAI_FAIL ? "Non-recoverable failure in name resolution"
                  : rc == EAI_MEMORY ? "Memory allocation failure"
                  : rc == EAI_FAMILY ? "ai_family not supported"
                  : rc == WSANO_DATA ? "No address associated with hostname"
                  : NULL;
  if (t) snprintf(buf, len, "%s", t);
  else snprintf(buf, len, "error %d", rc);
  return buf;
}

/* Bytes the kernel holds that the peer has not acknowledged: unknown here. */
static inline size_t net_sock_unacked(net_sock s) {
  (void)s;
  return 0;
}

/* The system's hosts file. */
static inline const char *net_sock_hosts_file(char *buf, size_t len) {
  UINT n = GetSystemDirectoryA(buf, (UINT)len);
  if (n == 0 || n >= len || (size_t)snprintf(buf + n, len - n, "\\drivers\\etc\\hosts") >= len - n) return NULL;
  return buf;
}

/* Every address of the interfaces that are up; -1 when they cannot be listed. */
static inline int net_sock_local_addrs(net_sock_addr_fn fn, void *ud) {
  ULONG size = 16384, flags = GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST | GAA_FLAG_SKIP_DNS_SERVER;
  IP_ADAPTER_ADDRESSES *list = NULL;
  ULONG r = ERROR_BUFFER_OVERFLOW;
  for (int tries = 0; r == ERROR_BUFFER_OVERFLOW && tries < 3; tries++) {   /* adapters may appear meanwhile */
    free(list);
    if (!(list = malloc(size))) return -1;
    r = GetAdaptersAddresses(AF_UNSPEC, flags, NULL, list, &size);
  }
  if (r != NO_ERROR) {
    free(list);
    return -1;
  }
  for (IP_ADAPTER_ADDRESSES *a = list; a; a = a->Next) {
    if (a->OperStatus != IfOperStatusUp) continue;
    for (IP_ADAPTER_UNICAST_ADDRESS *u = a->FirstUnicastAddress; u; u = u->Next)
      fn(ud, u->Address.lpSockaddr, u->Address.iSockaddrLength);
  }
  free(list);
  return 0;
}

#else
/* ---- POSIX ------------------------------------------------------------------ */
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

typedef int net_sock;
/* net_sock_local_addrs calls this for each address of an interface that is up. */
typedef void (*net_sock_addr_fn)(void *ud, const struct sockaddr *sa, socklen_t len);
#define NET_BAD_SOCK (-1)
#define NET_FOPEN_READ "re"   /* fopen: reading, close-on-exec */
typedef struct iovec net_iov;
#define NET_IOV(b, l) ((net_iov){(void *)(b), (l)})

#ifdef MSG_NOSIGNAL
#define NET_SEND_FLAGS MSG_NOSIGNAL
#else
#define NET_SEND_FLAGS 0   /* SO_NOSIGPIPE is set per socket instead */
#endif

static inline bool net_sock_startup(void) { return true; }
static inline void net_sock_close(net_sock s) { close(s); }

/* A non-blocking, close-on-exec socket that never raises SIGPIPE. */
static inline net_sock net_sock_open3(int family, int type, int proto) {
#ifdef SOCK_NONBLOCK
  net_sock s = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
#else
  net_sock s = socket(family, type, proto);
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

static inline int net_sock_connect(net_sock s, const void *sa, socklen_t len) {
  return connect(s, (const struct sockaddr *)sa, len);
}
/* Whether a connect under way is done: 1 connected, 0 under way, -1 failed
 * (errno set). Linux completes a loopback handshake inside the first call,
 * which still says "in progress"; asking again saves a turn of the poller.
 * Elsewhere a second call's answer to a failure varies: the poller asks. */
static inline int net_sock_connect_done(net_sock s, const void *sa, socklen_t len) {
#ifdef __linux__
  if (connect(s, (const struct sockaddr *)sa, len) == 0 || errno == EISCONN) return 1;
  return errno == EALREADY || errno == EINPROGRESS || errno == EINTR ? 0 : -1;
#else
  (void)s, (void)sa, (void)len;
  return 0;
#endif
}
static inline int net_sock_bind(net_sock s, const void *sa, socklen_t len) {
  return bind(s, (const struct sockaddr *)sa, len);
}
static inline int net_sock_listen(net_sock s, int backlog) { return listen(s, backlog); }
/* A non-blocking, close-on-exec accepted socket. */
static inline net_sock net_sock_accept(net_sock s, void *sa, socklen_t *len) {
#ifdef SOCK_NONBLOCK
  return accept4(s, (struct sockaddr *)sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
  net_sock c = accept(s, (struct sockaddr *)sa, len);
  if (c >= 0) {
    fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
    fcntl(c, F_SETFD, FD_CLOEXEC);
  }
  return c;
#endif
}
static inline int net_sock_shutdown(net_sock s, int how) { return shutdown(s, how); }
static inline int net_sock_getsockname(net_sock s, void *sa, socklen_t *len) {
  return getsockname(s, (struct sockaddr *)sa, len);
}
static inline int net_sock_getpeername(net_sock s, void *sa, socklen_t *len) {
  return getpeername(s, (struct sockaddr *)sa, len);
}
static inline int net_sock_setopt(net_sock s, int level, int name, const void *v, socklen_t len) {
  return setsockopt(s, level, name, v, len);
}
static inline int net_sock_getopt(net_sock s, int level, int name, void *v, socklen_t *len) {
  return getsockopt(s, level, name, v, len);
}
static inline ssize_t net_sock_send(net_sock s, const void *buf, size_t len, int flags) {
  return send(s, buf, len, flags);
}
static inline ssize_t net_sock_recv(net_sock s, void *buf, size_t len, int flags) {
  return recv(s, buf, len, flags);
}
/* Scatter read of one stream chunk or one datagram (from: its sender, may be
 * NULL). *trunc: the datagram did not fit and its tail is lost. */
static inline ssize_t net_sock_readv(net_sock s, net_iov *iov, int n, void *from, socklen_t *fromlen,
                                     bool *trunc) {
  struct msghdr mh = {.msg_name = from, .msg_namelen = fromlen ? *fromlen : 0, .msg_iov = iov,
                      .msg_iovlen = (size_t)n};
  ssize_t r = recvmsg(s, &mh, 0);
  if (fromlen) *fromlen = mh.msg_namelen;
  if (trunc) *trunc = r >= 0 && (mh.msg_flags & MSG_TRUNC);
  return r;
}
/* Gather write (to: the destination of a datagram, may be NULL). */
static inline ssize_t net_sock_writev(net_sock s, const net_iov *iov, int n, const void *to, socklen_t tolen) {
  struct msghdr mh = {.msg_name = (void *)to, .msg_namelen = to ? tolen : 0, .msg_iov = (net_iov *)iov,
                      .msg_iovlen = (size_t)n};
  return sendmsg(s, &mh, NET_SEND_FLAGS);
}

/* The I/O thread's wake-up: an eventfd on Linux (read and written through
 * the same fd), a self-pipe elsewhere. */
static inline bool net_sock_wake_open(net_sock *rd, net_sock *wr) {
#ifdef __linux__
  *rd = *wr = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return *rd >= 0;
#else
  int p[2];
  if (pipe(p) < 0) return false;
  for (int i = 0; i < 2; i++) {
    fcntl(p[i], F_SETFL, O_NONBLOCK);
    fcntl(p[i], F_SETFD, FD_CLOEXEC);
  }
  *rd = p[0];
  *wr = p[1];
  return true;
#endif
}
/* False when no wake-up can be counted on to be waiting. */
static inline bool net_sock_wake_signal(net_sock wr) {
  uint64_t one = 1;
  ssize_t r;
  do r = write(wr, &one, sizeof one);
  while (r < 0 && errno == EINTR);
  return r > 0 || errno == EAGAIN;   /* a full counter or pipe is a wake-up waiting */
}
static inline void net_sock_wake_drain(net_sock rd) {
#ifdef __linux__
  uint64_t count;   /* one read empties an eventfd */
  if (read(rd, &count, sizeof count) < 0) return;
#else
  char buf[64];
  while (read(rd, buf, sizeof buf) > 0) {
  }
#endif
}

/* getaddrinfo's failure in words. */
static inline const char *net_sock_gai_strerror(int rc, char *buf, size_t len) {
  if (rc == EAI_SYSTEM) return net__os_strerror(errno, buf, len);
  snprintf(buf, len, "%s", gai_strerror(rc));
  return buf;
}

/* Bytes the kernel holds that the peer has not acknowledged (0 where the
 * system does not say). */
static inline size_t net_sock_unacked(net_sock s) {
  int n = 0;
#if defined(__linux__) && defined(TIOCOUTQ)
  if (ioctl(s, TIOCOUTQ, &n) < 0) n = 0;   /* SIOCOUTQ: written, not yet acknowledged */
#elif defined(SO_NWRITE)
  socklen_t len = sizeof n;
  if (getsockopt(s, SOL_SOCKET, SO_NWRITE, &n, &len) < 0) n = 0;
#else
  (void)s;
#endif
  return n > 0 ? (size_t)n : 0;
}

/* The system's hosts file. */
static inline const char *net_sock_hosts_file(char *buf, size_t len) {
  (void)buf, (void)len;
  return "/etc/hosts";
}

/* Every address of the interfaces that are up; -1 when they cannot be listed. */
static inline int net_sock_local_addrs(net_sock_addr_fn fn, void *ud) {
  struct ifaddrs *ifs;
  if (getifaddrs(&ifs) < 0) return -1;
  for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
    int f = i->ifa_addr->sa_family;
    if (f == AF_INET || f == AF_INET6)
      fn(ud, i->ifa_addr, f == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
  }
  freeifaddrs(ifs);
  return 0;
}
#endif

static inline int net_sock_errno(void) { return errno; }
static inline int net_sock_would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK; }
static inline int net_sock_in_progress(int e) { return e == EINPROGRESS || e == EINTR; }
static inline net_sock net_sock_open(int family, int type) { return net_sock_open3(family, type, 0); }

#endif
