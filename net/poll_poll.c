/* poll_poll.c: the portable poll(2) backend of poller.h. I/O thread only.
 * Registered fds live in a dense array; an fd-indexed table finds their slot. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "poller.h"

struct net_poller {
  struct pollfd *fds;   /* dense: slots [0, n) */
  void **uds;
  int n, cap;
  int *slot_of;         /* fd -> slot + 1, 0 when not registered */
  int slot_cap;
  int next;             /* where the next scan starts, for fairness */
};

net_poller *net__poller_create(void) { return net__calloc(1, sizeof(net_poller)); }

void net__poller_free(net_poller *p) {
  if (!p) return;
  net__free(p->fds);
  net__free(p->uds);
  net__free(p->slot_of);
  net__free(p);
}

static int grow(net_poller *p, int fd) {
  if (fd >= p->slot_cap) {
    int cap = p->slot_cap ? p->slot_cap : 64;
    while (cap <= fd) cap *= 2;
    int *s = net__realloc(p->slot_of, sizeof *s * (size_t)cap);
    if (!s) return -1;
    memset(s + p->slot_cap, 0, sizeof *s * (size_t)(cap - p->slot_cap));
    p->slot_of = s;
    p->slot_cap = cap;
  }
  if (p->n == p->cap) {
    int cap = p->cap ? p->cap * 2 : 64;
    struct pollfd *f = net__realloc(p->fds, sizeof *f * (size_t)cap);
    if (!f) return -1;
    p->fds = f;
    void **u = net__realloc(p->uds, sizeof *u * (size_t)cap);
    if (!u) return -1;
    p->uds = u;
    p->cap = cap;
  }
  return 0;
}

static short events_of(int mask) {
  return (short)(((mask & NET_POLL_IN) ? POLLIN : 0) | ((mask & NET_POLL_OUT) ? POLLOUT : 0));
}

int net__poller_add(net_poller *p, int fd, int mask, void *ud) {
  if (fd < 0) return errno = EBADF, -1;
  if (grow(p, fd) < 0) return errno = ENOMEM, -1;
  if (p->slot_of[fd]) return errno = EEXIST, -1;
  p->fds[p->n] = (struct pollfd){.fd = fd, .events = events_of(mask)};
  p->uds[p->n] = ud;
  p->slot_of[fd] = ++p->n;
  return 0;
}

int net__poller_mod(net_poller *p, int fd, int mask, void *ud) {
  if (fd < 0 || fd >= p->slot_cap || !p->slot_of[fd]) return errno = ENOENT, -1;
  int i = p->slot_of[fd] - 1;
  p->fds[i].events = events_of(mask);
  p->uds[i] = ud;
  return 0;
}

int net__poller_del(net_poller *p, int fd) {
  if (fd < 0 || fd >= p->slot_cap || !p->slot_of[fd]) return errno = ENOENT, -1;
  int i = p->slot_of[fd] - 1, last = --p->n;
  if (i != last) {   /* keep the array dense: move the last slot into the hole */
    p->fds[i] = p->fds[last];
    p->uds[i] = p->uds[last];
    p->slot_of[p->fds[i].fd] = i + 1;
  }
  p->slot_of[fd] = 0;
  return 0;
}

int net__poller_wait(net_poller *p, net_poll_event *out, int max, int timeout_ms) {
  int r = poll(p->fds, (nfds_t)p->n, timeout_ms);
  if (r < 0) return errno == EINTR ? 0 : -1;
  int got = 0;
  if (p->next >= p->n) p->next = 0;
  /* Start where the last scan stopped so a busy low slot cannot starve others. */
  for (int k = 0; k < p->n && got < max && r > 0; k++) {
    int i = (p->next + k) % p->n;
    short re = p->fds[i].revents;
    if (!re) continue;
    r--;
    int mask = 0;
    if (re & POLLIN) mask |= NET_POLL_IN;
    if (re & POLLOUT) mask |= NET_POLL_OUT;
    if (re & (POLLERR | POLLHUP | POLLNVAL)) mask |= NET_POLL_ERR;
    out[got].ud = p->uds[i];
    out[got].mask = mask;
    got++;
    if (got == max) p->next = (i + 1) % p->n;
  }
  return got;
}

const char *net__poller_name(void) { return "poll"; }
