-- tls_verify_spec: certificate verification. A good certificate (by name, IPv4 and IPv6,
-- and by IP literal against its IP SANs) connects and reports its session; expired,
-- not-yet-valid, wrong-name, self-signed and unknown-CA certificates fail with
-- "tls-verify" and the reason; verify = false and server_name behave as documented;
-- the CA bundle comes from ca_file / ca_path / set_cacert_path / SSL_CERT_FILE /
-- SSL_CERT_DIR, and with none at all a verifying connection fails closed.
-- Servers: tests/tools/tls_echo.py "info" (first line tells the SNI, ALPN and version
-- it saw, then echo), one per certificate. PKI: tests/tools/mkcerts.sh.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

-- The server's first line: { sni = ..., alpn = ..., version = ..., client = ... }.
local function read_info(conn)
  local line, msg, code = h.read_line(conn, 10000)
  assert(line, string.format("no info line: %s (%s)", tostring(msg), tostring(code)))
  local t = {}
  for k, v in line:gmatch("(%w+)=(%S+)") do t[k] = v end
  assert(t.sni and t.version, "bad info line: " .. line)
  return t
end

-- Connect, wait for the handshake; returns conn, status, message, code.
local function connect(host, port, ssl)
  local conn = assert(net.open_tcp(host, port, ssl))
  return conn, h.wait_status(conn, 10000)
end

local function assert_success(conn, status, msg, code)
  assert.are.equal("success", status, string.format("%s (%s)", tostring(msg), tostring(code)))
  return conn
end

-- One line through the echo.
local function assert_echo(conn, text)
  text = text or "hello through tls"
  assert.is_true(h.write_all(conn, text .. "\n"))
  assert.are.equal(text, h.read_line(conn, 10000))
end

-- Lua source run in a child process. Each argument is either "HOST PORT [CA]" (connect
-- with TLS: `true`, or { ca_file = CA }, or { verify = false } when CA is "noverify")
-- and print "status<TAB>message<TAB>code", or "CMD lua-code" (run it; `net` is a global
-- there) and print "cacert<TAB>get_cacert_path()". It starts with a "cacert" line.
local CHILD = [[
net = require "net"
local function show(...)
  local t = table.pack(...)
  for i = 1, t.n do t[i] = tostring(t[i]) end
  io.write(table.concat(t, "\t"), "\n")
end
show("cacert", net.get_cacert_path())
for i = 1, #arg do
  local code = arg[i]:match("^CMD (.*)$")
  if code then
    assert(load(code))()
    show("cacert", net.get_cacert_path())
  else
    local host, port, ca = arg[i]:match("^(%S+) (%d+) ?(%S*)$")
    local ssl = true
    if ca == "noverify" then ssl = { verify = false }
    elseif ca ~= "" then ssl = { ca_file = ca } end
    local conn = assert(net.open_tcp(host, math.tointeger(tonumber(port)), ssl))
    local status, msg, code
    local deadline = net.clock() + 10
    repeat
      status, msg, code = conn:wait_until_connected(100)
    until status ~= "waiting" or net.clock() > deadline
    show(status, msg, code)
    conn:close()
  end
end
]]

-- Runs CHILD with env and the arguments; returns the array of result lines, each an
-- array of fields ({ status, message, code } or { "cacert", path }).
local function run_child(env, ...)
  local ok, out, err = h.run_lua_child(CHILD, env, ...)
  assert(ok, "child failed: " .. err .. out)
  local lines = {}
  for line in out:gmatch("([^\n]*)\n") do
    local t = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do t[#t + 1] = field end
    lines[#lines + 1] = t
  end
  return lines
end

describe("tls verification", function()
  local certs, servers = nil, {}

  setup(function()
    certs = h.tls_certs()
    for _, name in ipairs({ "good", "expired", "future", "wrongname", "dnsonly",
                            "selfsigned", "unknownca", "wild", "wildtop" }) do
      servers[name] = h.start_tls_server("info", nil, { cert = name })
    end
    servers.good6 = h.start_tls_server("info", nil, { cert = "good", ipv6 = true })
    servers.alpn = h.start_tls_server("info", nil, { cert = "good", alpn = { "h2", "http/1.1" } })
    servers.long = h.start_tls_server("info", nil, { cert = "longsubject", alpn = { string.rep("p", 200) } })
  end)

  teardown(function()
    h.stop_all()
  end)

  it("accepts a good certificate by name, sends SNI and reports the session", function()
    local port = servers.good.port
    local conn = assert(net.open_tcp("sluice-v4.test", port, { ca_file = certs.ca }))
    -- before the handshake is done there is no session to report
    local info0 = conn:get_tls_info()
    local status0 = conn:get_status()
    if status0 == "waiting" then assert.is_nil(info0) end
    assert_success(conn, h.wait_status(conn))
    local seen = read_info(conn)
    assert.are.equal("sluice-v4.test", seen.sni)
    local info = conn:get_tls_info()
    assert.are.equal("table", type(info))
    assert.truthy(tostring(info.version):match("^TLSv1%.[23]$"), tostring(info.version))
    assert.are.equal(seen.version, info.version)
    assert.are.equal("string", type(info.cipher))
    assert.truthy(#info.cipher > 0)
    assert.is_nil(info.alpn)
    assert.are.equal("string", type(info.peer_subject))
    assert.truthy(info.peer_subject:find("CN=sluice-v4.test", 1, true), info.peer_subject)
    assert_echo(conn)
    assert.are.equal(string.format("net.tcp(127.0.0.1:%d, success)", port), tostring(conn))
    conn:close()
  end)

  it("verifies with `true` and ca_file over IPv6 by name", function()
    local conn = assert_success(connect("sluice-v6.test", servers.good6.port, { ca_file = certs.ca }))
    assert.are.equal("sluice-v6.test", read_info(conn).sni)
    assert.are.equal("::1", conn:get_address():get_ip())
    assert_echo(conn)
    conn:close()
  end)

  it("has no TLS info on a plain connection", function()
    local peer = h.start_peer("echo")
    local conn = assert(net.open_tcp("127.0.0.1", peer.port))
    assert.are.equal("success", conn:wait_until_connected(10000))
    assert.is_nil(conn:get_tls_info())
    conn:close()
    peer:stop()
  end)

  it("checks an IP literal against the certificate's IP addresses, without SNI", function()
    local conn = assert_success(connect("127.0.0.1", servers.good.port, { ca_file = certs.ca }))
    assert.are.equal("-", read_info(conn).sni)
    assert_echo(conn)
    conn:close()
    conn = assert_success(connect("::1", servers.good6.port, { ca_file = certs.ca }))
    assert.are.equal("-", read_info(conn).sni)
    conn:close()
    -- an address given as server_name, with a trailing dot too, is still an address
    conn = assert_success(connect("127.0.0.1", servers.good.port, { ca_file = certs.ca, server_name = "127.0.0.1." }))
    assert.are.equal("-", read_info(conn).sni)
    conn:close()
    -- a certificate with the name but no IP address: fine by name, wrong by IP
    conn = assert_success(connect("sluice-v4.test", servers.dnsonly.port, { ca_file = certs.ca }))
    conn:close()
    local port = servers.dnsonly.port
    local status, msg, code
    conn, status, msg, code = connect("127.0.0.1", port, { ca_file = certs.ca })
    assert.are.equal("failure", status)
    assert.are.equal("tls-verify", code)
    assert.are.equal(string.format(
      "tls 127.0.0.1:%d: certificate not trusted (wrong name: certificate is not for 127.0.0.1)", port), msg)
    conn:close()
  end)

  it("takes a wildcard for one label, never for a whole top-level domain", function()
    local o = { ca_file = certs.ca }
    local conn = assert_success(connect("127.0.0.1", servers.wild.port, { ca_file = certs.ca, server_name = "a.wild.test" }))
    assert.are.equal("a.wild.test", read_info(conn).sni)
    conn:close()
    for _, case in ipairs({ { "wild", "a.b.wild.test" }, { "wild", "wild.test" }, { "wildtop", "a.test" } }) do
      o.server_name = case[2]
      local c, status, msg, code = connect("127.0.0.1", servers[case[1]].port, o)
      assert.are.same({ "failure", "tls-verify" }, { status, code }, case[2] .. ": " .. tostring(msg))
      assert.matches("wrong name: certificate is not for " .. case[2]:gsub("%.", "%%."), msg)
      c:close()
    end
  end)

  it("takes a name with a trailing dot as the same name, and sends it in SNI without the dot", function()
    local conn = assert_success(connect("127.0.0.1", servers.good.port, { ca_file = certs.ca, server_name = "sluice-v4.test." }))
    assert.are.equal("sluice-v4.test", read_info(conn).sni)
    conn:close()
  end)

  local bad = {
    { "expired", "expired" },
    { "future", "not yet valid" },
    { "wrongname", "wrong name: certificate is not for sluice-v4.test" },
    { "selfsigned", "self-signed" },
    { "unknownca", "unknown CA" },
  }
  for _, case in ipairs(bad) do
    local name, reason = case[1], case[2]
    it("rejects the " .. name .. " certificate with the reason", function()
      local port = servers[name].port
      local conn, status, msg, code = connect("sluice-v4.test", port, { ca_file = certs.ca })
      assert.are.equal("failure", status, tostring(msg))
      assert.are.equal("tls-verify", code, tostring(msg))
      assert.are.equal(string.format("tls 127.0.0.1:%d: certificate not trusted (%s)", port, reason), msg)
      -- the failure sticks, and reads and writes report it
      assert.are.same({ "failure", msg, "tls-verify" }, { conn:get_status() })
      local s, m, c = conn:read(10)
      assert.is_nil(s)
      assert.are.equal("string", type(m))
      assert.are.equal("tls-verify", c)
      local n, wm, wc = conn:write("x")
      assert.is_nil(n)
      assert.are.equal("string", type(wm))
      assert.are.equal("tls-verify", wc)
      assert.is_nil(conn:get_tls_info())
      conn:close()
    end)
  end

  it("joins several reasons", function()
    -- self-signed, and not for 127.0.0.1 (its only name is sluice-v4.test)
    local port = servers.selfsigned.port
    local conn, status, msg, code = connect("127.0.0.1", port, { ca_file = certs.ca })
    assert.are.equal("failure", status)
    assert.are.equal("tls-verify", code)
    assert.truthy(msg:find("^tls 127%.0%.0%.1:" .. port .. ": certificate not trusted %("), msg)
    assert.truthy(msg:find("wrong name", 1, true), msg)
    assert.truthy(msg:find("self-signed", 1, true), msg)
    assert.truthy(msg:find(", ", 1, true), msg)
    conn:close()
  end)

  it("connects to any certificate with verify = false", function()
    for _, name in ipairs({ "selfsigned", "expired", "wrongname", "unknownca" }) do
      local conn = assert_success(connect("sluice-v4.test", servers[name].port, { verify = false }))
      read_info(conn)
      local info = assert(conn:get_tls_info())
      assert.truthy(info.peer_subject:find("CN=", 1, true), info.peer_subject)
      assert_echo(conn, "unverified " .. name)
      conn:close()
    end
  end)

  it("checks and sends server_name instead of the host", function()
    -- an IP literal with a name: the name is sent as SNI and checked
    local conn = assert_success(connect("127.0.0.1", servers.dnsonly.port,
      { ca_file = certs.ca, server_name = "sluice-v4.test" }))
    assert.are.equal("sluice-v4.test", read_info(conn).sni)
    conn:close()
    conn = assert_success(connect("sluice-v4.test", servers.wrongname.port,
      { ca_file = certs.ca, server_name = "other.test" }))
    assert.are.equal("other.test", read_info(conn).sni)
    assert_echo(conn)
    conn:close()
    local port = servers.good.port
    local status, msg, code
    conn, status, msg, code = connect("sluice-v4.test", port,
      { ca_file = certs.ca, server_name = "nope.test" })
    assert.are.equal("failure", status)
    assert.are.equal("tls-verify", code)
    assert.are.equal(string.format(
      "tls 127.0.0.1:%d: certificate not trusted (wrong name: certificate is not for nope.test)", port), msg)
    conn:close()
  end)

  it("trusts a CA folder given as ca_path, and with ca_file both", function()
    local dir = certs:path("ca-dir")
    assert(os.execute(string.format("mkdir -p %s && cp %s %s/", h.shell_quote(dir),
      h.shell_quote(certs.ca), h.shell_quote(dir))))
    local conn = assert_success(connect("sluice-v4.test", servers.good.port, { ca_path = dir }))
    read_info(conn)
    assert_echo(conn)
    conn:close()
    -- the other CA only: the good certificate is not trusted
    local other = certs:path("other-ca-dir")
    assert(os.execute(string.format("mkdir -p %s && cp %s %s/", h.shell_quote(other),
      h.shell_quote(certs:pem("other-ca")), h.shell_quote(other))))
    local status, msg, code
    conn, status, msg, code = connect("sluice-v4.test", servers.good.port, { ca_path = other })
    assert.are.equal("failure", status)
    assert.are.equal("tls-verify", code, msg)
    conn:close()
    -- ca_file and ca_path together: both are trusted, as OpenSSL and curl take them
    conn = assert_success(connect("sluice-v4.test", servers.good.port, { ca_file = certs:pem("other-ca"), ca_path = dir }))
    conn:close()
    conn = assert_success(connect("sluice-v4.test", servers.good.port, { ca_file = certs.ca, ca_path = other }))
    conn:close()
    -- a ca_path that is a file, or missing, says so
    for _, case in ipairs({ { certs.ca, "not a folder" }, { certs:path("no-such-dir"), "No such file or directory" } }) do
      conn, status, msg, code = connect("sluice-v4.test", servers.good.port, { ca_path = case[1] })
      assert.are.same({ "failure", "tls" }, { status, code }, msg)
      assert.matches("cannot load the CAs from " .. case[1] .. ": " .. case[2], msg, 1, true)
      conn:close()
    end
  end)

  it("fails, and says so, when ca_file cannot be read", function()
    local missing = certs:path("no-such-ca.pem")
    local conn, msg, code = net.open_tcp("sluice-v4.test", servers.good.port, { ca_file = missing })
    if conn then
      local status
      status, msg, code = h.wait_status(conn)
      assert.are.equal("failure", status)
      conn:close()
    end
    assert.are.equal("string", type(msg))
    assert.truthy(code == "tls" or code == "tls-verify", tostring(code))
    assert.truthy(msg:find("no-such-ca.pem", 1, true), msg)
    -- a path of over 1 KiB (beyond ASCII): the message keeps its reason and whole characters
    missing = certs:path(("\xc3\xa9\xc3\xa9/"):rep(250) .. "ca.pem")
    conn = assert(net.open_tcp("sluice-v4.test", servers.good.port, { ca_file = missing }))
    local status
    status, msg, code = h.wait_status(conn)
    conn:close()
    assert.are.same({ "failure", "tls" }, { status, code }, msg)
    assert.is_true(#msg < 192, msg)
    assert.truthy(utf8.len(msg), "not UTF-8: " .. msg)
    assert.matches("^tls 127%.0%.0%.1:%d+: cannot load the CAs from .*%.%.%..*/ca%.pem: %a", msg)
  end)

  it("negotiates ALPN", function()
    local port = servers.alpn.port
    local conn = assert_success(connect("sluice-v4.test", port, { ca_file = certs.ca, alpn = { "h2", "http/1.1" } }))
    assert.are.equal("h2", read_info(conn).alpn)
    assert.are.equal("h2", conn:get_tls_info().alpn)
    conn:close()
    conn = assert_success(connect("sluice-v4.test", port, { ca_file = certs.ca, alpn = { "http/1.1" } }))
    assert.are.equal("http/1.1", read_info(conn).alpn)
    assert.are.equal("http/1.1", conn:get_tls_info().alpn)
    conn:close()
    conn = assert_success(connect("sluice-v4.test", port, { ca_file = certs.ca }))
    assert.are.equal("-", read_info(conn).alpn)
    assert.is_nil(conn:get_tls_info().alpn)
    conn:close()
  end)

  it("gives a long ALPN name whole, and a subject over 1 KiB cut short and marked, never as none", function()
    local long = string.rep("p", 200)
    local conn = assert_success(connect("sluice-v4.test", servers.long.port, { ca_file = certs.ca, alpn = { long } }))
    local info = conn:get_tls_info()
    assert.are.equal(long, info.alpn)
    assert.are.equal(1023, #info.peer_subject)
    assert.matches("^CN=sluice%-v4%.test, O=sluice tests, OU=unit 10 0+, ", info.peer_subject)
    assert.are.equal("...", info.peer_subject:sub(-3))
    conn:close()
  end)

  it("raises on bad option types", function()
    local port = servers.good.port
    for _, opts in ipairs({
      { verify = "yes" }, { server_name = 42 }, { ca_file = {} }, { ca_path = true },
      { cert_file = 1 }, { key_file = false }, { key_password = {} }, { alpn = "h2" },
      { alpn = { 1, 2 } }, { min_version = 12 }, { min_version = "tls9" },
    }) do
      -- called from a Lua function (pcall(net.open_tcp, ...) would name it 'net.open_tcp')
      local ok, err = pcall(function() return net.open_tcp("sluice-v4.test", port, opts) end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("bad argument #3 to 'open_tcp'", 1, true), tostring(err))
    end
  end)

  it("reports the CA bundle in use", function()
    local path = net.get_cacert_path()
    if path ~= nil then
      assert.are.equal("string", type(path))
      local f = io.open(path, "rb")
      assert.truthy(f, "get_cacert_path() names what cannot be opened: " .. path)
      if f then f:close() end
    end
    assert.has_error(function() net.set_cacert_path({}) end)
  end)

  it("fails closed without any CA bundle (child process)", function()
    local port = servers.good.port
    local res = run_child({ SSL_CERT_FILE = "/nonexistent", SSL_CERT_DIR = "/nonexistent" },
      "sluice-v4.test " .. port,                       -- true: no bundle at all
      "sluice-v4.test " .. port .. " noverify",        -- the fix the message suggests
      "sluice-v4.test " .. port .. " " .. certs.ca)    -- or a ca_file
    assert.are.same({ "cacert", "nil" }, res[1])
    local status, msg, code = res[2][1], res[2][2], res[2][3]
    assert.are.equal("failure", status, msg)
    assert.are.equal("tls-verify", code, msg)
    assert.truthy(msg:find("^tls 127%.0%.0%.1:" .. port .. ": "), msg)
    assert.truthy(msg:find("net.set_cacert_path", 1, true), msg)
    assert.truthy(msg:find("verify = false", 1, true), msg)
    assert.are.equal("success", res[3][1], res[3][2])
    assert.are.equal("success", res[4][1], res[4][2])
  end)

  it("honours SSL_CERT_FILE and SSL_CERT_DIR (child process)", function()
    local port = servers.good.port
    local res = run_child({ SSL_CERT_FILE = certs.ca, SSL_CERT_DIR = "/nonexistent" },
      "sluice-v4.test " .. port, "127.0.0.1 " .. servers.unknownca.port)
    assert.are.same({ "cacert", certs.ca }, res[1])
    assert.are.equal("success", res[2][1], res[2][2])
    assert.are.equal("failure", res[3][1])
    assert.are.equal("tls-verify", res[3][3])
    assert.truthy(res[3][2]:find("unknown CA", 1, true), res[3][2])
    local dir = certs:path("cert-dir")
    assert(os.execute(string.format("mkdir -p %s && cp %s %s/", h.shell_quote(dir),
      h.shell_quote(certs.ca), h.shell_quote(dir))))
    res = run_child({ SSL_CERT_FILE = "/nonexistent", SSL_CERT_DIR = dir },
      "sluice-v4.test " .. port)
    assert.are.equal("success", res[2][1], res[2][2])
    -- both set and both there: both are trusted, as OpenSSL takes them
    res = run_child({ SSL_CERT_FILE = certs:pem("other-ca"), SSL_CERT_DIR = dir }, "sluice-v4.test " .. port)
    assert.are.same({ "cacert", certs:pem("other-ca"), dir }, res[1])   -- both named
    assert.are.equal("success", res[2][1], res[2][2])
    -- SSL_CERT_DIR lists folders, as OpenSSL reads it: alone, or beside SSL_CERT_FILE
    local sep = package.config:sub(1, 1) == "\\" and ";" or ":"   -- Windows: ';'
    local list = "/nonexistent" .. sep .. certs:path("empty-dir") .. sep .. dir
    assert(os.execute("mkdir -p " .. h.shell_quote(certs:path("empty-dir"))))
    res = run_child({ SSL_CERT_FILE = false, SSL_CERT_DIR = list }, "sluice-v4.test " .. port)
    assert.are.same({ "cacert", list }, res[1])
    assert.are.equal("success", res[2][1], res[2][2])
    res = run_child({ SSL_CERT_FILE = certs:pem("other-ca"), SSL_CERT_DIR = list }, "sluice-v4.test " .. port)
    assert.are.same({ "cacert", certs:pem("other-ca"), list }, res[1])
    assert.are.equal("success", res[2][1], res[2][2])
    -- one folder whose name holds the separator is that folder, as for OpenSSL
    local odd = certs:path("ca" .. sep .. "dir")
    assert(os.execute(string.format("mkdir -p %s && cp %s %s/", h.shell_quote(odd), h.shell_quote(certs.ca),
      h.shell_quote(odd))))
    res = run_child({ SSL_CERT_FILE = false, SSL_CERT_DIR = odd }, "sluice-v4.test " .. port)
    assert.are.same({ "cacert", odd }, res[1])
    assert.are.equal("success", res[2][1], res[2][2])
  end)

  it("honours SSL_CERT_FILE naming a path beyond ASCII (child process)", function()
    local dir = certs:path("caf\xc3\xa9")
    assert(os.execute(string.format("mkdir -p %s && cp %s %s/ca.pem", h.shell_quote(dir),
      h.shell_quote(certs.ca), h.shell_quote(dir))))
    local res = run_child({ SSL_CERT_FILE = dir .. "/ca.pem", SSL_CERT_DIR = false },
      "sluice-v4.test " .. servers.good.port)
    assert.are.same({ "cacert", dir .. "/ca.pem" }, res[1])
    assert.are.equal("success", res[2][1], res[2][2])
  end)

  it("keeps the bundle set when a new set_cacert_path runs out of memory (child process)", function()
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      local mine, other = ...
      net.set_cacert_path(mine)
      net._fail_allocs(0, 1)
      local set, msg = pcall(net.set_cacert_path, other)
      net._fail_allocs(0, 0)
      print(set, msg, net.get_cacert_path())
    ]], nil, certs.ca, certs:pem("other-ca"))
    assert.is_true(ok, err)
    local set, msg, in_use = out:match("^(%S+)\t([^\t]*)\t([^\n]*)")
    assert.are.equal("false", set, out)
    assert.truthy(msg:find("out of memory (the earlier setting stays)", 1, true), msg)
    assert.are.equal(certs.ca, in_use)
  end)

  it("applies set_cacert_path to later connections (child process)", function()
    local port = servers.good.port
    local set = function(path)
      return "CMD net.set_cacert_path(" .. string.format("%q", path) .. ")"
    end
    local res = run_child({ SSL_CERT_FILE = "/nonexistent", SSL_CERT_DIR = "/nonexistent" },
      "sluice-v4.test " .. port,                   -- no bundle: fails
      set(certs.ca),
      "sluice-v4.test " .. port,                   -- the test CA: success
      set(certs:pem("other-ca")),
      "sluice-v4.test " .. port,                   -- another CA: not trusted
      "sluice-v4.test " .. servers.unknownca.port) -- ...but that one's certificate is
    assert.are.equal("failure", res[2][1])
    assert.are.equal("tls-verify", res[2][3])
    assert.are.same({ "cacert", certs.ca }, res[3])
    assert.are.equal("success", res[4][1], res[4][2])
    assert.are.same({ "cacert", certs:pem("other-ca") }, res[5])
    assert.are.equal("failure", res[6][1])
    assert.are.equal("tls-verify", res[6][3])
    assert.truthy(res[6][2]:find("unknown CA", 1, true), res[6][2])
    assert.are.equal("success", res[7][1], res[7][2])
  end)
end)
