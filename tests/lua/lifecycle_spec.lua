-- lifecycle_spec: connections come and go without leaking: 1,000 opened and closed (at
-- most 250 at once), dropped ones collected, and a Lua state that ends with open
-- connections (lua_close in a child process) exits cleanly and still delivers its data;
-- a close after shutdown("send") finishes with the peer's FIN, without the linger; the
-- block a large read gathers in belongs to the Lua state.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

-- Wait until the engine holds no connection and no buffer chunk; returns the stats.
local function settle(timeout_ms)
  local stats
  h.wait_for(function()
    collectgarbage()
    collectgarbage()
    stats = net.get_stats()
    return stats.connections == 0 and stats.chunks == 0
  end, timeout_ms or 15000)
  return stats
end

-- Run a Lua script in a child process (the host interpreter under test); returns
-- os.execute's three results and the child's stderr.
local function run_child(script, ...)
  local err = os.tmpname()
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = h.shell_quote(a) end
  local cmd = string.format("timeout -k 5 120 %s %s %s 2>%s", h.shell_quote(h.lua),
    h.shell_quote(h.dir .. "scripts/" .. script), table.concat(args, " "), h.shell_quote(err))
  local ok, how, code = os.execute(cmd)
  local stderr = h.read_file(err) or ""
  os.remove(err)
  return ok, how, code, stderr
end

describe("lifecycle", function()
  after_each(function()
    h.stop_all()
  end)

  it("opens and closes 1,000 connections without leaking", function()
    local peer = h.start_peer("echo")
    settle()
    local total, batch = 1000, 250
    for first = 1, total, batch do
      local conns = {}
      for i = first, math.min(first + batch - 1, total) do
        conns[i] = assert(net.open_tcp("127.0.0.1", peer.port))
        local msg = "hello " .. i
        assert.are.equal(#msg, conns[i]:write(msg))   -- allowed while still connecting
      end
      for i, conn in pairs(conns) do
        local want = "hello " .. i
        local got, msg, code = h.read_n(conn, #want, 20000)
        assert.are.equal(want, got, tostring(msg) .. " " .. tostring(code))
      end
      local stats = net.get_stats()
      assert.is_true(stats.connections >= batch, "stats.connections " .. stats.connections)
      for _, conn in pairs(conns) do conn:close() end
    end
    local stats = settle()
    assert.are.equal(0, stats.connections)
    assert.are.equal(0, stats.chunks)
    assert.are.equal(0, stats.buffer_bytes)
  end)

  it("collects connections that are dropped without close()", function()
    local peer = h.start_peer("echo")
    settle()
    do
      local conns = {}
      for i = 1, 200 do
        conns[i] = assert(net.open_tcp("127.0.0.1", peer.port))
        conns[i]:write(string.rep("x", 10000))
      end
      -- read some of them back, leave the rest unread
      for i = 1, 100 do
        assert.are.equal(10000, #h.read_n(conns[i], 10000, 20000))
      end
      assert.is_true(net.get_stats().connections >= 200)
    end
    local stats = settle(20000)
    assert.are.equal(0, stats.connections)
    assert.are.equal(0, stats.chunks)
  end)

  it("closes at once after shutdown(\"send\") once the peer's FIN came, not after the linger", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    settle()
    -- a linger far longer than the wait below: only a finished close ends it in time
    local c = assert(net.open_tcp("127.0.0.1", srv:get_port(), { linger = 120000 }))
    local a = assert(h.accept_one(srv))
    assert.are.equal("success", h.wait_status(c))
    assert(c:write("last words"))
    assert.is_true(c:shutdown("send"))
    assert.are.equal("last words", h.read_all(a, nil, 10000))   -- up to its EOF
    a:close()
    assert.are.equal("failure", h.wait_failure(c))   -- our side saw the peer's FIN
    c:close()
    srv:close()
    local stats = settle(20000)
    assert.are.equal(0, stats.connections)
  end)

  it("does not wake net.wait for a closed connection's news", function()
    -- a frame loop asleep in net.wait has nothing to read from it. Alone in a
    -- child, so no other object of this process publishes meanwhile.
    local peer = h.start_peer("echo")
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      local conn = assert(net.open_tcp("127.0.0.1", tonumber(...)))
      assert(conn:wait_until_connected(10000) == "success")
      assert(conn:write("ping") == 4)
      local t = net.clock() + 10
      while conn:available() < 4 and net.clock() < t do net.wait(10) end
      assert(conn:available() == 4, "no echo")
      net.wait(0)
      conn:close()   -- its FIN, the peer's, the close finishing: nobody's news
      io.write(tostring(net.wait(300)))
    ]], nil, peer.port)
    assert.is_true(ok, err)
    assert.are.equal("false", out)
  end)

  it("holds no buffer memory for idle connections", function()
    local peer = h.start_peer("echo")
    settle()
    local conns = {}
    for i = 1, 100 do conns[i] = assert(net.open_tcp("127.0.0.1", peer.port)) end
    for _, conn in ipairs(conns) do
      assert.are.equal("success", conn:wait_until_connected(10000))
    end
    -- exchange a little, read it all: then every ring is empty again
    for i, conn in ipairs(conns) do conn:write("ping" .. i) end
    for i, conn in ipairs(conns) do
      assert.are.equal("ping" .. i, h.read_n(conn, #("ping" .. i), 10000))
    end
    assert.is_true(h.wait_for(function()
      local s = net.get_stats()
      return s.buffer_bytes == 0 and s.chunks == 0
    end, 10000), "idle connections still hold buffers")
    for _, conn in ipairs(conns) do conn:close() end
    assert.are.equal(0, settle().connections)
  end)

  -- In a child: `count` connections to port, opened with the options `opts` (Lua
  -- source) and settled; then `traffic` (Lua source, with conns, rss and pause).
  -- Returns the resident MiB above the start when the traffic ended, and once it
  -- came back within 8 MiB (or 10 s went by).
  local function pages_back(port, count, opts, traffic)
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      local function rss()
        local f = io.open("/proc/self/statm")
        local _, r = f:read("n", "n")
        f:close()
        return r * 4096
      end
      local function pause(s) local t = net.clock() + s while net.clock() < t do net.wait(20) end end
      local port, count = ...
      local conns = {}
      for i = 1, tonumber(count) do conns[i] = assert(net.open_tcp("127.0.0.1", tonumber(port), ]] .. opts .. [[)) end
      for _, c in ipairs(conns) do assert(c:wait_until_connected(10000) == "success") end
      pause(1.5)
      collectgarbage()
      local before = rss()
    ]] .. traffic .. [[
      local peak, after = rss()
      local t = net.clock() + 10
      repeat pause(0.1) collectgarbage() after = rss() until after < before + 8 * 2 ^ 20 or net.clock() > t
      io.write(string.format("%.1f %.1f", (peak - before) / 2 ^ 20, (after - before) / 2 ^ 20))
    ]], nil, port, count)
    assert.is_true(ok, err)
    local peak, after = out:match("^(%S+) (%S+)$")
    assert.is_truthy(peak, out)
    return peak, after
  end

  it("gives the pages of a burst of small frees back once the engine is quiet", function()
    if h.mode == "windows" or h.mode == "asan" or h.mode == "tsan" then
      return pending("glibc's heap: the sanitizers' allocators and msvcrt keep their own")
    end
    -- 400 receive buffers of 64 MiB: each holds a 32 KiB slot table while it has
    -- bytes, freed once read; no burst of big blocks comes to trim the heap
    local peak, after = pages_back(h.start_peer("echo").port, 400, "{ buffer_size = 64 * 2 ^ 20 }", [[
      for _, c in ipairs(conns) do assert(c:write("x") == 1) end
      local left, t = #conns, net.clock() + 10
      while left > 0 and net.clock() < t do
        for _, c in ipairs(conns) do
          if c:available() > 0 then assert(#c:read(1) == 1) left = left - 1 end
        end
        net.wait(10)
      end
      assert(left == 0, "echoes missing")
    ]])
    -- the chunk pool keeps up to 4 MiB; the tables' 12.5 MiB go back
    assert.is_true(tonumber(after) < 8, "MiB above the start: peak " .. peak .. ", after " .. after)
  end)

  it("gives the pages of a burst of buffer chunks back", function()
    if h.mode == "windows" or h.mode == "asan" or h.mode == "tsan" then
      return pending("resident memory from /proc, with glibc's heap for the rest")
    end
    -- 200 connections each send 64 KiB and get it back, all echoes in before any is
    -- read: 800 chunks (12.5 MiB) in receive buffers at once, past the pool's 4 MiB
    local peak, after = pages_back(h.start_peer("echo").port, 200, "nil", [[
      local data = string.rep("x", 65536)
      for _, c in ipairs(conns) do assert(c:write(data) == #data) end
      local t = net.clock() + 20
      for _, c in ipairs(conns) do   -- every echo in before any is read: all the chunks at once
        while c:available() < #data and net.clock() < t do net.wait(5) end
      end
      local left = #conns * #data
      while left > 0 and net.clock() < t do
        for _, c in ipairs(conns) do left = left - #assert(c:read(65536)) end
        collectgarbage()   -- one string's room, used again and again
        net.wait(5)
      end
      assert(left == 0, left .. " bytes of the echoes missing")
    ]])
    -- the chunk pool keeps up to 4 MiB; the rest goes back
    assert.is_true(tonumber(after) < 8, "MiB above the start: peak " .. peak .. ", after " .. after)
  end)

  it("reports the heap as sampled off the caller's thread, following it within a moment", function()
    if h.mode == "windows" or h.mode == "asan" or h.mode == "tsan" then
      return pending("glibc's heap: the sanitizers' allocators and msvcrt report none")
    end
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      local function settle() local t = net.clock() + 0.3 while net.clock() < t do net.wait(20) end end
      settle()   -- the first sample is taken as the module loads, off this thread
      local first = net.get_stats().heap_bytes
      settle()   -- what that call asked for is in before the string
      local big = string.rep("x", 64 * 1024 * 1024)
      local stale = net.get_stats().heap_bytes   -- the last sample: the call asks, it does not walk the heap
      settle()
      local grown = net.get_stats().heap_bytes
      big = nil
      collectgarbage()
      settle()
      net.get_stats()
      settle()
      local after = net.get_stats().heap_bytes
      io.write(string.format("%d %d %d %d", first, stale, grown, after))
    ]])
    assert.is_true(ok, err)
    local first, stale, grown, after = out:match("^(%d+) (%d+) (%d+) (%d+)$")
    assert.is_truthy(first, out)
    first, stale, grown, after = tonumber(first), tonumber(stale), tonumber(grown), tonumber(after)
    assert.is_true(first > 0, out)
    assert.is_true(stale < first + 32 * 2 ^ 20, out)   -- taken before the string: the call did not walk the heap
    assert.is_true(grown > first + 60 * 2 ^ 20, out)
    assert.is_true(after < grown - 60 * 2 ^ 20, out)
  end)

  -- For the two tests below: conn and other receive 1 MiB each from an echo
  -- peer, 16 KiB at a time by turns, so that their buffers take chunks by turns.
  local BY_TURNS = [[
    local net = require "net"
    local conn = assert(net.open_tcp("127.0.0.1", ...))
    local other = assert(net.open_tcp("127.0.0.1", ...))
    local function send(c, s)
      local n = 0
      while n < #s do n = n + assert(c:write(s, n + 1)); if n < #s then net.wait(1) end end
    end
    local function by_turns()
      local piece = string.rep("x", 16384)
      local base = { [conn] = conn:available(), [other] = other:available() }
      for i = 1, 64 do
        for _, c in ipairs({ conn, other }) do
          send(c, piece)
          while c:available() < base[c] + 16384 * i do net.wait(1) end
        end
      end
    end
    -- prints by how many KiB the state grew for a 1 MiB read of conn, then closes both
    local function measure_read()
      collectgarbage()
      local before = collectgarbage("count")
      assert(#conn:read(1 << 20) == 1 << 20)
      collectgarbage()
      print(string.format("%.0f", collectgarbage("count") - before))
      conn:close()
      other:close()
    end
  ]]

  it("keeps a large read's gathering block in the Lua state, not in its thread", function()
    -- a state run on a short-lived thread frees it at lua_close. In a fresh
    -- state of its own: an earlier large read here would have made the block.
    local peer = h.start_peer("echo")
    -- by turns, conn's 1 MiB is not in one piece of memory (chunks side by
    -- side are read straight from the buffer) and the read gathers it
    local code = BY_TURNS .. [[
      by_turns()
      measure_read()   -- across buffer chunks: gathered in the block
    ]]
    local ok, out, err = h.run_lua_child(code, nil, peer.port)
    assert.is_true(ok, err)
    local grown = tonumber(out:match("(%d+)"))
    assert.is_true(grown and grown >= 768, string.format("the state grew by %s KiB, not by the 1 MiB block", out))
  end)

  it("reads a grown buffer's bytes straight into the string: no gathering block", function()
    -- chunks side by side need pages of the module's own; under ASan they are malloc's
    if h.mode == "asan" then return pending("chunks are malloc's under ASan: a large read gathers") end
    local peer = h.start_peer("echo")
    -- by turns as above, but conn's buffer grew first, so its chunks lie side by side
    local code = BY_TURNS .. [[
      -- full for a while, then read empty: the buffer doubles to 2 MiB, a run
      -- of 129 chunks; the next MiB fills chunks 64 to 127 of it, short of its end
      local burst = 1 << 20
      send(conn, string.rep("y", burst))
      while conn:available() < 1 << 20 do net.wait(10) end
      local full = net.clock()   -- a stall of 5 ms or more grows the buffer; net.wait may return early
      while net.clock() - full < 0.02 do net.wait(5) end
      local got = 0   -- in small reads: a gathering block made now would hide one made later
      while got < burst do got = got + #conn:read(16384) end
      by_turns()
      measure_read()
    ]]
    local ok, out, err = h.run_lua_child(code, nil, peer.port)
    assert.is_true(ok, err)
    local grown = tonumber(out:match("(%d+)"))
    assert.is_true(grown and grown < 64, string.format("the state grew by %s KiB: the read gathered", out))
  end)

  it("exits cleanly from a Lua state closed with open connections", function()
    local peer = h.start_peer("sink")
    local count, bytes = 4, 300000
    local ok, how, code, stderr = run_child("exit_open.lua", peer.port, count, bytes)
    assert.are.same({ true, "exit", 0 }, { ok, how, code }, stderr)
    local sinks = peer:wait_sinks(count, 30000)
    assert.truthy(sinks, "the sink saw " .. #peer:sinks() .. " of " .. count .. " streams end")
    local want = {}
    for i = 1, count do
      local hash = h.hex64(h.fnv1a(string.rep(string.char(65 + i % 26), bytes)))
      want[hash] = (want[hash] or 0) + 1
    end
    for _, s in ipairs(sinks) do
      assert.are.equal(bytes, s.bytes)
      assert.truthy(want[s.hash], "unexpected stream content")
      want[s.hash] = want[s.hash] - 1
    end
  end)

  it("exits cleanly when some connections became garbage before the end", function()
    local peer = h.start_peer("sink")
    local count, bytes = 6, 100000
    local ok, how, code, stderr = run_child("exit_open.lua", peer.port, count, bytes, "drop")
    assert.are.same({ true, "exit", 0 }, { ok, how, code }, stderr)
    local sinks = peer:wait_sinks(count, 30000)
    assert.truthy(sinks, "the sink saw " .. #peer:sinks() .. " of " .. count .. " streams end")
    for _, s in ipairs(sinks) do assert.are.equal(bytes, s.bytes) end
  end)

  -- API.md: a closed object is a run-time failure, never an error. Every method of
  -- every kind, after close (or a <close> scope, for a websocket), answers as one.
  it("answers every method of a closed object with the closed failure, never an error", function()
    local srv = assert(net.create_server("127.0.0.1", 0))   -- accepts, never answers
    local url = "127.0.0.1:" .. srv:get_port() .. "/"
    local objects = {
      tcp = assert(net.open_tcp("127.0.0.1", srv:get_port())),
      udp = assert(net.open_udp("127.0.0.1", 0)),
      server = assert(net.create_server("127.0.0.1", 0)),
      http = assert(net.http_request{ url = "http://" .. url, proxy = false }),
      websocket = assert(net.open_websocket("ws://" .. url)),
      resolver = assert(net.create_resolver{ nameservers = { "127.0.0.1:" .. h.closed_port() } }),
    }
    local calls = {
      tcp = { get_status = {}, read = { 10 }, read_until = { "\n" }, write = { "x" } },
      udp = { send = { "127.0.0.1", 9, "x" }, receive = {} },
      server = { get_status = {}, accept = {} },
      http = { get_status = {}, wait = { 0 }, get_response = {}, get_redirect = { 1 },
        get_progress = {}, read = {} },
      websocket = { get_status = {}, wait_until_connected = { 0 }, send = { "x" }, ping = {},
        receive = {}, get_close = {}, get_protocol = {}, get_extensions = {}, get_request = {},
        get_peer = {} },
      resolver = { resolve = { "a.test" } },
    }
    for kind, o in pairs(objects) do
      if kind == "websocket" then
        do local _ <close> = o end   -- a websocket's close() is a handshake; __close releases it
      else
        o:close()
        o:close()   -- idempotent
      end
      for name, args in pairs(calls[kind]) do
        local r = table.pack(pcall(o[name], o, table.unpack(args)))
        local where = kind .. ":" .. name
        assert(r[1], where .. " raised: " .. tostring(r[2]))
        assert(r[2] == nil or r[2] == false or r[2] == "failure", where .. " gave " .. tostring(r[2]))
        assert.equal("closed", r[4], where)
      end
    end
    assert.is_true(objects.websocket:close())
    assert.is_nil(objects.http:cancel())
    srv:close()
  end)
end)
