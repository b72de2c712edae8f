/* os_posix.c: the POSIX side of os.h (pthreads, CLOCK_MONOTONIC, dlsym,
 * open/stat). Any thread. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifndef __APPLE__
#include <link.h>
#endif
#ifdef __linux__
#include <malloc.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#endif
#ifdef __APPLE__
#include <malloc/malloc.h>
#endif

#include "os.h"

struct net_thread {
  pthread_t id;
};
struct net_mutex {
  pthread_mutex_t m;
};
struct net_cond {
  pthread_cond_t c;
};
/* A POSIX semaphore: a post never waits, whatever the waiters do, so an
 * owner that hands a helper work can never stall on the helper. */
struct net_sem {
  sem_t s;
};

typedef struct start_args {
  int (*fn)(void *);
  void *arg;
  char name[16];
} start_args;

static void *thread_main(void *p) {
  start_args a = *(start_args *)p;
  free(p);
#if defined(__GLIBC__)
  pthread_setname_np(pthread_self(), a.name);
#endif
  a.fn(a.arg);
  return NULL;
}

bool net__thread_start(int (*fn)(void *), void *arg, const char *name, bool detached,
                       net_thread **out) {
  start_args *a = malloc(sizeof *a);
  net_thread *t = detached ? NULL : malloc(sizeof *t);
  pthread_attr_t attr;
  if (!a || (!detached && !t) || pthread_attr_init(&attr) != 0) {
    free(a);
    free(t);
    return false;
  }
  *a = (start_args){fn, arg, ""};
  strncpy(a->name, name, sizeof a->name - 1);
  pthread_attr_setdetachstate(&attr, detached ? PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE);
  /* the thread starts with every signal a host might wait for blocked: a
   * host that blocks one later (to read it from a signalfd) must get it,
   * not a thread of ours whose default action ends the process. Faults
   * stay deliverable: one in our thread is ours. */
  static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
  sigset_t all, old;
  sigfillset(&all);
  for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) sigdelset(&all, faults[i]);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t id;
  int r = pthread_create(&id, &attr, thread_main, a);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (r != 0) {
    free(a);
    free(t);
    return false;
  }
  if (t) {
    t->id = id;
    *out = t;
  }
  return true;
}

void net__thread_join(net_thread *t) {
  if (!t) return;
  pthread_join(t->id, NULL);
  free(t);
}

void net__thread_background(void) {
#ifdef __linux__
  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 5);   /* this thread only, on Linux */
#endif
}

void net__thread_yield(void) { sched_yield(); }

unsigned net__os_cpus(void) {
  static atomic_uint n;
  unsigned v = atomic_load_explicit(&n, memory_order_relaxed);
  if (!v) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    v = c > 0 ? (unsigned)c : 1;
    atomic_store_explicit(&n, v, memory_order_relaxed);
  }
  return v;
}

uint64_t net__thread_preempted(void) {
#ifdef RUSAGE_THREAD
  struct rusage ru;
  if (getrusage(RUSAGE_THREAD, &ru) == 0) return (uint64_t)ru.ru_nivcsw;
#endif
  return UINT64_MAX;
}

net_mutex *net__mutex_new(void) {
  net_mutex *m = malloc(sizeof *m);
  if (m && pthread_mutex_init(&m->m, NULL) != 0) {
    free(m);
    return NULL;
  }
  return m;
}

void net__mutex_free(net_mutex *m) {
  if (!m) return;
  pthread_mutex_destroy(&m->m);
  free(m);
}

void net__mutex_lock(net_mutex *m) { pthread_mutex_lock(&m->m); }
void net__mutex_unlock(net_mutex *m) { pthread_mutex_unlock(&m->m); }

net_cond *net__cond_new(void) {
  net_cond *c = malloc(sizeof *c);
  pthread_condattr_t attr;
  if (!c || pthread_condattr_init(&attr) != 0) {
    free(c);
    return NULL;
  }
#ifndef __APPLE__
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);   /* timeouts immune to clock changes */
#endif
  int r = pthread_cond_init(&c->c, &attr);
  pthread_condattr_destroy(&attr);
  if (r != 0) {
    free(c);
    return NULL;
  }
  return c;
}

void net__cond_free(net_cond *c) {
  if (!c) return;
  pthread_cond_destroy(&c->c);
  free(c);
}

void net__cond_wait(net_cond *c, net_mutex *m) { pthread_cond_wait(&c->c, &m->m); }

bool net__cond_wait_us(net_cond *c, net_mutex *m, uint64_t us) {
  struct timespec ts;
#ifdef __APPLE__
  ts = (struct timespec){(time_t)(us / 1000000), (long)(us % 1000000) * 1000L};
  return pthread_cond_timedwait_relative_np(&c->c, &m->m, &ts) != ETIMEDOUT;
#else
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t ns = (uint64_t)ts.tv_nsec + (us % 1000000) * 1000u;
  ts.tv_sec += (time_t)(us / 1000000 + ns / 1000000000u);
  ts.tv_nsec = (long)(ns % 1000000000u);
  return pthread_cond_timedwait(&c->c, &m->m, &ts) != ETIMEDOUT;
#endif
}

void net__cond_broadcast(net_cond *c) { pthread_cond_broadcast(&c->c); }

net_sem *net__sem_new(unsigned value) {
  net_sem *s = malloc(sizeof *s);
  if (s && sem_init(&s->s, 0, value) != 0) {
    free(s);
    return NULL;
  }
  return s;
}

void net__sem_free(net_sem *s) {
  if (!s) return;
  sem_destroy(&s->s);
  free(s);
}

void net__sem_post(net_sem *s) { sem_post(&s->s); }

bool net__sem_wait(net_sem *s, int ms) {
  int r;
  if (ms < 0) {
    do r = sem_wait(&s->s);
    while (r != 0 && errno == EINTR);
    return r == 0;
  }
  struct timespec ts;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 30)
  clockid_t clock = CLOCK_MONOTONIC;   /* immune to wall-clock changes */
#else
  clockid_t clock = CLOCK_REALTIME;
#endif
  clock_gettime(clock, &ts);
  uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)(ms % 1000) * 1000000u;
  ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000u);
  ts.tv_nsec = (long)(ns % 1000000000u);
  do {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 30)
    r = sem_clockwait(&s->s, clock, &ts);
#else
    r = sem_timedwait(&s->s, &ts);
#endif
  } while (r != 0 && errno == EINTR);
  return r == 0;
}

uint64_t net__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t net__now_ms(void) { return net__now_ns() / 1000000u; }

void net__sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void net__yield(void) { sched_yield(); }


#ifndef __APPLE__
#define LOADED_MAX 4
typedef struct loaded_lib {
  const char *const *libs;
  int n;
  const char *path[LOADED_MAX];   /* the loader's own names: valid while loaded */
} loaded_lib;

/* "libSDL2-2.0.so.0" also names libSDL2-2.0.so and libSDL2-2.0.so.0.2600.5:
 * whatever file the host loaded, as its soname would. */
static bool same_library(const char *base, const char *want) {
  const char *so = strstr(want, ".so");
  size_t stem = so ? (size_t)(so - want) + 3 : strlen(want);
  return !strncmp(base, want, stem) && (base[stem] == '\0' || base[stem] == '.');
}

static int match_loaded(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  loaded_lib *l = arg;
  const char *n = info->dlpi_name, *base = n ? strrchr(n, '/') : NULL;
  base = base ? base + 1 : n;
  for (const char *const *want = l->libs; base && *base && *want; want++)
    if (same_library(base, *want)) {
      l->path[l->n++] = n;
      return l->n == LOADED_MAX;
    }
  return 0;
}

/* From a library already loaded, by the path it was loaded from: dlopen of a
 * bare name would search the library paths on the caller's thread first. */
static void *symbol_loaded(const char *name, const char *const *libs) {
  loaded_lib l = {.libs = libs};
  dl_iterate_phdr(match_loaded, &l);
  for (int i = 0; i < l.n; i++) {   /* dlopen after the walk, which holds the loader's lock */
    void *h = dlopen(l.path[i], RTLD_NOW | RTLD_NOLOAD);
    void *p = h ? dlsym(h, name) : NULL;   /* the handle stays open: the pointer must stay valid */
    if (p) return p;
  }
  return NULL;
}
#endif

void *net__os_symbol(const char *name, const char *const *libs) {
  void *p = dlsym(RTLD_DEFAULT, name);
  if (p || !libs) return p;
#ifndef __APPLE__
  return symbol_loaded(name, libs);
#else
  for (; !p && *libs; libs++) {
    void *h = dlopen(*libs, RTLD_NOW | RTLD_NOLOAD);   /* only a library already loaded */
    if (h) p = dlsym(h, name);
  }
  return p;
#endif
}

void *net__os_symbol_near(const void *anchor, const char *name) {
  Dl_info info;
  if (dladdr(anchor, &info) && info.dli_fname) {
    void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    void *p = h ? dlsym(h, name) : NULL;
    if (p) return p;
  }
  return dlsym(RTLD_DEFAULT, name);   /* the executable itself exports it */
}

bool net__os_threads_gone(void) { return false; }   /* exit handlers run before threads stop */

/* Only the forking thread survives a fork: the child handler sets a flag
 * and nothing else. */
static atomic_int forked;
static int fork_watched;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void) { atomic_store(&forked, 1); }

static void fork_register(void) { fork_watched = pthread_atfork(NULL, NULL, fork_child) == 0; }

bool net__os_fork_watch(void) {
  pthread_once(&fork_once, fork_register);
  return fork_watched;
}

bool net__os_forked(void) { return atomic_load_explicit(&forked, memory_order_relaxed) != 0; }

void net__os_pin_library(void) {
  static atomic_int pinned;
  Dl_info info;
  if (atomic_load(&pinned)) return;
  if (dladdr((void *)&net__os_pin_library, &info) && info.dli_fname &&
      dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE))
    atomic_store(&pinned, 1);
}

size_t net__os_block_size(void *p) {
  if (!p) return 0;
#if defined(__GLIBC__)
  return malloc_usable_size(p);
#elif defined(__APPLE__)
  return malloc_size(p);
#else
  return 0;
#endif
}

void *net__os_aligned_alloc(size_t align, size_t n) {
  return aligned_alloc(align, (n + align - 1) / align * align);
}

void net__os_aligned_free(void *p) { free(p); }
size_t net__os_aligned_size(void *p) { return net__os_block_size(p); }   /* a block of the same heap */

void *net__os_pages_reserve(size_t n) {
#ifdef MAP_NORESERVE
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
#else
  int flags = MAP_PRIVATE | MAP_ANONYMOUS;
#endif
  void *p = mmap(NULL, n, PROT_NONE, flags, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

bool net__os_pages_commit(void *p, size_t n) { return mprotect(p, n, PROT_READ | PROT_WRITE) == 0; }

/* MADV_DONTNEED, not MADV_FREE: the memory leaves the process's resident
 * size now, where its owner looks for it. */
void net__os_pages_release(void *p, size_t n) { (void)madvise(p, n, MADV_DONTNEED); }

void net__os_pages_large(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
  (void)madvise(p, n, MADV_HUGEPAGE);
#else
  (void)p, (void)n;
#endif
}

void net__os_release_memory(void) {
#ifdef __GLIBC__
  malloc_trim(0);   /* also the free pages inside the heap, not only at its top */
#endif
}

size_t net__os_process_heap(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
#else
  return 0;
#endif
}

const char *net__os_strerror(int e, char *buf, size_t len) {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  return strerror_r(e, buf, len);
#else
  if (strerror_r(e, buf, len) != 0) snprintf(buf, len, "error %d", e);
  return buf;
#endif
}

void *net__os_memmem(const void *hay, size_t hlen, const void *needle, size_t nlen) {
  return memmem(hay, hlen, needle, nlen);
}

int net__os_env(const char *name, char *buf, size_t len) {
  const char *v = getenv(name);
  size_t n = v ? strlen(v) : 0;
  if (n >= len) return -1;
  memcpy(buf, v ? v : "", n + 1);
  return (int)n;
}

/* ---- files --------------------------------------------------------------------- */

static void file_info(const struct stat *st, net_file_info *out) {
#ifdef __APPLE__
  struct timespec m = st->st_mtimespec;
#else
  struct timespec m = st->st_mtim;
#endif
  uint64_t h = 1469598103934665603u, v[] = {(uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size,
                                            (uint64_t)m.tv_sec, (uint64_t)m.tv_nsec};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
    h = (h ^ v[i]) * 1099511628211u;
    if (i == 1) out->node = h;
  }
  out->kind = S_ISREG(st->st_mode)    ? NET_FILE_REG
              : S_ISDIR(st->st_mode)  ? NET_FILE_DIR
              : S_ISSOCK(st->st_mode) ? NET_FILE_SOCK
                                      : NET_FILE_OTHER;
  out->size = (uint64_t)st->st_size;
  out->id = h;
}

int net__file_stat(const char *path, bool follow, net_file_info *out) {
  struct stat st;
  if ((follow ? stat(path, &st) : lstat(path, &st)) != 0) return -1;
  file_info(&st, out);
  return 0;
}

int net__file_fstat(int fd, net_file_info *out) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -1;
  file_info(&st, out);
  return 0;
}

int net__file_open(const char *path, int flags) {
  int f = O_CLOEXEC | O_NOCTTY | ((flags & NET_OPEN_RW) ? O_RDWR : O_RDONLY);
  if (flags & NET_OPEN_CREATE) f |= O_CREAT;
  if (flags & NET_OPEN_TRUNC) f |= O_TRUNC;
  if (flags & NET_OPEN_NONBLOCK) f |= O_NONBLOCK;
  return open(path, f, 0644);
}

ssize_t net__file_read(int fd, void *buf, size_t n) {
  ssize_t r;
  do r = read(fd, buf, n);
  while (r < 0 && errno == EINTR);
  return r;
}

ssize_t net__file_write(int fd, const void *buf, size_t n) {
  ssize_t r;
  do r = write(fd, buf, n);
  while (r < 0 && errno == EINTR);
  return r;
}

int64_t net__file_seek(int fd, int64_t off, int whence) { return (int64_t)lseek(fd, (off_t)off, whence); }
int net__file_truncate(int fd, uint64_t len) { return ftruncate(fd, (off_t)len); }
int net__file_close(int fd) { return close(fd); }

/* flock: tied to the open file, so two opens of one path in one process exclude each other too */
int net__file_lock(int fd) {
  int r;
  do r = flock(fd, LOCK_EX | LOCK_NB);
  while (r < 0 && errno == EINTR);
  return r;
}
int net__file_rename(const char *from, const char *to) { return rename(from, to); }
int net__file_unlink(const char *path) { return unlink(path); }

int net__file_unlink_patiently(const char *path) { return net__file_unlink(path); }

struct net_dir {
  DIR *d;
};

net_dir *net__dir_open(const char *path) {
  net_dir *d = malloc(sizeof *d);
  if (!d) return errno = ENOMEM, NULL;
  if (!(d->d = opendir(path))) {
    free(d);
    return NULL;
  }
  return d;
}

const char *net__dir_next(net_dir *d) {
  struct dirent *e = readdir(d->d);
  return e ? e->d_name : NULL;
}

void net__dir_close(net_dir *d) {
  if (!d) return;
  closedir(d->d);
  free(d);
}
