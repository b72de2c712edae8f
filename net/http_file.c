/* http_file.c: a response body written to a file (net_http_opts.output) on
 * a helper lane, never on the I/O thread nor the caller's: into
 * <output>.part, hashed (SHA-256) as it goes when a digest is to be checked,
 * renamed into place once whole
 * and verified. A resumed download continues the .part an earlier attempt
 * left (or the file at output) with a Range request; an abandoned one that
 * was not to be resumed, or that made a .part and wrote nothing, leaves no
 * .part. The I/O thread fills the body ring as it would for a caller; a
 * write job drains it. Helper threads, but for the kick functions marked
 * "I/O thread". */
#include <errno.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "helper.h"
#include "http.h"
#include "os.h"

#define FILE_QUEUE 256   /* requests writing at once; past it, "limit" */

/* The gate between the exchange and the file: whichever bit is set first
 * wins, so a file is either put in place or abandoned, never both. */
enum { GATE_ABANDONED = 1, GATE_PLACING = 2 };

static net_lane file_lane = {.name = "sluice-files", .max_threads = 2, .max_queued = FILE_QUEUE};

struct http_file {
  net_job job;
  net_http *h;                 /* referenced while a job is queued or running */
  int fd;
  char *path, *part;
  bool resume, want_sha;
  bool created;                /* this exchange opened the .part (job threads only) */
  bool fresh, wrote;           /* there was no .part before; a body byte went into it */
  bool from_output;            /* the .part was the file at output (resume) */
  bool rewound;                /* the server sent it all again: what the .part held is gone */
  uint64_t output_size;        /* the file at output's size, when it became the .part */
  unsigned char want[32];
  mbedtls_sha256_context sha;
  atomic_int busy;             /* a job is queued or running */
  atomic_int prepared;         /* the .part is open and offset known */
  atomic_int final;            /* the body ended: finish once drained */
  atomic_int restart;          /* the server ignored the Range: start the file over */
  atomic_int result;           /* 0 running, 1 in place, -1 failed (err) */
  atomic_int gate;             /* GATE_ bits */
  atomic_int released;         /* let go of: no job touches the .part again */
  bool queued;                 /* I/O thread: a job was ever taken by the lane */
  uint64_t offset;             /* bytes the .part held: final once prepared */
  net_error err;
};

/* ---- on a helper thread -------------------------------------------------------------- */

static void kick(net_http *h) {
  atomic_fetch_or(&h->requests, HREQ_RESUME);
  net__engine_kick(&h->obj);
}

static void fail(http_file *f, const char *op, const char *path, int e) {
  net__seterr_sys(&f->err, op, path, e);
  /* release: err is complete before the result */
  atomic_store_explicit(&f->result, -1, memory_order_release);
}

static void not_regular(http_file *f) {
  net__seterr(&f->err, NET_E_INVALID, "open %s: not a regular file", f->part);
  atomic_store_explicit(&f->result, -1, memory_order_release);
}

/* Hashes what the .part already holds (a resumed download is verified whole). */
static bool hash_existing(http_file *f) {
  char buf[65536];
  ssize_t n;
  if (net__file_seek(f->fd, 0, SEEK_SET) < 0) return fail(f, "seek", f->part, errno), false;
  while ((n = net__file_read(f->fd, buf, sizeof buf)) > 0) mbedtls_sha256_update_ret(&f->sha, (unsigned char *)buf, (size_t)n);
  if (n < 0) return fail(f, "read", f->part, errno), false;
  return true;
}

/* Another download (here or in another process) may write the .part. One
 * cancelled a moment ago may still be letting go of it on a helper thread
 * (its failure shows only after): a retry waits that moment out. A file
 * system without locks (some network and FUSE ones) goes on unguarded. */
static bool lock_part(http_file *f) {
  for (int i = 0; i < 50; i++) {
    if (net__file_lock(f->fd) == 0 || errno != EWOULDBLOCK) return true;
    net__sleep_ms(10);
  }
  f->from_output = false;   /* the .part is the other's: left alone, as it is */
  net__seterr(&f->err, NET_E_LIMIT, "%s: another download is writing it", f->part);
  atomic_store_explicit(&f->result, -1, memory_order_release);
  return false;
}

/* The .part opened and locked, then its size: whoever held the lock may have
 * written on, or moved or removed it (then it is opened again). */
static bool open_part(http_file *f, net_file_info *st) {
  for (int tries = 0; tries < 3; tries++) {
    f->fd = net__file_open(f->part, NET_OPEN_RW | NET_OPEN_CREATE);
    if (f->fd < 0) return fail(f, "open", f->part, errno), false;
    if (!lock_part(f)) return false;
    if (net__file_fstat(f->fd, st) != 0) return fail(f, "stat", f->part, errno), false;
    net_file_info at;
    if (net__file_stat(f->part, true, &at) == 0 && at.node == st->node) return true;
    net__file_close(f->fd);
    f->fd = -1;
  }
  return fail(f, "open", f->part, EAGAIN), false;
}

static void prepare(http_file *f) {
  net_file_info st;
  bool no_part = net__file_stat(f->part, true, &st) != 0 && errno == ENOENT;
  /* curl -C -: without a .part, the file at output is the partial one */
  if (f->resume && no_part && net__file_stat(f->path, true, &st) == 0 && st.kind == NET_FILE_REG) {
    if (net__file_rename(f->path, f->part) != 0) return fail(f, "rename", f->path, errno);
    f->from_output = true;
  }
  if (!open_part(f, &st)) return;   /* truncated once it is ours */
  if (st.kind == NET_FILE_DIR) return fail(f, "open", f->part, EISDIR);
  if (st.kind != NET_FILE_REG) return not_regular(f);
  f->output_size = st.size;
  f->created = true;
  f->fresh = no_part && !f->from_output;
  if (!f->resume && st.size && net__file_truncate(f->fd, 0) != 0) return fail(f, "truncate", f->part, errno);
  if (!f->resume) st.size = 0;
  mbedtls_sha256_starts_ret(&f->sha, 0);
  if (f->want_sha && st.size > 0 && !hash_existing(f)) return;
  if (net__file_seek(f->fd, 0, SEEK_END) < 0) return fail(f, "seek", f->part, errno);
  f->offset = st.size;
  /* release: offset is set before the I/O thread sees prepared */
  atomic_store_explicit(&f->prepared, 1, memory_order_release);
}

static bool write_all(http_file *f, const char *p, size_t n) {
  while (n) {
    ssize_t w = net__file_write(f->fd, p, n);
    if (w < 0) return fail(f, "write", f->part, errno), false;
    f->wrote = true;
    p += w;
    n -= (size_t)w;
  }
  return true;
}

/* The body ring into the file, as far as it goes. */
static bool drain(http_file *f) {
  net_http *h = f->h;
  if (atomic_exchange(&f->restart, 0)) {
    f->rewound = true;
    if (net__file_truncate(f->fd, 0) != 0 || net__file_seek(f->fd, 0, SEEK_SET) < 0) return fail(f, "truncate", f->part, errno), false;
    mbedtls_sha256_starts_ret(&f->sha, 0);
  }
  net_span sp[4];
  int k;
  while ((k = ring_peek(&h->body, sp, 4, SIZE_MAX)) > 0) {
    size_t n = 0;
    for (int i = 0; i < k; i++) {
      if (!write_all(f, sp[i].base, sp[i].len)) return false;
      if (f->want_sha) mbedtls_sha256_update_ret(&f->sha, (unsigned char *)sp[i].base, sp[i].len);
      n += sp[i].len;
    }
    ring_consume(&h->body, n);
    /* seq_cst fence: pairs with the one in room() (http_body.c), as the owner's read does */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&h->body_paused) && atomic_exchange(&h->body_paused, 0)) kick(h);
  }
  return true;
}

/* Whether an abandoned .part stays: for a resume, unless this exchange made
 * it and never wrote to it (a refused download leaves nothing new). */
static bool kept(const http_file *f) { return f->resume && !(f->fresh && !f->wrote); }

/* An abandoned exchange: its .part stays only for a resume, and one that
 * was the file at output goes back there, with what arrived (as curl -C -
 * leaves it), rather than leave the user's file moved aside. */
static void discard(http_file *f) {
  /* moved or removed while still locked, so a retry that opened the path
   * before sees that once it has the lock (open_part) */
  if (f->from_output) net__file_rename(f->part, f->path);
  else if (!kept(f) && f->created) net__file_unlink_patiently(f->part);
  f->created = f->from_output = false;
  if (f->fd >= 0) net__file_close(f->fd);   /* and its lock: a retry may take the .part at once */
  f->fd = -1;
}

/* Done with the .part for good: the exchange may show its failure. */
static void let_go(http_file *f) {
  discard(f);
  /* release: the .part is final before the exchange shows its failure */
  atomic_store_explicit(&f->released, 1, memory_order_release);
}

/* Abandoned before it could be put in place: nothing of it is to stay. */
static bool dropped(http_file *f) { return atomic_load(&f->gate) == GATE_ABANDONED; }

static void hex(const unsigned char *d, char out[65]) {
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Whole: verified, then renamed into place, all while the .part is still
 * open and locked: a download to the same output waiting for the lock must
 * find it gone, not truncate it under the rename. A failure here is let go
 * of by step(), as every failure is. */
static void finish(http_file *f) {
  unsigned char got[32];
  mbedtls_sha256_finish_ret(&f->sha, got);
  if (f->want_sha && memcmp(got, f->want, 32)) {
    char g[65];
    hex(got, g);
    /* bytes that are not what was asked for: nothing of them is kept, and the
       user's own file at output goes back as it was */
    if (f->from_output && !f->rewound && net__file_truncate(f->fd, f->output_size) == 0)
      net__file_rename(f->part, f->path);
    else
      net__file_unlink_patiently(f->part);
    f->created = f->from_output = false;
    net__seterr(&f->err, NET_E_PROTOCOL, "the file's sha256 is %s, not the one given", g);
    atomic_store_explicit(&f->result, -1, memory_order_release);
    return;
  }
  if (atomic_fetch_or(&f->gate, GATE_PLACING) & GATE_ABANDONED) {   /* cancelled or timed out meanwhile */
    net__seterr(&f->err, NET_E_CANCELLED, "%s: abandoned", f->path);
    atomic_store_explicit(&f->result, -1, memory_order_release);
    return;
  }
  /* too late to abandon: a failed rename goes as an abandoned one would */
  if (net__file_rename(f->part, f->path) != 0) return fail(f, "rename", f->part, errno);
  int closed = net__file_close(f->fd);
  f->fd = -1;
  if (closed != 0) {   /* a write error told only now: what went in place may be short */
    int e = errno;
    net__file_rename(f->path, f->part);
    return fail(f, "close", f->part, e);
  }
  atomic_store_explicit(&f->result, 1, memory_order_release);
}

/* One pass of work; the job repeats while more came meanwhile. */
static void step(http_file *f) {
  if (dropped(f)) {
    /* what arrived before the end goes into a .part kept to resume, even
     * when the end came before this job could write any of it */
    if (f->resume && f->fd >= 0 && atomic_load(&f->prepared) && !atomic_load(&f->result)) drain(f);
    return let_go(f);
  }
  if (atomic_load(&f->result)) return;
  if (!atomic_load(&f->prepared)) prepare(f);
  else if (drain(f) && atomic_load(&f->final) && ring_used(&f->h->body) == 0) finish(f);
  /* failed (a lock held elsewhere, a full disk, finish() refused...): nothing
   * more goes into the .part, so it is let go of now, not by a second job
   * behind the others */
  if (atomic_load(&f->result) < 0 && !atomic_load(&f->released)) let_go(f);
}

static bool more(http_file *f) {
  /* a .part to let go of, remove or put back */
  if (dropped(f)) return !atomic_load(&f->released);
  if (atomic_load(&f->result) || !atomic_load(&f->prepared)) return false;
  return ring_used(&f->h->body) > 0 || atomic_load(&f->final);
}

static void run(net_job *job) {
  http_file *f = (http_file *)job;
  net_http *h = f->h;
  do {
    step(f);
    atomic_store(&f->busy, 0);
    /* seq_cst: pairs with the exchange in net__http_file_kick; either it
     * sees busy clear and queues a job, or we see what it added */
    atomic_thread_fence(memory_order_seq_cst);
  } while (more(f) && !atomic_exchange(&f->busy, 1));
  kick(h);   /* prepared, drained, or done: the exchange looks */
  net__io_unref(&h->obj);
}

/* ---- the I/O thread and the owner -------------------------------------------------- */

static bool parse_hex(const char *s, unsigned char out[32]) {
  if (strlen(s) != 64) return false;
  for (int i = 0; i < 32; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
        !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
      return false;
    out[i] = (unsigned char)v;
  }
  return true;
}

http_file *net__http_file_new(const char *path, bool resume, const char *sha256, const char **err) {
  http_file *f = net__calloc(1, sizeof *f);
  if (!f) return *err = "out of memory", NULL;
  f->fd = -1;
  f->resume = resume;
  mbedtls_sha256_init(&f->sha);
  size_t n = strlen(path);
  if (sha256 && !(f->want_sha = parse_hex(sha256, f->want))) *err = "sha256 must be 64 hex digits";
  else if (!n) *err = "output must be a file path";
  else if (!(f->path = net__strdup(path)) || !(f->part = net__malloc(n + 6))) *err = "out of memory";
  else return memcpy(f->part, path, n), memcpy(f->part + n, ".part", 6), f;
  net__http_file_free(f);
  return NULL;
}

void net__http_file_free(http_file *f) {
  if (!f) return;
  if (dropped(f)) discard(f);   /* only when no job could take it (the lane was full) */
  if (f->fd >= 0) net__file_close(f->fd);   /* an ended exchange: the .part stays for a resume */
  mbedtls_sha256_free(&f->sha);
  net__free(f->path);
  net__free(f->part);
  net__free(f);
}

bool net__http_file_kick(net_http *h) {
  http_file *f = h->file;
  if (atomic_exchange(&f->busy, 1)) return true;   /* the running job sees it */
  if (!f->h) {   /* once, before the first job: jobs only read it */
    f->h = h;
    f->job.run = run;
  }
  net__io_ref(&h->obj);
  if (net__lane_submit(&file_lane, &f->job)) return f->queued = true;
  atomic_store(&f->busy, 0);
  net__io_unref(&h->obj);
  return false;
}

const char *net__http_file_refusal(void) { return net__lane_refusal(&file_lane, "too many files being written"); }

int net__http_file_prepared(http_file *f, uint64_t *offset) {
  /* acquire: pairs with the release stores in prepare() and fail() */
  if (atomic_load_explicit(&f->result, memory_order_acquire) < 0) return -1;
  if (!atomic_load_explicit(&f->prepared, memory_order_acquire)) return 0;
  *offset = f->offset;
  return 1;
}

void net__http_file_restart(http_file *f) { atomic_store(&f->restart, 1); }
void net__http_file_final(http_file *f) { atomic_store(&f->final, 1); }
/* I/O thread. False when the file is already being put in place: too late
 * to stop it. Otherwise a job removes the .part unless it is to be resumed. */
bool net__http_file_abandon(http_file *f) {
  int was = atomic_fetch_or(&f->gate, GATE_ABANDONED);
  if (was & GATE_PLACING) return false;
  /* discard() decides what stays; with the lane full, the held failure asks again */
  if (!(was & GATE_ABANDONED) && f->queued && !atomic_load(&f->released)) net__http_file_kick(f->h);
  return true;
}

/* I/O thread: a failure waits for this, so a retry or the owner finds the
 * .part as the failed download leaves it. */
bool net__http_file_settled(http_file *f) {
  /* acquire: pairs with the release stores in let_go() and finish() */
  return !f->queued || atomic_load_explicit(&f->released, memory_order_acquire) ||
         atomic_load_explicit(&f->result, memory_order_acquire) > 0;
}

int net__http_file_result(http_file *f, net_error *err) {
  int r = atomic_load_explicit(&f->result, memory_order_acquire);
  if (r < 0) *err = f->err;
  return r;
}
