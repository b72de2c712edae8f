-- gen_shim.lua: generates the Lua-API shim of the editor plugin (build/gen/).
--
--   lua5.4 plugin/gen_shim.lua [-I INCLUDE_DIR] [-o OUT_DIR] [SOURCE...]
--
-- Reads Lua 5.4's own headers (lua.h, lauxlib.h, lualib.h in INCLUDE_DIR,
-- default /usr/include/lua5.4) and writes, in OUT_DIR (default build/gen):
--
--   lua_shim.h     force-included (-include) in every file of the plugin build:
--                  includes those very headers (by absolute path), then, for
--                  every function declared with LUA_API / LUALIB_API /
--                  LUAMOD_API: `typedef <prototype> sluice_t_NAME;`,
--                  `extern sluice_t_NAME *sluice_p_NAME;`, a compile-time check
--                  that the typedef is the header's prototype (GCC/Clang), and
--                  `#define NAME (*sluice_p_NAME)`. Every call, including the
--                  ones inside Lua's macros (lua_pcall -> lua_pcallk,
--                  lua_tostring -> lua_tolstring, luaL_newlib ->
--                  luaL_checkversion_, ...), then goes through a pointer, and
--                  the plugin has no undefined lua_*/luaL_* symbol.
--   lua_shim.c     the pointers and
--                    const char *sluice_shim_init(void *(*lookup)(const char *))
--                  which fills every pointer from the host's lookup function
--                  (Lite XL's / Pragtical's `XL` argument) and returns the
--                  name of the first *required* function the host lacks, or
--                  NULL. Required = used by the SOURCE files (their
--                  identifiers, closed over the headers' macros); the others
--                  stay NULL when missing, so a host built from other 5.4.x
--                  headers (which differ by a function or two) still loads
--                  the plugin.
--   lua_names.h    SLUICE_LUA_API(name) for every function (X-macro list), for
--                  test hosts that serve the API by name.
--   lua_required.txt  the required names, one a line.
--
-- Files are rewritten only when their content changes (they are force-included
-- everywhere: a new timestamp would rebuild the whole plugin).
--
-- Runs on Lua 5.1-5.4 (no 5.3+ syntax), so premake's own Lua could run it too.

local include_dir = "/usr/include/lua5.4"
local out_dir = "build/gen"
local sources = {}

do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "-I" or a == "-o" then
      if not arg[i + 1] then error("gen_shim: " .. a .. " needs a value") end
      if a == "-I" then include_dir = arg[i + 1] else out_dir = arg[i + 1] end
      i = i + 2
    elseif a:sub(1, 2) == "-I" then
      include_dir = a:sub(3); i = i + 1
    elseif a:sub(1, 2) == "-o" then
      out_dir = a:sub(3); i = i + 1
    elseif a == "-h" or a == "--help" then
      io.write("usage: lua5.4 plugin/gen_shim.lua [-I INCLUDE_DIR] [-o OUT_DIR] [SOURCE...]\n")
      os.exit(0)
    else
      sources[#sources + 1] = a; i = i + 1
    end
  end
end
include_dir = include_dir:gsub("/+$", "")

local function die(fmt, ...)
  io.stderr:write("gen_shim: ", string.format(fmt, ...), "\n")
  os.exit(1)
end

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then die("cannot read %s", err) end
  local s = f:read("*a")
  f:close()
  return s
end

-- Absolute form of the include dir, so the generated header includes exactly
-- the files it was generated from.
local function absolute(dir)
  if dir:sub(1, 1) == "/" then return dir end
  local p = io.popen("pwd")
  local cwd = p and p:read("*l")
  if p then p:close() end
  if not cwd or cwd == "" then die("cannot find the current directory") end
  return cwd .. "/" .. dir:gsub("^%./", "")
end
include_dir = absolute(include_dir)

--------------------------------------------------------------------------------
-- C text helpers

-- Removes comments and the contents of string / character literals (keeping
-- the quotes), and joins backslash-continued lines. Newlines inside block
-- comments are kept, so line structure survives.
local function clean(src)
  src = src:gsub("\r\n", "\n"):gsub("\\\n", " ")
  local out, i, n = {}, 1, #src
  while i <= n do
    local c = src:sub(i, i)
    local two = src:sub(i, i + 1)
    if two == "/*" then
      local j = src:find("*/", i + 2, true)
      if not j then die("unterminated comment") end
      local body = src:sub(i, j + 1)
      out[#out + 1] = " " .. body:gsub("[^\n]", "")
      i = j + 2
    elseif two == "//" then
      local j = src:find("\n", i, true) or n + 1
      out[#out + 1] = " "
      i = j
    elseif c == '"' or c == "'" then
      local j = i + 1
      while j <= n do
        local d = src:sub(j, j)
        if d == "\\" then j = j + 2
        elseif d == c or d == "\n" then break
        else j = j + 1 end
      end
      out[#out + 1] = c .. c
      i = j + 1
    else
      local j = src:find("[/\"']", i + 1) or n + 1
      out[#out + 1] = src:sub(i, j - 1)
      i = j
    end
  end
  return table.concat(out)
end

local function identifiers(text)
  local t = {}
  for id in text:gmatch("[%a_][%w_]*") do t[#t + 1] = id end
  return t
end

-- Function names of the API: lua_xxx, luaL_xxx (lower case after the prefix;
-- lua_State, luaL_Buffer, ... are types) and luaopen_xxx.
local function is_api_name(id)
  return id:match("^luaL?_[a-z][%w_]*$") ~= nil or id:match("^luaopen_[%w_]+$") ~= nil
end

--------------------------------------------------------------------------------
-- Parse the headers

local HEADERS = { "lua.h", "lauxlib.h", "lualib.h" }
local KEYWORDS = { LUA_API = true, LUALIB_API = true, LUAMOD_API = true }

local funcs = {}       -- in header order: { name, decl, typedef, header }
local by_name = {}
local macros = {}      -- macro name -> array of identifiers in its body

local function parse_header(file, collect_functions)
  local text = clean(read(include_dir .. "/" .. file))
  local code = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local directive = line:match("^%s*#%s*(.*)$")
    if directive then
      local name, rest = directive:match("^define%s+([%a_][%w_]*)(.*)$")
      if name then
        local body = rest:match("^%b()(.*)$") or rest   -- drop a parameter list
        macros[name] = identifiers(body)
      end
      code[#code + 1] = ""
    else
      code[#code + 1] = line
    end
  end
  if not collect_functions then return end
  for stmt in table.concat(code, "\n"):gmatch("[^;{}]+") do
    local s = stmt:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
    local kw, decl = s:match("^([%a_][%w_]*) (.*)$")
    if kw and KEYWORDS[kw] then
      -- the declared name: the first API-style identifier directly followed by
      -- its parameter list, "name (" or, parenthesized, "(name) ("
      local name
      local pos = 1
      while true do
        local a, b, id = decl:find("([%a_][%w_]*)", pos)
        if not a then break end
        local after = decl:sub(b + 1)
        if is_api_name(id) and decl:sub(a - 1, a - 1):match("[%w_]") == nil
            and (after:match("^ ?%) ?%(") or after:match("^ ?%(")) then
          name = id
          break
        end
        pos = b + 1
      end
      if name then   -- else a variable (e.g. lua_ident[]): not a function
        if not decl:match("%)$") then die("%s: cannot parse '%s'", file, s) end
        if by_name[name] then die("%s: %s declared twice", file, name) end
        local typedef = decl:gsub("%f[%w_]" .. name .. "%f[^%w_]", "sluice_t_" .. name, 1)
        local f = { name = name, decl = kw .. " " .. decl, typedef = typedef, header = file }
        funcs[#funcs + 1] = f
        by_name[name] = f
      end
    end
  end
end

parse_header("luaconf.h", false)   -- macros only (e.g. LUAL_NUMSIZES, luai_likely)
for _, h in ipairs(HEADERS) do parse_header(h, true) end
if #funcs < 100 then
  die("only %d API functions found in %s: not Lua 5.4's headers?", #funcs, include_dir)
end
do
  local v = read(include_dir .. "/lua.h"):match("#define%s+LUA_VERSION_NUM%s+(%d+)")
  if v ~= "504" then die("%s/lua.h is Lua %s, not 5.4", include_dir, tostring(v)) end
end

--------------------------------------------------------------------------------
-- Required functions: identifiers of the sources, closed over the macros

local required = {}
do
  local seen, work = {}, {}
  local function add(id)
    if not seen[id] then seen[id] = true; work[#work + 1] = id end
  end
  for _, path in ipairs(sources) do
    for _, id in ipairs(identifiers(clean(read(path)))) do add(id) end
  end
  while #work > 0 do
    local id = table.remove(work)
    if macros[id] and not by_name[id] then
      for _, sub in ipairs(macros[id]) do add(sub) end
    end
  end
  for _, f in ipairs(funcs) do
    if seen[f.name] then required[f.name] = true end
  end
end

--------------------------------------------------------------------------------
-- Output

local function write_if_changed(name, content)
  local path = out_dir .. "/" .. name
  local f = io.open(path, "rb")
  if f then
    local old = f:read("*a")
    f:close()
    if old == content then return false end
  end
  local tmp = path .. ".tmp"
  f = io.open(tmp, "wb")
  if not f then die("cannot write %s", tmp) end
  f:write(content)
  f:close()
  local ok, err = os.rename(tmp, path)
  if not ok then die("cannot rename %s: %s", tmp, tostring(err)) end
  return true
end

os.execute("mkdir -p '" .. out_dir:gsub("'", "'\\''") .. "'")

local banner = string.format("/* Generated by plugin/gen_shim.lua from %s: do not edit. */\n", include_dir)
local nreq = 0
for _ in pairs(required) do nreq = nreq + 1 end

local h = { banner, [[
/* The Lua C API through pointers, for a native plugin whose host (Lite XL,
 * Pragtical) exports no Lua symbols but hands over a lookup function.
 * Force-included (-include) in every file of the plugin build: the headers
 * first, then one #define per API function. */
#ifndef SLUICE_LUA_SHIM_H
#define SLUICE_LUA_SHIM_H

]] }
for _, file in ipairs(HEADERS) do
  h[#h + 1] = string.format('#include "%s/%s"\n', include_dir, file)
end
h[#h + 1] = "\n/* Prototypes, exactly as declared in the headers. */\n"
for _, f in ipairs(funcs) do
  h[#h + 1] = string.format("typedef %s;\nextern sluice_t_%s *sluice_p_%s;\n", f.typedef, f.name, f.name)
end
h[#h + 1] = [[

/* Compile-time check that each typedef is the header's own prototype. */
#if defined(__GNUC__) || defined(__clang__)
#define SLUICE_SHIM_SAME(name) \
  _Static_assert(__builtin_types_compatible_p(sluice_t_##name, __typeof__(name)), \
                 "gen_shim: wrong prototype for " #name);
]]
for _, f in ipairs(funcs) do
  h[#h + 1] = string.format("SLUICE_SHIM_SAME(%s)\n", f.name)
end
h[#h + 1] = "#undef SLUICE_SHIM_SAME\n#endif\n\n/* Every call goes through the pointers. */\n"
for _, f in ipairs(funcs) do
  h[#h + 1] = string.format("#undef %s\n#define %s (*sluice_p_%s)\n", f.name, f.name, f.name)
end
h[#h + 1] = string.format([[

/* Fills every pointer through `lookup` (the host's function returning its
 * implementation of a Lua API function by name, or NULL). Returns NULL, or
 * the name of the first of the %d functions the plugin uses that the host
 * lacks (those it does not use may be missing). */
const char *sluice_shim_init(void *(*lookup)(const char *name));

/* Number of API functions in the shim / whether `name` is one the plugin uses. */
#define SLUICE_SHIM_COUNT %d
int sluice_shim_required(const char *name);

#endif
]], nreq, #funcs)

local c = { banner, [[
#include <string.h>

#include "lua_shim.h"

]] }
for _, f in ipairs(funcs) do
  c[#c + 1] = string.format("sluice_t_%s *sluice_p_%s;\n", f.name, f.name)
end
c[#c + 1] = [[

_Static_assert(sizeof(void *) == sizeof(void (*)(void)),
               "function pointers must be the size of data pointers");

static const struct sluice_shim_entry {
  const char *name;
  void *slot;             /* address of the sluice_p_ pointer */
  unsigned char required; /* used by the plugin's sources */
} sluice_shim_table[] = {
]]
for _, f in ipairs(funcs) do
  c[#c + 1] = string.format('  {"%s", &sluice_p_%s, %d},\n', f.name, f.name, required[f.name] and 1 or 0)
end
c[#c + 1] = [[
};

const char *sluice_shim_init(void *(*lookup)(const char *name)) {
  enum { N = sizeof sluice_shim_table / sizeof sluice_shim_table[0] };
  void *found[N];
  size_t i;
  for (i = 0; i < N; i++) {
    found[i] = lookup ? lookup(sluice_shim_table[i].name) : NULL;
    /* nothing is stored from a host that lacks one: a module loaded before
     * from a complete one keeps its pointers */
    if (found[i] == NULL && sluice_shim_table[i].required) return sluice_shim_table[i].name;
  }
  for (i = 0; i < N; i++) {
    /* Written only when it changes: states opened on several threads by the
     * same host store the same values, so they never race. */
    if (memcmp(sluice_shim_table[i].slot, &found[i], sizeof found[i]) != 0)
      memcpy(sluice_shim_table[i].slot, &found[i], sizeof found[i]);
  }
  return NULL;
}

int sluice_shim_required(const char *name) {
  size_t i;
  for (i = 0; i < sizeof sluice_shim_table / sizeof sluice_shim_table[0]; i++)
    if (strcmp(sluice_shim_table[i].name, name) == 0) return sluice_shim_table[i].required;
  return 0;
}
]]

local names = { banner, "/* SLUICE_LUA_API(name): every Lua API function of the headers. */\n" }
for _, f in ipairs(funcs) do
  names[#names + 1] = string.format("SLUICE_LUA_API(%s)\n", f.name)
end

local req = {}
for _, f in ipairs(funcs) do
  if required[f.name] then req[#req + 1] = f.name .. "\n" end
end

local changed = {}
if write_if_changed("lua_shim.h", table.concat(h)) then changed[#changed + 1] = "lua_shim.h" end
if write_if_changed("lua_shim.c", table.concat(c)) then changed[#changed + 1] = "lua_shim.c" end
if write_if_changed("lua_names.h", table.concat(names)) then changed[#changed + 1] = "lua_names.h" end
if write_if_changed("lua_required.txt", table.concat(req)) then changed[#changed + 1] = "lua_required.txt" end
io.write(string.format("gen_shim: %d API functions from %s, %d used by the plugin%s\n",
  #funcs, include_dir, nreq,
  #changed > 0 and ("; wrote " .. table.concat(changed, ", ")) or "; unchanged"))
