-- sse_parse: the event-stream parser of sluice.http (data/sluice/http.lua) on a
-- long data line arriving in small pieces, against the same bytes fed in one
-- piece, in the same run: the ratio stays near 1 when the cost is linear in
-- the line's size. Also many small events in one piece. Prints figures only;
-- never asserts on time.
--
--   lua5.4 tests/bench/sse_parse.lua [MiB]    (default 8 MiB line)
-- Environment: LUA_PATH must reach data/ (./run.sh bench sets it).
local http = require "sluice.http"
local net = require "net"

local mib = tonumber(arg[1] or "8") or 8
local total = math.max(4096, math.floor(mib * 256) * 4096)   -- whole pieces of every size below

local function parse(pieces)
  local got = 0
  local feed, finish = http._sse_parser(nil, function(ev) got = got + #ev.data end)
  local t0 = net.clock()
  for i = 1, #pieces do feed(pieces[i]) end
  finish()
  return net.clock() - t0, got
end

local saved = http.sse_max_event
http.sse_max_event = total + 1024
local whole = { "data: " .. string.rep("z", total) .. "\n\n" }
local t_whole, n_whole = parse(whole)
for _, size in ipairs({ 4096, 1024 }) do
  local pieces, piece = { "data: " }, string.rep("z", size)
  for i = 2, total // size + 1 do pieces[i] = piece end
  pieces[#pieces + 1] = "\n\n"
  local t, n = parse(pieces)
  assert(n == n_whole, "the split line decoded differently")
  print(string.format("sse: a %d KiB line in %d-byte pieces: %.3f s; in one piece: %.3f s; ratio %.1f",
    total // 1024, size, t, t_whole, t / t_whole))
end
http.sse_max_event = saved
local events = string.rep("data: x\n\n", 100000)
local t = parse({ events })
print(string.format("sse: 100,000 small events in one piece: %.3f s (%.1f µs each)", t, t / 100000 * 1e6))
