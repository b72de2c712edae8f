-- tls_failure_spec: TLS peers that misbehave or die. A peer that closes or resets in
-- the middle of the handshake, answers it with garbage, or never answers; a TLS server
-- killed in the middle of a transfer; connections dropped mid-handshake; 100 TLS
-- connections opened and closed (or abandoned) leave nothing behind; a Lua state that
-- ends with TLS connections open exits cleanly.
-- Servers: tests/tools/tls_echo.py (TLS modes, and hs-* modes without TLS).
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

describe("tls failures", function()
  local certs

  setup(function()
    certs = h.tls_certs()
  end)

  after_each(function()
    h.stop_all()
  end)

  local function open(port, host)
    return assert(net.open_tcp(host or "sluice-v4.test", port, { ca_file = certs.ca }))
  end

  -- The connection failed: the status, read and write all say so, with a message that
  -- names TLS or the peer's address. Returns the message and code.
  local function assert_failed(conn, port)
    local status, msg, code = h.wait_status(conn, 15000)
    assert.are.equal("failure", status, tostring(msg))
    assert.are.equal("string", type(msg))
    assert.are.equal("string", type(code))
    assert.truthy(msg:find("^tls") or msg:find("127.0.0.1:" .. port, 1, true), msg)
    local s, rm, rc = conn:read(10)
    assert.is_nil(s)
    assert.are.equal("string", type(rm))
    assert.are.equal("string", type(rc))
    local n = conn:write("x")
    assert.is_nil(n)
    assert.is_nil(conn:get_tls_info())
    return msg, code
  end

  for _, mode in ipairs({ "hs-close", "hs-reset" }) do
    it("fails when the peer " .. (mode == "hs-close" and "closes" or "resets")
      .. " in the middle of the handshake", function()
      local srv = h.start_tls_server(mode)
      for _ = 1, 5 do
        local conn = open(srv.port)
        local _, code = assert_failed(conn, srv.port)
        assert.are_not.equal("tls-verify", code)
        conn:close()
      end
      -- the server did see our ClientHello
      assert.truthy(srv:stderr():find("hs: read %d+ bytes"), srv:stderr())
    end)
  end

  it("fails with code tls when the peer answers the handshake with plain text", function()
    local srv = h.start_tls_server("hs-garbage")
    local conn = open(srv.port)
    local msg, code = assert_failed(conn, srv.port)
    assert.are.equal("tls", code, msg)
    assert.truthy(msg:find("^tls 127%.0%.0%.1:" .. srv.port .. ": handshake failed: "), msg)
    conn:close()
  end)

  it("says why a server that splits its handshake messages across records fails", function()
    -- mbedTLS 2.28 cannot reassemble them (a chain over 16 KiB is split the same way)
    local srv = h.start_s_server({ tls1_2 = true, extra = "-max_send_frag 512" })
    local conn = open(srv.port)
    local status, msg, code = h.wait_status(conn, 10000)
    if status == "success" and net.tls13 then   -- a newer mbedTLS may reassemble them
      conn:close()
      return
    end
    assert.are.equal("tls", code, msg)
    assert.matches("handshake message split across TLS records", msg, 1, true)
    conn:close()
  end)

  it("names the handshake when it is what outlasts connect_timeout", function()
    local srv = h.start_tls_server("hs-stall")
    local conn = assert(net.open_tcp("127.0.0.1", srv.port, { connect_timeout = 300, ssl = { verify = false } }))
    local status, msg, code = h.wait_status(conn, 10000)
    assert.are.same({ "failure", "timeout" }, { status, code })
    assert.are.equal(string.format("tls handshake 127.0.0.1:%d: timed out after 300 ms (connect_timeout)", srv.port),
      msg)
    conn:close()
  end)

  it("stays waiting while the peer never answers, and closes without trouble", function()
    local srv = h.start_tls_server("hs-stall")
    local before = h.wait_idle().connections
    local conns = {}
    for i = 1, 10 do conns[i] = open(srv.port) end
    h.sleep(300)
    for _, conn in ipairs(conns) do
      assert.are.equal("waiting", (conn:get_status()))
      assert.is_nil(conn:get_tls_info())
      assert.are.equal("", conn:read(10))
      conn:close()
    end
    conns = nil
    -- abandoned handshakes go away (bounded by the close linger time)
    assert.are.equal(before, h.wait_idle(15000).connections)
  end)

  it("fails when the TLS server is killed in the middle of a transfer", function()
    local srv = h.start_tls_server("echo")
    local conn = open(srv.port)
    assert.are.equal("success", (h.wait_status(conn)))
    local block = h.random_bytes(64 * 1024)
    local received, killed, writing = 0, false, true
    local deadline = net.clock() + 60
    local msg, code
    -- write and read until the kill, then keep reading what is left until the error
    while true do
      if writing then
        local n, wm, wc = conn:write(block)
        if not n then
          assert.is_true(killed, "write failed before the kill: " .. tostring(wm))
          -- a failed write says why, like every failed call
          assert.are.equal("string", type(wm))
          assert.truthy(#wm > 0, "write failed with an empty message")
          assert.are.equal("string", type(wc))
          assert.truthy(#wc > 0, "write failed with an empty code")
          writing = false
        end
      end
      local s, rm, rc = conn:read(256 * 1024)
      if not s then msg, code = rm, rc; break end
      received = received + #s
      if not killed and received >= 2 * h.MiB then
        srv:kill()
        killed = true
      end
      if #s == 0 then net.wait(5) end
      assert(net.clock() < deadline, "no failure 60 s after the kill")
    end
    assert.is_true(killed, "the connection failed before the server was killed: " .. tostring(msg))
    assert.are.equal("string", type(msg), "the stream ended without an error")
    -- a stream cut without close_notify ("tls") or a reset; never an orderly close
    assert.truthy(code == "tls" or code == "reset", tostring(code) .. ": " .. tostring(msg))
    assert.are.same({ "failure", msg, code }, { conn:get_status() })
    conn:close()
  end)

  it("opens and closes 100 TLS connections without leaking", function()
    local srv = h.start_tls_server("echo")
    h.wait_idle()
    local conns = {}
    for i = 1, 100 do
      conns[i] = open(srv.port, i % 2 == 0 and "127.0.0.1" or "sluice-v4.test")
      assert.are.equal(#("hello " .. i), conns[i]:write("hello " .. i))
    end
    for i, conn in ipairs(conns) do
      local want = "hello " .. i
      local got, msg, code = h.read_n(conn, #want, 30000)
      assert.are.equal(want, got, tostring(msg) .. " " .. tostring(code))
      assert.is_table(conn:get_tls_info())
    end
    assert.is_true(net.get_stats().connections >= 100)
    for _, conn in ipairs(conns) do conn:close() end
    conns = nil
    assert.are.equal(0, h.wait_idle(15000).connections)
  end)

  it("lets 100 TLS connections be closed or dropped in the middle of the handshake", function()
    local srv = h.start_tls_server("echo")
    h.wait_idle()
    for round = 1, 2 do
      local conns = {}
      for i = 1, 50 do conns[i] = open(srv.port) end
      if round == 2 then h.sleep(5) end   -- some will be further along
      for i = 1, 50 do
        if i % 2 == 0 then conns[i]:close() end   -- the others are just dropped
      end
      conns = nil
      collectgarbage()
      collectgarbage()
    end
    assert.are.equal(0, h.wait_idle(15000).connections)
  end)

  it("exits cleanly from a Lua state closed with TLS connections open", function()
    local srv = h.start_tls_server("sink")
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      local port, ca = math.tointeger(tonumber(arg[1])), arg[2]
      local conns = {}
      for i = 1, 5 do
        conns[i] = assert(net.open_tcp("sluice-v4.test", port, { ca_file = ca }))
      end
      -- one finished handshake with data written, the rest may still be handshaking
      local deadline = net.clock() + 10
      while conns[1]:get_status() == "waiting" and net.clock() < deadline do net.wait(10) end
      assert(conns[1]:get_status() == "success", (select(2, conns[1]:get_status())))
      local t = {}
      for j = 0, 999 do t[#t + 1] = string.char(((j * 2654435761) & 0xffffffff) >> 24) end
      assert(conns[1]:write(table.concat(t)) == 1000)
      print("done")
    ]], nil, tostring(srv.port), certs.ca)
    assert.is_true(ok, err)
    assert.are.equal("done\n", out)
    assert.are.equal("", err)
    -- the data written just before the end was delivered, then close_notify
    local lines = h.wait_for(function()
      for _, line in ipairs(srv:lines()) do
        if line:match("^sink 1000 ") then return line end
      end
    end, 10000)
    assert.are.equal("sink 1000 ok close_notify", lines)
  end)
end)
