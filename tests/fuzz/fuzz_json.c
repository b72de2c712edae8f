/* fuzz_json.c: the JSON decoder of the binding (lua/ljson.c) on arbitrary text,
 * in a real Lua state: it must never crash, a bare number must read as Lua's
 * own conversion reads it, and whatever it accepts must encode again, decode
 * again, and encode to text of the same length (key order may differ between
 * two tables with the same keys).
 * fuzz.sh-extra: lua/ljson.c -I/usr/include/lua5.4 -llua5.4 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

void lnet_open_json(lua_State *L);
void lnet_json_funcs(lua_State *L);

static lua_State *L;
static unsigned long runs;

static void check(int ok) {
  if (!ok) __builtin_trap();
}

/* Calls net.<fn>(arg at index i); leaves its first result on the stack. */
static void call(const char *fn, int i) {
  lua_getfield(L, 1, fn);
  lua_pushvalue(L, i);
  lua_call(L, 1, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) {
    L = luaL_newstate();
    lnet_open_json(L);
  }
  lua_settop(L, 0);
  lua_newtable(L);
  lnet_json_funcs(L);                          /* 1: the functions */
  lua_pushlstring(L, (const char *)data, size);  /* 2: the text */
  call("json_decode", 2);                      /* 3: the value, or nil */
  if (lua_type(L, 3) == LUA_TNUMBER) {           /* a bare number: as Lua (strtod) reads the text */
    check(lua_stringtonumber(L, lua_tostring(L, 2)) != 0);   /* 4 */
    check(lua_isinteger(L, 3) == lua_isinteger(L, 4) && lua_rawequal(L, 3, 4));
    lua_settop(L, 3);
  }
  if (!lua_isnil(L, 3)) {
    call("json_encode", 3);                    /* 4: text */
    check(lua_type(L, 4) == LUA_TSTRING);
    call("json_decode", 4);                    /* 5: value */
    check(!lua_isnil(L, 5));
    call("json_encode", 5);                    /* 6: text again */
    check(lua_type(L, 6) == LUA_TSTRING && luaL_len(L, 6) == luaL_len(L, 4));
  }
  if (++runs % 1000 == 0) lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
