-- server_spec: servers made with net.create_server: ephemeral and given ports, the
-- dual-stack wildcard and IP literals, accept, 200 concurrent echo clients made with
-- this API (IPv4 and IPv6, 1 MiB each, checked by content), TLS servers (openssl
-- s_client and this API's own TLS client, client certificates), closing, and bad input.
-- The test drives both the server and its clients in one frame loop.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

local HAVE_V6 = h.ipv6_loopback()

-- Wait until `conn` fails (e.g. a refused connect); returns status, message, code.
local function wait_failure(conn, timeout_ms)
  return h.wait_status(conn, timeout_ms or 10000)
end

-- Exchange one line through an accepted/client pair (both made with this API).
local function ping(client, accepted, text)
  text = text or "ping"
  assert(h.write_all(client, text))
  assert.are.equal(text, h.read_n(accepted, #text, 10000))
  assert(h.write_all(accepted, text:upper()))
  assert.are.equal(text:upper(), h.read_n(client, #text, 10000))
end

describe("server", function()
  after_each(function()
    h.stop_all()
  end)

  describe("listening", function()
    it("binds an ephemeral port when asked for port 0 and reports it", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local port = srv:get_port()
      assert.are.equal("integer", math.type(port))
      assert.is_true(port > 0 and port <= 65535)
      local ip, lport, family = srv:get_local_address()
      assert.are.same({ "127.0.0.1", port, "inet" }, { ip, lport, family })
      assert.are.equal(string.format("net.server(127.0.0.1:%d, listening)", port), tostring(srv))
      srv:close()
    end)

    it("binds the port it is given", function()
      local port = h.closed_port()
      local srv = assert(net.create_server("127.0.0.1", port))
      assert.are.equal(port, srv:get_port())
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      ping(client, accepted)
      client:close()
      accepted:close()
      srv:close()
    end)

    it("takes a number as the first argument as the port (dual-stack wildcard)", function()
      local port = h.closed_port()
      local srv = assert(net.create_server(port))
      assert.are.equal(port, srv:get_port())
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      ping(client, accepted)
      client:close()
      accepted:close()
      srv:close()
    end)

    it("listens on the dual-stack wildcard for nil and for \"::\": IPv4 and IPv6 clients both connect", function()
      for _, any in ipairs { false, "::" } do
        local srv = assert(net.create_server(any or nil, 0))
        local ip, port, family = srv:get_local_address()
        assert.are.equal(srv:get_port(), port)
        assert.are.equal("::", ip)
        assert.are.equal("inet6", family)
        local hosts = { "127.0.0.1" }
        if HAVE_V6 then hosts[2] = "::1" end
        for _, host in ipairs(hosts) do
          local client, accepted = h.connect_pair(srv, host)
          ping(client, accepted, "hello over " .. host)
          client:close()
          accepted:close()
        end
        srv:close()
      end
    end)

    it("binds an IPv4 literal: IPv4 clients connect, IPv6 ones are refused", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      ping(client, accepted)
      client:close()
      accepted:close()
      if HAVE_V6 then
        local c6 = assert(net.open_tcp("::1", srv:get_port()))
        local status, msg, code = wait_failure(c6)
        assert.are.equal("failure", status, msg)
        assert.are.equal("refused", code, msg)
        c6:close()
      end
      srv:close()
    end)

    it("binds an IPv6 literal: IPv6 clients connect, IPv4 ones are refused", function()
      if not HAVE_V6 then return pending("no IPv6 loopback") end
      local srv = assert(net.create_server("::1", 0))
      local ip, port, family = srv:get_local_address()
      assert.are.same({ "::1", srv:get_port(), "inet6" }, { ip, port, family })
      assert.are.equal(string.format("net.server([::1]:%d, listening)", port), tostring(srv))
      local client, accepted = h.connect_pair(srv, "::1")
      ping(client, accepted)
      client:close()
      accepted:close()
      local c4 = assert(net.open_tcp("127.0.0.1", srv:get_port()))
      local status, msg, code = wait_failure(c4)
      assert.are.equal("failure", status, msg)
      assert.are.equal("refused", code, msg)
      c4:close()
      srv:close()
    end)

    it("binds a resolved address object", function()
      local addr = assert(net.resolve_address("127.0.0.1"))
      assert.are.equal("success", addr:wait_until_resolved(5000))
      local srv = assert(net.create_server(addr, 0))
      local ip, _, family = srv:get_local_address()
      assert.are.equal("127.0.0.1", ip)
      assert.are.equal("inet", family)
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      ping(client, accepted)
      client:close()
      accepted:close()
      srv:close()
    end)

    it("frees its port at once on close: a new server can bind it right away", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local port = srv:get_port()
      for i = 1, 20 do
        srv:close()
        local msg
        srv, msg = net.create_server("127.0.0.1", port)
        assert(srv, string.format("round %d: %s", i, tostring(msg)))
      end
      srv:close()
    end)

    it("reuses a port left in TIME_WAIT by default (reuseaddr = true)", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local port = srv:get_port()
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      ping(client, accepted)
      -- the server side closes first, so the TIME_WAIT socket holds 127.0.0.1:port
      accepted:close()
      assert.is_true(h.wait_for(function() return client:read(1) == nil end, 10000) ~= nil)
      client:close()
      srv:close()
      -- TIME_WAIT lasts a minute: retrying for 2 s only waits for the closes to finish
      local again, msg
      h.wait_for(function()
        again, msg = net.create_server("127.0.0.1", port)
        return again
      end, 2000, 50)
      assert(again, msg)
      assert.are.equal(port, again:get_port())
      local c2, a2 = h.connect_pair(again, "127.0.0.1")
      ping(c2, a2)
      c2:close()
      a2:close()
      again:close()
    end)
  end)

  describe("accept", function()
    it("returns nil when no connection is waiting", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local c, msg = srv:accept()
      assert.is_nil(c)
      assert.is_nil(msg)
      srv:close()
    end)

    it("gives full connections whose endpoints match the client's", function()
      local srv = assert(net.create_server(nil, 0))
      local hosts = { { "127.0.0.1", "inet" } }
      if HAVE_V6 then hosts[2] = { "::1", "inet6" } end
      for _, case in ipairs(hosts) do
        local host, fam = case[1], case[2]
        local client, accepted = h.connect_pair(srv, host)
        assert.are.equal("success", accepted:get_status())
        local cip, cport, cfam = client:get_local_address()
        local pip, pport, pfam = accepted:get_peer()
        assert.are.equal(cport, pport)
        assert.are.equal(host, cip)
        assert.are.equal(fam, cfam)
        -- a dual-stack server sees IPv4 clients as IPv4 (not ::ffff:127.0.0.1)
        assert.are.equal(host, pip)
        assert.are.equal(fam, pfam)
        local sip, sport = client:get_peer()
        assert.are.equal(host, sip)
        assert.are.equal(srv:get_port(), sport)
        local lip, lport = accepted:get_local_address()
        assert.are.equal(host, lip)
        assert.are.equal(srv:get_port(), lport)
        local shown = fam == "inet6" and string.format("net.tcp([%s]:%d, success)", host, pport)
          or string.format("net.tcp(%s:%d, success)", host, pport)
        assert.are.equal(shown, tostring(accepted))
        assert.are.equal(host, accepted:get_address():get_ip())
        ping(client, accepted)
        -- the client's orderly close reaches the accepted connection as EOF
        client:close()
        assert.is_true(h.wait_for(function() return accepted:read(100) == nil end, 10000) ~= nil)
        assert.are.same({ "failure", "closed", "closed" }, { accepted:get_status() })
        accepted:close()
      end
      srv:close()
    end)

    it("refuses starttls on an accepted connection: only a client starts TLS", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      local ok, msg, code = accepted:starttls({ verify = false })
      assert.is_nil(ok)
      assert.are.equal("invalid", code, msg)
      assert.matches("server-side STARTTLS is not supported", msg, 1, true)
      ping(client, accepted)   -- still plain and usable
      client:close()
      accepted:close()
      srv:close()
    end)

    it("applies the connection options to accepted connections", function()
      local srv = assert(net.create_server("127.0.0.1", 0, { nodelay = true, keepalive = true }))
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      assert.is_true(accepted:get_option("nodelay"))
      assert.is_truthy(accepted:get_option("keepalive"))
      assert.is_false(client:get_option("nodelay"))
      client:close()
      accepted:close()
      srv:close()
    end)

    -- 200 clients made with this API, half over IPv4 and half over IPv6 when there is
    -- IPv6, against one dual-stack server; every frame: accept, echo what arrived,
    -- write the next part of every client's stream, read and check what came back.
    it("echoes 1 MiB each for 200 concurrent clients over IPv4 and IPv6", function()
      local CLIENTS = 200
      local SIZE = h.scaled(h.MiB, 64 * h.KiB)
      local pool = h.random_bytes(2 * SIZE)
      local srv = assert(net.create_server(nil, 0))
      local svc = h.echo_service(srv)
      local clients = {}
      for i = 1, CLIENTS do
        local host = (HAVE_V6 and i % 2 == 0) and "::1" or "127.0.0.1"
        local conn = assert(net.open_tcp(host, srv:get_port()))
        clients[i] = h.stream_client(conn, pool, math.random(0, SIZE), SIZE)
      end
      local t0 = net.clock()
      local done_count = 0
      local frames = h.run_frames(function()
        local progressed = svc:step()
        done_count = 0
        for _, cl in ipairs(clients) do
          if not cl.done and cl:step() then progressed = true end
          if cl.done then done_count = done_count + 1 end
        end
        return done_count == CLIENTS, progressed
      end, 240000, function()
        return string.format("%d of %d clients done, %d accepted, errors: %s", done_count,
          CLIENTS, svc.accepted, table.concat(svc.errors, "; "))
      end)
      local secs = net.clock() - t0
      assert.are.equal(CLIENTS, svc.accepted)
      assert.are.same({}, svc.errors)
      -- every client closes; the server sees each EOF and closes its side
      for _, cl in ipairs(clients) do
        assert.are.equal(SIZE, cl.received)
        cl.conn:close()
      end
      h.run_frames(function()
        local p = svc:step()
        return svc.finished == CLIENTS, p
      end, 30000, function() return svc.finished .. " of " .. CLIENTS .. " finished" end)
      assert.are.same({}, svc.errors)
      srv:close()
      print(string.format("\n# server: %d clients x %d KiB echoed in %.2f s (%d frames)",
        CLIENTS, SIZE // 1024, secs, frames))
    end)
  end)

  describe("closing", function()
    it("keeps accepted connections alive after server:close(), refuses new clients", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local port = srv:get_port()
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      srv:close()
      assert.truthy(tostring(srv):find("^net%.server%("))
      ping(client, accepted, "still here")
      local late = assert(net.open_tcp("127.0.0.1", port))
      local status, msg, code = wait_failure(late)
      assert.are.equal("failure", status, msg)
      assert.are.equal("refused", code, msg)
      late:close()
      client:close()
      accepted:close()
    end)

    it("is idempotent, and accept on a closed server returns nil, message, 'closed'", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      srv:close()
      srv:close()
      local c, msg, code = srv:accept()
      assert.is_nil(c)
      assert.is_string(msg)
      assert.are.equal("closed", code)
    end)

    it("frees the port when the server is garbage collected or goes out of scope", function()
      local port
      do
        local srv <close> = assert(net.create_server("127.0.0.1", 0))
        port = srv:get_port()
      end
      local c = assert(net.open_tcp("127.0.0.1", port))
      local status, msg, code = wait_failure(c)
      assert.are.equal("failure", status, msg)
      assert.are.equal("refused", code, msg)
      c:close()

      local srv2 = assert(net.create_server("127.0.0.1", 0))
      port = srv2:get_port()
      srv2 = nil   -- luacheck: ignore
      local refused = h.wait_for(function()
        collectgarbage()
        collectgarbage()
        local probe = net.open_tcp("127.0.0.1", port)
        local st, _, cd = h.wait_status(probe, 5000)
        probe:close()
        return st == "failure" and cd == "refused"
      end, 10000, 50)
      assert.is_true(refused == true, "the port still accepts after the server was collected")
    end)
  end)

  describe("TLS", function()
    local certs

    setup(function()
      certs = h.tls_certs()
    end)

    local function tls_server(host, extra)
      local ssl = { cert_file = certs:pem("good"), key_file = certs:key("good") }
      for k, v in pairs(extra or {}) do ssl[k] = v end
      return assert(net.create_server(host, 0, { ssl = ssl }))
    end

    -- One line from openssl s_client, echoed by the test's own loop, which then closes
    -- the connection (so s_client ends).
    local cases = { { "IPv4", "127.0.0.1", "127.0.0.1", "sluice-v4.test" } }
    if HAVE_V6 then cases[2] = { "IPv6", nil, "[::1]", "sluice-v6.test" } end
    for _, case in ipairs(cases) do
      local label, bind, connect_host, name = case[1], case[2], case[3], case[4]
      it("interoperates with openssl s_client over " .. label, function()
        local srv = tls_server(bind)
        local line = "hello from s_client over " .. label .. "\n"
        local input = os.tmpname()
        local f = assert(io.open(input, "wb"))
        f:write(line)
        f:close()
        local proc = h.spawn("openssl s_client", string.format(
          "%s s_client -connect %s -CAfile %s -servername %s -verify_hostname %s -verify_return_error -quiet",
          h.shell_quote(h.openssl), h.shell_quote(connect_host .. ":" .. srv:get_port()),
          h.shell_quote(certs.ca), name, name), { stdin = input })
        local conn, got, echoed, closed = nil, "", false, false
        local ok, err = pcall(h.run_frames, function()
          local progressed = false
          if not conn then
            conn = srv:accept()
            progressed = conn ~= nil
          end
          if conn and not echoed then
            local data, msg = conn:read(4096)
            assert(data, "server read: " .. tostring(msg))
            if #data > 0 then
              got, progressed = got .. data, true
              if got:find("\n", 1, true) then
                assert(h.write_all(conn, got))
                echoed = true
              end
            end
          end
          if echoed and not closed and conn:get_pending_writes() == 0 then
            conn:close()
            closed = true
          end
          return closed and not proc:alive(), progressed
        end, 20000, function()
          return string.format("accepted %s, got %q, s_client alive %s; stderr: %s",
            tostring(conn), got, tostring(proc:alive()), proc:stderr())
        end)
        local out, errs = proc:stdout(), proc:stderr()
        proc:stop()
        os.remove(input)
        srv:close()
        assert(ok, err)
        assert.are.equal(line, got)
        assert.truthy(out:find(line, 1, true), "s_client printed: " .. out .. "\nstderr: " .. errs)
      end)
    end

    it("serves this API's own TLS clients over IPv4 and IPv6", function()
      local srv = tls_server(nil)
      local svc = h.echo_service(srv)
      local pool = h.random_bytes(512 * h.KiB)
      local clients = {}
      local names = { "sluice-v4.test" }
      if HAVE_V6 then names[2] = "sluice-v6.test" end
      for i, name in ipairs(names) do
        local conn = assert(net.open_tcp(name, srv:get_port(), { ca_file = certs.ca }))
        clients[i] = h.stream_client(conn, pool, i * 1000, 256 * h.KiB)
      end
      h.run_frames(function()
        local progressed, done = svc:step(), true
        for _, cl in ipairs(clients) do
          if not cl.done then
            if cl:step() then progressed = true end
            done = done and cl.done
          end
        end
        return done, progressed
      end, 60000, function() return "errors: " .. table.concat(svc.errors, "; ") end)
      for _, cl in ipairs(clients) do
        local info = cl.conn:get_tls_info()
        assert.is_table(info)
        assert.truthy(info.version:find("TLS", 1, true))
        cl.conn:close()
      end
      h.run_frames(function()
        local p = svc:step()
        return svc.finished == #clients, p
      end, 20000)
      assert.are.same({}, svc.errors)
      srv:close()
    end)

    it("shows an accepted TLS connection as waiting until its handshake is done", function()
      local srv = tls_server("127.0.0.1")
      local client = assert(net.open_tcp("sluice-v4.test", srv:get_port(), { ca_file = certs.ca }))
      local accepted = assert(h.accept_one(srv))
      local first = accepted:get_status()
      assert.truthy(first == "waiting" or first == "success", first)
      -- bytes written before the handshake ends are delivered after it
      assert.is_true(accepted:write("early") == 5)
      assert.are.equal("early", h.read_n(client, 5, 10000))
      assert.are.equal("success", h.wait_status(accepted))
      assert.are.equal("success", h.wait_status(client))
      client:close()
      accepted:close()
      srv:close()
    end)

    it("drops a client that never finishes its handshake after handshake_timeout", function()
      local srv = assert(net.create_server("127.0.0.1", 0, { handshake_timeout = 300,
        ssl = { cert_file = certs:pem("good"), key_file = certs:key("good") } }))
      local client = assert(net.open_tcp("127.0.0.1", srv:get_port()))   -- plain: says nothing
      local accepted = assert(h.accept_one(srv))
      local status, msg, code = h.wait_status(accepted, 10000)
      assert.are.equal("failure", status, msg)
      assert.are.equal("timeout", code, msg)
      assert.matches("^tls handshake 127%.0%.0%.1:%d+: timed out after 300 ms %(handshake_timeout%)$", msg)
      client:close()
      accepted:close()
      srv:close()
      assert.has_error(function() net.create_server("127.0.0.1", 0, { handshake_timeout = 0 }) end)
    end)

    it("requires a client certificate with verify = true", function()
      local srv = tls_server("127.0.0.1", { ca_file = certs.ca, verify = true })
      local svc = h.echo_service(srv)
      -- without a certificate: the handshake fails on both sides
      local anon = assert(net.open_tcp("sluice-v4.test", srv:get_port(), { ca_file = certs.ca }))
      anon:write("x")
      local status, msg
      h.run_frames(function()
        local p = svc:step()
        status, msg = anon:get_status()
        if status == "success" then
          -- TLS 1.3 clients may finish first; the server's refusal then ends the stream
          local d, m = anon:read(10)
          if d == nil then status, msg = "failure", m or "closed" end
        end
        return status == "failure", p
      end, 20000, function() return tostring(status) .. " " .. tostring(msg) end)
      anon:close()
      -- with the test CA's client certificate: echoed
      local conn = assert(net.open_tcp("sluice-v4.test", srv:get_port(), {
        ca_file = certs.ca, cert_file = certs:pem("client"), key_file = certs:key("client") }))
      local cl = h.stream_client(conn, h.random_bytes(64 * h.KiB), 0, 32 * h.KiB)
      h.run_frames(function()
        local p = svc:step()
        return cl.done, cl:step() or p
      end, 20000)
      conn:close()
      srv:close()
      svc:close_all()
    end)

    it("calls a client's self-signed certificate self-signed", function()
      local srv = tls_server("127.0.0.1", { ca_file = certs.ca, verify = true })
      local client = assert(net.open_tcp("sluice-v4.test", srv:get_port(), {
        ca_file = certs.ca, cert_file = certs:pem("selfsigned"), key_file = certs:key("selfsigned") }))
      local accepted = assert(h.accept_one(srv))
      local status, msg, code = h.wait_status(accepted, 10000)
      assert.are.equal("failure", status, msg)
      assert.are.equal("tls-verify", code, msg)
      assert.matches("certificate not trusted (self-signed", msg, 1, true)
      client:close()
      accepted:close()
      srv:close()
    end)

    it("tells a certificate meant for another use apart: tls-verify, saying which use", function()
      -- a client's certificate (clientAuth only) presented by a server (Python's: ours
      -- would not take it for serving)
      local peer = h.start_tls_server("echo", nil, { cert = "client" })
      local c = assert(net.open_tcp("127.0.0.1", peer.port, { ca_file = certs.ca, server_name = "sluice test client" }))
      local status, msg, code = h.wait_status(c, 10000)
      assert.are.same({ "failure", "tls-verify" }, { status, code }, msg)
      assert.matches("certificate not trusted (not meant for TLS servers)", msg, 1, true)
      c:close()
      peer:stop()
      -- a server's certificate (serverAuth only) presented by a client
      local srv = tls_server("127.0.0.1", { ca_file = certs.ca, verify = true })
      c = assert(net.open_tcp("sluice-v4.test", srv:get_port(), {
        ca_file = certs.ca, cert_file = certs:pem("good"), key_file = certs:key("good") }))
      local a = assert(h.accept_one(srv))
      status, msg, code = h.wait_status(a, 10000)
      assert.are.same({ "failure", "tls-verify" }, { status, code }, msg)
      assert.matches("certificate not trusted (not meant for TLS clients)", msg, 1, true)
      c:close(); a:close(); srv:close()
    end)

    it("keeps serving after a client's handshake fails", function()
      local srv = tls_server("127.0.0.1")
      local svc = h.echo_service(srv)
      -- this client does not trust the server (no CA given, and the system bundle does not
      -- hold the test CA): it aborts the handshake
      local bad = assert(net.open_tcp("sluice-v4.test", srv:get_port(), { ca_file = certs:pem("other-ca") }))
      local status, msg, code
      h.run_frames(function()
        local p = svc:step()
        status, msg, code = bad:get_status()
        return status == "failure", p
      end, 20000)
      assert.are.equal("tls-verify", code, msg)
      bad:close()
      local good = assert(net.open_tcp("sluice-v4.test", srv:get_port(), { ca_file = certs.ca }))
      local cl = h.stream_client(good, h.random_bytes(64 * h.KiB), 0, 16 * h.KiB)
      h.run_frames(function()
        local p = svc:step()
        return cl.done, cl:step() or p
      end, 20000)
      good:close()
      svc:close_all()
      srv:close()
    end)
  end)

  describe("bad input", function()
    it("returns nil, message when the port is in use (by another process or by us)", function()
      local peer = h.start_peer("echo")
      local srv, msg, code = net.create_server("127.0.0.1", peer.port)
      assert.is_nil(srv)
      assert.truthy(tostring(msg):find("Address already in use", 1, true), msg)
      assert.is_string(code)
      -- the dual-stack wildcard needs the port on 127.0.0.1 too
      srv, msg = net.create_server(nil, peer.port)
      assert.is_nil(srv)
      assert.truthy(tostring(msg):find("Address already in use", 1, true), msg)
      peer:stop()
      local ours = assert(net.create_server("127.0.0.1", 0))
      srv, msg = net.create_server("127.0.0.1", ours:get_port())
      assert.is_nil(srv)
      assert.truthy(tostring(msg):find("Address already in use", 1, true), msg)
      ours:close()
    end)

    it("returns nil, 'Permission denied' for a privileged port without the right", function()
      if h.is_root() then return pending("running as root: privileged ports are allowed") end
      local srv, msg = net.create_server("127.0.0.1", 81)
      assert.is_nil(srv)
      assert.truthy(tostring(msg):find("Permission denied", 1, true), msg)
    end)

    it("raises on impossible ports with the exact message", function()
      for _, port in ipairs({ -1, 65536, 70000, math.mininteger, math.maxinteger }) do
        h.assert_raises("(port must be 0..65535)", function() return net.create_server("127.0.0.1", port) end)
        h.assert_raises("(port must be 0..65535)", function() return net.create_server(nil, port) end)
      end
      h.assert_raises("bad argument #2 to 'create_server'", function() return net.create_server("127.0.0.1", "http") end)
      h.assert_raises("bad argument", function() return net.create_server("127.0.0.1", 1.5) end)
      h.assert_raises("bad argument", function() return net.create_server("127.0.0.1") end)
      h.assert_raises("bad argument", function() return net.create_server() end)
    end)

    it("raises on addresses of the wrong type", function()
      h.assert_raises("bad argument #1 to 'create_server'", function() return net.create_server(true, 0) end)
      h.assert_raises("bad argument #1 to 'create_server'", function() return net.create_server(print, 0) end)
      local peer = h.start_peer("echo")
      local conn = assert(net.open_tcp("127.0.0.1", peer.port))
      h.assert_raises("bad argument #1 to 'create_server'", function() return net.create_server(conn, 0) end)
      conn:close()
    end)

    it("does not listen on a host name or a malformed address", function()
      -- a name would need a lookup (blocking, or racing with the resolver): refused
      -- as nil, message every time
      for _, a in ipairs({ "not an ip", "127.0.0.300", "sluice-v4.test", "localhost" }) do
        for _ = 1, 20 do
          local ok, srv, msg = pcall(net.create_server, a, 0)
          if ok then
            if srv then srv:close() end
            assert.is_nil(srv, a)
            assert.is_string(msg)
          end
          h.sleep(1)
        end
      end
    end)

    it("raises on bad option types and unknown options", function()
      local function bad(opts, text)
        h.assert_raises(text or "bad argument #3 to 'create_server'",
          function() return net.create_server("127.0.0.1", 0, opts) end)
      end
      bad({ backlog = "many" })
      bad({ backlog = -1 })
      bad({ reuseaddr = "yes" })
      bad({ nodelay = 1 })
      bad({ buffer_size = "big" })
      bad({ buffer_size = -5 })
      bad({ idle_timeout = "soon" })
      bad({ ssl = 5 })
      bad({ ssl = { cert_file = 1 } })
      bad({ ssl = { bogus = true } })
      bad({ bogus = true })
      bad({ connect_timeout = 100 })   -- a server connects to nobody
      bad("options")
    end)

    it("fails a TLS server with a missing certificate file, serving nobody without TLS", function()
      -- the files are read off the caller's thread: the server fails a moment later
      local srv = assert(net.create_server("127.0.0.1", 0,
        { ssl = { cert_file = "/nonexistent/cert.pem", key_file = "/nonexistent/key.pem" } }))
      assert(h.wait_for(function() return srv:get_status() == "failure" end, 10000), "the server did not fail")
      local _, msg, code = srv:get_status()
      assert.are.equal("tls", code, msg)
      assert.matches("cert_file /nonexistent/cert.pem", msg, 1, true)
      local c = assert(net.open_tcp("127.0.0.1", srv:get_port(), { verify = false }))
      local status = h.wait_status(c, 10000)
      c:close()
      srv:close()
      assert.are.equal("failure", status)
    end)

    it("fails a TLS server whose key does not belong to its certificate, naming both", function()
      local certs = h.tls_certs()
      local srv = assert(net.create_server("127.0.0.1", 0,
        { ssl = { cert_file = certs:pem("good"), key_file = certs:key("client") } }))
      assert(h.wait_for(function() return srv:get_status() == "failure" end, 10000), "the server did not fail")
      local _, msg, code = srv:get_status()
      assert.are.equal("tls", code, msg)
      assert.matches(("key_file %s: it does not belong to cert_file %s"):format(certs:key("client"),
        certs:pem("good")), msg, 1, true)
      srv:close()
    end)
  end)
end)

describe("module", function()
  it("lists the local addresses, loopback included", function()
    local list, msg = net.get_local_addresses()
    assert(list, msg)
    assert.is_table(list)
    assert.is_true(#list >= 1)
    local seen = {}
    for _, a in ipairs(list) do
      assert.are.equal("success", a:get_status())
      seen[a:get_ip()] = true
    end
    assert.is_true(seen["127.0.0.1"], "127.0.0.1 missing")
    if HAVE_V6 then assert.is_true(seen["::1"], "::1 missing") end
  end)
end)
