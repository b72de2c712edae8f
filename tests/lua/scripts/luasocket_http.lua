-- luasocket_http: a program written for LuaSocket only (socket.http, ltn12, and a
-- hand-made HTTP/1.0 GET on a raw socket), for socket_spec. It prints what it gets,
-- one line per exchange; socket_spec runs it once with Debian's LuaSocket and once
-- with sluice.socket as `socket`, and compares the two outputs.
-- Usage: luasocket_http.lua BASE_URL   (tests/tools/http_test_server.py serving a
-- folder with page.txt)
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"

local base = assert(arg[1], "usage: luasocket_http.lua BASE_URL")
local host, port = base:match("^http://([^:/]+):(%d+)")
port = tonumber(port)

-- 32-bit FNV-1a, so that bodies can be compared without printing them.
local function hash(s)
  if not s then return "-" end
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return string.format("%08x", h)
end

local function show(...)
  local t = table.pack(...)
  for i = 1, t.n do t[i] = tostring(t[i]) end
  print(table.concat(t, "\t"))
end

-- Simple interface: body, code, headers, status line.
for _, path in ipairs { "/page.txt", "/chunked/page.txt", "/close/page.txt",
                        "/redirect/2/page.txt", "/status/404", "/nothing-here" } do
  local body, code, headers, status = http.request(base .. path)
  show("get", path, code, status, body and #body, hash(body), headers and headers["content-length"])
end

-- Generic interface: a POST with an LTN12 source, the reply into an LTN12 sink.
local parts = {}
local ok, code, headers = http.request {
  url = base .. "/echo", method = "POST",
  source = ltn12.source.string("posted body"),
  headers = { ["content-length"] = 11, ["content-type"] = "text/plain", ["user-agent"] = "conformance" },
  sink = ltn12.sink.table(parts),
}
local echoed = table.concat(parts)
show("post", ok, code, headers and headers["content-type"], echoed:match("^[^\r\n]*"),
  echoed:find("posted body", 1, true) ~= nil)

-- A refused connection through socket.http (a port just freed).
local spare = assert(socket.bind("127.0.0.1", 0))
local _, free_port = spare:getsockname()
spare:close()
show("refused", http.request("http://127.0.0.1:" .. free_port .. "/"))

-- HTTP/1.0 by hand on a raw client: status line, headers until the empty line,
-- then the body until the server closes.
local c = assert(socket.connect(host, port))
show("connect", tostring(c):match("^tcp{%a+}"), c:getpeername() == host)
c:settimeout(10)
show("send", c:send("GET /page.txt HTTP/1.0\r\nHost: " .. host .. "\r\nConnection: close\r\n\r\n"))
local status = c:receive("*l")
show("status", status)
local length
while true do
  local line, err = c:receive()
  if not line then show("header error", err) break end
  if line == "" then break end
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name and name:lower() == "content-length" then length = tonumber(value) end
end
local head = c:receive(10)
local rest, err, partial = c:receive("*a")
local body = head .. (rest or partial)
show("body", #body, length, hash(body), err)
show("after end", c:receive("*a"))
show("after end line", c:receive())
local received, sent = c:getstats()
show("stats", received > #body, sent)
show("close", c:close(), c:close())
show("after close", c:send("x"))
