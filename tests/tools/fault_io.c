/* fault_io.c: an LD_PRELOAD library that makes the kernel look stingy, for
 * fault injection: with SLUICE_FAULT holding
 *   send1   every send/sendmsg on a stream socket moves at most one byte,
 *   recv1   every recv/recvmsg on a stream socket moves at most one byte,
 *   eagainN every Nth of those calls fails with EAGAIN first,
 *   wakefailN the first N writes to an eventfd (the I/O thread's wake-up)
 *           fail with EIO,
 *   sendreset once a MiB went out on stream sockets (past any TLS
 *           handshake), a send on one with input waiting fails with
 *           ECONNRESET, and until one has, every receive finds nothing: a
 *           peer's answer and its reset arrive while we send a large body,
 *   selfconnect a stream socket connecting binds first to the address it
 *           connects to: with nothing listening there, it meets itself (TCP
 *           simultaneous open), as an ephemeral port can by chance,
 *   slowfile every write to a regular file waits 20 ms first: a disk that
 *           lags behind the network,
 *   nothreadN pthread_create fails (EAGAIN, a thread limit) past its first N
 *           calls,
 *   slowrename a rename of a ".part" file waits 600 ms first (a slow network
 *           file system putting a download in place),
 * (comma-separated). Datagram sockets are left alone. Any thread. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static int send1, recv1, eagain_every, wake_fails, send_reset, self_connect, slow_file, slow_rename, threads_max = -1;
static atomic_int threads_made;
static atomic_long calls;
static atomic_int wakes_failed;
static atomic_int reset_done;
static atomic_long sent_total;   /* bytes sent on stream sockets: sendreset arms past RESET_AFTER */
#define RESET_AFTER (1L << 20)
static atomic_int ready;

static void init(void) {
  if (atomic_load(&ready)) return;
  const char *f = getenv("SLUICE_FAULT");
  if (f) {
    send1 = strstr(f, "send1") != NULL;
    recv1 = strstr(f, "recv1") != NULL;
    send_reset = strstr(f, "sendreset") != NULL;
    self_connect = strstr(f, "selfconnect") != NULL;
    slow_file = strstr(f, "slowfile") != NULL;
    slow_rename = strstr(f, "slowrename") != NULL;
    const char *e = strstr(f, "eagain");
    if (e) eagain_every = atoi(e + 6);
    const char *w = strstr(f, "wakefail");
    if (w) wake_fails = atoi(w + 8);
    const char *t = strstr(f, "nothread");
    if (t) threads_max = atoi(t + 8);
  }
  atomic_store(&ready, 1);
}

static bool stream(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

/* Whether this send fails as if the peer had reset: its answer waits unread. */
static bool armed(void) { return send_reset && atomic_load(&sent_total) >= RESET_AFTER; }

static bool reset_now(int fd) {
  int waiting = 0;
  if (!armed() || ioctl(fd, FIONREAD, &waiting) != 0 || waiting == 0) return false;
  atomic_store(&reset_done, 1);
  return true;
}

/* Whether this receive finds nothing: the answer waits for the reset. */
static bool held(void) { return armed() && !atomic_load(&reset_done); }

static ssize_t count_sent(ssize_t n) {
  if (n > 0) atomic_fetch_add(&sent_total, (long)n);
  return n;
}

/* Whether this call fails with EAGAIN before doing anything. */
static bool refuse(void) {
  return eagain_every > 0 && atomic_fetch_add(&calls, 1) % eagain_every == eagain_every - 1;
}

static bool is_eventfd(int fd) {
  char path[64], link[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n < 0) return false;
  link[n] = 0;
  return strcmp(link, "anon_inode:[eventfd]") == 0;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*rename_fn)(const char *, const char *);
typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

/* libc's own function of that name. */
#define REAL(name, type) \
  static type real; \
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, name)

/* A copy of msg whose data is its first byte only. */
static struct msghdr one_byte(const struct msghdr *msg, struct iovec *iov) {
  struct msghdr m = *msg;
  for (size_t i = 0; i < msg->msg_iovlen; i++)
    if (msg->msg_iov[i].iov_len > 0) {
      *iov = (struct iovec){msg->msg_iov[i].iov_base, 1};
      m.msg_iov = iov;
      m.msg_iovlen = 1;
      break;
    }
  return m;
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
  REAL("send", send_fn);
  init();
  if (!stream(fd)) return real(fd, buf, len, flags);
  if (reset_now(fd)) return errno = ECONNRESET, -1;
  if (refuse()) return errno = EAGAIN, -1;
  return count_sent(real(fd, buf, send1 && len > 1 ? 1 : len, flags));
}

ssize_t recv(int fd, void *buf, size_t len, int flags) {
  REAL("recv", recv_fn);
  init();
  if (!stream(fd)) return real(fd, buf, len, flags);
  if (refuse() || held()) return errno = EAGAIN, -1;
  return real(fd, buf, recv1 && len > 1 ? 1 : len, flags);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  REAL("sendmsg", sendmsg_fn);
  init();
  if (!stream(fd)) return real(fd, msg, flags);
  if (reset_now(fd)) return errno = ECONNRESET, -1;
  if (refuse()) return errno = EAGAIN, -1;
  if (!send1) return count_sent(real(fd, msg, flags));
  struct iovec iov;
  struct msghdr m = one_byte(msg, &iov);
  return count_sent(real(fd, &m, flags));
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  REAL("recvmsg", recvmsg_fn);
  init();
  if (!stream(fd)) return real(fd, msg, flags);
  if (refuse() || held()) return errno = EAGAIN, -1;
  if (!recv1) return real(fd, msg, flags);
  struct iovec iov;
  struct msghdr m = one_byte(msg, &iov);
  ssize_t n = real(fd, &m, flags);
  msg->msg_flags = m.msg_flags;
  return n;
}

int connect(int fd, const struct sockaddr *to, socklen_t len) {
  REAL("connect", connect_fn);
  init();
  if (self_connect && stream(fd)) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bind(fd, to, len);   /* failing (the port taken), it connects as usual */
  }
  return real(fd, to, len);
}

ssize_t write(int fd, const void *buf, size_t len) {
  REAL("write", write_fn);
  init();
  if (atomic_load(&wakes_failed) < wake_fails && is_eventfd(fd) &&
      atomic_fetch_add(&wakes_failed, 1) < wake_fails)
    return errno = EIO, -1;
  struct stat st;
  if (slow_file && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) usleep(20000);
  return real(fd, buf, len);
}

int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
  REAL("pthread_create", pthread_create_fn);
  init();
  if (threads_max >= 0 && atomic_fetch_add(&threads_made, 1) >= threads_max) return EAGAIN;
  return real(t, a, fn, arg);
}

int rename(const char *from, const char *to) {
  REAL("rename", rename_fn);
  init();
  size_t n = strlen(from);
  if (slow_rename && n > 5 && !strcmp(from + n - 5, ".part")) usleep(600000);
  return real(from, to);
}
