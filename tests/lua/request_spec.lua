-- request_spec: sluice.request, rspamd's one-shot TCP request on net. Replies up to a
-- stop pattern (also split across reads) or until the peer closes; data as a string
-- or pieces; shutdown and read = false; partial delivery through a function or the
-- callback; on_connect; TLS verified against the test CA, a failing certificate and
-- ssl_noverify; refused, silent and early-closing peers, timeouts, max_size, cancel,
-- argument errors; a Unix socket; many requests in a frame loop that never waits;
-- in an editor, an editor thread runs the callbacks.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
local request = require "sluice.request"

-- Polls until every request ended (at most timeout_ms).
local function run_all(timeout_ms)
  local deadline = net.clock() + (timeout_ms or 20000) / 1000
  while request.update() > 0 do
    assert(net.clock() < deadline, "requests still running after the time limit")
    net.wait(10)
  end
end

-- A request whose callback records its calls: returns r, calls (array of {err, data}).
local function recorded(opts)
  local calls = {}
  opts.callback = function(err, data, r)
    calls[#calls + 1] = { err = err, data = data, r = r }
  end
  return request(opts), calls
end

describe("sluice.request", function()
  after_each(function()
    run_all()
    h.stop_all()
  end)

  it("sends the data and reads up to the stop pattern; one callback, after on_connect", function()
    local peer = h.start_peer("echo")
    local order = {}
    local r, calls = recorded {
      host = peer.host, port = peer.port, data = { "EHLO sluice", "\r\n", "second line\r\n" },
      stop_pattern = "\r\n", on_connect = function(c) order[#order + 1] = "connect " .. c.state end,
    }
    local first = r:poll()   -- (on a fast machine the echo may already be back)
    assert.is_true(first == "waiting" or first == "done", first)
    run_all()
    assert.are.equal(1, #calls)
    assert.is_nil(calls[1].err)
    assert.are.equal("EHLO sluice", calls[1].data)
    assert.are.equal(r, calls[1].r)
    assert.same({ "connect waiting" }, order)
    assert.are.equal("done", r:poll())
    assert.are.equal("EHLO sluice", r.data)
    assert.are.equal(#"EHLO sluice\r\nsecond line\r\n", r.sent)
  end)

  it("without a stop pattern reads until the peer closes; shutdown half-closes after sending", function()
    local peer = h.start_peer("echo")
    local data = h.random_bytes(h.scaled(4 * h.MiB, 256 * h.KiB))
    local r, calls = recorded { host = peer.host, port = peer.port, data = data, shutdown = true, timeout = 30 }
    run_all(60000)
    assert.are.equal(1, #calls)
    assert.is_nil(calls[1].err)
    assert.are.equal(#data, #calls[1].data)
    assert.is_true(calls[1].data == data, "echoed bytes differ")
    assert.are.equal(#data, r.received)
  end)

  it("update polls every request whatever one's callback raises, then raises that error", function()
    local source = h.start_peer("source", "64M")
    local raisers, raised = {}, {}
    for i = 1, 20 do   -- in pairs order some come before the quiet one, whatever that order is
      raisers[i] = request {
        host = source.host, port = source.port, read = true,
        partial = function() raised[i] = true error("partial " .. i .. " raised") end,
        callback = function() end,
      }
    end
    assert(h.wait_for(function()   -- each raises at every poll from now on
      for i = 1, 20 do raised[i] = raised[i] or not pcall(raisers[i].poll, raisers[i]) end
      for i = 1, 20 do if not raised[i] then return false end end
      return true
    end, 10000, 5), "the source's bytes did not arrive")
    local echo = h.start_peer("echo")
    local _, calls = recorded { host = echo.host, port = echo.port, data = "ping", shutdown = true }
    local errors = 0
    assert(h.wait_for(function()
      local ok, err = pcall(request.update)
      if not ok then
        errors = errors + 1
        assert.matches("partial %d+ raised", err)
      end
      return #calls > 0
    end, 10000, 5), "the quiet request was never polled to its end")
    assert.is_true(errors > 0)
    assert.are.same({ nil, "ping" }, { calls[1].err, calls[1].data })
    for _, r in ipairs(raisers) do r:cancel() end
  end)

  it("partial: pieces as they arrive, a stop pattern split across them, then one end call", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local pieces, ends = {}, {}
    local r = request {
      host = "127.0.0.1", port = srv:get_port(), stop_pattern = "END",
      partial = function(chunk) pieces[#pieces + 1] = chunk end,
      callback = function(err, data) ends[#ends + 1] = { err, data } end,
    }
    local peer = assert(h.accept_one(srv))
    local function deliver(text, want_pieces)
      assert(peer:write(text))
      assert(h.wait_for(function() r:poll() return #pieces >= want_pieces or r.state ~= "waiting" end, 10000, 5))
    end
    deliver("first part, then E", 1)   -- the "E" is held back: it may start the pattern
    assert.same({ "first part, then " }, pieces)
    deliver("Nd not yet; EN", 2)
    assert.same({ "first part, then ", "ENd not yet; " }, pieces)
    assert(peer:write("D after the end"))
    assert(h.wait_for(function() return r:poll() ~= "waiting" end, 10000, 5))
    assert.same({ "first part, then ", "ENd not yet; " }, pieces)
    assert.same({ { nil, "" } }, ends)
    assert.are.equal("done", r.state)
    peer:close()
    srv:close()

    -- partial = true: the callback gets the pieces, then "" once at the end
    local echo = h.start_peer("echo")
    local seen = {}
    request {
      host = echo.host, port = echo.port, data = "abc", shutdown = true, partial = true,
      callback = function(err, data) seen[#seen + 1] = err or data end,
    }
    run_all()
    assert.are.equal("", seen[#seen])
    assert.are.equal("abc", table.concat(seen))
    for i = 1, #seen - 1 do assert.is_true(#seen[i] > 0) end
  end)

  it("read = false ends once the data reached the kernel", function()
    local sink = h.start_peer("sink")
    local data = h.random_bytes(h.scaled(2 * h.MiB, 256 * h.KiB))
    local r, calls = recorded { host = sink.host, port = sink.port, data = data, read = false }
    run_all()
    assert.are.equal(1, #calls)
    assert.is_nil(calls[1].err)
    assert.are.equal(r, calls[1].data)   -- callback(err, conn), as rspamd calls a write-only request's
    assert.is_nil(calls[1].r)
    assert.are.equal(#data, r.sent)
    local results = assert(sink:wait_sinks(1))
    assert.are.equal(#data, results[1].bytes)
    assert.are.equal(h.hex64(h.fnv1a(data)), results[1].hash)
  end)

  it("counts the upload still leaving net's buffer as progress while it waits for the reply", function()
    -- a peer that takes 64 KiB every 50 ms, and answers once it has it all: the
    -- last MiB leaves net's buffer for longer than the timeout, yet steadily (a
    -- Unix socket: its kernel buffers are small, where loopback TCP's grow to MiBs)
    local path = h.temp_dir() .. "/slow.sock"
    local srv = assert(net.create_server { unix = path, buffer_size = 64 * 1024 })
    local data = h.random_bytes(2 * h.MiB)
    local _, calls = recorded { host = path, data = data, stop_pattern = "\n", timeout = 0.4 }
    local peer, got, next_read = nil, 0, 0
    h.run_frames(function()
      request.update()
      peer = peer or srv:accept()
      if peer and got < #data and net.clock() >= next_read then
        got, next_read = got + #assert(peer:read(64 * 1024)), net.clock() + 0.05
        if got == #data then peer:write("done\n") end
      end
      return #calls > 0, false
    end, 60000)
    assert.is_nil(calls[1].err)
    assert.are.equal("done", calls[1].data)
    peer:close()
    srv:close()
  end)

  it("speaks TLS verified against the test CA, and fails a certificate that does not verify", function()
    local certs = h.tls_certs()
    local good = h.start_tls_server("echo")
    local r, calls = recorded {
      host = "127.0.0.1", port = good.port, ssl = { ca_file = certs.ca }, data = "over tls\n", stop_pattern = "\n",
    }
    run_all()
    assert.is_nil(calls[1].err)
    assert.are.equal("over tls", calls[1].data)
    assert.are.equal("done", r.state)

    local bad = h.start_tls_server("echo", nil, { cert = "selfsigned" })
    r, calls = recorded { host = "127.0.0.1", port = bad.port, ssl = { ca_file = certs.ca }, data = "x\n", stop_pattern = "\n" }
    run_all()
    assert.are.equal(1, #calls)
    assert.is_nil(calls[1].data)
    assert.matches("certificate not trusted", calls[1].err)
    assert.are.equal("tls-verify", r.code)

    r, calls = recorded { host = "127.0.0.1", port = bad.port, ssl = true, ssl_noverify = true,
      data = "unverified\n", stop_pattern = "\n" }
    run_all()
    assert.is_nil(calls[1].err)
    assert.are.equal("unverified", calls[1].data)
  end)

  it("fails on a refused port, a silent peer, and a peer that closes before the pattern", function()
    local r, calls = recorded { host = "127.0.0.1", port = h.closed_port(), data = "x" }
    run_all()
    assert.are.equal(1, #calls)
    assert.is_nil(calls[1].data)
    assert.matches("Connection refused", calls[1].err)
    assert.same({ "failure", calls[1].err, "refused" }, { r:poll() })

    local hole = h.start_peer("blackhole")
    r, calls = recorded { host = hole.host, port = hole.port, data = "x", timeout = 0.2 }
    run_all()
    assert.are.equal("timeout", r.code)
    assert.matches("no progress for 0.2 s", calls[1].err)

    local srv = assert(net.create_server("127.0.0.1", 0))
    r, calls = recorded { host = "127.0.0.1", port = srv:get_port(), data = "question\n", stop_pattern = "\n", timeout = 0.3 }
    local silent = assert(h.accept_one(srv))
    run_all()
    assert.are.equal("timeout", r.code)
    assert.are.equal(#"question\n", r.sent)
    assert.are.equal("question\n", h.read_n(silent, 9))
    silent:close()
    srv:close()

    local source = h.start_peer("source", "1000")
    r, calls = recorded { host = source.host, port = source.port, stop_pattern = "never in the pattern" }
    run_all()
    assert.are.equal("closed", r.code)
    assert.matches("closed before the stop pattern", calls[1].err)
    assert.is_true(r.data == h.pattern(0, 1000), "the partial reply differs")
  end)

  it("limits the reply to max_size, cancels without a callback, reports bad hosts on the first poll", function()
    local source = h.start_peer("source", "2M")
    local r, calls = recorded { host = source.host, port = source.port, max_size = 1024 * 1024 }
    run_all()
    assert.are.equal("limit", r.code)
    assert.matches("larger than 1048576 bytes", calls[1].err)

    local hole = h.start_peer("blackhole")
    r, calls = recorded { host = hole.host, port = hole.port }
    r:cancel()
    run_all()
    assert.same({ "failure", "cancelled", "cancelled" }, { r:poll() })
    assert.are.equal(0, #calls)
    -- rspamd's conn:close() from inside the callback: the request is over, nothing happens
    local echo, closed_in_cb = h.start_peer("echo"), nil
    r = request { host = echo.host, port = echo.port, data = "hi\n", stop_pattern = "\n",
      callback = function(err, data, conn) closed_in_cb = { err, data } conn:close() end }
    run_all()
    assert.are.same({ nil, "hi" }, closed_in_cb)
    assert.are.equal("done", r:poll())
    r, calls = recorded { host = hole.host, port = hole.port }
    r:close()   -- before the end: as cancel
    run_all()
    assert.same({ "failure", "cancelled", "cancelled" }, { r:poll() })
    assert.are.equal(0, #calls)

    r, calls = recorded { host = "", port = 80 }
    assert.are.equal(0, #calls)
    assert.same({ "failure", 'resolve "": host name is empty', "invalid" }, { r:poll() })
    assert.are.equal(1, #calls)
  end)

  it("raises on wrong arguments", function()
    h.assert_raises("table expected", function() request("127.0.0.1") end)
    h.assert_raises("host must be a string", function() request { port = 80 } end)
    h.assert_raises("port must be an integer 1..65535", function() request { host = "127.0.0.1", port = 0 } end)
    h.assert_raises("data[2] must be a string", function() request { host = "127.0.0.1", port = 1, data = { "a", 2 } } end)
    h.assert_raises("stop_pattern must be a string of at most 1024 bytes",
      function() request { host = "127.0.0.1", port = 1, stop_pattern = string.rep("x", 1025) } end)
    request { host = "127.0.0.1", port = 1, stop_pattern = "" }:cancel()   -- "": none, as rspamd ignores it
    h.assert_raises("timeout must be a number of seconds > 0", function() request { host = "127.0.0.1", port = 1, timeout = 0 } end)
    h.assert_raises("callback must be a function", function() request { host = "127.0.0.1", port = 1, callback = 1 } end)
    h.assert_raises("partial must be a boolean or a function", function() request { host = "127.0.0.1", port = 1, partial = "x" } end)
  end)

  it("talks to a Unix socket given as the host", function()
    local path = h.temp_dir() .. "/req.sock"
    local srv = assert(net.create_server { unix = path })
    local svc = h.echo_service(srv)
    local r, calls = recorded { host = path, data = "over unix\n", stop_pattern = "\n" }
    h.run_frames(function()
      local progressed = svc:step()
      return r:poll() ~= "waiting", progressed
    end, 20000)
    assert.is_nil(calls[1].err)
    assert.are.equal("over unix", calls[1].data)
    srv:close()
  end)

  it("runs many requests from a frame loop that never waits, with no reference kept", function()
    local peer = h.start_peer("echo")
    local results, count = {}, 40
    for i = 1, count do
      request {
        host = peer.host, port = peer.port, data = { "request ", tostring(i), string.rep("-", i * 100), "|END|" },
        stop_pattern = "|END|",
        callback = function(err, data) results[i] = results[i] and "called twice" or (err or data) end,
      }
    end
    local real_wait, waits, in_frame = net.wait, 0, false
    net.wait = function(...)
      if in_frame then waits = waits + 1 end
      return real_wait(...)
    end
    local ok, err = pcall(h.run_frames, function()
      collectgarbage()
      in_frame = true
      local left = request.update()
      in_frame = false
      return left == 0, false
    end, 30000)
    net.wait = real_wait
    if not ok then error(err, 0) end
    assert.are.equal(0, waits)
    for i = 1, count do
      assert.are.equal("request " .. i .. string.rep("-", i * 100), results[i])
    end
  end)

  it("in an editor, a thread of the editor calls update, so callbacks come without polling", function()
    local peer = h.start_peer("echo")
    local threads = {}
    local saved = package.loaded.core
    package.loaded.core = {
      add_thread = function(fn) threads[#threads + 1] = coroutine.create(fn) end,
      error = function(...) error(string.format(...)) end,
    }
    local ok, err = pcall(function()
      local got
      request { host = peer.host, port = peer.port, data = "via the editor\n", stop_pattern = "\n",
        callback = function(e, data) got = e or data end }
      request { host = peer.host, port = peer.port, data = "second\n", stop_pattern = "\n" }
      assert.are.equal(1, #threads)   -- one thread drives every request
      local co = threads[1]
      assert(h.wait_for(function()
        local resumed, v = coroutine.resume(co)
        assert(resumed, v)
        return coroutine.status(co) == "dead"   -- the thread ends once nothing runs
      end, 20000, 5))
      assert.are.equal("via the editor", got)
    end)
    package.loaded.core = saved
    if not ok then error(err, 0) end
  end)
end)
