/* err.c: the error table (net_errcode, net_strerror), message formatting and
 * the errno mapping. Any thread. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "err.h"
#include "os.h"
#include "sock.h"

static const char *const err_codes[] = {
#define NET_ERR_CODE(name, code, text) code,
    NET_ERRORS(NET_ERR_CODE)
#undef NET_ERR_CODE
};
static const char *const err_texts[] = {
#define NET_ERR_TEXT(name, code, text) text,
    NET_ERRORS(NET_ERR_TEXT)
#undef NET_ERR_TEXT
};

const char *net_errcode(net_err e) { return (unsigned)e < NET_E_COUNT ? err_codes[e] : "io"; }

const char *net_strerror(net_err e) {
  return (unsigned)e < NET_E_COUNT ? err_texts[e] : "unknown error";
}

#define ERR_HEAD 64   /* bytes of a long message kept before its cut */

/* A message too long for its buffer loses its middle, not its end: the head
 * names what failed, the tail says why (a 253-byte host name would push the
 * reason out). Neither cut splits a UTF-8 sequence. */
static void fit(char *dst, const char *src, size_t n) {
  if (n < NET_ERRMSG_MAX) {
    memcpy(dst, src, n + 1);
    return;
  }
  size_t head = ERR_HEAD, from = n - (NET_ERRMSG_MAX - 1 - ERR_HEAD - 3);
  while (head > 0 && ((unsigned char)src[head] & 0xC0) == 0x80) head--;
  while (from < n && ((unsigned char)src[from] & 0xC0) == 0x80) from++;
  memcpy(dst, src, head);
  memcpy(dst + head, "...", 3);
  memcpy(dst + head + 3, src + from, n - from + 1);
}

void net__seterr(net_error *e, net_err code, const char *fmt, ...) {
  char buf[1024], *big = NULL;
  va_list ap, again;
  va_start(ap, fmt);
  va_copy(again, ap);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0) n = 0, buf[0] = '\0';
  /* longer (a path of 4 KiB): formatted whole, so that its tail is the real end */
  if ((size_t)n >= sizeof buf && (big = net__malloc((size_t)n + 1)) != NULL) vsnprintf(big, (size_t)n + 1, fmt, again);
  va_end(again);
  va_end(ap);
  if (big) {
    fit(e->msg, big, (size_t)n);
    net__free(big);
  } else {
    size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    if ((size_t)n >= sizeof buf) {   /* out of memory: what fit, without a character cut in two */
      while (len > 0 && ((unsigned char)buf[len - 1] & 0xC0) == 0x80) len--;
      if (len > 0 && ((unsigned char)buf[len - 1] & 0x80)) len--;
      buf[len] = '\0';
    }
    fit(e->msg, buf, len);
  }
  e->code = code;
}

const char *net__errstr(int e, char *buf, size_t len) { return net__os_strerror(e, buf, len); }

void net__seterr_sys(net_error *err, const char *op, const char *where, int e) {
  char buf[128];
  net__seterr(err, net__errno_code(e), "%s %s: %s", op, where, net__errstr(e, buf, sizeof buf));
}

net_err net__errno_code(int e) {
  switch (e) {
    case ECONNREFUSED: return NET_E_REFUSED;
    case ECONNRESET: case EPIPE: case ECONNABORTED: return NET_E_RESET;
    case ETIMEDOUT: return NET_E_TIMEOUT;
    case ENETUNREACH: case EHOSTUNREACH: case ENETDOWN: case EHOSTDOWN:
    case EADDRNOTAVAIL: case EAFNOSUPPORT: return NET_E_UNREACHABLE;
    case EMFILE: case ENFILE: case ENOBUFS: case ENOMEM: return NET_E_LIMIT;
    case EINVAL: case EACCES: case EPERM: return NET_E_INVALID;
    default: return NET_E_IO;
  }
}
