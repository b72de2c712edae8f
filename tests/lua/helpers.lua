-- helpers: shared by the Lua integration specs and the benchmarks: start and stop the
-- loopback test peer (tests/tools/peer.c), make and check test data, poll with net.wait.
--
-- Environment: SLUICE_BUILD (folder holding `peer`, default build/release),
-- SLUICE_MODE ("tsan" / "asan" shrink the big transfers), SLUICE_LUA (host interpreter
-- for child processes, default lua5.4).
local net = require "net"

local M = {}

M.build = os.getenv("SLUICE_BUILD") or "build/release"
M.mode = os.getenv("SLUICE_MODE") or ""
-- The host interpreter for child processes: sanitizer builds need their own host.
M.lua = os.getenv("SLUICE_LUA")
if not M.lua and (M.mode == "asan" or M.mode == "tsan") and io.open(M.build .. "/luahost") then
  M.lua = M.build .. "/luahost"
end
M.lua = M.lua or "lua5.4"
M.KiB, M.MiB = 1024, 1024 * 1024

-- Specs that resolve names call this first: without the hosts-file hook a name would
-- go to the system resolver (and maybe the network), which tests must never do.
function M.need_hosts_file()
  local f = os.getenv("SLUICE_HOSTS_FILE")
  if not f or not io.open(f) then
    error("SLUICE_HOSTS_FILE must name the test hosts file (tests/lua/hosts)", 2)
  end
end

-- The folder this file lives in (with a trailing slash), to find scripts next to it.
M.dir = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"

--------------------------------------------------------------------------------
-- Scale and time

-- Factor for the big transfers: sanitizer builds are many times slower.
function M.scale()
  if M.mode == "tsan" then return 1 / 8 end
  if M.mode == "asan" then return 1 / 4 end
  return 1
end

-- n bytes, scaled (never below `min`, default 1).
function M.scaled(n, min)
  return math.max(min or 1, math.floor(n * M.scale()))
end

-- Block about `ms` milliseconds (net.wait may return early on network activity).
function M.sleep(ms)
  local deadline = net.clock() + ms / 1000
  while true do
    local left = math.ceil((deadline - net.clock()) * 1000)
    if left <= 0 then return end
    net.wait(left)
  end
end

-- Call `fn` until it returns a truthy first value (then return all its values) or until
-- `timeout_ms` passed (then return nil). Sleeps in net.wait between calls.
function M.wait_for(fn, timeout_ms, step_ms)
  local deadline = net.clock() + (timeout_ms or 10000) / 1000
  step_ms = step_ms or 50
  while true do
    local r = table.pack(fn())
    if r[1] then return table.unpack(r, 1, r.n) end
    local left = math.ceil((deadline - net.clock()) * 1000)
    if left <= 0 then return nil end
    net.wait(math.min(left, step_ms))
  end
end

-- Wait until the engine holds no connection objects any more (earlier tests' lingering
-- closes): tests that measure net.get_stats() start from there. Returns the stats.
function M.wait_idle(timeout_ms)
  M.wait_for(function()
    collectgarbage()
    collectgarbage()
    return net.get_stats().connections == 0
  end, timeout_ms or 10000)
  return net.get_stats()
end

--------------------------------------------------------------------------------
-- Peers

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.shell_quote = shell_quote

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
M.read_file = read_file

-- Is the process still running? (A zombie counts as gone.)
local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if stat then return not stat:match("^%d+ %b() Z") end
  if io.open("/proc/self/stat") then return false end   -- /proc exists: pid is gone
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

local Peer = {}
Peer.__index = Peer

local running = {}   -- every peer started and not yet stopped, by pid

-- Stop the peer (SIGTERM, then SIGKILL after 2 s) and wait until it is gone.
function Peer:stop()
  if not self.pid then return end
  local pid = self.pid
  self.pid = nil
  running[pid] = nil
  os.execute("kill " .. pid .. " 2>/dev/null")
  if not M.wait_for(function() return not alive(pid) end, 2000, 10) then
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
    M.wait_for(function() return not alive(pid) end, 2000, 10)
  end
  os.remove(self.out)
  os.remove(self.err)
end

-- Every stdout line after the port line.
function Peer:lines()
  local t = {}
  for line in (read_file(self.out) or ""):gmatch("([^\n]*)\n") do t[#t + 1] = line end
  table.remove(t, 1)
  return t
end

-- The sink results so far: array of {bytes = n, hash = "16 hex digits"}, in the order
-- the client connections reached EOF.
function Peer:sinks()
  local t = {}
  for _, line in ipairs(self:lines()) do
    local n, h = line:match("^sink (%d+) (%x+)$")
    if n then t[#t + 1] = { bytes = math.tointeger(tonumber(n)), hash = h } end
  end
  return t
end

-- Wait until at least `count` sink results are in; returns them, or nil on timeout.
function Peer:wait_sinks(count, timeout_ms)
  return M.wait_for(function()
    local s = self:sinks()
    if #s >= count then return s end
  end, timeout_ms or 20000, 20)
end

function Peer:__tostring()
  return string.format("peer(%s, port %s, pid %s)", self.mode, self.port, self.pid)
end

-- Start `peer [-6] MODE [ARG]`; opts.ipv6 binds ::1. Returns the peer object, with
-- .port, .pid, .host ("127.0.0.1" or "::1"). Raises if it does not come up.
function M.start_peer(mode, arg, opts)
  opts = opts or {}
  local exe = M.build .. "/peer"
  local out = os.tmpname()
  local err = out .. ".err"
  local args = (opts.ipv6 and "-6 " or "") .. shell_quote(mode)
    .. (arg and (" " .. shell_quote(arg)) or "")
  -- `exec` in the background job makes $! the peer itself, so `kill PID` reaches it.
  local p = assert(io.popen(string.format("exec %s %s >%s 2>%s </dev/null & echo $!",
    shell_quote(exe), args, shell_quote(out), shell_quote(err))))
  local pid = p:read("l")
  p:close()
  pid = assert(math.tointeger(tonumber(pid)), "could not start " .. exe)
  local self = setmetatable({ pid = pid, out = out, err = err, mode = mode,
    host = opts.ipv6 and "::1" or "127.0.0.1" }, Peer)
  running[pid] = self
  local port = M.wait_for(function()
    local line = (read_file(out) or ""):match("^(%d+)\n")
    if line then return math.tointeger(tonumber(line)) end
    if not alive(pid) then return false end
  end, 10000, 10)
  if not port then
    local msg = read_file(err) or ""
    self:stop()
    error(string.format("peer %s did not start: %s", args, msg), 2)
  end
  self.port = port
  return self
end

-- Stop every peer this module started (specs call it in after_each / teardown).
function M.stop_all()
  local pids = {}
  for pid in pairs(running) do pids[#pids + 1] = pid end
  for _, pid in ipairs(pids) do running[pid]:stop() end
end

-- Last resort: peers still running when the Lua state closes are stopped too.
M._reaper = setmetatable({}, { __gc = function() M.stop_all() end })

--------------------------------------------------------------------------------
-- Data

-- n random bytes (math.random, 64 bits at a time).
function M.random_bytes(n)
  local parts, r, pack = {}, math.random, string.pack
  for i = 1, n // 64 + 1 do
    parts[i] = pack("<jjjjjjjj", r(0), r(0), r(0), r(0), r(0), r(0), r(0), r(0))
  end
  return table.concat(parts):sub(1, n)
end

local FNV_OFFSET, FNV_PRIME = -3750763034362895579, 0x100000001b3   -- 0xcbf29ce484222325

-- 64-bit FNV-1a of `s`, continuing from `h` (for streams); integer, wraps like uint64.
function M.fnv1a(s, h)
  h = h or FNV_OFFSET
  local byte, P = string.byte, FNV_PRIME
  local n = #s
  local i = 1
  while i + 7 <= n do
    local a, b, c, d, e, f, g, k = byte(s, i, i + 7)
    h = (h ~ a) * P; h = (h ~ b) * P; h = (h ~ c) * P; h = (h ~ d) * P
    h = (h ~ e) * P; h = (h ~ f) * P; h = (h ~ g) * P; h = (h ~ k) * P
    i = i + 8
  end
  for j = i, n do h = (h ~ byte(s, j)) * P end
  return h
end

-- The hash as the sink prints it.
function M.hex64(h) return string.format("%016x", h) end

-- The source pattern (see tests/tools/peer.c):
--   byte i = T[i mod 1000003],  T[j] = ((j * 2654435761) mod 2^32) >> 24
M.PERIOD = 1000003
local SLICE = 64 * 1024
local period_cache

-- T plus its first SLICE bytes again, so every slice of <= SLICE bytes is contiguous.
local function period_string()
  if period_cache then return period_cache end
  local parts, vals = {}, {}
  local P, char, unpack = M.PERIOD, string.char, table.unpack
  local total = P + SLICE
  for base = 0, total - 1, 256 do
    local n = math.min(256, total - base)
    for k = 1, n do
      local j = (base + k - 1) % P
      vals[k] = ((j * 2654435761) & 0xffffffff) >> 24
    end
    parts[#parts + 1] = char(unpack(vals, 1, n))
  end
  period_cache = table.concat(parts)
  return period_cache
end

-- `len` bytes of the pattern starting at stream offset `offset`.
function M.pattern(offset, len)
  local T, parts = period_string(), {}
  while len > 0 do
    local o = offset % M.PERIOD
    local n = math.min(len, SLICE)
    parts[#parts + 1] = T:sub(o + 1, o + n)
    offset, len = offset + n, len - n
  end
  return table.concat(parts)
end

-- A checker for a received pattern stream. checker:feed(data) returns true, or false
-- and a message naming the first wrong byte. checker.offset = bytes checked so far.
function M.pattern_checker()
  local T = period_string()
  local c = { offset = 0 }
  function c:feed(data)
    local pos, n = 1, #data
    while pos <= n do
      local o = self.offset % M.PERIOD
      local len = math.min(n - pos + 1, SLICE)
      local got = (pos == 1 and len == n) and data or data:sub(pos, pos + len - 1)
      local want = T:sub(o + 1, o + len)
      if got ~= want then
        for k = 1, len do
          if got:byte(k) ~= want:byte(k) then
            return false, string.format("pattern mismatch at stream byte %d: got %d, want %d",
              self.offset + k - 1, got:byte(k), want:byte(k))
          end
        end
      end
      pos, self.offset = pos + len, self.offset + len
    end
    return true
  end
  return c
end

-- A checker for an echo stream: push(s) what was written, feed(s) what came back;
-- feed returns true, or false and a message. .pending = bytes sent, not yet received.
function M.echo_checker()
  local q, head, tail, off = {}, 1, 0, 0   -- q[head..tail] are queued, off into q[head]
  local c = { pending = 0, received = 0 }
  function c:push(s)
    if #s > 0 then
      tail = tail + 1
      q[tail] = s
      self.pending = self.pending + #s
    end
  end
  function c:feed(data)
    local pos, n = 1, #data
    while pos <= n do
      local s = q[head]
      if not s then
        return false, string.format("received %d bytes more than sent", n - pos + 1)
      end
      local take = math.min(#s - off, n - pos + 1)
      if data:sub(pos, pos + take - 1) ~= s:sub(off + 1, off + take) then
        return false, string.format("echo mismatch within stream bytes %d..%d",
          self.received, self.received + take - 1)
      end
      pos, off = pos + take, off + take
      self.received, self.pending = self.received + take, self.pending - take
      if off == #s then q[head] = nil; head = head + 1; off = 0 end
    end
    return true
  end
  return c
end

--------------------------------------------------------------------------------
-- Connection helpers (all bounded by a deadline; never spin without net.wait)

-- Write all of `data`, respecting backpressure. Returns true, or nil, message, code.
function M.write_all(conn, data, timeout_ms)
  local deadline = net.clock() + (timeout_ms or 30000) / 1000
  local pos = 1
  while pos <= #data do
    local n, msg, code = conn:write(pos == 1 and data or data:sub(pos))
    if not n then return nil, msg, code end
    pos = pos + n
    if n == 0 then
      if net.clock() > deadline then return nil, "write_all: timed out", "timeout" end
      net.wait(20)
    end
  end
  return true
end

-- Read until EOF, passing every chunk to `sink(chunk)` (default: collect). Returns the
-- collected string (or the byte count when a sink was given), then the read's final
-- message and code (nil, nil after an orderly close), or nil, "timed out".
function M.read_all(conn, sink, timeout_ms, max_len)
  local deadline = net.clock() + (timeout_ms or 30000) / 1000
  local parts, total, collect = {}, 0, not sink
  sink = sink or function(s) parts[#parts + 1] = s end
  local function result() return collect and table.concat(parts) or total end
  while true do
    local s, msg, code = conn:read(max_len or 256 * 1024)
    if s == nil then return result(), msg, code end
    if #s > 0 then
      total = total + #s
      sink(s)
    else
      if net.clock() > deadline then return nil, "read_all: timed out", "timeout" end
      net.wait(20)
    end
  end
end

-- Read exactly n bytes (or until EOF/error/timeout). Returns the string read, plus the
-- message and code if the connection ended first.
function M.read_n(conn, n, timeout_ms)
  local deadline = net.clock() + (timeout_ms or 30000) / 1000
  local parts, got = {}, 0
  while got < n do
    local s, msg, code = conn:read(n - got)
    if s == nil then return table.concat(parts), msg or "eof", code end
    if #s > 0 then
      parts[#parts + 1] = s
      got = got + #s
    else
      if net.clock() > deadline then return table.concat(parts), "read_n: timed out", "timeout" end
      net.wait(20)
    end
  end
  return table.concat(parts)
end

return M
