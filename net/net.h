/* net.h: the public C API of the sluice engine, for hosts with or without Lua.
 * Every function here is called from an owner thread and returns at once; only
 * the *_wait functions block, and only for the timeout they are given. */
#ifndef SLUICE_NET_H
#define SLUICE_NET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define NET_API __declspec(dllexport)
#else
#define NET_API __attribute__((visibility("default")))
#endif

typedef enum net_status {
  NET_WAITING = 0,  /* resolving, connecting or handshaking */
  NET_SUCCESS = 1,  /* resolved / established */
  NET_FAILURE = 2   /* failed or closed; see the error code and message */
} net_status;

/* X(name, code string for programs, default text for people) */
#define NET_ERRORS(X)                                        \
  X(NONE, "", "no error")                                    \
  X(CLOSED, "closed", "closed")                              \
  X(REFUSED, "refused", "connection refused")                \
  X(RESET, "reset", "connection reset")                      \
  X(TIMEOUT, "timeout", "timed out")                         \
  X(UNREACHABLE, "unreachable", "unreachable")               \
  X(DNS, "dns", "name resolution failed")                    \
  X(TLS, "tls", "TLS failure")                               \
  X(TLS_VERIFY, "tls-verify", "certificate not trusted")     \
  X(LIMIT, "limit", "out of resources")                      \
  X(INVALID, "invalid", "invalid argument")                  \
  X(IO, "io", "input/output error")

typedef enum net_err {
#define NET_ERR_ENUM(name, code, text) NET_E_##name,
  NET_ERRORS(NET_ERR_ENUM)
#undef NET_ERR_ENUM
  NET_E_COUNT
} net_err;

/* Stable short code ("refused", "dns", ...) and default text of an error. */
NET_API const char *net_errcode(net_err e);
NET_API const char *net_strerror(net_err e);

/* A status with its failure details; msg is "" unless status is NET_FAILURE. */
typedef struct net_result {
  net_status status;
  net_err err;
  const char *msg;   /* valid while the object is referenced */
} net_result;

/* Engine lifetime. Each net_init must be paired with net_quit. The I/O thread
 * starts on first use and is joined when the last user (net_init reference or
 * live object) goes away. Returns 0, or -1 when the engine cannot start. */
NET_API int net_init(void);
NET_API void net_quit(void);

/* Block at most timeout_ms (-1: forever) until the engine publishes anything
 * (data, state change, drained buffer). Returns 1 on activity, 0 on timeout. */
NET_API int net_wait_activity(int timeout_ms);

/* Host wake-ups: when data arrives or a state changes, the I/O thread wakes
 * the host's frame loop, at most once until the host polls again (any status,
 * read or available call). NET_WAKE_SDL pushes one SDL user event (of the type
 * net_wakeup_event_type returns) so a loop sleeping in SDL_WaitEventTimeout
 * runs at once; NET_WAKE_CALLBACK calls fn(ud) on the I/O thread, which must
 * return quickly and must not call back into the engine. NET_WAKE_OFF: none. */
typedef enum net_wake_mode { NET_WAKE_OFF, NET_WAKE_SDL, NET_WAKE_CALLBACK } net_wake_mode;
NET_API int net_set_wakeup(net_wake_mode mode, void (*fn)(void *ud), void *ud);
NET_API uint32_t net_wakeup_event_type(void);   /* 0 until NET_WAKE_SDL was set */

/* Monotonic time in seconds. */
NET_API double net_clock(void);

typedef struct net_stats {
  size_t connections;   /* connection objects alive in the engine */
  size_t addresses;     /* address objects alive */
  size_t buffer_bytes;  /* ring memory held by all connections */
  size_t chunks;        /* buffer chunks handed out */
} net_stats;
NET_API net_stats net_get_stats(void);

/* ---- Addresses --------------------------------------------------------- */
typedef struct net_addr net_addr;

/* Starts resolving host (len bytes, no NUL, 1..253 bytes) in the background.
 * Numeric literals are resolved at once. Returns NULL with *err set (static text)
 * when the name is invalid or memory runs out. The caller owns one reference. */
NET_API net_addr *net_resolve(const char *host, size_t len, const char **err);
NET_API net_result net_addr_status(net_addr *a);
NET_API net_result net_addr_wait(net_addr *a, int timeout_ms);
NET_API const char *net_addr_ip(net_addr *a);        /* NULL unless resolved */
NET_API const char *net_addr_hostname(net_addr *a);
NET_API net_addr *net_addr_ref(net_addr *a);
NET_API void net_addr_unref(net_addr *a);

/* ---- TCP connections --------------------------------------------------- */
typedef struct net_conn net_conn;

/* TLS client options; every field may be 0/NULL for the default. The engine
 * copies what it needs, so the caller's strings may go away afterwards. */
typedef struct net_tls_opts {
  int no_verify;                 /* 1: skip certificate checks (default: verify) */
  const char *server_name;       /* SNI and name checked; default: the host */
  const char *ca_file, *ca_path; /* default: net_set_cacert_path, else the system's */
  const char *cert_file, *key_file, *key_password;   /* client certificate */
  const char *const *alpn;       /* NULL-terminated protocol list */
  int min_version;               /* 12: TLS 1.2 (default), 13: TLS 1.3 */
} net_tls_opts;

typedef struct net_tls_info {
  char version[16];              /* "TLSv1.2" */
  char cipher[96];
  char alpn[64];                 /* "" when none was agreed */
  char peer_subject[256];        /* "" without a peer certificate */
} net_tls_info;

/* Whether the mbedTLS in use speaks TLS 1.3. */
NET_API int net_tls_has_13(void);

/* The PEM bundle (file or directory) later verifying connections use when
 * they name none; NULL restores the system search. */
NET_API void net_set_cacert_path(const char *path);
/* Copies the bundle in use (the one set, else SSL_CERT_FILE / SSL_CERT_DIR,
 * else the first system bundle found) into buf; returns 0 when there is none. */
NET_API int net_get_cacert_path(char *buf, size_t len);

typedef struct net_conn_opts {
  size_t buffer_size;   /* cap per direction; 0: 1 MiB */
  int linger_ms;        /* how long close() keeps delivering; <0: default 5000 */
  const net_tls_opts *tls;   /* NULL: plain TCP */
} net_conn_opts;

/* Connects to port on every address of a (still resolving is fine) in turn.
 * Returns NULL with *err only when out of memory; network failures show in the
 * status. The caller owns the handle until net_conn_close. */
NET_API net_conn *net_tcp_open(net_addr *a, uint16_t port, const net_conn_opts *opts,
                               const char **err);
NET_API net_result net_conn_status(net_conn *c);
NET_API net_result net_conn_wait_connected(net_conn *c, int timeout_ms);
/* Accepts up to len bytes into the send buffer; returns the count (0: full).
 * Returns -1 once the connection has failed. */
NET_API long net_conn_write(net_conn *c, const void *data, size_t len);
/* Copies up to max arrived bytes into buf. Returns the count, 0 when nothing has
 * arrived yet, NET_READ_EOF after an orderly close once all data was read, or
 * NET_READ_ERROR once failed and drained (see net_conn_status). */
#define NET_READ_EOF (-1)
#define NET_READ_ERROR (-2)
NET_API long net_conn_read(net_conn *c, void *buf, size_t max);
NET_API size_t net_conn_available(net_conn *c);
NET_API size_t net_conn_pending_writes(net_conn *c);
NET_API size_t net_conn_wait_drained(net_conn *c, int timeout_ms);
/* Upgrades a plain connection to TLS after the bytes already written; the
 * status is NET_WAITING until the handshake ends. Returns 0, or -1 with *err. */
NET_API int net_conn_starttls(net_conn *c, const net_tls_opts *o, const char **err);
/* Fills *out and returns 1 once a TLS handshake has completed, else 0. */
NET_API int net_conn_tls_info(net_conn *c, net_tls_info *out);
/* The peer's address once connected (new reference), else NULL. */
NET_API net_addr *net_conn_peer(net_conn *c);
/* Graceful close: accepted bytes are still delivered (bounded by the linger
 * time), then the socket closes. Releases the handle: c is invalid afterwards. */
NET_API void net_conn_close(net_conn *c);

#ifdef __cplusplus
}
#endif
#endif
