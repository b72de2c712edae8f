/* tls.h: the engine's TLS layer over mbedTLS: option copies (owner thread),
 * configurations loaded from files on a helper thread and shared, and each
 * connection's session (I/O thread). */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "sock.h"
#include "net.h"

typedef struct net_tls_cfg net_tls_cfg;     /* immutable copy of one connection's options */
typedef struct net_tls_conf net_tls_conf;   /* a loaded configuration, shared */
typedef struct net_tls net_tls;             /* one connection's TLS session */
struct net_io;

/* WANT_CHECK: the handshake is through and waits for a helper's verdict on
 * the server's certificate; the connection is kicked when it is in. */
enum { NET_TLS_DONE = 0, NET_TLS_WANT_READ = 1, NET_TLS_WANT_WRITE = 2, NET_TLS_WANT_CHECK = 3 };
#define NET_TLS_EOF (-1)      /* the peer's close_notify */
#define NET_TLS_ERROR (-2)    /* err is filled */

/* Owner thread. host is the name connected to: the default SNI and checked
 * name (an IP literal is checked against the certificate's IP addresses).
 * NULL with *err and *code (NET_E_INVALID for options no use can fix). */
net_tls_cfg *net__tls_cfg_new(const net_tls_opts *o, const char *host, bool server,
                              const char **err, net_err *code);
/* A deep copy of caller's options (alpn dropped), or NULL for NULL; *ok false
 * when memory ran out (what was copied is still freed by net__tls_opts_free). */
net_tls_opts *net__tls_opts_dup(const net_tls_opts *t, bool *ok);
void net__tls_opts_free(net_tls_opts *t);
net_tls_cfg *net__tls_cfg_ref(const net_tls_cfg *cfg);   /* any thread */
void net__tls_cfg_free(net_tls_cfg *cfg);                 /* drops one reference */

/* I/O thread: the configuration for cfg (a new reference), loaded or
 * checked against its files on a helper thread when it is new or has not
 * been checked for a second. NULL with *pending: waiter is kicked when it is
 * worth asking again (it awaits, as for an address); NULL otherwise: err. */
net_tls_conf *net__tls_conf_get(net_tls_cfg *cfg, struct net_io *waiter, bool *pending, net_error *err);
net_tls_conf *net__tls_conf_ref(net_tls_conf *f);
void net__tls_conf_unref(net_tls_conf *f);   /* any thread */

/* I/O thread. where ("tls 127.0.0.1:443") starts every message. */
net_tls *net__tls_new(net_tls_conf *conf, const net_tls_cfg *cfg, net_sock fd, const char *where,
                      net_error *err);
void net__tls_free(net_tls *t);
int net__tls_handshake(net_tls *t, net_error *err);
/* > 0 bytes; 0: would block (see net__tls_want); NET_TLS_EOF; NET_TLS_ERROR. */
long net__tls_read(net_tls *t, void *buf, size_t len, net_error *err);
/* > 0 bytes; 0: would block, call again later with (at least) the same
 * bytes: a record made of them may be waiting, and counts once it is out. */
long net__tls_write(net_tls *t, const void *buf, size_t len, net_error *err);
/* Sends what mbedTLS holds for the wire (a record, an alert the read side
 * made): NET_TLS_DONE, a WANT, or NET_TLS_ERROR. */
int net__tls_flush(net_tls *t, net_error *err);
bool net__tls_out_pending(const net_tls *t);
/* NET_TLS_DONE, or a WANT when the alert could not be sent yet. */
int net__tls_close_notify(net_tls *t);
int net__tls_want(const net_tls *t);      /* what the last blocked call waits for */
bool net__tls_pending(const net_tls *t);  /* decrypted or buffered bytes remain */
void net__tls_get_info(const net_tls *t, net_tls_info *out);

#endif
