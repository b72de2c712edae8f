/* err.h: failure details and the engine's error helpers: the code table
 * behind net_errcode/net_strerror, bounded message formatting and the
 * errno mapping. Any thread. */
#ifndef SLUICE_ERR_H
#define SLUICE_ERR_H

#include <stddef.h>

#include "net.h"
#include "os.h"

#define NET_ERRMSG_MAX 192

/* Written by the publishing thread before the state is release-stored;
 * readers read it only after an acquire load sees NET_FAILURE. */
typedef struct net_error {
  net_err code;
  char msg[NET_ERRMSG_MAX];
} net_error;

/* Bounded formatting into e (never overflows, truncates). */
void net__seterr(net_error *e, net_err code, const char *fmt, ...)
    NET_PRINTF(3, 4);
/* The code a system error number maps to. */
net_err net__errno_code(int e);
/* Thread-safe strerror into buf; returns the text. */
const char *net__errstr(int e, char *buf, size_t len);
/* "op where: strerror(e)" with the matching code. */
void net__seterr_sys(net_error *err, const char *op, const char *where, int e);

#endif
