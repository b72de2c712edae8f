-- mod-version:3
--
-- sluice: polled, non-blocking networking for Lite XL (2.1) and Pragtical
-- plugins. Install (see README, "Installing the editor plugin"):
--
--   USERDIR/plugins/sluice.lua            this file
--   USERDIR/libraries/sluice/net.so       build/release/plugin/net.so
--   USERDIR/libraries/sluice/*.lua        data/sluice/*.lua (http, socket, request, tcpd, packet, runtime)
--
-- Other plugins use it through
--
--   local sluice = require "plugins.sluice"    -- (also core.sluice)
--   sluice.net      the net module (require "libraries.sluice.net")
--   sluice.http     Pragtical's core.http interface (data/sluice/http.lua), on net.http_request
--                   (nil over an editor's own net; sluice.http_reason says why)
--
-- The other styles load by their plain names once this plugin ran:
-- require "sluice.socket" (LuaSocket's interface), "sluice.request" (rspamd's
-- one-shot request), "sluice.tcpd" (luafan's callbacks, dispatched by a thread
-- of the editor), "sluice.packet" (JSON packets; its calls yield when made
-- from a thread) -- or as "libraries.sluice.x".
--
-- and, inside core.add_thread coroutines, helpers that turn polling into
-- sequential code. They yield between attempts (coroutine.yield(seconds):
-- the editor resumes the thread that much later, or at its next event):
--
--   sluice.await_connected(conn [, timeout_ms])  -> true | nil, msg, code
--   sluice.read_all(conn [, max [, timeout_ms]]) -> data | nil, msg, code
--       everything until the peer closes; more than `max` bytes: nil, msg, "limit"
--   sluice.write_all(conn, data [, timeout_ms])  -> true | nil, msg, code
--       every byte accepted into the send buffer
--   sluice.read_until(conn, delim [, max [, timeout_ms]]) -> data incl. delim | nil, msg, code
--   sluice.fetch(url [, opts])                   -> body, info | nil, msg, info
--       net.http_request(opts with url) to the end; info: status, headers,
--       reason, url (after redirects), received, total
--   sluice.sleep(seconds)
--
-- and sluice.hold_awake() -> release(): keeps an unfocused Lite XL turning
-- (see below) until release() is called.
--
-- Command: "sluice:fetch-url" asks for a URL, downloads it in a thread with
-- progress in the status bar, and opens the body in a new document.
--
-- Config (config.plugins.sluice): poll_interval (s, default 0.01),
-- fetch_timeout (ms, default 60000), fetch_max_size (bytes, default 64 MiB),
-- fetch_poll_bytes (bytes taken per poll, i.e. per frame; default 1 MiB),
-- keep_awake (default true: see below).
--
-- Unfocused editors: once its window is unfocused and its threads finished
-- twice without a frame drawn, Lite XL waits for the next event with no
-- timeout, so a plugin's threads stop until one arrives. Two things keep
-- network code going there. While a transfer of these helpers runs, or
-- sluice.http, .tcpd or .request have objects to dispatch, the loop is kept
-- turning: each step counts as a frame, so the loop stays on timed waits
-- (nothing is drawn) and timeouts fire. And the plugin turns on the module's
-- wake-ups, which push an event through the editor's own SDL (found at run
-- time, SDL2 or SDL3) when data arrives, and again while the editor stays
-- quiet with news it has not read: threads that wait for data outside these
-- helpers wake too. Official builds link SDL statically, so there is no SDL
-- to reach (sluice.wakeups is false; sluice.wakeup_reason says why). Pragtical
-- runs background threads (the plugin's own) while unfocused and never waits
-- without a timeout: nothing is needed there.
local core = require "core"
local command = require "core.command"
local config = require "core.config"
local style = require "core.style"

local sluice = {}

-- The native module and the HTTP client: where the README puts them, else
-- any `net` / `http` on the editor's paths (Pragtical's built-in `net` has
-- the same polled core API).
local function require_first(names)
  local errors = {}
  for _, name in ipairs(names) do
    local ok, mod = pcall(require, name)
    if ok and type(mod) == "table" then return mod end
    errors[#errors + 1] = string.format("  %s: %s", name, tostring(mod))
  end
  error("sluice: cannot load any of " .. table.concat(names, ", ") .. ":\n" .. table.concat(errors, "\n"), 0)
end

-- `require "sluice.x"`, the names plain Lua programs use for the libraries
-- of data/sluice/ (sluice.socket, .request, .tcpd, .packet), finds them where
-- the install put them: USERDIR/libraries/sluice/x.lua. Last in line, so a
-- real module of that name elsewhere wins.
if type(package.searchers) == "table" then table.insert(package.searchers, function(name)
  local rest = name:match("^sluice%.([%w_]+)$")
  if not rest then return nil end
  local full = "libraries.sluice." .. rest
  if not (package.searchpath(full, package.path) or package.searchpath(full, package.cpath)) then
    return "\n\tno file for '" .. full .. "' (sluice's libraries)"
  end
  return function() return require(full) end
end) end

sluice.net = require_first { "libraries.sluice.net", "sluice.net", "net" }
-- Over an editor's own net (no net.http_request) there is no sluice.http:
-- http_reason says why.
do
  local ok, http = pcall(require_first, { "libraries.sluice.http", "sluice.http" })
  if ok then sluice.http = http else sluice.http_reason = tostring(http) end
end

-- sluice's own net, with its extensions (an editor's built-in one has Part 1's API only)
local own_net = type(sluice.net._VERSION) == "string" and sluice.net._VERSION:match("^sluice ") ~= nil

local conf = config.plugins.sluice
if type(conf) ~= "table" then conf = {} end
local defaults = {
  poll_interval = 0.01,              -- seconds a helper yields between attempts
  keep_awake = true,                 -- keep an unfocused editor's loop turning during transfers
  fetch_timeout = 60000,             -- ms, whole download (sluice:fetch-url)
  fetch_max_size = 64 * 1024 * 1024, -- bytes (sluice:fetch-url)
  fetch_poll_bytes = 1024 * 1024,    -- bytes taken at most per poll (per frame)
}
for k, v in pairs(defaults) do
  if conf[k] == nil then conf[k] = v end
end
sluice.config = conf

local net = sluice.net

-- Wake-ups through the editor's SDL: false, and the reason, where none is
-- reachable or the net in use is the editor's own (Pragtical's has none).
if type(net.set_wakeup) ~= "function" then
  sluice.wakeups = false
  sluice.wakeup_reason = "this net module has no set_wakeup (not sluice's)"
else
  local ok, why = net.set_wakeup(true)
  sluice.wakeups = ok and true or false
  sluice.wakeup_reason = not ok and why or nil
end

local function now()
  if net.clock then return net.clock() end
  return system.get_time()
end


local function deadline_of(timeout_ms)
  if timeout_ms == nil or timeout_ms < 0 then return math.huge end
  return now() + timeout_ms / 1000
end

-- Holds on the loop: transfers in flight (the helpers below and
-- sluice:fetch-url) and the dispatch threads of the libraries, counted by
-- the coroutine that took them (weak: a thread the editor dropped while it
-- waited, core.threads[key] = nil, never comes back to release its hold).
local holds = setmetatable({}, { __mode = "k" })
local direct = setmetatable({}, { __mode = "k" })   -- coroutines that are editor threads themselves
local unowned = 0   -- taken outside any coroutine

-- Whether co is still one of the editor's threads (or the editor keeps
-- them in a shape unknown here: then it is taken to be).
local function scheduled(co)
  for _, t in pairs(core.threads or {}) do
    if type(t) ~= "table" or type(t.cr) ~= "thread" then return true end
    if t.cr == co then return true end
  end
  return false
end

-- The helpers below yield to the editor's scheduler: from a coroutine of the
-- caller's own, the yield would hand its resumer the scheduler's number.
local function in_thread(name)
  local co, main = coroutine.running()
  if main or not coroutine.isyieldable() or not scheduled(co) then
    error("sluice." .. name .. " must run inside an editor thread (core.add_thread)", 3)
  end
end

-- Keeps an unfocused editor's loop turning (see core.step below) until the
-- returned release() is called, or its thread ends or is dropped; releasing
-- twice counts once. For work that outlives one call: the threads that run
-- sluice.http, .tcpd and .request callbacks (data/sluice/runtime.lua) hold
-- it while they have objects.
function sluice.hold_awake()
  local co, main = coroutine.running()
  if main then unowned = unowned + 1 else holds[co] = (holds[co] or 0) + 1 end
  if not main and direct[co] == nil then direct[co] = scheduled(co) end
  local held = true
  return function()
    if not held then return end
    held = false
    if main then unowned = unowned - 1 else holds[co] = holds[co] - 1 end
  end
end

local function holding()
  if unowned > 0 then return true end
  for co, n in pairs(holds) do
    -- an editor thread counts while it is one; a coroutine inside one (not
    -- known to the editor) until it ends or is collected
    if n > 0 and coroutine.status(co) ~= "dead" and (not direct[co] or scheduled(co)) then return true end
  end
  return false
end

-- Runs fn(...) as a transfer; returns what it returns, and raises what it raises.
local function transfer(fn, ...)
  local release = sluice.hold_awake()
  local r = table.pack(pcall(fn, ...))
  release()
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end
sluice.transfer = transfer

-- Lite XL's core.run waits with no timeout only after a step that drew
-- nothing; while a transfer runs unfocused, a step counts as drawn, so the
-- loop stays on timed waits (paced by the threads' own wake times, at most
-- config.fps steps a second) and the transfer goes on at full speed.
if not core.add_background_thread then
  local step = core.step
  function core.step(...)
    local drew = step(...)
    if not drew and conf.keep_awake and system and system.window_has_focus
       and not system.window_has_focus(core.window) and holding() then
      return true
    end
    return drew
  end
end

-- Pragtical runs "background" threads while its window is unfocused.
local function add_thread(fn, ...)
  if core.add_background_thread then return core.add_background_thread(fn, ...) end
  return core.add_thread(fn, ...)
end

function sluice.sleep(seconds)
  in_thread("sleep")
  coroutine.yield(seconds)
end

local function await_connected(conn, timeout_ms)
  local deadline = deadline_of(timeout_ms)
  while true do
    local status, msg, code = conn:get_status()
    if status == "success" then return true end
    if status == "failure" then return nil, msg, code end
    if now() >= deadline then
      return nil, string.format("not connected after %g ms", timeout_ms), "timeout"
    end
    coroutine.yield(conf.poll_interval)
  end
end

function sluice.await_connected(conn, timeout_ms)
  in_thread("await_connected")
  return transfer(await_connected, conn, timeout_ms)
end

local function read_all(conn, max, timeout_ms)
  local deadline = deadline_of(timeout_ms)
  local parts, total = {}, 0
  while true do
    local data, msg, code = conn:read(max and math.max(1, math.min(1024 * 1024, max - total + 1)) or 1024 * 1024)
    if data == nil then
      if msg then return nil, msg, code end
      return table.concat(parts)
    end
    if #data > 0 then
      total = total + #data
      if max and total > max then
        return nil, string.format("read_all: more than %d bytes", max), "limit"
      end
      parts[#parts + 1] = data
    else
      if now() >= deadline then
        return nil, string.format("read_all: no end of stream after %g ms", timeout_ms), "timeout"
      end
      coroutine.yield(conf.poll_interval)
    end
  end
end

function sluice.read_all(conn, max, timeout_ms)
  in_thread("read_all")
  return transfer(read_all, conn, max, timeout_ms)
end

-- conn:read_until(delim, max) of sluice's net, polled: the data up to and
-- including `delim`, the rest without it at the end of the stream.
local function read_until(conn, delim, max, timeout_ms)
  if not conn.read_until then error("sluice.read_until: this net module has no read_until", 2) end
  local deadline = deadline_of(timeout_ms)
  while true do
    local data, msg, code
    if max then data, msg, code = conn:read_until(delim, max) else data, msg, code = conn:read_until(delim) end
    if data == nil then
      if msg then return nil, msg, code end
      return nil, "read_until: end of stream", "closed"
    end
    if data ~= "" then return data end
    if now() >= deadline then
      return nil, string.format("read_until: no delimiter after %g ms", timeout_ms), "timeout"
    end
    coroutine.yield(conf.poll_interval)
  end
end

function sluice.read_until(conn, delim, max, timeout_ms)
  in_thread("read_until")
  return transfer(read_until, conn, delim, max, timeout_ms)
end

local function write_all(conn, data, timeout_ms)
  local deadline = deadline_of(timeout_ms)
  local pos = 1
  while pos <= #data do
    local n, msg, code
    if own_net then n, msg, code = conn:write(data, pos)   -- the rest, without a copy
    else n, msg, code = conn:write(pos == 1 and data or data:sub(pos)) end   -- Part 1 takes data only
    if not n then return nil, msg, code end
    pos = pos + n
    if pos <= #data then
      if now() >= deadline then
        return nil, string.format("write_all: %d of %d bytes accepted after %g ms", pos - 1, #data, timeout_ms), "timeout"
      end
      coroutine.yield(conf.poll_interval)
    end
  end
  return true
end

function sluice.write_all(conn, data, timeout_ms)
  in_thread("write_all")
  return transfer(write_all, conn, data, timeout_ms)
end

-- net.http_request to the end, yielding between polls: body, info or nil,
-- message, info (info: status, headers, reason, url, received, total).
local function fetch(url, opts, on_progress)
  local o = { url = url }
  for k, v in pairs(opts or {}) do o[k] = v end
  local req, err, code = net.http_request(o)
  if not req then return nil, err, { code = code } end
  local parts, step, taken = {}, 0, 0
  while true do
    local data, msg, c = req:read(conf.fetch_poll_bytes)
    if data == nil then
      local status, headers, reason, final = req:get_response()
      local received, total = req:get_progress()
      local info = { status = status, headers = headers, reason = reason, url = final or url,
                     received = received, total = total, code = c }
      req:close()
      if msg then return nil, msg, info end
      return table.concat(parts), info
    end
    step, taken = step + #data, taken + #data
    if data ~= "" then parts[#parts + 1] = data end
    if data == "" or step >= conf.fetch_poll_bytes then   -- nothing yet, or a frame's worth taken
      -- progress as this thread takes the body in (the engine may be far ahead);
      -- against Content-Length only when that counts the same bytes (no encoding)
      local _, headers = req:get_response()
      local _, total = req:get_progress()
      if on_progress then on_progress(taken, headers and not headers["content-encoding"] and total or nil) end
      coroutine.yield(conf.poll_interval)
      step = 0
    end
  end
end

function sluice.fetch(url, opts)
  in_thread("fetch")
  return transfer(fetch, url, opts)
end

--------------------------------------------------------------------------------
-- sluice:fetch-url

local function size_text(n)
  if n < 1024 then return string.format("%d B", n) end
  if n < 1024 * 1024 then return string.format("%.1f KiB", n / 1024) end
  return string.format("%.1f MiB", n / (1024 * 1024))
end

local function status_message(text)
  if core.status_view then
    core.status_view:show_message("i", style.text, text)
  end
end

-- Downloads `url` in a thread, with progress in the status bar, and opens
-- the body in a new document. Returns the thread's key.
local function fetch_to_doc(url)
  status_message("Fetching " .. url .. " ...")
  local shown = -1
  local body, info, failure = fetch(url, { timeout = conf.fetch_timeout, max_size = conf.fetch_max_size },
    function(received, total)
      if received == shown then return end
      shown = received
      if total and total > 0 then
        status_message(string.format("Fetching %s: %s of %s (%d%%)", url, size_text(received),
          size_text(total), math.floor(received * 100 / total)))
      elseif received > 0 then
        status_message(string.format("Fetching %s: %s", url, size_text(received)))
      end
    end)
  if not body then
    core.error("sluice: fetching %s failed: %s", url, info)   -- then info is the message
    return
  end
  local size = #body
  local doc = core.open_doc()
  if body:find("\r\n", 1, true) then
    body = body:gsub("\r\n", "\n")
    doc.crlf = true
  end
  doc:insert(1, 1, body)
  core.root_view:open_doc(doc)
  core.redraw = true   -- the new document shows now, also in an unfocused editor waiting for events
  status_message(string.format("Fetched %s: HTTP %d, %s", info.url, info.status, size_text(size)))
  sluice.last_fetch = { url = url, info = info, doc = doc }
end

function sluice.fetch_to_doc(url)
  return add_thread(function() transfer(fetch_to_doc, url) end)
end

command.add(nil, {
  ["sluice:fetch-url"] = function(url)
    if type(url) == "string" then
      sluice.fetch_to_doc(url)
      return
    end
    core.command_view:enter("Fetch URL", {
      submit = function(text)
        sluice.fetch_to_doc(text)
      end,
      validate = function(text)
        local ok = text:match("^[hH][tT][tT][pP][sS]?://[^/%s?#]+") ~= nil and not text:find("%s")
        if not ok then core.error("sluice: not an http:// or https:// URL: %s", text) end
        return ok
      end,
    })
  end,
})

core.sluice = sluice
return sluice
