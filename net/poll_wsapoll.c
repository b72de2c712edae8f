/* poll_wsapoll.c: the Windows backend of poller.h, on WSAPoll. I/O thread
 * only. Compiles to nothing elsewhere.
 *
 * Why WSAPoll and not I/O completion ports: the engine is built on
 * readiness (level-triggered "this socket can be read / written now", then a
 * non-blocking call that may move less); IOCP reports completions of
 * operations handed to the kernel with their buffers, which would mean a
 * completion-based redesign of every reader and writer (rings lent to the
 * kernel, cancellation on close) for gains that matter at thousands of busy
 * sockets, not at an editor's or a game's dozens.
 *
 * WSAPoll's quirks, and what this file does about them:
 * - An empty set fails at once (WSAEINVAL) instead of sleeping: with nothing
 *   registered the wait sleeps here (at most WAIT_EMPTY_MS at a time).
 * - POLLPRI (and asking for POLLERR / POLLHUP) in events is refused:
 *   only POLLRDNORM / POLLWRNORM are asked; errors are reported anyway.
 * - Windows 10 before version 2004 never reports a non-blocking connect that
 *   failed (no POLLERR, no POLLOUT: the attempt would hang until its
 *   timeout): sockets waiting to write are checked with select every
 *   CHECK_MS, and one with an error is reported as NET_POLL_ERR.
 * - The peer's FIN sets POLLHUP for good (poll(2) waits for both directions),
 *   and POLLHUP cannot be masked: a socket still writing to a half-closed
 *   peer would make every wait return at once. After its EOF was read (no
 *   more interest in input), such a socket is "latched": left out of WSAPoll
 *   (its entry holds INVALID_SOCKET, which WSAPoll skips) and checked for
 *   room on its own every LATCH_MS while it waits to write.
 * - A wake-up is a loopback datagram, and one has been seen to go missing
 *   under load (wine): every later waker finds the wake-up pending and sends
 *   none, so an idle engine would sleep until some timer. No wait is longer
 *   than WAIT_MAX_MS: a lost wake-up costs that much, never the rest.
 * Registered sockets live in a dense pollfd array; an open-addressing table
 * keyed by the SOCKET finds their slot (SOCKET values are not small). */
#ifdef _WIN32
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "os.h"
#include "poller.h"

#define WAIT_EMPTY_MS 100
#define WAIT_MAX_MS 250
#define CHECK_MS 250
#define LATCH_MS 10

typedef struct slot_info {
  void *ud;
  net_sock fd;    /* the socket, also while its pollfd holds INVALID_SOCKET */
  bool latched;   /* POLLHUP latched by the peer's FIN: left out of WSAPoll */
} slot_info;

typedef struct slot_entry {
  net_sock fd;   /* NET_BAD_SOCK: free */
  int slot;
} slot_entry;

struct net_poller {
  WSAPOLLFD *fds;   /* dense: slots [0, n) */
  slot_info *info;  /* beside fds, slot for slot */
  int n, cap;
  int nout;         /* slots asking for POLLWRNORM */
  int nlatched;
  slot_entry *tab;  /* power of two, at most half full */
  size_t tab_cap;
  int next;         /* where the next scan starts, for fairness */
  uint64_t checked; /* ms of the last SO_ERROR sweep */
};

static size_t hash(net_sock fd, size_t cap) {
  uint64_t h = (uint64_t)fd * 0x9E3779B97F4A7C15u;
  return (size_t)(h >> 32) & (cap - 1);
}

/* The table entry of fd, or the free one where it would go. */
static slot_entry *find(net_poller *p, net_sock fd) {
  size_t i = hash(fd, p->tab_cap);
  while (p->tab[i].fd != NET_BAD_SOCK && p->tab[i].fd != fd) i = (i + 1) & (p->tab_cap - 1);
  return &p->tab[i];
}

static bool tab_resize(net_poller *p, size_t cap) {
  slot_entry *old = p->tab, *t = net__malloc(sizeof *t * cap);
  if (!t) return false;
  for (size_t i = 0; i < cap; i++) t[i].fd = NET_BAD_SOCK;
  size_t old_cap = p->tab_cap;
  p->tab = t;
  p->tab_cap = cap;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].fd != NET_BAD_SOCK) *find(p, old[i].fd) = old[i];
  net__free(old);
  return true;
}

/* Linear probing removal: later entries of the run move up into the hole. */
static void tab_remove(net_poller *p, slot_entry *e) {
  size_t mask = p->tab_cap - 1, i = (size_t)(e - p->tab), j = i;
  p->tab[i].fd = NET_BAD_SOCK;
  for (;;) {
    j = (j + 1) & mask;
    if (p->tab[j].fd == NET_BAD_SOCK) return;
    size_t home = hash(p->tab[j].fd, p->tab_cap);
    bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
    if (movable) {
      p->tab[i] = p->tab[j];
      p->tab[j].fd = NET_BAD_SOCK;
      i = j;
    }
  }
}

net_poller *net__poller_create(void) {
  net_poller *p = net__calloc(1, sizeof *p);
  if (p && !tab_resize(p, 64)) {
    net__free(p);
    return NULL;
  }
  return p;
}

void net__poller_free(net_poller *p) {
  if (!p) return;
  net__free(p->fds);
  net__free(p->info);
  net__free(p->tab);
  net__free(p);
}

static int grow(net_poller *p) {
  if ((size_t)(p->n + 1) * 2 > p->tab_cap && !tab_resize(p, p->tab_cap * 2)) return -1;
  if (p->n == p->cap) {
    int cap = p->cap ? p->cap * 2 : 64;
    WSAPOLLFD *f = net__realloc(p->fds, sizeof *f * (size_t)cap);
    if (!f) return -1;
    p->fds = f;
    slot_info *u = net__realloc(p->info, sizeof *u * (size_t)cap);
    if (!u) return -1;
    p->info = u;
    p->cap = cap;
  }
  return 0;
}

static short events_of(int mask) {
  return (short)(((mask & NET_POLL_IN) ? POLLRDNORM : 0) | ((mask & NET_POLL_OUT) ? POLLWRNORM : 0));
}

int net__poller_add(net_poller *p, net_sock fd, int mask, void *ud) {
  if (fd == NET_BAD_SOCK) return errno = EBADF, -1;
  if (grow(p) < 0) return errno = ENOMEM, -1;
  slot_entry *e = find(p, fd);
  if (e->fd != NET_BAD_SOCK) return errno = EEXIST, -1;
  p->fds[p->n] = (WSAPOLLFD){.fd = fd, .events = events_of(mask)};
  p->nout += (mask & NET_POLL_OUT) != 0;
  p->info[p->n] = (slot_info){ud, fd, false};
  *e = (slot_entry){fd, p->n++};
  return 0;
}

static void latch(net_poller *p, int i, bool on) {
  if (p->info[i].latched == on) return;
  p->info[i].latched = on;
  p->fds[i].fd = on ? INVALID_SOCKET : p->info[i].fd;
  p->nlatched += on ? 1 : -1;
}

int net__poller_mod(net_poller *p, net_sock fd, int mask, void *ud) {
  slot_entry *e = find(p, fd);
  if (fd == NET_BAD_SOCK || e->fd == NET_BAD_SOCK) return errno = ENOENT, -1;
  p->nout += ((mask & NET_POLL_OUT) != 0) - ((p->fds[e->slot].events & POLLWRNORM) != 0);
  p->fds[e->slot].events = events_of(mask);
  p->info[e->slot].ud = ud;
  if (mask & NET_POLL_IN) latch(p, e->slot, false);   /* reading again: its EOF is news */
  return 0;
}

int net__poller_del(net_poller *p, net_sock fd) {
  slot_entry *e = find(p, fd);
  if (fd == NET_BAD_SOCK || e->fd == NET_BAD_SOCK) return errno = ENOENT, -1;
  int i = e->slot, last = --p->n;
  p->nout -= (p->fds[i].events & POLLWRNORM) != 0;
  p->nlatched -= p->info[i].latched;
  tab_remove(p, e);
  if (i != last) {   /* keep the array dense: move the last slot into the hole */
    p->fds[i] = p->fds[last];
    p->info[i] = p->info[last];
    find(p, p->info[i].fd)->slot = i;
  }
  return 0;
}

/* A failed connect, seen without taking its error: reading SO_ERROR clears
 * it on Windows, and the engine reads it after us to say why; select's
 * except set shows the failure and leaves it. */
static bool connect_failed(net_sock s) {
  fd_set ex;
  FD_ZERO(&ex);
  FD_SET(s, &ex);
  struct timeval zero = {0, 0};
  return select(0, NULL, NULL, &ex, &zero) == 1;
}

/* Sockets waiting to write whose connect failed without WSAPoll saying so
 * (older Windows 10) get POLLERR, as poll(2) would give. */
static int sweep_errors(net_poller *p) {
  uint64_t now = net__now_ms();
  int found = 0;
  if (now - p->checked < CHECK_MS) return 0;
  p->checked = now;
  for (int i = 0; i < p->n; i++) {
    if (!(p->fds[i].events & POLLWRNORM) || p->fds[i].revents || p->info[i].latched) continue;
    if (connect_failed(p->info[i].fd)) {
      p->fds[i].revents = POLLERR;
      found++;
    }
  }
  return found;
}

/* Latched sockets waiting to write, asked one by one without waiting:
 * room gives POLLWRNORM, an error POLLERR. Returns how many got either. */
static int check_latched(net_poller *p) {
  int found = 0;
  for (int i = 0; i < p->n; i++) {
    if (!p->info[i].latched) continue;
    p->fds[i].revents = 0;   /* WSAPoll did not look at it */
    if (!(p->fds[i].events & POLLWRNORM)) continue;
    WSAPOLLFD one = {.fd = p->info[i].fd, .events = POLLWRNORM};
    int err = 0;
    socklen_t len = sizeof err;
    if (net_sock_getopt(one.fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err) one.revents = POLLERR;
    else if (WSAPoll(&one, 1, 0) != 1) continue;
    p->fds[i].revents = one.revents & (POLLWRNORM | POLLERR | POLLNVAL);
    found += p->fds[i].revents != 0;
  }
  return found;
}

/* What a slot's revents tell the engine. A FIN alone (POLLHUP without an
 * error) is input's end where input is wanted; elsewhere it latches. */
static int mask_of(net_poller *p, int i, short re) {
  int mask = 0;
  if (re & (POLLRDNORM | POLLRDBAND)) mask |= NET_POLL_IN;
  if (re & POLLWRNORM) mask |= NET_POLL_OUT;
  if (re & (POLLERR | POLLNVAL)) return mask | NET_POLL_ERR;
  if (re & POLLHUP) {
    if (p->fds[i].events & POLLRDNORM) mask |= NET_POLL_IN;
    else latch(p, i, true);
  }
  return mask;
}

static int collect(net_poller *p, net_poll_event *out, int max, int r) {
  int got = 0;
  if (p->next >= p->n) p->next = 0;
  /* Start where the last scan stopped so a busy low slot cannot starve others. */
  for (int k = 0; k < p->n && got < max && r > 0; k++) {
    int i = (p->next + k) % p->n;
    short re = p->fds[i].revents;
    if (!re) continue;
    r--;
    p->fds[i].revents = 0;
    int mask = mask_of(p, i, re);
    if (!mask) continue;
    out[got].ud = p->info[i].ud;
    out[got].mask = mask;
    got++;
    if (got == max) p->next = (i + 1) % p->n;
  }
  return got;
}

int net__poller_wait(net_poller *p, net_poll_event *out, int max, int timeout_ms) {
  if (timeout_ms < 0 || timeout_ms > WAIT_MAX_MS) timeout_ms = WAIT_MAX_MS;
  if (p->nout && timeout_ms > CHECK_MS) timeout_ms = CHECK_MS;   /* room for the sweep */
  if (p->nlatched && timeout_ms > LATCH_MS) timeout_ms = LATCH_MS;
  int r = 0;
  if (p->n == p->nlatched) {   /* WSAPoll would fail at once: sleep instead */
    if (timeout_ms != 0) Sleep(timeout_ms > WAIT_EMPTY_MS ? WAIT_EMPTY_MS : (DWORD)timeout_ms);
  } else if ((r = WSAPoll(p->fds, (ULONG)p->n, timeout_ms)) == SOCKET_ERROR) {
    int e = WSAGetLastError();
    return e == WSAEINTR ? 0 : (errno = net_sock_map_error(e), -1);
  }
  if (p->nlatched) r += check_latched(p);
  if (p->nout) r += sweep_errors(p);
  return collect(p, out, max, r);
}

const char *net__poller_name(void) { return "wsapoll"; }

#else
typedef int net__poll_wsapoll_unused;   /* ISO C wants something in every file */
#endif
