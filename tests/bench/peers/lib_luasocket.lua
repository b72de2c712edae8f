-- lib_luasocket: the workloads through LuaSocket, with LuaSec for TLS. Styles:
-- "block" uses blocking sockets (settimeout(nil)); "spin" sets settimeout(0) and polls
-- in a tight loop. LuaSec checks the chain against the CA; it does not check the name.
local socket = require "socket"
local W = require "common"

local M = {}
local clock = socket.gettime
local CHUNK = 64 * 1024

local function handshake(c, spin)
  if not spin then return assert(c:dohandshake()) end
  while true do
    local ok, err = c:dohandshake()
    if ok then return true end
    assert(err == "wantread" or err == "wantwrite", err)
  end
end

-- A connected socket (TLS: handshake done); nodelay for ping-pong.
local function open(cfg, port, nodelay)
  local c = assert(socket.connect("127.0.0.1", port))
  if nodelay then c:setoption("tcp-nodelay", true) end
  if cfg.tls then
    local ssl = require "ssl"
    c = assert(ssl.wrap(c, { mode = "client", protocol = "any", verify = "peer",
      cafile = cfg.ca, options = "all" }))
    c:sni(cfg.name)
    if cfg.style == "spin" then c:settimeout(0) end
    handshake(c, cfg.style == "spin")
  end
  c:settimeout(cfg.style == "spin" and 0 or nil)
  return c
end

function M.bulk(cfg)
  local t0, c0 = clock(), os.clock()
  local c = open(cfg, cfg.port)
  local total = 0
  while true do
    local data, err, partial = c:receive(CHUNK)
    data = data or partial
    total = total + #data
    if err == "closed" then break end
    assert(err == nil or err == "timeout" or err == "wantread", err)
  end
  local secs = clock() - t0
  c:close()
  return { bytes = total, secs = secs, cpu = os.clock() - c0 }
end

function M.pingpong(cfg)
  local c = open(cfg, cfg.port, true)
  local rtt = {}
  for i = 1, cfg.count do
    local t0 = clock()
    assert(c:send(W.MSG) == 64)
    local got = ""
    while #got < 64 do
      local data, err, partial = c:receive(64 - #got)
      got = got .. (data or partial)
      assert(err == nil or err == "timeout" or err == "wantread", err)
    end
    rtt[i] = clock() - t0
  end
  c:close()
  return W.summary(rtt, "rtt")
end

function M.connrate(cfg)
  local t0, c0 = clock(), os.clock()
  for _ = 1, cfg.count do open(cfg, cfg.port):close() end
  return { count = cfg.count, secs = clock() - t0, cpu = os.clock() - c0 }
end

function M.idle(cfg)
  local active, idle = {}, {}
  for i = 1, cfg.active do active[i] = open(cfg, cfg.port, true) end
  collectgarbage()
  local rss0 = W.rss()
  for i = 1, cfg.idle do idle[i] = open(cfg, cfg.port) end
  collectgarbage()
  local res = { idle = #idle, rss_per_conn = (W.rss() - rss0) / #idle }
  local cost = {}
  for f = 1, cfg.frames do
    local t0 = clock()
    for i = 1, #active do assert(active[i]:send(W.MSG) == 64) end
    for i = 1, #active do
      local got = 0
      while got < 64 do
        local data, err, partial = active[i]:receive(64 - got)
        got = got + #(data or partial)
        assert(err == nil or err == "timeout", err)
      end
    end
    cost[f] = clock() - t0
    W.sleep(0.001)
  end
  table.sort(cost)
  res.frame_median, res.frame_p99 = W.pct(cost, 0.5), W.pct(cost, 0.99)
  for _, c in ipairs(idle) do   -- one byte each way on every idle connection
    c:settimeout(nil)
    assert(c:send("x") == 1)
    assert(c:receive(1))
  end
  res.rss_used_per_conn = (W.settled_rss() - rss0) / #idle
  for _, c in ipairs(idle) do c:close() end
  for _, c in ipairs(active) do c:close() end
  return res
end

-- The frame-budget scenario. LuaSocket cannot be told which DNS server to ask (it
-- uses the system's), so the lookups are left out. "block": connect and handshake
-- block the frame (the common way), reads do not; "spin": nothing blocks.
function M.frame(cfg)
  local ssl = require "ssl"
  local rec, calls, worst = W.recorder(clock)
  local spin = cfg.style == "spin"
  local hs, streams = {}, {}
  local hs_done, bytes = 0, 0
  local params = { mode = "client", protocol = "any", verify = "peer", cafile = cfg.ca,
    options = "all" }
  local frames = W.frame_loop(clock, cfg.frames, function(f)
    local t0
    if f == 1 then
      for i = 1, cfg.handshakes do
        t0 = clock()
        local c = assert(socket.tcp())
        if spin then c:settimeout(0) end
        c:connect("127.0.0.1", cfg.hs_port)   -- "timeout" while in progress
        rec(t0, "connect")
        hs[i] = { tcp = c }
      end
      for i = 1, cfg.streams do
        t0 = clock()
        local c = assert(socket.connect("127.0.0.1", cfg.bulk_port))
        c:settimeout(0)
        rec(t0, "connect (stream)")
        streams[i] = c
      end
    end
    for i, h in pairs(hs) do
      t0 = clock()
      if not h.ssl then
        h.ssl = assert(ssl.wrap(h.tcp, params))
        h.ssl:sni(cfg.name)
        if spin then h.ssl:settimeout(0) end
      end
      local ok, err = h.ssl:dohandshake()
      rec(t0, "dohandshake")
      if ok or (err ~= "wantread" and err ~= "wantwrite" and err ~= "timeout") then
        if ok then hs_done = hs_done + 1 end
        t0 = clock(); h.ssl:close(); rec(t0, "close TLS")
        hs[i] = nil
      end
    end
    for i, c in pairs(streams) do
      repeat
        t0 = clock()
        local data, err, partial = c:receive(CHUNK)
        rec(t0, "receive")
        data = data or partial
        bytes = bytes + #data
        if err == "closed" then
          t0 = clock(); c:close(); rec(t0, "close")
          streams[i] = nil
        end
      until err ~= nil
    end
  end)
  for _, h in pairs(hs) do (h.ssl or h.tcp):close() end
  for _, c in pairs(streams) do c:close() end
  return W.frame_figures({ handshakes = hs_done, bytes = bytes, dns_answered = "n/a" }, calls, frames, worst)
end

return M
