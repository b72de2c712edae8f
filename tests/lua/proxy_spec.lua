-- proxy_spec: TCP connections through proxies (open_tcp's `proxy` option): plain and
-- TLS data through tinyproxy (HTTP CONNECT, with and without Basic auth) and microsocks
-- (SOCKS5, with and without user/password, socks5h and socks5); the target's name never
-- resolved here for http:// and socks5h://, resolved here for socks5://; bytes the
-- target sends with the proxy's answer kept; failures with code "proxy" saying what the
-- proxy answered (wrong credentials, a refused target, garbage, an endless head, a
-- truncated reply, a close mid-handshake); a closed proxy port ("refused"); a silent
-- proxy ended by connect_timeout; malformed proxy URLs raising argument errors.
-- Peers: tinyproxy and microsocks (Debian), tests/tools/fake_proxy.py, peer echo,
-- tests/tools/tls_echo.py; all on 127.0.0.1, started here and stopped by PID.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

local function have(cmd)
  return os.execute("command -v " .. cmd .. " >/dev/null 2>&1") == true
end

-- Opens through `proxy` and waits for the outcome: conn, status, message, code.
local function open(host, port, proxy, extra)
  local opts = { proxy = proxy, connect_timeout = 10000 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local conn = assert(net.open_tcp(host, port, opts))
  return conn, h.wait_status(conn, 15000)
end

local function open_ok(host, port, proxy, extra)
  local conn, status, msg, code = open(host, port, proxy, extra)
  assert.are.equal("success", status, string.format("%s via %s: %s (%s)", host, proxy, tostring(msg), tostring(code)))
  return conn
end

local function open_fails(host, port, proxy, extra)
  local conn, status, msg, code = open(host, port, proxy, extra)
  conn:close()
  assert.are.equal("failure", status, "expected a failure via " .. proxy)
  return msg, code
end

-- A line written comes back (through an echo at the far end).
local function assert_echo(conn, line)
  assert(h.write_all(conn, line .. "\n", 10000))
  assert.are.equal(line, h.read_line(conn, 10000))
end

local tinyproxy, microsocks = h.start_tinyproxy, h.start_microsocks

local FAKE_MODES = { "http-ok", "http-interim", "socks-ok", "http-garbage", "http-oversized", "http-close", "socks-garbage",
  "socks-close", "socks-truncated", "socks-short-refusal", "silent" }

-- One fake_proxy.py serving every mode, each on its own port: fake.port[mode].
local function start_fake()
  local fake = h.start_server("fake_proxy.py", h.shell_quote(h.python) .. " "
    .. h.shell_quote(h.tools .. "fake_proxy.py") .. " " .. table.concat(FAKE_MODES, " "), function(out)
      return out:match("^[%d ]+\n") and 1 or nil
    end)
  fake.ports = {}
  local i = 0
  for p in fake:stdout():match("^([%d ]+)\n"):gmatch("%d+") do
    i = i + 1
    fake.ports[FAKE_MODES[i]] = math.tointeger(tonumber(p))
  end
  return fake
end

-- The handshake lines the fake proxy logged for mode.
local function fake_log(fake, mode)
  local t = {}
  for line in fake:stdout():gmatch("([^\n]*)\n") do
    local m, rest = line:match("^([%w-]+): (.*)$")
    if m == mode then t[#t + 1] = rest end
  end
  return t
end

describe("proxy", function()
  local certs, dir, echo, tls_info, tls_wrong, closed, fake
  local tp, tp_auth, ms, ms_auth

  setup(function()
    certs = h.tls_certs()
    dir = h.temp_dir()
    echo = h.start_peer("echo")
    tls_info = h.start_tls_server("info")
    tls_wrong = h.start_tls_server("echo", nil, { cert = "wrongname" })
    fake = start_fake()
    local ports = { echo.port, tls_info.port, tls_wrong.port }
    if have("tinyproxy") then
      tp = tinyproxy(dir, "open", ports)
      tp_auth = tinyproxy(dir, "auth", ports, "alice s3cret")
    end
    if have("microsocks") then
      ms = microsocks()
      ms_auth = microsocks("-u alice -P s3cret")
    end
    closed = h.closed_port()   -- last: a proxy started after could listen on it (the suite saw one)
  end)

  teardown(function() h.stop_all() end)

  local function http_url(auth) return ("http://%s127.0.0.1:%d"):format(auth or "", (auth and tp_auth or tp).port) end
  local function socks_url(scheme, auth)
    return ("%s://%s127.0.0.1:%d"):format(scheme, auth or "", (auth and ms_auth or ms).port)
  end

  describe("through tinyproxy (HTTP CONNECT)", function()
    local it = have("tinyproxy") and it
      or function(name) pending(name .. ": tinyproxy is not installed (./run.sh deps)") end

    it("carries plain data, and describes target and proxy", function()
      local conn = open_ok("127.0.0.1", echo.port, http_url())
      assert_echo(conn, "hello through CONNECT")
      assert.are.equal(("net.tcp(127.0.0.1:%d via proxy 127.0.0.1:%d, success)"):format(echo.port, tp.port),
        tostring(conn))
      local ip, port = conn:get_peer()
      assert.are.equal("127.0.0.1", ip)
      assert.are.equal(tp.port, port)   -- the socket's other end is the proxy
      conn:close()
    end)

    it("authenticates with Basic credentials from the URL", function()
      local conn = open_ok("127.0.0.1", echo.port, http_url("alice:s3cret@"))
      assert_echo(conn, "authenticated")
      conn:close()
    end)

    it("fails with code proxy and the proxy's status on wrong credentials", function()
      local msg, code = open_fails("127.0.0.1", echo.port, http_url("alice:wrong@"))
      assert.are.equal("proxy", code)
      -- tinyproxy answers 401 where RFC 9110 says 407: either is the proxy's word
      assert.matches(("proxy 127.0.0.1:%d: CONNECT 127.0.0.1:%d refused: 40[17] "):format(tp_auth.port, echo.port),
        msg)
      msg, code = open_fails("127.0.0.1", echo.port, "http://127.0.0.1:" .. tp_auth.port)   -- none at all
      assert.are.equal("proxy", code)
    end)

    it("fails with code proxy when the proxy refuses the target's port", function()
      local msg, code = open_fails("127.0.0.1", closed, http_url())
      assert.are.equal("proxy", code)
      assert.matches("refused: 403", msg, 1, true)
    end)

    it("runs TLS end to end, verifying the target's name", function()
      local conn = open_ok("localhost", tls_info.port, http_url(), { ssl = { ca_file = certs.ca } })
      assert.matches("^sni=localhost ", h.read_line(conn, 10000))
      assert_echo(conn, "secret")
      conn:close()
      local msg, code = open_fails("localhost", tls_wrong.port, http_url(), { ssl = { ca_file = certs.ca } })
      assert.are.equal("tls-verify", code, msg)
    end)
  end)

  describe("through microsocks (SOCKS5)", function()
    local it = have("microsocks") and it
      or function(name) pending(name .. ": microsocks is not installed (./run.sh deps)") end

    it("carries plain data with socks5h and socks5", function()
      for _, scheme in ipairs({ "socks5h", "socks5" }) do
        local conn = open_ok("127.0.0.1", echo.port, socks_url(scheme))
        assert_echo(conn, "hello through " .. scheme)
        conn:close()
      end
    end)

    it("authenticates with user and password", function()
      local conn = open_ok("127.0.0.1", echo.port, socks_url("socks5h", "alice:s3cret@"))
      assert_echo(conn, "authenticated")
      conn:close()
      local msg, code = open_fails("127.0.0.1", echo.port, socks_url("socks5h", "alice:wrong@"))
      assert.are.equal("proxy", code)
      assert.matches("SOCKS5 authentication: rejected the user name and password", msg, 1, true)
      msg, code = open_fails("127.0.0.1", echo.port, "socks5h://127.0.0.1:" .. ms_auth.port)
      assert.are.equal("proxy", code)
      assert.matches("accepts none of the offered authentication methods", msg, 1, true)
    end)

    it("fails with code proxy and the SOCKS reply when the target refuses", function()
      local msg, code = open_fails("127.0.0.1", closed, socks_url("socks5h"))
      assert.are.equal("proxy", code)
      assert.matches(("proxy 127.0.0.1:%d: CONNECT 127.0.0.1:%d refused: "):format(ms.port, closed), msg, 1, true)
    end)

    it("runs TLS end to end, verifying the target's name", function()
      local conn = open_ok("localhost", tls_info.port, socks_url("socks5h"), { ssl = { ca_file = certs.ca } })
      assert.matches("^sni=localhost ", h.read_line(conn, 10000))
      conn:close()
      local msg, code = open_fails("localhost", tls_wrong.port, socks_url("socks5h"), { ssl = { ca_file = certs.ca } })
      assert.are.equal("tls-verify", code, msg)
    end)

    it("upgrades with starttls inside the tunnel", function()
      local conn = open_ok("localhost", tls_info.port, socks_url("socks5h"))
      assert(conn:starttls({ ca_file = certs.ca }))
      assert.are.equal("success", (h.wait_status(conn, 10000)))
      assert.matches("^sni=localhost ", h.read_line(conn, 10000))
      conn:close()
    end)
  end)

  describe("the target's name", function()
    -- proxy-only.invalid is in no hosts file: a lookup here would fail with "dns"
    it("goes to the proxy, unresolved, for http:// and socks5h://", function()
      local hp, sp = fake.ports["http-ok"], fake.ports["socks-ok"]
      local conn = assert(net.open_tcp("proxy-only.invalid", 443, { proxy = "http://u:p@127.0.0.1:" .. hp }))
      assert.are.equal(6, conn:write("early\n"))   -- held until the tunnel is open
      assert.are.equal("BANNER", h.read_line(conn, 10000))   -- sent with the 200: not lost
      assert.are.equal("early", h.read_line(conn, 10000))
      assert_echo(conn, "tunnel")
      conn:close()
      assert.are.same({ "http CONNECT proxy-only.invalid:443 auth=Basic dTpw" }, fake_log(fake, "http-ok"))
      conn = open_ok("proxy-only.invalid", 443, "socks5h://127.0.0.1:" .. sp)
      assert.are.equal("BANNER", h.read_line(conn, 10000))
      assert_echo(conn, "tunnel")
      conn:close()
      conn = open_ok("::1", 8080, "socks5h://127.0.0.1:" .. sp)   -- a literal goes as an address
      conn:close()
      conn = open_ok("sluice-v4.test", 8080, "socks5://127.0.0.1:" .. sp)   -- socks5://: resolved here
      conn:close()
      -- answered after 200 ms: the handshake waits for the lookup before its CONNECT
      conn = open_ok("sluice-slow.test", 8081, "socks5://127.0.0.1:" .. sp)
      conn:close()
      assert.are.same({ "socks atyp=3 host=proxy-only.invalid port=443", "socks atyp=4 host=::1 port=8080",
        "socks atyp=1 host=127.0.0.1 port=8080", "socks atyp=1 host=127.0.0.1 port=8081" },
        fake_log(fake, "socks-ok"))
    end)

    it("must be a host name or an IP address, else open_tcp returns nil, message, invalid", function()
      local before = { http = #fake_log(fake, "http-ok"), socks = #fake_log(fake, "socks-ok") }
      local bad = { "a.test\r\nX-Injected: 1", "a.test\nHost: b", "a b.test", "a.test:443", "a/b",
        "a..test", "", string.rep("a", 254), "a\0b" }
      for _, url in ipairs({ "http://127.0.0.1:" .. fake.ports["http-ok"],
          "socks5h://127.0.0.1:" .. fake.ports["socks-ok"], "socks5://127.0.0.1:" .. fake.ports["socks-ok"] }) do
        for _, host in ipairs(bad) do
          local conn, msg, code = net.open_tcp(host, 443, { proxy = url })
          assert.is_nil(conn, ("%q via %s was taken"):format(host, url))
          assert.are.equal("invalid", code, msg)
          assert.is_false(msg:find("[\r\n]") ~= nil, msg)
        end
      end
      local conn, msg = net.open_tcp("a.test\r\nX-Injected: 1", 443, { proxy = "http://127.0.0.1:1" })
      assert.is_nil(conn)
      assert.matches("the byte 0x0d in the host name", msg, 1, true)
      -- names and literals as they come: the proxy gets them
      for _, host in ipairs({ "under_score.test", "trailing.dot.test.", "UPPER.test", "127.0.0.1", "::1", "[::1]" }) do
        conn = open_ok(host, 443, "http://127.0.0.1:" .. fake.ports["http-ok"])
        conn:close()
      end
      local log = fake_log(fake, "http-ok")
      assert.are.same({ "http CONNECT under_score.test:443 auth=-", "http CONNECT trailing.dot.test.:443 auth=-",
        "http CONNECT UPPER.test:443 auth=-", "http CONNECT 127.0.0.1:443 auth=-",
        "http CONNECT [::1]:443 auth=-", "http CONNECT [::1]:443 auth=-" },
        { table.unpack(log, before.http + 1) })
      assert.are.equal(before.socks, #fake_log(fake, "socks-ok"))
    end)

    it("fails to resolve here for socks5:// when no lookup knows it", function()
      local msg, code = open_fails("proxy-only.invalid", 443, "socks5://127.0.0.1:" .. fake.ports["socks-ok"])
      assert.are.equal("dns", code, msg)
    end)

    it("fails as a direct connect would for socks5:// when it has no address of the family asked for", function()
      local port = fake.ports["socks-ok"]
      local msg, code = open_fails("sluice-v6.test", 443, "socks5://127.0.0.1:" .. port, { family = "inet" })
      assert.are.equal("unreachable", code, msg)
      assert.are.equal(("proxy 127.0.0.1:%d: CONNECT sluice-v6.test:443: the target has no address of "
        .. "the requested family"):format(port), msg)
    end)
  end)

  it("reads past interim (1xx) heads before CONNECT's 200", function()
    local conn = open_ok("sluice-v4.test", 443, "http://127.0.0.1:" .. fake.ports["http-interim"])
    assert.are.equal("BANNER", h.read_line(conn, 10000))
    assert_echo(conn, "through the tunnel")
    conn:close()
  end)

  describe("hostile proxies", function()
    local cases = {
      { "http-garbage", "http", "not an HTTP reply" },
      { "http-oversized", "http", "a reply head over 8192 bytes" },
      { "http-close", "http", "closed the connection during the handshake" },
      { "socks-garbage", "socks5h", "not a SOCKS5 server" },
      { "socks-close", "socks5h", "closed the connection during the handshake" },
      { "socks-truncated", "socks5h", "closed the connection during the handshake" },
    }
    for _, case in ipairs(cases) do
      local mode, scheme, says = case[1], case[2], case[3]
      it(mode .. " fails with code proxy", function()
        local port = fake.ports[mode]
        local msg, code = open_fails("example.test", 443, ("%s://127.0.0.1:%d"):format(scheme, port))
        assert.are.equal("proxy", code, msg)
        assert.matches(("proxy 127.0.0.1:%d: "):format(port), msg, 1, true)
        assert.matches(says, msg, 1, true)
      end)
    end

    it("a connection written to and closed at once ends quietly whatever the proxy answers", function()
      for _, case in ipairs(cases) do
        local conn = assert(net.open_tcp("example.test", 443,
                                         { proxy = ("%s://127.0.0.1:%d"):format(case[2], fake.ports[case[1]]) }))
        conn:write("hello")   -- taken, or refused by a proxy that failed it already
        conn:close()   -- the lingering close goes on through the proxy's reply
      end
      assert.equal(0, h.wait_idle(5000).connections, "a closed connection did not end")
    end)

    it("a SOCKS5 refusal cut short is a refusal at once, not a wait for the timeout", function()
      local port = fake.ports["socks-short-refusal"]
      local t0 = net.clock()
      local msg, code = open_fails("example.test", 443, "socks5h://127.0.0.1:" .. port, { connect_timeout = 10000 })
      assert.are.equal("proxy", code, msg)
      assert.matches("refused: ", msg, 1, true)
      assert.is_true(net.clock() - t0 < 5, "it waited for the timeout")
    end)

    it("a silent proxy ends with connect_timeout", function()
      local port = fake.ports.silent
      local msg, code = open_fails("example.test", 443, "socks5h://127.0.0.1:" .. port, { connect_timeout = 300 })
      assert.are.equal("timeout", code, msg)
      assert.matches(("via proxy 127.0.0.1:%d: timed out after 300 ms"):format(port), msg, 1, true)
    end)

    it("a closed proxy port is refused, naming the proxy", function()
      local msg, code = open_fails("example.test", 443, "http://127.0.0.1:" .. closed)
      assert.are.equal("refused", code)
      assert.matches(("connect proxy 127.0.0.1:%d: "):format(closed), msg, 1, true)
    end)

    it("a proxy name that does not resolve is named as the proxy's", function()
      local msg, code = open_fails("example.test", 443, "http://proxy-only.invalid:3128")
      assert.are.equal("dns", code, msg)
      assert.matches("^connect proxy proxy%-only%.invalid:3128: resolve proxy%-only%.invalid: ", msg)
    end)

    it("socks5://: a target lookup that outlasts connect_timeout says it was resolving", function()
      local port = fake.ports["socks-ok"]
      local msg, code = open_fails("t.hang.test", 443, "socks5://127.0.0.1:" .. port, { connect_timeout = 300 })
      assert.are.equal("timeout", code, msg)
      assert.matches("timed out after 300 ms resolving the name (connect_timeout)", msg, 1, true)
    end)
  end)

  describe("proxy URLs", function()
    it("raise argument errors when malformed or unsupported", function()
      local bad = {
        { "127.0.0.1:3128", "no scheme" },
        { "https://127.0.0.1:3128", "unsupported proxy scheme 'https'" },
        { "ftp://h", "unsupported scheme 'ftp'" },
        { "http://h:99999", "1..65535" },
        { "http://a b", "space" },
        { "http://h/path", "no path" },
        { "socks5://user@h", "1..255" },
        { "http://h\0x", "NUL" },
      }
      for _, b in ipairs(bad) do
        h.assert_raises(b[2], function() net.open_tcp("example.test", 80, { proxy = b[1] }) end)
      end
      h.assert_raises("must be a string", function() net.open_tcp("example.test", 80, { proxy = 1 }) end)
    end)

    it("are refused for Unix sockets", function()
      local conn, msg, code = net.open_unix("/tmp/nothing.sock", { proxy = "http://127.0.0.1:1" })
      assert.is_nil(conn)
      assert.are.equal("invalid", code, msg)
    end)
  end)
end)
