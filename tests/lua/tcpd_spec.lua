-- tcpd_spec: sluice.tcpd, luafan's callback style on net. A server and clients made
-- with it (echo paced by onsendready, both disconnect reasons, callback_self_first);
-- external peers (a source that ends, a sink that gets what close() left queued);
-- pause_read/resume_read; TLS clients (verified, self-signed refused, ssl_verifypeer =
-- 0, ssl_host checked) and a TLS server; read, write and connect timeouts; refused
-- ports, a full send queue, sending after the end; a resolver object; reconnect;
-- update() never waits; in an editor, an editor thread dispatches; argument errors.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
local tcpd = require "sluice.tcpd"
h.need_hosts_file()

-- Runs tcpd.update() once per frame until done() is true (at most timeout_ms).
local function run_until(done, timeout_ms)
  h.run_frames(function()
    tcpd.update()
    return done(), false
  end, timeout_ms or 20000)
end

-- Closes whatever a test left, and lets tcpd forget it.
local function settle()
  for _ = 1, 100 do
    if tcpd.update() == 0 then return end
    net.wait(10)
  end
end

-- A tcpd echo server: returns serv, port, and the list of disconnect reasons it saw.
local function echo_server(extra)
  local reasons = {}
  local args = {
    host = "127.0.0.1", port = 0,
    onaccept = function(apt)
      apt:bind {
        onread = function(data) apt:send(data) end,
        ondisconnected = function(reason) reasons[#reasons + 1] = reason end,
      }
    end,
  }
  for k, v in pairs(extra or {}) do args[k] = v end
  local serv, port = tcpd.bind(args)
  assert(serv, port)
  return serv, port, reasons
end

describe("sluice.tcpd", function()
  after_each(function()
    settle()
    h.stop_all()
  end)

  it("sends the whole reply to a client that shut its sending side, then says it disconnected", function()
    local reply = h.random_bytes(8 * h.MiB)
    local reasons, left = {}, nil
    local serv, port = tcpd.bind {
      host = "127.0.0.1", port = 0,
      onaccept = function(apt)
        apt:bind {
          onread = function() assert(apt:send(reply) > 0) end,
          ondisconnected = function(reason) reasons[#reasons + 1] = reason left = apt:_waiting() end,
        }
      end,
    }
    assert(serv, port)
    local client = assert(net.open_tcp("127.0.0.1", port))
    assert.are.equal("success", h.wait_status(client))
    assert(h.write_all(client, "request"))
    assert.is_true(client:shutdown("send"))
    local got, ended = {}, false
    run_until(function()
      while true do
        local s = client:read(h.MiB)
        if s == nil then ended = true break end
        if s == "" then break end
        got[#got + 1] = s
      end
      return ended and #reasons > 0
    end, 30000)
    assert.is_true(table.concat(got) == reply, "the reply arrived cut short")
    assert.are.same({ "client disconnected" }, reasons)
    assert.are.equal(0, left)
    client:close()
    serv:close()
  end)

  it("a client and a server made with it: echo paced by onsendready, then both ends' reasons", function()
    local serv, port, reasons = echo_server()
    assert.are.equal(port, serv:get_port())
    local total = h.scaled(4 * h.MiB, 512 * h.KiB)
    local pool = h.random_bytes(total)
    local sent, got, events = 0, {}, {}
    local conn
    local function send_more()
      if sent < total then
        local n = math.min(64 * 1024, total - sent)
        assert(conn:send(pool:sub(sent + 1, sent + n)) >= 0)   -- what waits (luafan): taken
        sent = sent + n
      end
    end
    conn = tcpd.connect {
      host = "127.0.0.1", port = port,
      onconnected = function() events[#events + 1] = "connected" send_more() end,
      onsendready = send_more,
      onread = function(data) got[#got + 1] = data end,
      ondisconnected = function(reason) events[#events + 1] = reason end,
    }
    local received = 0
    run_until(function()
      received = 0
      for _, d in ipairs(got) do received = received + #d end
      return received >= total
    end, 60000)
    assert.are.equal(total, received)
    assert.is_true(table.concat(got) == pool, "echoed bytes differ")
    assert.same({ "connected" }, events)
    conn:close()
    run_until(function() return #reasons == 1 end)
    assert.same({ "client disconnected" }, reasons)
    assert.same({ "connected" }, events)   -- no ondisconnected after close()

    -- the server side closing: the client hears "server disconnected"
    local ends = {}
    local serv2 = assert(tcpd.bind { host = "127.0.0.1", onaccept = function(apt) apt:send("bye") apt:close() end })
    local words = {}
    tcpd.connect { host = "127.0.0.1", port = serv2:get_port(),
      onread = function(d) words[#words + 1] = d end,
      ondisconnected = function(reason) ends[#ends + 1] = reason end }
    run_until(function() return #ends == 1 end)
    assert.are.equal("bye", table.concat(words))
    assert.same({ "server disconnected" }, ends)
    serv:close()
    serv2:close()
  end)

  it("callback_self_first passes the connection first, on both sides", function()
    local seen = {}
    local serv = assert(tcpd.bind {
      host = "127.0.0.1", callback_self_first = true,
      onaccept = function(s, apt)
        seen.server = s
        assert.are.equal("127.0.0.1", apt:remoteinfo().ip)
        local ip, port = apt:bind { onread = function(self, data) self:send("<" .. data .. ">") end }
        assert.are.equal(apt:remoteinfo().port, port)
        seen.peer = ip
      end,
    })
    local conn
    conn = tcpd.connect {
      host = "127.0.0.1", port = serv:get_port(), callback_self_first = true,
      onconnected = function(self) seen.connected = self self:send("x") end,
      onread = function(self, data) seen.conn, seen.data = self, data end,
    }
    run_until(function() return seen.data ~= nil end)
    assert.are.equal(serv, seen.server)
    assert.are.equal(conn, seen.connected)
    assert.are.equal(conn, seen.conn)
    assert.are.equal("<x>", seen.data)
    assert.are.equal("127.0.0.1", seen.peer)
    conn:close()
    serv:close()
  end)

  it("external peers: all of a source's bytes before its end, and close() still delivers the queue", function()
    local total = h.scaled(3 * h.MiB)
    local source = h.start_peer("source", tostring(total))
    local check, reason = h.pattern_checker(), nil
    tcpd.connect { host = source.host, port = source.port,
      onread = function(data) assert(check:feed(data)) end,
      ondisconnected = function(r) reason = r end }
    run_until(function() return reason ~= nil end, 30000)
    assert.are.equal("server disconnected", reason)
    assert.are.equal(total, check.offset)

    local sink = h.start_peer("sink")
    local data = h.random_bytes(h.scaled(4 * h.MiB, 2 * h.MiB))   -- more than net's 1 MiB buffer
    local called = false
    local conn = tcpd.connect { host = sink.host, port = sink.port, ondisconnected = function() called = true end }
    local waiting = conn:send(data)   -- luafan's answer: the bytes waiting to go out
    assert.is_true(waiting > 0 and waiting <= #data, tostring(waiting))
    conn:close()
    assert.same({ -1, "connection closed", "closed" }, { conn:send("late") })
    local results
    run_until(function() results = sink:sinks() return #results == 1 end, 30000)
    assert.are.equal(#data, results[1].bytes)
    assert.are.equal(h.hex64(h.fnv1a(data)), results[1].hash)
    assert.is_false(called)
  end)

  -- The queue runs from qhead to qtail; with its front set to nil, the table's
  -- length may read 0, which once dropped or misplaced pieces.
  it("keeps every queued piece, in order, whatever each write takes (net's side stubbed)", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local client = tcpd.connect { host = "127.0.0.1", port = srv:get_port() }
    run_until(function() return client.state == "open" end)
    local real, out, budget = client.conn, {}, 0
    client.conn = {   -- takes `budget` bytes per frame, as a send buffer the peer drains slowly
      write = function(_, data, i)   -- net's write(data, i): the bytes from i on
        i = i or 1
        local n = math.min(#data - i + 1, budget)
        budget = budget - n
        out[#out + 1] = data:sub(i, i + n - 1)
        return n
      end,
      get_pending_writes = function() return 0 end,
      close = function() end,
    }
    local function case(sends, takes)
      local want = {}
      out = {}
      for _ = 1, 200 do
        for _ = 1, sends do
          want[#want + 1] = string.format("%06d;", #want + 1)
          assert.is_true(client:send(want[#want]) >= 0)
        end
        budget = takes
        client:flush()
      end
      budget = math.huge
      assert.are.equal(0, client:flush())
      assert.are.equal(table.concat(want), table.concat(out), sends .. " sends, " .. takes .. " bytes a frame")
    end
    local ok, err = pcall(function()
      for _, c in ipairs { { 1, 3 }, { 2, 7 }, { 3, 10 }, { 5, 14 }, { 3, 20 } } do case(c[1], c[2]) end
    end)
    client.conn = real
    assert(ok, err)
    client:close()
    srv:close()
  end)

  it("pause_read stops onread until resume_read", function()
    local total = h.scaled(8 * h.MiB, 4 * h.MiB)
    local source = h.start_peer("source", tostring(total))
    local got, done = 0, false
    local conn
    conn = tcpd.connect { host = source.host, port = source.port,
      onread = function(data)
        got = got + #data
        if got >= 256 * 1024 then conn:pause_read() end
      end,
      ondisconnected = function() done = true end }
    run_until(function() return conn.paused end)
    local at_pause = got
    for _ = 1, 30 do   -- frames go by; nothing is delivered while paused
      tcpd.update()
      net.wait(5)
    end
    assert.are.equal(at_pause, got)
    assert.is_false(done)
    conn.cb.onread = function(data) got = got + #data end
    conn:resume_read()
    run_until(function() return done end, 30000)
    assert.are.equal(total, got)
  end)

  it("TLS clients: verified, a self-signed peer refused, ssl_verifypeer = 0, ssl_host checked", function()
    local certs = h.tls_certs()
    local good = h.start_tls_server("echo")
    local function exchange(args)
      local out = {}
      local conn
      args.onconnected = function() conn:send("tls ping") end
      args.onread = function(d) out.data = (out.data or "") .. d end
      args.ondisconnected = function(r) out.reason = r end
      conn = tcpd.connect(args)
      run_until(function() return out.data == "tls ping" or out.reason ~= nil end)
      conn:close()
      return out
    end
    local out = exchange { host = "127.0.0.1", port = good.port, ssl = true, cainfo = certs.ca }
    assert.are.equal("tls ping", out.data)
    out = exchange { host = "localhost", port = good.port, ssl = true, capath = certs.dir }
    assert.are.equal("tls ping", out.data)

    local selfsigned = h.start_tls_server("echo", nil, { cert = "selfsigned" })
    out = exchange { host = "127.0.0.1", port = selfsigned.port, ssl = true, cainfo = certs.ca }
    assert.is_nil(out.data)
    assert.matches("certificate not trusted %(.*self%-signed%)", out.reason)
    out = exchange { host = "127.0.0.1", port = selfsigned.port, ssl = true, ssl_verifypeer = 0 }
    assert.are.equal("tls ping", out.data)

    out = exchange { host = "127.0.0.1", port = good.port, ssl = true, cainfo = certs.ca, ssl_host = "other.test" }
    assert.matches("wrong name", out.reason)
    h.assert_raises("ssl_verifyhost = 0 with ssl_verifypeer = 1", function()
      tcpd.connect { host = "127.0.0.1", port = good.port, ssl = true, ssl_verifyhost = 0 }
    end)
  end)

  it("a TLS server made with tcpd.bind{ssl, cert, key}", function()
    local certs = h.tls_certs()
    local serv, port = echo_server { ssl = true, cert = certs:pem("good"), key = certs:key("good") }
    local data
    local conn
    conn = tcpd.connect { host = "127.0.0.1", port = port, ssl = true, cainfo = certs.ca,
      onconnected = function() conn:send("secret") end,
      onread = function(d) data = (data or "") .. d end }
    run_until(function() return data == "secret" end)
    conn:close()
    serv:close()
  end)

  it("a TLS server whose certificate cannot be loaded closes and says why", function()
    local missing = h.temp_dir() .. "/missing"
    local heard = {}
    local serv = assert(tcpd.bind { host = "127.0.0.1", port = 0, ssl = true, cert = missing .. ".pem",
      key = missing .. ".key", onerror = function(...) heard[#heard + 1] = table.pack(...) end })
    run_until(function() return #heard > 0 end)
    run_until(function() return tcpd.update() == 0 end)   -- it left
    assert.equal(1, #heard)
    assert.matches("cannot load cert_file " .. missing .. ".pem", heard[1][1], 1, true)
    assert.equal("tls", heard[1][2])
    assert.is_nil(serv.srv)
    serv:close()   -- harmless now
    -- callback_self_first: the server first
    local got
    serv = assert(tcpd.bind { port = 0, ssl = true, cert = missing .. ".pem", key = missing .. ".key",
      callback_self_first = true, onerror = function(s, reason) got = { s, reason } end })
    run_until(function() return got ~= nil end)
    assert.equal(serv, got[1])
    -- without onerror, update() raises it, once
    serv = assert(tcpd.bind { port = 0, ssl = true, cert = missing .. ".pem", key = missing .. ".key" })
    local err
    h.run_frames(function()
      local ok, e = pcall(tcpd.update)
      err = not ok and e or nil
      return err ~= nil, false
    end, 20000)
    assert.matches("^" .. tostring(serv):gsub("%p", "%%%0") .. ": tls: cannot load cert_file", err)
    assert.equal(0, tcpd.update())
  end)

  it("a callback that raises on every update leaves every other object running", function()
    local source = h.start_peer("source", tostring(1024 * h.MiB))   -- data for every update
    local echo = h.start_peer("echo")
    local raising, heard, errors = {}, 0, 0
    local others, got = {}, {}
    for i = 1, 20 do   -- one raising object in every five: some come early in any order
      if i % 5 == 1 then
        raising[#raising + 1] = tcpd.connect { host = "127.0.0.1", port = source.port,
          onread = function() error("the plugin's bug") end }
      end
      local c
      c = tcpd.connect { host = "127.0.0.1", port = echo.port,
        onread = function()
          if not got[i] then heard = heard + 1 end
          got[i] = true
        end }
      others[i] = c
    end
    local sent = false
    h.run_frames(function()
      local ok, err = pcall(tcpd.update)
      if not ok then
        assert.matches("the plugin's bug", err)
        errors = errors + 1
      end
      if errors >= 5 and not sent then   -- it raises on every update by now
        for _, c in ipairs(others) do c:send("hello") end
        sent = true
      end
      return heard == #others, false
    end, 20000)
    assert.are.equal(#others, heard, "objects after the raising one never ran")
    for _, c in ipairs(raising) do c:close() end
    for _, c in ipairs(others) do c:close() end
    settle()
  end)

  it("read, write and connect timeouts end the connection with their reason", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local reasons = {}
    tcpd.connect { host = "127.0.0.1", port = srv:get_port(), read_timeout = 0.2,
      ondisconnected = function(r) reasons.read = r end }
    local silent = assert(h.accept_one(srv))
    run_until(function() return reasons.read ~= nil end)
    assert.are.equal("read timeout", reasons.read)

    local conn = tcpd.connect { host = "127.0.0.1", port = srv:get_port(), write_timeout = 0.3,
      ondisconnected = function(r) reasons.write = r end }
    local stuck = assert(h.accept_one(srv))
    stuck:pause_read()   -- the peer reads nothing: buffers fill and sending stops
    local chunk = string.rep("w", 1024 * 1024)
    run_until(function()
      if conn.qbytes < 4 * 1024 * 1024 and conn.state ~= "dead" then conn:send(chunk) end
      return reasons.write ~= nil
    end, 30000)
    assert.are.equal("write timeout", reasons.write)

    local hole = h.start_peer("blackhole")
    tcpd.connect { host = hole.host, port = hole.port, write_timeout = 0.2,
      ondisconnected = function(r) reasons.connect = r end }
    run_until(function() return reasons.connect ~= nil end)
    assert.are.equal("write timeout", reasons.connect)
    silent:close()
    stuck:close()
    srv:close()
  end)

  it("a refused port, a full send queue, an address in use", function()
    local reason
    local conn = tcpd.connect { host = "127.0.0.1", port = h.closed_port(),
      ondisconnected = function(r) reason = r end }
    run_until(function() return reason ~= nil end)
    assert.matches("Connection refused", reason)
    assert.same({ -1, "connection closed", "closed" }, { conn:send("x") })

    local hole = h.start_peer("blackhole")
    -- net's send buffer takes the first MiB; then the queue fills to max_send_queue
    conn = tcpd.connect { host = hole.host, port = hole.port, max_send_queue = 70000 }
    local piece = string.rep("a", 64 * 1024)
    local ok, msg, code, sent = nil, nil, nil, 0
    repeat
      ok, msg, code = conn:send(piece)
      if ok >= 0 then sent = sent + #piece end
    until ok < 0 or sent > 64 * h.MiB
    assert.are.equal(-1, ok)
    assert.matches("send queue full", msg)
    assert.are.equal("limit", code)
    assert.is_true(conn.qbytes > 0 and conn.qbytes <= 70000)
    assert.is_true(sent >= h.MiB)
    conn:close()

    local serv, port = tcpd.bind { host = "127.0.0.1" }
    local none, err, ecode = tcpd.bind { host = "127.0.0.1", port = port }
    assert.is_nil(none)
    assert.matches("Address already in use", err)
    assert.is_string(ecode)
    serv:close()
  end)

  it("uses a resolver object for the host, and reconnects", function()
    local peer = h.start_peer("echo")
    local asked = {}
    local resolver = { resolve = function(_, host)
      asked[#asked + 1] = host
      if host == "nowhere.test" then return nil, "resolve nowhere.test: no such name" end
      return net.resolve_address(peer.host)
    end }
    local got, reason = {}, nil
    local conn
    conn = tcpd.connect { host = "made-up.test", port = peer.port, resolver = resolver,
      onconnected = function() conn:send("one") end,
      onread = function(d) got[#got + 1] = d end }
    run_until(function() return table.concat(got) == "one" end)
    conn:reconnect()
    conn.cb.onconnected = function() conn:send("two") end
    run_until(function() return table.concat(got) == "onetwo" end)
    conn:close()
    assert.same({ "made-up.test", "made-up.test" }, asked)

    tcpd.connect { host = "nowhere.test", port = peer.port, evdns = resolver,
      ondisconnected = function(r) reason = r end }
    run_until(function() return reason ~= nil end)
    assert.are.equal("resolve nowhere.test: no such name", reason)
  end)

  it("update() never waits, with many connections in flight", function()
    local serv, port = echo_server()
    local count, done = 30, 0
    for i = 1, count do
      local conn
      local text = "connection " .. i .. string.rep(".", i * 50)
      local got = ""
      conn = tcpd.connect { host = "127.0.0.1", port = port,
        onconnected = function() conn:send(text) end,
        onread = function(d)
          got = got .. d
          if got == text then done = done + 1 conn:close() end
        end }
    end
    local real_wait, waits, in_frame = net.wait, 0, false
    net.wait = function(...)
      if in_frame then waits = waits + 1 end
      return real_wait(...)
    end
    local ok, err = pcall(h.run_frames, function()
      in_frame = true
      tcpd.update()
      in_frame = false
      return done == count, false
    end, 30000)
    net.wait = real_wait
    if not ok then error(err, 0) end
    assert.are.equal(0, waits)
    serv:close()
  end)

  it("in an editor, a thread of the editor dispatches the callbacks", function()
    local peer = h.start_peer("echo")
    local threads = {}
    local saved = package.loaded.core
    package.loaded.core = {
      add_thread = function(fn) threads[#threads + 1] = coroutine.create(fn) end,
      error = function(...) error(string.format(...)) end,
    }
    local ok, err = pcall(function()
      local got
      local conn
      conn = tcpd.connect { host = peer.host, port = peer.port,
        onconnected = function() conn:send("from the editor") end,
        onread = function(d) got = d conn:close() end }
      assert.are.equal(1, #threads)
      assert(h.wait_for(function()
        local resumed, v = coroutine.resume(threads[1])
        assert(resumed, v)
        return coroutine.status(threads[1]) == "dead"
      end, 20000, 5))
      assert.are.equal("from the editor", got)
    end)
    package.loaded.core = saved
    if not ok then error(err, 0) end
  end)

  it("has luafan's newer calls: shutdown, getsockname, getpeername, localinfo; a port as a string", function()
    local got, peer_ended = {}, false
    local serv, port = assert(tcpd.bind { host = "127.0.0.1", port = "0", onaccept = function(apt)
      apt:bind { onread = function(d) got[#got + 1] = d end,
                 ondisconnected = function() peer_ended = true end }
    end })
    assert.are.same({ ip = "127.0.0.1", port = port }, serv:localinfo())
    local conn
    conn = tcpd.connect { host = "127.0.0.1", port = tostring(port) }
    run_until(function() return conn.state == "open" end)
    local ip, lport = conn:getsockname()
    assert.are.equal("127.0.0.1", ip)
    assert.is_true(math.type(lport) == "integer" and lport > 0)
    assert.are.same({ "127.0.0.1", port }, { conn:getpeername() })
    -- a send larger than max_send_queue to an empty queue is taken
    conn.max_queue = 16
    local waiting = conn:send(string.rep("x", 5000))
    assert.is_true(waiting >= 0 and waiting <= 5000, tostring(waiting))
    run_until(function() return conn:shutdown() == 0 end)   -- nothing waits: the FIN goes
    run_until(function() return peer_ended end)   -- the accepted end reads the end of the stream
    assert.are.equal(5000, #table.concat(got))
    conn:close()
    serv:close()
    assert.is_nil(serv:localinfo())
  end)

  it("raises on wrong arguments", function()
    h.assert_raises("table expected", function() tcpd.connect("127.0.0.1") end)
    h.assert_raises("host must be a string", function() tcpd.connect { port = 1 } end)
    h.assert_raises("port must be an integer 1..65535", function() tcpd.connect { host = "127.0.0.1", port = 70000 } end)
    h.assert_raises("onread must be a function", function() tcpd.connect { host = "127.0.0.1", port = 1, onread = 1 } end)
    h.assert_raises("write_timeout must be a number of seconds >= 0", function()
      tcpd.connect { host = "127.0.0.1", port = 1, write_timeout = 0 / 0 }
    end)
    h.assert_raises("read_timeout must be a number of seconds >= 0",
      function() tcpd.connect { host = "127.0.0.1", port = 1, read_timeout = -1 } end)
    h.assert_raises("ssl needs cert and key", function() tcpd.bind { ssl = true } end)
    h.assert_raises("onaccept must be a function", function() tcpd.bind { onaccept = "x" } end)
    h.assert_raises("onerror must be a function", function() tcpd.bind { onerror = true } end)
    h.assert_raises("max_send_queue must be a positive integer", function() tcpd.bind { max_send_queue = "1" } end)
    h.assert_raises("receive_buffer_size must be a positive integer", function() tcpd.bind { receive_buffer_size = 0 } end)
    local conn = tcpd.connect { host = "127.0.0.1", port = 1 }
    h.assert_raises("string expected", function() conn:send({}) end)
    conn:close()
  end)
end)
