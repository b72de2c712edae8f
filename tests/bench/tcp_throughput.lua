-- tcp_throughput: loopback bulk receive through the Lua API against a plain C blocking
-- recv() loop (raw_recv) in the same run, plus how long each conn:read() call takes on
-- the calling thread. Prints figures only; never asserts on time.
--
--   lua5.4 tests/bench/tcp_throughput.lua [BYTES]     (default 1G; K/M/G suffixes)
-- Environment: SLUICE_BUILD (peer, raw_recv), LUA_CPATH (net.so), SLUICE_BENCH_ROUNDS
-- (default 2: raw, lua, raw, lua; the best of each is compared).
-- Targets (DESIGN.md, Budgets): lua/raw >= 0.7; read() p99.9 < 20 µs, max < 1 ms.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../lua/?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

local function parse_size(s)
  local n, unit = s:match("^(%d+)([KkMmGg]?)$")
  assert(n, "bad size " .. s)
  return math.tointeger(tonumber(n)) << ({ [""] = 0, k = 10, m = 20, g = 30 })[unit:lower()]
end

local BYTES = parse_size(arg[1] or "1G")
local ROUNDS = math.tointeger(tonumber(os.getenv("SLUICE_BENCH_ROUNDS") or "2"))
local READ_SIZE = 64 * 1024

local function run_raw(port)
  local p = assert(io.popen(string.format("%s 127.0.0.1 %d", h.shell_quote(h.build .. "/raw_recv"), port)))
  local line = p:read("a")
  p:close()
  local bytes, secs = line:match("^raw_recv (%d+) ([%d.]+)")
  assert(bytes, "raw_recv failed: " .. line)
  return math.tointeger(tonumber(bytes)), tonumber(secs)
end

-- The Lua read loop: read(64 KiB) as fast as possible, net.wait(1) only after several
-- empty reads in a row. Returns bytes, seconds, and every read() duration (seconds).
local function run_lua(port)
  local clock, wait = net.clock, net.wait
  local durations, n = {}, 0
  local total, empty = 0, 0
  local start = clock()
  local conn = assert(net.open_tcp("127.0.0.1", port))
  while true do
    local t0 = clock()
    local data, msg = conn:read(READ_SIZE)
    local t1 = clock()
    n = n + 1
    durations[n] = t1 - t0
    if data == nil then
      assert(msg == nil, msg)
      break
    end
    local len = #data
    if len > 0 then
      total, empty = total + len, 0
    else
      empty = empty + 1
      if empty >= 4 then
        wait(1)
        empty = 0
      end
    end
  end
  local secs = clock() - start
  conn:close()
  return total, secs, durations
end

local peer = h.start_peer("source", tostring(BYTES))
local ok, err = pcall(function()
  print(string.format("tcp_throughput: %d MiB per transfer over loopback, %d round(s)",
    BYTES >> 20, ROUNDS))
  local best_raw, best_lua, best_durations = 0, 0, nil
  for round = 1, ROUNDS do
    local rb, rs = run_raw(peer.port)
    local raw_rate = rb / rs / 1e6
    print(string.format("  round %d  raw_recv  %d bytes  %.3f s  %8.1f MB/s", round, rb, rs, raw_rate))
    local lb, ls, durations = run_lua(peer.port)
    local lua_rate = lb / ls / 1e6
    print(string.format("  round %d  lua read  %d bytes  %.3f s  %8.1f MB/s%s", round, lb, ls,
      lua_rate, lb == BYTES and "" or "  (SHORT!)"))
    best_raw = math.max(best_raw, raw_rate)
    if lua_rate > best_lua then best_lua, best_durations = lua_rate, durations end
  end
  print(string.format("raw_recv %.1f MB/s   lua %.1f MB/s   ratio %.2f (target >= 0.70)",
    best_raw, best_lua, best_lua / best_raw))
  local floor = h.alloc_floor(#best_durations, READ_SIZE)
  print("per-call durations on the calling thread (targets: p99.9 < 20 µs, max < 1000 µs):")
  print("  " .. h.call_summary("read(64 KiB) in transfer", best_durations, 22))
  print("  " .. h.call_summary("baseline: Lua sub 64 KiB", floor, 22))
  print(string.format("  p99.9 ratio read/baseline %.2f", h.percentile(best_durations, 0.999) / h.percentile(floor, 0.999)))
end)
peer:stop()
if not ok then error(err, 0) end
