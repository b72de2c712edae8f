-- socket_spec: sluice.socket, LuaSocket's TCP interface on net. Two programs written
-- for LuaSocket only (tests/lua/scripts/luasocket_http.lua: socket.http, ltn12 and a
-- raw HTTP/1.0 client against tests/tools/http_test_server.py; luasocket_chat.lua: a
-- select-driven line chat and the corner cases of the interface) run once with
-- Debian's LuaSocket and once with sluice.socket as `socket`, and must print the same.
-- Then, in this process: a frame loop with settimeout(0) never waits; blocking calls
-- wait in net.wait and time out with the partial data; refused, unreachable-name,
-- timed-out and early-closing peers; "*a" over a large stream; IPv6; an address in
-- use; argument errors; inside an editor thread a blocking call yields instead.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
local socket = require "sluice.socket"
h.need_hosts_file()

local ROOT = os.getenv("SLUICE_ROOT") or "."
local SCRIPTS = h.dir .. "scripts/"

-- Debian's LuaSocket, as the system's lua5.4 finds it: the folders of socket/core.so
-- and of socket/http.lua.
local function debian_luasocket()
  local p = assert(io.popen([[env -u LUA_PATH -u LUA_CPATH lua5.4 -e ']]
    .. [[print(package.searchpath("socket.core", package.cpath) or "-") ]]
    .. [[print(package.searchpath("socket.http", package.path) or "-")' 2>/dev/null]]))
  local core, http = p:read("l"), p:read("l")
  p:close()
  local cdir = core and core:match("^(.*/)socket/core%.so$")
  local ldir = http and http:match("^(.*/)socket/http%.lua$")
  assert(cdir and ldir, "Debian's LuaSocket (package lua-socket) is not installed: run ./run.sh deps")
  return cdir, ldir
end

-- Runs a script with the system's lua5.4 and Debian's LuaSocket. Returns ok, stdout, stderr.
local function run_reference(script, ...)
  local out = os.tmpname()
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = h.shell_quote(a) end
  local ok = os.execute(string.format("env -u LUA_PATH -u LUA_CPATH timeout -k 5 120 lua5.4 %s %s >%s 2>%s.err </dev/null",
    h.shell_quote(script), table.concat(args, " "), h.shell_quote(out), h.shell_quote(out)))
  local stdout, stderr = h.read_file(out) or "", h.read_file(out .. ".err") or ""
  os.remove(out)
  os.remove(out .. ".err")
  return ok == true, stdout, stderr
end

-- The same script in the host under test with sluice.socket as `socket` (socket.http,
-- ltn12 and mime.lua still come from Debian's LuaSocket; a host that cannot load its
-- C part gets a stand-in mime, which these programs never call).
local HARNESS = [[
local script = table.remove(arg, 1)
package.preload.socket = function() return require "sluice.socket" end
if not pcall(require, "mime") then
  package.loaded.mime = { b64 = function() error("mime is not available in this host") end }
end
arg[0] = script
assert(loadfile(script))(table.unpack(arg))
]]

local function run_with_sluice(script, ...)
  local cdir, ldir = debian_luasocket()
  return h.run_lua_child(HARNESS, {
    LUA_PATH = ROOT .. "/data/?.lua;" .. ldir .. "?.lua;" .. ldir .. "?/init.lua",
    LUA_CPATH = (os.getenv("LUA_CPATH") or "") .. ";" .. cdir .. "?.so",
  }, script, ...)
end

local function assert_same_output(script, ...)
  local ok, want, err = run_reference(script, ...)
  assert(ok, "the program failed with Debian's LuaSocket: " .. err .. want)
  local ok2, got, err2 = run_with_sluice(script, ...)
  assert(ok2, "the program failed with sluice.socket: " .. err2 .. got)
  if want ~= got then   -- the first line that differs (busted cuts long strings short)
    local wl, gl = {}, {}
    for l in (want .. "\n"):gmatch("(.-)\n") do wl[#wl + 1] = l end
    for l in (got .. "\n"):gmatch("(.-)\n") do gl[#gl + 1] = l end
    local i = 1
    while wl[i] == gl[i] do i = i + 1 end
    error(string.format("line %d differs:\n  LuaSocket:     %s\n  sluice.socket: %s", i,
      tostring(wl[i]), tostring(gl[i])), 2)
  end
  return want
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

describe("sluice.socket", function()
  after_each(function()
    h.stop_all()
  end)

  describe("runs LuaSocket programs unchanged, with the same results as LuaSocket", function()
    it("socket.http, ltn12 and an HTTP/1.0 client by hand", function()
      local dir = h.temp_dir()
      local f = assert(io.open(dir .. "/page.txt", "wb"))
      f:write((h.random_bytes(300 * h.KiB):gsub("[^%w]", "x")))
      f:close()
      local server = h.start_server("http_test_server.py", string.format("%s %s %s",
        h.shell_quote(h.python), h.shell_quote(h.tools .. "http_test_server.py"), h.shell_quote(dir)),
        function(out) local p = out:match("^(%d+)\n") return p and math.tointeger(tonumber(p)) end)
      local out = assert_same_output(SCRIPTS .. "luasocket_http.lua", "http://127.0.0.1:" .. server.port)
      -- the reference did what the program asks (so the comparison means something)
      assert.matches("get\t/page.txt\t200\tHTTP/1.1 200 OK\t307200\t", out, 1, true)
      assert.matches("get\t/chunked/page.txt\t200\t", out, 1, true)
      assert.matches("get\t/close/page.txt\t200\t", out, 1, true)
      assert.matches("refused\tnil\tconnection refused\n", out, 1, true)
      assert.matches("body\t307200\t307200\t", out, 1, true)
    end)

    it("a select-driven line chat and the corner cases of the TCP interface", function()
      local out = assert_same_output(SCRIPTS .. "luasocket_chat.lua")
      for _, line in ipairs {
        "heard\t1\t[hello from 1] [hello from 2] [hello from 3]",
        "partial\tnil\ttimeout\tabc", "joined\tdef\tnil\tnil", "count prefix\tnil\ttimeout\txxst",
        "all again\tnil\tclosed\t", "refused\tnil\tconnection refused", "connect again\t1.0",
        "protect\tnil\tstop after ping", "until closed\t1\tbye", "server close\t1.0\tnil\tclosed",
      } do
        assert.matches(line .. "\n", out, 1, true)
      end
    end)
  end)

  it("with settimeout(0), a frame loop exchanges lines and never waits", function()
    local peer = h.start_peer("echo")
    local c = socket.tcp()
    assert.are.equal(1.0, c:settimeout(0))
    local real_wait, waits, in_frame = net.wait, 0, false
    net.wait = function(...)
      if in_frame then waits = waits + 1 end
      return real_wait(...)
    end
    local ok, err = pcall(function()
      local want, got, state = {}, {}, "connecting"
      for i = 1, 2000 do want[i] = "line " .. i end
      local ok1, err1 = c:connect(peer.host, peer.port)   -- loopback may connect at once
      assert.is_true(ok1 == 1 or err1 == "timeout", tostring(err1))
      local frames = h.run_frames(function()
        in_frame = true
        local progressed = false
        if state == "connecting" then
          local _, w = socket.select(nil, { c }, 0)
          if w[c] then
            assert.are.equal(1.0, c:connect(peer.host, peer.port))
            local sent = c:send(table.concat(want, "\r\n") .. "\r\n")
            assert.are.equal(#table.concat(want, "\r\n") + 2.0, sent)
            state, progressed = "reading", true
          end
        else
          while true do
            local line, lerr, partial = c:receive("*l")
            if not line then
              assert.are.equal("timeout", lerr)
              if partial ~= "" then assert.is_nil(c:receive("*l", partial)) end
              break
            end
            got[#got + 1], progressed = line, true
          end
        end
        in_frame = false
        return #got == #want or (state == "reading" and #got > #want), progressed
      end, 30000)
      assert.same(want, got)
      assert.is_true(frames > 1)
    end)
    in_frame = false
    net.wait = real_wait
    c:close()
    if not ok then error(err, 0) end
    assert.are.equal(0, waits)
  end)

  it("a non-blocking connect that finished at once returns 1, and so does the connect after select", function()
    local peer = h.start_peer("echo")
    -- the I/O thread connects before the first look (the race a loaded machine runs)
    local real_open = net.open_tcp
    net.open_tcp = function(...)
      local conn, msg, code = real_open(...)
      if conn then h.wait_status(conn) end
      return conn, msg, code
    end
    local c = socket.tcp()
    c:settimeout(0)
    local ok, r1 = pcall(c.connect, c, peer.host, peer.port)
    net.open_tcp = real_open
    assert(ok, r1)
    assert.are.equal(1.0, r1)
    local _, w = socket.select(nil, { c }, 5)
    assert.are.equal(c, w[1])
    -- LuaSocket's program connects again here: its first connect was in progress
    assert.same({ 1.0, n = 1 }, table.pack(c:connect(peer.host, peer.port)))
    assert.same({ nil, "already connected", n = 2 }, table.pack(c:connect(peer.host, peer.port)))
    c:close()
  end)

  it("blocks in net.wait for data, and times out with the partial line", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local c = assert(socket.connect("127.0.0.1", srv:get_port()))
    local other = assert(h.accept_one(srv))
    assert(other:write("no newline yet"))
    assert.are.equal(1.0, c:settimeout(0.2))
    local r
    local waits = count_waits(function() r = table.pack(c:receive("*l")) end)
    assert.same({ nil, "timeout", "no newline yet", n = 3 }, r)
    assert.is_true(waits > 0)
    -- with no limit, a receive waits until the rest comes
    c:settimeout(nil)
    assert(other:write(", now\r\nnext"))
    assert.are.equal("no newline yet, now", c:receive("*l", r[3]))
    assert.are.equal("next", c:receive(4))
    other:close()
    assert.same({ nil, "closed", "", n = 3 }, table.pack(c:receive()))
    c:close()
    srv:close()
  end)

  it("reads a large stream with \"*a\", and a peer that ends early gives the partial data", function()
    local total = h.scaled(8 * h.MiB)
    local peer = h.start_peer("source", tostring(total))
    local c = assert(socket.connect(peer.host, peer.port))
    c:settimeout(30)
    local all = c:receive("*a")
    assert.are.equal(total, #all)
    assert.is_true(all == h.pattern(0, total), "stream bytes differ")
    assert.same({ nil, "closed", "", n = 3 }, table.pack(c:receive("*a")))
    local received = c:getstats()
    assert.are.equal(total + 0.0, received)
    c:close()

    local short = h.start_peer("source", "1000")
    c = assert(socket.connect(short.host, short.port))
    c:settimeout(10)
    local data, err, partial = c:receive(5000)
    assert.is_nil(data)
    assert.are.equal("closed", err)
    assert.is_true(partial == h.pattern(0, 1000), "partial bytes differ")
    c:close()
  end)

  it("receive(\"*a\") on a connection the peer resets: nil, \"closed\", the partial, as LuaSocket", function()
    -- a peer that sends a few bytes, then resets (SO_LINGER 0) instead of closing
    local script = table.concat({
      "import socket, struct, time",
      "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)",
      "print(s.getsockname()[1], flush=True)",
      "c, _ = s.accept(); c.sendall(b'part-of-body'); time.sleep(0.3)",
      "c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); c.close()",
    }, "\n")
    local peer = h.start_server("reset peer", h.shell_quote(h.python) .. " -c " .. h.shell_quote(script), function(out)
      return math.tointeger(tonumber(out:match("^(%d+)\n")))
    end)
    local c = assert(socket.connect(peer.host, peer.port))
    c:settimeout(10)
    assert.same({ nil, "closed", "part-of-body", n = 3 }, table.pack(c:receive("*a")))
    assert.same({ nil, "closed", "", n = 3 }, table.pack(c:receive("*a")))
    c:close()
    peer:stop()
  end)

  it("reports refused ports, unknown names and connect timeouts as LuaSocket does", function()
    local port = h.closed_port()
    assert.same({ nil, "connection refused", n = 2 }, table.pack(socket.connect("127.0.0.1", port)))
    -- non-blocking: the failure shows at once or through select and a second connect
    local c = socket.tcp()
    c:settimeout(0)
    local _, err1 = c:connect("127.0.0.1", port)
    for _ = 1, 100 do   -- refused at once (told: the next connect is a new attempt), until one is not
      if err1 == "timeout" then break end
      assert.are.equal("connection refused", err1)
      _, err1 = c:connect("127.0.0.1", port)
    end
    if err1 == "timeout" then
      local _, w = socket.select(nil, { c }, 10)
      assert.are.equal(c, w[1])
      assert.same({ nil, "connection refused", n = 2 }, table.pack(c:connect("127.0.0.1", port)))
    end
    assert.same({ nil, "closed", 0.0, n = 3 }, table.pack(c:send("x")))
    -- told once, the next connect is a new attempt, as LuaSocket's (a retry loop ends)
    local srv = assert(socket.bind("127.0.0.1", 0))
    local sport = tonumber((select(2, srv:getsockname())))
    c:settimeout(5)
    assert.same({ 1.0, n = 1 }, table.pack(c:connect("127.0.0.1", sport)))
    assert.same({ nil, "already connected", n = 2 }, table.pack(c:connect("127.0.0.1", sport)))   -- EISCONN
    local a = assert(srv:accept())
    assert.are.equal(2.0, c:send("hi"))
    assert.are.equal("hi", a:receive(2))
    a:close()
    c:close()
    srv:close()

    assert.same({ nil, "host or service not provided, or not known", n = 2 },
      table.pack(socket.connect("sluice-nope.test", 80)))

    -- a connect refused before it began leaves a master that may try another address
    c = socket.tcp()
    local bad = table.pack(c:connect("", 80))
    assert.is_nil(bad[1])
    assert.equal("string", type(bad[2]))
    srv = assert(socket.bind("127.0.0.1", 0))
    sport = tonumber((select(2, srv:getsockname())))
    c:settimeout(5)
    assert.same({ 1.0, n = 1 }, table.pack(c:connect("127.0.0.1", sport)))
    c:close()
    srv:close()

    local hole = h.start_peer("blackhole")
    c = socket.tcp()
    c:settimeout(0.2)
    assert.same({ nil, "timeout", n = 2 }, table.pack(c:connect(hole.host, hole.port)))
    assert.same({ nil, "Operation already in progress", n = 2 }, table.pack(c:connect(hole.host, hole.port)))
    c:close()
  end)

  it("servers: accept, names, an address in use, select over the server", function()
    local s = assert(socket.bind("127.0.0.1", 0))
    local ip, port, family = s:getsockname()
    assert.are.equal("127.0.0.1", ip)
    assert.are.equal("string", type(port))
    assert.are.equal("inet", family)
    assert.same({ nil, "address already in use", n = 2 }, table.pack(socket.bind("127.0.0.1", port)))
    s:settimeout(0)
    assert.same({ nil, "timeout", n = 2 }, table.pack(s:accept()))
    local c = assert(socket.connect("localhost", tonumber(port)))
    local r = socket.select({ s }, nil, 10)
    assert.are.equal(1.0, r[s])
    local a = assert(s:accept())
    assert.are.equal("tcp{client}", tostring(a):match("^tcp{%a+}"))
    local pip, pport = a:getpeername()
    local cip, cport = c:getsockname()
    assert.are.equal(cip, pip)
    assert.are.equal(tonumber(cport), pport)   -- as LuaSocket: getsockname a string, getpeername a number
    assert.are.equal("string", type(cport))
    assert.are.equal("integer", math.type(pport))
    -- a wrapper around a socket (as libraries make them) is selected through its getfd
    local wrapper = { getfd = function() return a:getfd() end, dirty = function() return false end }
    assert.same({ {}, {}, "timeout" }, { socket.select({ wrapper }, nil, 0) })
    assert.are.equal(6.0, c:send("hello\n"))
    local wr = socket.select({ wrapper, wrapper }, nil, 10)   -- an entry given twice comes back once
    assert.are.equal(wrapper, wr[1])
    assert.are.equal(1.0, wr[wrapper])
    assert.is_nil(wr[2])
    a:settimeout(10)
    assert.are.equal("hello", a:receive())
    assert.is_false(a:dirty())
    assert.are.equal(3.0, c:send("abc"))
    assert.are.equal(a, socket.select({ a }, nil, 10)[1])
    assert.are.equal(1.0, a:shutdown("receive"))   -- what had arrived stays readable, as LuaSocket's
    assert.are.equal("abc", a:receive(3))
    assert.are.equal("number", type(a:getfd()))
    a:close()
    assert.are.equal(-1, a:getfd())
    c:close()
    assert.are.equal(1.0, s:close())
    assert.same({ nil, "closed", n = 2 }, table.pack(s:accept()))
  end)

  it("listen after bind keeps the clients that connected in between; close ends the ones select took", function()
    for _, reuse in ipairs { false, true } do
      local s = socket.tcp()
      if reuse then s:setoption("reuseaddr", true) end
      assert(s:bind("127.0.0.1", 0))
      local _, port = s:getsockname()
      -- bound, it listens: it cannot be a client too
      assert.same({ nil, "binding a local address is not supported by sluice.socket", n = 2 },
        table.pack(s:connect("127.0.0.1", tonumber(port))))
      local c = socket.tcp()
      c:settimeout(5)
      assert.are.equal(1.0, c:connect("127.0.0.1", tonumber(port)))
      assert.are.equal(1.0, s:listen(5))   -- another backlog than bind's
      assert.are.equal(6.0, c:send("hello\n"))
      s:settimeout(5)
      local a = assert(s:accept())
      a:settimeout(5)
      assert.are.equal("hello", a:receive())
      a:close()
      c:close()
      s:close()
    end
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    local c = assert(socket.connect("127.0.0.1", tonumber(port)))
    assert.are.equal(1.0, socket.select({ s }, nil, 10)[s])   -- takes the connection early
    s:close()
    c:settimeout(5)
    local t0 = socket.gettime()
    assert.same({ nil, "closed", "", n = 3 }, table.pack(c:receive()))
    assert.is_true(socket.gettime() - t0 < 2, "the taken connection stayed open")
    c:close()
  end)

  it("socket.dns resolves names as LuaSocket's does (no reverse lookups)", function()
    local ip, info = socket.dns.toip("sluice-v4.test")
    assert.are.equal("127.0.0.1", ip)
    assert.are.same({ name = "sluice-v4.test", alias = {}, ip = { "127.0.0.1" } }, info)
    assert.same({ nil, "host not found", n = 2 }, table.pack(socket.dns.toip("sluice-nope.test")))
    assert.are.same({ { family = "inet6", addr = "::1" } }, socket.dns.getaddrinfo("sluice-v6.test"))
    assert.are.equal("sluice-v4.test", (socket.dns.tohostname("sluice-v4.test")))
    assert.same({ nil, "host not found", n = 2 }, table.pack(socket.dns.tohostname("127.0.0.1")))
    assert.are.equal("string", type(socket.dns.gethostname()))
  end)

  it("binds \"*\" to IPv4's wildcard, as LuaSocket does (tcp6: IPv6's)", function()
    local s = assert(socket.bind("*", 0))
    local ip, _, family = s:getsockname()
    assert.are.same({ "0.0.0.0", "inet" }, { ip, family })
    s:close()
    if h.ipv6_loopback() then
      local t6 = socket.tcp6()
      assert(t6:bind("*", 0))
      assert.are.equal("::", (t6:getsockname()))
      t6:close()
    end
  end)

  it("talks IPv6 through tcp6", function()
    if not h.ipv6_loopback() then
      pending("no ::1 on this machine")
      return
    end
    local peer = h.start_peer("echo", nil, { ipv6 = true })
    local c = socket.tcp6()
    c:settimeout(10)
    assert.are.equal(1.0, c:connect("::1", peer.port))
    local ip, port, family = c:getpeername()
    assert.same({ "::1", peer.port, "inet6" }, { ip, port, family })
    assert.are.equal("inet6", c:getfamily())
    c:send("six\n")
    assert.are.equal("six", c:receive())
    c:close()
  end)

  it("refuses, saying so, a `net` that is not sluice's (an editor's own)", function()
    local ok, out, err = h.run_lua_child([[
      package.preload.net = function() return { _VERSION = "pragtical net 1.0" } end
      print(pcall(require, "sluice.tcpd"))
    ]])
    assert.is_true(ok, err)
    assert.matches("^false\tsluice.tcpd needs sluice's net module, and the `net` found is another %(pragtical net 1.0%)", out)
  end)

  it("raises LuaSocket's argument errors", function()
    local c = socket.tcp()
    h.assert_raises("tcp{client} expected", function() c:receive() end)
    h.assert_raises("bad argument #3 to 'select' (number expected, got string)", function()
      socket.select(nil, nil, "soon")
    end)
    assert.same({ {}, {}, "timeout" }, { socket.select(nil, nil, "0.01") })   -- a number as text is one
    -- a try's finalizer that raises raises instead, as LuaSocket's does
    h.assert_raises("in the finalizer", function() socket.newtry(function() error("in the finalizer") end)(nil, "x") end)
    h.assert_raises("tcp{client} expected", function() c:send("x") end)
    h.assert_raises("tcp{server} expected", function() c:accept() end)
    h.assert_raises("invalid timeout mode", function() c:settimeout(1, "x") end)
    h.assert_raises("unsupported option `nope'", function() c:setoption("nope", true) end)
    h.assert_raises("table expected", function() socket.select(42) end)
    h.assert_raises("tcp{any} expected", function() socket.tcp().close({}) end)
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    local d = assert(socket.connect("127.0.0.1", port))
    h.assert_raises("invalid receive pattern", function() d:receive("*x") end)
    h.assert_raises("invalid receive pattern", function() d:receive(-1) end)
    h.assert_raises("string expected", function() d:send(nil) end)
    h.assert_raises("bad argument #3 to 'receive' (string expected, got table)", function() d:receive(5, {}) end)
    h.assert_raises("bad argument #2 to 'send' (number expected, got string)", function() d:send("hello", "abc") end)
    h.assert_raises("bad argument #3 to 'send' (number expected, got table)", function() d:send("hello", 1, {}) end)
    h.assert_raises("bad argument #2 to 'connect' (number expected, got nil)", function() socket.connect("127.0.0.1") end)
    h.assert_raises("invalid option 'sideways'", function() d:shutdown("sideways") end)
    assert.same({ nil, "option 'reuseport' is not supported by sluice.socket", n = 2 },
      table.pack(d:setoption("reuseport", true)))
    d:close()
    s:close()
    h.assert_raises("bad argument #1 to 'sleep' (number expected, got table)", function() socket.sleep({}) end)
  end)

  it("socket.sleep waits the time given; a negative time or NaN returns at once", function()
    local t0 = net.clock()
    socket.sleep(0.05)
    assert.is_true(net.clock() - t0 >= 0.049)
    t0 = net.clock()
    socket.sleep(-1)
    socket.sleep(0 / 0)   -- NaN ends no loop of "time left"
    socket.sleep("0.01")   -- a number as text is one
    assert.is_true(net.clock() - t0 < 2)
  end)

  it("keeps keepalive and tcp-keepidle independent, in either order, as LuaSocket does", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local a = assert(socket.connect("127.0.0.1", srv:get_port()))
    assert.equal(1, a:setoption("tcp-keepidle", 30))
    assert.equal(false, a.conn:get_option("keepalive"))   -- an idle time alone does not turn it on
    assert.equal(1, a:setoption("keepalive", true))
    assert.equal(30, a.conn:get_option("keepalive"))
    assert.equal(1, a:setoption("keepalive", false))
    assert.equal(false, a.conn:get_option("keepalive"))
    local b = assert(socket.connect("127.0.0.1", srv:get_port()))
    assert.equal(1, b:setoption("keepalive", true))
    assert.equal(1, b:setoption("tcp-keepidle", 45))
    assert.equal(45, b.conn:get_option("keepalive"))
    -- what the kernel refuses: LuaSocket's nil, "invalid argument", the value kept
    for _, bad in ipairs { 0, -5, 100000, 0 / 0 } do
      assert.same({ nil, "invalid argument", n = 2 }, table.pack(b:setoption("tcp-keepidle", bad)))
    end
    assert.equal(45, b:getoption("tcp-keepidle"))
    assert.equal(45, b.conn:get_option("keepalive"))
    local c = socket.tcp()
    assert.same({ nil, "invalid argument", n = 2 }, table.pack(c:setoption("tcp-keepidle", 0)))
    assert.equal(1, c:setoption("keepalive", true))
    assert(c:connect("127.0.0.1", srv:get_port()))   -- no idle time kept: plain keepalive
    assert.equal(true, c.conn:get_option("keepalive"))
    a:close(); b:close(); c:close()
    srv:close()
  end)

  it("gives the clients a server accepts the options set on the server, as the kernel copies them", function()
    local s = assert(socket.bind("127.0.0.1", 0))
    assert.equal(1, s:setoption("tcp-nodelay", true))
    assert.equal(1, s:setoption("keepalive", true))
    assert.equal(1, s:setoption("tcp-keepidle", 40))
    local _, port = s:getsockname()
    local c = assert(socket.connect("127.0.0.1", port))
    s:settimeout(5)
    local a = assert(s:accept())
    assert.equal(true, a:getoption("tcp-nodelay"))
    assert.equal(true, a.conn:get_option("nodelay"))
    assert.equal(40, a.conn:get_option("keepalive"))
    a:close(); c:close(); s:close()
  end)

  it("inside an editor thread a blocking receive yields to the editor; in a coroutine of the program's own it waits", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local c = assert(socket.connect("127.0.0.1", srv:get_port()))
    local other = assert(h.accept_one(srv))
    c:settimeout(30)
    local saved = package.loaded.core
    -- what sluice looks for: an editor's threads are {cr = coroutine, ...} in core.threads
    local core = { add_thread = function() end, threads = {} }
    package.loaded.core = core
    local ok, err = pcall(function()
      local line
      local co = coroutine.create(function() line = c:receive() end)
      core.threads.reader = { cr = co, wake = 0 }
      local yields = 0
      local waits = count_waits(function()
        for _ = 1, 5 do
          local resumed, v = coroutine.resume(co)
          assert(resumed, v)
          assert.are.equal("number", type(v))
          yields = yields + 1
        end
      end)
      assert.are.equal(0, waits)
      assert(other:write("from the peer\n"))
      h.wait_for(function()
        local resumed, v = coroutine.resume(co)
        assert(resumed, v)
        return coroutine.status(co) == "dead"
      end, 10000, 10)
      assert.are.equal("from the peer", line)
      assert.are.equal(5, yields)
      core.threads.reader = nil
      -- a coroutine of the program's own (a generator), in an editor thread or not:
      -- its waits are net.wait's, never a yield into its resumer
      c:settimeout(0.2)
      local lines = coroutine.wrap(function()
        while true do coroutine.yield(c:receive()) end
      end)
      waits = count_waits(function()
        assert.same({ nil, "timeout", "", n = 3 }, table.pack(lines()))
      end)
      assert.is_true(waits > 0)
      c:settimeout(30)
      assert(other:write("from the generator\n"))
      local thread = coroutine.create(function() return (lines()) end)
      core.threads.other = { cr = thread, wake = 0 }
      assert.same({ true, "from the generator", n = 2 }, table.pack(coroutine.resume(thread)))
      assert.are.equal("dead", coroutine.status(thread))
    end)
    package.loaded.core = saved
    c:close()
    other:close()
    srv:close()
    if not ok then error(err, 0) end
  end)
end)
