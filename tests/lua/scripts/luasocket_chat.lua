-- luasocket_chat: a line-based chat written for LuaSocket only, for socket_spec: a
-- select-driven server with non-blocking clients relays every line to everyone,
-- then the program walks through the corner cases of LuaSocket's TCP interface
-- (partial reads and timeouts, byte counts with prefixes, send ranges, half-close,
-- "*a", stats, options, closed and refused sockets, protect/try, LTN12 sources and
-- sinks). It prints what it sees; socket_spec runs it with Debian's LuaSocket and
-- with sluice.socket as `socket` and compares the outputs. No arguments.
local socket = require "socket"

-- The reason of a raised error, without the function name (LuaSocket's C functions
-- have none).
local function reason(ok, msg) return ok, tostring(msg):match("%((.*)%)$") or msg end

local function show(...)
  local t = table.pack(...)
  for i = 1, t.n do
    local v = t[i]
    if type(v) == "table" or type(v) == "userdata" then v = tostring(v):match("^tcp{%a+}") or type(v) end
    t[i] = tostring(v)
  end
  print(table.concat(t, "\t"))
end

local server = assert(socket.bind("127.0.0.1", 0))
local ip, port = server:getsockname()
show("server", server, ip, type(port), tonumber(port) > 0, server:getoption("reuseaddr"))
server:settimeout(0)
show("accept none", server:accept())

-- Three clients; the server takes them through select.
local clients, conns = {}, {}
for i = 1, 3 do
  clients[i] = assert(socket.connect("127.0.0.1", port))
  clients[i]:settimeout(5)
end
while #conns < 3 do
  local r, _, err = socket.select({ server }, nil, 5)
  if err then show("select", err) break end
  local c = r[server] and server:accept()
  if c then
    c:settimeout(0)
    conns[#conns + 1] = c
  end
end
show("accepted", #conns, conns[1], conns[1]:getpeername() == "127.0.0.1")

-- Every client says hello; the server relays each line to all.
for i, c in ipairs(clients) do show("send", i, c:send("hello from " .. i .. "\r\n")) end
local relayed = 0
while relayed < 3 do
  local r, _, err = socket.select(conns, nil, 5)
  if err then show("select", err) break end
  for _, c in ipairs(r) do
    local line = c:receive("*l")
    if line then
      relayed = relayed + 1
      for _, d in ipairs(conns) do d:send("[" .. line .. "]\n") end
    end
  end
end
for i, c in ipairs(clients) do
  local got = {}
  for k = 1, 3 do got[k] = c:receive() end
  table.sort(got)
  show("heard", i, table.concat(got, " "))
end

-- Partial lines: a timeout hands back what came; it goes back in as the prefix.
local a, b = clients[1], conns[1]
b:settimeout(0.05)
a:send("abc")
show("arrived", #socket.select({ b }, nil, 5))
show("partial", b:receive("*l"))
socket.sleep(0.05)
local _, err, partial = b:receive()
show("timeout", err, partial)
a:send("def\nrest")
show("joined", b:receive("*l", partial))
b:settimeout(5)
show("count", b:receive(2))
b:settimeout(0.2)
show("count prefix", b:receive(6, "xx"))
b:settimeout(5)
a:send("yz12345678\n")
show("count long prefix", b:receive(2, "longer"))
show("count string", b:receive("3"))
show("dirty", b:dirty())
show("rest line", b:receive())

-- Sending parts of a string.
show("range", a:send("0123456789", 3, 5))
show("negative range", a:send("0123456789", -3))
show("empty range", a:send("0123456789", 5, 4))
show("got", b:receive(6))

-- Half-close: everything up to the end with "*a", then "closed".
a:send("last words\nno newline")
show("shutdown", a:shutdown("send"))
show("line before end", b:receive())
show("all", b:receive("*a"))
show("all again", b:receive("*a"))
show("line at end", b:receive())
show("count at end", b:receive(1))
show("reply after half-close", b:send("still open\n"), a:receive())
local received, sent = b:getstats()
show("stats", received, sent)
show("setstats", b:setstats(100, 200, 0))
received, sent = b:getstats()
show("stats after set", received, sent)

-- Options and timeouts.
show("nodelay", a:setoption("tcp-nodelay", true), a:getoption("tcp-nodelay"))
show("keepalive", a:setoption("keepalive", true), a:getoption("keepalive"))
show("bad option", reason(pcall(a.setoption, a, "no-such-option", true)))
show("timeouts", a:settimeout(1.5), a:gettimeout())
show("total timeout", a:settimeout(2, "t"), a:gettimeout())

-- Closed objects.
show("close", b:close())
show("closed send", b:send("x"))
show("closed receive", b:receive())
show("closed again", b:close())
show("peer gone", a:receive())

-- A refused connection, and a non-blocking connect finished through select.
local spare = assert(socket.bind("127.0.0.1", 0))
local _, free = spare:getsockname()
spare:close()
local refused = socket.tcp()
show("refused", refused:connect("127.0.0.1", free))
show("refused object", refused)
local nb = socket.tcp()
nb:settimeout(0)
-- (a connect on loopback may finish at once, or report "timeout" and finish later)
local nbok, nberr = nb:connect("127.0.0.1", port)
show("nonblocking connect", nbok == 1 or nberr == "timeout")
local _, w = socket.select(nil, { nb }, 5)
show("writable", #w, w[nb] == 1)
show("connect again", nb:connect("127.0.0.1", port))
nb:settimeout(5)
local idle = assert(socket.bind("127.0.0.1", 0))
show("select timeout", socket.select({ idle }, nil, 0))
idle:close()
show("pending connection", socket.select({ server }, nil, 5)[server])
server:settimeout(5)
local nbc = server:accept()
show("accept later", nbc)
show("class checks", reason(pcall(server.receive, server)))
show("class checks", reason(pcall(socket.tcp().send, socket.tcp(), "x")))
show("bad pattern", reason(pcall(nbc.receive, nbc, "*x")))

-- try / protect / newtry / skip
local closed_by_finalizer = false
local f = socket.protect(function()
  local try = socket.newtry(function() closed_by_finalizer = true end)
  try(nb:send("ping\n"))
  local line = try(nbc:receive())
  try(nil, "stop after " .. line)
end)
show("protect", f())
show("finalizer", closed_by_finalizer)
show("protect passes errors", pcall(socket.protect(function() error("plain error", 0) end)))
show("skip", socket.skip(2, "a", "b", "c", "d"))

-- LTN12 through sockets: a sink that sends, a source that reads by length.
local ltn12 = require "ltn12"
local sink = socket.sink("keep-open", nb)
show("pump out", ltn12.pump.all(ltn12.source.string(string.rep("z", 5000)), sink))
local got = {}
local into = ltn12.sink.table(got)
show("pump in", ltn12.pump.all(socket.source("by-length", nbc, 5000), into))
show("pumped", #table.concat(got))
nb:shutdown("send")
got = {}
into = ltn12.sink.table(got)
nbc:send("bye")
nbc:shutdown("send")
show("until closed", ltn12.pump.all(socket.source("until-closed", nb), into), table.concat(got))

for _, c in ipairs(clients) do c:close() end
for _, c in ipairs(conns) do c:close() end
nbc:close()
show("server close", server:close(), server:accept())
