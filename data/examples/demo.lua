-- demo.lua: sluice in one screen. A 60 fps "editor" frame loop downloads a large payload
-- through `net` while it draws, and never waits on the network.
--
--   lua5.4 data/examples/demo.lua              start a local HTTP test peer, fetch 512 MiB
--                                              with net.http_request, reading the body
--   lua5.4 data/examples/demo.lua HOST PORT    read a raw TCP stream from HOST:PORT until
--                                              it closes
--   lua5.4 data/examples/demo.lua URL          download URL (http:// or https://) into a
--                                              file named after it (SLUICE_DEMO_OUT: another
--                                              path), resuming a .part left by a stopped run
--
-- LUA_CPATH must find net.so (e.g. "build/release/?.so;;"). Without HOST PORT the demo
-- runs $SLUICE_BUILD/peer (default build/release/peer under $SLUICE_ROOT or the current
-- folder); SLUICE_DEMO_BYTES changes the payload size (e.g. 64M).
local net = require "net"

local FRAME = 1 / 60           -- seconds per frame at 60 fps
local DRAW_WORK = 0.002        -- pretend drawing takes 2 ms of CPU
local NET_BUDGET = 0.002       -- spend at most ~2 ms per frame taking in data
local READS_PER_FRAME = 32     -- and at most this many read() calls
local READ_SIZE = 64 * 1024

--------------------------------------------------------------------------------
-- The payload pattern of the test peer (tests/tools/peer.c), to check what arrives:
--   byte i = T[i mod 1000003],  T[j] = ((j * 2654435761) mod 2^32) >> 24

local PERIOD = 1000003

local function make_period()
  local parts, vals = {}, {}
  local total = PERIOD + READ_SIZE   -- one period plus a read's worth, so slices are contiguous
  for base = 0, total - 1, 256 do
    local n = math.min(256, total - base)
    for k = 1, n do
      vals[k] = ((((base + k - 1) % PERIOD) * 2654435761) & 0xffffffff) >> 24
    end
    parts[#parts + 1] = string.char(table.unpack(vals, 1, n))
  end
  return table.concat(parts)
end

-- True when `data` is the pattern at stream offset `offset`.
local function pattern_matches(period, offset, data)
  local o = offset % PERIOD
  return data == period:sub(o + 1, o + #data)
end

--------------------------------------------------------------------------------
-- The local peer: `peer http N` prints its port, then answers every request with an
-- N-byte body of the pattern.

local function start_peer(size)
  local root = os.getenv("SLUICE_ROOT") or "."
  local exe = (os.getenv("SLUICE_BUILD") or (root .. "/build/release")) .. "/peer"
  local out = os.tmpname()
  local p = assert(io.popen(string.format("exec '%s' http %s >'%s' & echo $!", exe, size, out)))
  local pid = p:read("l")
  p:close()
  local deadline = net.clock() + 5
  while net.clock() < deadline do
    local f = io.open(out, "r")
    local port = f and f:read("l")
    if f then f:close() end
    if port then
      os.remove(out)
      return tonumber(pid), tonumber(port)
    end
    net.wait(10)
  end
  os.execute("kill " .. pid .. " 2>/dev/null")
  os.remove(out)
  error("could not start " .. exe .. " (is SLUICE_BUILD set?)")
end

--------------------------------------------------------------------------------
-- Frame loop

local function busy_until(t)   -- the "drawing": burn CPU like a renderer would
  while net.clock() < t do end
end

local function progress_line(received, total, elapsed, frame_ms)
  local mb = received / 1e6
  local rate = elapsed > 0 and mb / elapsed or 0
  if total then
    local width = 30
    local filled = math.floor(width * received / total)
    return string.format("\r[%s%s] %5.1f%%  %7.1f MB  %6.1f MB/s  frame %4.1f ms ",
      string.rep("#", filled), string.rep(".", width - filled),
      100 * received / total, mb, rate, frame_ms)
  end
  return string.format("\r%9.1f MB  %6.1f MB/s  frame %4.1f ms ", mb, rate, frame_ms)
end

local function eta(received, total, elapsed)
  if not total or received == 0 or received >= total then return "" end
  local left = (total - received) * elapsed / received
  return string.format("  ETA %d:%02d", left // 60, math.floor(left % 60))
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  return sorted[math.max(1, math.ceil(#sorted * p))]
end

-- The frame-time summary both modes print.
local function frame_summary(frame_times)
  local sorted = { table.unpack(frame_times) }
  table.sort(sorted)
  local over = 0
  for _, ms in ipairs(frame_times) do
    if ms > FRAME * 1000 then over = over + 1 end
  end
  print(string.format("frames %d   median %.2f ms   p99 %.2f ms   worst %.2f ms   over %.1f ms: %d",
    #sorted, percentile(sorted, 0.5), percentile(sorted, 0.99), sorted[#sorted] or 0,
    FRAME * 1000, over))
end

-- read(n) gives what has arrived ("" for nothing yet), nil at the end, or nil, err.
local function run(read, total)
  local period = total and make_period()   -- only our own peer sends a known pattern

  local received, verified = 0, true
  local frame_times, longest_call = {}, 0
  local started, finished = net.clock(), nil
  local next_frame = started
  local failure

  while not finished do
    local frame_start = net.clock()

    -- 1. Network: take in what has arrived, within a small budget. Never blocks.
    for _ = 1, READS_PER_FRAME do
      local t0 = net.clock()
      local data, err = read(READ_SIZE)
      longest_call = math.max(longest_call, net.clock() - t0)
      if data == nil then                -- end of stream (err == nil) or an error
        failure = failure or err
        finished = net.clock()
        break
      end
      if #data == 0 then break end       -- nothing more this frame
      if period and not pattern_matches(period, received, data) then verified = false end
      received = received + #data
      if net.clock() - frame_start > NET_BUDGET then break end
    end
    if failure then break end

    -- 2. Draw.
    busy_until(net.clock() + DRAW_WORK)
    local frame_ms = (net.clock() - frame_start) * 1000
    frame_times[#frame_times + 1] = frame_ms
    if #frame_times % 6 == 0 or finished then
      io.write(progress_line(received, total, net.clock() - started, frame_ms))
      io.flush()
    end

    -- 3. Sleep until the next frame. net.wait returns early when data arrives; a real
    --    editor would handle input events then. Here we just go back to sleep.
    next_frame = next_frame + FRAME
    local now = net.clock()
    if now > next_frame then next_frame = now end   -- a late frame: don't try to catch up
    while not finished do
      local remaining_ms = math.ceil((next_frame - net.clock()) * 1000)
      if remaining_ms <= 0 then break end
      net.wait(remaining_ms)
    end
  end
  io.write("\n")

  if failure then
    print("failed: " .. tostring(failure))
    return false
  end

  -- Report.
  local seconds = finished - started
  frame_summary(frame_times)
  print(string.format("received %.1f MB in %.2f s = %.1f MB/s   longest net call %.0f µs",
    received / 1e6, seconds, received / 1e6 / seconds, longest_call * 1e6))
  if total then
    local ok = verified and received == total
    print(ok and "payload verified: every byte as sent"
      or string.format("PAYLOAD WRONG: %d of %d bytes, pattern %s", received, total,
        verified and "ok" or "mismatch"))
    return ok
  end
  return true
end

-- URL mode: the whole HTTP exchange runs on the I/O thread and the file is written on
-- a helper thread; the frame loop only looks at the progress.
-- The last segment of the URL's path ("http://host/dir/" and "http://host" name none).
local function file_name(url)
  local path = url:match("^%a[%w+.-]*://[^/?#]*(/[^?#]*)") or ""
  local name = path:match("([^/]+)$")
  return name and name ~= "." and name ~= ".." and name or "download.bin"
end

local function run_url(url)
  local out = os.getenv("SLUICE_DEMO_OUT") or file_name(url)
  local req = assert(net.http_request{ url = url, output = out, resume = true })
  local frame_times, longest_call, started = {}, 0, net.clock()
  local next_frame = started
  while true do
    local frame_start = net.clock()
    local status = req:get_status()
    local received, total = req:get_progress()
    longest_call = math.max(longest_call, net.clock() - frame_start)
    busy_until(net.clock() + DRAW_WORK)
    local frame_ms = (net.clock() - frame_start) * 1000
    frame_times[#frame_times + 1] = frame_ms
    if #frame_times % 6 == 0 or status ~= "waiting" then
      io.write(progress_line(received, total, net.clock() - started, frame_ms), eta(received, total,
        net.clock() - started))
      io.flush()
    end
    if status ~= "waiting" then break end
    next_frame = math.max(next_frame + FRAME, net.clock())
    while net.clock() < next_frame do net.wait(math.ceil((next_frame - net.clock()) * 1000)) end
  end
  io.write("\n")
  frame_summary(frame_times)
  local status, msg = req:get_status()
  local received = req:get_progress()
  print(string.format("%s: %.1f MB in %.2f s   longest net call %.0f µs", status == "success" and out or "failed",
    received / 1e6, net.clock() - started, longest_call * 1e6))
  if msg then print(msg) end
  return status == "success"
end

local function parse_size(s)
  local n, unit = s:match("^(%d+)([KkMmGg]?)$")
  assert(n, "bad size " .. s)
  local shift = ({ [""] = 0, k = 10, m = 20, g = 30 })[unit:lower()]
  return math.tointeger(tonumber(n)) << shift
end

local host, port = arg[1], math.tointeger(tonumber(arg[2] or ""))
local is_url = host and host:match("^https?://")
local ok
if host and not is_url and not (port and port >= 1 and port <= 65535) then
  io.stderr:write("usage: demo.lua [URL | HOST PORT]\n")
  os.exit(2)
elseif is_url then
  print("downloading " .. host .. " at 60 fps ...")
  ok = run_url(host)
elseif host and port then
  print(string.format("reading from %s:%d until it closes ...", host, port))
  local conn = assert(net.open_tcp(host, port))
  ok = run(function(n) return conn:read(n) end, nil)
  conn:close()
else
  local size = parse_size(os.getenv("SLUICE_DEMO_BYTES") or "512M")
  local pid, peer_port = start_peer(size)
  local url = string.format("http://127.0.0.1:%d/demo", peer_port)
  print(string.format("downloading %d MiB from %s at 60 fps ...", size >> 20, url))
  -- The exchange runs on the I/O thread; the body comes through a bounded buffer that
  -- slows the server down when the frame loop reads slowly.
  local req = assert(net.http_request{ url = url, max_size = size, proxy = false })
  local success, result = pcall(run, function(n) return req:read(n) end, size)
  req:close()
  os.execute("kill " .. pid .. " 2>/dev/null")
  if not success then error(result, 0) end
  ok = result
end
os.exit(ok and 0 or 1, true)
