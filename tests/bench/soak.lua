-- soak: mixed traffic for a long time in one process, to show that memory and
-- descriptors stay flat. Each frame: plain connections open, echo a message and
-- are closed or dropped for the garbage collector; TLS handshakes (verified)
-- come and go; one pair streams bulk data; UDP datagrams go back and
-- forth; now and then a server is made and closed (or dropped), a Unix socket
-- connects, a name is looked up and abandoned. Every 30 s it prints RSS, the
-- malloc heap, open descriptors and net.get_stats(); at the end it lets every
-- object go and compares with the state after the first 30 s.
--
--   lua5.4 tests/bench/soak.lua [SECONDS]     (default 600)
-- Environment: LUA_CPATH (net.so), SLUICE_BUILD. Exits 1 when descriptors or
-- the module's objects and bytes did not come back to the baseline.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../lua/?.lua;" .. package.path

local net = require "net"
local h = require "helpers"

local SECONDS = tonumber(arg[1] or "600")
local REPORT_EVERY = math.min(30, SECONDS / 4)
local BULK_CHUNK = 64 * 1024
local IN_FLIGHT = 64   -- short-lived clients open at once

local function open_fds()
  local pid = (h.read_file("/proc/self/stat") or ""):match("^(%d+)")
  local p = io.popen("ls /proc/" .. pid .. "/fd 2>/dev/null | wc -l")
  local n = tonumber(p:read("l")) or 0
  p:close()
  return math.tointeger(n) - 1   -- the ls pipe itself
end

local function rss()
  local kb = (h.read_file("/proc/self/status") or ""):match("VmRSS:%s*(%d+) kB")
  return kb and tonumber(kb) * 1024 or 0
end

local function sample()
  collectgarbage()
  collectgarbage()
  net.get_stats()   -- heap_bytes is sampled off this thread: this asks for a new sample
  local settle = net.clock() + 0.2
  while net.clock() < settle do net.wait(20) end
  local s = net.get_stats()
  s.rss, s.fds, s.lua = rss(), open_fds(), math.floor(collectgarbage("count") * 1024)
  return s
end

local function mib(x) return string.format("%7.1f MiB", x / 1048576) end

local function report(t, s, counts)
  print(string.format("%5.0f s  rss %s  heap %s  module %s  lua %s  fds %3d  conns %4d  addrs %3d"
    .. "  servers %2d  udp %2d  | %d conns, %d tls, %s bulk, %d datagrams so far",
    t, mib(s.rss), mib(s.heap_bytes), mib(s.module_bytes), mib(s.lua), s.fds, s.connections,
    s.addresses, s.servers, s.udp, counts.conns, counts.tls, mib(counts.bulk), counts.dgrams))
  io.stdout:flush()
end

local certs = h.tls_certs()
local plain = assert(net.create_server("127.0.0.1", 0))
local tls = assert(net.create_server("127.0.0.1", 0, { ssl = { cert_file = certs:pem("good"),
  key_file = certs:key("good") } }))
local plain_svc, tls_svc = h.echo_service(plain), h.echo_service(tls)
local unix_path = os.tmpname()
os.remove(unix_path)
local unix_srv = assert(net.create_server{ unix = unix_path })
local unix_svc = h.echo_service(unix_srv)
local counts = { conns = 0, tls = 0, bulk = 0, dgrams = 0 }

-- Short-lived clients: each echoes one message, then is closed or dropped.
local clients = {}
local function churn(n, server, opts, kind)
  for _ = 1, math.min(n, IN_FLIGHT - #clients) do
    local c = server == unix_srv and net.open_unix(unix_path) or net.open_tcp("127.0.0.1", server:get_port(), opts)
    if c then
      c:write("ping " .. counts.conns .. "\n")
      clients[#clients + 1] = { conn = c, kind = kind, born = net.clock() }
    end
  end
  for i = #clients, 1, -1 do
    local e = clients[i]
    local line = e.conn:read_until("\n")
    if line ~= "" or net.clock() - e.born > 10 then   -- the echo, an end, or a failure
      counts[e.kind] = counts[e.kind] + 1
      if i % 2 == 0 then e.conn:close() end   -- the others go to the garbage collector
      table.remove(clients, i)
    end
  end
end

-- One pair streaming one way as fast as the frame loop lets it.
local bulk_c, bulk_a = h.connect_pair(plain)

local payload = string.rep("b", BULK_CHUNK)
local function bulk()
  bulk_c:write(payload)
  local d = bulk_a:read(1 << 20)
  if d then counts.bulk = counts.bulk + #d end
end

local u1, u2 = assert(net.open_udp("127.0.0.1", 0)), assert(net.open_udp("127.0.0.1", 0))
local function udp()
  for _ = 1, 20 do u1:send("127.0.0.1", u2:get_port(), "datagram") end
  while u2:receive() do counts.dgrams = counts.dgrams + 1 end
end

local function now_and_then(frame)
  if frame % 50 == 0 then
    local s = assert(net.create_server("127.0.0.1", 0))
    if frame % 100 == 0 then s:close() end   -- the others go to the garbage collector
    net.resolve_address("localhost")          -- dropped at once
  end
  if frame % 10 == 0 then churn(1, unix_srv, nil, "conns") end
end

local t0 = net.clock()
local baseline
local next_report = t0 + REPORT_EVERY
local frame = 0
while net.clock() - t0 < SECONDS do
  frame = frame + 1
  churn(4, plain, nil, "conns")
  if frame % 5 == 0 then churn(1, tls, { ssl = { ca_file = certs.ca, server_name = "sluice-v4.test" } }, "tls") end
  bulk()
  udp()
  now_and_then(frame)
  plain_svc:step()
  tls_svc:step()
  unix_svc:step()
  if frame % 20 == 0 then collectgarbage("step", 200) end
  if net.clock() >= next_report then
    local s = sample()
    report(net.clock() - t0, s, counts)
    baseline = baseline or s
    next_report = next_report + REPORT_EVERY
  end
  net.wait(2)
end

-- Let everything go, then look again.
for _, e in ipairs(clients) do e.conn:close() end
clients = {}
bulk_c:close()
bulk_a:close()
local drained = net.clock() + 15
while net.clock() < drained and (#plain_svc.conns + #tls_svc.conns + #unix_svc.conns) > 0 do
  plain_svc:step()
  tls_svc:step()
  unix_svc:step()
  net.wait(5)
end
h.wait_for(function() return sample().connections <= baseline.connections end, 15000, 100)
local final = sample()
print("after letting go:")
report(net.clock() - t0, final, counts)
local flat = final.fds <= baseline.fds and final.connections <= baseline.connections
  and final.addresses <= baseline.addresses and final.module_bytes <= baseline.module_bytes * 1.05
print(string.format("rss %.2fx, heap %.2fx, module bytes %.2fx, descriptors %d -> %d of the baseline at %d s: %s",
  final.rss / baseline.rss, final.heap_bytes / baseline.heap_bytes, final.module_bytes / baseline.module_bytes,
  baseline.fds, final.fds, REPORT_EVERY, flat and "flat" or "GREW"))
os.remove(unix_path)
os.exit(flat and 0 or 1)
