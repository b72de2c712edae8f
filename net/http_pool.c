/* http_pool.c: idle keep-alive connections, per origin, for the next request
 * to the same place (scheme, host, port and TLS options alike). The pool
 * owns them while idle: any news from one (the server closed it, or sent
 * bytes nobody asked for) drops it, and so does its idle timeout. I/O thread. */
#include <string.h>

#include "alloc.h"
#include "http.h"

#define POOL_MAX 32            /* idle connections in all */
#define POOL_PER_ORIGIN 4      /* idle connections to one origin */
#define POOL_IDLE_MS 30000     /* servers commonly keep an idle connection 60 s or more */

typedef struct pooled {
  net_conn *c;
  char *key;
  uint64_t until;
} pooled;

static void pool_kicked(net_io *io);
static void pool_event(net_io *io, int mask) { (void)io, (void)mask; }
static void pool_timer(net_io *io, uint64_t now);
static void pool_destroy(net_io *io) { (void)io; }   /* static: lives as long as the process */
static const net_io_ops pool_ops = {pool_kicked, pool_event, pool_timer, pool_destroy};

static struct {
  net_io obj;
  bool ready;
  pooled e[POOL_MAX];
  int n;
} P;

static void drop(int i) {
  net__conn_close_link(P.e[i].c);
  net__free(P.e[i].key);
  P.e[i] = P.e[--P.n];
}

/* Whether an idle connection can still carry a request: established,
 * nothing unasked for arrived, the server has not closed it. */
static bool usable(net_conn *c) {
  return net_conn_status(c).status == NET_SUCCESS && net_conn_available(c) == 0 && !net_conn_input_ended(c);
}

static void arm(void) {
  uint64_t next = 0;
  for (int i = 0; i < P.n; i++)
    if (!next || P.e[i].until < next) next = P.e[i].until;
  net__io_timer(&P.obj, next);
}

static void sweep(uint64_t now) {
  for (int i = P.n - 1; i >= 0; i--)
    if (now >= P.e[i].until || !usable(P.e[i].c)) drop(i);
  arm();
}

static void pool_kicked(net_io *io) {
  (void)io;
  sweep(net__now_ms());
}

static void pool_timer(net_io *io, uint64_t now) {
  (void)io;
  sweep(now);
}

void net__http_pool_put(const char *key, net_conn *c) {
  if (!P.ready) {
    net__io_init(&P.obj, &pool_ops, 1);
    P.ready = true;
  }
  int same = 0, oldest = -1;
  for (int i = 0; i < P.n; i++)
    if (!strcmp(P.e[i].key, key)) {
      same++;
      if (oldest < 0 || P.e[i].until < P.e[oldest].until) oldest = i;
    }
  if (same >= POOL_PER_ORIGIN) drop(oldest);
  if (P.n == POOL_MAX) drop(0);
  char *k = net__strdup(key);
  if (!k || !usable(c)) {
    net__free(k);
    net__conn_close_link(c);
    return;
  }
  net__conn_set_link(c, &P.obj);
  P.e[P.n++] = (pooled){c, k, net__now_ms() + POOL_IDLE_MS};
  arm();
}

net_conn *net__http_pool_take(const char *key, net_io *link, int idle_timeout_ms) {
  for (int i = P.n - 1; i >= 0; i--) {   /* the most recent first: the likeliest still open */
    if (strcmp(P.e[i].key, key)) continue;
    net_conn *c = P.e[i].c;
    if (!usable(c)) {
      drop(i);
      continue;
    }
    net__free(P.e[i].key);
    P.e[i] = P.e[--P.n];
    net__conn_set_link(c, link);
    net__conn_set_idle(c, idle_timeout_ms);   /* not the one of the request that opened it */
    arm();
    return c;
  }
  return NULL;
}
