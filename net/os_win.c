/* os_win.c: the Windows side of os.h (Win32 threads, slim reader/writer
 * locks, condition variables, QueryPerformanceCounter, GetProcAddress, CRT
 * files with UTF-8 paths). Any thread. Compiles to nothing elsewhere, so the
 * POSIX build may compile every engine file. */
#ifdef _WIN32
#include <windows.h>
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <limits.h>
#include <malloc.h>
#include <process.h>
#include <psapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <wchar.h>

#include "os.h"

struct net_thread {
  HANDLE h;
};
struct net_mutex {
  SRWLOCK l;
};
struct net_cond {
  CONDITION_VARIABLE c;
};
/* A kernel semaphore: a post never waits, whatever the waiters do. */
struct net_sem {
  HANDLE h;
};

typedef struct start_args {
  int (*fn)(void *);
  void *arg;
  wchar_t name[16];
} start_args;

/* SetThreadDescription (Windows 10 1607) looked up, not imported: older
 * systems and wine builds without it still load the library. */
static void name_thread(const wchar_t *name) {
  typedef HRESULT(WINAPI * set_desc)(HANDLE, PCWSTR);
  HMODULE k = GetModuleHandleW(L"kernel32.dll");
  FARPROC f = k ? GetProcAddress(k, "SetThreadDescription") : NULL;
  set_desc set;
  memcpy(&set, &f, sizeof set);   /* function pointer types differ: copy, do not cast */
  if (set) set(GetCurrentThread(), name);
}

static unsigned __stdcall thread_main(void *p) {
  start_args a = *(start_args *)p;
  free(p);
  name_thread(a.name);
  a.fn(a.arg);
  return 0;
}

bool net__thread_start(int (*fn)(void *), void *arg, const char *name, bool detached,
                       net_thread **out) {
  start_args *a = malloc(sizeof *a);
  net_thread *t = detached ? NULL : malloc(sizeof *t);
  if (!a || (!detached && !t)) {
    free(a);
    free(t);
    return false;
  }
  *a = (start_args){fn, arg, L""};
  /* at most 15 characters: the C string's length, never a conversion that fails for room */
  int n = MultiByteToWideChar(CP_UTF8, 0, name, (int)(strlen(name) < 15 ? strlen(name) : 15), a->name, 15);
  a->name[n > 0 ? n : 0] = 0;
  /* _beginthreadex, not CreateThread: the thread uses the C runtime */
  uintptr_t h = _beginthreadex(NULL, 0, thread_main, a, 0, NULL);
  if (!h) {
    free(a);
    free(t);
    return false;
  }
  if (t) {
    t->h = (HANDLE)h;
    *out = t;
  } else {
    CloseHandle((HANDLE)h);   /* detached: the thread runs on, nobody joins it */
  }
  return true;
}

void net__thread_join(net_thread *t) {
  if (!t) return;
  WaitForSingleObject(t->h, INFINITE);
  CloseHandle(t->h);
  free(t);
}

void net__thread_background(void) {}   /* normal priority: see os.h */
void net__thread_yield(void) { SwitchToThread(); }
uint64_t net__thread_preempted(void) { return UINT64_MAX; }

unsigned net__os_cpus(void) {
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  return si.dwNumberOfProcessors ? (unsigned)si.dwNumberOfProcessors : 1;
}

net_mutex *net__mutex_new(void) {
  net_mutex *m = malloc(sizeof *m);
  if (m) InitializeSRWLock(&m->l);
  return m;
}

void net__mutex_free(net_mutex *m) { free(m); }   /* an SRW lock holds no resource */
void net__mutex_lock(net_mutex *m) { AcquireSRWLockExclusive(&m->l); }
void net__mutex_unlock(net_mutex *m) { ReleaseSRWLockExclusive(&m->l); }

net_cond *net__cond_new(void) {
  net_cond *c = malloc(sizeof *c);
  if (c) InitializeConditionVariable(&c->c);
  return c;
}

void net__cond_free(net_cond *c) { free(c); }
void net__cond_wait(net_cond *c, net_mutex *m) { SleepConditionVariableSRW(&c->c, &m->l, INFINITE, 0); }

bool net__cond_wait_us(net_cond *c, net_mutex *m, uint64_t us) {
  uint64_t ms = us / 1000 + (us % 1000 != 0);
  DWORD w = ms >= INFINITE ? INFINITE - 1 : (DWORD)ms;   /* a huge wait still ends */
  return SleepConditionVariableSRW(&c->c, &m->l, w, 0) || GetLastError() != ERROR_TIMEOUT;
}

void net__cond_broadcast(net_cond *c) { WakeAllConditionVariable(&c->c); }

net_sem *net__sem_new(unsigned value) {
  net_sem *s = malloc(sizeof *s);
  if (!s) return NULL;
  s->h = CreateSemaphoreW(NULL, value > LONG_MAX ? LONG_MAX : (LONG)value, LONG_MAX, NULL);
  if (!s->h) {
    free(s);
    return NULL;
  }
  return s;
}

void net__sem_free(net_sem *s) {
  if (!s) return;
  CloseHandle(s->h);
  free(s);
}

void net__sem_post(net_sem *s) { ReleaseSemaphore(s->h, 1, NULL); }

bool net__sem_wait(net_sem *s, int ms) {
  return WaitForSingleObject(s->h, ms < 0 ? INFINITE : (DWORD)ms) == WAIT_OBJECT_0;
}

/* QueryPerformanceCounter is monotonic and never fails on Windows XP and later. */
uint64_t net__now_ns(void) {
  static LARGE_INTEGER freq;   /* fixed at boot: a racing first store writes the same value */
  LARGE_INTEGER c;
  if (!freq.QuadPart) QueryPerformanceFrequency(&freq);
  QueryPerformanceCounter(&c);
  uint64_t f = (uint64_t)freq.QuadPart, v = (uint64_t)c.QuadPart;
  return v / f * 1000000000u + v % f * 1000000000u / f;   /* no overflow for centuries */
}

uint64_t net__now_ms(void) { return net__now_ns() / 1000000u; }
void net__sleep_ms(unsigned ms) { Sleep(ms); }
void net__yield(void) { SwitchToThread(); }


/* ---- symbols ------------------------------------------------------------------- */

static void *proc(HMODULE m, const char *name) {
  FARPROC f = m ? GetProcAddress(m, name) : NULL;
  void *p;
  memcpy(&p, &f, sizeof p);   /* a code address as data, as dlsym gives it */
  return p;
}

/* Windows has no global scope: the executable first, then the libraries
 * named (only if already loaded: GetModuleHandle never loads), then every
 * module of the process (a host may ship its SDL under another name). */
void *net__os_symbol(const char *name, const char *const *libs) {
  void *p = proc(GetModuleHandleW(NULL), name);
  for (; !p && libs && *libs; libs++) p = proc(GetModuleHandleA(*libs), name);
  HMODULE mods[256];
  DWORD need = 0;
  if (!p && EnumProcessModules(GetCurrentProcess(), mods, sizeof mods, &need)) {
    DWORD n = need / sizeof *mods < 256 ? need / sizeof *mods : 256;
    for (DWORD i = 0; !p && i < n; i++) p = proc(mods[i], name);
  }
  return p;
}

void *net__os_symbol_near(const void *anchor, const char *name) {
  HMODULE m = NULL;
  if (GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                         (LPCWSTR)anchor, &m)) {
    void *p = proc(m, name);
    if (p) return p;
  }
  return proc(GetModuleHandleW(NULL), name);
}

/* ntdll's RtlDllShutdownInProgress: true in the library detach of a process
 * exit, when every other thread was already terminated. */
bool net__os_threads_gone(void) {
  FARPROC f = GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "RtlDllShutdownInProgress");
  BOOLEAN(WINAPI * in_progress)(void);
  memcpy(&in_progress, &f, sizeof in_progress);
  return in_progress && in_progress();
}

bool net__os_fork_watch(void) { return true; }   /* no fork() here */
bool net__os_forked(void) { return false; }

void net__os_pin_library(void) {
  static atomic_int pinned;
  HMODULE m;
  if (atomic_load(&pinned)) return;
  if (GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                         (LPCWSTR)(void *)&pinned, &m))
    atomic_store(&pinned, 1);
}

/* ---- memory -------------------------------------------------------------------- */

size_t net__os_block_size(void *p) { return p ? _msize(p) : 0; }
size_t net__os_process_heap(void) { return 0; }   /* walking the heaps would stop every thread using them */

/* The block malloc gave sits in front of the aligned one, its address just
 * below it: _msize must see malloc's own pointer, never an inner one. */
void *net__os_aligned_alloc(size_t align, size_t n) {
  if (n > SIZE_MAX - align - sizeof(void *)) return NULL;
  char *raw = malloc(n + align + sizeof(void *));
  if (!raw) return NULL;
  uintptr_t a = ((uintptr_t)(raw + sizeof(void *)) + align - 1) & ~(uintptr_t)(align - 1);
  ((void **)a)[-1] = raw;
  return (void *)a;
}

void net__os_aligned_free(void *p) {
  if (p) free(((void **)p)[-1]);
}

size_t net__os_aligned_size(void *p) { return p ? _msize(((void **)p)[-1]) : 0; }

void *net__os_pages_reserve(size_t n) { return VirtualAlloc(NULL, n, MEM_RESERVE, PAGE_NOACCESS); }

bool net__os_pages_commit(void *p, size_t n) { return VirtualAlloc(p, n, MEM_COMMIT, PAGE_READWRITE) != NULL; }

void net__os_pages_release(void *p, size_t n) { VirtualFree(p, n, MEM_DECOMMIT); }

/* Large pages need a privilege (SeLockMemoryPrivilege) and stay locked: none. */
void net__os_pages_large(void *p, size_t n) { (void)p, (void)n; }

/* malloc's heap (msvcrt's own, not the process heap): compacting it
 * decommits its large free blocks. */
void net__os_release_memory(void) { HeapCompact((HANDLE)_get_heap_handle(), 0); }

/* The C runtime knows no words for the socket errors (ECONNREFUSED...):
 * those get the texts POSIX systems give, so messages read the same. */
const char *net__os_strerror(int e, char *buf, size_t len) {
  static const struct {
    int e;
    const char *text;
  } sock_texts[] = {
      {ECONNREFUSED, "Connection refused"}, {ECONNRESET, "Connection reset by peer"},
      {ECONNABORTED, "Software caused connection abort"}, {ETIMEDOUT, "Connection timed out"},
      {EADDRINUSE, "Address already in use"}, {EADDRNOTAVAIL, "Cannot assign requested address"},
      {ENETUNREACH, "Network is unreachable"}, {EHOSTUNREACH, "No route to host"},
      {ENETDOWN, "Network is down"}, {WSAEHOSTDOWN, "Host is down"},
      {EAFNOSUPPORT, "Address family not supported by protocol"}, {ENOBUFS, "No buffer space available"},
      {EWOULDBLOCK, "Resource temporarily unavailable"}, {EINPROGRESS, "Operation now in progress"},
      {EMSGSIZE, "Message too long"}, {ENOTCONN, "Transport endpoint is not connected"},
      {EISCONN, "Transport endpoint is already connected"}, {ENOTSOCK, "Socket operation on non-socket"},
      {ENOPROTOOPT, "Protocol not available"}, {EPROTONOSUPPORT, "Protocol not supported"},
      {EOPNOTSUPP, "Operation not supported"}, {EPROTO, "Protocol error"},
      {ELOOP, "Too many levels of symbolic links"},
  };
  for (size_t i = 0; i < sizeof sock_texts / sizeof *sock_texts; i++)
    if (sock_texts[i].e == e) return snprintf(buf, len, "%s", sock_texts[i].text), buf;
  /* a Winsock code no errno stands for (10106 when SystemRoot is missing, ...):
   * its number, which the C runtime's "Unknown error" would lose */
  if (e >= WSABASEERR) return snprintf(buf, len, "Winsock error %d", e), buf;
  if (strerror_s(buf, len, e) != 0 || !strcmp(buf, "Unknown error")) snprintf(buf, len, "error %d", e);
  return buf;
}

void *net__os_memmem(const void *hay, size_t hlen, const void *needle, size_t nlen) {
  const char *h = hay, *end = h + hlen;
  if (!nlen) return (void *)h;
  while ((size_t)(end - h) >= nlen) {
    const char *c = memchr(h, *(const char *)needle, (size_t)(end - h) - nlen + 1);
    if (!c) return NULL;
    if (!memcmp(c, needle, nlen)) return (void *)c;
    h = c + 1;
  }
  return NULL;
}

/* ---- files --------------------------------------------------------------------- */

#ifndef ERROR_DIRECTORY_NOT_SUPPORTED
#define ERROR_DIRECTORY_NOT_SUPPORTED 336L
#endif

static int win_errno(DWORD e) {
  switch (e) {
    case ERROR_DIRECTORY_NOT_SUPPORTED: return EISDIR;
    case ERROR_FILE_NOT_FOUND: case ERROR_PATH_NOT_FOUND: case ERROR_INVALID_NAME:
    case ERROR_BAD_NETPATH: case ERROR_BAD_NET_NAME: case ERROR_BAD_PATHNAME: return ENOENT;
    case ERROR_FILENAME_EXCED_RANGE: return ENAMETOOLONG;
    case ERROR_WRITE_PROTECT: return EROFS;
    case ERROR_CANT_RESOLVE_FILENAME: return ELOOP;
    case ERROR_INVALID_PARAMETER: return EINVAL;
    case ERROR_ACCESS_DENIED: case ERROR_SHARING_VIOLATION: case ERROR_LOCK_VIOLATION: return EACCES;
    case ERROR_ALREADY_EXISTS: case ERROR_FILE_EXISTS: return EEXIST;
    case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY: return ENOMEM;
    case ERROR_TOO_MANY_OPEN_FILES: return EMFILE;
    case ERROR_DISK_FULL: case ERROR_HANDLE_DISK_FULL: return ENOSPC;
    case ERROR_DIRECTORY: return ENOTDIR;
    case ERROR_NOT_SAME_DEVICE: return EXDEV;
    default: return EIO;
  }
}

static int fail_last(void) { return errno = win_errno(GetLastError()), -1; }

/* A UTF-8 path as UTF-16 (malloc'ed), NULL with errno set. */
static wchar_t *wide(const char *s) {
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
  wchar_t *w = n > 0 ? malloc(sizeof *w * (size_t)n) : NULL;
  if (!w || !MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n)) {
    free(w);
    errno = n > 0 ? ENOMEM : EINVAL;
    return NULL;
  }
  return w;
}

int net__os_env(const char *name, char *buf, size_t len) {
  wchar_t *wn = wide(name), *wv = NULL;
  DWORD n = wn ? GetEnvironmentVariableW(wn, NULL, 0) : 0;
  int r = 0;
  if (n > 1 && (wv = malloc(sizeof *wv * n)) && GetEnvironmentVariableW(wn, wv, n) == n - 1)
    r = WideCharToMultiByte(CP_UTF8, 0, wv, -1, buf, len > INT_MAX ? INT_MAX : (int)len, NULL, NULL) - 1;
  else if (len) buf[0] = '\0';
  free(wn);
  free(wv);
  return n > 1 && r <= 0 ? -1 : r;   /* set, but not converted: too long */
}

static int info_of(HANDLE h, bool reparse_tag, net_file_info *out) {
  BY_HANDLE_FILE_INFORMATION bi;
  if (!GetFileInformationByHandle(h, &bi)) return fail_last();
  uint64_t v[] = {bi.dwVolumeSerialNumber, ((uint64_t)bi.nFileIndexHigh << 32) | bi.nFileIndexLow,
                  ((uint64_t)bi.nFileSizeHigh << 32) | bi.nFileSizeLow,
                  ((uint64_t)bi.ftLastWriteTime.dwHighDateTime << 32) | bi.ftLastWriteTime.dwLowDateTime};
  uint64_t hash = 1469598103934665603u;
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
    hash = (hash ^ v[i]) * 1099511628211u;
    if (i == 1) out->node = hash;
  }
  out->id = hash;
  out->size = v[2];
  out->kind = (bi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) ? NET_FILE_DIR : NET_FILE_REG;
  FILE_ATTRIBUTE_TAG_INFO tag;
  if (reparse_tag && (bi.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT))   /* a Unix socket, or a link */
    out->kind = GetFileInformationByHandleEx(h, FileAttributeTagInfo, &tag, sizeof tag) &&
                        tag.ReparseTag == IO_REPARSE_TAG_AF_UNIX
                    ? NET_FILE_SOCK
                    : NET_FILE_OTHER;
  return 0;
}

int net__file_stat(const char *path, bool follow, net_file_info *out) {
  wchar_t *w = wide(path);
  if (!w) return -1;
  DWORD flags = FILE_FLAG_BACKUP_SEMANTICS | (follow ? 0 : FILE_FLAG_OPEN_REPARSE_POINT);   /* folders too */
  HANDLE h = CreateFileW(w, FILE_READ_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                         OPEN_EXISTING, flags, NULL);
  free(w);
  if (h == INVALID_HANDLE_VALUE) return fail_last();
  int r = info_of(h, !follow, out);
  CloseHandle(h);
  return r;
}

int net__file_fstat(int fd, net_file_info *out) {
  HANDLE h = (HANDLE)_get_osfhandle(fd);
  if (h == INVALID_HANDLE_VALUE) return errno = EBADF, -1;
  if (GetFileType(h) != FILE_TYPE_DISK) {   /* a pipe or console never ends like a file */
    memset(out, 0, sizeof *out);
    out->kind = NET_FILE_OTHER;
    return 0;
  }
  return info_of(h, false, out);
}

/* Shared for deletion too, as POSIX files are: a download renames its .part
 * into place while an earlier, failed request may still hold it open. */
int net__file_open(const char *path, int flags) {
  bool rw = flags & NET_OPEN_RW;
  DWORD how = (flags & NET_OPEN_CREATE) ? ((flags & NET_OPEN_TRUNC) ? CREATE_ALWAYS : OPEN_ALWAYS)
                                        : ((flags & NET_OPEN_TRUNC) ? TRUNCATE_EXISTING : OPEN_EXISTING);
  wchar_t *w = wide(path);
  if (!w) return -1;
  HANDLE h = CreateFileW(w, GENERIC_READ | (rw ? GENERIC_WRITE : 0),
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, how,
                         FILE_ATTRIBUTE_NORMAL, NULL);
  DWORD e = GetLastError(), at = h == INVALID_HANDLE_VALUE && e == ERROR_ACCESS_DENIED
                                      ? GetFileAttributesW(w) : INVALID_FILE_ATTRIBUTES;
  /* a folder is "access denied" to CreateFileW: say what POSIX says */
  bool dir = at != INVALID_FILE_ATTRIBUTES && (at & FILE_ATTRIBUTE_DIRECTORY);
  free(w);
  if (dir) return errno = EISDIR, -1;
  if (h == INVALID_HANDLE_VALUE) return errno = win_errno(e), -1;
  int fd = _open_osfhandle((intptr_t)h, _O_BINARY | (rw ? 0 : _O_RDONLY));
  if (fd < 0) CloseHandle(h);
  return fd;
}

ssize_t net__file_read(int fd, void *buf, size_t n) { return _read(fd, buf, n > INT_MAX ? INT_MAX : (unsigned)n); }

ssize_t net__file_write(int fd, const void *buf, size_t n) {
  return _write(fd, buf, n > INT_MAX ? INT_MAX : (unsigned)n);
}

int64_t net__file_seek(int fd, int64_t off, int whence) { return _lseeki64(fd, off, whence); }

int net__file_lock(int fd) {
  OVERLAPPED at = {0};
  HANDLE h = (HANDLE)_get_osfhandle(fd);
  if (h == INVALID_HANDLE_VALUE) return errno = EBADF, -1;
  if (LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, MAXDWORD, MAXDWORD, &at)) return 0;
  errno = GetLastError() == ERROR_LOCK_VIOLATION ? EWOULDBLOCK : EIO;
  return -1;
}

int net__file_truncate(int fd, uint64_t len) {
  errno_t e = _chsize_s(fd, (long long)len);
  return e ? (errno = e, -1) : 0;
}

int net__file_close(int fd) { return _close(fd); }

/* Another program holding a file open without delete sharing (a reader, a
 * virus scanner) refuses a rename or a delete for a moment: these run on
 * helper threads, which may wait it out, up to a second. Access denied on
 * a folder or a read-only file is for good: no wait. */
static bool held_open(const wchar_t *path) {
  DWORD e = GetLastError();
  if (e == ERROR_SHARING_VIOLATION || e == ERROR_LOCK_VIOLATION) return true;
  if (e != ERROR_ACCESS_DENIED) return false;
  DWORD at = GetFileAttributesW(path);
  if (at != INVALID_FILE_ATTRIBUTES && (at & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_READONLY))) {
    SetLastError(at & FILE_ATTRIBUTE_DIRECTORY ? ERROR_DIRECTORY_NOT_SUPPORTED : ERROR_ACCESS_DENIED);
    return false;
  }
  SetLastError(e);
  return true;
}

/* MoveFileEx replaces the target in one step, as rename(2) does. */
int net__file_rename(const char *from, const char *to) {
  wchar_t *a = wide(from), *b = a ? wide(to) : NULL;
  BOOL ok = a && b && MoveFileExW(a, b, MOVEFILE_REPLACE_EXISTING);
  for (int tries = 0; a && b && !ok && tries < 20 && held_open(b); tries++) {
    Sleep(50);
    ok = MoveFileExW(a, b, MOVEFILE_REPLACE_EXISTING);
  }
  int r = ok ? 0 : (a && b) ? fail_last() : -1;
  free(a);
  free(b);
  return r;
}

int net__file_unlink(const char *path) {
  wchar_t *w = wide(path);
  if (!w) return -1;
  int r = DeleteFileW(w) ? 0 : fail_last();
  free(w);
  return r;
}

int net__file_unlink_patiently(const char *path) {
  wchar_t *w = wide(path);
  if (!w) return -1;
  BOOL ok = DeleteFileW(w);
  for (int tries = 0; !ok && tries < 20 && held_open(w); tries++) {
    Sleep(50);
    ok = DeleteFileW(w);
  }
  int r = ok ? 0 : fail_last();
  free(w);
  return r;
}

struct net_dir {
  HANDLE h;
  bool first;          /* FindFirstFile already holds the first entry */
  WIN32_FIND_DATAW fd;
  char name[MAX_PATH * 3];
};

net_dir *net__dir_open(const char *path) {
  size_t n = strlen(path);
  char *pat = malloc(n + 3);
  if (!pat) return errno = ENOMEM, NULL;
  memcpy(pat, path, n);
  memcpy(pat + n, "\\*", 3);
  wchar_t *w = wide(pat);
  free(pat);
  net_dir *d = w ? malloc(sizeof *d) : NULL;
  if (d) d->h = FindFirstFileW(w, &d->fd);
  free(w);
  if (d && d->h == INVALID_HANDLE_VALUE) {
    fail_last();
    free(d);
    return NULL;
  }
  if (d) d->first = true;
  return d;
}

const char *net__dir_next(net_dir *d) {
  for (;;) {
    if (!d->first && !FindNextFileW(d->h, &d->fd)) return NULL;
    d->first = false;
    if (WideCharToMultiByte(CP_UTF8, 0, d->fd.cFileName, -1, d->name, sizeof d->name, NULL, NULL) > 0)
      return d->name;   /* else a name that cannot be UTF-8: skipped */
  }
}

void net__dir_close(net_dir *d) {
  if (!d) return;
  FindClose(d->h);
  free(d);
}

#else
typedef int net__os_win_unused;   /* ISO C wants something in every file */
#endif
