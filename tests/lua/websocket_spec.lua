-- websocket_spec: WebSockets (net.open_websocket, create_server{websocket}) against real
-- peers on loopback: Python's websockets (tests/tools/ws_py_peer.py) and Node's ws
-- (tests/tools/ws_node_peer.js) as echo servers and as clients, plain and TLS (the test
-- CA; an untrusted one fails), subprotocols, custom headers, compression on and off,
-- max_message, pings both ways, a dead peer ("timeout"), an owner that stops polling,
-- the closing handshake both ways; our server's path and upgrade checks; the case table
-- of tests/tools/ws_cases.py (Autobahn's sections, hand-made frames) in both roles;
-- 64 MiB of random messages echoed (8 MiB under asan/tsan); proxies (tinyproxy,
-- microsocks); failures: bad handshake answers, connect/close timeouts, a refused
-- port, a killed peer, a full send queue, messages read late after the peer's close.
-- Peers start here on 127.0.0.1 and stop by PID.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

local q = h.shell_quote
local PY = "/usr/bin/python3"
local slow = h.mode == "asan" or h.mode == "tsan"
local WAIT = slow and 60000 or 20000   -- ms for one exchange; only ever reached on failure
local CASE_MAX = 2 * h.MiB             -- max_message of the side the case table tests

local function have(cmd)
  return os.execute("command -v " .. cmd .. " >/dev/null 2>&1") == true
end
local have_node = have("node") and io.open("/usr/share/nodejs/ws/package.json") ~= nil

local function port_line(out)
  local p = out:match("^(%d+)\n")
  return p and math.tointeger(tonumber(p))
end

-- Peer processes. kind: "py" | "node"; args: extra command-line words (a string).
local function peer_cmd(kind, role, args)
  if kind == "py" then
    return q(PY) .. " " .. q(h.tools .. "ws_py_peer.py") .. " " .. role .. " " .. args
  end
  return "env NODE_PATH=/usr/share/nodejs node " .. q(h.tools .. "ws_node_peer.js") .. " " .. role .. " " .. args
end

local function start_peer(kind, args)
  return h.start_server("ws " .. kind .. " server", peer_cmd(kind, "server", args or ""), port_line)
end

local function tls_args()
  local c = h.tls_certs()
  return "--cert " .. q(c:pem("good")) .. " --key " .. q(c:key("good"))
end

-- Opens and waits for the outcome: ws, status, message, code.
local function open(url, opts)
  local ws, msg, code = net.open_websocket(url, opts)
  if not ws then return nil, "failure", msg, code end
  return ws, h.wait_status(ws, WAIT)
end

local function open_ok(url, opts)
  local ws, status, msg, code = open(url, opts)
  assert.are.equal("success", status, string.format("%s: %s (%s)", url, tostring(msg), tostring(code)))
  return ws
end

-- The next message: data, kind; or nil, message, code on failure / timeout.
local function recv(ws, timeout_ms)
  local r
  h.wait_for(function()
    r = table.pack(ws:receive())
    return r[1] ~= nil or r[2] ~= nil
  end, timeout_ms or WAIT, 5)
  if r[1] == nil and r[2] == nil then return nil, "recv: nothing within the time limit", "timeout" end
  return table.unpack(r, 1, r.n)
end

-- ws:send, retried while the send queue is full: its results.
local function send_ok(ws, data, kind)
  local done, ok, msg, code = h.wait_for(function()
    local ok, msg, code = ws:send(data, kind)
    if ok == false and code == "limit" then return nil end
    return true, ok, msg, code
  end, WAIT, 5)
  assert(done, "send: the queue stayed full")
  return ok, msg, code
end

local function roundtrip(ws, data, kind)
  assert.is_true(send_ok(ws, data, kind))
  local got, k = recv(ws)
  assert(got, "no echo: " .. tostring(k))
  assert.are.equal(kind or "text", k)
  assert(got == data, string.format("echo differs: %d bytes sent, %d back", #data, #got))
end

-- Wait until the websocket failed (reading what still comes); returns status, msg, code.
local function wait_end(ws, timeout_ms)
  local r
  h.wait_for(function()
    while ws:receive() do end
    r = table.pack(ws:get_status())
    return r[1] == "failure"
  end, timeout_ms or WAIT, 5)
  return table.unpack(r, 1, r.n)
end

local function info(ws)
  assert.is_true(send_ok(ws, "__info"))
  local s = assert(recv(ws))
  return assert(net.json_decode(s))
end

-- The peer's log lines starting with prefix.
local function lines_with(peer, prefix)
  local t = {}
  for _, l in ipairs(peer:lines()) do
    if l:sub(1, #prefix) == prefix then t[#t + 1] = l end
  end
  return t
end

--------------------------------------------------------------------------------
describe("websocket client", function()
  local certs
  setup(function() certs = h.tls_certs() end)
  after_each(function() h.stop_all() end)

  for _, kind in ipairs({ "py", "node" }) do
    local name = kind == "py" and "Python websockets" or "Node ws"
    local maybe = (kind == "py" or have_node) and it or pending

    maybe("echoes text and binary messages of many sizes with " .. name .. " (compressed)", function()
      local p = start_peer(kind)
      local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/echo")
      assert.matches("^permessage%-deflate", ws:get_extensions() or "")
      assert.is_nil(ws:get_protocol())
      for _, n in ipairs({ 0, 1, 125, 126, 65535, 65536, 300000 }) do
        roundtrip(ws, string.rep("é", n // 2), "text")
        roundtrip(ws, h.random_bytes(n), "binary")
      end
      -- repeats 8 KiB apart: past a 12-bit window the peer may have asked for
      roundtrip(ws, h.random_bytes(8192):rep(4), "binary")
      roundtrip(ws, h.random_bytes(20000):rep(3), "binary")
      assert.is_true(ws:close())
      assert.are.equal("failure", (wait_end(ws)))
      assert.are.same({ 1000 }, { (ws:get_close()) })
    end)

    maybe("compress = false offers no extension to " .. name, function()
      local p = start_peer(kind)
      local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/", { compress = false })
      assert.is_nil(ws:get_extensions())
      roundtrip(ws, string.rep("abc", 10000))
      assert.are.equal("conn path=/ protocol=None extensions=None", lines_with(p, "conn")[1])
    end)

    maybe("wss:// to " .. name .. " verified with the test CA", function()
      local p = start_peer(kind, tls_args())
      local ws = open_ok("wss://127.0.0.1:" .. p.port .. "/tls", { ssl = { ca_file = certs.ca } })
      roundtrip(ws, "over TLS")
      roundtrip(ws, h.random_bytes(200000), "binary")
    end)

    maybe("wss:// to " .. name .. " fails when the CA is not trusted", function()
      local p = start_peer(kind, tls_args())
      local ws, status, msg, code = open("wss://127.0.0.1:" .. p.port .. "/tls", { ssl = { ca_file = certs:pem("other-ca") } })
      assert.are.equal("failure", status)
      assert.are.equal("tls-verify", code, msg)
      if ws then assert.is_nil(ws:receive()) end
    end)

    maybe("negotiates a subprotocol with " .. name .. " and sends custom headers", function()
      local p = start_peer(kind, "--protocols chat,superchat")
      local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/sub?x=1",
        { protocols = { "superchat", "other" }, headers = { ["X-Sluice-Test"] = "value 1" } })
      assert.are.equal("superchat", ws:get_protocol())
      local i = info(ws)
      assert.are.equal("/sub?x=1", i.path)
      assert.are.equal("value 1", i.headers["x-sluice-test"])
      assert.are.equal("superchat", i.protocol)
    end)

    maybe("gets no subprotocol when " .. name .. " has none of ours", function()
      local p = start_peer(kind, "--protocols chat")
      local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/", { protocols = { "other" } })
      assert.is_nil(ws:get_protocol())
      roundtrip(ws, "still fine")
    end)

    maybe("max_message: a bigger message from " .. name .. " closes with 1009, 'limit'", function()
      local p = start_peer(kind)
      local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/", { max_message = 1000 })
      assert.is_true(send_ok(ws, "__big 1000"))
      local got, k = recv(ws)
      assert.are.equal(1000, got and #got, tostring(k))
      assert.is_true(send_ok(ws, "__big 1001"))
      local status, msg, code = wait_end(ws)
      assert.are.equal("failure", status)
      assert.are.equal("limit", code, msg)
      assert.are.equal(1009, (ws:get_close()))
      assert(h.wait_for(function() return lines_with(p, "end code=1009")[1] end, WAIT),
        "the peer did not see close 1009: " .. table.concat(p:lines(), " | "))
      h.assert_raises("max_message", function() ws:send(string.rep("x", 1001)) end)
    end)

    if kind == "py" then
      it("takes a compressed message of max_message bytes from " .. name .. " in many flushed fragments", function()
        local p = start_peer(kind)
        local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/", { max_message = 65536 })
        assert.matches("^permessage%-deflate", ws:get_extensions() or "")
        assert.is_true(send_ok(ws, "__frags 256 256"))
        local got, k, code = recv(ws)
        assert.are.equal(65536, got and #got, tostring(k) .. " " .. tostring(code))
      end)
    end

    maybe("answers " .. name .. "'s ping with a pong; ping() reaches it", function()
      local p = start_peer(kind)
      local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/")
      assert.is_true(send_ok(ws, "__ping hello"))
      assert.are.equal("__pong hello", (recv(ws)))
      assert.is_true(ws:ping("from lua"))
      assert.is_true(ws:ping())
      roundtrip(ws, "after pings")
      h.assert_raises("a ping carries at most 125 bytes", function() ws:ping(string.rep("p", 126)) end)
    end)

    maybe("send queue to a stopped " .. name .. " fills: false, 'limit'; then drains", function()
      local p = start_peer(kind)
      local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/", { compress = false })
      roundtrip(ws, "alive")
      os.execute("kill -STOP " .. p.pid)
      local chunk, queued, limited = h.random_bytes(256 * 1024), 0, nil
      for _ = 1, 2048 do   -- 512 MiB at most: a queue without a cap would take it all
        local ok, msg, code = ws:send(chunk, "binary")
        if ok == false then limited = { msg, code } break end
        assert(ok, msg)
        queued = queued + 1
      end
      os.execute("kill -CONT " .. p.pid)
      assert(limited, "2048 messages of 256 KiB queued without 'limit'")
      assert.are.equal("limit", limited[2])
      for i = 1, queued do
        local got, k = recv(ws)
        assert(got == chunk, "echo " .. i .. " of " .. queued .. ": " .. tostring(k))
      end
      roundtrip(ws, "after the queue drained")
    end)

    maybe("closing handshake started by " .. name .. ": code and reason", function()
      local p = start_peer(kind)
      local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/")
      assert.is_true(send_ok(ws, "__close 4001 going away now"))
      local status, msg, code = wait_end(ws)
      assert.are.same({ "failure", "closed", "closed" }, { status, msg, code })
      assert.are.same({ 4001, "going away now" }, { ws:get_close() })
      assert.are.same({ nil, "closed", "closed" }, { ws:receive() })
      local ok, _, scode = ws:send("late")
      assert.is_falsy(ok)
      assert.are.equal("closed", scode)
    end)

    maybe("closing handshake started here with " .. name .. ": code and reason reach it", function()
      local p = start_peer(kind)
      local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/")
      assert.is_true(send_ok(ws, "queued before close"))
      assert.is_true(ws:close(4000, "bye é"))
      -- (the peer may not echo it: it answers our close frame before its handler runs)
      local status, msg, code = wait_end(ws)
      assert.are.same({ "failure", "closed", "closed" }, { status, msg, code })
      assert.are.equal(4000, (ws:get_close()))
      assert(h.wait_for(function() return lines_with(p, "end code=4000 reason=bye é")[1] end, WAIT),
        "the peer's log: " .. table.concat(p:lines(), " | "))
    end)
  end

  it("wss:// by name: the certificate is checked against the URL's host", function()
    local p = start_peer("py", tls_args())
    local ws = open_ok("wss://sluice-v4.test:" .. p.port .. "/", { ssl = { ca_file = certs.ca } })
    roundtrip(ws, "by name")
    local w = start_peer("py", "--cert " .. q(certs:pem("wrongname")) .. " --key " .. q(certs:key("wrongname")))
    local _, status, msg, code = open("wss://sluice-v4.test:" .. w.port .. "/", { ssl = { ca_file = certs.ca } })
    assert.are.equal("failure", status)
    assert.are.equal("tls-verify", code, msg)
  end)

  local it6 = h.ipv6_loopback() and it or pending
  it6("ws://[::1]:port/ reaches a server of ours on the IPv6 loopback", function()
    local server = assert(net.create_server("::1", 0, { websocket = true }))
    local ws = assert(net.open_websocket("ws://[::1]:" .. server:get_port() .. "/six"))
    local peer
    h.run_frames(function()
      peer = peer or server:accept()
      return peer ~= nil and ws:get_status() ~= "waiting"
    end, WAIT)
    assert.are.equal("success", ws:get_status())
    assert.are.equal("/six", (peer:get_request()))
    assert(ws:send("over six"))
    local got
    h.run_frames(function() got = peer:receive() return got ~= nil end, WAIT)
    assert.are.equal("over six", got)
    assert.are.equal("::1", (ws:get_peer()))
  end)

  it("keeps a connection the peer pings while the owner does not poll for 2 s", function()
    -- the peer pings every 0.2 s and gives up 1 s after a ping without pong
    local p = start_peer("py", "--ping-interval 0.2 --ping-timeout 1")
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/")
    os.execute("sleep 2")   -- the frame loop stalls: no call into net at all
    roundtrip(ws, "still here")
    assert.are.equal(0, #lines_with(p, "end"), "the peer ended: " .. table.concat(p:lines(), " | "))
  end)

  it("send after a failure gives the failure's code, while the messages before it wait unread", function()
    local p = h.start_server("ws_cases.py server", q(PY) .. " " .. q(h.tools .. "ws_cases.py") .. " server", port_line)
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/msgbad")
    local r = h.wait_for(function()   -- no receive yet: "one" waits
      local t = table.pack(ws:send("x"))
      if t[1] == nil then return t end
    end, 10000, 10)
    assert(r, "send never failed")
    assert.are.equal("protocol", r[3], tostring(r[2]))
    assert.matches("reserved opcode", r[2])
    assert.same({ "one", "text" }, { ws:receive() })
    assert.are.equal("protocol", select(3, ws:receive()))
    ws:close()
  end)

  it("keep-alive pings: a peer that never answers fails with 'timeout'", function()
    local p = h.start_server("ws_cases.py server", q(PY) .. " " .. q(h.tools .. "ws_cases.py") .. " server", port_line)
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/hang", { ping_interval = 200, ping_timeout = 300 })
    local status, msg, code = wait_end(ws)
    assert.are.equal("failure", status)
    assert.are.equal("timeout", code, msg)
  end)

  it("keep-alive pings: a stopped peer process (SIGSTOP) fails with 'timeout'", function()
    local p = start_peer("py")
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/", { ping_interval = 200, ping_timeout = 300 })
    roundtrip(ws, "alive")
    os.execute("kill -STOP " .. p.pid)
    local status, msg, code = wait_end(ws)
    os.execute("kill -CONT " .. p.pid)
    assert.are.equal("failure", status)
    assert.are.equal("timeout", code, msg)
  end)

  it("keep-alive pings: a frame that takes longer than the timeout to arrive is no silence", function()
    local p = h.start_server("ws_cases.py server", q(PY) .. " " .. q(h.tools .. "ws_cases.py") .. " server", port_line)
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/slow", { ping_interval = 200, ping_timeout = 300 })
    local got, kind, code = recv(ws)
    assert(got, "no message: " .. tostring(kind) .. " " .. tostring(code))
    assert.are.equal("binary", kind)
    assert.are.equal(2 * h.MiB, #got)
    ws:close()
  end)

  it("keep-alive pings: no timeout while our own full queue stops reading, and no message lost", function()
    local p = h.start_server("ws_cases.py server", q(PY) .. " " .. q(h.tools .. "ws_cases.py") .. " server", port_line)
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/flood",
      { ping_interval = 200, ping_timeout = 300, max_message = 65536, compress = false })
    h.sleep(1500)   -- 40 x 64 KiB: more than the owner's queue holds
    for i = 0, 39 do
      local got, kind, code = recv(ws)
      assert(got, "message " .. i .. ": " .. tostring(kind) .. " " .. tostring(code))
      assert(got == string.rep(string.char(i), 65536), "message " .. i .. " differs")
    end
    assert.are.equal("success", (ws:get_status()))
    ws:close()
  end)

  it("after our close, an owner reading slowly gets every message the peer sent before its close", function()
    local p = h.start_server("ws_cases.py server", q(PY) .. " " .. q(h.tools .. "ws_cases.py") .. " server", port_line)
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/flood",
      { close_timeout = 300, max_message = 65536, compress = false })
    h.sleep(300)   -- the owner's queue full, the rest in the kernel's buffers
    assert.is_true(ws:close(1000))
    for i = 0, 39 do   -- 2 s in all: close_timeout counts from what moved last
      local got, kind, code = recv(ws)
      assert(got, "message " .. i .. ": " .. tostring(kind) .. " " .. tostring(code))
      assert(got == string.rep(string.char(i), 65536), "message " .. i .. " differs")
      h.sleep(50)
    end
    local status, msg, code = wait_end(ws)
    assert.are.same({ "failure", "closed", "closed" }, { status, msg, code })
    assert.are.equal(1000, (ws:get_close()))
  end)

  it("close_timeout ends the close with a peer that ignores it and sends on, though the owner reads", function()
    local p = h.start_server("ws_cases.py server", q(PY) .. " " .. q(h.tools .. "ws_cases.py") .. " server", port_line)
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/stream", { close_timeout = 300, compress = false })
    assert(recv(ws), "no tick")
    local t0 = net.clock()
    assert.is_true(ws:close(1000))
    local status, msg, code = wait_end(ws)   -- reads all the while
    assert.are.same({ "failure", "timeout" }, { status, code }, msg)
    assert.is_true(net.clock() - t0 < 10, "the close took " .. (net.clock() - t0) .. " s")
  end)

  it("keep-alive pings keep a live peer", function()
    local p = start_peer("py")
    -- several timeouts long: only pongs answered in time keep it open
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/", { ping_interval = 100, ping_timeout = 300 })
    h.sleep(1500)
    assert.are.equal("success", (ws:get_status()))
    roundtrip(ws, "alive after pings")
  end)

  it("raises on a text message that is not UTF-8, a bad close code or reason, a long ping", function()
    local p = start_peer("py")
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/")
    h.assert_raises("UTF-8", function() ws:send("bad \xff", "text") end)
    h.assert_raises("invalid option 'neither'", function() ws:send("x", "neither") end)
    for _, code in ipairs({ 0, 999, 1004, 1005, 1006, 1015, 2000, 5000 }) do
      h.assert_raises("close code", function() ws:close(code) end)
    end
    h.assert_raises("reason", function() ws:close(1000, string.rep("r", 124)) end)
    h.assert_raises("reason", function() ws:close(1000, "bad \xff") end)
    h.assert_raises("a ping carries at most 125 bytes", function() ws:ping(string.rep("p", 126)) end)
    roundtrip(ws, "still open after the refused calls")
    local ip, port = ws:get_peer()
    assert.are.same({ "127.0.0.1", p.port }, { ip, port })
    do local _ <close> = ws end   -- released, as a to-be-closed variable leaving scope does
    for _, code in ipairs({ 1005, 2000 }) do   -- its arguments are still checked
      h.assert_raises("close code", function() ws:close(code) end)
    end
    h.assert_raises("reason", function() ws:close(1000, "bad \xff") end)
    h.assert_raises("UTF-8", function() ws:send("bad \xff", "text") end)
    h.assert_raises("a ping carries at most 125 bytes", function() ws:ping(string.rep("p", 126)) end)
    assert.are.same({ nil, "closed", "closed" }, { ws:send("fine") })
  end)

  it("refuses URLs it cannot use and raises on bad options", function()
    local ws, msg, code = net.open_websocket("http://127.0.0.1:1/")
    assert.is_nil(ws)
    assert.are.equal("invalid", code, msg)
    h.assert_raises("unknown open_websocket option 'nonsense'", function()
      net.open_websocket("ws://127.0.0.1:1/", { nonsense = true })
    end)
    h.assert_raises("option 'max_message' must be an integer", function()
      net.open_websocket("ws://127.0.0.1:1/", { max_message = "big" })
    end)
    for _, name in ipairs({ "Host", "upgrade", "Sec-WebSocket-Key", "sec-websocket-accept" }) do   -- the handshake's own fields
      ws, msg, code = net.open_websocket("ws://127.0.0.1:1/", { headers = { [name] = "x" } })
      assert.is_nil(ws, name)
      assert.are.equal("invalid", code, msg)
      assert.matches("handshake's own", msg)
    end
  end)
end)

--------------------------------------------------------------------------------
-- Our server, driven by this frame loop: echoes every message with its type.
local function ws_echo_server(opts, ssl)
  local server = assert(net.create_server("127.0.0.1", 0, { websocket = opts or true, ssl = ssl }))
  local svc = { server = server, conns = {}, accepted = {}, errors = {} }
  function svc:step()
    local progressed = false
    while true do
      local ws = self.server:accept()
      if not ws then break end
      self.conns[#self.conns + 1] = { ws = ws }
      self.accepted[#self.accepted + 1] = ws
      progressed = true
    end
    for i = #self.conns, 1, -1 do
      local e = self.conns[i]
      for _ = 1, 16 do
        if not e.m then
          local m, kind = e.ws:receive()
          if not m then
            if kind then table.remove(self.conns, i) end   -- failed or closed
            break
          end
          e.m, e.kind, progressed = m, kind, true
        end
        local ok, msg, code = e.ws:send(e.m, e.kind)
        if ok == false and code == "limit" then break end   -- the send queue is full: later
        if not ok then self.errors[#self.errors + 1] = msg end
        e.m, progressed = nil, true
      end
    end
    return progressed
  end
  -- Runs the service until the child process `p` ended; returns its result line.
  function svc:serve_until_exit(p, timeout_ms)
    h.run_frames(function()
      local progressed = self:step()
      return not p:alive(), progressed
    end, timeout_ms or 120000, function() return p:stdout() .. p:stderr() end)
    self:step()
    return p:stdout()
  end
  return svc
end

-- What the server's websockets say: status, message, code, get_close() of each.
local function server_side(svc)
  local t = {}
  for i, ws in ipairs(svc.accepted) do
    local st = table.pack(ws:get_status())
    t[#t + 1] = ("#%d %s %s %s close %s"):format(i, tostring(st[1]), tostring(st[2]), tostring(st[3]),
      tostring((ws:get_close())))
  end
  return table.concat(t, "; ")
end

-- Runs the peer's client against svc; its result line (with what our side said
-- appended when it is not "result ok").
local function run_client(svc, kind, url, args)
  local p = h.spawn("ws " .. kind .. " client", peer_cmd(kind, "client", q(url) .. " " .. (args or "")))
  local out = svc:serve_until_exit(p, slow and 300000 or 120000)
  local r = out:match("result [^\n]*") or ("no result: " .. out .. p:stderr())
  if not r:match("^result ok ") then r = r .. " [our side: " .. server_side(svc) .. "]" end
  return r
end

describe("websocket server", function()
  local certs
  setup(function() certs = h.tls_certs() end)
  after_each(function() h.stop_all() end)

  for _, kind in ipairs({ "py", "node" }) do
    local name = kind == "py" and "Python websockets" or "Node ws"
    local maybe = (kind == "py" or have_node) and it or pending

    maybe("echoes for the " .. name .. " client (compressed), with its headers in get_request", function()
      local svc = ws_echo_server({ path = { "/chat", "/other" } })
      local port = svc.server:get_port()
      local r = run_client(svc, kind, "ws://127.0.0.1:" .. port .. "/chat?room=1",
        "--count 40 --max 100000 --header X-Who:" .. kind)
      assert.matches("^result ok count=40 ", r)
      assert.matches("extensions=permessage%-deflate", r)
      assert.matches("close=1000", r)
      local ws = svc.accepted[1]
      local target, headers = ws:get_request()
      assert.are.equal("/chat?room=1", target)
      assert.are.equal(kind, headers["x-who"])
      assert.matches("^permessage%-deflate", ws:get_extensions() or "")
    end)

    maybe("echoes for the " .. name .. " client without compression", function()
      local svc = ws_echo_server()
      local r = run_client(svc, kind, "ws://127.0.0.1:" .. svc.server:get_port() .. "/", "--count 20 --max 50000 --no-compress")
      assert.matches("^result ok count=20 ", r)
      assert.matches("extensions=%-", r)
    end)

    maybe("wss:// echoes for the " .. name .. " client", function()
      local svc = ws_echo_server(true, { cert_file = certs:pem("good"), key_file = certs:key("good") })
      local r = run_client(svc, kind, "wss://127.0.0.1:" .. svc.server:get_port() .. "/",
        "--count 20 --max 100000 --cafile " .. q(certs.ca))
      assert.matches("^result ok count=20 ", r)
    end)

    maybe("selects the subprotocol it prefers among the " .. name .. " client's", function()
      local svc = ws_echo_server({ protocols = { "b", "a" } })
      local r = run_client(svc, kind, "ws://127.0.0.1:" .. svc.server:get_port() .. "/", "--count 2 --protocols a,b,c")
      assert.matches("^result ok .* protocol=b ", r)
      assert.are.equal("b", svc.accepted[1]:get_protocol())
      r = run_client(svc, kind, "ws://127.0.0.1:" .. svc.server:get_port() .. "/", "--count 2 --protocols c")
      -- none in common: upgraded without one (the client decides: websockets goes on,
      -- Node's ws gives up on an answer without one of its protocols)
      if kind == "py" then
        assert.matches("^result ok .* protocol=None ", r)
      else
        assert.matches("^result FAIL .*subprotocol", r)
      end
      assert.is_not_nil(svc.accepted[2], "the second upgrade was not accepted")
      assert.is_nil(svc.accepted[2]:get_protocol())
    end)

    maybe("answers 404 to the " .. name .. " client for a path not listed", function()
      local svc = ws_echo_server({ path = "/chat" })
      local r = run_client(svc, kind, "ws://127.0.0.1:" .. svc.server:get_port() .. "/nope", "--count 1")
      assert.matches("^result rejected status=404", r)
      assert.are.equal(0, #svc.accepted)
    end)
  end

  -- A raw HTTP request to the server while its frame loop runs: the status code.
  local function raw_status(svc, request)
    local conn = assert(net.open_tcp("127.0.0.1", svc.server:get_port()))
    local buf = ""
    local closed
    h.run_frames(function()
      local progressed = svc:step()
      if request and conn:get_status() == "success" then
        assert(h.write_all(conn, request))
        request = nil
      end
      local s = conn:read(4096)
      if s == nil then closed = true return true end
      if #s > 0 then buf = buf .. s progressed = true end
      return false, progressed
    end, WAIT)
    assert.is_true(closed)
    return tonumber(buf:match("^HTTP/1%.1 (%d%d%d) ")), buf
  end

  -- A raw upgrade request the server takes: the answer's head, once the
  -- server accepted one more websocket.
  local function raw_upgrade(svc, request)
    local conn = assert(net.open_tcp("127.0.0.1", svc.server:get_port()))
    local buf, n = "", #svc.accepted
    h.run_frames(function()
      svc:step()
      if request and conn:get_status() == "success" then
        assert(h.write_all(conn, request))
        request = nil
      end
      buf = buf .. (conn:read(4096) or "")
      return buf:find("\r\n\r\n", 1, true) ~= nil and #svc.accepted > n
    end, WAIT)
    conn:close()
    return buf
  end

  local KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
  local UPGRADE = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
  for _, t in ipairs({
    { 426, "a plain GET (no Upgrade: websocket)", "GET /chat HTTP/1.1\r\nHost: x\r\n\r\n" },
    { 400, "an upgrade without Sec-WebSocket-Key", "GET /chat HTTP/1.1\r\nHost: x\r\n" .. UPGRADE
      .. "Sec-WebSocket-Version: 13\r\n\r\n" },
    { 400, "an upgrade without Connection: Upgrade", "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
      .. KEY .. "Sec-WebSocket-Version: 13\r\n\r\n" },
    { 400, "an upgrade by POST", "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n" .. UPGRADE .. KEY
      .. "Sec-WebSocket-Version: 13\r\n\r\n" },
    { 426, "an upgrade for version 8 (RFC 6455 4.2.2: 426 and the versions it has)", "GET /chat HTTP/1.1\r\n"
      .. "Host: x\r\n" .. UPGRADE .. KEY .. "Sec-WebSocket-Version: 8\r\n\r\n" },
    { 404, "an upgrade for a path not listed", "GET /other HTTP/1.1\r\nHost: x\r\n" .. UPGRADE .. KEY
      .. "Sec-WebSocket-Version: 13\r\n\r\n" },
    { 400, "an upgrade with Sec-WebSocket-Key twice (RFC 6455 11.3.1)", "GET /chat HTTP/1.1\r\nHost: x\r\n" .. UPGRADE
      .. KEY .. KEY:gsub("dGhl", "eGhl") .. "Sec-WebSocket-Version: 13\r\n\r\n" },
    { 400, "an upgrade with Host twice (RFC 9112 3.2)", "GET /chat HTTP/1.1\r\nHost: x\r\nHost: y\r\n" .. UPGRADE
      .. KEY .. "Sec-WebSocket-Version: 13\r\n\r\n" },
    { 404, "an absolute-form upgrade for a path not listed", "GET http://x/chatroom HTTP/1.1\r\nHost: x\r\n"
      .. UPGRADE .. KEY .. "Sec-WebSocket-Version: 13\r\n\r\n" },
  }) do
    it("answers " .. t[1] .. " to " .. t[2] .. ", then closes", function()
      local svc = ws_echo_server({ path = "/chat" })
      local status, text = raw_status(svc, t[3])
      assert.are.equal(t[1], status, text)
      if t[1] == 426 and t[3]:find("Version: 8", 1, true) then
        assert.matches("\r\n[Ss]ec%-[Ww]eb[Ss]ocket%-[Vv]ersion: *13\r\n", text)
      end
      assert.are.equal(0, #svc.accepted)
    end)
  end

  it("answers 400 to a target that is neither a path nor a URL, even when any path is taken", function()
    local svc = ws_echo_server()
    for _, target in ipairs({ "chat", "*", "://x/" }) do
      local status, text = raw_status(svc, "GET " .. target .. " HTTP/1.1\r\nHost: x\r\n" .. UPGRADE .. KEY
        .. "Sec-WebSocket-Version: 13\r\n\r\n")
      assert.are.equal(400, status, target .. ": " .. text)
    end
    assert.are.equal(0, #svc.accepted)
    assert.matches("^HTTP/1%.1 101 ", raw_upgrade(svc, "GET /any HTTP/1.1\r\nHost: x\r\n" .. UPGRADE .. KEY
      .. "Sec-WebSocket-Version: 13\r\n\r\n"))
  end)

  it("with origins, answers 403 to a page of another origin and takes listed ones and non-browsers", function()
    local svc = ws_echo_server({ origins = { "http://localhost:3000", "https://app.example" } })
    local function upgrade(origin)
      return "GET / HTTP/1.1\r\nHost: x\r\n" .. (origin or "") .. UPGRADE .. KEY .. "Sec-WebSocket-Version: 13\r\n\r\n"
    end
    local status, text = raw_status(svc, upgrade("Origin: http://evil.example\r\n"))
    assert.are.equal(403, status, text)
    status, text = raw_status(svc, upgrade("Origin: http://localhost:3000.evil.example\r\n"))
    assert.are.equal(403, status, text)
    status, text = raw_status(svc, upgrade("Origin: http://localhost:3000\r\nOrigin: http://evil.example\r\n"))
    assert.are.equal(400, status, text)
    assert.are.equal(0, #svc.accepted)
    for _, origin in ipairs({ "Origin: HTTP://LOCALHOST:3000\r\n", "Origin: https://app.example\r\n", false }) do
      assert.matches("^HTTP/1%.1 101 ", raw_upgrade(svc, upgrade(origin or nil)))
    end
    assert.has_error(function() net.create_server("127.0.0.1", 0, { websocket = { origins = {} } }) end)
    assert.has_error(function() net.create_server("127.0.0.1", 0, { websocket = { origins = 5 } }) end)
    local srv, msg, code = net.create_server("127.0.0.1", 0, { websocket = { origins = "http://a b" } })
    assert.is_nil(srv)
    assert.are.equal("invalid", code, msg)
  end)

  it("takes an absolute-form upgrade (RFC 9112 3.2.2) as its path", function()
    local svc = ws_echo_server({ path = { "/chat", "/" } })
    for _, t in ipairs({ { "http://x/chat?room=1", "/chat?room=1" }, { "http://x", "/" }, { "ws://x:80?q", "/?q" } }) do
      local request = "GET " .. t[1] .. " HTTP/1.1\r\nHost: x\r\n" .. UPGRADE .. KEY .. "Sec-WebSocket-Version: 13\r\n\r\n"
      assert.matches("^HTTP/1%.1 101 ", raw_upgrade(svc, request))
      assert.are.equal(t[2], (svc.accepted[#svc.accepted]:get_request()))
    end
  end)

  for _, t in ipairs({
    { "a close frame", "\x88\x82\0\0\0\0\x03\xe8", "closed", 1000 },
    { "an unmasked frame (RFC 6455 5.1)", "\x81\x02hi", "protocol", 1002 },
  }) do
    it("a websocket that " .. t[1] .. " ended, sent with its upgrade, is accepted whole and tells its end", function()
      local svc = ws_echo_server()
      local conn = assert(net.open_tcp("127.0.0.1", svc.server:get_port()))
      assert.are.equal("success", h.wait_status(conn))
      assert(h.write_all(conn, "GET / HTTP/1.1\r\nHost: x\r\n" .. UPGRADE .. KEY
        .. "Sec-WebSocket-Version: 13\r\n\r\n" .. t[2]))
      local buf = ""
      h.run_frames(function()   -- the server ends it before anything accepts it
        local s = conn:read(4096)
        if s == nil then return true end
        buf = buf .. s
      end, WAIT)
      assert.matches("^HTTP/1%.1 101 ", buf)
      local ws = assert(svc.server:accept())
      local m, kind, code = ws:receive()
      assert.is_nil(m)
      assert.are.equal(t[3], t[3] == "closed" and kind or code, tostring(kind))
      assert.are.equal(t[4], (ws:get_close()))
      ws:close()
      conn:close()
    end)
  end

  it("closing the server ends a websocket never accepted with a close handshake that completes at once", function()
    local svc = ws_echo_server()
    local conn = assert(net.open_tcp("127.0.0.1", svc.server:get_port()))
    assert.are.equal("success", h.wait_status(conn))
    assert(h.write_all(conn, "GET / HTTP/1.1\r\nHost: x\r\n" .. UPGRADE .. KEY .. "Sec-WebSocket-Version: 13\r\n\r\n"))
    local buf = ""
    h.run_frames(function()   -- upgraded, queued, never accepted
      buf = buf .. (conn:read(4096) or "")
      return buf:find("\r\n\r\n", 1, true) ~= nil
    end, WAIT)
    assert.matches("^HTTP/1%.1 101 ", buf)
    buf = ""
    svc.server:close()
    local ended, t0
    h.run_frames(function()
      local s = conn:read(4096)
      if s == nil then ended = net.clock() return true end
      buf = buf .. s
      if not t0 and #buf >= 4 then   -- its close frame (1001): answered at once, masked
        assert.are.equal("\x88\x02\x03\xe9", buf:sub(1, 4))
        assert(h.write_all(conn, "\x88\x82\0\0\0\0\x03\xe9"))
        t0 = net.clock()
      end
    end, WAIT)
    assert(t0 and ended, "no close frame, or no end")
    assert.is_true(ended - t0 < 3, ("the close took %.1f s (its connection never read the answer)"):format(ended - t0))
    conn:close()
  end)

  it("compress = false: the Python client gets no extension", function()
    local svc = ws_echo_server({ compress = false })
    local r = run_client(svc, "py", "ws://127.0.0.1:" .. svc.server:get_port() .. "/", "--count 5")
    assert.matches("^result ok count=5 .* extensions=%- ", r)
    assert.is_nil(svc.accepted[1]:get_extensions())
  end)

  it("keep-alive pings from the server: a stopped client (SIGSTOP) fails with 'timeout'", function()
    local svc = ws_echo_server({ ping_interval = 200, ping_timeout = 300 })
    local p = h.spawn("ws py client", peer_cmd("py", "client", q("ws://127.0.0.1:" .. svc.server:get_port() .. "/")
      .. " --hold 3600"))
    h.run_frames(function() svc:step() return p:stdout():find("connected", 1, true) ~= nil end, WAIT)
    h.run_frames(function() svc:step() return svc.accepted[1] ~= nil end, WAIT)
    local ws = svc.accepted[1]
    h.sleep(700)   -- pings answered meanwhile
    assert.are.equal("success", ws:get_status())
    os.execute("kill -STOP " .. p.pid)
    local status, msg, code = wait_end(ws)
    os.execute("kill -CONT " .. p.pid)
    assert.are.equal("failure", status)
    assert.are.equal("timeout", code, msg)
    local ip, port = ws:get_peer()
    assert.are.equal("127.0.0.1", ip)
    assert.is_true(math.type(port) == "integer" and port > 0)
  end)

  it("closes a connection that sends no upgrade request within handshake_timeout", function()
    local svc = ws_echo_server({ handshake_timeout = 300 })
    local t0 = net.clock()
    local status = raw_status(svc, nil)
    assert.is_nil(status)   -- closed without an answer, or with an error status
    assert.are.equal(0, #svc.accepted)
    assert.is_true(net.clock() - t0 < 5, "closed only after " .. net.clock() - t0 .. " s: not by its 300 ms")
  end)

  -- Until every connection is up, then a moment for the server to take them in.
  local function connected_and_taken(conns)
    h.run_frames(function()
      for _, c in ipairs(conns) do
        if c:get_status() ~= "success" then return false end
      end
      return true
    end, WAIT)
    net.wait(200)
  end

  it("idle connections past the accept queue's size do not keep a websocket client out", function()
    local svc = ws_echo_server()
    local port = svc.server:get_port()
    local idle = {}
    for i = 1, 200 do idle[i] = assert(net.open_tcp("127.0.0.1", port)) end   -- the queue holds 128
    connected_and_taken(idle)
    local ws = assert(net.open_websocket("ws://127.0.0.1:" .. port .. "/", { connect_timeout = 5000 }))
    h.run_frames(function() svc:step() return #svc.accepted == 1 and ws:get_status() ~= "waiting" end, WAIT)
    assert.are.same({ "success" }, { ws:get_status() })
    for _, c in ipairs(idle) do c:close() end
  end)

  it("drops the oldest idle connections past the cap on upgrades in progress (512)", function()
    if h.mode == "windows" then return pending("a child with more descriptors: ulimit -n") end
    local hard = math.tointeger(tonumber(h.capture("ulimit -Hn"))) or math.huge
    if hard < 4096 then return pending("needs 4096 descriptors, the hard limit is " .. hard) end
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      local srv = assert(net.create_server("127.0.0.1", 0, { websocket = true }))
      local idle = {}
      for _ = 1, 7 do   -- 700, in batches the kernel's accept queue holds
        for _ = 1, 100 do idle[#idle + 1] = assert(net.open_tcp("127.0.0.1", srv:get_port())) end
        local t0 = net.clock()
        while net.clock() - t0 < 0.3 do net.wait(20) end
      end
      local ended, t0 = {}, net.clock()
      repeat   -- until the oldest are dropped (before the 10 s handshake_timeout drops any)
        net.wait(50)
        local n = 0
        for i, c in ipairs(idle) do
          ended[i] = ended[i] == "x" and "x" or c:read(10) == nil and "x" or "."
          if ended[i] == "x" then n = n + 1 end
        end
      until n >= 188 or net.clock() - t0 > 6
      net.wait(200)   -- and no more than those
      for i, c in ipairs(idle) do ended[i] = ended[i] == "x" and "x" or c:read(10) == nil and "x" or "." end
      print(table.concat(ended))
    ]], { ULIMIT_NOFILE = 4096 })
    assert.is_true(ok, out .. err)
    -- the 188 oldest dropped, the 512 newest still upgrading (none has timed out yet)
    assert.equal(string.rep("x", 188) .. string.rep(".", 512), out:match("^[x.]+"))
  end)

  it("holds the messages of websockets not yet accepted in the kernel, and loses none", function()
    local svc = ws_echo_server()
    local url = "ws://127.0.0.1:" .. svc.server:get_port() .. "/"
    local base = h.wait_idle().buffer_bytes
    local clients = {}
    for i = 1, 3 do
      clients[i] = h.spawn("ws py client", peer_cmd("py", "client",
        q(url) .. " --no-compress --count 8 --min 1048576 --max 1048576 --kind binary --seed " .. i))
    end
    local held, t0 = 0, net.clock()
    while net.clock() - t0 < 2 do   -- not accepted: their 24 MiB must not come into the engine
      held = math.max(held, net.get_stats().buffer_bytes - base)
      net.wait(20)
    end
    assert.is_true(held < 2 * 1048576, ("the engine held %d bytes for 3 websockets never accepted"):format(held))
    for i, p in ipairs(clients) do
      local out = svc:serve_until_exit(p, slow and 300000 or 120000)
      assert.matches("result ok count=8 ", out:match("result [^\n]*") or out, 1, false)
    end
  end)

  it("closing the server drops the upgrades in progress at once, with no \"busy\" answer", function()
    local svc = ws_echo_server()
    local idle = {}
    for i = 1, 3 do
      idle[i] = assert(net.open_tcp("127.0.0.1", svc.server:get_port()))
      assert(idle[i]:write("GET / HTTP/1.1\r\n"))   -- a head begun, never ended
    end
    connected_and_taken(idle)
    svc.server:close()
    local t0, got = net.clock(), {}
    h.run_frames(function()
      local ended = 0
      for i, c in ipairs(idle) do
        got[i] = (got[i] or "") .. (c:read(4096) or "")
        if c:get_status() == "failure" then ended = ended + 1 end
      end
      return ended == #idle
    end, WAIT)
    assert.is_true(net.clock() - t0 < 3, "the upgrades were held after the close")
    for i, c in ipairs(idle) do
      assert.are.equal("", got[i], "an answer came after the close")
      c:close()
    end
  end)

  it("answers an endless request head with an error and closes", function()
    local svc = ws_echo_server()
    local status = raw_status(svc, "GET / HTTP/1.1\r\nX-Long: " .. string.rep("a", 256 * 1024) .. "\r\n\r\n")
    assert(status == 400 or status == 431, "status " .. tostring(status))
    assert.are.equal(0, #svc.accepted)
  end)

  it("a client of ours against our server: close codes both ways", function()
    local svc = ws_echo_server()
    local ws = assert(net.open_websocket("ws://127.0.0.1:" .. svc.server:get_port() .. "/x"))
    h.run_frames(function() svc:step() return ws:get_status() ~= "waiting" end, WAIT)
    assert.are.equal("success", ws:get_status())
    assert(ws:send("one"))
    local got
    h.run_frames(function() svc:step() got = ws:receive() return got ~= nil end, WAIT)
    assert.are.equal("one", got)
    local peer = svc.accepted[1]
    local reason = "server\0says bye" .. ("."):rep(123 - 15)   -- U+0000 is UTF-8 too; 123 bytes, the most
    assert.is_true(peer:close(3001, reason))
    h.run_frames(function() svc:step() while ws:receive() do end return ws:get_status() == "failure" end, WAIT)
    assert.are.same({ 3001, reason }, { ws:get_close() })
    h.run_frames(function() return peer:get_status() == "failure" end, WAIT)
    assert.are.equal(3001, (peer:get_close()))
  end)

  it("says so when the peer closed before every queued message was sent", function()
    -- the peer's queue holds 2 MiB and the kernel's buffers some more: of 64 MiB queued, most stays in ours
    local svc = ws_echo_server({ max_message = 2 * 1024 * 1024 })
    local ws = assert(net.open_websocket("ws://127.0.0.1:" .. svc.server:get_port() .. "/x",
      { compress = false, max_message = 64 * 1024 * 1024 }))
    local peer
    h.run_frames(function() peer = peer or svc.server:accept() return peer and ws:get_status() ~= "waiting" end, WAIT)
    local chunk, queued = ("m"):rep(1024 * 1024), 0
    while queued < 64 and ws:send(chunk) == true do queued = queued + 1 end
    local got, closing = 0, false
    h.run_frames(function()
      if peer:receive() then got = got + 1 end   -- one a frame, and a close after the first
      if got > 0 and not closing then closing = peer:close(1000, "enough") end
      return ws:get_status() == "failure"
    end, WAIT)
    local _, msg, code = ws:get_status()
    assert.is_true(queued > 32, "queued only " .. queued)
    assert.is_true(got < queued, "every message went before the close: " .. got .. " of " .. queued)
    assert.equal("closed", code)
    assert.equal("closed by the peer before every queued message was sent", msg)
    assert.are.same({ 1000, "enough" }, { ws:get_close() })
  end)

  it("a websocket leaving a <close> scope closes with 1000, one collected with 1001", function()
    local svc = ws_echo_server()
    local url = "ws://127.0.0.1:" .. svc.server:get_port() .. "/x"
    do
      local ws <close> = assert(net.open_websocket(url))
      h.run_frames(function() svc:step() return ws:get_status() ~= "waiting" end, WAIT)
      assert.are.equal("success", ws:get_status())
    end
    local ws = assert(net.open_websocket(url))
    h.run_frames(function() svc:step() return ws:get_status() ~= "waiting" end, WAIT)
    ws = nil   -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    h.run_frames(function()
      svc:step()
      return #svc.accepted == 2 and svc.accepted[1]:get_status() == "failure"
        and svc.accepted[2]:get_status() == "failure"
    end, WAIT)
    assert.are.equal(1000, (svc.accepted[1]:get_close()))
    assert.are.equal(1001, (svc.accepted[2]:get_close()))
  end)

  it("close() or collection while waiting: the queued messages go once open, then the close", function()
    local svc = ws_echo_server()
    local url = "ws://127.0.0.1:" .. svc.server:get_port() .. "/x"
    local closed = assert(net.open_websocket(url))
    assert.is_true(closed:send("sent while waiting"))
    assert.is_true(closed:close(3001, "bye"))
    local dropped = assert(net.open_websocket(url))
    assert.is_true(dropped:send("fire and forget"))
    dropped = nil   -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    local got = {}
    h.run_frames(function()
      while true do   -- no echo: the peers read only
        local ws = svc.server:accept()
        if not ws then break end
        svc.accepted[#svc.accepted + 1] = ws
      end
      local ended = 0
      for i, ws in ipairs(svc.accepted) do
        local m = ws:receive()
        if m then got[i] = m end
        if not m and ws:get_status() == "failure" then ended = ended + 1 end
      end
      return ended == 2
    end, WAIT)
    local by_msg = {}
    for i, ws in ipairs(svc.accepted) do by_msg[got[i] or "none"] = { ws:get_close() } end
    assert.are.same({ 3001, "bye" }, by_msg["sent while waiting"])
    assert.are.same({ 1001, "" }, by_msg["fire and forget"])
    assert.are.equal("failure", wait_end(closed))
    assert.are.same({ "failure", "closed", "closed" }, { closed:get_status() })
    -- a server that answers the upgrade only when told: nothing queued, it ends
    -- at once; queued but the opening fails, that failure
    local raw = assert(net.create_server("127.0.0.1", 0))
    local raw_url = "ws://127.0.0.1:" .. raw:get_port() .. "/"
    local empty = assert(net.open_websocket(raw_url))
    assert.is_true(empty:close())
    local st, msg, code = wait_end(empty)
    assert.are.same({ "failure", "cancelled" }, { st, code })
    assert.matches("closed before it opened", msg)
    local refused = assert(net.open_websocket(raw_url))
    assert.is_true(refused:send("never sent"))
    assert.is_true(refused:close())
    -- every head that arrives gets the 404: `empty` may have connected (and
    -- sent its request) before its close reached the I/O thread
    local conns, heads, answered = {}, {}, {}
    h.run_frames(function()
      local c = raw:accept()
      if c then conns[#conns + 1], heads[#conns + 1] = c, "" end
      for i, k in ipairs(conns) do
        heads[i] = heads[i] .. (k:read(4096) or "")
        if not answered[i] and heads[i]:find("\r\n\r\n", 1, true) then
          answered[i] = assert(k:write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        end
      end
      return refused:get_status() ~= "waiting"
    end, WAIT)
    st, msg, code = wait_end(refused)
    assert.are.same({ "failure", "protocol" }, { st, code }, msg)
    assert.matches("404", msg)
    for _, k in ipairs(conns) do k:close() end
    raw:close()
  end)
end)

--------------------------------------------------------------------------------
-- The case table: one `it` per case, in both roles.
local CASES = {}
do
  local p = assert(io.popen(q(PY) .. " " .. q(h.tools .. "ws_cases.py") .. " list"))
  for line in p:lines() do
    local id, section, code, desc = line:match("^(%S+) (%S+) (%S+) (.*)$")
    if id then
      CASES[#CASES + 1] = { id = id, section = section, desc = desc, close = math.tointeger(tonumber(code)),
        fails = math.tointeger(tonumber(desc:match("%-> (%d+)$"))) }
    end
  end
  p:close()
end

local SECTIONS = { ["1"] = "framing", ["2"] = "pings/pongs", ["3"] = "reserved bits", ["4"] = "opcodes",
  ["5"] = "fragmentation", ["6"] = "UTF-8 handling", ["7"] = "close handling", ["9"] = "limits",
  ["12"] = "compression", ["13"] = "compression parameters" }

-- The peer's verdict on case id: true, or false and why.
local function verdict(out, id)
  for line in out:gmatch("[^\n]+") do
    local word, cid, rest = line:match("^(%S+) (%S+) (.*)$")
    if cid == id and (word == "ok" or word == "FAIL") then return word == "ok", rest end
  end
end

-- What the websocket under test says once case c is over: its get_close() code, and the
-- code of its failure when it failed the connection itself.
local function check_end(ws, c)
  local status, msg, code = ws:get_status()
  assert.are.equal("failure", status)
  if c.close then
    assert.are.equal(c.close, (ws:get_close()), "get_close() after " .. c.id)
  end
  if c.fails then
    assert.are.equal(c.fails == 1009 and "limit" or "protocol", code, msg)
  elseif c.close == 1000 then
    assert.are.same({ "closed", "closed" }, { msg, code })
  end
end

local CASE_ARGS = " --max-message " .. CASE_MAX .. " --timeout " .. (slow and 60 or 20)
-- The case table and the bulk echoes test the engine's protocol, which is the same
-- code in the editor plugin's build: they run once per mode, in the plain Lua host,
-- and the editor-like host (tests/plugin/stage.sh) keeps the rest of this file.
local once = os.getenv("XL_HOST_API") and pending or it

describe("websocket cases, our client against ws_cases.py", function()
  local peer
  setup(function()
    peer = h.start_server("ws_cases.py server", q(PY) .. " " .. q(h.tools .. "ws_cases.py") .. " server"
      .. CASE_ARGS, port_line)
  end)
  teardown(function() if peer then peer:stop() end end)

  for _, c in ipairs(CASES) do
    once(c.id .. " " .. SECTIONS[c.section] .. ": " .. c.desc, function()
      local ws = assert(net.open_websocket("ws://127.0.0.1:" .. peer.port .. "/" .. c.id,
        { max_message = CASE_MAX }))
      local verdict_ok, why, m, kind
      h.run_frames(function()
        local progressed = false
        for _ = 1, 16 do
          if not m then m, kind = ws:receive() end
          if not m then break end
          progressed = true
          local ok, _, code = ws:send(m, kind)
          if ok == false and code == "limit" then break end   -- the send queue is full: later
          m = nil
        end
        verdict_ok, why = verdict(peer:stdout(), c.id)
        return verdict_ok ~= nil and ws:get_status() == "failure", progressed
      end, WAIT * 2, function() return "status " .. table.concat({ tostring(ws:get_status()) }, " ") end)
      local st = table.pack(ws:get_status())
      assert(verdict_ok, string.format("%s (our side: %s, %s, %s; get_close %s)", why, tostring(st[1]),
        tostring(st[2]), tostring(st[3]), tostring((ws:get_close()))))
      check_end(ws, c)
    end)
  end
end)

describe("websocket cases, ws_cases.py against our server", function()
  local results, by_target
  local function run_all()
    if results then return results end
    local svc = ws_echo_server({ max_message = CASE_MAX })
    local p = h.spawn("ws_cases.py client", q(PY) .. " " .. q(h.tools .. "ws_cases.py") .. " client "
      .. q("ws://127.0.0.1:" .. svc.server:get_port() .. "/") .. CASE_ARGS)
    results = svc:serve_until_exit(p, slow and 900000 or 300000)
    by_target = {}
    for _, ws in ipairs(svc.accepted) do by_target[ws:get_request() or "?"] = ws end
    return results
  end
  teardown(function() h.stop_all() end)

  for _, c in ipairs(CASES) do
    once(c.id .. " " .. SECTIONS[c.section] .. ": " .. c.desc, function()
      local ok, why = verdict(run_all(), c.id)
      assert(ok ~= nil, "no verdict for " .. c.id)
      local ws = by_target["/" .. c.id]
      if not ok and ws then
        local st = table.pack(ws:get_status())
        why = string.format("%s (our side: %s, %s, %s; get_close %s)", why, tostring(st[1]), tostring(st[2]),
          tostring(st[3]), tostring((ws:get_close())))
      end
      assert(ok, why)
      assert(ws, "no websocket was accepted for /" .. c.id)
      assert(h.wait_for(function() return ws:get_status() == "failure" end, WAIT), "still open after " .. c.id)
      check_end(ws, c)
    end)
  end
end)

--------------------------------------------------------------------------------
local BULK = slow and 8 * h.MiB or 64 * h.MiB
local BULK_NAME = (BULK // h.MiB) .. " MiB" .. (slow and " (64 MiB outside asan/tsan)" or "")

-- Random messages of 1 byte .. 1 MiB, `total` bytes in all, echoed by ws and compared
-- one by one; at most 8 MiB in flight. Half are compressible text, half random binary.
local function bulk_echo(ws, total)
  local pool = h.random_bytes(2 * h.MiB)
  local text = string.rep("the quick brown fox é jumps over the lazy dog 0123456789 ", 40000)
  local sentq, head, tail = {}, 1, 0
  local sent, received, inflight = 0, 0, 0
  h.run_frames(function()
    local progressed = false
    while sent < total and inflight < 8 * h.MiB do
      local len = math.min(math.random(1, h.MiB), total - sent)
      local m, kind
      if math.random(2) == 1 then
        local off = math.random(0, #pool - len)
        m, kind = pool:sub(off + 1, off + len), "binary"
      else
        local off = math.random(0, 1000)
        m, kind = text:sub(off + 1, off + len), "text"
        -- never cut a character: drop a partial one at either end
        local first, last = 1, #m
        while first <= last and m:byte(first) & 0xC0 == 0x80 do first = first + 1 end
        while last >= first and not utf8.len(m, first, last) do last = last - 1 end
        m = first <= last and m:sub(first, last) or "x"
      end
      local ok, msg, code = ws:send(m, kind)
      if ok == false and code == "limit" then break end
      assert(ok, "send: " .. tostring(msg))
      tail = tail + 1
      sentq[tail] = { m, kind }
      sent, inflight, progressed = sent + len, inflight + #m, true
    end
    while true do
      local m, kind = ws:receive()
      if not m then
        assert(kind == nil, "receive: " .. tostring(kind))
        break
      end
      local want = sentq[head]
      assert(want, "an echo nobody sent")
      sentq[head] = nil
      head = head + 1
      assert(kind == want[2] and m == want[1], string.format("echo %d differs: %s of %d bytes, got %s of %d",
        head - 1, want[2], #want[1], kind, #m))
      received, inflight, progressed = received + #m, inflight - #m, true
    end
    return sent >= total and head > tail, progressed
  end, slow and 600000 or 180000, function() return ("sent %d, received %d"):format(sent, received) end)
  return head - 1, received
end

describe("websocket bulk", function()
  after_each(function() h.stop_all() end)

  once(BULK_NAME .. " of random messages echoed by Python websockets, compressed", function()
    local p = start_peer("py")
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/", { max_message = 2 * h.MiB })
    assert.is_not_nil(ws:get_extensions())
    local n, bytes = bulk_echo(ws, BULK)
    assert(n > 0 and bytes > 0)
  end)

  local maybe = have_node and once or pending
  maybe(BULK_NAME .. " of random messages echoed by Node ws, not compressed", function()
    local p = start_peer("node")
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/", { max_message = 2 * h.MiB, compress = false })
    assert.is_nil(ws:get_extensions())
    bulk_echo(ws, BULK)
  end)

  once((BULK // 4 // h.MiB) .. " MiB from the Python client echoed by our server, compressed", function()
    local svc = ws_echo_server()
    local count = BULK // 4 // (512 * 1024)
    local r = run_client(svc, "py", "ws://127.0.0.1:" .. svc.server:get_port() .. "/",
      ("--count %d --min 1 --max %d"):format(count, h.MiB))
    assert.matches("^result ok count=" .. count .. " ", r)
  end)
end)

--------------------------------------------------------------------------------
describe("websocket through proxies", function()
  local dir
  setup(function() dir = h.temp_dir() end)
  after_each(function() h.stop_all() end)

  local function through(proxy_url, url, opts)
    opts = opts or {}
    opts.proxy = proxy_url
    local ws = open_ok(url, opts)
    roundtrip(ws, "through the proxy")
    roundtrip(ws, h.random_bytes(100000), "binary")
    assert.is_true(ws:close())
    assert.are.equal("failure", (wait_end(ws)))
    assert.are.equal(1000, (ws:get_close()))
  end

  local maybe = have("tinyproxy") and it or pending
  maybe("ws:// and wss:// through tinyproxy (HTTP CONNECT)", function()
    local p = start_peer("py")
    local tp = start_peer("py", tls_args())
    local proxy = h.start_tinyproxy(dir, "tp", { p.port, tp.port })
    through("http://127.0.0.1:" .. proxy.port, "ws://127.0.0.1:" .. p.port .. "/")
    through("http://127.0.0.1:" .. proxy.port, "wss://127.0.0.1:" .. tp.port .. "/",
      { ssl = { ca_file = h.tls_certs().ca } })
  end)

  maybe = have("microsocks") and it or pending
  maybe("ws:// and wss:// through microsocks (SOCKS5)", function()
    local p = start_peer("py")
    local tp = start_peer("py", tls_args())
    local proxy = h.start_microsocks()
    through("socks5h://127.0.0.1:" .. proxy.port, "ws://127.0.0.1:" .. p.port .. "/")
    through("socks5h://127.0.0.1:" .. proxy.port, "wss://127.0.0.1:" .. tp.port .. "/",
      { ssl = { ca_file = h.tls_certs().ca } })
  end)
end)

--------------------------------------------------------------------------------
describe("websocket failures", function()
  local cases
  setup(function()
    cases = h.start_server("ws_cases.py server", q(PY) .. " " .. q(h.tools .. "ws_cases.py") .. " server", port_line)
  end)
  teardown(function() h.stop_all() end)

  for _, t in ipairs({
    { "hs-status-200", "a 200 answer" }, { "hs-no-upgrade", "a 101 without Upgrade" },
    { "hs-no-connection", "a 101 without Connection" }, { "hs-bad-accept", "a wrong Sec-WebSocket-Accept" },
    { "hs-no-accept", "no Sec-WebSocket-Accept" }, { "hs-two-accepts", "Sec-WebSocket-Accept twice" },
    { "hs-extension-not-offered", "an extension it did not offer" },
    { "hs-protocol-not-offered", "a subprotocol it did not offer" }, { "hs-garbage", "an answer that is not HTTP" },
  }) do
    it("the client refuses a handshake with " .. t[2] .. " ('protocol')", function()
      local ws, status, msg, code = open("ws://127.0.0.1:" .. cases.port .. "/" .. t[1], { protocols = { "chat" } })
      assert.are.equal("failure", status)
      assert.are.equal("protocol", code, msg)
      assert.matches("^ws ", msg)
      if ws then assert.is_nil(ws:receive()) end
    end)
  end

  for _, t in ipairs({ { "hs-odd-case", "header names and values in odd letter case, Connection as a list" },
    { "hs-same-write", "the first frame in the same write as the 101" },
    { "hs-same-write-deflate", "the first frame, compressed, in the same write as the 101" },
    { "hs-deflate-window-8", "client_max_window_bits=8 (it sends uncompressed)" } }) do
    it("the client takes a handshake answer with " .. t[2], function()
      local ws = open_ok("ws://127.0.0.1:" .. cases.port .. "/" .. t[1])
      local got = recv(ws)
      assert.matches("^early frame", got)
      assert.is_true(send_ok(ws, got))
      assert.are.equal("failure", (wait_end(ws)))
      local verdict_line = h.wait_for(function() return cases:stdout():match("\n(%S+ " .. t[1]:gsub("%-", "%%-") .. " [^\n]*)") end, WAIT)
      assert.matches("^ok ", verdict_line or "no verdict")
      assert.are.equal(1000, (ws:get_close()))
    end)
  end

  it("connect_timeout covers the opening handshake (a server that never answers it)", function()
    local ws, status, msg, code = open("ws://127.0.0.1:" .. cases.port .. "/stall", { connect_timeout = 300 })
    assert.are.equal("failure", status)
    assert.are.equal("timeout", code, msg)
  end)

  it("keep-alive pings go every ping_interval of quiet, however long ping_timeout is", function()
    local before = #lines_with(cases, "ping ")
    local ws = open_ok("ws://127.0.0.1:" .. cases.port .. "/pings", { ping_interval = 200, ping_timeout = 5000 })
    h.sleep(1500)
    ws:close()
    wait_end(ws)
    local pings = #lines_with(cases, "ping ") - before
    assert.is_true(pings >= 4, pings .. " pings in 1.5 s at a 200 ms interval: " .. table.concat(cases:lines(), " | "))
  end)

  it("close_timeout counts from close(), not from bytes the peer took before it", function()
    local ws = open_ok("ws://127.0.0.1:" .. cases.port .. "/hang", { close_timeout = 500, compress = false })
    assert.is_true(send_ok(ws, string.rep("x", 100000), "binary"))
    h.sleep(300)   -- all of it taken by the peer's kernel before the close
    local t0 = net.clock()
    assert.is_true(ws:close(1000))
    local status, msg, code = wait_end(ws)
    local took = net.clock() - t0
    assert.are.same({ "failure", "timeout" }, { status, code }, msg)
    assert.is_true(took < 0.9, string.format("ended %.2f s after close() with close_timeout 500 ms", took))
  end)

  it("close_timeout ends a closing handshake the peer never answers (1006)", function()
    local ws = open_ok("ws://127.0.0.1:" .. cases.port .. "/hang", { close_timeout = 300 })
    assert.is_true(ws:close(1000))
    local status = wait_end(ws)
    assert.are.equal("failure", status)
    assert.are.equal(1006, (ws:get_close()))
  end)

  -- A peer busy reading a long upload answers late: its pong, and its close, wait
  -- behind what our kernel still holds. What it takes meanwhile says it lives.
  local function upload_to_slow_reader(opts)
    local ws = open_ok("ws://127.0.0.1:" .. cases.port .. "/slowread", opts)
    local chunk = string.rep("0123456789abcdef", 65536)   -- 1 MiB
    for _ = 1, 3 do assert.is_true(send_ok(ws, chunk, "binary")) end
    return ws
  end

  it("keep-alive: a peer reading a long upload slowly is alive, though its pong comes late", function()
    local ws = upload_to_slow_reader({ ping_interval = 200, ping_timeout = 300, compress = false })
    h.sleep(1500)
    local status, msg, code = ws:get_status()
    assert.are.equal("success", status, tostring(msg) .. " " .. tostring(code))
    ws:close()
  end)

  it("close_timeout counts from what the peer last took, not from close() behind a long upload", function()
    local ws = upload_to_slow_reader({ close_timeout = 500, compress = false })
    assert.is_true(ws:close(1000, "done"))
    local status, msg, code = wait_end(ws, 30000)
    assert.are.same({ "failure", "closed", "closed" }, { status, msg, code })
    assert.are.equal(1000, (ws:get_close()))
  end)

  it("a refused port fails with 'refused'", function()
    local _, status, msg, code = open("ws://127.0.0.1:" .. h.closed_port() .. "/")
    assert.are.equal("failure", status)
    assert.are.equal("refused", code, msg)
  end)

  it("a peer killed mid-connection: failure that is not a clean close, get_close() 1006", function()
    local p = start_peer("py")
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/")
    roundtrip(ws, "before")
    p:kill()
    local status, msg = wait_end(ws)
    assert.are.equal("failure", status)
    assert.are_not.equal("closed", msg)
    assert.are.equal(1006, (ws:get_close()))
  end)

  local function rss_kib()
    for l in io.lines("/proc/self/status") do
      local v = l:match("^VmRSS:%s*(%d+)")
      if v then return math.tointeger(tonumber(v)) end
    end
  end

  local it_rss = (not slow and io.open("/proc/self/status")) and it or pending
  it_rss("the receive queue is bounded: 128 MiB sent while the owner does not read, then all of it in order", function()
    local p = start_peer("py")
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/", { max_message = h.MiB, compress = false })
    roundtrip(ws, "warm up")
    collectgarbage()
    local before = rss_kib()
    assert.is_true(send_ok(ws, "__flood 4096 32768"))
    os.execute("sleep 2")   -- the owner stalls; the peer keeps sending
    local grown = rss_kib() - before
    assert(grown < 64 * 1024, ("the process grew by %d KiB while not reading"):format(grown))
    local k = 0
    h.wait_for(function()
      while true do
        local m, msg = ws:receive()
        if not m then return msg ~= nil end
        assert.are.equal(("seq %d "):format(k), m:sub(1, #("seq %d "):format(k)))
        k = k + 1
      end
    end, WAIT, 5)
    assert.are.equal(4096, k)
    assert.are.equal(4002, (ws:get_close()))
  end)

  it("websockets dropped without close (collected at any moment) leave the others alone", function()
    local p = start_peer("py")
    local dropped = {}
    for i = 1, slow and 40 or 150 do
      local ws = assert(net.open_websocket("ws://127.0.0.1:" .. p.port .. "/" .. i))
      if math.random(3) == 1 then dropped = {} collectgarbage() end   -- some still opening
      local status, msg, code = h.wait_status(ws, WAIT)
      assert.are.equal("success", status, ("websocket %d: %s (%s)"):format(i, tostring(msg), tostring(code)))
      assert.is_true(send_ok(ws, "m" .. i))
      if math.random(2) == 1 then collectgarbage() end
      local got, err, ecode = recv(ws)
      assert.are.equal("m" .. i, got, ("websocket %d: %s (%s)"):format(i, tostring(err), tostring(ecode)))
      dropped[#dropped + 1] = ws
    end
  end)

  it("a websocket let go with a full receive queue still closes at once, not at close_timeout", function()
    -- nobody reads its queue any more: the peer's close answer must get past it (a child
    -- process, so that the count of live websockets is this one's alone)
    local p = start_peer("py")
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      local ws = assert(net.open_websocket("ws://127.0.0.1:" .. arg[1] .. "/",
        { max_message = 65536, close_timeout = 30000 }))
      while ws:get_status() == "waiting" do net.wait(10) end
      assert(ws:send("__flood 3000 3000"))   -- 9 MB: more than every buffer on the way holds
      local t = net.clock() + 0.5
      while net.clock() < t do net.wait(10) end   -- not reading: the queue fills
      ws = nil
      collectgarbage()
      collectgarbage()
      local t0 = net.clock()
      while net.get_stats().websockets > 0 and net.clock() - t0 < 40 do net.wait(10) end
      print(string.format("gone after %.2f s", net.clock() - t0))
    ]], nil, tostring(p.port))
    assert.is_true(ok, out .. err)
    local secs = tonumber(out:match("gone after ([%d.]+) s"))
    assert(secs, out .. err)
    assert.is_true(secs < 10, "held for " .. secs .. " s: the close waited for close_timeout")
  end)

  it("messages that arrived before the peer's close are all received, even when read late", function()
    local p = start_peer("py")
    local ws = open_ok("ws://127.0.0.1:" .. p.port .. "/")
    local n, size = slow and 500 or 2000, 3000
    assert.is_true(send_ok(ws, ("__flood %d %d"):format(n, size)))
    h.sleep(500)   -- not reading: the receive queue fills and pushes back on the peer
    local k = 0
    h.wait_for(function()
      while true do
        local m, msg, code = ws:receive()
        if m then
          assert.are.equal(("seq %d "):format(k), m:sub(1, #("seq %d "):format(k)))
          assert.are.equal(size, #m)
          k = k + 1
        elseif msg then
          assert.are.same({ "closed", "closed" }, { msg, code })
          return true
        else
          return false
        end
      end
    end, WAIT, 5)
    assert.are.equal(n, k)
    assert.are.same({ 4002, "flood done" }, { ws:get_close() })
  end)
end)
