-- tls_bulk_spec: data through verified TLS connections: 64 MiB each way through a TLS
-- echo server with random write and read sizes, backpressure through the encryption
-- layer, the end of a stream (close_notify: the data, then nil, then "closed"; a stream
-- cut without close_notify: the data, then an error with code "tls"), our close()
-- sending close_notify, and interop with `openssl s_server` (TLS 1.2; TLS 1.3 when the
-- engine has it, else a clear protocol-version failure).
-- Servers: tests/tools/tls_echo.py, openssl s_server -rev. PKI: tests/tools/mkcerts.sh.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

local certs

local function open_verified(host, port, extra)
  local opts = { ca_file = certs.ca }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local conn = assert(net.open_tcp(host, port, opts))
  local status, msg, code = h.wait_status(conn, 10000)
  assert.are.equal("success", status, string.format("%s (%s)", tostring(msg), tostring(code)))
  return conn
end

-- Read until the end of the stream, checking the source pattern. Returns the byte
-- count and the final read's message and code.
local function read_pattern(conn, timeout_ms)
  local check = h.pattern_checker()
  local n, msg, code = h.read_all(conn, function(s)
    local ok, err = check:feed(s)
    assert(ok, err)
  end, timeout_ms or 60000, 64 * 1024)
  return n, msg, code
end

describe("tls bulk", function()
  local echo, echo6

  setup(function()
    certs = h.tls_certs()
    echo = h.start_tls_server("echo")
    echo6 = h.start_tls_server("echo", nil, { ipv6 = true })
  end)

  teardown(function()
    h.stop_all()
  end)

  it("returns 64 MiB of random bytes intact through a verified TLS echo", function()
    local total = h.scaled(64 * h.MiB)
    local conn = open_verified("sluice-v4.test", echo.port)
    h.echo_transfer(conn, total, { timeout_ms = 300000 })
    assert.are.equal("", conn:read(1))   -- nothing more than we sent
    assert.are.equal(0, conn:wait_until_drained(10000))
    conn:close()
    assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
  end)

  it("returns data intact over IPv6", function()
    local conn = open_verified("sluice-v6.test", echo6.port)
    h.echo_transfer(conn, h.scaled(8 * h.MiB))
    conn:close()
  end)

  it("accepts writes while the handshake runs and sends them after it", function()
    local conn = assert(net.open_tcp("sluice-v4.test", echo.port, { ca_file = certs.ca }))
    local msg = "written before the handshake\n"
    assert.are.equal(#msg, conn:write(msg))
    assert.are.equal(msg, h.read_n(conn, #msg, 10000))
    assert.are.equal("success", (conn:get_status()))
    conn:close()
  end)

  it("pushes back when the peer does not read, and delivers everything after", function()
    local conn = open_verified("sluice-v4.test", echo.port)
    -- write without reading: the echo server blocks on sending back, stops reading,
    -- and our send buffer fills up (write returns 0 for a while)
    local block = h.random_bytes(256 * 1024)
    local check = h.echo_checker()
    local zero_since
    local full = h.wait_for(function()
      local n = assert(conn:write(block))
      if n > 0 then
        check:push(n == #block and block or block:sub(1, n))
        zero_since = nil
      elseif not zero_since then
        zero_since = net.clock()
      elseif net.clock() - zero_since > 0.3 then
        return true
      end
    end, 60000, 5)
    assert.is_true(full, "write never stayed full")
    assert.is_true(conn:get_pending_writes() > 0)
    assert.is_true(check.pending > 2 * h.MiB, "only " .. check.pending .. " bytes accepted")
    -- now read it all back; the pending bytes drain on the way
    local deadline = net.clock() + 60
    while check.pending > 0 do
      local s = assert(conn:read(256 * 1024))
      if #s > 0 then assert(check:feed(s)) else
        assert(net.clock() < deadline, "timed out with " .. check.pending .. " bytes pending")
        net.wait(10)
      end
    end
    assert.are.equal(0, conn:wait_until_drained(10000))
    assert.are.equal(0, conn:get_pending_writes())
    conn:close()
  end)

  -- One TLS stream flat out (decrypting or encrypting as fast as the I/O thread can)
  -- must not keep it from other connections: a ping-pong beside it goes on.
  it("keeps other connections moving while a TLS stream runs flat out either way", function()
    local echo_peer = h.start_peer("echo")
    local pp = assert(net.open_tcp("127.0.0.1", echo_peer.port, { nodelay = true }))
    assert.are.equal("success", h.wait_status(pp))
    local source = h.start_tls_server("source", "64G")
    local sink = h.start_tls_server("sink")
    local block = string.rep("0123456789abcdef", 16384)   -- 256 KiB
    for _, case in ipairs { { source, "download" }, { sink, "upload" } } do
      local tls = assert(net.open_tcp("sluice-v4.test", case[1].port,
        { buffer_size = 4 * h.MiB, ssl = { ca_file = certs.ca } }))
      assert.are.equal("success", h.wait_status(tls, 10000))
      local worst, rounds, moved = 0, 0, 0
      local stop = net.clock() + 2
      while net.clock() < stop do
        local t0 = net.clock()
        assert.are.equal(1, pp:write("."))
        repeat
          if case[2] == "download" then
            moved = moved + #assert(tls:read(4 * h.MiB))
          else
            moved = moved + assert(tls:write(block))
          end
          local got = assert(pp:read(1))
          if got == "" then net.wait(1) end
        until got == "." or net.clock() - t0 > 10
        worst, rounds = math.max(worst, net.clock() - t0), rounds + 1
      end
      print(string.format("# %s: %d ping-pongs beside %.0f MB of TLS, worst %.1f ms", case[2], rounds,
        moved / 1e6, worst * 1000))
      assert.is_true(worst < 2, string.format("a ping-pong waited %.1f s behind the TLS %s", worst, case[2]))
      tls:close()
    end
    pp:close()
  end)

  it("ends a stream at the peer's close_notify: data, then nil, then closed", function()
    local size = h.scaled(16 * h.MiB, h.MiB)
    local source = h.start_tls_server("source", tostring(size))
    local conn = open_verified("sluice-v4.test", source.port)
    local n, msg, code = read_pattern(conn)
    assert.are.equal(size, n, tostring(msg))
    assert.is_nil(msg)
    assert.is_nil(code)
    -- and for good
    assert.are.same({}, { conn:read(1) })
    assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
    conn:close()
    source:stop()
  end)

  it("reports a stream cut without close_notify as an error after the data", function()
    local size = h.scaled(4 * h.MiB, 256 * h.KiB)
    local source = h.start_tls_server("truncate", tostring(size))
    -- (no wait for "success": the whole stream may be in before we look)
    local conn = assert(net.open_tcp("sluice-v4.test", source.port, { ca_file = certs.ca }))
    local n, msg, code = read_pattern(conn)
    assert.are.equal(size, n, tostring(msg))
    assert.are.equal("string", type(msg))
    assert.are.equal("tls", code, msg)
    assert.truthy(msg:find("^tls 127%.0%.0%.1:" .. source.port .. ": "), msg)
    local status, smsg, scode = conn:get_status()
    assert.are.equal("failure", status)
    assert.are.equal("tls", scode, smsg)
    local s, _, c = conn:read(1)
    assert.is_nil(s)
    assert.are.equal("tls", c)
    conn:close()
    source:stop()
  end)

  -- The sink server's verdicts so far: array of "BYTES ok|mismatch-at-N close_notify|eof".
  local function sink_results(server)
    local t = {}
    for _, line in ipairs(server:lines()) do
      local r = line:match("^sink (.*)$")
      if r then t[#t + 1] = r end
    end
    return t
  end

  it("keeps the status at success until the data before a truncation is read", function()
    -- as a plain connection keeps "success" until the data before the peer's FIN is
    -- read: a frame loop that checks get_status() before read() must not lose it
    local size = 100000
    local source = h.start_tls_server("truncate", tostring(size))
    local conn = assert(net.open_tcp("sluice-v4.test", source.port, { ca_file = certs.ca }))
    assert.is_true(h.wait_for(function() return conn:available() == size end, 10000))
    h.sleep(200)   -- the FIN is in by now
    local status, msg = conn:get_status()
    assert.are.equal("success", status, msg)
    -- nothing more can be sent; if write says so, it says why
    local n, wm, wc = conn:write("x")
    if n == nil then
      assert.are.equal("string", type(wm))
      assert.truthy(#wm > 0, "write failed with an empty message")
      assert.are.equal("tls", wc)
    end
    local data = assert(conn:read(size + 1))
    assert.are.equal(h.pattern(0, size), data)
    local s, m, c = conn:read(1)
    assert.is_nil(s)
    assert.are.equal("tls", c, m)
    assert.are.same({ "failure", m, "tls" }, { conn:get_status() })
    conn:close()
    source:stop()
  end)

  it("sends close_notify on close(), after everything written", function()
    local sink = h.start_tls_server("sink")
    -- a tiny stream, and one that is still being sent when close() is called
    for i, size in ipairs({ 5, h.scaled(8 * h.MiB, h.MiB) }) do
      local conn = open_verified("sluice-v4.test", sink.port)
      assert.is_true(h.write_all(conn, h.pattern(0, size), 60000))
      conn:close()
      assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
      local results = h.wait_for(function()
        local r = sink_results(sink)
        if #r >= i then return r end
      end, 30000)
      assert.truthy(results, "the server never saw the end of the stream: " .. sink:stderr())
      assert.are.equal(size .. " ok close_notify", results[i])
    end
    sink:stop()
  end)

  it("sends close_notify on close() after an echo exchange", function()
    local server = h.start_tls_server("echo")
    local conn = open_verified("sluice-v4.test", server.port)
    assert.is_true(h.write_all(conn, "bye\n"))
    assert.are.equal("bye\n", h.read_n(conn, 4, 10000))
    conn:close()
    local seen = h.wait_for(function()
      local err = server:stderr()
      return err:find("end: ", 1, true) and err
    end, 10000)
    assert.truthy(seen, "the server never saw the end of the stream")
    assert.truthy(seen:find("end: close_notify", 1, true), seen)
    server:stop()
  end)

  describe("with openssl s_server", function()
    it("does a TLS 1.2 handshake and a small exchange", function()
      local srv = h.start_s_server({ tls1_2 = true })
      local conn = open_verified("sluice-v4.test", srv.port)
      local info = assert(conn:get_tls_info())
      assert.are.equal("TLSv1.2", info.version)
      assert.truthy(info.peer_subject:find("CN=sluice-v4.test", 1, true), info.peer_subject)
      assert.is_true(h.write_all(conn, "hello sluice\n"))
      assert.are.equal(("hello sluice"):reverse(), h.read_line(conn, 10000))
      assert.is_true(h.write_all(conn, "0123456789\n"))
      assert.are.equal("9876543210", h.read_line(conn, 10000))
      conn:close()
      srv:stop()
    end)

    it("connects by IP literal and over IPv6", function()
      local srv = h.start_s_server({ tls1_2 = true })
      local conn = open_verified("127.0.0.1", srv.port)
      assert.is_true(h.write_all(conn, "abc\n"))
      assert.are.equal("cba", h.read_line(conn, 10000))
      conn:close()
      srv:stop()
      local srv6 = h.start_s_server({ tls1_2 = true, ipv6 = true })
      conn = open_verified("sluice-v6.test", srv6.port)
      assert.is_true(h.write_all(conn, "v6\n"))
      assert.are.equal("6v", h.read_line(conn, 10000))
      conn:close()
      srv6:stop()
    end)

    it("speaks TLS 1.3 when the engine has it, else fails clearly", function()
      local srv = h.start_s_server({ tls1_3 = true })
      if h.tls13_supported() then
        local conn = open_verified("sluice-v4.test", srv.port)
        assert.are.equal("TLSv1.3", conn:get_tls_info().version)
        assert.is_true(h.write_all(conn, "thirteen\n"))
        assert.are.equal("neetriht", h.read_line(conn, 10000))
        conn:close()
        conn = open_verified("sluice-v4.test", srv.port, { min_version = "tls1.3" })
        assert.are.equal("TLSv1.3", conn:get_tls_info().version)
        conn:close()
      else
        local conn, msg, code = net.open_tcp("sluice-v4.test", srv.port,
          { ca_file = certs.ca, min_version = "tls1.3" })
        assert.is_nil(conn)
        assert.are.equal("string", type(msg))
        assert.are.equal("tls", code, msg)
        conn = assert(net.open_tcp("sluice-v4.test", srv.port, { ca_file = certs.ca }))
        local status
        status, msg, code = h.wait_status(conn, 10000)
        assert.are.equal("failure", status)
        assert.are.equal("tls", code, msg)
        assert.truthy(msg:find("^tls 127%.0%.0%.1:" .. srv.port .. ": handshake failed: "), msg)
        assert.truthy(msg:find("protocol version", 1, true), msg)
        conn:close()
      end
      srv:stop()
    end)
  end)
end)
