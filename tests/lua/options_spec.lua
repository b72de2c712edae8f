-- options_spec: connection options of net.open_tcp (connect_timeout, idle_timeout,
-- nodelay, keepalive, buffer_size, family, linger) and conn:set_option/get_option;
-- unknown options and bad values raise.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

local HAVE_V6 = h.ipv6_loopback()

-- The keepalive timer of our established connection to 127.0.0.1:port as `ss -o` shows
-- it ("keepalive,59sec,0"), "" when there is none, nil when ss is not there.
local function ss_timer(port)
  local p = io.popen(string.format("ss -tnoH state established dst 127.0.0.1:%d 2>/dev/null", port))
  if not p then return nil end
  local out = p:read("a")
  local ok = p:close()
  if not ok and out == "" then return nil end
  return out:match("timer:%(([^)]*)%)") or ""
end

-- The seconds left on an ss keepalive timer ("keepalive,1.2sec,0", "keepalive,999ms,0",
-- "keepalive,119min,0"), nil when it is not one.
local function keepalive_left(timer)
  local n, unit = timer:match("^keepalive,([%d.]+)(%a+)")
  local scale = ({ ms = 0.001, sec = 1, min = 60 })[unit]
  return scale and tonumber(n) * scale
end

describe("connection options", function()
  after_each(function()
    h.stop_all()
  end)

  describe("connect_timeout", function()
    local cases = { { "IPv4", "127.0.0.1", false } }
    if HAVE_V6 then cases[2] = { "IPv6", "::1", true } end
    for _, case in ipairs(cases) do
      local label, host, v6 = case[1], case[2], case[3]
      it("fails a connect that gets no answer after the time given, over " .. label, function()
        -- the blackhole peer's full accept queue makes the kernel drop our SYN
        local hole = h.start_peer("blackhole", nil, { ipv6 = v6 })
        local t0 = net.clock()
        local conn = assert(net.open_tcp(host, hole.port, { connect_timeout = 300 }))
        local status, msg, code = h.wait_status(conn, 10000)
        local elapsed = net.clock() - t0
        assert.are.equal("failure", status, msg)
        assert.are.equal("timeout", code, msg)
        local shown = v6 and ("[" .. host .. "]") or host
        assert.are.equal(string.format("connect %s:%d: timed out after 300 ms (connect_timeout)",
          shown, hole.port), msg)
        assert.is_true(elapsed >= 0.25, "gave up after only " .. elapsed .. " s")
        assert.is_true(elapsed < 5, "took " .. elapsed .. " s")
        assert.is_nil(conn:write("x"))
        conn:close()
      end)
    end

    it("does not fire once connected", function()
      local peer = h.start_peer("echo")
      local conn = assert(net.open_tcp("127.0.0.1", peer.port, { connect_timeout = 200 }))
      assert.are.equal("success", h.wait_status(conn))
      h.sleep(400)
      assert.are.equal("success", conn:get_status())
      assert(h.write_all(conn, "still there"))
      assert.are.equal("still there", h.read_n(conn, 11, 10000))
      conn:close()
    end)

    it("works with a name still resolving and with TLS options", function()
      local hole = h.start_peer("blackhole")
      local certs = h.tls_certs()
      local conn = assert(net.open_tcp("sluice-v4.test", hole.port,
        { connect_timeout = 200, ssl = { ca_file = certs.ca } }))
      local status, msg, code = h.wait_status(conn, 10000)
      assert.are.equal("failure", status, msg)
      assert.are.equal("timeout", code, msg)
      assert.truthy(msg:find("(connect_timeout)", 1, true), msg)
      conn:close()
    end)
  end)

  describe("idle_timeout", function()
    it("fails an established connection on which nothing moved for the time given", function()
      local peer = h.start_peer("echo")
      local conn = assert(net.open_tcp("127.0.0.1", peer.port, { idle_timeout = 300 }))
      assert.are.equal("success", h.wait_status(conn))
      local t0 = net.clock()
      local status, msg, code = h.wait_failure(conn, 10000)
      local elapsed = net.clock() - t0
      assert.are.equal("failure", status, msg)
      assert.are.equal("timeout", code, msg)
      assert.truthy(msg:find("idle for 300 ms (idle_timeout)", 1, true), msg)
      assert.is_true(elapsed >= 0.2 and elapsed < 5, "failed after " .. elapsed .. " s")
      local data, rmsg, rcode = conn:read(10)
      assert.is_nil(data)
      assert.are.equal("timeout", rcode, rmsg)
      conn:close()
    end)

    it("names the sending side when the peer stopped taking bytes", function()
      local srv = assert(net.create_server("127.0.0.1", 0))
      local conn = assert(net.open_tcp("127.0.0.1", srv:get_port(), { idle_timeout = 300 }))
      local a
      assert(h.wait_for(function() a = a or srv:accept(); return a ~= nil end, 5000))
      a:pause_read(true)
      local block, deadline = string.rep("w", 64 * 1024), net.clock() + 30
      local full = 0   -- until the kernel's buffers too are full: bytes stay pending with us
      while full < 3 do
        if (conn:write(block) or 0) == 0 then full = full + 1; h.sleep(100) else full = 0 end
        assert(net.clock() < deadline, "write never pushed back")
      end
      local status, msg, code = h.wait_failure(conn, 10000)
      assert.are.same({ "failure", "timeout" }, { status, code })
      assert.are.equal(string.format("send 127.0.0.1:%d: idle for 300 ms (idle_timeout)", srv:get_port()), msg)
      conn:close(); a:close(); srv:close()
    end)

    it("is reset by traffic in either direction", function()
      local peer = h.start_peer("echo")
      local conn = assert(net.open_tcp("127.0.0.1", peer.port, { idle_timeout = 400 }))
      assert.are.equal("success", h.wait_status(conn))
      -- a byte every 100 ms for 1.2 s (3 idle periods): the echo keeps it busy both ways
      local deadline = net.clock() + 1.2
      while net.clock() < deadline do
        assert.are.equal(1, conn:write("."))
        assert.are.equal(".", h.read_n(conn, 1, 5000))
        assert.are.equal("success", conn:get_status())
        h.sleep(100)
      end
      -- then silence: it ends
      local status, msg, code = h.wait_failure(conn, 10000)
      assert.are.equal("failure", status, msg)
      assert.are.equal("timeout", code, msg)
      conn:close()
    end)

    it("leaves an orderly close orderly however long the bytes before it wait unread", function()
      local peer = h.start_peer("source", "5")   -- five bytes, then its FIN
      local conn = assert(net.open_tcp("127.0.0.1", peer.port, { idle_timeout = 300 }))
      assert(h.wait_for(function() return conn:available() == 5 end, 5000))
      h.sleep(900)
      assert.are.equal(5, #conn:read(100))
      assert.are.same({ nil }, { conn:read(100) })
      assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
      conn:close()
    end)

    it("delivers the bytes received before it fired", function()
      local peer = h.start_peer("echo")
      local conn = assert(net.open_tcp("127.0.0.1", peer.port, { idle_timeout = 300 }))
      assert(h.write_all(conn, "keep me"))
      assert(h.wait_for(function() return conn:available() == 7 end, 5000))
      h.sleep(700)
      assert.are.equal("keep me", conn:read(100))
      local data, msg, code = conn:read(100)
      assert.is_nil(data)
      assert.are.equal("timeout", code, msg)
      conn:close()
    end)

    it("does not count the time this side leaves a full buffer unread, or pauses reading", function()
      local peer = h.start_peer("source", "8M")
      local conn = assert(net.open_tcp("127.0.0.1", peer.port, { idle_timeout = 300, buffer_size = 64 * h.KiB }))
      assert.are.equal("success", h.wait_status(conn))
      assert(h.wait_for(function() return conn:available() == 64 * h.KiB end, 10000), "the buffer never filled")
      h.sleep(900)   -- three idle periods with the peer held back by us alone
      assert.are.equal("success", conn:get_status())
      local got = assert(conn:read(64 * h.KiB))
      conn:pause_read()
      h.sleep(900)
      assert.are.equal("success", conn:get_status())
      conn:resume_read()
      local total, check = #got, h.pattern_checker()
      assert(check:feed(got))
      while total < 8 * h.MiB do
        local s, msg, code = conn:read(1 << 20)
        assert(s, tostring(msg) .. " " .. tostring(code) .. " after " .. total)
        if s == "" then net.wait(10) else total = total + #s; assert(check:feed(s)) end
      end
      conn:close()
    end)

    it("applies to connections accepted by a server given the option", function()
      local srv = assert(net.create_server("127.0.0.1", 0, { idle_timeout = 300 }))
      local client, accepted = h.connect_pair(srv, "127.0.0.1")
      local status, msg, code = h.wait_failure(accepted, 10000)
      assert.are.equal("failure", status, msg)
      assert.are.equal("timeout", code, msg)
      assert.truthy(msg:find("(idle_timeout)", 1, true), msg)
      -- the client (no idle timeout) sees the server's side go away
      assert(h.wait_for(function()
        local st = client:get_status()
        if st == "success" then client:read(100) end
        return st == "failure"
      end, 10000), "the client never saw the end")
      client:close()
      accepted:close()
      srv:close()
    end)
  end)

  describe("nodelay, keepalive, linger, reuseaddr", function()
    local peer, conn

    before_each(function()
      peer = h.start_peer("echo")
    end)

    after_each(function()
      if conn then conn:close() conn = nil end
    end)

    it("have documented defaults", function()
      conn = assert(net.open_tcp("127.0.0.1", peer.port))
      assert.are.equal("success", h.wait_status(conn))
      assert.is_false(conn:get_option("nodelay"))
      assert.is_false(conn:get_option("keepalive"))
      assert.are.equal(5000, conn:get_option("linger"))
    end)

    it("are set by open_tcp options", function()
      conn = assert(net.open_tcp("127.0.0.1", peer.port, { nodelay = true, keepalive = true, linger = 250 }))
      assert.are.equal("success", h.wait_status(conn))
      assert.is_true(conn:get_option("nodelay"))
      assert.is_true(conn:get_option("keepalive"))
      assert.are.equal(250, conn:get_option("linger"))
      local timer = ss_timer(peer.port)
      if timer then assert.truthy(timer:find("keepalive", 1, true), "ss shows timer: " .. timer) end
    end)

    it("takes keepalive as seconds of idleness before the first probe", function()
      conn = assert(net.open_tcp("127.0.0.1", peer.port, { keepalive = 30 }))
      assert.are.equal("success", h.wait_status(conn))
      assert.are.equal(30, conn:get_option("keepalive"))
      local timer = ss_timer(peer.port)
      if timer then
        local secs = tonumber(timer:match("^keepalive,(%d+)sec") or timer:match("^keepalive,(%d+)min"))
        assert.truthy(secs, "ss shows timer: " .. timer)
        assert.is_true(secs <= 30, "ss shows timer: " .. timer)
      end
    end)

    it("takes keepalive past the system's longest as its longest, not as its default", function()
      conn = assert(net.open_tcp("127.0.0.1", peer.port, { keepalive = 86400 }))
      assert.are.equal("success", h.wait_status(conn))
      assert.are.equal(86400, conn:get_option("keepalive"))
      local timer = h.mode ~= "windows" and ss_timer(peer.port)
      if timer then   -- Linux keeps at most 32767 s; its default is 7200
        local left = keepalive_left(timer)
        assert.truthy(left, "ss shows timer: " .. timer)
        assert.is_true(left > 7200, "ss shows timer: " .. timer)
      end
    end)

    it("read keepalive back as given: 1 second as 1, true as true", function()
      conn = assert(net.open_tcp("127.0.0.1", peer.port, { keepalive = 1 }))
      assert.are.equal("success", h.wait_status(conn))
      assert.are.equal(1, conn:get_option("keepalive"))
      -- wine does not pass Windows' idle time on to the socket ss sees (skip.lua)
      local timer = h.mode ~= "windows" and ss_timer(peer.port)
      if timer then   -- 1 idle second, not the system's (hours)
        local left = keepalive_left(timer)
        assert.truthy(left, "ss shows timer: " .. timer)
        assert.is_true(left <= 1, "ss shows timer: " .. timer)
      end
      assert.is_true(conn:set_option("keepalive", true))
      assert.is_true(conn:get_option("keepalive"))
      assert.is_true(conn:set_option("keepalive", 1))
      assert.are.equal(1, conn:get_option("keepalive"))
      assert.is_true(math.type(conn:get_option("keepalive")) == "integer")
      assert.is_true(conn:set_option("keepalive", false))
      assert.is_false(conn:get_option("keepalive"))
    end)

    it("are changed by set_option, before and after connecting", function()
      conn = assert(net.open_tcp("127.0.0.1", peer.port))
      assert.is_true(conn:set_option("nodelay", true))   -- maybe still waiting
      assert.are.equal("success", h.wait_status(conn))
      assert.is_true(conn:get_option("nodelay"))
      assert.is_true(conn:set_option("nodelay", false))
      assert.is_false(conn:get_option("nodelay"))
      assert.is_true(conn:set_option("keepalive", true))
      assert.is_true(conn:get_option("keepalive"))
      local timer = ss_timer(peer.port)
      if timer then
        assert(h.wait_for(function()
          return (ss_timer(peer.port) or "keepalive"):find("keepalive", 1, true)
        end, 5000), "ss never showed a keepalive timer")
      end
      assert.is_true(conn:set_option("keepalive", 45))
      assert.are.equal(45, conn:get_option("keepalive"))
      assert.is_true(conn:set_option("keepalive", false))
      assert.is_false(conn:get_option("keepalive"))
      assert.is_true(conn:set_option("linger", 0))
      assert.are.equal(0, conn:get_option("linger"))
      assert.is_true(conn:set_option("reuseaddr", true))
      assert.is_true(conn:get_option("reuseaddr"))
      -- the connection still works
      assert(h.write_all(conn, "after options"))
      assert.are.equal("after options", h.read_n(conn, 13, 10000))
    end)

    it("raise on unknown names and bad values", function()
      conn = assert(net.open_tcp("127.0.0.1", peer.port))
      h.assert_raises("bad argument #1 to 'set_option'", function() return conn:set_option("bogus", true) end)
      h.assert_raises("bad argument #1 to 'get_option'", function() return conn:get_option("bogus") end)
      h.assert_raises("bad argument", function() return conn:set_option(nil, true) end)
      h.assert_raises("bad argument", function() return conn:get_option() end)
      h.assert_raises("bad argument #2 to 'set_option'", function() return conn:set_option("nodelay", "yes") end)
      h.assert_raises("bad argument #2 to 'set_option'", function() return conn:set_option("linger", -1) end)
      h.assert_raises("bad argument #2 to 'set_option'", function() return conn:set_option("linger", "long") end)
      h.assert_raises("bad argument #2 to 'set_option'", function() return conn:set_option("keepalive", -3) end)
    end)

    it("answer on a closed connection without crashing", function()
      conn = assert(net.open_tcp("127.0.0.1", peer.port))
      conn:close()
      assert.are.same({ nil, "closed", "closed" }, { conn:set_option("nodelay", true) })
      assert.are.same({ nil, "closed", "closed" }, { conn:get_option("nodelay") })
      conn = nil
    end)
  end)

  describe("buffer_size", function()
    -- A slow reader: nothing is read while the source peer sends 16 MiB; the engine must
    -- hold at most buffer_size (+ one 16 KiB chunk) for it, then deliver everything.
    it("caps the receive buffer of a connection whose reader is slow", function()
      local base = h.wait_idle(10000).buffer_bytes
      local CAP = 64 * h.KiB
      local TOTAL = h.scaled(16 * h.MiB)
      local peer = h.start_peer("source", tostring(TOTAL))
      local conn = assert(net.open_tcp("127.0.0.1", peer.port, { buffer_size = CAP }))
      assert.are.equal("success", h.wait_status(conn))
      -- wait until the buffer stops growing
      local last, stable = -1, 0
      h.wait_for(function()
        local a = conn:available()
        if a == last then stable = stable + 1 else stable = 0 end
        last = a
        return stable >= 5
      end, 10000, 50)
      local held = net.get_stats().buffer_bytes - base
      assert.is_true(conn:available() <= CAP, "available " .. conn:available())
      assert.is_true(conn:available() > 0, "nothing arrived")
      assert.is_true(held <= CAP + 16 * h.KiB, string.format("buffer_bytes grew by %d", held))
      -- nothing was lost
      local check = h.pattern_checker()
      local got, msg = h.read_all(conn, function(s) assert(check:feed(s)) end, 60000)
      assert.are.equal(TOTAL, got, msg)
      conn:close()
    end)

    it("caps the send buffer: write accepts at most about buffer_size", function()
      -- the blackhole never answers: nothing leaves the send buffer
      local hole = h.start_peer("blackhole")
      local CAP = 64 * h.KiB
      local conn = assert(net.open_tcp("127.0.0.1", hole.port, { buffer_size = CAP }))
      local total = 0
      for _ = 1, 10 do
        local n = assert(conn:write(string.rep("x", 256 * h.KiB)))
        total = total + n
      end
      assert.is_true(total > 0)
      assert.is_true(total <= CAP + 16 * h.KiB, "accepted " .. total)
      assert.are.equal(total, conn:get_pending_writes())
      conn:close()
    end)

    it("is the default max_len of read_until", function()
      local peer = h.start_peer("echo")
      local CAP = 32 * h.KiB
      local conn = assert(net.open_tcp("127.0.0.1", peer.port, { buffer_size = CAP }))
      assert(h.write_all(conn, string.rep("y", 3 * CAP)))
      local data, msg, code
      h.wait_for(function()
        data, msg, code = conn:read_until("\n")
        return data ~= ""
      end, 10000)
      assert.is_nil(data)
      assert.are.equal("limit", code, msg)
      conn:close()
    end)
  end)

  describe("family", function()
    local v4, v6

    -- echo peers on 127.0.0.1 and ::1, same port: which one answered shows in get_peer()
    before_each(function()
      v4, v6 = nil, nil
      if not HAVE_V6 then return end
      for _ = 1, 5 do
        v4 = h.start_peer("echo")
        local ok, p = pcall(h.start_peer, "echo", nil, { ipv6 = true, port = v4.port })
        if ok then v6 = p break end
        v4:stop()
      end
      assert(v6, "could not bind both families on one port")
    end)

    it("inet connects over IPv4 to a name whose first address is IPv6", function()
      if not HAVE_V6 then return pending("no IPv6 loopback") end
      local conn = assert(net.open_tcp("sluice-he.test", v4.port, { family = "inet" }))
      assert.are.equal("success", h.wait_status(conn))
      local ip, port, fam = conn:get_peer()
      assert.are.same({ "127.0.0.1", v4.port, "inet" }, { ip, port, fam })
      conn:close()
    end)

    it("inet6 connects over IPv6 to a name whose first address is IPv4", function()
      if not HAVE_V6 then return pending("no IPv6 loopback") end
      local conn = assert(net.open_tcp("sluice-he4.test", v4.port, { family = "inet6" }))
      assert.are.equal("success", h.wait_status(conn))
      local ip, _, fam = conn:get_peer()
      assert.are.same({ "::1", "inet6" }, { ip, fam })
      conn:close()
    end)

    it("without family takes the first address", function()
      if not HAVE_V6 then return pending("no IPv6 loopback") end
      for name, want in pairs({ ["sluice-he.test"] = "::1", ["sluice-he4.test"] = "127.0.0.1" }) do
        local conn = assert(net.open_tcp(name, v4.port))
        assert.are.equal("success", h.wait_status(conn))
        assert.are.equal(want, (conn:get_peer()))
        conn:close()
      end
    end)

    it("fails when the name has no address of that family", function()
      if not HAVE_V6 then return pending("no IPv6 loopback") end
      local conn = assert(net.open_tcp("sluice-v4.test", v4.port, { family = "inet6" }))
      local status, msg, code = h.wait_status(conn)
      assert.are.equal("failure", status, msg)
      assert.is_string(code)
      conn:close()
      conn = assert(net.open_tcp("sluice-v6.test", v4.port, { family = "inet" }))
      status, msg = h.wait_status(conn)
      assert.are.equal("failure", status, msg)
      conn:close()
    end)
  end)

  describe("bad options", function()
    local function bad(opts, text)
      h.assert_raises(text or "bad argument #3 to 'open_tcp'",
        function() return net.open_tcp("127.0.0.1", 9, opts) end)
    end

    it("raise on unknown keys", function()
      bad({ bogus = 1 })
      bad({ connect_timeout = 100, bogus = 1 })
      bad({ ssl = true, conect_timeout = 100 })
      bad({ backlog = 5 })   -- a server option
      -- alone, a misspelt connection option reads as a TLS table: the message names both
      bad({ conect_timeout = 100 }, "unknown connection or TLS option 'conect_timeout'")
    end)

    it("raise on values of the wrong type or out of range", function()
      bad({ connect_timeout = "soon" })
      bad({ connect_timeout = -1 })
      bad({ connect_timeout = 1.5 })
      bad({ idle_timeout = {} })
      bad({ idle_timeout = -100 })
      bad({ nodelay = "yes" })
      bad({ keepalive = "on" })
      bad({ keepalive = -1 })
      bad({ buffer_size = "big" })
      bad({ buffer_size = 0 })
      bad({ buffer_size = -4096 })
      bad({ family = "ipx" })
      bad({ family = 4 })
      bad({ linger = "long" })
      bad({ linger = -1 })
      bad({ ssl = "yes" })
      bad({ ssl = { bogus = true } })
    end)

    it("accept every known option together", function()
      local peer = h.start_peer("echo")
      local conn = assert(net.open_tcp("127.0.0.1", peer.port, {
        connect_timeout = 5000, idle_timeout = 60000, nodelay = true, keepalive = 60,
        buffer_size = 256 * h.KiB, family = "inet", linger = 1000 }))
      assert.are.equal("success", h.wait_status(conn))
      assert(h.write_all(conn, "all options"))
      assert.are.equal("all options", h.read_n(conn, 11, 10000))
      conn:close()
    end)
  end)
end)
