-- fault_spec: failures injected where a well-behaved system rarely fails: a Lua state
-- whose allocator fails at the Nth allocation (swept over N for the main calls), the
-- engine's own allocations failing, a process out of file descriptors, a kernel that
-- moves one byte per send and receive, and a wake-up of the I/O thread that fails.
-- Nothing may crash, stall, leak, lose a byte or fail without saying so ("not enough
-- memory" from Lua, "limit" from the engine).
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

local LUAHOST = h.build .. "/luahost"

-- Runs a Lua child under build/<mode>/luahost (whose allocator can fail).
local function luahost_child(source)
  local script = os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write(source)
  f:close()
  local p = assert(io.popen(string.format("%s %s 2>&1", h.shell_quote(LUAHOST), h.shell_quote(script))))
  local out = p:read("a")
  local ok = p:close()
  os.remove(script)
  return ok, out
end

describe("faults", function()
  teardown(function()
    h.stop_all()
  end)

  it("raises 'not enough memory' at every failing Lua allocation of the main calls, leaking nothing", function()
    local echo = h.start_peer("echo")
    local ok, out = luahost_child(string.format([[
      local net = require "net"
      local port = %d
      local server = assert(net.create_server("127.0.0.1", 0))
      local conn = assert(net.open_tcp("127.0.0.1", port))
      assert(conn:wait_until_connected(5000) == "success")
      local sent = string.rep("0123456789", 100) .. "\n"
      conn:write(sent)
      while conn:available() < #sent do net.wait(10) end
      local got, gi = {}, 0
      for i = 1, 2000 do got[i] = false end   -- stores below never allocate
      local scenarios = {
        resolve = function() assert(net.resolve_address("127.0.0.1"):get_ip()) end,
        open = function()
          local c = net.open_tcp("127.0.0.1", port, { nodelay = true, ssl = { verify = false, alpn = { "h2" } } })
          c:write("x"); tostring(c); c:get_status(); c:close()
        end,
        server = function()
          local c = net.open_tcp("127.0.0.1", server:get_port())
          net.wait(5)
          local a = server:accept()
          if a then tostring(a); a:close() end
          c:close()
        end,
        read = function()
          local s = conn:read(7)
          gi = gi + 1
          got[gi] = s
        end,
        udp = function()
          local u = net.open_udp("127.0.0.1", 0)
          u:send("127.0.0.1", u:get_port(), "datagram")
          net.wait(5)
          local d = u:receive()
          if d then d:get_data(); d:get_address(); tostring(d) end
          u:get_stats(); tostring(u); u:close()
        end,
        stats = function() net.get_stats(); net.get_local_addresses() end,
      }
      local names = { "resolve", "open", "server", "read", "udp", "stats" }
      local failures, sweeps = 0, 0
      for _, name in ipairs(names) do
        for n = 0, 400 do
          luahost_fail_allocs(n)
          local ok, err = pcall(scenarios[name])
          local failed = luahost_fail_allocs(nil)
          sweeps = sweeps + 1
          if not ok then
            failures = failures + 1
            assert(tostring(err):find("not enough memory", 1, true), name .. " at " .. n .. ": " .. tostring(err))
          elseif failed == 0 then
            break   -- got through with every allocation granted: swept
          end
        end
      end
      -- the bytes read survived every failed read: nothing lost, nothing twice
      local rest = conn:read(10000)
      assert(table.concat(got, "", 1, gi) .. rest == sent, "bytes were lost or repeated")
      conn:close()
      server:close()
      collectgarbage(); collectgarbage()
      local deadline = net.clock() + 10
      repeat
        collectgarbage()
        local s = net.get_stats()
        if s.connections == 0 and s.udp == 0 and s.servers == 0 then break end
        net.wait(50)
      until net.clock() > deadline
      local s = net.get_stats()
      print(string.format("sweeps %%d, memory errors %%d, left: %%d connections, %%d udp, %%d servers",
        sweeps, failures, s.connections, s.udp, s.servers))
    ]], echo.port))
    assert.is_true(ok, out)
    local sweeps, failures, conns, udp, servers = out:match("sweeps (%d+), memory errors (%d+), left: (%d+) connections, (%d+) udp, (%d+) servers")
    assert.is_truthy(sweeps, out)
    print("# " .. out:gsub("\n$", ""))
    assert.is_true(tonumber(failures) > 30, out)
    assert.equal("0", conns, out)
    assert.equal("0", udp, out)
    assert.equal("0", servers, out)
  end)

  it("keeps every HTTP body byte that a read failing for memory did not return", function()
    local ok, out = luahost_child([[
      local net = require "net"
      local server = assert(net.create_server("127.0.0.1", 0))
      local req = assert(net.http_request{ url = "http://127.0.0.1:" .. server:get_port() .. "/x" })
      local peer
      repeat net.wait(5); peer = server:accept() until peer
      repeat net.wait(5) until (peer:available() or 0) > 0 and peer:read_until("\r\n\r\n") ~= ""
      local body = {}
      for i = 1, 6000 do body[i] = string.format("%09d\n", i) end
      body = table.concat(body)   -- 60,000 bytes: several chunks of the body's buffer
      assert(peer:write("HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body))
      assert(req:wait(10000) == "success")
      local got, failures, sizes, turn = {}, 0, { 7, 20000, 3000, 16384 + 100 }, 0
      while true do
        turn = turn + 1
        local size = sizes[turn % #sizes + 1]
        for n = 0, 50 do
          luahost_fail_allocs(n)
          local done, s = pcall(req.read, req, size)
          luahost_fail_allocs(nil)
          if done then
            if s == nil then goto finished end
            got[#got + 1] = s
            break
          end
          assert(tostring(s):find("not enough memory", 1, true), tostring(s))
          failures = failures + 1
        end
        assert(turn < 10000, "a read never got through")
      end
      ::finished::
      assert(table.concat(got) == body, "body bytes were lost or repeated")
      print("memory errors " .. failures)
      peer:close(); req:close(); server:close()
    ]])
    assert.is_true(ok, out)
    local failures = out:match("memory errors (%d+)")
    assert.is_truthy(failures, out)
    assert.is_true(tonumber(failures) >= 4, out)
  end)

  it("turns the engine's failed allocations into limit failures, never lost bytes", function()
    local c, msg, code
    net._fail_allocs(0, 1)
    c, msg, code = net.open_tcp("127.0.0.1", 9)
    net._fail_allocs(0, 0)
    assert.is_nil(c)
    assert.equal("limit", code, msg)
    net._fail_allocs(0, 1)
    local u
    u, msg, code = net.open_udp("127.0.0.1", 0)
    net._fail_allocs(0, 0)
    assert.is_nil(u)
    assert.equal("limit", code, msg)
    net._fail_allocs(0, 1)
    local a
    a, msg, code = net.resolve_address("sluice-v4.test")
    net._fail_allocs(0, 0)
    assert.is_nil(a)
    assert.equal("limit", code, msg)
    -- every allocation of a Unix server, each failing in turn: a message and "limit"
    local path = h.temp_dir() .. "/s.sock"
    for n = 0, 20 do
      net._fail_allocs(n, 1)
      local srv
      srv, msg, code = net.create_server{ unix = path }
      net._fail_allocs(0, 0)
      if srv then srv:close() else
        assert.equal("limit", code, tostring(msg))
        assert.is_string(msg)
      end
    end
    -- failures in the middle of transfers: intact, or a failure that says "limit"
    local echo = h.start_peer("echo")
    local outcomes = {}
    for _, after in ipairs { 2, 5, 20, 60 } do
      local conn = assert(net.open_tcp(echo.host, echo.port))
      assert.equal("success", conn:wait_until_connected(5000))
      net._fail_allocs(after, 200)
      local ok, err = pcall(h.echo_transfer, conn, 512 * 1024, { timeout_ms = 20000 })
      net._fail_allocs(0, 0)
      if ok then
        outcomes[#outcomes + 1] = "intact"
      else
        local _, m, k = conn:get_status()   -- failed with "limit", or a write said "limit"
        assert.is_true(k == "limit" or tostring(err):find("(limit)", 1, true) ~= nil,
          tostring(err) .. " / " .. tostring(m))
        outcomes[#outcomes + 1] = "limit"
      end
      conn:close()
    end
    print("# transfers with failing allocations: " .. table.concat(outcomes, ", "))
  end)

  it("fails with limit when the process is out of file descriptors", function()
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      local server = assert(net.create_server("127.0.0.1", 0))
      local conns, codes = {}, {}
      for i = 1, 100 do
        local c = net.open_tcp("127.0.0.1", server:get_port())
        conns[#conns + 1] = c
        local s, m, code = c:wait_until_connected(2000)
        if code then codes[code] = (codes[code] or 0) + 1 end
        if code == "limit" then break end
      end
      local u, umsg, ucode = net.open_udp("127.0.0.1", 0)
      print(codes.limit or 0, ucode, umsg)
      -- give the descriptors back before exit: a sanitizer's exit-time
      -- check needs a few of its own
      server:close()
      for _, c in ipairs(conns) do c:close() end
      local deadline = net.clock() + 10
      while net.get_stats().connections > 0 and net.clock() < deadline do net.wait(50) end
    ]], { ULIMIT_NOFILE = 48 })
    local limited, ucode, umsg = out:match("^(%d+)\t(%S+)\t([^\n]*)")
    assert.is_true(ok, out .. err)
    assert.is_true(tonumber(limited) >= 1, out)
    assert.equal("limit", ucode, out)
    assert.matches("Too many open files", umsg)
  end)

  -- Runs source in a Lua child with fault_io preloaded (faults: its SLUICE_FAULT);
  -- the child prints "intact" when all went well.
  local function preloaded_child(faults, source, ...)
    if h.mode == "asan" or h.mode == "tsan" then
      pending("LD_PRELOAD goes before a sanitizer's runtime: release and poll only")
      return
    end
    local ok, out, err = h.run_lua_child(source, { LD_PRELOAD = h.build .. "/libfault_io.so", SLUICE_FAULT = faults },
                                         ...)
    assert.is_true(ok, out .. err)
    assert.matches("intact", out)
  end

  it("moves every byte when the kernel takes one per send and gives one per receive", function()
    preloaded_child("send1,recv1,eagain7", [[
      local h = require "helpers"
      local net = require "net"
      local certs = h.tls_certs()
      local echo = h.start_peer("echo")
      local conn = assert(net.open_tcp(echo.host, echo.port))
      h.echo_transfer(conn, 96 * 1024, { timeout_ms = 60000 })
      conn:close()
      local tls = h.start_tls_server("echo")
      conn = assert(net.open_tcp("sluice-v4.test", tls.port, { ca_file = certs.ca }))
      assert(h.wait_status(conn, 30000) == "success")
      h.echo_transfer(conn, 32 * 1024, { timeout_ms = 60000 })
      conn:close()
      h.stop_all()
      print("intact")
    ]])
  end)

  it("reads what a peer sent before the reset that failed a send, plain and over TLS", function()
    local certs = h.tls_certs()
    local dir = h.temp_dir()
    -- out here: the preload would fail their sends too
    local plain = h.start_http_server(dir)
    local tls = h.start_http_server(dir, { cert = certs:pem("good"), key = certs:key("good") })
    for _, url in ipairs({ "http://127.0.0.1:" .. plain.port, "https://sluice-v4.test:" .. tls.port }) do
      preloaded_child("sendreset", [[
        local net = require "net"
        local url, ca = ...
        -- the 413 comes after a second, a MiB or more into the body: the send that fails holds
        -- a whole socket buffer (over TLS, a record part-sent)
        local req = assert(net.http_request{ url = url .. "/refuse-unread?slow", method = "POST",
                                             body = string.rep("x", 32 << 20), ssl = { ca_file = ca } })
        local st, msg = req:wait(-1)
        assert(st == "success", msg)
        assert(req:get_response() == 413 and req:read() == "too big\n")
        print("intact")
      ]], url, certs.ca)
    end
    plain:stop()
    tls:stop()
  end)

  -- A file of `size` bytes (a multiple of 16) served by the Python HTTP server from a
  -- directory of its own: the directory, the server.
  local function served(name, size)
    local dir = h.temp_dir()
    h.write_file(dir .. "/" .. name, string.rep("0123456789abcdef", size // 16))
    return dir, h.start_http_server(dir)
  end

  it("shows a download's failure only once its .part holds every byte that arrived", function()
    local size = 3 << 20
    local dir, server = served("big.bin", size)
    -- /short/ promises more than it sends: the download fails while a lagging disk has the
    -- last of it still to write
    preloaded_child("slowfile", [[
      local h = require "helpers"
      local net = require "net"
      local url, out, size = ...
      local req = assert(net.http_request{ url = url, output = out, resume = true })
      local st, msg = req:wait(60000)
      assert(st == "failure", tostring(st) .. " " .. tostring(msg))
      local kept = #h.read_file(out .. ".part")
      assert(kept == tonumber(size), kept .. " of " .. size .. " bytes in the .part")
      net.wait(300)
      assert(#h.read_file(out .. ".part") == kept, "the .part grew after the failure")
      print("intact")
    ]], "http://127.0.0.1:" .. server.port .. "/short/big.bin", dir .. "/got.bin", tostring(size))
    server:stop()
  end)

  it("puts a download in place whole while a second one to the same output waits for it", function()
    local size = 300000
    local dir, server = served("data.bin", size)
    -- the first one's rename takes 600 ms; the second starts as the first's body is whole
    preloaded_child("slowrename", [[
      local h = require "helpers"
      local net = require "net"
      local url, out, size = ...
      size = tonumber(size)
      local a = assert(net.http_request{ url = url, output = out })
      assert(h.wait_for(function()
        local got, total = a:get_progress()
        return (total and got >= total) or a:get_status() ~= "waiting"
      end, 30000))
      local b = assert(net.http_request{ url = url, output = out })
      local sa, ma = a:wait(30000)
      local sb, mb, cb = b:wait(30000)
      assert(sa == "success", "the first: " .. tostring(sa) .. " " .. tostring(ma))
      assert(sb == "success" or cb == "limit", "the second: " .. tostring(sb) .. " " .. tostring(mb))
      local got = h.read_file(out)
      assert(got and #got == size, "at output: " .. (got and #got or "nothing") .. " bytes of " .. size)
      print("intact")
    ]], "http://127.0.0.1:" .. server.port .. "/data.bin", dir .. "/out.bin", tostring(size))
    server:stop()
  end)

  it("fails a download at once when no helper thread can start to write its file", function()
    local dir = h.temp_dir()
    -- the engine's first two threads start; the file lane's helper cannot
    preloaded_child("nothread2", [[
      local net = require "net"
      local t0 = net.clock()
      local req = assert(net.http_request{ url = "http://127.0.0.1:9/", output = (...), timeout = 60000 })
      local st, msg, code = req:wait(10000)
      assert(st == "failure" and code == "limit" and msg:find("cannot start a helper thread", 1, true),
             tostring(st) .. " " .. tostring(msg) .. " " .. tostring(code))
      assert(net.clock() - t0 < 1, "the failure took " .. (net.clock() - t0) .. " s")
      req:close()
      print("intact")
    ]], dir .. "/never.bin")
  end)

  it("calls a connection that met itself (nothing listening, its own port chosen) refused", function()
    preloaded_child("selfconnect", [[
      local h = require "helpers"
      local net = require "net"
      local port = h.closed_port()
      for _, host in ipairs({ "127.0.0.1", h.ipv6_loopback() and "::1" or nil }) do
        local conn = assert(net.open_tcp(host, port))
        local status, msg, code = conn:wait_until_connected(10000)
        assert(status == "failure" and code == "refused", tostring(status) .. " " .. tostring(msg))
        assert(msg:find("Connection refused", 1, true), msg)
        conn:close()
      end
      print("intact")
    ]])
  end)

  it("keeps waking the I/O thread after a wake-up signal failed", function()
    preloaded_child("wakefail1", [[
      local h = require "helpers"
      local net = require "net"
      local echo = h.start_peer("echo")
      local a = assert(net.open_tcp(echo.host, echo.port))   -- its wake-up fails
      local b = assert(net.open_tcp(echo.host, echo.port))   -- this one must get through
      assert(a:wait_until_connected(5000) == "success", "a never connected")
      assert(b:wait_until_connected(5000) == "success", "b never connected")
      for i = 1, 5 do
        net.wait(50)   -- the I/O thread goes back to sleep between rounds
        h.echo_transfer(i % 2 == 1 and a or b, 100, { timeout_ms = 5000 })
      end
      a:close()
      b:close()
      h.stop_all()
      print("intact")
    ]])
  end)
end)
