-- owner_calls.lua: calls every non-waiting function of the API, polling in a
-- busy loop (never net.wait), between two markers written to stderr, so that
-- owner_syscalls.sh can list the system calls this thread made meanwhile.
-- Run under strace by owner_syscalls.sh; alone it only checks it gets through.
local net = require "net"
local dir = assert(arg[1], "usage: owner_calls.lua TMPDIR")

local function spin_until(fn, what)
  local deadline = net.clock() + 10
  while not fn() do
    if net.clock() > deadline then error("timed out: " .. what) end
  end
end

local locals = net.get_local_addresses()   -- asks the kernel (netlink): outside the audit
assert(#locals > 0)

io.stderr:write("SLUICE-AUDIT-BEGIN\n")

-- addresses: a literal, a name from the test hosts file
local lit = net.resolve_address("127.0.0.1")
local named = net.resolve_address("localhost")
spin_until(function() return named:get_status() ~= "waiting" end, "resolve")
assert(lit:get_ip() == "127.0.0.1", tostring(lit))

-- a server, a client, both ends talking
local server = assert(net.create_server("127.0.0.1", 0))
local port = server:get_port()
local client = assert(net.open_tcp(lit, port, {nodelay = true, connect_timeout = 5000}))
client:write("hello\nworld\n")
local peer
spin_until(function()
  peer = peer or server:accept()
  return peer and client:get_status() == "success"
end, "connect")
local line
spin_until(function()
  line = peer:read_until("\n")
  return line ~= ""
end, "read_until")
assert(line == "hello\n", line)
spin_until(function() return peer:available() >= 6 end, "available")
assert(peer:read(64) == "world\n")
peer:write(string.rep("x", 100000))
local got = 0
spin_until(function()
  got = got + #client:read(1 << 20)
  return got == 100000
end, "bulk read")
client:pause_read()
client:resume_read()
client:set_option("keepalive", true)
assert(client:get_option("nodelay") == true)
assert(client:get_peer() == "127.0.0.1")
assert(client:get_local_address() == "127.0.0.1")
client:get_stats()
client:get_pending_writes()
client:get_address()
tostring(client)
-- framed messages and JSON: parsed in the rings and in the binding
client:write_packet("packet")
client:write_lsp(net.json_encode({jsonrpc = "2.0", id = 1, params = {1.5, "é", net.json_null}}))
local pk, body
spin_until(function()
  pk = pk or peer:read_packet()
  body = pk and (body or peer:read_lsp())
  return body
end, "framed")
assert(pk == "packet" and net.json_decode(body).id == 1)
client:shutdown("send")
spin_until(function() return peer:read(16) == nil end, "eof")
peer:close()
client:close()

-- TLS options are checked and copied here; the handshake runs elsewhere
local tls = assert(net.open_tcp("127.0.0.1", port, {ssl = {verify = false, alpn = {"h2"}}}))
tls:get_status()
tls:close()

-- UDP to itself
local udp = assert(net.open_udp("127.0.0.1", 0))
assert(udp:send("127.0.0.1", udp:get_port(), "datagram"))
local dg
spin_until(function()
  dg = udp:receive()
  return dg
end, "udp receive")
assert(dg:get_data() == "datagram")
dg:get_address()
udp:set_option("broadcast", true)
udp:get_stats()
udp:close()

-- Unix sockets, and a second server refused on a live path (the probe)
local path = dir .. "/audit.sock"
local userver = assert(net.create_server({unix = path}))
local uclient = assert(net.open_unix(path))
spin_until(function() return uclient:get_status() == "success" end, "unix connect")
local again, err = net.create_server({unix = path})
assert(not again and err:find("in use"), err)
uclient:close()
userver:close()

-- a resolver with its own nameserver: set up here, asked from the I/O thread
local resolver = net.create_resolver({nameservers = {"127.0.0.1:53"}, timeout = 100, tries = 1})
local viaaddr = resolver:resolve("localhost")   -- the hosts lane answers
spin_until(function() return viaaddr:get_status() ~= "waiting" end, "resolver")
resolver:close()

-- HTTP: the exchange, and a download's file, are the I/O thread's and a helper's
local hserver = assert(net.create_server("127.0.0.1", 0))
local body = string.rep("b", 50000)
local function serve()
  local c
  spin_until(function() c = hserver:accept() return c end, "http accept")
  spin_until(function() return c:read_until("\r\n\r\n") ~= "" end, "http request")
  c:write("HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body)
  return c
end
local req = assert(net.http_request({url = "http://127.0.0.1:" .. hserver:get_port() .. "/x", keepalive = false}))
local hc = serve()
local got = {}
spin_until(function()
  local d = req:read()
  if d and d ~= "" then got[#got + 1] = d end
  return d == nil
end, "http body")
assert(table.concat(got) == body and req:get_response() == 200)
req:get_progress()
req:close()
hc:close()
local out = dir .. "/download.bin"
local dl = assert(net.http_request({url = "http://127.0.0.1:" .. hserver:get_port() .. "/y", output = out,
  keepalive = false}))
hc = serve()
spin_until(function() return dl:get_status() ~= "waiting" end, "http download")
assert(dl:get_status() == "success")
dl:close()
hc:close()
hserver:close()

net.get_cacert_path()
net.get_stats()
server:close()

io.stderr:write("SLUICE-AUDIT-END\n")
print("owner calls done")
