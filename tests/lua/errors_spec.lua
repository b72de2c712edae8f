-- errors_spec: run-time failures are reported as statuses with stable codes (refused,
-- dns), writes before the connection is up are kept, and close() still delivers what
-- was accepted.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

-- A loopback port nobody listens on: bind it with a peer, then stop the peer.
local function dead_port()
  local peer = h.start_peer("close")
  local port = peer.port
  peer:stop()
  return port
end

describe("errors", function()
  after_each(function()
    h.stop_all()
  end)

  it("reports a refused connection", function()
    local port = dead_port()
    local conn = assert(net.open_tcp("127.0.0.1", port))
    local status, msg, code = conn:wait_until_connected(10000)
    assert.are.equal("failure", status)
    assert.are.equal(string.format("connect 127.0.0.1:%d: Connection refused", port), msg)
    assert.are.equal("refused", code)
    assert.are.same({ "failure", msg, "refused" }, { conn:get_status() })
    -- reads and writes on the failed connection report the failure
    local s, m, c = conn:read(10)
    assert.is_nil(s)
    assert.are.equal("string", type(m))
    assert.are.equal("refused", c)
    local n, wm, wc = conn:write("x")
    assert.is_nil(n)
    assert.are.equal("string", type(wm))
    assert.are.equal("refused", wc)
    assert.is_nil(conn:get_address())
    conn:close()
    assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
  end)

  it("reports a refused IPv6 connection", function()
    local peer = h.start_peer("close", nil, { ipv6 = true })
    local port = peer.port
    peer:stop()
    local conn = assert(net.open_tcp("::1", port))
    local status, msg, code = conn:wait_until_connected(10000)
    assert.are.equal("failure", status)
    assert.truthy(msg:find("Connection refused", 1, true), msg)
    assert.are.equal("refused", code)
    conn:close()
  end)

  it("reports a name that cannot resolve as a dns failure", function()
    local conn = assert(net.open_tcp("no-such-host.invalid", 80))
    local status, msg, code = conn:wait_until_connected(10000)
    assert.are.equal("failure", status)
    assert.are.equal("string", type(msg))
    assert.are.equal("dns", code)
    local s, _, c = conn:read(1)
    assert.is_nil(s)
    assert.are.equal("dns", c)
    conn:close()
  end)

  it("keeps a long message's reason whole: the middle of a long host name gives way", function()
    local name = string.rep("a", 60) .. "." .. string.rep("b", 60) .. "." .. string.rep("c", 60) .. "."
      .. string.rep("d", 60) .. ".test"   -- 248 bytes, a valid name
    local conn = assert(net.open_tcp(name, 80))
    local status, msg, code = conn:wait_until_connected(10000)
    assert.are.equal("failure", status)
    assert.are.equal("dns", code)
    assert.is_true(#msg < 192, msg)
    assert.matches("^resolve aaaa+%.%.%.[bcd.]+%.test: not in the test hosts file$", msg)
    conn:close()
    conn = assert(net.open_tcp("::1", h.closed_port(), { family = "inet" }))
    status, msg = conn:wait_until_connected(10000)
    assert.are.equal("failure", status)
    assert.matches("^connect %[::1%]:%d+: no address of the requested family$", msg)
    conn:close()
  end)

  it("passes an address object's resolution failure on to the connection", function()
    local addr = assert(net.resolve_address("no-such-host.invalid"))
    local conn = assert(net.open_tcp(addr, 80))
    local status, _, code = conn:wait_until_connected(10000)
    assert.are.equal("failure", status)
    assert.are.equal("dns", code)
    -- also when the address had already failed before open_tcp
    assert.are.equal("failure", (addr:get_status()))
    local conn2 = assert(net.open_tcp(addr, 80))
    status, _, code = conn2:wait_until_connected(10000)
    assert.are.equal("failure", status)
    assert.are.equal("dns", code)
    conn:close()
    conn2:close()
  end)

  it("keeps data written before the connection is up", function()
    local peer = h.start_peer("echo")
    -- By name, so the connection is certainly still waiting for the resolver at first.
    local conn = assert(net.open_tcp("sluice-v4.test", peer.port))
    local first = conn:get_status()
    local payload = h.random_bytes(300 * h.KiB)
    local n = conn:write(payload)
    assert.are.equal(#payload, n)   -- below the 1 MiB cap: all of it is accepted
    assert.is_true(conn:get_pending_writes() <= #payload)
    local back, msg = h.read_n(conn, #payload, 20000)
    assert.is_nil(msg)
    assert.is_true(back == payload, "echoed data differs")
    assert.are.equal(0, conn:wait_until_drained(5000))
    assert.is_true(first == "waiting" or first == "success")
    conn:close()
  end)

  it("delivers every accepted byte after close()", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local conn, accepted = h.connect_pair(srv)
    accepted:pause_read()   -- the peer takes nothing yet: close() comes with bytes still queued
    -- more than the kernel's buffers on both ends hold: net's buffer fills behind them
    local payload = h.random_bytes(h.MiB):rep(24)
    local sent = 0
    assert(h.wait_for(function()   -- until the send buffer is full
      local n = assert(conn:write(payload, sent + 1))
      sent = sent + n
      assert(sent < #payload, "the kernel took it all: nothing to be pending")
      return n == 0 and conn:get_pending_writes() > 0
    end, 10000, 1), "the send buffer never filled")
    local pending = conn:get_pending_writes()
    conn:close()
    assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
    assert.are.equal(0, conn:get_pending_writes())
    accepted:resume_read()
    local got, msg = h.read_all(accepted, nil, 30000)
    assert.is_nil(msg)
    assert.are.equal(sent, #got)
    assert.is_true(got == payload:sub(1, sent), "the bytes differ")
    assert.is_true(pending > 0, "nothing was pending at close()")
    accepted:close()
    srv:close()
  end)

  it("delivers what an open connection holds when the program exits without closing it", function()
    -- a peer that starts reading half a second late: the bytes wait in net's buffer at the exit
    local slow = [[
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept(); time.sleep(0.5); n = 0
while True:
    d = c.recv(1 << 20)
    if not d: break
    n += len(d)
print("got", n, flush=True)
]]
    local peer = h.start_server("slow sink", h.shell_quote(h.python) .. " -c " .. h.shell_quote(slow), function(o)
      return math.tointeger(tonumber(o:match("^(%d+)\n")))
    end)
    local total = 3 * h.MiB
    local ok, out, err = h.run_lua_child([[
      local h = require "helpers"
      local net = require "net"
      local conn = assert(net.open_tcp("127.0.0.1", tonumber(...)))
      local data = string.rep("e", 3 << 20)
      assert(h.write_all(conn, data, 30000))
      print("pending", conn:get_pending_writes())
      os.exit(0)   -- no close, no collection: the process ends with the bytes in net's buffer
    ]], nil, peer.port)
    assert.is_true(ok, out .. err)
    local got = h.wait_for(function() return (h.read_file(peer.out) or ""):match("got (%d+)") end, 30000)
    assert.are.equal(tostring(total), got, out)
    peer:stop()
  end)

  it("delivers bytes written while connecting, then closed at once", function()
    local peer = h.start_peer("sink")
    local n = 10
    for i = 1, n do
      local conn = assert(net.open_tcp("127.0.0.1", peer.port))
      assert.are.equal(6, conn:write(string.format("conn%02d", i)))
      conn:close()   -- most likely still "waiting" here
    end
    local sinks = peer:wait_sinks(n, 20000)
    assert.truthy(sinks, string.format("the sink saw %d of %d streams end: %s",
      #peer:sinks(), n, table.concat(peer:lines(), "; ")))
    local want = {}
    for i = 1, n do want[h.hex64(h.fnv1a(string.format("conn%02d", i)))] = true end
    for _, s in ipairs(sinks) do
      assert.are.equal(6, s.bytes)
      assert.truthy(want[s.hash], "unexpected stream content")
    end
  end)

  it("delivers every byte when the connection object is just dropped", function()
    local peer = h.start_peer("sink")
    local payload = h.random_bytes(512 * h.KiB)
    do
      local conn = assert(net.open_tcp("127.0.0.1", peer.port))
      assert.is_true(h.write_all(conn, payload, 30000))
    end
    collectgarbage()
    collectgarbage()
    local sinks = peer:wait_sinks(1, 30000)
    assert.truthy(sinks, "the sink never saw the end of the stream")
    assert.are.equal(#payload, sinks[1].bytes)
    assert.are.equal(h.hex64(h.fnv1a(payload)), sinks[1].hash)
  end)

  it("closes with a <close> variable", function()
    local peer = h.start_peer("sink")
    local c
    do
      local conn <close> = assert(net.open_tcp("127.0.0.1", peer.port))
      c = conn
      assert.is_true(h.write_all(conn, "goodbye", 10000))
    end
    assert.are.same({ "failure", "closed", "closed" }, { c:get_status() })
    local sinks = peer:wait_sinks(1, 20000)
    assert.truthy(sinks)
    assert.are.equal(7, sinks[1].bytes)
    assert.are.equal(h.hex64(h.fnv1a("goodbye")), sinks[1].hash)
  end)
end)
