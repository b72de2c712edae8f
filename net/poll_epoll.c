/* poll_epoll.c: the Linux epoll backend of poller.h. I/O thread only. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "alloc.h"
#include "poller.h"

struct net_poller {
  int epfd;
  int cap;
  struct epoll_event *events;
};

net_poller *net__poller_create(void) {
  net_poller *p = net__calloc(1, sizeof *p);
  if (!p) return NULL;
  p->epfd = epoll_create1(EPOLL_CLOEXEC);
  p->cap = 256;
  p->events = net__malloc(sizeof *p->events * (size_t)p->cap);
  if (p->epfd < 0 || !p->events) {
    net__poller_free(p);
    return NULL;
  }
  return p;
}

void net__poller_free(net_poller *p) {
  if (!p) return;
  if (p->epfd >= 0) close(p->epfd);
  net__free(p->events);
  net__free(p);
}

static int ctl(net_poller *p, int op, int fd, int mask, void *ud) {
  struct epoll_event ev = {0};
  if (mask & NET_POLL_IN) ev.events |= EPOLLIN | EPOLLRDHUP;
  if (mask & NET_POLL_OUT) ev.events |= EPOLLOUT;
  ev.data.ptr = ud;
  return epoll_ctl(p->epfd, op, fd, &ev);
}

int net__poller_add(net_poller *p, int fd, int mask, void *ud) {
  return ctl(p, EPOLL_CTL_ADD, fd, mask, ud);
}

int net__poller_mod(net_poller *p, int fd, int mask, void *ud) {
  return ctl(p, EPOLL_CTL_MOD, fd, mask, ud);
}

int net__poller_del(net_poller *p, int fd) {
  struct epoll_event ev = {0};  /* kernels before 2.6.9 want a non-NULL event */
  return epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, &ev);
}

int net__poller_wait(net_poller *p, net_poll_event *out, int max, int timeout_ms) {
  if (max > p->cap) max = p->cap;
  int n = epoll_wait(p->epfd, p->events, max, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -1;
  for (int i = 0; i < n; i++) {
    uint32_t e = p->events[i].events;
    int mask = 0;
    if (e & (EPOLLIN | EPOLLRDHUP)) mask |= NET_POLL_IN;
    if (e & EPOLLOUT) mask |= NET_POLL_OUT;
    if (e & (EPOLLERR | EPOLLHUP)) mask |= NET_POLL_ERR;
    out[i].ud = p->events[i].data.ptr;
    out[i].mask = mask;
  }
  return n;
}

const char *net__poller_name(void) { return "epoll"; }
