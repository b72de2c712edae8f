/* ws_ext.c: Sec-WebSocket-Extensions parsing and the permessage-deflate
 * negotiation. Any thread; pure. An offer with an unknown or repeated
 * parameter or a bad value is declined (RFC 7692 section 5); an answer like
 * that fails the connection. */
#include <stdio.h>
#include <string.h>

#include "ws_ext.h"
#include "ws_hs.h"

static const char pmd_name[] = "permessage-deflate";

static const char *skip_ows(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  return p;
}

static const char *token_end(const char *p, const char *end) {
  while (p < end && net__ws_tchar((unsigned char)*p)) p++;
  return p;
}

static void value_add(net_ws_ext_param *pa, size_t *n, char c) {
  if (*n < NET_WS_EXT_VALUE) pa->value[(*n)++] = c;
  else pa->value_long = true;
}

/* A token or a quoted string whose unquoted text is a token. */
static const char *parse_value(const char *p, const char *end, net_ws_ext_param *pa) {
  size_t n = 0;
  if (p < end && *p == '"') {
    for (p++;; p++) {
      if (p == end) return NULL;
      if (*p == '"') break;
      if (*p == '\\' && ++p == end) return NULL;
      if (!net__ws_tchar((unsigned char)*p)) return NULL;
      value_add(pa, &n, *p);
    }
    p++;
  } else {
    for (; p < end && net__ws_tchar((unsigned char)*p); p++) value_add(pa, &n, *p);
  }
  if (n == 0 && !pa->value_long) return NULL;
  if (pa->value_long) n = 0;
  pa->value[n] = '\0';
  return p;
}

/* One "; name[=value]" after the extension's name; p is at the ';'. */
static const char *parse_param(const char *p, const char *end, net_ws_ext *e) {
  net_ws_ext_param scratch, *pa = e->nparams < NET_WS_EXT_PARAMS ? &e->params[e->nparams] : &scratch;
  memset(pa, 0, sizeof *pa);
  p = skip_ows(p + 1, end);
  pa->name = p;
  p = token_end(p, end);
  if (p == pa->name) return NULL;
  pa->name_len = (size_t)(p - pa->name);
  p = skip_ows(p, end);
  if (p < end && *p == '=') {
    pa->has_value = true;
    p = parse_value(skip_ows(p + 1, end), end, pa);
  }
  e->nparams++;
  return p;
}

int net__ws_ext_next(const char **at, const char *end, net_ws_ext *e) {
  const char *p = *at;
  for (p = skip_ows(p, end); p < end && *p == ','; p = skip_ows(p + 1, end)) {}
  if (p == end) {
    *at = p;
    return 0;
  }
  e->name = p;
  p = token_end(p, end);
  if (p == e->name) return -1;
  e->name_len = (size_t)(p - e->name);
  e->nparams = 0;
  for (;;) {
    p = skip_ows(p, end);
    if (p == end || *p == ',') break;
    if (*p != ';') return -1;
    if (!(p = parse_param(p, end, e))) return -1;
  }
  *at = p;
  return 1;
}

/* ---- permessage-deflate ------------------------------------------------------ */

typedef struct pmd {
  bool snct, cnct;
  uint8_t smwb, cmwb; /* 0: absent; cmwb 1: present without a value */
} pmd;

static bool named(const char *s, size_t n, const char *want) {
  return strlen(want) == n && memcmp(s, want, n) == 0;
}

/* "8" to "15", nothing else (no sign, no leading zero); 0 when invalid. */
static uint8_t window_bits(const net_ws_ext_param *pa) {
  const char *v = pa->value;
  if (!pa->has_value || pa->value_long) return 0;
  if (v[0] >= '8' && v[0] <= '9' && !v[1]) return (uint8_t)(v[0] - '0');
  if (v[0] == '1' && v[1] >= '0' && v[1] <= '5' && !v[2]) return (uint8_t)(10 + v[1] - '0');
  return 0;
}

static const char *flag_param(const net_ws_ext_param *pa, bool *flag) {
  if (*flag) return "a repeated parameter";
  if (pa->has_value) return "a value on a parameter that takes none";
  *flag = true;
  return NULL;
}

static const char *bits_param(const net_ws_ext_param *pa, uint8_t *bits, bool valueless_ok) {
  if (*bits) return "a repeated parameter";
  if (!pa->has_value && valueless_ok) {
    *bits = 1;
    return NULL;
  }
  return (*bits = window_bits(pa)) ? NULL : "window bits not in 8..15";
}

/* The parameters of one permessage-deflate element; NULL, or what is wrong. */
static const char *pmd_parse(const net_ws_ext *e, bool answer, pmd *o) {
  memset(o, 0, sizeof *o);
  if (e->nparams > NET_WS_EXT_PARAMS) return "too many parameters";
  for (unsigned i = 0; i < e->nparams; i++) {
    const net_ws_ext_param *pa = &e->params[i];
    const char *why;
    if (named(pa->name, pa->name_len, "server_no_context_takeover")) why = flag_param(pa, &o->snct);
    else if (named(pa->name, pa->name_len, "client_no_context_takeover")) why = flag_param(pa, &o->cnct);
    else if (named(pa->name, pa->name_len, "server_max_window_bits")) why = bits_param(pa, &o->smwb, false);
    else if (named(pa->name, pa->name_len, "client_max_window_bits")) why = bits_param(pa, &o->cmwb, !answer);
    else why = "an unknown parameter";
    if (why) return why;
  }
  return NULL;
}

static uint8_t clamp(uint8_t v, uint8_t lo) {
  return v < lo ? lo : v > 15 ? 15 : v;
}

void net__ws_deflate_conf_init(net_ws_deflate_conf *c) {
  memset(c, 0, sizeof *c);
  c->server_max_window_bits = c->client_max_window_bits = 15;
}

/* "permessage-deflate" and its parameters; window bits 0 leave one out, 1 is valueless. */
static bool build(char *out, size_t outlen, bool snct, bool cnct, unsigned smwb, unsigned cmwb) {
  int n = snprintf(out, outlen, "%s%s%s", pmd_name, snct ? "; server_no_context_takeover" : "",
                   cnct ? "; client_no_context_takeover" : "");
  if (n >= 0 && (size_t)n < outlen && smwb)
    n += snprintf(out + n, outlen - (size_t)n, "; server_max_window_bits=%u", smwb);
  if (n >= 0 && (size_t)n < outlen && cmwb == 1)
    n += snprintf(out + n, outlen - (size_t)n, "; client_max_window_bits");
  else if (n >= 0 && (size_t)n < outlen && cmwb)
    n += snprintf(out + n, outlen - (size_t)n, "; client_max_window_bits=%u", cmwb);
  return n >= 0 && (size_t)n < outlen;
}

bool net__ws_deflate_offer(const net_ws_deflate_conf *c, char *out, size_t outlen) {
  uint8_t smwb = clamp(c->server_max_window_bits, 8), cmwb = clamp(c->client_max_window_bits, 9);
  return build(out, outlen, c->server_no_context_takeover, c->client_no_context_takeover,
               smwb < 15 ? smwb : 0, cmwb < 15 ? cmwb : 1);
}

/* The client's rules for a well-formed answer to its offer. */
static const char *answer_fits(const net_ws_deflate_conf *c, const pmd *o) {
  uint8_t smwb = clamp(c->server_max_window_bits, 8), cmwb = clamp(c->client_max_window_bits, 9);
  if (c->server_no_context_takeover && !o->snct)
    return "the server ignored server_no_context_takeover";
  if (smwb < 15 && !o->smwb) return "the server ignored server_max_window_bits";
  if (o->smwb > smwb) return "server_max_window_bits above the offer";
  if (o->cmwb > cmwb) return "client_max_window_bits above the offer";
  return NULL;   /* 8 too (RFC 7692 7.1.2.2): zlib cannot deflate so, so we send uncompressed */
}

int net__ws_deflate_check(const net_ws_deflate_conf *c, const char *value, size_t len,
                          net_ws_deflate *agreed, const char **why) {
  const char *at = value, *end = value + len;
  net_ws_ext e;
  pmd o;
  int r, count = 0;
  *why = NULL;
  if (!value || !len) return 0;
  while ((r = net__ws_ext_next(&at, end, &e)) == 1) {
    if (!named(e.name, e.name_len, pmd_name)) *why = "an extension that was not offered";
    else if (count++) *why = "permessage-deflate answered twice";
    else *why = pmd_parse(&e, true, &o);
    if (*why) return -1;
  }
  if (r < 0) *why = "a malformed Sec-WebSocket-Extensions answer";
  else if (count) *why = answer_fits(c, &o);
  if (*why) return -1;
  if (!count) return 0;
  agreed->server_no_context_takeover = o.snct;
  agreed->client_no_context_takeover = o.cnct || c->client_no_context_takeover;
  agreed->server_max_window_bits = o.smwb ? o.smwb : 15;
  agreed->client_max_window_bits = o.cmwb ? o.cmwb : clamp(c->client_max_window_bits, 9);
  return 1;
}

/* The server's terms for one acceptable offer, and its answer; false to decline. */
static bool accept_offer(const net_ws_deflate_conf *c, const pmd *o, net_ws_deflate *a,
                         char *out, size_t outlen) {
  uint8_t mine = clamp(c->server_max_window_bits, 9), theirs = clamp(c->client_max_window_bits, 9);
  if (o->smwb == 8) return false;   /* zlib cannot deflate with a 256-byte window */
  a->server_no_context_takeover = o->snct || c->server_no_context_takeover;
  a->client_no_context_takeover = o->cnct || c->client_no_context_takeover;
  a->server_max_window_bits = o->smwb && o->smwb < mine ? o->smwb : mine;
  a->client_max_window_bits = 15;
  if (o->cmwb) {   /* the client lets the server limit its window */
    uint8_t limit = o->cmwb > 1 ? o->cmwb : 15;
    a->client_max_window_bits = theirs < limit ? theirs : limit;
  }
  /* an offered server_max_window_bits must be answered, even with 15 */
  unsigned smwb = o->smwb || mine < 15 ? a->server_max_window_bits : 0;
  unsigned cmwb = o->cmwb && a->client_max_window_bits < 15 ? a->client_max_window_bits : 0;
  return build(out, outlen, a->server_no_context_takeover, a->client_no_context_takeover, smwb,
               cmwb);
}

int net__ws_deflate_select(const net_ws_deflate_conf *c, const char *value, size_t len,
                           net_ws_deflate *agreed, char *out, size_t outlen, const char **why) {
  const char *at = value, *end = value + len;
  net_ws_ext e;
  pmd o;
  int r;
  *why = NULL;
  if (!value) return 0;
  while ((r = net__ws_ext_next(&at, end, &e)) == 1) {
    if (!named(e.name, e.name_len, pmd_name) || pmd_parse(&e, false, &o)) continue;
    if (accept_offer(c, &o, agreed, out, outlen)) return 1;
  }
  if (r < 0) *why = "a malformed Sec-WebSocket-Extensions header";
  return r < 0 ? -1 : 0;
}
