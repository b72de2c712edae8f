-- runtime.lua: what the sluice Lua libraries (sluice.socket, .request, .tcpd,
-- .packet) share: finding the `net` module, recognising the editor (Lite XL,
-- Pragtical) and its thread scheduler, and waiting without blocking an editor
-- thread. Plain Lua on the public `net` API; runs on the caller's thread.
--
-- Module names: in a plain Lua program these files are `require "sluice.x"`
-- (LUA_PATH holds data/); in an editor they are installed next to the plugin's
-- net.so as `require "libraries.sluice.x"` (the sluice plugin also maps
-- `sluice.x` there). Each library finds its siblings and `net` from the name
-- it was loaded under, so both layouts work.

---@class sluice.runtime
local M = {}

-- Seconds an editor thread sleeps between polls (Lite XL and Pragtical read a
-- number yielded by a thread as "resume me that much later").
M.poll_interval = 0.01

-- Loads `name` next to the module loaded as `modname` ("libraries.sluice.tcpd"
-- -> "libraries.sluice.<name>"), else `fallback`.
function M.sibling(modname, name, fallback)
  local prefix = type(modname) == "string" and modname:match("^(.*%.)[^.]*$")
  if prefix then
    local ok, mod = pcall(require, prefix .. name)
    if ok and type(mod) == "table" then return mod end
  end
  return require(fallback)
end

-- The net module for a library loaded as `modname`: the one next to it (the
-- editor plugin's libraries.sluice.net), else require "net", which must be
-- sluice's: an editor's own `net` (Pragtical's) lacks what the libraries
-- use, and would fail later with a call of nil.
function M.load_net(modname)
  local prefix = type(modname) == "string" and modname:match("^(.*%.)[^.]*$")
  local why
  if prefix then
    local ok, mod = pcall(require, prefix .. "net")
    if ok and type(mod) == "table" then return mod end
    why = prefix .. "net: " .. tostring(mod):match("^[^\n]*")
  end
  local net = require "net"
  if not tostring(net._VERSION):match("^sluice ") then
    error(string.format("%s needs sluice's net module, and the `net` found is another (%s)%s", modname or "sluice",
      tostring(net._VERSION), why and "; " .. why or ""), 0)
  end
  return net
end

-- write(conn, s, i): conn:write of the bytes of s from i on. A net from
-- sluice 0.2 on takes the range itself, without copying the rest of a large
-- string on every partial write; another net (an older build) gets the copy.
function M.writer(net)
  local major, minor = tostring(net._VERSION):match("^sluice (%d+)%.(%d+)")
  if major and (tonumber(major) > 0 or tonumber(minor) >= 2) then
    return function(conn, s, i) return conn:write(s, i) end
  end
  return function(conn, s, i) return conn:write(i == 1 and s or s:sub(i)) end
end

-- The editor's `core` module when running inside Lite XL or Pragtical, else nil.
function M.editor_core()
  local core = package.loaded.core
  if type(core) == "table" and type(core.add_thread) == "function" then return core end
  return nil
end

-- The sluice editor plugin's hold on the loop (plugin/sluice.lua), or nil
-- without it. Looked up each time: the plugin may load after a library
-- started its first request.
local function awake_holder(core)
  local plugin = core.sluice
  if type(plugin) == "table" and type(plugin.hold_awake) == "function" then return plugin.hold_awake end
  return nil
end

-- Whether the running coroutine is one of the editor's threads: Lite XL and
-- Pragtical keep them in core.threads as {cr = coroutine, ...}. Any other
-- coroutine is the program's own (a generator around receive), whose
-- resumer must not get the scheduler's number. An entry of another shape
-- (an editor unknown here) is taken to be one.
local function in_editor_thread(core)
  if not coroutine.isyieldable() then return false end
  local co = coroutine.running()
  local threads = core.threads
  if type(threads) ~= "table" then return false end
  for _, t in pairs(threads) do
    if type(t) ~= "table" or type(t.cr) ~= "thread" or t.cr == co then return true end
  end
  return false
end

-- Waits at most `ms` milliseconds for network activity. Inside an editor
-- thread it yields instead (the editor resumes the thread later), holding
-- an unfocused editor awake meanwhile, so the editor never stops and the
-- wait ends on time; elsewhere, a coroutine of the program's own included,
-- it sleeps in net.wait (the caller blocks).
function M.pause(net, ms)
  local core = M.editor_core()
  if core and in_editor_thread(core) then
    local hold = awake_holder(core)
    local release = hold and hold()
    coroutine.yield(math.min(ms / 1000, M.poll_interval))
    if release then release() end
  else
    net.wait(math.max(0, math.floor(ms)))
  end
end

local driven = {}

-- The body of a dispatch thread. While objects live it holds the editor
-- awake: an unfocused Lite XL otherwise waits for an event with no timeout,
-- and neither the callbacks nor the libraries' timers would run until one came.
local function dispatch(core, key, update)
  local release
  while true do
    if not release then
      local hold = awake_holder(core)
      release = hold and hold()
    end
    local ok, n = pcall(update)
    if not ok then
      core.error("%s: %s", key, tostring(n))
      n = 1
    end
    if n == 0 then
      driven[key] = nil
      if release then release() end
      return
    end
    coroutine.yield(M.poll_interval)
  end
end

-- In an editor, runs `update()` from its thread scheduler every poll_interval
-- while update returns a number > 0 (objects still alive), so callbacks fire
-- without the caller polling; with the sluice plugin loaded, an unfocused
-- Lite XL keeps turning meanwhile (sluice.hold_awake). One thread per `key`;
-- a new one starts when work appears again. Errors raised by callbacks are
-- reported with core.error and dispatching goes on. Outside an editor it
-- does nothing and returns false.
function M.drive(key, update)
  local core = M.editor_core()
  if not core then return false end
  if driven[key] then return true end
  driven[key] = true
  local add = core.add_background_thread or core.add_thread
  add(function() dispatch(core, key, update) end)
  return true
end

-- Error messages of net are "what where: why"; programs written for other
-- modules expect only the why.
function M.reason(msg)
  if type(msg) ~= "string" then return msg end
  return msg:match(":%s([^:]+)$") or msg
end

return M
