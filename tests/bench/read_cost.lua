-- read_cost: what one conn:read(n) costs the calling thread when n bytes are
-- already buffered, for sizes from 256 B to 1 MiB, next to the cost of making
-- a Lua string of the same size from a Lua string (string.sub: one copy).
-- The ratio shows what the read adds beyond the one copy it cannot avoid.
-- Prints figures only; never asserts on time.
--
--   lua5.4 tests/bench/read_cost.lua [SAMPLES]    (default 400 per size)
-- Environment: SLUICE_BUILD (peer), LUA_CPATH (net.so).
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../lua/?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

local SAMPLES = math.tointeger(tonumber(arg[1] or "400"))
local SIZES = { 256, 4096, 16384, 65536, 262144, 1048576 }

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

-- Median seconds of one read(size) with at least size bytes buffered. The
-- offset of each read in the buffer varies (so most reads of 16 KiB and more
-- span buffer chunks), as it does in a real transfer.
local function time_reads(conn, size)
  local t = {}
  for i = 1, SAMPLES do
    local skew = (i * 977) % 4096 + 1
    while conn:available() < size + skew do net.wait(5) end
    conn:read(skew)                     -- move the read's start around
    local t0 = net.clock()
    local data = conn:read(size)
    t[i] = net.clock() - t0
    assert(#data == size, "short read")
  end
  return median(t)
end

local function time_sub(size)
  local src = string.rep("x", size + 1)
  local t = {}
  for i = 1, SAMPLES do
    local t0 = net.clock()
    local s = src:sub(2, size + 1)
    t[i] = net.clock() - t0
    assert(#s == size)
  end
  return median(t)
end

local peer = h.start_peer("source", tostring(1 << 40))
local ok, err = pcall(function()
  local conn = assert(net.open_tcp("127.0.0.1", peer.port, { buffer_size = 4 << 20 }))
  assert(conn:wait_until_connected(5000) == "success")
  print(string.format("read_cost: median of %d reads per size, data already buffered", SAMPLES))
  print(string.format("  %9s %12s %12s %8s %10s", "size", "read µs", "sub µs", "ratio", "read GB/s"))
  for _, size in ipairs(SIZES) do
    local r, s = time_reads(conn, size), time_sub(size)
    print(string.format("  %9d %12.2f %12.2f %8.2f %10.2f", size, r * 1e6, s * 1e6, r / s, size / r / 1e9))
  end
  conn:close()
end)
peer:stop()
if not ok then error(err, 0) end
