-- stream_spec: the stream helpers of a connection: read_until, shutdown (half-close),
-- get_stats, get_local_address / get_peer, pause_read / resume_read. Against the echo,
-- sink and source peers and against servers made with this API.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

local HAVE_V6 = h.ipv6_loopback()

-- Wait until `conn` has at least n bytes ready to read.
local function wait_available(conn, n, timeout_ms)
  assert(h.wait_for(function() return conn:available() >= n end, timeout_ms or 10000, 5),
    string.format("only %d of %d bytes arrived", conn:available(), n))
end

-- Call read_until until it returns something other than "" (bounded).
local function read_line(conn, delim, max_len, timeout_ms)
  local r
  h.wait_for(function()
    r = table.pack(conn:read_until(delim, max_len))
    return r[1] ~= ""
  end, timeout_ms or 10000, 5)
  return table.unpack(r, 1, r.n)
end

-- Wait until available() has not changed for `quiet_ms`; returns it.
local function settle(conn, quiet_ms)
  local last, since = conn:available(), net.clock()
  h.wait_for(function()
    local a = conn:available()
    if a ~= last then last, since = a, net.clock() end
    return net.clock() - since >= quiet_ms / 1000
  end, 20000, 20)
  return last
end

describe("stream helpers", function()
  local echo

  setup(function()
    echo = h.start_peer("echo")
  end)

  teardown(function()
    h.stop_all()
  end)

  local function open_echo(opts)
    local conn = assert(net.open_tcp("127.0.0.1", echo.port, opts))
    assert.are.equal("success", h.wait_status(conn))
    return conn
  end

  describe("write with a range", function()
    it("writes data:sub(i, j) as string.sub counts, and the rest of a string from where it stopped", function()
      local conn = open_echo()
      local s = "0123456789"
      local cases = { { 3 }, { 3, 5 }, { -3 }, { -3, -2 }, { 0 }, { -20, 2 }, { 5, 40 }, { 8, 3 }, { 11 } }
      local want = {}
      for _, c in ipairs(cases) do
        local part = s:sub(c[1], c[2])
        assert.are.equal(#part, conn:write(s, c[1], c[2]))
        want[#want + 1] = part
      end
      want = table.concat(want)
      wait_available(conn, #want)
      assert.are.equal(want, conn:read(#want))
      -- a string larger than the send buffer, written on from where each write stopped
      local big = h.random_bytes(3 * 1024 * 1024 + 17)
      local sent, got, received = 0, {}, 0
      h.run_frames(function()
        if sent < #big then sent = sent + assert(conn:write(big, sent + 1)) end
        local d = assert(conn:read(1024 * 1024))
        got[#got + 1], received = d, received + #d
        return received == #big, d ~= ""
      end, 30000)
      assert.is_true(table.concat(got) == big, "the bytes differ")
      h.assert_raises("number has no integer representation", function() conn:write(s, 1.5) end)
      conn:close()
    end)
  end)

  describe("read_until", function()
    it("returns \"\" until the delimiter arrives, then the data up to and including it", function()
      local conn = open_echo()
      assert.are.equal("", conn:read_until("\n"))
      assert.are.equal(3, conn:write("abc"))
      wait_available(conn, 3)
      assert.are.equal("", conn:read_until("\n"))
      assert.are.equal(3, conn:available())   -- nothing was taken
      assert.are.equal(1, conn:write("\n"))
      assert.are.equal("abc\n", read_line(conn, "\n"))
      assert.are.equal(0, conn:available())
      conn:close()
    end)

    it("splits several lines that arrived together", function()
      local conn = open_echo()
      local text = "one\ntwo\n\nthree\nfour"
      assert(h.write_all(conn, text))
      wait_available(conn, #text)
      assert.are.equal("one\n", conn:read_until("\n"))
      assert.are.equal("two\n", conn:read_until("\n"))
      assert.are.equal("\n", conn:read_until("\n"))
      assert.are.equal("three\n", conn:read_until("\n"))
      assert.are.equal("", conn:read_until("\n"))
      assert.are.equal("four", conn:read(100))
      conn:close()
    end)

    it("finds a multi-byte delimiter split across arrivals", function()
      local conn = open_echo()
      local head = "HTTP/1.1 200 OK\r\nA: b\r\n\r"
      assert(h.write_all(conn, head))
      wait_available(conn, #head)
      assert.are.equal("", conn:read_until("\r\n\r\n"))
      assert(h.write_all(conn, "\nbody"))
      assert.are.equal("HTTP/1.1 200 OK\r\nA: b\r\n\r\n", read_line(conn, "\r\n\r\n"))
      wait_available(conn, 4)
      assert.are.equal("body", conn:read(10))
      conn:close()
    end)

    it("mixes with read: read takes what read_until left", function()
      local conn = open_echo()
      local text = "head\nbody-without-newline"
      assert(h.write_all(conn, text))
      wait_available(conn, #text)
      assert.are.equal("head\n", conn:read_until("\n"))
      assert.are.equal("body", conn:read(4))
      assert.are.equal("-without-newline", conn:read(100))
      conn:close()
    end)

    it("returns a long line that arrives in many pieces", function()
      local conn = open_echo()
      local line = h.random_bytes(300 * h.KiB):gsub("\n", "x") .. "\n"
      local pos, got = 1, nil
      h.run_frames(function()
        local progressed = false
        if pos <= #line then
          local n = assert(conn:write(line:sub(pos, pos + 32 * h.KiB - 1)))
          pos, progressed = pos + n, n > 0
        end
        local r, msg, code = conn:read_until("\n")
        assert(r, tostring(msg) .. " " .. tostring(code))
        if r ~= "" then got = r end
        return got ~= nil, progressed
      end, 30000)
      assert.are.equal(#line, #got)
      assert.is_true(got == line)
      conn:close()
    end)

    it("gives the rest without the delimiter at EOF, then nil", function()
      local conn = open_echo()
      assert(h.write_all(conn, "complete\nlast words"))
      assert.is_true(conn:shutdown("send"))   -- the echo peer closes after echoing
      assert.are.equal("complete\n", read_line(conn, "\n"))
      assert.are.equal("last words", read_line(conn, "\n"))
      local r, msg = conn:read_until("\n")
      assert.is_nil(r)
      assert.is_nil(msg)
      assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
      conn:close()
    end)

    it("returns nil, message, 'limit' once max_len bytes arrived without the delimiter", function()
      local conn = open_echo()
      assert(h.write_all(conn, string.rep("z", 100)))
      wait_available(conn, 100)
      assert.are.equal("", conn:read_until("\n", 200))   -- not past the limit yet
      local r, msg, code = conn:read_until("\n", 50)
      assert.is_nil(r)
      assert.is_string(msg)
      assert.are.equal("limit", code)
      -- the data is still there for read
      assert.are.equal(string.rep("z", 100), conn:read(1000))
      -- a line of exactly max_len bytes (delimiter included) is fine
      assert(h.write_all(conn, "12345\n"))
      assert.are.equal("12345\n", read_line(conn, "\n", 6))
      -- one byte over, the delimiter there: the message says what does not fit
      assert(h.write_all(conn, "123456\r\n"))
      wait_available(conn, 8)
      assert.are.same({ nil, "read_until: the data and its delimiter take 8 bytes, over max_len 7", "limit" },
                      { conn:read_until("\r\n", 7) })
      conn:close()
    end)

    it("works over TLS with a server made with this API", function()
      local certs = h.tls_certs()
      local srv = assert(net.create_server("127.0.0.1", 0,
        { ssl = { cert_file = certs:pem("good"), key_file = certs:key("good") } }))
      local svc = h.echo_service(srv)
      local conn = assert(net.open_tcp("sluice-v4.test", srv:get_port(), { ca_file = certs.ca }))
      assert(h.write_all(conn, "EHLO there\r\nSTARTTLS\r\n"))
      local lines = {}
      h.run_frames(function()
        local p = svc:step()
        local r = assert(conn:read_until("\r\n"))
        if r ~= "" then lines[#lines + 1] = r end
        return #lines == 2, p or r ~= ""
      end, 20000)
      assert.are.same({ "EHLO there\r\n", "STARTTLS\r\n" }, lines)
      conn:close()
      svc:close_all()
      srv:close()
    end)

    it("raises on bad arguments and answers nil, 'closed' after close", function()
      local conn = open_echo()
      h.assert_raises("bad argument #1 to 'read_until'", function() return conn:read_until() end)
      h.assert_raises("bad argument #1 to 'read_until'", function() return conn:read_until({}) end)
      h.assert_raises("bad argument #1 to 'read_until'", function() return conn:read_until("") end)
      h.assert_raises("bad argument #2 to 'read_until'", function() return conn:read_until("\n", 0) end)
      h.assert_raises("bad argument #2 to 'read_until'", function() return conn:read_until("\n", -5) end)
      h.assert_raises("bad argument #2 to 'read_until'", function() return conn:read_until("\n", "many") end)
      conn:close()
      local r, msg, code = conn:read_until("\n")
      assert.is_nil(r)
      assert.are.equal("closed", msg)
      assert.are.equal("closed", code)
    end)
  end)

  describe("shutdown", function()
    it("'send' sends FIN after the bytes already written; the reply is still read", function()
      local conn = open_echo()
      local data = h.random_bytes(h.scaled(4 * h.MiB))
      local pos = 1
      -- write everything (the echo comes back meanwhile), then half-close
      local parts = {}
      h.run_frames(function()
        local progressed = false
        if pos <= #data then
          local n = assert(conn:write(data:sub(pos, pos + 256 * h.KiB - 1)))
          pos, progressed = pos + n, n > 0
        end
        local r = assert(conn:read(256 * h.KiB))
        if #r > 0 then parts[#parts + 1], progressed = r, true end
        return pos > #data, progressed
      end, 60000)
      assert.is_true(conn:shutdown("send"))
      local rest, msg, code = h.read_all(conn, nil, 60000)
      assert(rest, msg)
      assert.is_nil(code)
      parts[#parts + 1] = rest
      local back = table.concat(parts)
      assert.are.equal(#data, #back)
      assert.is_true(back == data, "echo differs")
      conn:close()
    end)

    it("'send' delivers a big pending write completely before the FIN", function()
      local sink = h.start_peer("sink")
      local total = h.scaled(8 * h.MiB)
      local conn = assert(net.open_tcp("127.0.0.1", sink.port))
      local chunk = h.pattern(0, 256 * h.KiB)
      local sent, hash = 0, nil
      h.run_frames(function()
        local len = math.min(#chunk, total - sent)
        local piece = h.pattern(sent, len)
        local n = assert(conn:write(piece))
        if n > 0 then hash = h.fnv1a(piece:sub(1, n), hash) end
        sent = sent + n
        return sent == total, n > 0
      end, 60000)
      assert.is_true(conn:shutdown("send"))   -- most of it still pending here
      local results = sink:wait_sinks(1, 30000)
      assert(results, "the sink never saw EOF")
      assert.are.equal(total, results[1].bytes)
      assert.are.equal(h.hex64(hash), results[1].hash)
      conn:close()
    end)

    -- sluice-slow.test resolves after 200 ms (tests/lua/hosts): the requests below are
    -- taken while the name is still resolving and must hold once connected.
    it("'send' asked while the name resolves: the bytes, then the FIN, reach the peer", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local conn = assert(net.open_tcp("sluice-slow.test", srv:get_port()))
      assert.are.equal(5, conn:write("hello"))
      assert.is_true(conn:shutdown("send"))
      local accepted = assert(h.accept_one(srv))
      assert.are.equal("hello", h.read_n(accepted, 5, 10000))
      assert(h.wait_for(function() return accepted:read(10) == nil end, 10000), "no EOF after the bytes")
      conn:close()
      accepted:close()
      srv:close()
    end)

    it("'receive' asked while the name resolves: the peer is never held back", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local conn = assert(net.open_tcp("sluice-slow.test", srv:get_port(), { buffer_size = 16384 }))
      assert.is_true(conn:shutdown("receive"))
      local accepted = assert(h.accept_one(srv))
      -- far more than the kernel's buffers hold: it all goes only if it is read and dropped
      local chunk, total, sent = string.rep("x", 256 * h.KiB), h.scaled(32 * h.MiB, 12 * h.MiB), 0
      h.run_frames(function()
        local n = assert(accepted:write(chunk))
        sent = sent + n
        return sent >= total, n > 0
      end, 30000, function() return ("the peer's writes stalled after %d bytes"):format(sent) end)
      conn:close()
      accepted:close()
      srv:close()
    end)

    it("makes write return nil, message, 'closed' after 'send'", function()
      local conn = open_echo()
      assert.is_true(conn:shutdown("send"))
      local n, msg, code = conn:write("late")
      assert.is_nil(n)
      assert.is_string(msg)
      assert.are.equal("closed", code)
      conn:close()
    end)

    it("half-closes between a client and a server made with this API", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      assert(h.write_all(client, "request"))
      assert.is_true(client:shutdown("send"))
      -- the server reads the request, then EOF, and can still answer
      assert.are.equal("request", h.read_n(accepted, 7, 10000))
      assert(h.wait_for(function() return accepted:read(10) == nil end, 10000))
      assert(h.write_all(accepted, "response"))
      assert.are.equal("response", h.read_n(client, 8, 10000))
      accepted:close()
      assert(h.wait_for(function() return client:read(10) == nil end, 10000))
      client:close()
      srv:close()
    end)

    it("a half-closed peer that reads slowly: the writer sleeps, and every byte arrives", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      assert.is_true(client:shutdown("send"))
      assert(h.wait_for(function() return accepted:read(10) == nil end, 10000))   -- its EOF
      -- until the sockets and the send buffer are full: the rest waits there
      local queued, stuck = 0, 0
      while stuck < 10 and queued < 64 * h.MiB do
        local n = assert(accepted:write(h.pattern(queued, 256 * h.KiB)))
        queued, stuck = queued + n, n == 0 and stuck + 1 or 0
        if n == 0 then h.sleep(20) end
      end
      assert.is_true(accepted:get_pending_writes() > 0, "the sockets took it all: nothing to wait on")
      -- nothing changes while the client does not read: the loop is not woken for it
      local wakes, deadline = 0, net.clock() + 2
      while net.clock() < deadline do
        net.wait(1000)
        wakes = wakes + 1
      end
      assert.is_true(wakes < 50, wakes .. " wake-ups in 2 s with nothing to do")
      local got = h.read_n(client, queued, 30000)
      assert.are.equal(queued, #got)
      assert.is_true(got == h.pattern(0, queued), "the bytes differ")
      client:close()
      accepted:close()
      srv:close()
    end)

    it("'receive' discards what arrives from then on; read returns nil; writing goes on", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      assert.is_true(client:shutdown("receive"))
      assert(h.write_all(accepted, "ignored"))
      h.sleep(200)
      assert.is_nil((client:read(100)))
      assert.are.equal(0, client:available())
      assert(h.write_all(client, "still talking"))
      assert.are.equal("still talking", h.read_n(accepted, 13, 10000))
      client:close()
      accepted:close()
      srv:close()
    end)

    it("'both' ends reading and writing; the peer sees EOF", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      assert(h.write_all(client, "bye"))
      assert.is_true(client:shutdown("both"))
      assert.is_nil((client:read(10)))
      local n, _, code = client:write("x")
      assert.is_nil(n)
      assert.are.equal("closed", code)
      assert.are.equal("bye", h.read_n(accepted, 3, 10000))
      assert(h.wait_for(function() return accepted:read(10) == nil end, 10000))
      client:close()
      accepted:close()
      srv:close()
    end)

    it("raises on a bad direction", function()
      local conn = open_echo()
      h.assert_raises("bad argument #1 to 'shutdown'", function() return conn:shutdown("sideways") end)
      h.assert_raises("bad argument #1 to 'shutdown'", function() return conn:shutdown({}) end)
      conn:close()
    end)
  end)

  describe("get_stats", function()
    it("counts the bytes each way and the age", function()
      local t0 = net.clock()
      local conn = assert(net.open_tcp("127.0.0.1", echo.port))
      local r, s, age = conn:get_stats()
      assert.are.same({ 0, 0 }, { r, s })
      assert.is_number(age)
      assert.is_true(age >= 0)
      assert.are.equal("success", h.wait_status(conn))
      local data = h.random_bytes(100000)
      assert(h.write_all(conn, data))
      assert.are.equal(data, h.read_n(conn, #data, 20000))
      h.sleep(300)
      r, s, age = conn:get_stats()
      assert.are.equal(100000, r)
      assert.are.equal(100000, s)
      assert.are.equal("integer", math.type(r))
      assert.is_true(age >= 0.25, "age " .. age)
      assert.is_true(age <= net.clock() - t0 + 0.05, "age " .. age)
      conn:close()
    end)

    it("counts only what reached the peer as sent", function()
      local hole = h.start_peer("blackhole")
      local conn = assert(net.open_tcp("127.0.0.1", hole.port))
      assert.is_true(conn:write("never sent") > 0)
      h.sleep(100)
      local r, s = conn:get_stats()
      assert.are.same({ 0, 0 }, { r, s })
      conn:close()
    end)
  end)

  describe("addresses", function()
    local cases = { { "IPv4", "127.0.0.1", "inet", false } }
    if HAVE_V6 then cases[2] = { "IPv6", "::1", "inet6", true } end
    for _, case in ipairs(cases) do
      local label, ip, fam, v6 = case[1], case[2], case[3], case[4]
      it("get_local_address and get_peer give ip, port, family over " .. label, function()
        local peer = h.start_peer("echo", nil, { ipv6 = v6 })
        local conn = assert(net.open_tcp(ip, peer.port))
        assert.are.equal("success", h.wait_status(conn))
        local lip, lport, lfam = conn:get_local_address()
        assert.are.equal(ip, lip)
        assert.are.equal("integer", math.type(lport))
        assert.is_true(lport > 0 and lport ~= peer.port)
        assert.are.equal(fam, lfam)
        assert.are.same({ ip, peer.port, fam }, { conn:get_peer() })
        conn:close()
        peer:stop()
      end)
    end
  end)

  describe("pause_read", function()
    it("stops reading the socket until resume_read; nothing is lost", function()
      local total = h.scaled(32 * h.MiB)
      local src = h.start_peer("source", tostring(total))
      local conn = assert(net.open_tcp("127.0.0.1", src.port))
      assert.are.equal("success", h.wait_status(conn))
      local check = h.pattern_checker()
      -- read a little, then pause
      wait_available(conn, 1)
      assert(check:feed(conn:read(64 * h.KiB)))
      conn:pause_read()
      local held = settle(conn, 300)
      h.sleep(300)
      assert.are.equal(held, conn:available(), "available() grew while paused")
      -- what is buffered can still be read while paused; then nothing more comes
      local got = assert(conn:read(held + 1))
      assert(check:feed(got))
      h.sleep(200)
      assert.are.equal(0, conn:available())
      assert.are.equal("", conn:read(10))
      assert.are.equal("success", conn:get_status())
      conn:resume_read()
      local n, msg = h.read_all(conn, function(s) assert(check:feed(s)) end, 60000)
      assert(n, msg)
      assert.are.equal(total, check.offset)
      conn:close()
    end)

    it("works when called before the connection is established", function()
      local src = h.start_peer("source", "1M")
      local conn = assert(net.open_tcp("127.0.0.1", src.port))
      conn:pause_read()
      assert.are.equal("success", h.wait_status(conn))
      local held = settle(conn, 300)
      print(string.format("\n# pause_read before connect: %d bytes buffered while paused", held))
      h.sleep(200)
      assert.are.equal(held, conn:available())
      conn:resume_read()
      local check = h.pattern_checker()
      local n, msg = h.read_all(conn, function(s) assert(check:feed(s)) end, 30000)
      assert(n, msg)
      assert.are.equal(h.MiB, check.offset)
      conn:close()
    end)

    it("gives the sender backpressure, and resume_read delivers it all in order", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      client:pause_read()
      client:pause_read()   -- idempotent
      -- the server writes until its send buffer stays full
      local sent, zeros = 0, 0
      h.run_frames(function()
        local n = assert(accepted:write(h.pattern(sent, 64 * h.KiB)))
        sent = sent + n
        if n == 0 then zeros = zeros + 1 else zeros = 0 end
        return zeros >= 20, n > 0
      end, 60000)
      local pending = accepted:get_pending_writes()
      assert.is_true(pending > 0, "nothing pending at the sender")
      h.sleep(300)
      assert.are.equal(0, accepted:write("x"), "the sender's buffer drained while paused")
      print(string.format("\n# pause_read: sender stalled after %d bytes (%d pending)", sent, pending))
      client:resume_read()
      client:resume_read()
      local check = h.pattern_checker()
      h.run_frames(function()
        local d = assert(client:read(256 * h.KiB))
        if #d > 0 then assert(check:feed(d)) end
        return check.offset == sent, #d > 0
      end, 60000, function() return check.offset .. " of " .. sent end)
      client:close()
      accepted:close()
      srv:close()
    end)
  end)
end)
