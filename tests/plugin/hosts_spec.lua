-- hosts_spec: the plugin inside hosts that bring libraries of their own, as the
-- editors people run do. tests/plugin/stage.sh runs it under build/<config>/xl_host
-- four times: with no SDL at all (an editor linking SDL statically), with the SDL3 and
-- the SDL2 stub preloaded into the global scope (XL_HOST_PRELOAD: an editor on a
-- shared SDL3 or SDL2), and with a foreign mbedTLS whose every function aborts (an
-- editor carrying its own mbedTLS). The plugin must bind its wake-ups to whichever SDL
-- is there, with that SDL's event layout, say why when there is none, and keep its own
-- TLS whatever mbedTLS the host exports.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "../lua/?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

local preload = os.getenv("XL_HOST_PRELOAD") or ""
local sdl = tonumber(preload:match("libsdl(%d)_stub"))

-- Waits for one SDL event from the stub; true when one came within ms.
local function sdl_event(ms)
  return xl_host.sdl_wait(ms)
end

describe("host libraries", function()
  teardown(function()
    net.set_wakeup(false)
    h.stop_all()
  end)

  it("set_wakeup binds to the host's SDL, or says there is none", function()
    local t, v = net.set_wakeup(true)
    if sdl then
      assert.is_number(t, tostring(v))
      assert.equal(sdl, v)
    else
      assert.is_false(t)
      assert.matches("no SDL in this process", v)
    end
    assert.is_true(net.set_wakeup(false))
  end)

  it("pushes an event laid out as the host's SDL reads it, and repeats it until polled", function()
    if not sdl then
      pending("no SDL in this host")
      return
    end
    local t = net.set_wakeup(true)
    local u = assert(net.open_udp("127.0.0.1", 0))
    local before = xl_host.sdl_stats()
    while sdl_event(0) do end                      -- nothing stale
    assert(u:send("127.0.0.1", u:get_port(), "x"))
    assert.is_true(sdl_event(5000), "no event for the datagram")
    -- not polled: the nudge comes again, at most every 20 ms
    local again = 0
    local t0 = net.clock()
    while net.clock() - t0 < 0.3 do
      if sdl_event(50) then again = again + 1 end
    end
    assert.is_true(again >= 3, "repeated " .. again .. " times in 300 ms")
    assert.is_true(again <= 16, "repeated " .. again .. " times in 300 ms: over the 50/s bound")
    assert.is_truthy(u:receive())                  -- the host polls: the repeats stop
    while sdl_event(30) do end
    assert.is_false(sdl_event(150), "a nudge after the host polled with nothing new")
    local s = xl_host.sdl_stats()
    assert.equal(sdl, s.version)
    assert.is_true(s.pushed > before.pushed)
    assert.equal(0, s.invalid, "events not laid out as SDL" .. sdl .. " reads them")
    assert.equal(t, s.last_type)
    assert.equal(1, s.last_code)
    u:close()
    net.set_wakeup(false)
  end)

  -- Runs a host whose nudges are out and unanswered when it ends (`ending`: the script's
  -- last line), watched by xl_host (env: the watch); returns the count it printed after `label`.
  local function pushed_at_end(env, ending, label)
    local code = [[
      local net = require "net"
      assert(net.set_wakeup(true))
      local u = assert(net.open_udp("127.0.0.1", 0))
      assert(u:send("127.0.0.1", u:get_port(), "x"))
      assert(xl_host.sdl_wait(5000), "no event for the datagram")
      assert(xl_host.sdl_wait(2000), "no repeated event")
      print("nudges out")
      io.stdout:flush()
    ]] .. ending
    local cmd = env .. " " .. h.shell_quote(os.getenv("SLUICE_LUA")) .. " -e " .. h.shell_quote(code) .. " 2>&1"
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    assert.is_true(p:close(), out)   -- the script ran through: nudges were going when it ended
    assert.matches("nudges out", out, 1, true)
    return out:match(label .. ": (%d+)"), out
  end

  it("sends nothing into the host's SDL once its Lua state is closed", function()
    if not sdl then
      pending("no SDL in this host")
      return
    end
    -- the editor quits: without the stop, the repeats would go on into an SDL being torn down
    local n, out = pushed_at_end("XL_HOST_AFTER_CLOSE_MS=400", "", "pushed after close")
    assert.equal("0", n, out)
  end)

  it("sends nothing into the host's SDL while it quits at an exit without closing Lua", function()
    if not sdl then
      pending("no SDL in this host")
      return
    end
    -- os.exit without closing the state: the host's SDL_Quit runs among the exit handlers,
    -- after the one sluice took when it started
    local n, out = pushed_at_end("XL_HOST_QUIT_AT_EXIT_MS=300", "os.exit(0)", "pushed while SDL quits")
    assert.equal("0", n, out)
  end)

  it("keeps its own TLS whatever mbedTLS the host exports", function()
    local certs = h.tls_certs()
    local echo = h.start_tls_server("echo")
    local conn = assert(net.open_tcp("127.0.0.1", echo.port, { ca_file = certs.ca, server_name = "sluice-v4.test" }))
    local status, msg = h.wait_status(conn, 10000)
    assert.equal("success", status, tostring(msg))
    h.echo_transfer(conn, 256 * 1024)
    assert.is_table(conn:get_tls_info())
    conn:close()
  end)
end)
