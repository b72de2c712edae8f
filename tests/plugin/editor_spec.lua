-- The editor-side plugin (plugin/sluice.lua) in a stand-in of Lite XL's core
-- (tests/plugin/fake_core.lua), installed the way the README says:
--
--   USERDIR/plugins/sluice.lua  USERDIR/libraries/sluice/net.so  USERDIR/libraries/sluice/http.lua
--
-- (symbolic links into the source tree and build/<config>/plugin/). Run by the
-- "plugin" stage of scripts/test.sh under build/<config>/xl_host, which loads
-- native modules as Lite XL does (luaopen_lite_xl_<name>(L, XL)); under another Lua
-- host the plugin falls back to an ordinary `net` and the checks of the loader are
-- skipped.
local net = require "net"
local h = require "helpers"

local ROOT = os.getenv("SLUICE_ROOT") or "."
local BUILD = h.build

local function sh(cmd)
  assert(os.execute(cmd), "command failed: " .. cmd)
end

local function first_line_port(out)
  local line = out:match("^(%d+)\n")
  return line and math.tointeger(tonumber(line))
end

-- Printable random text of about n bytes, in lines (no CR: the document keeps it as is).
local function random_text(n)
  local parts, len = {}, 0
  while len < n do
    local line = h.random_bytes(math.random(0, 120)):gsub(".", function(c)
      return string.char(32 + c:byte() % 95)
    end) .. "\n"
    parts[#parts + 1] = line
    len = len + #line
  end
  return table.concat(parts)
end

describe("editor plugin", function()
  local userdir, datadir, server, base, fake, core, command, sluice
  local text
  local saved_path, saved_cpath

  setup(function()
    local p = assert(io.popen("mktemp -d 2>/dev/null || mktemp -d -t sluice"))
    userdir = p:read("l")
    p:close()
    sh(string.format("mkdir -p %s/plugins %s/libraries/sluice %s/www",
      h.shell_quote(userdir), h.shell_quote(userdir), h.shell_quote(userdir)))
    local function link(target, name)
      sh(string.format("ln -s %s %s", h.shell_quote(target), h.shell_quote(userdir .. "/" .. name)))
    end
    link(ROOT .. "/plugin/sluice.lua", "plugins/sluice.lua")
    for _, name in ipairs { "runtime", "socket", "request", "tcpd", "packet", "http" } do
      link(ROOT .. "/data/sluice/" .. name .. ".lua", "libraries/sluice/" .. name .. ".lua")
    end
    local so = BUILD .. "/plugin/net.so"
    if not io.open(so) then so = BUILD .. "/net.so" end
    link(so, "libraries/sluice/net.so")

    datadir = userdir .. "/www"
    text = random_text(h.scaled(2 * h.MiB, 512 * h.KiB))
    local f = assert(io.open(datadir .. "/page.txt", "wb"))
    f:write(text)
    f:close()
    f = assert(io.open(datadir .. "/crlf.txt", "wb"))
    f:write("line one\r\nline two\r\n")
    f:close()
    server = h.start_server("http_test_server.py", string.format("%s %s %s",
      h.shell_quote(h.python), h.shell_quote(h.tools .. "http_test_server.py"),
      h.shell_quote(datadir)), first_line_port)
    base = "http://127.0.0.1:" .. server.port

    -- the editor's paths: USERDIR first (data/core/start.lua)
    saved_path, saved_cpath = package.path, package.cpath
    package.path = userdir .. "/?.lua;" .. userdir .. "/?/init.lua;" .. package.path
    package.cpath = userdir .. "/?.so;" .. userdir .. "/?/init.so;" .. package.cpath

    fake = dofile(ROOT .. "/tests/plugin/fake_core.lua")
    core = fake.install {
      clock = net.clock,
      sleep = function(s) net.wait(math.max(1, math.floor(s * 1000))) end,
    }
    command = fake.command
    fake.config.plugins.sluice = { fetch_poll_bytes = 64 * 1024 }
    sluice = require "plugins.sluice"
  end)

  teardown(function()
    h.stop_all()
    if fake then fake.uninstall() end
    package.loaded["plugins.sluice"] = nil
    if saved_path then package.path, package.cpath = saved_path, saved_cpath end
    if userdir then os.execute("rm -rf " .. h.shell_quote(userdir)) end
  end)

  after_each(function()
    assert.same({}, core.errors)
  end)

  it("loads net.so from USERDIR/libraries/sluice through the editor's entry point", function()
    assert.is_table(sluice.net)
    assert.is_function(sluice.net.open_tcp)
    assert.equal(sluice, core.sluice)
    assert.equal(package.loaded["libraries.sluice.http"], sluice.http)
    assert.is_function(sluice.http.get)   -- Pragtical's core.http interface
    if not package.native_plugins then
      pending("not under an editor-like host (build/<config>/xl_host): loader not checked")
      return
    end
    local entry = package.native_plugins["libraries.sluice.net"]
    assert.is_table(entry, "libraries.sluice.net was not loaded as a native plugin")
    assert.equal(userdir .. "/libraries/sluice/net.so", entry.path)
    local expected = (xl_host and xl_host.flavor == "pragtical") and "luaopen_pragtical_net" or "luaopen_lite_xl_net"
    assert.equal(expected, entry.entry)
    assert.equal(package.loaded["libraries.sluice.net"], sluice.net)
  end)

  it("registers sluice:fetch-url, which fetches into a new document with progress", function()
    assert.is_table(command.map["sluice:fetch-url"])
    command.perform("sluice:fetch-url")
    assert.equal("Fetch URL", core.command_view.label)
    local url = base .. "/page.txt"
    local threads_before = 0
    for _ in pairs(core.threads) do threads_before = threads_before + 1 end
    assert.is_true(core.command_view:submit(url))
    local threads_after = 0
    for _ in pairs(core.threads) do threads_after = threads_after + 1 end
    assert.equal(threads_before + 1, threads_after)
    assert.is_true(fake.run_until(function() return sluice.last_fetch ~= nil or #core.errors > 0 end, 60),
      "the fetch did not finish")
    assert.same({}, core.errors)

    local doc = sluice.last_fetch.doc
    assert.equal(doc, core.root_view.opened[#core.root_view.opened])
    assert.is_nil(doc.filename)
    assert.equal(#text, #doc:get_text())
    assert.is_true(doc:get_text() == text, "document text differs from the file")

    local progress, final = 0, nil
    for _, m in ipairs(core.status_view.messages) do
      local pct = m.text:match("^Fetching .* of .* %((%d+)%%%)$")
      if pct and tonumber(pct) < 100 then progress = progress + 1 end
      final = m.text
    end
    assert.is_true(progress > 0, "no progress message in the status bar")
    local size = #text >= 1048576 and string.format("%.1f MiB", #text / 1048576)
      or string.format("%.1f KiB", #text / 1024)
    assert.equal(string.format("Fetched %s: HTTP 200, %s", url, size), final)
  end)

  it("keeps CRLF documents as CRLF", function()
    sluice.last_fetch = nil
    command.perform("sluice:fetch-url", base .. "/crlf.txt")
    assert.is_true(fake.run_until(function() return sluice.last_fetch ~= nil or #core.errors > 0 end, 30))
    local doc = sluice.last_fetch.doc
    assert.equal("line one\nline two\n", doc:get_text())
    assert.is_true(doc.crlf)
  end)

  it("refuses a malformed URL in the prompt, and reports a failed fetch", function()
    command.perform("sluice:fetch-url")
    assert.is_false(core.command_view:submit("not a url"))
    assert.equal(1, #core.errors)
    assert.matches("not an http:// or https:// URL", core.errors[1], 1, true)
    table.remove(core.errors)
    core.command_view.state = nil

    local key = sluice.fetch_to_doc("http://127.0.0.1:9/")
    assert.is_true(fake.run_until(function() return core.threads[key] == nil end, 30))
    assert.equal(1, #core.errors)
    assert.matches("fetching http://127.0.0.1:9/ failed: .*127.0.0.1:9", core.errors[1])
    table.remove(core.errors)
  end)

  describe("the other styles (data/sluice/)", function()
    local function thread_count()
      local n = 0
      for _ in pairs(core.threads) do n = n + 1 end
      return n
    end

    it("load as sluice.x from USERDIR/libraries/sluice, on the plugin's net", function()
      -- as in the editor: no data/ on the path, nothing loaded under these names yet
      local saved_path, saved = package.path, {}
      package.path = package.path:gsub("[^;]*/data/%?%.lua;?", "")
      for _, name in ipairs { "runtime", "socket", "request", "tcpd", "packet" } do
        saved[name] = package.loaded["sluice." .. name]
        package.loaded["sluice." .. name] = nil
      end
      local ok, err = pcall(function()
        local request = require "sluice.request"
        assert.are.equal(package.loaded["libraries.sluice.request"], request)
        local rt = require "libraries.sluice.runtime"
        assert.are.equal(sluice.net, rt.load_net("libraries.sluice.request"))
        for _, name in ipairs { "socket", "tcpd", "packet" } do
          local m = require("sluice." .. name)
          assert.are.equal(package.loaded["libraries.sluice." .. name], m)
        end
        assert.is_nil(package.loaded["sluice.runtime"])   -- the libraries found their own sibling
        assert.is_false(pcall(require, "sluice.no_such_library"))
      end)
      package.path = saved_path
      for name, m in pairs(saved) do package.loaded["sluice." .. name] = m end
      if not ok then error(err, 0) end
    end)

    it("run tcpd and request callbacks from editor threads, with nobody polling", function()
      local peer = h.start_peer("echo")
      local tcpd, request = require "sluice.tcpd", require "sluice.request"
      local before = thread_count()
      local got, reply
      local conn
      conn = tcpd.connect { host = peer.host, port = peer.port,
        onconnected = function() conn:send("via tcpd") end,
        onread = function(d) got = d conn:close() end }
      request { host = peer.host, port = peer.port, data = "via request\n", stop_pattern = "\n",
        callback = function(err, data) reply = err or data end }
      assert.are.equal(before + 2, thread_count())
      assert.is_true(fake.run_until(function() return got ~= nil and reply ~= nil end, 30))
      assert.are.equal("via tcpd", got)
      assert.are.equal("via request", reply)
      -- the threads that drove them end once nothing is left
      assert.is_true(fake.run_until(function() return thread_count() == before end, 10))
      peer:stop()
    end)

    it("sluice.socket in core.add_thread: blocking-style code yields and the editor goes on", function()
      local peer = h.start_peer("echo")
      local socket = require "sluice.socket"
      local line
      core.add_thread(function()
        local c = assert(socket.connect(peer.host, peer.port))
        c:settimeout(10)
        c:send("hello editor\n")
        line = c:receive()
        c:close()
      end)
      local frames = fake.frames or 0
      assert.is_true(fake.run_until(function() return line ~= nil end, 30))
      assert.are.equal("hello editor", line)
      assert.is_true((fake.frames or 0) > frames)
      peer:stop()
    end)
  end)

  describe("helpers in core.add_thread", function()
    it("talk to the echo peer: connect, write everything, read everything", function()
      local peer = h.start_peer("echo")
      local data = h.random_bytes(h.scaled(2 * h.MiB, 256 * h.KiB))
      local conn = assert(sluice.net.open_tcp(peer.host, peer.port))
      local wrote, got, done = nil, nil, 0
      local sub, copied = string.sub, 0   -- write_all hands the rest over without a copy
      core.add_thread(function()
        assert(sluice.await_connected(conn, 10000))
        string.sub = function(str, ...)
          if str == data then copied = copied + 1 end
          return sub(str, ...)
        end
        local ok, err = pcall(function() wrote = assert(sluice.write_all(conn, data, 30000)) end)
        string.sub = sub
        assert(ok, err)
        conn:shutdown("send")
        done = done + 1
      end)
      core.add_thread(function()   -- reads at the same time
        got = assert(sluice.read_all(conn, nil, 30000))
        done = done + 1
      end)
      assert.is_true(fake.run_until(function() return done == 2 or #core.errors > 0 end, 60))
      assert.same({}, core.errors)
      assert.is_true(wrote)
      assert.equal(#data, #got)
      assert.is_true(got == data, "echoed bytes differ")
      assert.equal(0, copied)
      conn:close()
      peer:stop()
    end)

    it("read_all stops at max, read_until splits lines", function()
      local peer = h.start_peer("source", "300K")
      local results = {}
      core.add_thread(function()
        local c = sluice.net.open_tcp(peer.host, peer.port)
        results.limited = table.pack(sluice.read_all(c, 1000, 10000))
        c:close()
        c = sluice.net.open_tcp(peer.host, peer.port)
        results.all = sluice.read_all(c, 300 * 1024, 10000)
        c:close()
      end)
      local echo = h.start_peer("echo")
      core.add_thread(function()
        local c = sluice.net.open_tcp(echo.host, echo.port)
        assert(sluice.write_all(c, "hello\nworld\n"))
        results.line1 = sluice.read_until(c, "\n", 100, 10000)
        results.line2 = sluice.read_until(c, "\n", 100, 10000)
        c:close()
      end)
      assert.is_true(fake.run_until(function()
        return (results.all and results.line2) or #core.errors > 0
      end, 60))
      assert.same({}, core.errors)
      assert.is_nil(results.limited[1])
      assert.equal("limit", results.limited[3])
      assert.equal(300 * 1024, #results.all)
      assert.is_true(results.all == h.pattern(0, 300 * 1024), "source bytes differ")
      assert.equal("hello\n", results.line1)
      assert.equal("world\n", results.line2)
      peer:stop()
      echo:stop()
    end)

    it("await_connected reports refusals and timeouts", function()
      local hole = h.start_peer("blackhole")
      local r = {}
      core.add_thread(function()
        r.refused = table.pack(sluice.await_connected(sluice.net.open_tcp("127.0.0.1", 9), 10000))
        local c = sluice.net.open_tcp(hole.host, hole.port)
        local t0 = net.clock()
        r.timeout = table.pack(sluice.await_connected(c, 200))
        r.waited = net.clock() - t0
        c:close()
      end)
      assert.is_true(fake.run_until(function() return r.timeout ~= nil or #core.errors > 0 end, 30))
      assert.is_nil(r.refused[1])
      assert.equal("refused", r.refused[3])
      assert.is_nil(r.timeout[1])
      assert.equal("timeout", r.timeout[3])
      assert.is_true(r.waited >= 0.19 and r.waited < 5, "waited " .. r.waited)
      hole:stop()
    end)

    it("yield the configured interval, and refuse to run outside an editor thread", function()
      local co = coroutine.create(function() sluice.sleep(0.25) end)
      core.threads.sleep_probe = { cr = co, wake = 0 }   -- as core.add_thread keeps it
      local _, v = coroutine.resume(co)
      core.threads.sleep_probe = nil
      assert.equal(0.25, v)
      h.assert_raises("must run inside an editor thread", function() sluice.read_all({}, 1) end)
      h.assert_raises("must run inside an editor thread", function() sluice.await_connected({}) end)
      -- a coroutine of the caller's own would get the scheduler's number
      local ok, err = coroutine.resume(coroutine.create(function() sluice.sleep(0.25) end))
      assert.is_false(ok)
      assert.truthy(tostring(err):find("must run inside an editor thread", 1, true), err)
    end)

    it("fetch through the HTTP client from a thread", function()
      local body, req
      core.add_thread(function() body, req = sluice.fetch(base .. "/page.txt") end)
      assert.is_true(fake.run_until(function() return req ~= nil or #core.errors > 0 end, 60))
      assert.equal(200, req.status)
      assert.is_true(body == text, "body differs")
    end)
  end)
end)
