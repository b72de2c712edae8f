-- badinput_spec: wrong types and impossible values raise luaL_argerror-style errors,
-- impossible host names return nil, message, "invalid", and a closed connection answers
-- every call without crashing.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

-- Assert that fn() raises an error whose message contains `text` (plain find). The calls
-- under test sit in closures, so luaL_argerror sees their real names ('read', not '?').
local function raises(text, fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error containing: " .. text)
  assert.truthy(tostring(err):find(text, 1, true),
    string.format("error %q does not contain %q", tostring(err), text))
end

local PORT_MSG = "bad argument #2 to 'open_tcp' (port must be 1..65535)"

describe("bad input", function()
  local peer, conn

  setup(function()
    peer = h.start_peer("echo")
  end)

  teardown(function()
    h.stop_all()
  end)

  before_each(function()
    conn = assert(net.open_tcp("127.0.0.1", peer.port))
    assert.are.equal("success", conn:wait_until_connected(10000))
  end)

  after_each(function()
    if conn then conn:close() end
  end)

  it("reads a headers table its own finalizers change meanwhile without overrunning (child process)", function()
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      collectgarbage("incremental", 0, 1000)   -- a collection step at every allocation
      local changed, taken, n = 0, 0, 0
      for _ = 1, 300 do
        local headers = {}
        for i = 1, 20 do headers["X-H" .. i] = "v" end
        for _ = 1, 50 do   -- garbage whose finalizers add and remove headers
          setmetatable({}, { __gc = function()
            n = n + 1
            headers["X-New" .. n], headers["X-H" .. (n % 20 + 1)] = "v", nil
          end })
        end
        local ok, req = pcall(net.http_request, { url = "http://127.0.0.1:9/", headers = headers, proxy = false })
        if ok then taken = taken + 1; req:close()
        else assert(tostring(req):find("option 'headers' changed while it was read", 1, true), req) end
      end
      print("done", taken)
    ]])
    assert.is_true(ok, out .. err)
    assert.matches("^done\t%d+", out)
  end)

  it("reads option tables whose __index makes every value afresh while collections run (child process)", function()
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      -- each look makes a fresh copy of the value, after a full collection: nothing of the
      -- caller's holds what the binding was given
      local function proxy(t)
        return setmetatable({}, { __index = function(_, k)
          collectgarbage()
          local v = t[k]
          return type(v) == "string" and (v .. "#"):sub(1, -2) or v
        end })
      end
      local srv = assert(net.create_server("127.0.0.1", 0))
      local port = srv:get_port()
      local long = string.rep("x", 48)
      for _, opts in ipairs({ proxy{ verify = false, server_name = "a" .. long, alpn = proxy{ "h2" } },
                              proxy{ connect_timeout = 5000, family = "inet",
                                     ssl = proxy{ server_name = "b" .. long, ca_file = "/nonexistent/" .. long } } }) do
        assert(net.open_tcp("127.0.0.1", port, opts)):close()
      end
      local req = assert(net.http_request(proxy{ url = "http://127.0.0.1:" .. port .. "/" .. long, method = "POST",
                                                 body = proxy{ file = "/nonexistent/" .. long }, proxy = false,
                                                 headers = { ["X-A"] = "v" .. long } }))
      assert(tostring(req):find("/" .. long, 1, true), tostring(req))
      req:close()
      assert(net.open_websocket("ws://127.0.0.1:" .. port .. "/",
                                proxy{ protocols = "chat" .. long, ping_interval = 1000 })):close()
      assert(net.create_resolver(proxy{ nameservers = { "127.0.0.1:" .. port }, tries = 1 })):close()
      srv:close()
      print("intact")
    ]])
    assert.is_true(ok, out .. err)
    assert.matches("intact", out)
  end)

  it("raises on a host that is neither a string nor an address", function()
    raises("bad argument #1 to 'open_tcp'", function() return net.open_tcp(nil, 80) end)
    raises("bad argument #1 to 'open_tcp'", function() return net.open_tcp({}, 80) end)
    raises("bad argument #1 to 'open_tcp'", function() return net.open_tcp(true, 80) end)
    raises("bad argument #1 to 'open_tcp'", function() return net.open_tcp(print, 80) end)
    -- a tcp connection is no address
    raises("bad argument #1 to 'open_tcp'", function() return net.open_tcp(conn, 80) end)
    raises("bad argument #1 to 'resolve_address'", function() return net.resolve_address({}) end)
    raises("bad argument #1 to 'resolve_address'", function() return net.resolve_address(nil) end)
  end)

  it("raises on impossible ports with the exact message", function()
    for _, port in ipairs({ 0, 70000, 65536, -1, -80, math.mininteger, math.maxinteger }) do
      raises(PORT_MSG, function() return net.open_tcp("127.0.0.1", port) end)
    end
    raises("bad argument #2 to 'open_tcp'", function() return net.open_tcp("127.0.0.1", nil) end)
    raises("bad argument #2 to 'open_tcp'", function() return net.open_tcp("127.0.0.1", "http") end)
    raises("bad argument #2 to 'open_tcp'", function() return net.open_tcp("127.0.0.1", {}) end)
    -- a bad port raises even when the host is bad too (nothing is started)
    raises("bad argument #2 to 'open_tcp'", function() return net.open_tcp("", 0) end)
    -- ports at the edges are fine (nobody listens: they just fail later)
    local c1 = assert(net.open_tcp("127.0.0.1", 1))
    local c2 = assert(net.open_tcp("127.0.0.1", 65535))
    c1:close()
    c2:close()
  end)

  it("raises the port message for non-integer ports too", function()
    for _, port in ipairs({ 1.5, 80.25, math.huge, -math.huge, 0 / 0 }) do
      raises(PORT_MSG, function() return net.open_tcp("127.0.0.1", port) end)
    end
  end)

  it("returns nil, message, invalid for impossible host names", function()
    for _, host in ipairs({ "", "a\0b", "\0", string.rep("h", 254), string.rep("h", 10000) }) do
      local c, msg, code = net.open_tcp(host, 80)
      assert.is_nil(c)
      assert.are.equal("string", type(msg))
      assert.is_true(#msg > 0)
      assert.are.equal("invalid", code)
    end
  end)

  it("raises on bad read sizes", function()
    raises("bad argument #1 to 'read'", function() return conn:read(0) end)
    raises("bad argument #1 to 'read'", function() return conn:read(-1) end)
    raises("bad argument #1 to 'read'", function() return conn:read(1.5) end)
    raises("bad argument #1 to 'read'", function() return conn:read("x") end)
    raises("bad argument #1 to 'read'", function() return conn:read(nil) end)
    raises("bad argument #1 to 'read'", function() return conn:read({}) end)
    raises("bad argument #1 to 'read'", function() return conn:read(math.mininteger) end)
  end)

  it("accepts a huge read size without allocating it", function()
    assert.are.equal("", conn:read(1 << 40))
    assert.are.equal("", conn:read(2 ^ 40))
    assert.are.equal("", conn:read(math.maxinteger))
    assert.are.equal(5, conn:write("hello"))
    local got = h.wait_for(function()
      local s = conn:read(1 << 40)
      if s ~= "" then return s end
    end, 10000)
    assert.are.equal("hello", got)
  end)

  it("raises on bad write data", function()
    raises("bad argument #1 to 'write'", function() return conn:write({}) end)
    raises("bad argument #1 to 'write'", function() return conn:write(nil) end)
    raises("bad argument #1 to 'write'", function() return conn:write(true) end)
    assert.are.equal(0, conn:write(""))
    -- numbers are strings to luaL_checklstring
    assert.are.equal(2, conn:write(42))
    assert.are.equal("42", h.read_n(conn, 2, 10000))
  end)

  it("raises on bad timeouts", function()
    local WUC, WUD = "bad argument #1 to 'wait_until_connected'", "bad argument #1 to 'wait_until_drained'"
    raises(WUC, function() return conn:wait_until_connected("x") end)
    raises(WUC, function() return conn:wait_until_connected({}) end)
    raises(WUD, function() return conn:wait_until_drained("x") end)
    local addr = assert(net.resolve_address("127.0.0.1"))
    raises("bad argument #1 to 'wait_until_resolved'", function() return addr:wait_until_resolved({}) end)
  end)

  it("raises when a method gets the wrong object", function()
    local addr = assert(net.resolve_address("127.0.0.1"))
    raises("bad argument #1 to 'read'", function() return conn.read(addr, 10) end)
    raises("bad argument #1 to 'read'", function() return conn.read(nil, 10) end)
    raises("bad argument #1 to 'read'", function() return conn.read({}, 10) end)
    raises("bad argument #1 to 'write'", function() return conn.write("self", "x") end)
    raises("bad argument #1 to 'get_status'", function() return conn.get_status(addr) end)
    raises("bad argument #1 to 'get_ip'", function() return addr.get_ip(conn) end)
    raises("bad argument #1 to 'close'", function() return conn.close(42) end)
  end)

  it("does not expose finalizers as methods", function()
    assert.is_nil(conn.__gc)
    assert.is_nil(conn.__close)
    local addr = assert(net.resolve_address("127.0.0.1"))
    assert.is_nil(addr.__gc)
  end)

  it("answers every call on a closed connection", function()
    assert.are.equal(3, conn:write("abc"))
    conn:close()
    assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
    assert.are.same({ "failure", "closed", "closed" }, { conn:wait_until_connected(10) })
    assert.are.same({ nil, "closed", "closed" }, { conn:read(10) })
    assert.are.same({ nil, "closed", "closed" }, { conn:write("x") })
    assert.are.same({ nil, "closed", "closed" }, { conn:pause_read() })
    assert.are.same({ nil, "closed", "closed" }, { conn:resume_read() })
    assert.are.equal(0, conn:available())
    assert.are.equal(0, conn:get_pending_writes())
    assert.are.equal(0, conn:wait_until_drained(10))
    assert.are.equal(0, select("#", conn:close()))
    assert.are.equal(0, select("#", conn:close()))
    assert.truthy(tostring(conn):find("^net%.tcp%("))
    -- argument checks still come first on a closed connection
    raises("bad argument #1 to 'read'", function() return conn:read(0) end)
    conn = nil
  end)

  it("survives close() from a __gc and a <close> on the same object", function()
    do
      local c <close> = assert(net.open_tcp("127.0.0.1", peer.port))
      c:close()
    end
    collectgarbage()
    collectgarbage()
  end)

  it("keeps the module functions safe to call with no arguments", function()
    assert.are.equal("number", type(net.clock()))
    assert.are.equal("boolean", type(net.wait(0)))
    local stats = net.get_stats()
    for _, k in ipairs({ "connections", "addresses", "buffer_bytes", "chunks" }) do
      assert.are.equal("integer", math.type(stats[k]), k)
    end
    raises("bad argument #1 to 'open_tcp'", function() return net.open_tcp() end)
    raises("bad argument #1 to 'resolve_address'", function() return net.resolve_address() end)
  end)

  it("takes the length of option lists raw, never from __len", function()
    -- a negative __len once passed the 16-name check and wrote before the array
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      for _, n in ipairs{ -1, -40, -1000, -10000000, math.mininteger } do
        local alpn = setmetatable({}, { __len = function() return n end })
        local c = net.open_tcp("127.0.0.1", 9, { alpn = alpn, verify = false })
        if c then c:close() end
      end
      -- 20 names behind a __len that says 2: the 20 count
      local many = setmetatable({}, { __len = function() return 2 end })
      for i = 1, 20 do many[i] = "p" .. i end
      print(pcall(net.open_tcp, "127.0.0.1", 9, { alpn = many, verify = false }))
    ]])
    assert.is_true(ok, "the child crashed: " .. out .. err)
    assert.truthy(out:find("at most 16 alpn names", 1, true), out)
  end)
  it("raises on a NUL byte in a string the engine would take cut short", function()
    local path = os.tmpname()
    os.remove(path)
    raises("option 'unix' contains a NUL byte", function() return net.create_server{ unix = path .. "\0x" } end)
    assert.is_nil(io.open(path), "a truncated path was bound")
    local tls = function(t) return function() return net.open_tcp("127.0.0.1", 9, t) end end
    raises("option 'server_name' contains a NUL byte", tls{ server_name = "a\0b" })
    raises("option 'key_password' contains a NUL byte", tls{ key_password = "a\0b" })
    raises("option 'min_version' contains a NUL byte", tls{ min_version = "tls1.2\0x" })
    raises("an alpn name contains a NUL byte", tls{ alpn = { "h2\0x" } })
    raises("option 'family' contains a NUL byte", function()
      return net.open_tcp("127.0.0.1", 9, { family = "inet\0x" })
    end)
    raises("option 'protocols' contains a NUL byte", function()
      return net.open_websocket("ws://127.0.0.1:9/", { protocols = { "chat\0x" } })
    end)
    raises("option 'url' contains a NUL byte", function() return net.http_request{ url = "http://127.0.0.1:9/\0x" } end)
    raises("option 'method' contains a NUL byte", function()
      return net.http_request{ url = "http://127.0.0.1:9/", method = "GET\0X" }
    end)
    raises("a header name contains a NUL byte", function()
      return net.http_request{ url = "http://127.0.0.1:9/", headers = { ["X-A\0B"] = "1" } }
    end)
    raises("bad argument #1 to 'set_cacert_path' (path longer than 32767 bytes)", function()
      return net.set_cacert_path(("a"):rep(70000))
    end)
    raises("bad argument #1 to 'set_cacert_path' (string contains a NUL byte)", function()
      return net.set_cacert_path("/etc/ssl/certs\0x")
    end)
    local u = assert(net.open_udp("127.0.0.1", 0))
    raises("bad argument #2 to 'set_option' (string contains a NUL byte)", function()
      return u:set_option("multicast_interface", "127.0.0.1\0x")
    end)
    raises("bad argument #2 to 'join' (string contains a NUL byte)", function()
      return u:join("239.1.2.3", "127.0.0.1\0x")
    end)
    -- option names too: "nodelay\0x" is no name, though its start is one
    raises("bad argument #1 to 'set_option' (string contains a NUL byte)", function()
      return u:set_option("broadcast\0x", true)
    end)
    u:close()
    local c = assert(net.open_tcp("127.0.0.1", h.closed_port()))
    raises("bad argument #1 to 'set_option' (string contains a NUL byte)", function()
      return c:set_option("nodelay\0x", true)
    end)
    raises("bad argument #1 to 'get_option' (string contains a NUL byte)", function()
      return c:get_option("nodelay\0")
    end)
    raises("bad argument #1 to 'shutdown' (string contains a NUL byte)", function() return c:shutdown("send\0") end)
    c:close()
    local ws = assert(net.open_websocket("ws://127.0.0.1:" .. h.closed_port() .. "/"))
    raises("bad argument #2 to 'send' (string contains a NUL byte)", function() return ws:send("x", "binary\0junk") end)
    ws:close()
  end)

  it("raises when create_server gets a unix path next to an address and port", function()
    local path = os.tmpname()
    os.remove(path)
    raises("bad argument #3 to 'create_server' (a Unix server takes no address or port", function()
      return net.create_server("127.0.0.1", 0, { unix = path })
    end)
    raises("bad argument #2 to 'create_server' (a Unix server takes no address or port", function()
      return net.create_server(0, { unix = path })
    end)
    assert.is_nil(io.open(path))
  end)

  it("takes whole floats wherever it takes integers: ports, keepalive", function()
    local server = assert(net.create_server(0.0))
    local port = server:get_port()
    local c = assert(net.open_tcp("127.0.0.1", port + 0.0, { keepalive = 30.0 }))
    assert.equal(30, c:get_option("keepalive"))
    assert.is_true(c:set_option("keepalive", 60 * 0.5))
    raises("keepalive must be a boolean or 1..86400 seconds", function() return c:set_option("keepalive", 1.5) end)
    c:close()
    server:close()
  end)

  it("refuses net.json_null as a wake-up function rather than calling it", function()
    raises("bad argument #1 to 'set_wakeup' (a light userdata here must be a C function)", function()
      return net.set_wakeup(net.json_null)
    end)
  end)
end)
