/* test_link.c: a protocol on the I/O thread owning a connection (the seam
 * HTTP and WebSockets stand on). A test protocol drives a connection to a
 * loopback echo server with the owner API from the I/O thread, kicked only by
 * the connection's news: it streams 8 MiB through the echo, checks every
 * byte, and closes. Also: the I/O thread's calls do not count as the host
 * polling, and a closed connection kicks its protocol no more. TAP. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "engine.h"

#define TOTAL (8u << 20)
#define PIECE 65536

typedef struct proto {
  net_io obj;
  net_conn *c;                             /* opened on the I/O thread, by the first kick */
  uint16_t port;
  size_t sent, got;
  atomic_int kicks, after_close, result;   /* result: 1 done, -1 failed */
  bool closed, off_thread;
  char why[256];
} proto;

static unsigned char at(size_t i) { return (unsigned char)(i * 7 + (i >> 12)); }

static void finish(proto *p, int result, const char *why) {
  if (why) snprintf(p->why, sizeof p->why, "%s", why);
  net__conn_close_link(p->c);
  p->closed = true;
  atomic_store(&p->result, result);
  net__engine_notify();
}

static void pump(proto *p) {
  unsigned char buf[PIECE];
  while (p->sent < TOTAL) {
    size_t n = TOTAL - p->sent < PIECE ? TOTAL - p->sent : PIECE;
    for (size_t i = 0; i < n; i++) buf[i] = at(p->sent + i);
    long w = net_conn_write(p->c, buf, n);
    if (w <= 0) break;   /* full: the connection kicks us when there is room */
    p->sent += (size_t)w;
  }
  long r;
  while ((r = net_conn_read(p->c, buf, sizeof buf)) > 0) {
    for (long i = 0; i < r; i++)
      if (buf[i] != at(p->got + (size_t)i)) return finish(p, -1, "a wrong byte came back");
    p->got += (size_t)r;
  }
  if (p->got == TOTAL) finish(p, 1, NULL);
}

static void proto_kicked(net_io *io) {
  proto *p = (proto *)io;
  atomic_fetch_add(&p->kicks, 1);
  if (!net__thread_is_io()) p->off_thread = true;
  if (p->closed) {
    atomic_fetch_add(&p->after_close, 1);
    return;
  }
  if (!p->c) {   /* the protocol opens its connection itself, so it knows it before any news */
    const char *err;
    net_addr *a = net_parse_ip("127.0.0.1", 9, &err);
    p->c = net__conn_open_linked(a, p->port, NULL, &p->obj, &err, NULL);
    net_addr_unref(a);
    if (!p->c) {
      snprintf(p->why, sizeof p->why, "open: %s", err);
      p->closed = true;
      atomic_store(&p->result, -1);
      net__engine_notify();
    }
    return;
  }
  net_result st = net_conn_status(p->c);
  if (st.status == NET_FAILURE) return finish(p, -1, st.msg);
  if (st.status == NET_SUCCESS) pump(p);
}

static void proto_event(net_io *io, int mask) { (void)io, (void)mask; }
static void proto_timer(net_io *io, uint64_t now) { (void)io, (void)now; }
static void proto_destroy(net_io *io) { (void)io; }
static const net_io_ops proto_ops = {proto_kicked, proto_event, proto_timer, proto_destroy};

/* ---- a blocking echo server on a thread of its own ---- */

static int listen_fd;

static void *echo(void *unused) {
  (void)unused;
  int fd = accept(listen_fd, NULL, NULL);
  char buf[PIECE];
  ssize_t n;
  while (fd >= 0 && (n = recv(fd, buf, sizeof buf, 0)) > 0)
    for (ssize_t off = 0, w; off < n; off += w)
      if ((w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL)) <= 0) return NULL;
  if (fd >= 0) close(fd);
  return NULL;
}

static int start_echo(pthread_t *t) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) || listen(listen_fd, 1) ||
      getsockname(listen_fd, (struct sockaddr *)&sa, &len) || pthread_create(t, NULL, echo, NULL))
    return -1;
  return ntohs(sa.sin_port);
}

static bool done(void *p) { return atomic_load(&((proto *)p)->result) != 0; }

int main(void) {
  static proto p;
  pthread_t t;
  int port = start_echo(&t);
  printf("1..3\n");
  if (port < 0 || net_init() != 0 || !net__engine_acquire()) return printf("not ok 1 - setup\n"), 1;
  net__io_init(&p.obj, &proto_ops, 1);
  p.port = (uint16_t)port;
  net__engine_kick(&p.obj);
  net__wait_until(done, &p, 60000);
  int r = atomic_load(&p.result);
  printf("%s 1 - the I/O thread's protocol streamed %zu of %u bytes through the echo, checked%s%s\n",
         r == 1 ? "ok" : "not ok", p.got, TOTAL, r == 1 ? "" : ": ", r == 1 ? "" : p.why[0] ? p.why : "timed out");
  printf("%s 2 - its calls ran on the I/O thread, kicked %d times by the connection's news\n",
         !p.off_thread && atomic_load(&p.kicks) > 0 ? "ok" : "not ok", atomic_load(&p.kicks));
  pthread_join(t, NULL);   /* the echo saw the close: no more news can come */
  usleep(100000);
  int late = atomic_load(&p.after_close);
  printf("%s 3 - a closed connection kicks its protocol no more (%d kicks after the close)\n",
         late <= 1 ? "ok" : "not ok", late);
  net_quit();
  return r == 1 && !p.off_thread && late <= 1 ? 0 : 1;
}
