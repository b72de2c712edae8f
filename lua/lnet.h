/* lnet.h: shared pieces of the Lua binding (one file per object type).
 * Runs on whatever thread owns the lua_State; it only polls the engine,
 * through net/net.h alone: the binding knows no sockets and no engine
 * internals (the build gives lua/ no include path into net/). */
#ifndef SLUICE_LNET_H
#define SLUICE_LNET_H

#include <stdbool.h>

#include <lauxlib.h>
#include <lua.h>

#include "../net/net.h"

#define LNET_ADDR "net.address"
#define LNET_TCP "net.tcp"
#define LNET_SERVER "net.server"
#define LNET_UDP "net.udp"
#define LNET_DGRAM "net.datagram"
#define LNET_RESOLVER "net.resolver"
#define LNET_HTTP "net.http"
#define LNET_WS "net.websocket"

/* Handles within a call. Any Lua allocation (a string, table or userdata
 * pushed, a luaL_Buffer grown, lnet_scratch) may run finalizers, and a
 * finalizer may close any object: the one whose method is running, or one
 * passed to it. The engine offers the binding no reference of its own to
 * hold, and a deferred close would stay pending for ever after a memory
 * error, so the rule is the plain one: read an engine handle from its
 * userdata after the last allocation before using it, and stop ("closed")
 * when it is gone. Memory the engine lends (spans, views, header fields) is
 * used before the next allocation; lua_pushlstring copies its bytes before it
 * can collect, so handing such memory to it is safe. */

/* Pushes "waiting" / "success" / "failure", message, code; returns the count. */
int lnet_push_result(lua_State *L, net_result r);
/* Pushes nil, message, code; returns 3. */
int lnet_fail(lua_State *L, const char *msg, net_err code);
/* A block of at least n bytes to gather a read in before it becomes a string:
 * one per lua_State, kept and reused, so a large read allocates only its
 * string. Valid until the next call; NULL past 1 MiB (then use a
 * luaL_Buffer); raises a memory error, so call it before consuming. */
char *lnet_scratch(lua_State *L, size_t n);
/* Where lnet_push_gathered takes n bytes from: ud is the object's userdata,
 * open() says whether a finalizer closed it meanwhile, copy() gathers the
 * first n bytes into dst and returns the count, *reads counts the object's
 * reads (bumped by every consume): one a finalizer made meanwhile shows. */
typedef struct lnet_source {
  void *ud;
  bool (*open)(void *ud);
  size_t (*copy)(void *ud, void *dst, size_t n);
  const unsigned *reads;
} lnet_source;
/* What lnet_push_gathered returns, nothing pushed, when a finalizer read the
 * same object meanwhile: the bytes it meant may be gone. Its caller returns
 * it, and lnet_read_again runs the whole read again. */
#define LNET_READ_AGAIN (-2)
/* Pushes n arrived bytes as one string, consuming nothing: copied once from
 * `one` when they lie in one piece of buffer memory (Lua 5.4 makes a string
 * only from contiguous bytes), else gathered first (on the C stack when
 * short, else in lnet_scratch or a luaL_Buffer). Returns the count pushed;
 * -1, nothing pushed, when a finalizer the allocation ran closed the source;
 * LNET_READ_AGAIN when one read it. The caller drops that many bytes after
 * the push: a memory error leaves them where they were. */
long lnet_push_gathered(lua_State *L, size_t n, const void *one, const lnet_source *src);
/* Runs read method f, again while it returns LNET_READ_AGAIN. */
int lnet_read_again(lua_State *L, lua_CFunction f);
/* luaL_checkstring for strings the engine takes as C strings: one with a
 * NUL byte raises, as the engine would see it cut short. */
const char *lnet_check_cstring(lua_State *L, int i);
/* luaL_checkoption that also raises on a NUL byte (it compares up to one). */
int lnet_check_option(lua_State *L, int i, const char *def, const char *const lst[]);
/* keepalive between Lua (true/false, or idle seconds) and net_conn_opts (lopts.c). */
bool lnet_keepalive_from(lua_State *L, int i, int *out);
void lnet_push_keepalive(lua_State *L, int v);
/* Optional millisecond timeout at index i: default 0, -1 means forever. */
int lnet_opt_timeout(lua_State *L, int i);
/* Registers a metatable with separate methods (so __gc is not callable as a
 * method); the methods share the nup upvalues on the stack top, which it pops. */
void lnet_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                    const luaL_Reg *metamethods, int nup);

/* Pushes an empty net.address and returns its slot: fill it after the push,
 * so a memory error while pushing cannot leak the reference. */
net_addr **lnet_new_addr(lua_State *L);
net_addr *lnet_check_addr(lua_State *L, int i);
net_addr *lnet_test_addr(lua_State *L, int i);

typedef struct lnet_tls_args {
  net_tls_opts o;
  const char *alpn[17];
  const char *bad;   /* a path no file can have (a NUL byte): the open fails with this */
} lnet_tls_args;

typedef struct lnet_conn_args {
  net_conn_opts o;
  lnet_tls_args tls;
  net_resolver **resolver;   /* `resolver` option's slot, its userdata left on the stack */
} lnet_conn_args;

typedef struct lnet_server_args {
  net_server_opts o;
  lnet_tls_args tls;
  net_ws_server_opts ws;   /* o.websocket points here when asked for */
} lnet_server_args;

typedef struct lnet_ws_args {
  net_ws_opts o;
  lnet_tls_args tls;
} lnet_ws_args;

typedef struct lnet_http_args {
  net_http_opts o;
  lnet_tls_args tls;
} lnet_http_args;

/* Option tables (lopts.c); raise on unknown keys and wrong types. */
/* The options table at arg checked for keys not in `keys` (an argument error
 * naming the `what` option), then replaced by a plain copy of the known ones;
 * or the list at idx replaced by a copy of its items. The strings read from a
 * copy are held while it is on the stack, whatever __index or a finalizer does. */
void lnet_options(lua_State *L, int arg, int argn, const char *const *keys, const char *what);
void lnet_snapshot_list(lua_State *L, int idx);
void lnet_check_tls_table(lua_State *L, int arg, lnet_tls_args *a, bool server);
/* open_tcp's 3rd (ssl_alone: true or a table of TLS options is Part 1's
 * `ssl`), open_unix's 2nd (a table of connection options only); may leave
 * the resolver on the stack. */
void lnet_check_conn_arg(lua_State *L, int arg, bool ssl_alone, lnet_conn_args *a);
void lnet_check_server_opts(lua_State *L, int arg, lnet_server_args *a);
/* net.open_websocket's options (arg may be absent); leaves values on the
 * stack that must stay until the call, as the two below do. */
void lnet_check_ws_opts(lua_State *L, int arg, lnet_ws_args *a);
/* net.http_request's table; leaves values on the stack that must stay until the call. */
void lnet_check_http_opts(lua_State *L, int arg, lnet_http_args *a);

/* An empty net.tcp pushed before the connection exists (so a memory error
 * leaks nothing), then filled with one the caller hands over (accept). */
typedef struct ltcp ltcp;
ltcp *lnet_new_tcp(lua_State *L);
void lnet_tcp_adopt(ltcp *u, net_conn *c);
/* ip, port (nil for Unix sockets), family ("inet", "inet6", "unix"). */
int lnet_push_endpoint(lua_State *L, const net_endpoint *e);

void lnet_open_addr(lua_State *L);
void lnet_open_udp(lua_State *L);
int lnet_open_udp_fn(lua_State *L);
void lnet_open_server(lua_State *L);
int lnet_create_server(lua_State *L);
int lnet_open_unix_fn(lua_State *L);
void lnet_open_tcp(lua_State *L);
int lnet_resolve_address(lua_State *L);
int lnet_open_tcp_fn(lua_State *L);
/* ljson.c: the JSON buffer and array metatables; the json_* fields of the
 * module table on top of the stack. */
void lnet_open_json(lua_State *L);
void lnet_json_funcs(lua_State *L);
/* Whether the value at idx is net.json_null (a light userdata, but no function). */
bool lnet_is_json_null(lua_State *L, int idx);
/* lresolver.c */
void lnet_open_resolver(lua_State *L);
int lnet_create_resolver(lua_State *L);
/* The resolver userdata's slot at i (NULL once closed): read it at the call
 * that uses it, as the rule above says. */
net_resolver **lnet_resolver_slot(lua_State *L, int i);
void lnet_open_http(lua_State *L);
int lnet_http_request(lua_State *L);
/* lws.c */
void lnet_open_ws(lua_State *L);
int lnet_open_websocket(lua_State *L);
/* An empty net.websocket pushed before the websocket exists (accept), as
 * lnet_new_tcp; returns its slot to fill. */
net_ws **lnet_new_ws(lua_State *L);

#endif
