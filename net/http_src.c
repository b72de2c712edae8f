/* http_src.c: a request body streamed from a file (net_http_opts.body_file),
 * read on a helper lane into a ring the I/O thread sends from, so neither the
 * caller's thread nor the I/O thread touches the disk. A redirect that keeps
 * the body (307, 308) or a retry reads the file again through a new source
 * (an old one may still be inside a job: each is counted). Helper threads,
 * but for the functions marked "I/O thread". */
#include <errno.h>

#include "alloc.h"
#include "helper.h"
#include "http.h"
#include "os.h"

#define SRC_RING (256 * 1024)   /* file bytes read ahead of the connection */

static net_lane src_lane = {.name = "sluice-files-in", .max_threads = 2, .max_queued = 256};

struct http_src {
  net_job job;
  net_http *h;                 /* referenced while a job is queued or running */
  net_ring ring;               /* the helper produces, the I/O thread consumes */
  int fd;
  char *path;
  uint64_t size, pos;          /* the file's size (fixed when prepared), bytes read */
  atomic_int refs;             /* the request's, and a queued or running job's */
  atomic_int busy, prepared, eof;
  atomic_int failed;           /* then err */
  net_error err;
};

/* ---- on a helper thread -------------------------------------------------------------- */

static void fail(http_src *s, const char *op, int e) {
  net__seterr_sys(&s->err, op, s->path, e);
  atomic_store_explicit(&s->failed, 1, memory_order_release);   /* err is complete first */
}

static void prepare(http_src *s) {
  net_file_info st;
  s->fd = net__file_open(s->path, NET_OPEN_READ);
  if (s->fd < 0) return fail(s, "open", errno);
  if (net__file_fstat(s->fd, &st) != 0) return fail(s, "stat", errno);
  if (st.kind == NET_FILE_DIR) return fail(s, "open", EISDIR);
  if (st.kind != NET_FILE_REG) {   /* a FIFO or device would never end */
    net__seterr(&s->err, NET_E_INVALID, "open %s: not a regular file", s->path);
    atomic_store_explicit(&s->failed, 1, memory_order_release);
    return;
  }
  s->size = st.size;
  if (s->size == 0) atomic_store(&s->eof, 1);
  atomic_store_explicit(&s->prepared, 1, memory_order_release);   /* size is set first */
}

/* The file into the ring, as far as it has room. */
static void fill(http_src *s) {
  while (s->pos < s->size) {
    net_span sp[1];
    uint64_t left = s->size - s->pos;
    if (ring_reserve(&s->ring, sp, 1, left < SIZE_MAX ? (size_t)left : SIZE_MAX) <= 0) return;
    ssize_t n = net__file_read(s->fd, sp[0].base, sp[0].len);
    ring_commit(&s->ring, n > 0 ? (size_t)n : 0);
    if (n < 0) return fail(s, "read", errno);
    if (n == 0) return fail(s, "read (the file shrank while it was sent)", EIO);
    s->pos += (uint64_t)n;
  }
  atomic_store(&s->eof, 1);
}

static void unref(http_src *s) {
  if (atomic_fetch_sub(&s->refs, 1) != 1) return;
  if (s->fd >= 0) net__file_close(s->fd);
  ring_destroy(&s->ring);
  net__free(s->path);
  net__free(s);
}

static void run(net_job *job) {
  http_src *s = (http_src *)job;
  net_http *h = s->h;
  if (!atomic_load(&s->prepared)) prepare(s);
  else if (!atomic_load(&s->failed)) fill(s);
  atomic_store(&s->busy, 0);   /* the I/O thread kicks again when it has taken bytes */
  atomic_fetch_or(&h->requests, HREQ_RESUME);
  net__engine_kick(&h->obj);
  net__io_unref(&h->obj);
  unref(s);
}

/* ---- owner (creation) and the I/O thread ------------------------------------------- */

http_src *net__http_src_new(const char *path, const char **err) {
  http_src *s = net__calloc(1, sizeof *s);
  if (!s || !(s->path = net__strdup(path))) {
    net__free(s);
    return *err = "out of memory", NULL;
  }
  s->fd = -1;
  atomic_init(&s->refs, 1);
  ring_init(&s->ring, SRC_RING);
  return s;
}

void net__http_src_free(http_src *s) {
  if (s) unref(s);
}

bool net__http_src_kick(net_http *h) {
  http_src *s = h->src;
  if (atomic_exchange(&s->busy, 1)) return true;
  if (!s->h) {   /* once, before the first job: jobs only read it */
    s->h = h;
    s->job.run = run;
  }
  net__io_ref(&h->obj);
  atomic_fetch_add(&s->refs, 1);
  if (net__lane_submit(&src_lane, &s->job)) return true;
  atomic_store(&s->busy, 0);
  atomic_fetch_sub(&s->refs, 1);
  net__io_unref(&h->obj);
  return false;
}

int net__http_src_prepared(http_src *s, uint64_t *size, net_error *err) {
  if (atomic_load_explicit(&s->failed, memory_order_acquire)) return *err = s->err, -1;
  if (!atomic_load_explicit(&s->prepared, memory_order_acquire)) return 0;
  *size = s->size;
  return 1;
}

long net__http_src_send(net_http *h, net_conn *c, net_error *err) {
  http_src *s = h->src;
  if (atomic_load_explicit(&s->failed, memory_order_acquire)) return *err = s->err, -1;
  long sent = 0;
  net_span sp[1];
  while (ring_peek(&s->ring, sp, 1, SIZE_MAX) > 0) {
    long n = net_conn_write(c, sp[0].base, sp[0].len);
    if (n <= 0) break;   /* full: the connection kicks us with room */
    ring_consume(&s->ring, (size_t)n);
    sent += n;
  }
  /* the consumer's view of room (the producer's belongs to the reading job) */
  if (!atomic_load(&s->eof) && ring_used(&s->ring) < SRC_RING && !net__http_src_kick(h))
    return net__seterr(err, NET_E_LIMIT, "%s", net__http_src_refusal()), -1;
  return sent;
}

const char *net__http_src_refusal(void) { return net__lane_refusal(&src_lane, "too many files being read"); }

bool net__http_src_done(const http_src *s) { return atomic_load(&s->eof) && ring_used((net_ring *)&s->ring) == 0; }

bool net__http_src_rewind(net_http *h) {
  const char *err;
  http_src *fresh = net__http_src_new(h->src->path, &err);
  if (!fresh) return false;
  net__http_src_free(h->src);   /* a job still inside keeps it until it returns */
  h->src = fresh;
  return true;
}
