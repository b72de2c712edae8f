/* tls.h: the engine's TLS layer over mbedTLS. Option copies are made on the
 * owner thread; everything else runs on the I/O thread only. */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "net.h"

typedef struct net_tls_cfg net_tls_cfg;   /* immutable copy of one connection's options */
typedef struct net_tls net_tls;           /* one connection's TLS session */

enum { NET_TLS_DONE = 0, NET_TLS_WANT_READ = 1, NET_TLS_WANT_WRITE = 2 };
#define NET_TLS_EOF (-1)      /* the peer's close_notify */
#define NET_TLS_ERROR (-2)    /* err is filled */

/* Owner thread. host is the name connected to: the default SNI and checked
 * name (an IP literal is checked against the certificate's IP addresses). */
net_tls_cfg *net__tls_cfg_new(const net_tls_opts *o, const char *host, bool server,
                              const char **err);
net_tls_cfg *net__tls_cfg_ref(const net_tls_cfg *cfg);   /* any thread */
void net__tls_cfg_free(net_tls_cfg *cfg);                 /* drops one reference */

/* I/O thread. where ("tls 127.0.0.1:443") starts every message. */
net_tls *net__tls_new(const net_tls_cfg *cfg, int fd, const char *where, net_error *err);
void net__tls_free(net_tls *t);
int net__tls_handshake(net_tls *t, net_error *err);
/* > 0 bytes; 0: would block (see net__tls_want); NET_TLS_EOF; NET_TLS_ERROR. */
long net__tls_read(net_tls *t, void *buf, size_t len, net_error *err);
/* > 0 bytes; 0: would block, call again later with the same buf and len. */
long net__tls_write(net_tls *t, const void *buf, size_t len, net_error *err);
/* NET_TLS_DONE, or a WANT when the alert could not be sent yet. */
int net__tls_close_notify(net_tls *t);
int net__tls_want(const net_tls *t);      /* what the last blocked call waits for */
bool net__tls_pending(const net_tls *t);  /* decrypted or buffered bytes remain */
void net__tls_get_info(const net_tls *t, net_tls_info *out);

#endif
