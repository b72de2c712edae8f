-- packet_spec: sluice.packet, the seed `tcp` module's interface for scripts. JSON
-- packets and JSON lines against a Python peer that speaks them with its own json
-- module (tests/tools/json_packet_peer.py); raw strings through the echo peer; TLS
-- verified with the test CA and a certificate that fails; a packet over the 512 KiB
-- cap, text that is not JSON, a value JSON cannot hold; refused, silent and hanging-up
-- peers; the calls wait in net.wait, and yield inside an editor thread; wrap() over an
-- accepted connection; argument errors.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
local packet = require "sluice.packet"

local function start_json_peer(mode, tls)
  local args = { h.shell_quote(h.python), h.shell_quote(h.tools .. "json_packet_peer.py") }
  if tls then
    local certs = h.tls_certs()
    args[#args + 1] = "--cert " .. h.shell_quote(certs:pem(tls)) .. " --key " .. h.shell_quote(certs:key(tls))
  end
  args[#args + 1] = mode
  return h.start_server("json_packet_peer.py " .. mode, table.concat(args, " "), function(out)
    local p = out:match("^(%d+)\n")
    return p and math.tointeger(tonumber(p))
  end)
end

-- Counts the net.wait calls made while `fn` runs.
local function count_waits(fn)
  local real, n = net.wait, 0
  net.wait = function(...)
    n = n + 1
    return real(...)
  end
  local ok, err = pcall(fn)
  net.wait = real
  if not ok then error(err, 0) end
  return n
end

local VALUE = {
  name = "sluice", count = 3, ratio = 0.25, big = 9007199254740993, yes = true, no = false,
  list = { 1, "two", { three = 3 }, {} }, text = "tab\t quote\" backslash\\ é 漢字 😀",
  none = net.json_null,
}

describe("sluice.packet", function()
  after_each(function()
    h.stop_all()
  end)

  it("exchanges JSON packets with a peer speaking them with Python's json module", function()
    local peer = start_json_peer("packets")
    local conn = assert(packet.connect("127.0.0.1", peer.port, 10000))
    for i = 1, 3 do
      assert.is_true(conn:write_json_packet(VALUE))
      local reply = assert(conn:read_json_packet())
      assert.are.equal(i, reply.count)
      assert.are.equal(math.type(3), math.type(reply.echo.count))   -- integers stay integers
      assert.are.equal(9007199254740993, reply.echo.big)
      assert.are.equal(net.json_null, reply.echo.none)
      local echoed = reply.echo
      echoed.none = nil
      local want = {}
      for k, v in pairs(VALUE) do want[k] = v end
      want.none = nil
      assert.same(want, echoed)
    end
    -- a large packet, close to the cap
    local big = { data = string.rep("0123456789", 50000) }
    assert.is_true(conn:write_json_packet(big))
    assert.are.equal(big.data, assert(conn:read_json_packet()).echo.data)
    conn:close()
  end)

  it("JSON lines and raw strings", function()
    local peer = start_json_peer("lines")
    local conn = assert(packet.connect("127.0.0.1", peer.port, 10000))
    assert.is_true(conn:write_json({ "a", { b = 1 } }))
    assert.is_true(conn:write_json("second"))
    assert.same({ echo = { "a", { b = 1 } }, count = 1 }, assert(conn:read_json()))
    assert.same({ echo = "second", count = 2 }, assert(conn:read_json()))
    conn:close()

    local echo = h.start_peer("echo")
    conn = assert(packet.connect(echo.host, echo.port, 10000))
    local data = h.random_bytes(h.scaled(3 * h.MiB, 256 * h.KiB))   -- more than the send buffer
    local got = {}
    -- the echo needs reading while writing: write in slices, read back as we go
    local pos = 1
    while pos <= #data do
      local piece = data:sub(pos, pos + 256 * 1024 - 1)
      assert.is_true(conn:write_str(piece))
      got[#got + 1] = assert(conn:read_str(#piece))
      pos = pos + #piece
    end
    assert.is_true(table.concat(got) == data, "echoed bytes differ")
    assert.is_true(conn:write_str("xyz"))
    local some = assert(conn:read_str())
    assert.is_true(#some >= 1 and ("xyz"):sub(1, #some) == some)
    while #some < 3 do some = some .. assert(conn:read_str()) end
    -- blank lines between JSON lines (a stream's keep-alive) are skipped
    assert.is_true(conn:write_str("\n  \r\n" .. '{"after":"blank"}\n'))
    assert.same({ after = "blank" }, assert(conn:read_json()))
    conn:close()
  end)

  it("connect_tls verifies against the given CA, and reports a certificate that fails", function()
    local certs = h.tls_certs()
    local good = start_json_peer("packets", "good")
    local conn = assert(packet.connect_tls("127.0.0.1", good.port, 10000, { ca_file = certs.ca }))
    assert.is_true(conn:write_json_packet({ secure = true }))
    assert.same({ echo = { secure = true }, count = 1 }, assert(conn:read_json_packet()))
    conn:close()

    local bad = start_json_peer("packets", "selfsigned")
    local none, msg, code = packet.connect_tls("127.0.0.1", bad.port, 10000, { ca_file = certs.ca })
    assert.is_nil(none)
    assert.matches("certificate not trusted", msg)
    assert.are.equal("tls-verify", code)
  end)

  it("refuses a packet over 512 KiB, text that is not JSON, and values JSON cannot hold", function()
    local huge = start_json_peer("huge")
    local conn = assert(packet.connect("127.0.0.1", huge.port, 10000))
    local none, msg, code = conn:read_json_packet()
    assert.is_nil(none)
    assert.are.equal("limit", code)
    assert.is_string(msg)
    conn:close()

    local garbage = start_json_peer("garbage")
    conn = assert(packet.connect("127.0.0.1", garbage.port, 10000))
    none, msg, code = conn:read_json_packet()
    assert.is_nil(none)
    assert.matches("json_decode", msg)
    assert.are.equal("invalid", code)

    none, msg, code = conn:write_json_packet({ f = print })
    assert.is_nil(none)
    assert.matches("json_encode", msg)
    assert.are.equal("invalid", code)
    none, msg, code = conn:write_json_packet(string.rep("x", packet.MAX_PACKET))
    assert.is_nil(none)
    assert.are.equal("limit", code)
    conn:close()

    -- a JSON line over the cap fails the connection too: no call finds it again
    local hugeline = start_json_peer("hugeline")
    conn = assert(packet.connect("127.0.0.1", hugeline.port, 10000))
    assert.same({ nil, "read_json: no delimiter within 524288 bytes (the connection is closed)", "limit" },
      { conn:read_json() })
    assert.are.equal("closed", select(3, conn:read_json()))
    conn:close()
  end)

  it("read_json keeps its timeout, and yields, while a peer sends only blank lines", function()
    local blanks = start_json_peer("blanks")
    local conn = assert(packet.connect("127.0.0.1", blanks.port, 10000))
    conn:settimeout(300)
    local t0, r = net.clock(), nil
    local waits = count_waits(function() r = { conn:read_json() } end)
    assert.are.equal("timeout", r[3], tostring(r[2]))
    assert.is_true(net.clock() - t0 < 5, "held past its timeout while the peer sent blank lines")
    assert.is_true(waits >= 2, "waited in net.wait " .. waits .. " times")
    conn:close()
  end)

  it("reports refused ports, silent peers and peers that hang up", function()
    local none, msg, code = packet.connect("127.0.0.1", h.closed_port(), 10000)
    assert.is_nil(none)
    assert.matches("Connection refused", msg)
    assert.are.equal("refused", code)

    local hole = h.start_peer("blackhole")
    none, msg, code = packet.connect(hole.host, hole.port, 200)
    assert.is_nil(none)
    assert.are.equal("timeout", code)

    local silent = start_json_peer("silent")
    local conn = assert(packet.connect("127.0.0.1", silent.port, 10000))
    conn:settimeout(200)
    assert.is_true(conn:write_json_packet({ hello = 1 }))
    none, msg, code = conn:read_json_packet()
    assert.is_nil(none)
    assert.are.equal("timeout", code)
    assert.matches("nothing within 200 ms", msg)
    none, msg, code = conn:read_str(10)
    assert.same({ nil, "timeout" }, { none, code })
    conn:close()

    conn = assert(packet.connect("127.0.0.1", silent.port, 0))   -- 0: calls look once
    assert.is_true(conn:write_json_packet({ hello = 2 }))
    local t0 = net.clock()
    none, msg, code = conn:read_str(10)
    assert.is_nil(none)
    assert.are.equal("timeout", code, msg)
    assert.is_true(net.clock() - t0 < 0.5)
    conn:close()

    local hangup = start_json_peer("hangup")
    conn = assert(packet.connect("127.0.0.1", hangup.port, 10000))
    assert.is_true(conn:write_json_packet({ bye = true }))
    none, msg, code = conn:read_json_packet()
    assert.is_nil(none)
    assert.are.equal("closed", code)
    assert.matches("peer closed", msg)
    conn:close()
  end)

  it("closes a wrapped connection whose write timed out inside a packet larger than its send buffer", function()
    h.need_hosts_file()
    local srv = assert(net.create_server("127.0.0.1", 0))
    -- the name answers after 200 ms: until then nothing leaves the 16 KiB send buffer
    local raw = assert(net.open_tcp(net.resolve_address("sluice-slow.test"), srv:get_port(), { buffer_size = 16384 }))
    local conn = packet.wrap(raw, 50)
    local none, msg, code = conn:write_json_packet(string.rep("x", 100 * 1024))
    assert.is_nil(none)
    assert.are.equal("timeout", code)
    assert.matches("partly sent, so the connection is closed", msg, 1, true)
    assert.are.same({ nil, "closed", "closed" }, { raw:write("x") })
    -- one that fits waits whole, and the connection stays usable after its timeout
    raw = assert(net.open_tcp(net.resolve_address("sluice-slow.test"), srv:get_port(), { buffer_size = 16384 }))
    conn = packet.wrap(raw, 10000)
    assert.is_true(conn:write_json_packet(string.rep("y", 15 * 1024)))
    conn:settimeout(50)
    none, msg, code = conn:write_json_packet(string.rep("z", 10 * 1024))
    assert.are.same({ nil, "timeout" }, { none, code })
    assert.is_falsy(msg:find("partly", 1, true))
    assert.are.equal(0, raw:write(""))
    raw:close()
    srv:close()
  end)

  it("waits in net.wait, and inside an editor thread yields instead", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local conn = assert(packet.connect("127.0.0.1", srv:get_port(), 10000))
    local other = assert(h.accept_one(srv))
    local server_side = packet.wrap(other, 10000)
    conn:settimeout(200)
    local r
    local waits = count_waits(function() r = { conn:read_json_packet() } end)
    assert.are.equal("timeout", r[3])
    assert.is_true(waits >= 2, "waited in net.wait " .. waits .. " times")   -- each wait is 100 ms at most
    conn:settimeout(10000)
    assert.is_true(server_side:write_json_packet({ from = "server" }))
    assert.same({ from = "server" }, conn:read_json_packet())

    local saved = package.loaded.core
    local core = { add_thread = function() end, threads = {} }   -- an editor's, as sluice finds it
    package.loaded.core = core
    local ok, err = pcall(function()
      local got
      local co = coroutine.create(function() got = conn:read_json_packet() end)
      core.threads[1] = { cr = co, wake = 0 }
      local yields = 0
      local w = count_waits(function()
        for _ = 1, 3 do
          local resumed, v = coroutine.resume(co)
          assert(resumed, v)
          assert.are.equal("number", type(v))
          yields = yields + 1
        end
      end)
      assert.are.equal(0, w)
      assert.is_true(server_side:write_json_packet({ late = true }))
      assert(h.wait_for(function()
        assert(coroutine.resume(co))
        return coroutine.status(co) == "dead"
      end, 10000, 5))
      assert.same({ late = true }, got)
      assert.are.equal(3, yields)
    end)
    package.loaded.core = saved
    conn:close()
    server_side:close()
    srv:close()
    if not ok then error(err, 0) end
  end)

  it("raises on wrong arguments", function()
    h.assert_raises("string expected", function() packet.connect(1, 2) end)
    h.assert_raises("port must be an integer 1..65535", function() packet.connect("127.0.0.1", 0) end)
    h.assert_raises("timeout must be an integer number of ms", function() packet.connect("127.0.0.1", 1, 1.5) end)
    h.assert_raises("table expected", function() packet.connect_tls("127.0.0.1", 1, 100, true) end)
    h.assert_raises("a net connection expected", function() packet.wrap(nil) end)
    local echo = h.start_peer("echo")
    local conn = assert(packet.connect(echo.host, echo.port, 10000))
    h.assert_raises("string expected", function() conn:write_str(42) end)
    h.assert_raises("byte count must be an integer >= 1", function() conn:read_str(0) end)
    h.assert_raises("max must be an integer >= 0", function() conn:read_json_packet(-1) end)
    conn:close()
  end)
end)
