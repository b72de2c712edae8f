-- lib_cqueues: the workloads through cqueues (luaossl for TLS), its own style: each
-- connection a coroutine on a controller, run by cq:loop() ("loop"); in the frame-budget
-- scenario the controller is stepped once per frame with cq:step(0).
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local W = require "common"

local M = {}
local clock = cqueues.monotime
local CHUNK = 64 * 1024

local function tls_context(cfg)
  local context = require "openssl.ssl.context"
  local store = require("openssl.x509.store").new()
  store:add(cfg.ca)
  local ctx = context.new("TLS", false)
  ctx:setStore(store)
  ctx:setVerify(context.VERIFY_PEER)
  local param = require("openssl.x509.verify_param").new()
  param:setHost(cfg.name)
  ctx:setParam(param)
  return ctx
end

-- Connected (and for TLS, handshaken) socket; to be called inside a coroutine.
local function open(cfg, port, ctx, nodelay)
  local s = assert(socket.connect { host = "127.0.0.1", port = port, nodelay = nodelay })
  s:setmode("bn", "bn")
  assert(s:connect(30))
  if ctx then assert(s:starttls(ctx, 30)) end
  return s
end

local function run(fn)
  local cq = cqueues.new()
  cq:wrap(fn)
  assert(cq:loop())
end

function M.bulk(cfg)
  local t0, c0 = clock(), os.clock()
  local total = 0
  run(function()
    local s = open(cfg, cfg.port, cfg.tls and tls_context(cfg))
    while true do
      local data = s:read(-CHUNK)
      if not data then break end
      total = total + #data
    end
    s:close()
  end)
  return { bytes = total, secs = clock() - t0, cpu = os.clock() - c0 }
end

function M.pingpong(cfg)
  local rtt = {}
  run(function()
    local s = open(cfg, cfg.port, cfg.tls and tls_context(cfg), true)
    for i = 1, cfg.count do
      local t0 = clock()
      assert(s:write(W.MSG))
      assert(#assert(s:read(64)) == 64)
      rtt[i] = clock() - t0
    end
    s:close()
  end)
  return W.summary(rtt, "rtt")
end

function M.connrate(cfg)
  local t0, c0 = clock(), os.clock()
  local cq, started = cqueues.new(), 0
  local ctx = cfg.tls and tls_context(cfg)
  for _ = 1, math.min(cfg.inflight or 1, cfg.count) do   -- that many coroutines at once
    cq:wrap(function()
      while started < cfg.count do
        started = started + 1
        open(cfg, cfg.port, ctx):close()
      end
    end)
  end
  assert(cq:loop())
  return { count = cfg.count, secs = clock() - t0, cpu = os.clock() - c0 }
end

function M.idle(cfg)
  local res
  run(function()
    local active, idle = {}, {}
    for i = 1, cfg.active do active[i] = open(cfg, cfg.port, nil, true) end
    collectgarbage()
    local rss0 = W.rss()
    for i = 1, cfg.idle do idle[i] = open(cfg, cfg.port) end
    collectgarbage()
    res = { idle = #idle, rss_per_conn = (W.rss() - rss0) / #idle }
    local cost = {}
    for f = 1, cfg.frames do
      local t0 = clock()
      for i = 1, #active do assert(active[i]:write(W.MSG)) end
      for i = 1, #active do assert(#assert(active[i]:read(64)) == 64) end
      cost[f] = clock() - t0
      cqueues.sleep(0.001)
    end
    table.sort(cost)
    res.frame_median, res.frame_p99 = W.pct(cost, 0.5), W.pct(cost, 0.99)
    for _, s in ipairs(idle) do   -- one byte each way on every idle connection
      assert(s:write("x"))
      assert(s:read(1))
    end
    res.rss_used_per_conn = (W.settled_rss() - rss0) / #idle
    for _, s in ipairs(idle) do s:close() end
    for _, s in ipairs(active) do s:close() end
  end)
  return res
end

-- The frame-budget scenario: handshakes, bulk streams and lookups (cqueues' own
-- resolver, pointed at the silent server) each a coroutine; one cq:step(0) per frame is
-- the timed call.
function M.frame(cfg)
  local resolver = require "cqueues.dns.resolver"
  local rec, calls, worst = W.recorder(clock)
  local hs_done, bytes, dns_done = 0, 0, 0
  local cq = cqueues.new()
  local ctx = tls_context(cfg)
  local frames = W.frame_loop(clock, cfg.frames, function(f)
    local t0
    if f == 1 then
      t0 = clock()
      for _ = 1, cfg.handshakes do
        cq:wrap(function()
          local s = socket.connect { host = "127.0.0.1", port = cfg.hs_port }
          if s:connect(30) and s:starttls(ctx, 30) then hs_done = hs_done + 1 end
          s:close()
        end)
      end
      for _ = 1, cfg.streams do
        cq:wrap(function()
          local s = socket.connect { host = "127.0.0.1", port = cfg.bulk_port }
          s:setmode("bn", "bn")
          while true do
            local data = s:read(-CHUNK)
            if not data then break end
            bytes = bytes + #data
          end
          s:close()
        end)
      end
      for i = 1, cfg.lookups do
        cq:wrap(function()
          local r = resolver.new { nameserver = { "[127.0.0.1]:" .. cfg.dns_port },
            lookup = { "bind" }, options = { timeout = 2, attempts = 3 } }
          if r:query("lookup" .. i .. ".bench.test", "A", "IN", 30) then dns_done = dns_done + 1 end
          r:close()
        end)
      end
      rec(t0, "start coroutines")
    end
    t0 = clock(); cq:step(0); rec(t0, "step(0)")
  end)
  return W.frame_figures({ handshakes = hs_done, bytes = bytes, dns_answered = dns_done }, calls, frames, worst)
end

return M
