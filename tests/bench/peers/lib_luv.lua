-- lib_luv: the workloads through luv (libuv), callback style ("loop": uv.run until the
-- work is done). luv has no TLS, and its getaddrinfo cannot be pointed at a given DNS
-- server: those parts are left out.
local uv = require "luv"
local W = require "common"

local M = {}
local function clock() return uv.hrtime() * 1e-9 end

local function connect(port, cb)
  local t = uv.new_tcp()
  t:connect("127.0.0.1", port, function(err) cb(t, err) end)
  return t
end

function M.bulk(cfg)
  if cfg.tls then return nil end
  local t0, c0 = clock(), os.clock()
  local total = 0
  connect(cfg.port, function(t, err)
    assert(not err, err)
    t:read_start(function(rerr, data)
      assert(not rerr, rerr)
      if data then total = total + #data else t:close() end
    end)
  end)
  uv.run()
  return { bytes = total, secs = clock() - t0, cpu = os.clock() - c0 }
end

function M.pingpong(cfg)
  if cfg.tls then return nil end
  local rtt, i, got, t0 = {}, 0, 0, 0
  local function ping(t)
    i, got, t0 = i + 1, 0, clock()
    t:write(W.MSG)
  end
  connect(cfg.port, function(t, err)
    assert(not err, err)
    t:nodelay(true)
    t:read_start(function(rerr, data)
      assert(not rerr and data, rerr or "closed")
      got = got + #data
      if got < 64 then return end
      rtt[i] = clock() - t0
      if i < cfg.count then ping(t) else t:close() end
    end)
    ping(t)
  end)
  uv.run()
  return W.summary(rtt, "rtt")
end

function M.connrate(cfg)
  if cfg.tls then return nil end
  local t0, c0 = clock(), os.clock()
  local done, started = 0, 0
  local function one()
    started = started + 1
    connect(cfg.port, function(t, err)
      assert(not err, err)
      t:close()
      done = done + 1
      if started < cfg.count then one() end
    end)
  end
  for _ = 1, math.min(cfg.inflight or 1, cfg.count) do one() end   -- that many chains at once
  uv.run()
  return { count = done, secs = clock() - t0, cpu = os.clock() - c0 }
end

-- Connects n handles (each reading, as a live connection would), runs until all are up.
local function open_many(port, n, list, on_data)
  local up = 0
  for i = 1, n do
    list[#list + 1] = connect(port, function(t, err)
      assert(not err, err)
      t:read_start(function(rerr, data) if on_data then on_data(i, rerr, data) end end)
      up = up + 1
    end)
  end
  while up < n do uv.run("once") end
end

function M.idle(cfg)
  if cfg.tls then return nil end
  local active, idle, got, idle_got = {}, {}, {}, 0
  open_many(cfg.port, cfg.active, active, function(i, err, data)
    assert(not err and data, err or "closed")
    got[i] = got[i] + #data
  end)
  for _, t in ipairs(active) do t:nodelay(true) end
  collectgarbage()
  local rss0 = W.rss()
  for done = 0, cfg.idle - 1, 1000 do
    open_many(cfg.port, math.min(1000, cfg.idle - done), idle, function(_, err, data)
      assert(not err and data, err or "closed")
      idle_got = idle_got + #data
    end)
  end
  collectgarbage()
  local res = { idle = #idle, rss_per_conn = (W.rss() - rss0) / #idle }
  local cost = {}
  for f = 1, cfg.frames do
    local t0 = clock()
    for i, t in ipairs(active) do got[i] = 0 t:write(W.MSG) end
    local left = #active
    while left > 0 do
      uv.run("once")
      left = 0
      for i = 1, #active do if got[i] < 64 then left = left + 1 end end
    end
    cost[f] = clock() - t0
    W.sleep(0.001)
  end
  table.sort(cost)
  res.frame_median, res.frame_p99 = W.pct(cost, 0.5), W.pct(cost, 0.99)
  for _, t in ipairs(idle) do t:write("x") end   -- one byte each way on every idle one
  while idle_got < #idle do uv.run("once") end
  res.rss_used_per_conn = (W.settled_rss() - rss0) / #idle
  for _, t in ipairs(idle) do t:close() end
  for _, t in ipairs(active) do t:close() end
  uv.run()
  return res
end

-- The frame-budget scenario without handshakes and lookups: the bulk streams, the
-- loop run once per frame (uv.run("nowait"), the call that is timed).
function M.frame(cfg)
  local rec, calls, worst = W.recorder(clock)
  local bytes = 0
  local frames = W.frame_loop(clock, cfg.frames, function(f)
    local t0
    if f == 1 then
      for _ = 1, cfg.streams do
        t0 = clock()
        connect(cfg.bulk_port, function(t, err)
          assert(not err, err)
          t:read_start(function(_, data)
            if data then bytes = bytes + #data else t:close() end
          end)
        end)
        rec(t0, "connect")
      end
    end
    t0 = clock(); uv.run("nowait"); rec(t0, "run(nowait)")
  end)
  uv.walk(function(h) if not h:is_closing() then h:close() end end)
  uv.run()
  return W.frame_figures({ handshakes = "n/a", bytes = bytes, dns_answered = "n/a" }, calls, frames, worst)
end

return M
