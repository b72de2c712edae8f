-- luasocket_style: sluice.socket against Debian's LuaSocket in the same run, with the
-- same code: bulk receive("*a") from the source peer, and a line protocol (many short
-- lines through the echo peer with receive("*l")). Prints figures and ratios only;
-- never asserts on time. Needs Debian's lua-socket (./run.sh deps).
--
--   lua5.4 tests/bench/luasocket_style.lua [BYTES [LINES]]   (default 256M, 200000)
-- Environment: SLUICE_BUILD (peer), LUA_CPATH (net.so), SLUICE_BENCH_ROUNDS (default 2:
-- the best of each is compared).
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../lua/?.lua;" .. here .. "../../data/?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
local sluice_socket = require "sluice.socket"
local ok, luasocket = pcall(require, "socket")
if not ok or luasocket == sluice_socket then
  print("luasocket_style: Debian's LuaSocket (lua-socket) is not installed; run ./run.sh deps")
  os.exit(1)
end

local function parse_size(s)
  local n, unit = s:match("^(%d+)([KkMmGg]?)$")
  assert(n, "bad size " .. s)
  return math.tointeger(tonumber(n)) << ({ [""] = 0, k = 10, m = 20, g = 30 })[unit:lower()]
end

local BYTES = parse_size(arg[1] or "256M")
local LINES = math.tointeger(tonumber(arg[2] or "200000"))
local ROUNDS = math.tointeger(tonumber(os.getenv("SLUICE_BENCH_ROUNDS") or "2"))

local function bulk(socket, port)
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(60)
  local t0 = net.clock()
  local data = assert(c:receive("*a"))
  local secs = net.clock() - t0
  c:close()
  assert(#data == BYTES, "short stream: " .. #data)
  return secs
end

-- Writes every line, then reads them back, in batches so neither side's buffers fill.
local function lines(socket, port)
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(60)
  local batch = {}
  for i = 1, 1000 do batch[i] = "line number " .. i .. " of the batch" end
  local text = table.concat(batch, "\n") .. "\n"
  local t0 = net.clock()
  for _ = 1, LINES // 1000 do
    assert(c:send(text))
    for i = 1, 1000 do
      local line = assert(c:receive("*l"))
      if #line ~= #batch[i] then error("line " .. i .. " differs") end
    end
  end
  local secs = net.clock() - t0
  c:close()
  return secs
end

local function best(fn, socket, port)
  local b = math.huge
  for _ = 1, ROUNDS do b = math.min(b, fn(socket, port)) end
  return b
end

local source = h.start_peer("source", tostring(BYTES))
local echo = h.start_peer("echo")
local ls_bulk, ss_bulk = best(bulk, luasocket, source.port), best(bulk, sluice_socket, source.port)
local n = (LINES // 1000) * 1000
local ls_lines, ss_lines = best(lines, luasocket, echo.port), best(lines, sluice_socket, echo.port)
h.stop_all()

local mib = BYTES / (1024 * 1024)
print(string.format("receive(\"*a\") of %d MiB:  LuaSocket %8.1f MB/s   sluice.socket %8.1f MB/s   ratio %.2f",
  math.floor(mib), BYTES / ls_bulk / 1e6, BYTES / ss_bulk / 1e6, ls_bulk / ss_bulk))
print(string.format("receive(\"*l\") of %d lines: LuaSocket %8.0f lines/s sluice.socket %8.0f lines/s ratio %.2f",
  n, n / ls_lines, n / ss_lines, ls_lines / ss_lines))
