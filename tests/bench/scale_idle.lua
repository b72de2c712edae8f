-- scale_idle: 10,000 open idle connections. A server made with this API on 127.0.0.1
-- and 10,000 clients made with this API, all in this process (20,000 connection
-- objects). Reports the user-space memory each idle connection object costs (from
-- net.get_stats().heap_bytes, the malloc heap in use, and from VmRSS), then the
-- per-frame cost of polling 100 active echo connections with and without the 10,000
-- idle ones open. Prints figures only; never asserts on time.
--
--   lua5.4 tests/bench/scale_idle.lua [IDLE] [ACTIVE] [FRAMES]
--     (defaults 10000, 100, 3000)
-- Environment: LUA_CPATH (net.so), SLUICE_BUILD.
-- Targets (DESIGN.md, Budgets): <= 4 KiB user space per idle connection; the per-frame
-- cost of polling the active ones does not grow with the idle count.
--
-- Each connection pair takes two file descriptors: the script re-executes itself under
-- `ulimit -n 65536` (or the hard limit when that is lower) and opens fewer idle
-- connections, saying so, when even that is not enough.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../lua/?.lua;" .. package.path

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

if arg[1] ~= "--child" then
  -- the interpreter running us (lua5.4, or a sanitizer build's luahost)
  local lua = arg[-1] or "lua5.4"
  local args = {}
  for i = 1, #arg do args[#args + 1] = shell_quote(arg[i]) end
  local script = arg[0]
  local cmd = string.format("sh -c %s %s %s --child %s",
    shell_quote('ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"'),
    shell_quote(lua), shell_quote(script), table.concat(args, " "))
  local ok, how, code = os.execute(cmd)
  if not ok then os.exit(how == "exit" and code or 1) end
  os.exit(0)
end
table.remove(arg, 1)   -- "--child"

local net = require "net"
local h = require "helpers"

local IDLE = math.tointeger(tonumber(arg[1] or "10000"))
local ACTIVE = math.tointeger(tonumber(arg[2] or "100"))
local FRAMES = math.tointeger(tonumber(arg[3] or "3000"))
local MSG = string.rep("m", 64)

local function read_proc(key)
  local s = h.read_file("/proc/self/status") or ""
  local kb = s:match(key .. ":%s*(%d+) kB")
  return kb and tonumber(kb) * 1024
end

local function nofile_limit()
  local s = h.read_file("/proc/self/limits") or ""
  local soft = s:match("Max open files%s+(%d+)")
  if soft then return math.tointeger(tonumber(soft)) end
  local p = io.popen("ulimit -n")
  local v = p:read("l")
  p:close()
  return math.tointeger(tonumber(v)) or 1024
end

local function open_fds()
  local p = io.popen("ls /proc/" .. (h.read_file("/proc/self/stat") or ""):match("^(%d+)") .. "/fd 2>/dev/null | wc -l")
  local n = p and tonumber(p:read("l")) or 0
  if p then p:close() end
  return math.tointeger(n)
end

local function kib(x) return x and string.format("%.2f KiB", x / 1024) or "n/a" end

print(string.format("scale_idle: %s, mode %s", net._VERSION or "net", h.mode ~= "" and h.mode or "release"))

-- How many idle pairs fit under the descriptor limit (two each, plus the active pairs,
-- the listener, the engine's own and some slack).
local limit = nofile_limit()
local reserve = 2 * ACTIVE + open_fds() + 64
local fit = (limit - reserve) // 2
if fit < IDLE then
  print(string.format("NOTE: the open-file limit is %d and could not be raised to 65536 here;", limit))
  print(string.format("NOTE: opening %d idle connections (%d objects) instead of %d", fit, 2 * fit, IDLE))
  IDLE = math.max(0, fit)
end

local srv = assert(net.create_server("127.0.0.1", 0, { backlog = 4096 }))
local port = srv:get_port()

-- Open `count` pairs (client, accepted), a batch at a time, accepting as they come.
local function open_pairs(count, clients, accepted)
  local opened, batch = 0, 256
  local deadline = net.clock() + 300
  while #accepted < count or opened < count do
    for _ = 1, math.min(batch, count - opened) do
      opened = opened + 1
      clients[#clients + 1] = assert(net.open_tcp("127.0.0.1", port))
    end
    local got = 0
    repeat
      local c, msg = srv:accept()
      if c then accepted[#accepted + 1], got = c, got + 1 end
      assert(c or not msg, msg)
    until not c
    if got == 0 then net.wait(5) end
    assert(net.clock() < deadline, string.format("only %d of %d accepted", #accepted, count))
  end
  -- every client established
  for i, c in ipairs(clients) do
    local status, msg = h.wait_status(c, 30000)
    assert(status == "success", string.format("client %d: %s %s", i, tostring(status), tostring(msg)))
  end
end

-- One frame of polling the active pairs: each client writes a message and reads what
-- came back; each accepted connection echoes what arrived. Returns seconds spent in
-- the calls.
local function frame(cl, ac)
  local clock = net.clock
  local t0 = clock()
  for i = 1, #cl do
    local c, a = cl[i], ac[i]
    c:write(MSG)
    c:read(4096)
    c:get_status()
    local d = a:read(4096)
    if d and #d > 0 then a:write(d) end
    a:get_status()
  end
  return clock() - t0
end

local function measure(label, cl, ac)
  for _ = 1, 50 do frame(cl, ac) net.wait(1) end   -- warm up
  local t = {}
  for i = 1, FRAMES do
    t[i] = frame(cl, ac)
    net.wait(1)
  end
  table.sort(t)
  local r = { median = h.percentile(t, 0.5), p99 = h.percentile(t, 0.99), max = t[#t] }
  print(string.format("  %-34s median %7.1f us   p99 %7.1f us   max %7.1f us   (%d frames, %d pairs)",
    label, r.median * 1e6, r.p99 * 1e6, r.max * 1e6, FRAMES, #cl))
  return r
end

-- Drain the active pairs so that no ring holds data (for the memory figures): until
-- ten passes 20 ms apart in a row found nothing (echoes may still be in flight when
-- one pass finds nothing).
local function quiesce(cl, ac)
  local quiet = 0
  h.wait_for(function()
    local busy = false
    for i = 1, #cl do
      local d = ac[i]:read(1 << 20)
      if d and #d > 0 then ac[i]:write(d) busy = true end
      d = cl[i]:read(1 << 20)
      if d and #d > 0 then busy = true end
      if cl[i]:get_pending_writes() > 0 or ac[i]:get_pending_writes() > 0 then busy = true end
    end
    quiet = busy and 0 or quiet + 1
    if quiet < 10 then h.sleep(20) end
    return quiet >= 10
  end, 20000, 1)
end

local function snapshot()
  collectgarbage()
  collectgarbage()
  net.get_stats()   -- heap_bytes is sampled off this thread: this asks for a new sample
  local settle = net.clock() + 0.2
  while net.clock() < settle do net.wait(20) end
  local st = net.get_stats()
  return { heap = st.heap_bytes, rss = read_proc("VmRSS"), lua = collectgarbage("count") * 1024,
    conns = st.connections, buffers = st.buffer_bytes }
end

-- Active pairs, and the polling cost before any idle connection exists.
local act_c, act_a = {}, {}
open_pairs(ACTIVE, act_c, act_a)
print(string.format("%d active echo pairs on 127.0.0.1:%d", ACTIVE, port))
print("per-frame cost of polling the active pairs (write/read/get_status on each end):")
local before = measure("without idle connections", act_c, act_a)
quiesce(act_c, act_a)

-- The idle connections.
local base = snapshot()
local idle_c, idle_a = {}, {}
local t0 = net.clock()
open_pairs(IDLE, idle_c, idle_a)
local open_secs = net.clock() - t0
h.sleep(500)
local with = snapshot()
local objects = 2 * IDLE
print(string.format("opened %d idle connections (%d objects: clients and accepted) in %.2f s",
  IDLE, objects, open_secs))
print(string.format("engine: %d connection objects, %d buffer bytes (%d before the idle ones)",
  with.conns, with.buffers, base.buffers))
print("memory per idle connection object:")
if with.heap and base.heap then
  print(string.format("  malloc heap in use (net.get_stats().heap_bytes): %s  (total +%.1f MiB)",
    kib((with.heap - base.heap) / objects), (with.heap - base.heap) / 1048576))
else
  print("  malloc heap in use: n/a (net.get_stats() has no heap_bytes)")
end
print(string.format("  VmRSS:                                          %s  (total +%.1f MiB)",
  kib((with.rss - base.rss) / objects), (with.rss - base.rss) / 1048576))
print(string.format("  of which Lua objects (collectgarbage count):     %s",
  kib((with.lua - base.lua) / objects)))
print("  target: <= 4.00 KiB")

print("per-frame cost of polling the active pairs:")
local during = measure(string.format("with %d idle connections", objects), act_c, act_a)

for i = 1, #idle_c do idle_c[i]:close() idle_a[i]:close() end
idle_c, idle_a = nil, nil
local target = 2 * ACTIVE
h.wait_for(function()
  collectgarbage()
  return net.get_stats().connections <= target + 1
end, 60000, 50)
local after = measure("without idle connections (again)", act_c, act_a)

-- The two runs without idle connections show the noise of this machine; the ratio is
-- against their mean.
local without_med = (before.median + after.median) / 2
local without_p99 = (before.p99 + after.p99) / 2
print(string.format("ratio with/without idle: median %.2f, p99 %.2f   (target: no measurable growth)",
  during.median / without_med, during.p99 / without_p99))
print(string.format("noise: the two runs without idle connections differ by %.0f%% (median), %.0f%% (p99)",
  100 * math.abs(before.median - after.median) / without_med,
  100 * math.abs(before.p99 - after.p99) / without_p99))

for i = 1, #act_c do act_c[i]:close() act_a[i]:close() end
srv:close()
