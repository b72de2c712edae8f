/* hosts.c: hosts-format files, read through or indexed (hosts.h).
 * Runs on the resolver's hosts-lane thread (the index) and on DNS-lane
 * threads (read through); the index has one user at a time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "hosts.h"
#include "os.h"

#define HOSTS_LINE_MAX 65536          /* lines this long or longer (newline included) are skipped */
#define INDEX_NAMES_MAX (1u << 20)    /* a file naming more is read through on each lookup */
#define INDEX_TEXT_MAX (32u << 20)    /* or holding more text in its names */

size_t net__hosts_name_len(const char *host) {
  size_t n = strlen(host);
  return n > 1 && host[n - 1] == '.' ? n - 1 : n;
}

/* A test's slow entry "*.x.test" stands for every name under x.test. */
static bool name_match(const char *name, const char *host, bool wildcard) {
  size_t hl = net__hosts_name_len(host), nl;
  if (wildcard && name[0] == '*' && name[1] == '.') {
    nl = strlen(name + 1);
    return hl > nl && strncasecmp(host + hl - nl, name + 1, nl) == 0;
  }
  nl = net__hosts_name_len(name);
  return nl == hl && strncasecmp(name, host, hl) == 0;
}

/* The next line of f, whole, in *buf (grown up to HOSTS_LINE_MAX); NULL at
 * the end. A longer line (or one memory runs out for) comes back empty: a
 * piece of it could match a name the line does not hold, or start with a
 * word taken for an address. */
static char *next_line(FILE *f, char **buf, size_t *cap) {
  size_t len = 0;
  bool skip = false;
  for (;;) {
    (*buf)[*cap - 1] = 1;   /* fgets zeroes it only when the line fills the buffer */
    if (!fgets(*buf + len, (int)(*cap - len), f)) {
      if (len == 0 && !skip) return NULL;
      (*buf)[len] = '\0';   /* the last line, with no newline, filled the buffer exactly */
      break;
    }
    if ((*buf)[*cap - 1] || (*buf)[*cap - 2] == '\n') break;   /* even with NUL bytes inside */
    char *more = skip || *cap * 2 > HOSTS_LINE_MAX ? NULL : net__realloc(*buf, *cap * 2);
    if (more) {
      len = *cap - 1;
      *buf = more;
      *cap *= 2;
    } else {   /* read on to the newline, over what is already there */
      skip = true;
      len = 0;
    }
  }
  if (skip) (*buf)[0] = '\0';
  return *buf;
}

/* One name of a line: the line's first word, that word as an address (NULL:
 * not one) and the line's number. false stops the reading. */
typedef bool (*name_fn)(void *ud, const char *first, const net_sockaddr *sa, const char *name, uint32_t line);

/* 1: read to the end; 0: fn stopped it; -1: the file cannot be read (errno). */
static int read_names(const char *path, name_fn fn, void *ud) {
  size_t cap = 512;
  char *line = net__malloc(cap);
  FILE *f = line ? fopen(path, NET_FOPEN_READ) : NULL;   /* not inherited by a child spawned meanwhile */
  if (!f) {
    int e = line ? errno : ENOMEM;
    net__free(line);
    errno = e;
    return -1;
  }
  int done = 1;
  for (uint32_t n = 0; done && next_line(f, &line, &cap); n++) {
    char *hash = strchr(line, '#');   /* a comment runs to the line's end, as glibc reads it */
    if (hash) *hash = '\0';
    char *save = NULL, *first = strtok_r(line, " \t\r\n", &save);
    if (!first) continue;
    net_sockaddr sa;
    bool is_ip = net__ip_parse(first, strlen(first), &sa);
    for (char *name; done && (name = strtok_r(NULL, " \t\r\n", &save));)
      if (!fn(ud, first, is_ip ? &sa : NULL, name, n)) done = 0;
  }
  fclose(f);
  net__free(line);
  return done;
}

/* ---- reading through -------------------------------------------------------------------- */

typedef struct scan {
  net_addr *a;
  char *slow;
  size_t slow_len;
} scan;

static bool scan_name(void *ud, const char *first, const net_sockaddr *sa, const char *name, uint32_t line) {
  scan *s = ud;
  (void)line;
  if (!name_match(name, s->a->host, !sa && s->slow)) return true;
  if (sa) net__addr_add(s->a, &sa->sa, net__sa_len(sa));
  else if (s->slow && !s->slow[0]) snprintf(s->slow, s->slow_len, "%s", first);
  return true;
}

/* ---- the index ---------------------------------------------------------------------------- */

typedef struct entry {
  uint32_t hash;
  uint32_t name;   /* offset of its text in the index's text (no trailing dot, NUL-ended) */
  uint32_t next;   /* the next entry of its bucket, in file order, plus one (0: none) */
  uint32_t line;
  int64_t what;    /* an index in addrs, or -1 - the text offset of a test's slow word */
} entry;

typedef struct hosts_index {
  bool ready, too_big;   /* too_big: this version of the file is read through */
  uint64_t id;
  char path[512];
  entry *e;
  uint32_t n, cap, *buckets, mask;
  uint32_t *wild, nwild, wild_cap;   /* slow entries of "*.domain" names, in file order */
  net_sockaddr *addrs;
  uint32_t naddrs, addrs_cap;
  uint32_t last_line;   /* while building: the line last_what is of, plus one */
  int64_t last_what;
  char *text;
  size_t text_len, text_cap;
  bool full;   /* while building: over a cap (rather than out of memory) */
} hosts_index;

static hosts_index cache;   /* one thread at a time (hosts.h) */

static uint32_t name_hash(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i])) * 16777619u;
  return h;
}

static void index_free(hosts_index *x) {
  net__free(x->e);
  net__free(x->buckets);
  net__free(x->wild);
  net__free(x->addrs);
  net__free(x->text);
  memset(x, 0, sizeof *x);
}

/* Room for one more of size in *p (*cap of them, doubled as needed). */
static bool grow(void **p, uint32_t *cap, uint32_t n, size_t size) {
  if (n < *cap) return true;
  uint32_t c = *cap ? *cap * 2 : 64;
  void *m = net__realloc(*p, (size_t)c * size);
  if (!m) return false;
  *p = m;
  *cap = c;
  return true;
}

/* Its offset in the text, or -1. */
static int64_t add_text(hosts_index *x, const char *s, size_t n) {
  if (x->text_len + n + 1 > INDEX_TEXT_MAX) return x->full = true, -1;
  if (x->text_len + n + 1 > x->text_cap) {
    size_t c = x->text_cap ? x->text_cap : 4096;
    while (c < x->text_len + n + 1) c *= 2;
    char *m = net__realloc(x->text, c);
    if (!m) return -1;
    x->text = m;
    x->text_cap = c;
  }
  memcpy(x->text + x->text_len, s, n);
  x->text[x->text_len + n] = '\0';
  x->text_len += n + 1;
  return (int64_t)(x->text_len - n - 1);
}

/* What the line's first word is: its address, or its text, shared by the line's names. */
static int64_t line_what(hosts_index *x, const char *first, const net_sockaddr *sa, uint32_t line) {
  if (x->last_line == line + 1u) return x->last_what;
  int64_t what;
  if (!sa) {
    int64_t t = add_text(x, first, strlen(first));
    what = t < 0 ? INT64_MIN : -1 - t;
  } else if (grow((void **)&x->addrs, &x->addrs_cap, x->naddrs, sizeof *x->addrs)) {
    x->addrs[x->naddrs] = *sa;
    what = x->naddrs++;
  } else {
    what = INT64_MIN;
  }
  if (what != INT64_MIN) x->last_line = line + 1u, x->last_what = what;
  return what;
}

static bool index_name(void *ud, const char *first, const net_sockaddr *sa, const char *name, uint32_t line) {
  hosts_index *x = ud;
  if (x->n >= INDEX_NAMES_MAX) return x->full = true, false;
  bool wild = !sa && name[0] == '*' && name[1] == '.';
  if (!grow((void **)&x->e, &x->cap, x->n, sizeof *x->e) ||
      (wild && !grow((void **)&x->wild, &x->wild_cap, x->nwild, sizeof *x->wild)))
    return false;
  int64_t what = line_what(x, first, sa, line);
  size_t len = wild ? strlen(name) : net__hosts_name_len(name);
  int64_t at = what == INT64_MIN ? -1 : add_text(x, name, len);
  if (at < 0) return false;
  x->e[x->n] = (entry){.hash = name_hash(name, len), .name = (uint32_t)at, .line = line, .what = what};
  if (wild) x->wild[x->nwild++] = x->n;
  x->n++;
  return true;
}

/* Buckets chained in file order: a name's addresses come in the file's order. */
static bool index_link(hosts_index *x) {
  uint32_t nb = 16;
  while (nb < x->n * 2u) nb *= 2;
  x->buckets = net__calloc(nb, sizeof *x->buckets);
  if (!x->buckets) return false;
  x->mask = nb - 1;
  for (uint32_t i = x->n; i-- > 0;) {
    entry *e = &x->e[i];
    if (e->what < 0 && x->text[e->name] == '*' && x->text[e->name + 1] == '.') continue;   /* in wild */
    e->next = x->buckets[e->hash & x->mask];
    x->buckets[e->hash & x->mask] = i + 1;
  }
  return true;
}

/* The index of path as it is now (id), or false: errno, or too_big set. */
static bool index_build(hosts_index *x, const char *path, uint64_t id) {
  index_free(x);
  snprintf(x->path, sizeof x->path, "%s", path);
  x->id = id;
  int r = read_names(path, index_name, x);
  int e = r < 0 ? errno : ENOMEM;
  if (r > 0 && index_link(x)) {
    x->ready = true;
    return true;
  }
  bool big = r == 0 && x->full;
  index_free(x);
  if (big) {
    snprintf(x->path, sizeof x->path, "%s", path);
    x->id = id;
    x->too_big = true;
  }
  errno = e;
  return false;
}

static void index_lookup(const hosts_index *x, net_addr *a, char *slow, size_t slow_len) {
  size_t hl = net__hosts_name_len(a->host);
  uint32_t h = name_hash(a->host, hl);
  const entry *word = NULL;
  for (uint32_t i = x->buckets[h & x->mask]; i; i = x->e[i - 1].next) {
    const entry *e = &x->e[i - 1];
    const char *name = x->text + e->name;
    if (e->hash != h || strlen(name) != hl || strncasecmp(name, a->host, hl) != 0) continue;
    if (e->what >= 0) net__addr_add(a, &x->addrs[e->what].sa, net__sa_len(&x->addrs[e->what]));
    else if (!word) word = e;
  }
  if (!slow) return;
  for (uint32_t k = 0; k < x->nwild; k++) {
    const entry *e = &x->e[x->wild[k]];
    if (word && word->line <= e->line) break;
    if (name_match(x->text + e->name, a->host, true)) word = e;
  }
  if (word) snprintf(slow, slow_len, "%s", x->text + (-1 - word->what));
}

bool net__hosts_lookup(net_addr *a, const char *path, bool cached, char *slow, size_t slow_len) {
  net_file_info fi;
  bool regular = cached && net__file_stat(path, true, &fi) == 0 && fi.kind == NET_FILE_REG;
  if (cached && !regular && cache.path[0] && strcmp(cache.path, path) == 0) index_free(&cache);   /* gone */
  if (regular) {
    bool same = cache.id == fi.id && strcmp(cache.path, path) == 0;
    if (same && cache.ready) return index_lookup(&cache, a, slow, slow_len), true;
    if (!(same && cache.too_big)) {
      if (index_build(&cache, path, fi.id)) return index_lookup(&cache, a, slow, slow_len), true;
      if (!cache.too_big) return false;
    }
  }
  if (slow && slow_len) slow[0] = '\0';
  scan s = {a, slow, slow_len};
  return read_names(path, scan_name, &s) >= 0;
}
