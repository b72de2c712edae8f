-- lib_sluice: the workloads through sluice's `net` (build/<cfg>/net.so on LUA_CPATH).
-- Styles: "spin" polls in a tight loop; "wait" sleeps in net.wait(ms) whenever a poll
-- found nothing; "frame" polls once per 1/60 s frame (draining what is there) and
-- sleeps out the rest of the frame.
local net = require "net"
local W = require "common"

local M = {}
local clock = net.clock
local CHUNK = 64 * 1024

local function open(cfg, port, opts)
  -- (an options table without `ssl` reads as TLS options: pass nil then)
  if cfg.tls then
    opts = opts or {}
    opts.ssl = { ca_file = cfg.ca, server_name = cfg.name, resume = cfg.resume ~= 0 }
  end
  return assert(net.open_tcp("127.0.0.1", port, opts))
end

-- Sleeps the way the style does after a poll that found nothing.
local function idle_step(style, frame_start)
  if style == "wait" then
    net.wait(100)
  elseif style == "frame" then
    local left = frame_start + W.FRAME - clock()
    if left > 0 then W.sleep(left) end
  end
end

function M.bulk(cfg)
  local t0, c0 = clock(), os.clock()
  local conn = open(cfg, cfg.port, cfg.buffer and { buffer_size = cfg.buffer } or nil)
  local total, frame = 0, clock()
  while true do
    local data, msg = conn:read(CHUNK)
    if data == nil then
      assert(msg == nil, msg)
      break
    end
    if #data > 0 then
      total = total + #data
    elseif cfg.style ~= "spin" then
      idle_step(cfg.style, frame)
      frame = clock()
    end
  end
  local secs = clock() - t0
  conn:close()
  return { bytes = total, secs = secs, cpu = os.clock() - c0 }
end

function M.pingpong(cfg)
  local conn = open(cfg, cfg.port, { nodelay = true })
  assert(conn:wait_until_connected(10000) == "success")
  local rtt, frame = {}, clock()
  for i = 1, cfg.count do
    local t0 = clock()
    assert(conn:write(W.MSG) == 64)
    local got = 0
    while got < 64 do
      local data = assert(conn:read(64 - got))
      got = got + #data
      if #data == 0 and cfg.style ~= "spin" then
        idle_step(cfg.style, frame)
        frame = clock()
      end
    end
    rtt[i] = clock() - t0
  end
  conn:close()
  return W.summary(rtt, "rtt")
end

-- cfg.inflight connections at a time (default: one, as the blocking peers; frame: at
-- least 64, polled once per frame: one at a time would be 60 per second).
function M.connrate(cfg)
  local inflight = cfg.inflight or 1
  if cfg.style == "frame" then inflight = math.max(inflight, 64) end
  local t0, c0 = clock(), os.clock()
  local live, started, done = {}, 0, 0
  local function fill()
    while #live < inflight and started < cfg.count do
      live[#live + 1] = open(cfg, cfg.port)
      started = started + 1
    end
  end
  local frame = clock()
  fill()
  while done < cfg.count do
    local i, progressed = 1, false
    while i <= #live do
      local status, msg, code = live[i]:get_status()
      if status == "waiting" then
        i = i + 1
      else
        assert(status == "success" or code == "closed", msg)
        live[i]:close()
        table.remove(live, i)
        done, progressed = done + 1, true
      end
    end
    fill()   -- before the frame's sleep: a place freed this frame connects during it
    if not progressed and cfg.style ~= "spin" or cfg.style == "frame" then
      idle_step(cfg.style, frame)
      frame = clock()
    end
  end
  return { count = done, secs = clock() - t0, cpu = os.clock() - c0 }
end

-- One frame with the active connections: write 64 bytes to each, poll until every echo
-- is back. Returns the seconds it took.
local function active_frame(active, style)
  local t0 = clock()
  local want = {}
  for i = 1, #active do
    assert(active[i]:write(W.MSG) == 64)
    want[i] = 64
  end
  local left = #active
  while left > 0 do
    local got = false
    for i = 1, #active do
      if want[i] > 0 then
        local data = assert(active[i]:read(want[i]))
        want[i] = want[i] - #data
        if #data > 0 then got = true end
        if want[i] == 0 then left = left - 1 end
      end
    end
    if not got and style == "wait" then net.wait(10) end
  end
  return clock() - t0
end

local function open_established(cfg, n, list, opts)
  for i = 1, n do list[#list + 1] = open(cfg, cfg.port, opts) end
  for i = #list - n + 1, #list do
    assert(list[i]:wait_until_connected(30000) == "success", "connect failed")
  end
end

-- heap_bytes now: it is sampled off the caller's thread, so ask, then read a moment later.
local function heap_bytes()
  net.get_stats()
  W.sleep(0.2)
  return net.get_stats().heap_bytes
end

function M.idle(cfg)
  local active, idle = {}, {}
  open_established(cfg, cfg.active, active, { nodelay = true })
  collectgarbage()
  local rss0, heap0 = W.rss(), heap_bytes()
  local batch = 1000
  for done = 0, cfg.idle - 1, batch do
    open_established(cfg, math.min(batch, cfg.idle - done), idle)
  end
  W.sleep(0.2)
  collectgarbage()
  local res = { idle = #idle, rss_per_conn = (W.rss() - rss0) / #idle,
    heap_per_conn = (heap_bytes() - heap0) / #idle }
  local cost = {}
  for f = 1, cfg.frames do
    cost[f] = active_frame(active, cfg.style == "wait" and "wait" or "spin")
    W.sleep(0.001)
  end
  table.sort(cost)
  res.frame_median, res.frame_p99 = W.pct(cost, 0.5), W.pct(cost, 0.99)
  for _, c in ipairs(idle) do assert(c:write("x") == 1) end   -- one byte each way on each
  local left = #idle
  while left > 0 do
    for _, c in ipairs(idle) do
      if c:available() > 0 then
        assert(#assert(c:read(1)) == 1)
        left = left - 1
      end
    end
    if left > 0 then net.wait(10) end
  end
  res.rss_used_per_conn = (W.settled_rss() - rss0) / #idle
  res.heap_used_per_conn = (heap_bytes() - heap0) / #idle
  for _, c in ipairs(idle) do c:close() end
  for _, c in ipairs(active) do c:close() end
  return res
end

-- The frame-budget scenario (see run.lua): every call timed, every frame timed.
function M.frame(cfg)
  local rec, calls, worst = W.recorder(clock)
  local resolver = net.create_resolver { nameservers = { "127.0.0.1:" .. cfg.dns_port } }
  local hs, streams, lookups = {}, {}, {}
  local hs_done, bytes, dns_done = 0, 0, 0
  local tls = { ssl = { ca_file = cfg.ca, server_name = cfg.name } }
  local frames = W.frame_loop(clock, cfg.frames, function(f)
    local t0
    if f == 1 then
      for i = 1, cfg.handshakes do
        t0 = clock(); hs[i] = net.open_tcp("127.0.0.1", cfg.hs_port, tls); rec(t0, "open_tcp TLS")
      end
      for i = 1, cfg.streams do
        t0 = clock(); streams[i] = net.open_tcp("127.0.0.1", cfg.bulk_port); rec(t0, "open_tcp")
      end
      for i = 1, cfg.lookups do
        t0 = clock(); lookups[i] = resolver:resolve("lookup" .. i .. ".bench.test"); rec(t0, "resolve")
      end
    end
    for i, c in pairs(hs) do
      t0 = clock(); local st, _, code = c:get_status(); rec(t0, "get_status")
      if st ~= "waiting" then
        if st == "success" or code == "closed" then hs_done = hs_done + 1 end
        t0 = clock(); c:close(); rec(t0, "close TLS")
        hs[i] = nil
      end
    end
    for i, c in pairs(streams) do
      repeat
        t0 = clock(); local data = c:read(CHUNK); rec(t0, "read")
        if data == nil then
          t0 = clock(); c:close(); rec(t0, "close")
          streams[i] = nil
        else
          bytes = bytes + #data
        end
      until data == nil or #data == 0
    end
    for i, a in pairs(lookups) do
      t0 = clock(); local st = a:get_status(); rec(t0, "address get_status")
      if st ~= "waiting" then dns_done, lookups[i] = dns_done + 1, nil end
    end
  end)
  for _, c in pairs(hs) do c:close() end
  for _, c in pairs(streams) do c:close() end
  resolver:close()
  return W.frame_figures({ handshakes = hs_done, bytes = bytes, dns_answered = dns_done }, calls, frames, worst)
end

return M
