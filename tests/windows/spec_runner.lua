-- spec_runner: runs busted-style specs (describe / it / pending, setup / teardown,
-- before_each / after_each, luassert's assert and stub) in a Lua that busted itself
-- cannot load in: a Windows Lua under wine (busted needs C modules built for Linux).
-- Prints TAP like `busted --output=TAP`; exits 1 when a test failed.
--   lua.exe spec_runner.lua SPEC.lua...
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
dofile(here .. "unix_shell.lua").install()

local skips = dofile(here .. "skip.lua")
local luassert = require "luassert"
local stub = require "luassert.stub"

local skip_now = {}   -- the skip list of the spec being loaded: its tests carry it along
local root = { name = nil, children = {}, before = {}, after = {}, setup = {}, teardown = {} }
local current = root

local function block(name, fn)
  local b = { name = name, parent = current, children = {}, before = {}, after = {},
    setup = {}, teardown = {} }
  current.children[#current.children + 1] = b
  local saved = current
  current = b
  fn()
  current = saved
end

local function add(kind) return function(fn) local t = current[kind]; t[#t + 1] = fn end end

_G.assert = luassert
_G.stub = stub
_G.describe, _G.expose = block, block
_G.it = function(name, fn)
  current.children[#current.children + 1] = { name = name, fn = fn, skips = skip_now }
end
_G.pending = function(name) current.children[#current.children + 1] = { name = name, pending = true } end
_G.setup, _G.lazy_setup, _G.strict_setup = add("setup"), add("setup"), add("setup")
_G.teardown, _G.lazy_teardown, _G.strict_teardown = add("teardown"), add("teardown"), add("teardown")
_G.before_each, _G.after_each = add("before"), add("after")

local count, failed = 0, 0

local function full_name(b, name)
  local parts = { name }
  while b and b.name do table.insert(parts, 1, b.name); b = b.parent end
  return table.concat(parts, " ")
end

local function report(ok, name, err, directive)
  count = count + 1
  io.write(ok and "ok " or "not ok ", count, " - ", name, directive or "", "\n")
  if not ok then
    failed = failed + 1
    for line in tostring(err):gmatch("[^\n]+") do io.write("# ", line, "\n") end
  end
  io.flush()
end

local function traced(fn)
  return xpcall(fn, function(e)
    if type(e) == "table" and e.message then e = e.message end   -- luassert's errors
    return debug.traceback(tostring(e), 2)
  end)
end

-- before_each hooks outermost first; after_each innermost first
local function hooks(b, kind, list)
  if not b then return list end
  hooks(b.parent, kind, list)
  for _, fn in ipairs(b[kind]) do list[#list + 1] = fn end
  return list
end

local function skipped(t, name)
  for piece, why in pairs(t.skips or {}) do
    if piece == "*" or name:find(piece, 1, true) then return why end
  end
end

local function run_test(b, t)
  local name = full_name(b, t.name)
  if t.pending then return report(true, name, nil, " # SKIP pending") end
  local why = skipped(t, name)
  if why then return report(true, name, nil, " # SKIP " .. why) end
  local ok, err = true, nil
  for _, fn in ipairs(hooks(b, "before", {})) do
    ok, err = traced(fn)
    if not ok then break end
  end
  if ok then ok, err = traced(t.fn) end
  local after = hooks(b, "after", {})
  for i = #after, 1, -1 do
    local aok, aerr = traced(after[i])
    if ok and not aok then ok, err = false, aerr end
  end
  report(ok, name, err)
end

local function run_block(b)
  local ok, err = true, nil
  for _, fn in ipairs(b.setup) do
    ok, err = traced(fn)
    if not ok then break end
  end
  for _, c in ipairs(b.children) do
    if not ok then
      if c.fn then report(false, full_name(b, c.name), "setup failed: " .. tostring(err)) end
    elseif c.children then run_block(c)
    else run_test(b, c) end
  end
  for _, fn in ipairs(b.teardown) do
    local tok, terr = traced(fn)
    if not tok then report(false, full_name(b, "teardown"), terr) end
  end
end

for _, path in ipairs(arg) do
  skip_now = skips[path:match("[^/\\]+$")] or {}
  if skip_now["*"] then
    report(true, path, nil, " # SKIP " .. skip_now["*"])
    goto next
  end
  local chunk, err = loadfile(path)
  if not chunk then
    report(false, path, err)
  else
    local ok, lerr = traced(function() block(nil, chunk) end)
    if not ok then report(false, path .. " (loading)", lerr) end
  end
  ::next::
end
run_block(root)
io.write("1..", count, "\n")
io.flush()
os.exit(failed == 0 and 0 or 1, true)
