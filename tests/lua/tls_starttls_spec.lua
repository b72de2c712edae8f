-- tls_starttls_spec: conn:starttls() upgrades a plain connection. Against
-- tests/tools/starttls_server.py (a line protocol: "220 ready", ECHO, STARTTLS, then
-- TLS with the good certificate): plain exchange, STARTTLS, starttls() ->
-- "waiting" -> "success", echo inside TLS, orderly end. Bytes written before starttls()
-- go out in plain text first; bytes written after it go out encrypted even when close()
-- follows in the same frame (the server logs what reached it), also on a connection
-- older than connect_timeout; verification applies; misuse returns nil, message.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

describe("starttls", function()
  local certs, server, server6

  setup(function()
    certs = h.tls_certs()
    server = h.start_starttls_server()
    server6 = h.start_starttls_server({ ipv6 = true })
  end)

  teardown(function()
    h.stop_all()
  end)

  local function line(conn)
    local l, msg, code = h.read_line(conn, 10000)
    assert(l, string.format("no line: %s (%s)", tostring(msg), tostring(code)))
    return l
  end

  local function send(conn, text)
    assert.is_true(h.write_all(conn, text .. "\r\n"))
  end

  -- Connect in plain text and read the greeting.
  local function plain(host, port)
    local conn = assert(net.open_tcp(host, port))
    assert.are.equal("success", conn:wait_until_connected(10000))
    assert.are.equal("220 ready", line(conn))
    assert.is_nil(conn:get_tls_info())
    return conn
  end

  local function upgrade(conn, opts)
    assert.is_true(conn:starttls(opts))
    -- back to waiting at once; a stalled caller may find the handshake already done,
    -- but never the plain connection's "success" without TLS
    local now = conn:get_status()
    assert.truthy(now == "waiting" or (now == "success" and conn:get_tls_info()), now)
    local ip, _, family = conn:get_peer()   -- the peer stays known while the handshake runs
    local addr = conn:get_address()
    assert.truthy(family == "unix" or (addr and addr:get_ip() == ip), now)
    local status, msg, code = h.wait_status(conn, 10000)
    assert.are.equal("success", status, string.format("%s (%s)", tostring(msg), tostring(code)))
    local tls_line = line(conn)
    assert.truthy(tls_line:match("^230 tls TLSv1%.[23]$"), tls_line)
    local info = assert(conn:get_tls_info())
    assert.are.equal(tls_line:match("(TLSv%S+)$"), info.version)
    assert.truthy(info.peer_subject:find("CN=sluice-v4.test", 1, true), info.peer_subject)
  end

  it("upgrades after a plain exchange and echoes inside TLS", function()
    local conn = plain("sluice-v4.test", server.port)
    send(conn, "ECHO plain text")
    assert.are.equal("250 plain text", line(conn))
    send(conn, "STARTTLS")
    assert.are.equal("220 go ahead", line(conn))
    upgrade(conn, { ca_file = certs.ca })
    for i = 1, 20 do
      local text = "line " .. i .. " " .. string.rep("x", i * 37)
      send(conn, text)
      assert.are.equal(text, line(conn))
    end
    -- a bigger chunk through the upgraded connection
    local big = {}
    for i = 1, 2000 do big[i] = string.format("%05d %s", i, string.rep("y", i % 100)) end
    assert.is_true(h.write_all(conn, table.concat(big, "\r\n") .. "\r\n"))
    for i = 1, 2000 do assert.are.equal(big[i], line(conn)) end
    -- orderly end: the server answers, sends close_notify and closes
    send(conn, "QUIT")
    assert.are.equal("221 bye", line(conn))
    local s, msg, code
    assert.truthy(h.wait_for(function()
      s, msg, code = conn:read(100)
      return s ~= ""
    end, 10000))
    assert.is_nil(s, s)
    assert.is_nil(msg)
    assert.is_nil(code)
    assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
    conn:close()
  end)

  it("sends bytes written before starttls() in plain text first", function()
    local conn = plain("sluice-v4.test", server.port)
    send(conn, "ECHO before")
    assert.are.equal("250 before", line(conn))
    -- no answer comes to STARTTLS-NOW: the server starts TLS right after the line, so
    -- the line must reach it in plain text before our ClientHello
    assert.are.equal(#"STARTTLS-NOW\r\n", conn:write("STARTTLS-NOW\r\n"))
    upgrade(conn, { ca_file = certs.ca })
    send(conn, "after")
    assert.are.equal("after", line(conn))
    conn:close()
  end)

  -- What the server logged for the line `secret`: "tls" (it came inside TLS), "plain"
  -- (something else than a TLS record followed STARTTLS-NOW), or nil (not yet).
  local function secret_seen(secret)
    for _, l in ipairs(server:lines()) do
      if l == "tls-line " .. secret then return "tls" end
      if l:find("^plain%-after%-starttls ") and l:find(secret, 1, true) then return "plain" end
    end
  end

  -- starttls(), a write and close() in one frame: the I/O thread may take them as one
  -- batch of requests; the handshake must still come before the bytes.
  local function upgrade_write_close(conn, secret)
    assert.are.equal(#"STARTTLS-NOW\r\n", conn:write("STARTTLS-NOW\r\n"))
    assert.are.equal(0, conn:wait_until_drained(10000))
    assert.is_true(conn:starttls({ verify = false }))
    assert.are.equal(#secret + 2, conn:write(secret .. "\r\n"))
    conn:close()
    local seen = h.wait_for(function() return secret_seen(secret) end, 10000)
    assert.are.equal("tls", seen, "the server saw " .. tostring(seen))
  end

  it("encrypts what is written between starttls() and close() in the same frame", function()
    for i = 1, 20 do
      upgrade_write_close(plain("127.0.0.1", server.port), "SECRET-" .. i)
    end
  end)

  it("gives the handshake of a closing connection its own connect_timeout", function()
    local conns = {}
    for i = 1, 20 do
      conns[i] = assert(net.open_tcp("127.0.0.1", server.port, { connect_timeout = 2000 }))
      assert.are.equal("success", conns[i]:wait_until_connected(10000))
      assert.are.equal("220 ready", line(conns[i]))
    end
    h.sleep(2500)   -- older than connect_timeout: their first deadline is past
    for i, conn in ipairs(conns) do upgrade_write_close(conn, "LATE-SECRET-" .. i) end
  end)

  it("upgrades over IPv6 and by IP literal", function()
    local conn = plain("sluice-v6.test", server6.port)
    send(conn, "STARTTLS")
    assert.are.equal("220 go ahead", line(conn))
    upgrade(conn, { ca_file = certs.ca })
    send(conn, "v6")
    assert.are.equal("v6", line(conn))
    conn:close()
    conn = plain("127.0.0.1", server.port)
    send(conn, "STARTTLS")
    assert.are.equal("220 go ahead", line(conn))
    upgrade(conn, { ca_file = certs.ca })
    conn:close()
  end)

  it("upgrades over a Unix socket, checking the name localhost, never the path", function()
    local path = h.temp_dir() .. "/starttls.sock"
    local unix = h.start_starttls_server({ unix = path })
    local conn = assert(net.open_unix(path))
    assert.are.equal("success", conn:wait_until_connected(10000))
    assert.are.equal("220 ready", line(conn))
    send(conn, "STARTTLS")
    assert.are.equal("220 go ahead", line(conn))
    upgrade(conn, { ca_file = certs.ca })
    conn:close()
    unix:stop()
  end)

  it("verifies the certificate against the host or server_name", function()
    local conn = plain("sluice-v4.test", server.port)
    send(conn, "STARTTLS")
    assert.are.equal("220 go ahead", line(conn))
    assert.is_true(conn:starttls({ ca_file = certs.ca, server_name = "other.test" }))
    local status, msg, code = h.wait_status(conn, 10000)
    assert.are.equal("failure", status)
    assert.are.equal("tls-verify", code, msg)
    assert.are.equal(string.format(
      "tls 127.0.0.1:%d: certificate not trusted (wrong name: certificate is not for other.test)",
      server.port), msg)
    conn:close()
    -- the default CA bundle does not know the test CA
    conn = plain("sluice-v4.test", server.port)
    send(conn, "STARTTLS")
    assert.are.equal("220 go ahead", line(conn))
    assert.is_true(conn:starttls())
    status, msg, code = h.wait_status(conn, 10000)
    assert.are.equal("failure", status)
    assert.are.equal("tls-verify", code, msg)
    conn:close()
    -- verify = false
    conn = plain("sluice-v4.test", server.port)
    send(conn, "STARTTLS")
    assert.are.equal("220 go ahead", line(conn))
    assert.is_true(conn:starttls({ verify = false }))
    status, msg, code = h.wait_status(conn, 10000)
    assert.are.equal("success", status, msg)
    conn:close()
  end)

  it("refuses to start TLS twice, or on a closed connection", function()
    local conn = plain("sluice-v4.test", server.port)
    send(conn, "STARTTLS")
    assert.are.equal("220 go ahead", line(conn))
    upgrade(conn, { ca_file = certs.ca })
    local ok, msg = conn:starttls({ ca_file = certs.ca })
    assert.is_nil(ok)
    assert.are.equal("string", type(msg))
    -- still fine after the refused call
    send(conn, "still here")
    assert.are.equal("still here", line(conn))
    conn:close()
    ok, msg = conn:starttls({ ca_file = certs.ca })
    assert.is_nil(ok)
    assert.are.equal("string", type(msg))
    -- a connection made with TLS from the start
    local tls = assert(net.open_tcp("sluice-v4.test", server.port, { ca_file = certs.ca }))
    ok, msg = tls:starttls({ ca_file = certs.ca })
    assert.is_nil(ok)
    assert.are.equal("string", type(msg))
    tls:close()
  end)

  it("refuses while bytes that came before it are unread, and after shutdown('send')", function()
    local conn = plain("sluice-v4.test", server.port)
    send(conn, "STARTTLS-INJECT")
    assert.are.equal("220 go ahead", line(conn))
    assert.truthy(h.wait_for(function() return conn:available() > 0 end, 10000))
    local ok, msg, code = conn:starttls({ ca_file = certs.ca })
    assert.is_nil(ok)
    assert.are.equal("protocol", code, msg)
    assert.truthy(msg:find("unread", 1, true), msg)
    assert.are.equal("INJECTED", line(conn))   -- still there, as plain text, for the owner to judge
    conn:close()
    conn = plain("sluice-v4.test", server.port)
    assert.is_true(conn:shutdown("send"))
    ok, msg = conn:starttls({ ca_file = certs.ca })
    assert.is_nil(ok)
    assert.truthy(msg:find("shut", 1, true), msg)
    conn:close()
  end)

  it("refuses while a read_lsp message that began in plain text is partly read", function()
    -- its head and first bytes came before the upgrade: the rest must not come from TLS
    local conn = plain("sluice-v4.test", server.port)
    send(conn, "STARTTLS-LSP")
    assert.are.equal("220 go ahead", line(conn))
    assert.truthy(h.wait_for(function()
      assert.is_false(conn:read_lsp())   -- gathers the 2,000,000-byte message: not whole yet
      return conn:available() == 0
    end, 10000))
    local ok, msg, code = conn:starttls({ ca_file = certs.ca })
    assert.is_nil(ok)
    assert.are.equal("protocol", code, msg)
    assert.truthy(msg:find("partly read", 1, true), msg)
    conn:close()
  end)

  it("times out (connect_timeout) when the plain text before it never goes: the peer takes nothing", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local conn, peer = h.connect_pair(srv, "127.0.0.1", { connect_timeout = 500 })
    peer:pause_read()
    -- write until nothing more is taken anywhere: net's queue full, and it stays as
    -- full for a while (a slow I/O thread may still be filling the kernel's buffers)
    local chunk, last, still = string.rep("p", 1 << 20), -1, 0
    assert.truthy(h.wait_for(function()
      local n = conn:write(chunk)
      local p = conn:get_pending_writes()
      still = (n == 0 and p == last) and still + 1 or 0
      last = p
      return still >= 6
    end, 20000))
    assert.is_true(conn:starttls({ verify = false }))
    local status, msg, code = h.wait_failure(conn, 10000)
    assert.are.same({ "failure", "timeout" }, { status, code }, msg)
    assert.truthy(msg:find("starttls", 1, true) and msg:find("connect_timeout", 1, true), msg)
    conn:close()
    peer:close()
    srv:close()
  end)

  it("never hands over plain text that came after starttls() as if it came through TLS", function()
    local conn = plain("sluice-v4.test", server.port)
    send(conn, "STARTTLS-LATE")
    assert.are.equal("220 go ahead", line(conn))
    assert.is_true(conn:starttls({ ca_file = certs.ca }))
    local status, msg, code = h.wait_status(conn, 10000)
    assert.are.equal("failure", status, msg)
    assert.truthy(code == "protocol" or code == "tls", tostring(code) .. " " .. tostring(msg))
    assert.is_nil((conn:read(100)))
    conn:close()
  end)

  it("fails on plain text that came after starttls() before the I/O thread took it, handing none over", function()
    -- the I/O thread holds the request until the late plain text (0.3 s after the
    -- go-ahead) is in: the check at the request, not the handshake, must catch it
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      local port, ca = ...
      local conn = assert(net.open_tcp("sluice-v4.test", tonumber(port)))
      assert(conn:wait_until_connected(10000) == "success")
      local function line()
        local t, got = net.clock() + 10, ""
        repeat
          got = got .. assert(conn:read(1))
          if got:sub(-2) == "\r\n" then return got:sub(1, -3) end
          net.wait(10)
        until net.clock() > t
      end
      assert(line() == "220 ready")
      assert(conn:write("STARTTLS-LATE\r\n") == 15)
      assert(line() == "220 go ahead")
      net._hold_requests(1500)
      assert(conn:starttls({ ca_file = ca }))
      local t = net.clock() + 1
      while net.clock() < t do
        assert(conn:read(100) == "", "plain text handed over")
        net.wait(20)
      end
      local status, msg, code = conn:wait_until_connected(10000)
      io.write(string.format("%s|%s|%s|%s", status, msg, code, tostring(conn:read(100))))
    ]], { SLUICE_TEST_HOOKS = 1 }, tostring(server.port), certs.ca)
    assert.is_true(ok, out .. err)
    local status, msg, code, after = out:match("^(%w+)|(.-)|(%w+)|(%w+)$")
    assert.are.same({ "failure", "protocol", "nil" }, { status, code, after }, out)
    assert.truthy(msg:find("^tls %S+: 15 bytes came in plain text after starttls%(%) %(injected%?%)$"), msg)
  end)

  it("raises on bad option types", function()
    local conn = plain("sluice-v4.test", server.port)
    for _, o in ipairs({ { verify = "no" }, { ca_file = 5 }, { alpn = "h2" }, 42 }) do
      local ok, err = pcall(function() return conn:starttls(o) end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("bad argument", 1, true), tostring(err))
    end
    -- still usable in plain text
    send(conn, "ECHO ok")
    assert.are.equal("250 ok", line(conn))
    conn:close()
  end)
end)
