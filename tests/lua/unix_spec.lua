-- unix_spec: Unix domain sockets: net.open_unix and net.create_server{unix = path}
-- behave like TCP (read/write/EOF/close); 64 MiB through a server and a client both made
-- with this API; stale socket files are replaced, live ones and regular files are not;
-- server:close() removes the socket file it made.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

-- A socket file left behind by a process that bound it and exited without unlinking.
local function python_stale_socket(path)
  local ok = os.execute(string.format(
    "%s -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' %s",
    h.shell_quote(h.python), h.shell_quote(path)))
  assert(ok, "python could not bind " .. path)
  assert(h.path_exists(path))
end

local function unix_pair(srv, path, opts)
  local client = assert(net.open_unix(path, opts))
  local accepted = assert(h.accept_one(srv))
  assert.are.equal("success", h.wait_status(client))
  assert.are.equal("success", h.wait_status(accepted))
  return client, accepted
end

describe("unix sockets", function()
  local dir

  before_each(function()
    dir = h.temp_dir()
  end)

  after_each(function()
    h.stop_all()
    os.execute("rm -rf " .. h.shell_quote(dir))
  end)

  it("exchanges 64 MiB between a server and a client made with this API", function()
    local path = dir .. "/bulk.sock"
    local srv = assert(net.create_server{ unix = path })
    assert.is_true(h.path_exists(path))
    local svc = h.echo_service(srv, { read_size = 256 * h.KiB })
    local total = h.scaled(64 * h.MiB)
    local conn = assert(net.open_unix(path))
    local pool = h.random_bytes(2 * h.MiB)
    -- the client streams random slices of the pool and checks every byte that returns
    local check = h.echo_checker()
    local sent = 0
    local t0 = net.clock()
    h.run_frames(function()
      local progressed = svc:step()
      if sent < total then
        local len = math.min(math.random(1, 256 * h.KiB), total - sent)
        local off = math.random(0, #pool - len)
        local piece = pool:sub(off + 1, off + len)
        local n = assert(conn:write(piece))
        if n > 0 then
          check:push(n == len and piece or piece:sub(1, n))
          sent, progressed = sent + n, true
        end
      end
      local data, msg, code = conn:read(math.random(1, 256 * h.KiB))
      assert(data, tostring(msg) .. " " .. tostring(code))
      if #data > 0 then
        assert(check:feed(data))
        progressed = true
      end
      return check.received == total, progressed
    end, 300000, function() return string.format("sent %d, received %d", sent, check.received) end)
    local secs = net.clock() - t0
    assert.are.equal(0, check.pending)
    conn:close()
    h.run_frames(function()
      local p = svc:step()
      return svc.finished == 1, p
    end, 20000)
    assert.are.same({}, svc.errors)
    srv:close()
    print(string.format("\n# unix: %d MiB echoed in %.2f s", total // h.MiB, secs))
  end)

  it("has TCP's read/write/EOF/close semantics", function()
    local path = dir .. "/sem.sock"
    local srv = assert(net.create_server{ unix = path })
    local client, accepted = unix_pair(srv, path)
    assert(h.write_all(client, "hello"))
    assert.are.equal("hello", h.read_n(accepted, 5, 10000))
    assert.are.equal("", accepted:read(10))   -- nothing more yet
    assert(h.write_all(accepted, "world"))
    assert.are.equal("world", h.read_n(client, 5, 10000))
    -- the server side closes: the client reads what was sent, then nil, then "closed"
    assert(h.write_all(accepted, "last"))
    accepted:close()
    assert.are.equal("last", h.read_n(client, 4, 10000))
    assert(h.wait_for(function() return client:read(10) == nil end, 10000))
    local d, msg = client:read(10)
    assert.is_nil(d)
    assert.is_nil(msg)
    assert.are.same({ "failure", "closed", "closed" }, { client:get_status() })
    client:close()
    client:close()
    local n, _, code = client:write("x")
    assert.is_nil(n)
    assert.are.equal("closed", code)
    srv:close()
  end)

  it("reports 'unix' endpoints: the path as ip, no port", function()
    local path = dir .. "/ep.sock"
    local srv = assert(net.create_server{ unix = path })
    local client, accepted = unix_pair(srv, path)
    local ip, port, fam = client:get_peer()
    assert.are.same({ path, "unix" }, { ip, fam })
    assert.is_nil(port)
    ip, port, fam = accepted:get_local_address()
    assert.are.same({ path, "unix" }, { ip, fam })
    assert.is_nil(port)
    assert.are.equal("unix", select(3, client:get_local_address()))
    assert.are.equal("unix", select(3, accepted:get_peer()))
    assert.is_nil(client:get_address())   -- a path is no address another call could take
    assert.is_nil(accepted:get_address())
    assert.truthy(tostring(client):find(path, 1, true), tostring(client))
    assert.truthy(tostring(srv):find(path, 1, true), tostring(srv))
    client:close()
    accepted:close()
    srv:close()
  end)

  it("supports shutdown, read_until and get_stats like TCP", function()
    local path = dir .. "/helpers.sock"
    local srv = assert(net.create_server{ unix = path })
    local client, accepted = unix_pair(srv, path)
    assert(h.write_all(client, "line one\nline two"))
    assert.is_true(client:shutdown("send"))
    local lines = {}
    assert(h.wait_for(function()
      local r = accepted:read_until("\n")
      if r == nil then return true end
      if r ~= "" then lines[#lines + 1] = r end
    end, 10000, 5))
    assert.are.same({ "line one\n", "line two" }, lines)
    assert(h.write_all(accepted, "ack"))
    assert.are.equal("ack", h.read_n(client, 3, 10000))
    local r, s = client:get_stats()
    assert.are.same({ 3, 17 }, { r, s })
    client:close()
    accepted:close()
    srv:close()
  end)

  it("takes connection options", function()
    local path = dir .. "/opts.sock"
    local srv = assert(net.create_server{ unix = path, backlog = 4, buffer_size = 64 * h.KiB })
    local client, accepted = unix_pair(srv, path, { buffer_size = 64 * h.KiB, idle_timeout = 60000 })
    assert(h.write_all(client, "x"))
    assert.are.equal("x", h.read_n(accepted, 1, 10000))
    h.assert_raises("bad argument #2 to 'open_unix'", function() return net.open_unix(path, { bogus = 1 }) end)
    -- its options are connection options only: {} is plain, TLS goes in ssl = {...}
    h.assert_raises("TLS options go in ssl = {...}", function() return net.open_unix(path, { verify = false }) end)
    h.assert_raises("table of connection options expected", function() return net.open_unix(path, true) end)
    local plain, peer = unix_pair(srv, path, {})
    assert(h.write_all(plain, "y"))
    assert.are.equal("y", h.read_n(peer, 1, 10000))
    assert.is_nil(plain:get_tls_info())
    plain:close()
    peer:close()
    h.assert_raises("bad argument #1 to 'create_server'", function()
      return net.create_server{ unix = path .. "2", bogus = 1 }
    end)
    client:close()
    accepted:close()
    srv:close()
  end)

  it("carries TLS between a server and a client made with this API", function()
    local certs = h.tls_certs()
    local path = dir .. "/tls.sock"
    local srv = assert(net.create_server{ unix = path,
      ssl = { cert_file = certs:pem("good"), key_file = certs:key("good") } })
    local svc = h.echo_service(srv)
    local conn = assert(net.open_unix(path, { ssl = { ca_file = certs.ca, server_name = "sluice-v4.test" } }))
    local cl = h.stream_client(conn, h.random_bytes(512 * h.KiB), 0, 256 * h.KiB)
    h.run_frames(function()
      local p = svc:step()
      return cl.done, cl:step() or p
    end, 30000, function() return "errors: " .. table.concat(svc.errors, "; ") end)
    local info = conn:get_tls_info()
    assert.is_table(info)
    conn:close()
    h.run_frames(function()
      local p = svc:step()
      return svc.finished == 1, p
    end, 20000)
    assert.are.same({}, svc.errors)
    srv:close()
  end)

  it("fails to connect to a missing path or one nobody listens on", function()
    local conn = assert(net.open_unix(dir .. "/missing.sock"))
    local status, msg, code = h.wait_status(conn)
    assert.are.equal("failure", status)
    assert.are.equal("refused", code, msg)   -- nobody listens there, as at a closed port
    assert.matches("^connect unix:.*/missing%.sock: ", msg)
    conn:close()
    local stale = dir .. "/nobody.sock"
    python_stale_socket(stale)
    conn = assert(net.open_unix(stale))
    status, msg, code = h.wait_status(conn)
    assert.are.equal("failure", status)
    assert.are.equal("refused", code, msg)
    conn:close()
  end)

  it("keeps a client waiting while the server's backlog is full, as TCP does", function()
    local path = dir .. "/busy.sock"
    local srv = assert(net.create_server{ unix = path, backlog = 1 })
    -- more clients than the kernel's backlog and the server's queue hold
    local clients = {}
    for i = 1, 150 do clients[i] = assert(net.open_unix(path)) end
    h.sleep(300)
    for i, c in ipairs(clients) do
      local st, msg, code = c:get_status()
      assert.are_not.equal("failure", st, "client " .. i .. ": " .. tostring(msg) .. " " .. tostring(code))
    end
    -- the owner takes them: every one gets in
    local taken, deadline = {}, net.clock() + 20
    while #taken < #clients do
      local a = srv:accept()
      if a then taken[#taken + 1] = a else net.wait(5) end
      assert(net.clock() < deadline, "only " .. #taken .. " clients got in")
    end
    for i, c in ipairs(clients) do assert.are.equal("success", h.wait_status(c), "client " .. i) end
    for i, c in ipairs(clients) do c:close(); taken[i]:close() end
    srv:close()
  end)

  it("fails a client that waits on a full backlog past its connect_timeout", function()
    local path = dir .. "/full.sock"
    h.start_server("full backlog", string.format("%s -c %s %s", h.shell_quote(h.python), h.shell_quote(
      "import socket, sys, time; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(0); "
      .. "print(1, flush=True); time.sleep(600)"), h.shell_quote(path)), function(out)
      return out:match("^1\n") and 1
    end)
    local fill = {}
    for i = 1, 4 do fill[i] = assert(net.open_unix(path)) end   -- never accepted
    local late = assert(net.open_unix(path, { connect_timeout = 300 }))
    local st, msg, code = h.wait_status(late, 10000)
    assert.are.same({ "failure", "timeout" }, { st, code })
    assert.matches("^connect unix:.*full%.sock: timed out after 300 ms %(connect_timeout%)$", msg)
    for _, c in ipairs(fill) do c:close() end
    late:close()
  end)

  it("replaces a stale socket file left by a process that exited", function()
    local path = dir .. "/stale.sock"
    python_stale_socket(path)
    local srv, msg = net.create_server{ unix = path }
    assert(srv, msg)
    local client, accepted = unix_pair(srv, path)
    assert(h.write_all(client, "fresh"))
    assert.are.equal("fresh", h.read_n(accepted, 5, 10000))
    client:close()
    accepted:close()
    srv:close()
  end)

  it("replaces the socket file of a server process killed with SIGKILL", function()
    local path = dir .. "/killed.sock"
    local script = dir .. "/server.lua"
    local f = assert(io.open(script, "wb"))
    f:write([[
      local net = require "net"
      local srv = assert(net.create_server{ unix = arg[1] })
      print("1")
      io.stdout:flush()
      while true do
        local c = srv:accept()
        if c then c:close() end
        net.wait(100)
      end
    ]])
    f:close()
    local child = h.start_server("unix server child",
      string.format("%s %s %s", h.shell_quote(h.lua), h.shell_quote(script), h.shell_quote(path)),
      function(out) return out:match("^1\n") and 1 end)
    assert.is_true(h.path_exists(path))
    child:kill()
    assert.is_true(h.path_exists(path), "the killed server's socket file should still be there")
    -- a killed multi-threaded process can look gone a moment before its last thread
    -- closed its files: wait until the path refuses (a listener that no longer
    -- accepts but still exists fails connects with EAGAIN, not ECONNREFUSED)
    assert(h.wait_for(function()
      local probe = assert(net.open_unix(path))
      local status = h.wait_status(probe, 5000)
      local _, _, code = probe:get_status()
      probe:close()
      return status == "failure" and code == "refused"
    end, 10000, 20), "the killed server still answers")
    local srv, msg = net.create_server{ unix = path }
    assert(srv, msg)
    local client, accepted = unix_pair(srv, path)
    assert(h.write_all(accepted, "took over"))
    assert.are.equal("took over", h.read_n(client, 9, 10000))
    client:close()
    accepted:close()
    srv:close()
  end)

  it("does not take over the path of a live server", function()
    local path = dir .. "/live.sock"
    local first = assert(net.create_server{ unix = path })
    local second, msg = net.create_server{ unix = path }
    assert.is_nil(second)
    assert.truthy(tostring(msg):find("Address already in use", 1, true), msg)
    -- finding out that it is live hands it no connection (on Windows, which has no
    -- datagram Unix sockets to probe with, it does: one that ends at once, skipped below)
    if h.mode ~= "windows" then
      h.sleep(200)
      assert.is_nil(first:accept(), "the probe left the live server a connection")
    end
    -- the first server still owns the path and serves
    assert.is_true(h.path_exists(path))
    local client = assert(net.open_unix(path))
    assert(h.write_all(client, "first"))
    local accepted, got = {}, nil
    h.run_frames(function()
      local c = first:accept()
      if c then accepted[#accepted + 1] = c end
      for _, a in ipairs(accepted) do
        local d = a:read(100)
        if d and d ~= "" then got = d end
      end
      return got ~= nil, c ~= nil
    end, 10000)
    assert.are.equal("first", got)
    assert.is_true(#accepted <= (h.mode == "windows" and 2 or 1), #accepted .. " connections accepted")
    client:close()
    for _, a in ipairs(accepted) do a:close() end
    first:close()
  end)

  it("does not replace a regular file", function()
    local path = dir .. "/regular.txt"
    local f = assert(io.open(path, "wb"))
    f:write("precious")
    f:close()
    local srv, msg = net.create_server{ unix = path }
    assert.is_nil(srv)
    assert.is_string(msg)
    assert.are.equal("precious", h.read_file(path))
  end)

  it("removes the socket file it made on close, and only then", function()
    local path = dir .. "/gone.sock"
    local srv = assert(net.create_server{ unix = path })
    local client, accepted = unix_pair(srv, path)
    assert.is_true(h.path_exists(path))
    srv:close()
    assert(h.wait_for(function() return not h.path_exists(path) end, 5000), "socket file still there")
    -- accepted connections live on
    assert(h.write_all(client, "after"))
    assert.are.equal("after", h.read_n(accepted, 5, 10000))
    srv:close()   -- idempotent
    local c, _, code = srv:accept()
    assert.is_nil(c)
    assert.are.equal("closed", code)
    client:close()
    accepted:close()
    -- a new server can take the path at once
    local again = assert(net.create_server{ unix = path })
    again:close()
  end)

  it("does not remove a socket file another server made after it", function()
    local path = dir .. "/moved.sock"
    local old = assert(net.create_server{ unix = path })
    os.remove(path)   -- someone removed it and a new server took the path
    local new = assert(net.create_server{ unix = path })
    old:close()
    h.sleep(100)
    assert.is_true(h.path_exists(path), "closing the old server removed the new server's socket")
    local client, accepted = unix_pair(new, path)
    client:close()
    accepted:close()
    new:close()
  end)

  it("refuses the clients queued at a TLS server whose certificate cannot load", function()
    local path = dir .. "/badtls.sock"
    local srv = assert(net.create_server{ unix = path, ssl = { cert_file = dir .. "/none.pem", key_file = dir .. "/none.key" } })
    local client = assert(net.open_unix(path))
    local st, msg = h.wait_failure(srv, 10000)
    assert.are.equal("failure", st, msg)
    assert.truthy(msg:find("cert_file", 1, true), msg)
    -- the listener is gone: the queued client is refused, not left waiting for the owner's close
    assert.are.equal("failure", (h.wait_failure(client, 10000)))
    client:close()
    srv:close()
  end)

  it("rejects bad paths", function()
    h.assert_raises("bad argument #1 to 'open_unix'", function() return net.open_unix() end)
    h.assert_raises("bad argument #1 to 'open_unix'", function() return net.open_unix({}) end)
    h.assert_raises("bad argument #1 to 'open_unix' (string contains a NUL byte)", function()
      return net.open_unix(dir .. "/a\0b")
    end)
    assert.are.same({ nil, "a Unix socket path must be 1..107 bytes", "invalid" }, { net.open_unix("") })
    h.assert_raises("bad argument", function() return net.create_server{ unix = 5 } end)
    -- longer than sun_path: raises or nil, message, never truncates silently
    local long = dir .. "/" .. string.rep("x", 200) .. ".sock"
    local ok, conn, msg = pcall(net.open_unix, long)
    if ok then
      if conn then
        local status = h.wait_status(conn)
        assert.are.equal("failure", status)
        conn:close()
      else
        assert.is_string(msg)
      end
    end
    local ok2, srv, msg2 = pcall(net.create_server, { unix = long })
    if ok2 then
      assert.is_nil(srv)
      assert.is_string(msg2)
    end
    assert.is_false(h.path_exists(long:sub(1, 108)))
  end)
end)
