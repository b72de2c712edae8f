/* os.h: the engine's small OS layer: threads, locks, condition variables,
 * semaphores, monotonic time, run-time symbol lookup and the few file
 * operations the engine makes. POSIX in os_posix.c, Windows in os_win.c.
 * Any thread. Nothing here is SDL's: the editor plugin lives inside hosts that
 * bring their own SDL (2 or 3), so the engine must not import it by name. */
#ifndef SLUICE_OS_H
#define SLUICE_OS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* printf-style format checking; mingw-w64 would check against the old
 * msvcrt printf, not the C99 one the Windows build uses
 * (__USE_MINGW_ANSI_STDIO=1: %zu, %llu...). */
#ifdef __MINGW32__
#define NET_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#else
#define NET_PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif

typedef struct net_thread net_thread;
typedef struct net_mutex net_mutex;
typedef struct net_cond net_cond;
typedef struct net_sem net_sem;

/* Starts fn(arg) on a new thread. Detached threads clean up after themselves
 * and *out is not set; joinable ones must be joined exactly once. */
bool net__thread_start(int (*fn)(void *), void *arg, const char *name, bool detached,
                       net_thread **out);
void net__thread_join(net_thread *t);
/* The calling background thread yields to the host's frame loop (nice 5 on
 * Linux): an owner call that wakes it should not lose its CPU to it. Not on
 * Windows, whose scheduler runs a lower priority only when no thread of a
 * higher one is ready: a busy machine would starve the network for seconds. */
void net__thread_background(void);
/* The calling thread offers its core to another runnable thread (never waits for an event). */
void net__thread_yield(void);
/* Times the calling thread was taken off its core while it could still run
 * (Linux: involuntary context switches); UINT64_MAX where the system does not
 * count them. */
uint64_t net__thread_preempted(void);
/* The processors online (1 when unknown); cheap after the first call. */
unsigned net__os_cpus(void);

net_mutex *net__mutex_new(void);
void net__mutex_free(net_mutex *m);
void net__mutex_lock(net_mutex *m);
void net__mutex_unlock(net_mutex *m);

net_cond *net__cond_new(void);
void net__cond_free(net_cond *c);
void net__cond_wait(net_cond *c, net_mutex *m);
/* false when us microseconds passed without a signal (spurious wake-ups are
 * possible; Windows waits whole milliseconds). */
bool net__cond_wait_us(net_cond *c, net_mutex *m, uint64_t us);
void net__cond_broadcast(net_cond *c);

net_sem *net__sem_new(unsigned value);
void net__sem_free(net_sem *s);
void net__sem_post(net_sem *s);
/* ms < 0: until posted. false on timeout. */
bool net__sem_wait(net_sem *s, int ms);

/* Monotonic clocks. */
uint64_t net__now_ms(void);
uint64_t net__now_ns(void);
void net__sleep_ms(unsigned ms);
/* Gives the processor to another thread, for waits of a few instructions. */
void net__yield(void);
/* The engine's I/O thread marks itself; anyone may ask which thread it is
 * (owner calls made by a protocol running on the I/O thread behave as such). */
void net__thread_mark_io(void);
bool net__thread_is_io(void);

/* Runs init(arg) once per process; concurrent callers wait for the first.
 * *state is a zero-initialised static. Returns init's result (false: tried
 * again next call). */
bool net__once(atomic_int *state, bool (*init)(void *), void *arg);

/* A symbol of the process's global scope (the host and the libraries it
 * linked), else of an already loaded library named in libs (never loads
 * one). NULL when none has it. */
void *net__os_symbol(const char *name, const char *const *libs);
/* name from the same library (or executable) that defines anchor, so that
 * functions of one library are never mixed with another's of the same name. */
void *net__os_symbol_near(const void *anchor, const char *name);
/* True while the process ends with its other threads already stopped
 * (Windows runs a library's exit handlers after stopping them): an exit
 * handler must not wait for the I/O thread then. */
bool net__os_threads_gone(void);
/* 1 where a library's exit handlers run only after the process's other
 * threads are stopped (Windows): waits that belong at exit happen when the
 * last user leaves instead. */
#ifdef _WIN32
#define NET_OS_EXIT_HANDLERS_LATE 1
#else
#define NET_OS_EXIT_HANDLERS_LATE 0
#endif
/* Keeps the library holding this code mapped until the process exits, for
 * detached threads that may outlive the host's dlclose. */
void net__os_pin_library(void);
/* From the first call on, every child this process forks is marked: the
 * library's threads are not there, and its descriptors (the wake-up fd, the
 * poller) are the parent's too. false when that cannot be arranged.
 * Windows does not fork. */
bool net__os_fork_watch(void);
/* True in such a child: the library must take no work there. */
bool net__os_forked(void);

/* Bytes the allocator really reserved for a block from malloc (0: unknown). */
size_t net__os_block_size(void *p);
/* Bytes of the process's heap in use (the host's too), 0 when unknown. */
size_t net__os_process_heap(void);
/* Cache-line aligned blocks; freed only with net__os_aligned_free, sized
 * only with net__os_aligned_size (bytes reserved, 0: unknown). */
void *net__os_aligned_alloc(size_t align, size_t n);
void net__os_aligned_free(void *p);
size_t net__os_aligned_size(void *p);
/* Address space of the engine's own: reserve takes n bytes of it (NULL:
 * the system would not), commit makes [p, p + n) usable (false: no memory
 * for it), release gives those pages' memory back; their bytes are gone,
 * and where NET_OS_PAGES_RECOMMIT is 1 they must be committed again. */
void *net__os_pages_reserve(size_t n);
bool net__os_pages_commit(void *p, size_t n);
void net__os_pages_release(void *p, size_t n);
/* Asks for [p, p + n) in large pages where the system gives them on request
 * (Linux's transparent huge pages): for memory touched whole, where a fault
 * per small page costs more than the bytes' copy. A hint: no answer. */
void net__os_pages_large(void *p, size_t n);
#ifdef _WIN32
#define NET_OS_PAGES_RECOMMIT 1
#else
#define NET_OS_PAGES_RECOMMIT 0
#endif
/* Hands the heap's free pages back to the system (glibc keeps them after a
 * burst of frees); may walk the whole heap: a helper thread's work. */
void net__os_release_memory(void);

/* Thread-safe strerror into buf; returns the text (the same words on
 * every system for the errors sockets give). */
const char *net__os_strerror(int e, char *buf, size_t len);

/* memmem: the first n-byte needle in hay, else NULL. */
void *net__os_memmem(const void *hay, size_t hlen, const void *needle, size_t nlen);

/* An environment variable as UTF-8 (Windows: whatever the code page) into
 * buf: its length; 0 when unset or empty; -1 when it does not fit. */
int net__os_env(const char *name, char *buf, size_t len);

/* ---- files (helper threads: they may block) ---------------------------------
 * Paths are UTF-8 everywhere. All return -1 (NULL) with errno set on failure. */
enum { NET_FILE_NONE, NET_FILE_REG, NET_FILE_DIR, NET_FILE_SOCK, NET_FILE_OTHER };
typedef struct net_file_info {
  int kind;        /* NET_FILE_* */
  uint64_t size;
  uint64_t node;   /* device and inode hashed: the same file, whatever it holds */
  uint64_t id;     /* node, size and change time hashed: differs once replaced or edited */
} net_file_info;
/* follow false: a symbolic link (or Windows reparse point) itself. */
int net__file_stat(const char *path, bool follow, net_file_info *out);
int net__file_fstat(int fd, net_file_info *out);

#define NET_OPEN_READ 1
#define NET_OPEN_RW 2       /* with CREATE: made 0644 */
#define NET_OPEN_CREATE 4
#define NET_OPEN_TRUNC 8
#define NET_OPEN_NONBLOCK 16   /* opening a FIFO or device must not wait */
/* Binary, never inherited by child processes. */
int net__file_open(const char *path, int flags);
ssize_t net__file_read(int fd, void *buf, size_t n);
ssize_t net__file_write(int fd, const void *buf, size_t n);
int64_t net__file_seek(int fd, int64_t off, int whence);   /* SEEK_SET, SEEK_END */
int net__file_truncate(int fd, uint64_t len);
/* An exclusive lock on the whole file for as long as fd is open, never
 * waiting: 0, or -1 (errno EWOULDBLOCK when another open file holds it). */
int net__file_lock(int fd);
int net__file_close(int fd);
/* Atomically replaces to when it exists. */
int net__file_rename(const char *from, const char *to);
int net__file_unlink(const char *path);
/* The same, waiting up to a second while another program holds the file open
 * (Windows refuses then; so does a rename, which waits the same way). */
int net__file_unlink_patiently(const char *path);

typedef struct net_dir net_dir;
net_dir *net__dir_open(const char *path);
/* The next entry's name ("." and ".." included), NULL at the end. */
const char *net__dir_next(net_dir *d);
void net__dir_close(net_dir *d);

#endif
