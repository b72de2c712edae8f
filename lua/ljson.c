/* ljson.c: net.json_encode / net.json_decode (RFC 8259) in the binding, so
 * the editor plugin, which can load no other C module, has a fast JSON.
 * Runs on the thread that owns the lua_State; pure computation, no engine
 * call. Both run in a protected call, so a bad input or a memory error
 * comes back as nil, message. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lnet.h"

#define DEPTH_MAX 1000                 /* nesting, both ways: bounds the C stack */
#define SIZE_DEFAULT (256u << 20)      /* text in (decode) or out (encode), bytes */
#define JSON_BUFFER "net.json_buffer"
#define ARRAY_MT "net.json_array"      /* registry: the metatable of decoded [] */

#define OBJECT_OPEN 0x7b              /* '{', named so brace-counting tools stay sane */

static char null_sentinel;             /* net.json_null is a light userdata to this */

/* ---- shared: the C locale, UTF-8, plain runs ----------------------------------------- */

/* Numbers are read and written in the C locale whatever the host set (an
 * editor may run in a locale whose decimal point is a comma). */
#ifdef _WIN32
/* Windows spells the locale objects differently and has no uselocale: the
 * thread takes a locale of its own for the call instead. */
typedef _locale_t locale_t;
#define LC_ALL_MASK LC_ALL
#define newlocale(mask, name, base) ((void)(base), _create_locale(mask, name))
#define freelocale _free_locale
#define strtod_l _strtod_l
typedef struct c_numeric {
  int was;          /* _configthreadlocale's setting before */
  char old[64];     /* LC_NUMERIC before, "" when unknown */
} c_numeric;

static void c_numeric_enter(c_numeric *s) {
  s->was = _configthreadlocale(_ENABLE_PER_THREAD_LOCALE);
  const char *cur = setlocale(LC_NUMERIC, NULL);
  snprintf(s->old, sizeof s->old, "%s", cur && strlen(cur) < sizeof s->old ? cur : "");
  if (s->old[0]) setlocale(LC_NUMERIC, "C");
}

static void c_numeric_leave(c_numeric *s) {
  if (s->old[0]) setlocale(LC_NUMERIC, s->old);
  _configthreadlocale(s->was);
}
#endif

static locale_t c_locale(void) {
  static _Atomic(locale_t) loc;
  locale_t l = atomic_load_explicit(&loc, memory_order_acquire);
  if (l) return l;
  locale_t made = newlocale(LC_ALL_MASK, "C", (locale_t)0), expected = (locale_t)0;
  if (!made) return (locale_t)0;
  if (!atomic_compare_exchange_strong(&loc, &expected, made)) {   /* another thread was first */
    freelocale(made);
    return expected;
  }
  return made;
}

/* The length (2..4) of the UTF-8 sequence at p (p[0] >= 0x80), or 0 when
 * it is not well formed (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
static int utf8_len(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0];
  size_t left = (size_t)(end - p);
  if (c >= 0xc2 && c <= 0xdf) return left >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    return left >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    return left >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
  }
  return 0;
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* How many bytes from p on are "plain": printable ASCII other than '"' and
 * '\\', which both directions copy as they are. Eight at a time. */
static size_t plain_run(const unsigned char *p, const unsigned char *end) {
  const unsigned char *s = p;
  while (end - p >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    uint64_t bad = ((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | w;
    if (bad & HIGHS) break;
    p += 8;
  }
  while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
  return (size_t)(p - s);
}

/* Options {max_depth = n, max_size = bytes} at index i (absent: defaults). */
static void read_opts(lua_State *L, int i, int *depth, size_t *size) {
  *depth = DEPTH_MAX;
  *size = SIZE_DEFAULT;
  if (lua_isnoneornil(L, i)) return;
  luaL_checktype(L, i, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, i)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    int isint = 0;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (strcmp(k, "max_depth") == 0) {
      if (!isint || v < 1 || v > DEPTH_MAX) luaL_argerror(L, i, "max_depth must be an integer 1..1000");
      *depth = (int)v;
    } else if (strcmp(k, "max_size") == 0) {
      if (!isint || v < 1 || (lua_Unsigned)v > (1u << 31)) luaL_argerror(L, i, "max_size must be an integer 1..2^31");
      *size = (size_t)v;
    } else {
      luaL_argerror(L, i, lua_pushfstring(L, "unknown JSON option '%s'", k));
    }
    lua_pop(L, 1);
  }
}

/* The failure of a protected run whose message is on the stack: nil,
 * message, "invalid" ("limit" past a size cap, or out of memory). */
static int json_failed(lua_State *L, int status, bool over) {
  lua_pushnil(L);
  lua_insert(L, -2);
  lua_pushstring(L, net_errcode(over || status == LUA_ERRMEM ? NET_E_LIMIT : NET_E_INVALID));
  return 3;
}

/* ---- decoding ------------------------------------------------------------------------- */

typedef struct dec {
  lua_State *L;
  const unsigned char *s, *p, *end;
  int depth, max_depth;
} dec;

static void value(dec *d);

static int dec_error(dec *d, const unsigned char *at, const char *fmt, const char *arg) {
  lua_State *L = d->L;
  lua_pushfstring(L, fmt, arg);
  lua_pushfstring(L, "json_decode: %s at byte %I", lua_tostring(L, -1), (LUAI_UACINT)(at - d->s + 1));
  return lua_error(L);
}

static int unexpected(dec *d, const char *wanted) {
  if (d->p >= d->end) return dec_error(d, d->p, "unexpected end of text, expected %s", wanted);
  char ch[8];
  unsigned c = *d->p;
  if (c >= 0x20 && c < 0x7f) snprintf(ch, sizeof ch, "'%c'", c);
  else snprintf(ch, sizeof ch, "0x%02X", c);
  lua_pushfstring(d->L, "unexpected %s, expected %s", ch, wanted);
  return dec_error(d, d->p, "%s", lua_tostring(d->L, -1));
}

static void skip_ws(dec *d) {
  const unsigned char *p = d->p, *end = d->end;
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  d->p = p;
}

static int hex4(const unsigned char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned c = p[i];
    int h = c >= '0' && c <= '9' ? (int)c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (int)(c | 0x20) - 'a' + 10 : -1;
    if (h < 0) return -1;
    v = v << 4 | h;
  }
  return v;
}

static void add_utf8(luaL_Buffer *b, unsigned long cp) {
  char u[4];
  int n;
  if (cp < 0x80) u[0] = (char)cp, n = 1;
  else if (cp < 0x800) u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
  else if (cp < 0x10000)
    u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f)), u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
  else
    u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f)), u[2] = (char)(0x80 | (cp >> 6 & 0x3f)),
    u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
  luaL_addlstring(b, u, (size_t)n);
}

/* A \u escape at p (after the backslash): its code point, surrogate pairs joined. */
static unsigned long unicode_escape(dec *d, const unsigned char **pp) {
  const unsigned char *p = *pp;
  int hi = d->end - p >= 5 ? hex4(p + 1) : -1;
  if (hi < 0) dec_error(d, p - 1, "%s", "bad \\u escape");
  p += 5;
  unsigned long cp = (unsigned long)hi;
  if (hi >= 0xdc00 && hi <= 0xdfff) dec_error(d, p - 6, "%s", "lone low surrogate in a \\u escape");
  if (hi >= 0xd800 && hi <= 0xdbff) {
    int lo = d->end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2) : -1;
    if (lo < 0xdc00 || lo > 0xdfff) dec_error(d, p - 6, "%s", "lone high surrogate in a \\u escape");
    cp = 0x10000 + (((unsigned long)hi - 0xd800) << 10) + ((unsigned long)lo - 0xdc00);
    p += 6;
  }
  *pp = p;
  return cp;
}

/* The rest of a string that has escapes, from p (at a backslash); start is
 * its first byte. Pushes it. */
static void string_escaped(dec *d, const unsigned char *start, const unsigned char *p) {
  luaL_Buffer b;
  luaL_buffinitsize(d->L, &b, (size_t)(p - start) + 64);
  luaL_addlstring(&b, (const char *)start, (size_t)(p - start));
  for (;;) {
    size_t run = plain_run(p, d->end);
    luaL_addlstring(&b, (const char *)p, run);
    p += run;
    if (p >= d->end) dec_error(d, start - 1, "%s", "unterminated string");
    unsigned c = *p;
    if (c == '"') break;
    if (c >= 0x80) {
      int n = utf8_len(p, d->end);
      if (!n) dec_error(d, p, "%s", "invalid UTF-8 in a string");
      luaL_addlstring(&b, (const char *)p, (size_t)n);
      p += n;
      continue;
    }
    if (c < 0x20) dec_error(d, p, "%s", "control character in a string (escape it)");
    if (d->end - p < 2) dec_error(d, start - 1, "%s", "unterminated string");
    static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
    const char *e = p[1] ? strchr(esc_in, p[1]) : NULL;
    if (e) {
      luaL_addchar(&b, esc_out[e - esc_in]);
      p += 2;
    } else if (p[1] == 'u') {
      p++;
      add_utf8(&b, unicode_escape(d, &p));
    } else {
      dec_error(d, p, "%s", "bad escape in a string");
    }
  }
  d->p = p + 1;
  luaL_pushresult(&b);
}

/* A string from d->p (just past the opening quote): pushes it. */
static void dec_string(dec *d) {
  const unsigned char *start = d->p, *p = start, *end = d->end;
  for (;;) {
    p += plain_run(p, end);
    if (p >= end) dec_error(d, start - 1, "%s", "unterminated string");
    if (*p == '"') break;
    if (*p == '\\') {
      string_escaped(d, start, p);
      return;
    }
    if (*p < 0x20) dec_error(d, p, "%s", "control character in a string (escape it)");
    int n = utf8_len(p, end);
    if (!n) dec_error(d, p, "%s", "invalid UTF-8 in a string");
    p += n;
  }
  lua_pushlstring(d->L, (const char *)start, (size_t)(p - start));
  d->p = p + 1;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static const unsigned char *skip_digits(const unsigned char *p, const unsigned char *end) {
  while (p < end && *p >= '0' && *p <= '9') p++;
  return p;
}

/* The significant digits of [p, end) skipping '.', as an integer: false
 * when there are more than 19 of them. */
static bool mantissa(const unsigned char *p, const unsigned char *end, uint64_t *m) {
  int n = 0;
  *m = 0;
  for (; p < end; p++) {
    if (*p == '.') continue;
    if (*m == 0 && *p == '0') continue;   /* leading zeros */
    if (++n > 19) return false;
    *m = *m * 10 + (uint64_t)(*p - '0');
  }
  return true;
}

/* A number: integers that fit stay integers; others are floats (exact when
 * the mantissa and the power of ten are exact doubles, else strtod_l). */
static void number(dec *d) {
  const unsigned char *start = d->p, *end = d->end, *p = start;
  if (p < end && *p == '-') p++;
  if (p >= end || *p < '0' || *p > '9') unexpected(d, "a value");
  const unsigned char *digits = p;
  p = *p == '0' ? p + 1 : skip_digits(p, end);
  const unsigned char *int_end = p;
  int frac = 0;
  bool is_float = false;
  if (p < end && *p == '.') {
    const unsigned char *f = ++p;
    p = skip_digits(p, end);
    if (p == f) d->p = p, unexpected(d, "a digit after '.'");
    frac = (int)(p - f);
    is_float = true;
  }
  const unsigned char *mant_end = p;
  long ex = 0;
  bool ex_big = false;
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    bool eneg = p < end && *p == '-';
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || *p < '0' || *p > '9') d->p = p, unexpected(d, "a digit in the exponent");
    for (; p < end && *p >= '0' && *p <= '9'; p++)
      if (ex < 100000) ex = ex * 10 + (*p - '0');
      else ex_big = true;   /* strtod_l reads it whole */
    if (eneg) ex = -ex;
    is_float = true;
  }
  d->p = p;
  bool neg = *start == '-';
  uint64_t m;
  bool exact = mantissa(digits, mant_end, &m);
  if (!is_float && exact && int_end - digits <= 19 &&
      (m <= (uint64_t)INT64_MAX || (neg && m == (uint64_t)INT64_MAX + 1))) {
    lua_pushinteger(d->L, neg ? (lua_Integer)(0 - m) : (lua_Integer)m);
    return;
  }
  long e10 = ex - frac;
  double v;
  if (exact && !ex_big && m < (1ull << 53) && e10 >= -22 && e10 <= 22)
    v = e10 < 0 ? (double)m / pow10_exact[-e10] : (double)m * pow10_exact[e10];
  else
    v = strtod_l((const char *)digits, NULL, c_locale());
  if (isinf(v)) dec_error(d, start, "%s", "number out of range");
  lua_pushnumber(d->L, neg ? -v : v);
}

static void enter(dec *d) {
  if (++d->depth > d->max_depth) dec_error(d, d->p, "nesting deeper than %s", lua_pushfstring(d->L, "%d", d->max_depth));
  luaL_checkstack(d->L, 4, "json_decode: nesting too deep");
}

static void array(dec *d) {
  lua_State *L = d->L;
  enter(d);
  d->p++;
  lua_createtable(L, 0, 0);
  skip_ws(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    luaL_setmetatable(L, ARRAY_MT);   /* so that [] encodes back as [] */
    d->depth--;
    return;
  }
  for (lua_Integer i = 1;; i++) {
    value(d);
    lua_rawseti(L, -2, i);
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      continue;
    }
    if (d->p < d->end && *d->p == ']') break;
    unexpected(d, "',' or ']'");
  }
  d->p++;
  d->depth--;
}

static void object(dec *d) {
  lua_State *L = d->L;
  enter(d);
  d->p++;
  lua_createtable(L, 0, 0);
  skip_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    d->depth--;
    return;
  }
  for (;;) {
    skip_ws(d);
    if (d->p >= d->end || *d->p != '"') unexpected(d, "a string key");
    d->p++;
    dec_string(d);
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':') unexpected(d, "':'");
    d->p++;
    value(d);
    lua_rawset(L, -3);
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      continue;
    }
    if (d->p < d->end && *d->p == '}') break;
    unexpected(d, "',' or '}'");
  }
  d->p++;
  d->depth--;
}

static void literal(dec *d, const char *word, size_t n) {
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0) unexpected(d, "a value");
  d->p += n;
}

static void value(dec *d) {
  skip_ws(d);
  if (d->p >= d->end) unexpected(d, "a value");
  switch (*d->p) {
    case OBJECT_OPEN: object(d); return;
    case '[': array(d); return;
    case '"': d->p++; dec_string(d); return;
    case 't': literal(d, "true", 4); lua_pushboolean(d->L, 1); return;
    case 'f': literal(d, "false", 5); lua_pushboolean(d->L, 0); return;
    case 'n': literal(d, "null", 4); lua_pushlightuserdata(d->L, &null_sentinel); return;
    default: number(d); return;
  }
}

/* Protected: (text, max_depth) -> value. */
static int decode_protected(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  dec d = {L, (const unsigned char *)s, (const unsigned char *)s, (const unsigned char *)s + len, 0,
           (int)lua_tointeger(L, 2)};
  lua_settop(L, 2);
  value(&d);
  skip_ws(&d);
  if (d.p < d.end) unexpected(&d, "the end of the text");
  return 1;
}

static int l_json_decode(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING) return luaL_typeerror(L, 1, "string");
  int depth;
  size_t size, len;
  read_opts(L, 2, &depth, &size);
  lua_tolstring(L, 1, &len);
  if (len > size) {   /* by hand, not lnet_fail: the JSON fuzz target links this file alone */
    lua_pushnil(L);
    lua_pushfstring(L, "json_decode: text of %I bytes exceeds max_size %I", (LUAI_UACINT)len, (LUAI_UACINT)size);
    lua_pushstring(L, net_errcode(NET_E_LIMIT));
    return 3;
  }
  lua_pushcfunction(L, decode_protected);
  lua_pushvalue(L, 1);
  lua_pushinteger(L, depth);
  int r = lua_pcall(L, 2, 1, 0);
  return r == LUA_OK ? 1 : json_failed(L, r, false);
}

/* ---- encoding ------------------------------------------------------------------------- */

/* The output buffer: memory from the state's allocator, in a box whose
 * __close frees it however the encoding ends. */
typedef struct jbuf {
  char *b;
  size_t n, cap;
  lua_Alloc alloc;
  void *ud;
  bool over;        /* the text would have passed max_size */
} jbuf;

static int jbuf_close(lua_State *L) {
  jbuf *j = lua_touserdata(L, 1);
  if (j && j->b) j->alloc(j->ud, j->b, j->cap, 0);
  if (j) j->b = NULL, j->cap = j->n = 0;
  return 0;
}

typedef struct path_step {
  int key;          /* stack index of an object key, or 0 */
  lua_Integer i;    /* an array index */
} path_step;

typedef struct enc {
  lua_State *L;
  jbuf *j;
  size_t max_size;
  int depth, max_depth;
  const void *seen[DEPTH_MAX + 1];   /* the tables being encoded: cycles */
  path_step path[DEPTH_MAX + 1];
} enc;

static void enc_error(enc *e, const char *what);

/* Room for need more bytes; max_size bounds the text and so the memory. */
static char *grow(enc *e, size_t need) {
  jbuf *j = e->j;
  if (need > e->max_size - j->n) {   /* n never passes max_size */
    j->over = true;
    lua_pushfstring(e->L, "the text would exceed max_size %I bytes", (LUAI_UACINT)e->max_size);
    enc_error(e, lua_tostring(e->L, -1));
  }
  if (need <= j->cap - j->n) return j->b + j->n;
  size_t cap = j->cap ? j->cap : 256;
  while (cap - j->n < need) cap *= 2;
  if (cap > e->max_size) cap = e->max_size;
  char *b = j->alloc(j->ud, j->b, j->cap, cap);
  if (!b) luaL_error(e->L, "not enough memory");
  j->b = b;
  j->cap = cap;
  return b + j->n;
}

static void put(enc *e, const char *s, size_t n) {
  memcpy(grow(e, n), s, n);
  e->j->n += n;
}

/* The escape of an ASCII byte that is not plain; its length. */
static size_t escape(unsigned c, char *o) {
  static const char hex[] = "0123456789abcdef";
  const char *two = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                  : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
  if (two) return memcpy(o, two, 2), 2;
  memcpy(o, "\\u00", 4), o[4] = hex[c >> 4], o[5] = hex[c & 15];
  return 6;
}

/* A string, escaped; Lua strings must be UTF-8 (refused, not guessed at). */
static void put_string(enc *e, const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  put(e, "\"", 1);
  for (;;) {
    size_t run = plain_run(p, end);
    put(e, (const char *)p, run);
    p += run;
    if (p >= end) break;
    if (*p >= 0x80) {
      int n = utf8_len(p, end);
      if (!n) {
        lua_pushfstring(e->L, "string is not valid UTF-8 (byte %I)", (LUAI_UACINT)((const char *)p - s + 1));
        enc_error(e, lua_tostring(e->L, -1));
      }
      put(e, (const char *)p, (size_t)n);
      p += n;
      continue;
    }
    char esc[6];
    put(e, esc, escape(*p++, esc));
  }
  put(e, "\"", 1);
}

static void put_integer(enc *e, lua_Integer v) {
  char tmp[24], *t = tmp + sizeof tmp;
  lua_Unsigned u = v < 0 ? 0 - (lua_Unsigned)v : (lua_Unsigned)v;
  do *--t = (char)('0' + u % 10);
  while (u /= 10);
  if (v < 0) *--t = '-';
  put(e, t, (size_t)(tmp + sizeof tmp - t));
}

/* Numbers with at most 6 decimals below 1e9 (prices, coordinates, ...):
 * m = v * 10^k is a whole number below 2^53 for the fewest such k, and
 * m / 10^k (exact operands, one rounding) gives v back, so the decimal
 * string of m with k decimals reads back as v. 0 when that does not work. */
static int fast_decimal(double v, char *out) {
  if (!(fabs(v) < 1e9) || v == 0) return 0;
  for (int k = 0; k <= 6; k++) {
    double m = v * pow10_exact[k];
    if ((double)(long long)m != m) continue;
    if (m / pow10_exact[k] != v) return 0;
    unsigned long long u = (unsigned long long)(m < 0 ? -m : m);
    char digits[24];
    int nd = 0;
    do digits[nd++] = (char)('0' + u % 10);
    while ((u /= 10) || nd <= k);   /* at least one digit before the point */
    int n = 0;
    if (v < 0) out[n++] = '-';
    while (nd > k) out[n++] = digits[--nd];
    out[n++] = '.';
    if (k == 0) out[n++] = '0';
    while (nd > 0) out[n++] = digits[--nd];
    return n;
  }
  return 0;
}

/* The shortest form found quickly that reads back exactly (fast_decimal,
 * else 15 significant digits if they do, else 17), with ".0" added to whole
 * numbers so that they decode as floats again. The caller has switched this
 * thread to the C locale. */
static void put_float(enc *e, double v) {
  if (isnan(v) || isinf(v)) enc_error(e, isnan(v) ? "cannot encode NaN" : "cannot encode an infinite number");
  char tmp[40];
  int n = fast_decimal(v, tmp);
  if (n) {
    put(e, tmp, (size_t)n);
    return;
  }
  n = snprintf(tmp, sizeof tmp, "%.15g", v);
  if (strtod(tmp, NULL) != v) n = snprintf(tmp, sizeof tmp, "%.17g", v);
  if (!strpbrk(tmp, ".eE")) memcpy(tmp + n, ".0", 3), n += 2;
  put(e, tmp, (size_t)n);
}

static void encode(enc *e, int idx);

static void put_array(enc *e, int idx, lua_Integer n) {
  lua_State *L = e->L;
  put(e, "[", 1);
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1) put(e, ",", 1);
    e->path[e->depth - 1].i = i;
    lua_rawgeti(L, idx, i);
    encode(e, lua_gettop(L));
    lua_pop(L, 1);
  }
  put(e, "]", 1);
}

/* Copies the key on the top into slot unless one is there already. */
static void keep_first(lua_State *L, int slot) {
  if (lua_isnil(L, slot)) lua_pushvalue(L, -1), lua_replace(L, slot);
}

/* Why the table at idx, with the key at `key`, is neither array nor object
 * (or, marked as an object, has a key that is not a string). */
static void bad_key(enc *e, int idx, int key, bool marked_object) {
  lua_State *L = e->L;
  if (lua_type(L, key) != LUA_TNUMBER) {
    lua_pushfstring(L, "table key of type %s", luaL_typename(L, key));
    enc_error(e, lua_tostring(L, -1));
  }
  if (marked_object) {
    lua_pushfstring(L, "table marked as an object has the number key %s", luaL_tolstring(L, key, NULL));
    enc_error(e, lua_tostring(L, -1));
  }
  bool strings = false, ints = true;
  lua_Integer max = 0;
  luaL_checkstack(L, 8, "json_encode");
  lua_settop(L, lua_gettop(L) + 3);   /* the first string key, number key, and key no index can be */
  int str = lua_gettop(L) - 2, num = str + 1, bad = str + 2;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int t = lua_type(L, -1);
    if (t == LUA_TSTRING) {
      strings = true;
      keep_first(L, str);
      continue;
    }
    if (t == LUA_TNUMBER) keep_first(L, num);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) ints = false, keep_first(L, bad);
    else if (lua_tointeger(L, -1) > max) max = lua_tointeger(L, -1);
  }
  lua_Integer hole = 1;
  while (ints && !strings && hole < max && lua_rawgeti(L, idx, hole) != LUA_TNIL) lua_pop(L, 1), hole++;
  if (!lua_isnil(L, bad) && lua_type(L, bad) != LUA_TNUMBER)
    lua_pushfstring(L, "table key of type %s", luaL_typename(L, bad));
  else if (strings)
    lua_pushfstring(L, "table mixes string keys and number keys (%s and %s)", luaL_tolstring(L, str, NULL),
                    luaL_tolstring(L, num, NULL));
  else if (ints) lua_pushfstring(L, "sparse array: index %I of 1..%I is nil (use net.json_null)", (LUAI_UACINT)hole, (LUAI_UACINT)max);
  else lua_pushfstring(L, "table key %s is not a positive integer", luaL_tolstring(L, bad, NULL));
  enc_error(e, lua_tostring(L, -1));
}

/* An object in one pass: every key must be a string. */
static void put_object(enc *e, int idx, bool marked) {
  lua_State *L = e->L;
  bool first = true;
  put(e, "{", 1);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int key = lua_gettop(L) - 1;
    e->path[e->depth - 1].key = 0;   /* the slot now holds the next key */
    if (lua_type(L, key) != LUA_TSTRING) bad_key(e, idx, key, marked);
    if (!first) put(e, ",", 1);
    first = false;
    size_t kl;
    const char *k = lua_tolstring(L, key, &kl);
    e->path[e->depth - 1].key = key;
    put_string(e, k, kl);
    put(e, ":", 1);
    encode(e, key + 1);
    lua_pop(L, 1);
  }
  e->path[e->depth - 1].key = 0;
  put(e, "}", 1);
}

/* n when the table's keys are exactly 1..n (n = its length), else -1. */
static lua_Integer sequence_length(lua_State *L, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  if (n == 0) return -1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int isint = 0;
    lua_Integer k = lua_tointegerx(L, -1, &isint);
    if (!isint || lua_type(L, -1) != LUA_TNUMBER || k < 1 || k > n || ++count > n) {
      lua_pop(L, 1);
      return -1;
    }
  }
  return count == n ? n : -1;
}

/* A metatable's __jsontype: 1 "array", 2 "object", else 0. */
static int json_type(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) return 0;
  int t = 0;
  if (lua_getfield(L, -1, "__jsontype") == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1);
    t = strcmp(s, "array") == 0 ? 1 : strcmp(s, "object") == 0 ? 2 : 0;
  }
  lua_pop(L, 2);
  return t;
}

static void put_table(enc *e, int idx) {
  lua_State *L = e->L;
  const void *t = lua_topointer(L, idx);
  for (int i = 0; i < e->depth; i++)
    if (e->seen[i] == t) enc_error(e, "table refers to itself (a cycle)");
  if (e->depth >= e->max_depth) {
    lua_pushfstring(L, "nesting deeper than %d", e->max_depth);
    enc_error(e, lua_tostring(L, -1));
  }
  luaL_checkstack(L, 6, "json_encode: nesting too deep");
  e->seen[e->depth] = t;
  e->path[e->depth] = (path_step){0, 0};
  int kind = json_type(L, idx);
  lua_Integer n = sequence_length(L, idx);
  e->depth++;
  if (n > 0 && kind != 2) {
    put_array(e, idx, n);
  } else if (kind == 1 && lua_rawlen(L, idx) == 0) {
    lua_pushnil(L);
    if (lua_next(L, idx)) {
      int key = lua_gettop(L) - 1;
      if (lua_type(L, key) != LUA_TSTRING) bad_key(e, idx, key, false);
      lua_pushfstring(L, "table marked as an array has the string key '%s'", lua_tostring(L, key));
      enc_error(e, lua_tostring(L, -1));
    }
    put(e, "[]", 2);
  } else {
    put_object(e, idx, kind == 2);
  }
  e->depth--;
}

static void encode(enc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      put_string(e, s, n);
      return;
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) put_integer(e, lua_tointeger(L, idx));
      else put_float(e, lua_tonumber(L, idx));
      return;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) put(e, "true", 4);
      else put(e, "false", 5);
      return;
    case LUA_TTABLE: put_table(e, idx); return;
    case LUA_TNIL: put(e, "null", 4); return;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == &null_sentinel) {
        put(e, "null", 4);
        return;
      }
      /* fall through */
    default:
      lua_pushfstring(L, "cannot encode a %s", luaL_typename(L, idx));
      enc_error(e, lua_tostring(L, -1));
  }
}

/* Raises "json_encode: <what> at $.key[2]...". */
static void enc_error(enc *e, const char *what) {
  lua_State *L = e->L;
  luaL_Buffer b;
  luaL_checkstack(L, 4, NULL);
  lua_pushstring(L, what);   /* what may live in a slot the buffer reuses */
  int w = lua_gettop(L);
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "$");
  for (int i = 0; i < e->depth && b.n < 200; i++) {
    if (e->path[i].key) {
      luaL_addchar(&b, '.');
      luaL_addstring(&b, lua_tostring(L, e->path[i].key));
    } else if (e->path[i].i) {
      lua_pushfstring(L, "[%I]", (LUAI_UACINT)e->path[i].i);
      luaL_addvalue(&b);
    }
  }
  luaL_pushresult(&b);
  lua_pushfstring(L, "json_encode: %s at %s", lua_tostring(L, w), lua_tostring(L, -1));
  lua_error(L);
}

/* Protected: (value, jbuf, max_depth, max_size) -> text. */
static int encode_protected(lua_State *L) {
  enc *e = lua_newuserdatauv(L, sizeof *e, 0);   /* large: off the C stack */
  e->L = L;
  e->j = lua_touserdata(L, 2);
  e->max_depth = (int)lua_tointeger(L, 3);
  e->max_size = (size_t)lua_tointeger(L, 4);
  e->depth = 0;
  lua_toclose(L, 2);
  encode(e, 1);
  lua_pushlstring(L, e->j->b ? e->j->b : "", e->j->n);
  return 1;
}

static int l_json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  int depth;
  size_t size;
  read_opts(L, 2, &depth, &size);
  lua_settop(L, 1);
  jbuf *j = lua_newuserdatauv(L, sizeof *j, 0);   /* index 2: kept past the call, for its flag */
  memset(j, 0, sizeof *j);
  j->alloc = lua_getallocf(L, &j->ud);
  luaL_setmetatable(L, JSON_BUFFER);
  lua_pushcfunction(L, encode_protected);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushinteger(L, depth);
  lua_pushinteger(L, (lua_Integer)size);
#ifdef _WIN32
  c_numeric c;
  c_numeric_enter(&c);   /* printf and strtod */
  int r = lua_pcall(L, 4, 1, 0);
  c_numeric_leave(&c);
#else
  locale_t c = c_locale(), old = c ? uselocale(c) : (locale_t)0;   /* printf and strtod */
  int r = lua_pcall(L, 4, 1, 0);
  if (c) uselocale(old);
#endif
  return r == LUA_OK ? 1 : json_failed(L, r, j->over);
}

void lnet_open_json(lua_State *L) {
  luaL_newmetatable(L, JSON_BUFFER);
  lua_pushcfunction(L, jbuf_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, jbuf_close);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, ARRAY_MT);
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__jsontype");
  lua_pop(L, 1);
}

bool lnet_is_json_null(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == &null_sentinel;
}

/* Adds json_encode, json_decode, json_null and json_array_mt to the table on top. */
void lnet_json_funcs(lua_State *L) {
  lua_pushcfunction(L, l_json_encode);
  lua_setfield(L, -2, "json_encode");
  lua_pushcfunction(L, l_json_decode);
  lua_setfield(L, -2, "json_decode");
  lua_pushlightuserdata(L, &null_sentinel);
  lua_setfield(L, -2, "json_null");
  luaL_getmetatable(L, ARRAY_MT);
  lua_setfield(L, -2, "json_array_mt");
}
