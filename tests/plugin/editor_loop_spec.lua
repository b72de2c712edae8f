-- editor_loop_spec: the editor-side plugin in a model of Lite XL 2.1.7's main loop
-- (tests/plugin/fake_core.lua, fake.run_editor), with the window unfocused and no
-- document open: when its threads are done twice in a row and nothing was drawn, that
-- loop waits for the next event with no timeout. A 20 MB download must finish there
-- there, kept going by the plugin (which keeps the loop on timed waits while a transfer
-- runs, drawing nothing), with and without an SDL in the host; on the module's wake-ups
-- alone where there is one (run with the SDL3 stub preloaded); and the model must stall
-- with neither, or it proves nothing. The same loop must run the callbacks of
-- sluice.http and sluice.request, which come from the libraries' own dispatch
-- thread, and their timers on a connection that has gone quiet.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "../lua/?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

local ROOT = os.getenv("SLUICE_ROOT") or "."
local SIZE = h.scaled(20 * h.MiB, 2 * h.MiB)

local function sh(cmd)
  assert(os.execute(cmd), "command failed: " .. cmd)
end

-- Sleeps the whole time (net.wait returns early on activity; the editor would not).
local function sleep(s)
  local deadline = net.clock() + s
  while net.clock() < deadline do net.wait(math.max(1, math.ceil((deadline - net.clock()) * 1000))) end
end

describe("editor loop", function()
  local userdir, server, base, fake, core, sluice, saved_path, saved_cpath, expected

  setup(function()
    local p = assert(io.popen("mktemp -d 2>/dev/null || mktemp -d -t sluice"))
    userdir = p:read("l")
    p:close()
    sh(string.format("mkdir -p %s/plugins %s/libraries/sluice %s/www", h.shell_quote(userdir),
      h.shell_quote(userdir), h.shell_quote(userdir)))
    sh(string.format("ln -s %s %s/plugins/sluice.lua", h.shell_quote(ROOT .. "/plugin/sluice.lua"), h.shell_quote(userdir)))
    for _, name in ipairs { "runtime", "http", "request", "socket" } do
      sh(string.format("ln -s %s %s/libraries/sluice/%s.lua", h.shell_quote(ROOT .. "/data/sluice/" .. name .. ".lua"),
        h.shell_quote(userdir), name))
    end
    local so = h.build .. "/plugin/net.so"
    if not io.open(so) then so = h.build .. "/net.so" end
    sh(string.format("ln -s %s %s/libraries/sluice/net.so", h.shell_quote(so), h.shell_quote(userdir)))
    local f = assert(io.open(userdir .. "/www/big.txt", "wb"))
    local line = string.rep("0123456789abcdef", 63) .. "\n"
    expected = SIZE // #line * #line
    f:write(string.rep(line, SIZE // #line))
    f:close()
    f = assert(io.open(userdir .. "/www/small.txt", "wb"))
    f:write("small\n")
    f:close()
    server = h.start_server("http_test_server.py", string.format("%s %s %s", h.shell_quote(h.python),
      h.shell_quote(h.tools .. "http_test_server.py"), h.shell_quote(userdir .. "/www")),
      function(out) local l = out:match("^(%d+)\n") return l and math.tointeger(tonumber(l)) end)
    base = "http://127.0.0.1:" .. server.port
    saved_path, saved_cpath = package.path, package.cpath
    package.path = userdir .. "/?.lua;" .. package.path
    package.cpath = userdir .. "/?.so;" .. package.cpath
    fake = dofile(ROOT .. "/tests/plugin/fake_core.lua")
    core = fake.install { clock = net.clock, sleep = sleep }
    sluice = require "plugins.sluice"
  end)

  teardown(function()
    h.stop_all()
    if fake then fake.uninstall() end
    package.loaded["plugins.sluice"] = nil
    if saved_path then package.path, package.cpath = saved_path, saved_cpath end
    if userdir then os.execute("rm -rf " .. h.shell_quote(userdir)) end
  end)

  -- Small reads per poll make the download take many turns of the loop, so
  -- that it meets the wait with no timeout whatever the machine's speed.
  local function fetch_unfocused(timeout, poll_bytes)
    sluice.config.fetch_poll_bytes = poll_bytes
    sluice.last_fetch = nil
    local t0, loop = net.clock(), fake.loop
    local draws, events = loop.draws, loop.events
    sluice.fetch_to_doc(base .. "/big.txt")
    local ok, err = pcall(fake.run_editor, function()
      return sluice.last_fetch ~= nil or #core.errors > 0
    end, { focused = false, timeout = timeout or 120 })
    local secs = net.clock() - t0
    print(string.format("# %s: %.1f MB in %.2f s, %d frames drawn, %d events, %d waits with no timeout",
      sluice.wakeups and "wake-ups" or "no SDL", SIZE / 1e6, secs, loop.draws - draws,
      loop.events - events, loop.infinite_waits))
    return ok, err
  end

  it("finishes a 20 MB download while unfocused", function()
    local draws_before = fake.loop.draws
    local ok, err = fetch_unfocused(120, SIZE // 100)
    assert(ok, err)
    assert.same({}, core.errors)
    assert.equal(expected, #sluice.last_fetch.doc:get_text())
    -- one frame shows the new document; none may be drawn to keep the loop awake
    assert.is_true(fake.loop.draws - draws_before <= 1, (fake.loop.draws - draws_before) .. " frames drawn")
    assert.equal(xl_host and xl_host.sdl_wait and true or false, sluice.wakeups)
  end)

  it("finishes it on wake-ups alone, where there is an SDL", function()
    if not (xl_host and xl_host.sdl_wait) then
      pending("no SDL in this host")
      return
    end
    sluice.config.keep_awake = false
    local events = fake.loop.events
    local ok, err = fetch_unfocused(120, SIZE // 100)
    sluice.config.keep_awake = true
    assert(ok, err)
    assert.equal(expected, #sluice.last_fetch.doc:get_text())
    assert.is_true(fake.loop.events > events, "no wake-up event reached the loop")
  end)

  -- Runs the loop unfocused until `done` holds the callback's arguments. Once
  -- the callback has run, the loop may go to sleep in that same turn: no stall.
  local function dispatch_unfocused(start)
    local done
    local handle = start(function(...) done = table.pack(...) end)
    local ok, err = pcall(fake.run_editor, function() return done ~= nil end, { focused = false, timeout = 60 })
    local result = done
    if not result and handle then handle:cancel() end
    assert(ok or result, err)
    return result
  end

  it("completes a sluice.http request while unfocused", function()
    local done = dispatch_unfocused(function(on_done)
      return sluice.http.get(base .. "/delay/1000/small.txt", nil, { timeout = 60, on_done = on_done })
    end)
    assert.is_true(done[1], done[2])
    assert.equal("small\n", done[3])
  end)

  it("times a stalled sluice.http request out while unfocused", function()
    local done = dispatch_unfocused(function(on_done)
      return sluice.http.get(base .. "/stall", nil, { timeout = 1, on_done = on_done })
    end)
    assert.is_false(done[1])
    assert.equal("request timed out", done[2])
  end)

  it("asks is_cancelled of a stalled sluice.http request while unfocused", function()
    local t0 = net.clock()
    local done = dispatch_unfocused(function(on_done)
      return sluice.http.get(base .. "/stall", nil, { on_done = on_done,
        is_cancelled = function() return net.clock() - t0 > 0.5 end })
    end)
    assert.is_false(done[1])
    assert.equal("request cancelled", done[2])
  end)

  it("times a quiet sluice.request out while unfocused", function()
    local peer = h.start_peer("echo")
    local request = require "libraries.sluice.request"
    local done = dispatch_unfocused(function(on_done)
      return request { host = peer.host, port = peer.port, data = "no line end", stop_pattern = "\n",
        timeout = 0.5, callback = function(err, _, r) on_done(err, r.code) end }
    end)
    peer:stop()
    assert.is_string(done[1])
    assert.equal("timeout", done[2])
  end)

  it("lets the loop wait for events again once the libraries are done", function()
    dispatch_unfocused(function(on_done)
      return sluice.http.get(base .. "/small.txt", nil, { on_done = on_done })
    end)
    local stall_after = fake.loop.stall_after
    fake.loop.stall_after = 0.5
    local ok, err = pcall(fake.run_editor, function() return false end, { focused = false, timeout = 30 })
    fake.loop.stall_after = stall_after
    assert.is_false(ok, "the loop kept turning with nothing to do")
    assert.matches("stalled", err)
  end)

  it("runs a blocking sluice.socket receive to its end while unfocused", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local got, why, ended, waiting
    core.add_thread(function()
      local socket = require "libraries.sluice.socket"
      local sock = assert(socket.connect("127.0.0.1", srv:get_port()))
      sock:settimeout(10)
      waiting = net.clock()
      got, why = sock:receive("*l")
      ended = net.clock()
      sock:close()
    end)
    -- connected while focused: the wait under test is the receive's
    assert(fake.run_editor(function() return waiting or #core.errors > 0 end, { focused = true, timeout = 30 }))
    local peer, answered, t0 = nil, false, net.clock()
    local ok, err = pcall(fake.run_editor, function()
      peer = peer or srv:accept()
      if peer and not answered and net.clock() - t0 > 1 then   -- once the reader waits
        answered = peer:write("hello\n") == 6
      end
      return got ~= nil
    end, { focused = false, timeout = 30 })
    if peer then peer:close() end
    srv:close()
    -- a thread that raised or gave up holds nothing: that says more than the stall
    assert(ok, string.format("%s; the receive: %s, %s after %s s, peer %s; the editor's errors: %s", tostring(err),
      tostring(got), tostring(why), ended and string.format("%.3f", ended - waiting) or "-",
      answered and "answered" or peer and "accepted" or "not accepted", table.concat(core.errors, " | ")))
    assert.equal("hello", got)
  end)

  -- A plugin may drop one of its threads while it waits (core.threads[key] = nil):
  -- the thread never returns, and its hold must not keep the editor turning.
  it("lets the loop wait for events again once a thread waiting in a transfer is dropped", function()
    local srv = assert(net.create_server("127.0.0.1", 0))   -- accepts, never answers
    core.add_thread(function()
      local conn = assert(net.open_tcp("127.0.0.1", srv:get_port()))
      sluice.read_all(conn, nil, 60000)
    end, "sluice-test-dropped")
    local t0 = net.clock()
    assert(pcall(fake.run_editor, function() return net.clock() - t0 > 1 end, { focused = false, timeout = 30 }),
      "the waiting transfer did not keep the loop turning")
    core.threads["sluice-test-dropped"] = nil
    local stall_after = fake.loop.stall_after
    fake.loop.stall_after = 0.5
    local ok, err = pcall(fake.run_editor, function() return false end, { focused = false, timeout = 10 })
    fake.loop.stall_after = stall_after
    srv:close()
    assert.is_false(ok, "the loop kept turning with nothing to do")
    assert.matches("stalled", err)
  end)

  it("stalls with neither (the model is faithful)", function()
    if xl_host and xl_host.sdl_wait then
      pending("this host has an SDL: the control runs in the host without one")
      return
    end
    sluice.config.keep_awake = false
    fake.loop.stall_after = 2
    local ok, err = fetch_unfocused(60, SIZE // 100)
    sluice.config.keep_awake = true
    core.threads = {}                    -- the stalled download stays behind
    assert.is_false(ok)
    assert.matches("stalled", err)
  end)
end)
