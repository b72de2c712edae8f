-- happy_eyeballs_spec: connecting to a name with several addresses (RFC 8305): the
-- attempts start in order, the next 250 ms after the previous one, or as soon as one
-- fails; the first to connect wins. The first address of the name is made to never
-- answer (a blackhole peer: full accept queue, SYNs dropped) while the second one, on
-- the same port in the other family, is an echo peer.
-- With more addresses than attempts run at once, the oldest, once unanswered for 2 s, gives
-- way to the next address (four blackholes, then an echo peer).
-- Names (tests/lua/hosts): sluice-he.test = ::1, 127.0.0.1; sluice-he4.test = the reverse;
-- sluice-he5.test = 127.0.0.2, .3, .4, .5, then 127.0.0.1; sluice-he3.test = 127.0.0.2, .3, .1;
-- sluice-he6.test = 127.0.0.2, .3, .4, then ::1.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

local HAVE_V6 = h.ipv6_loopback()
-- Sanitizer builds are too slow for the "at once" bounds (below 250 ms, the delay
-- before a second attempt); there they are only printed.
local TIMED = h.mode ~= "asan" and h.mode ~= "tsan"

-- A blackhole on one family and an echo peer on the other, same port. Retries when the
-- port happens to be taken in the second family.
local function hole_and_echo(hole_v6)
  for _ = 1, 5 do
    local hole = h.start_peer("blackhole", nil, { ipv6 = hole_v6 })
    local ok, echo = pcall(h.start_peer, "echo", nil, { ipv6 = not hole_v6, port = hole.port })
    if ok then return hole, echo end
    hole:stop()
  end
  error("could not put a blackhole and an echo peer on one port")
end

-- Blackholes on each of `addrs` and an echo peer on 127.0.0.1 (::1 with echo_v6), all on one port (tried
-- again when another process holds it somewhere); returns the echo peer.
local function holes_then_echo(addrs, echo_v6)
  for _ = 1, 5 do
    local first = h.start_peer("blackhole", nil, { addr = addrs[1] })
    local ok = true
    for i = 2, #addrs do
      ok = ok and pcall(h.start_peer, "blackhole", nil, { addr = addrs[i], port = first.port })
    end
    local echo
    if ok then ok, echo = pcall(h.start_peer, "echo", nil, { port = first.port, ipv6 = echo_v6 }) end
    if ok then return echo end
    h.stop_all()
  end
  error("could not put " .. #addrs .. " blackholes and an echo peer on one port")
end

-- Connect to name:port; returns the connection, its final status, message, code and the
-- seconds it took.
local function connect(name, port, opts)
  local t0 = net.clock()
  local conn = assert(net.open_tcp(name, port, opts))
  local status, msg, code = h.wait_status(conn, 20000)
  return conn, status, msg, code, net.clock() - t0
end

describe("happy eyeballs", function()
  after_each(function()
    h.stop_all()
  end)

  it("falls back to IPv4 when the first address (::1) never answers", function()
    if not HAVE_V6 then return pending("no IPv6 loopback") end
    local hole, echo = hole_and_echo(true)
    assert.are.equal(hole.port, echo.port)
    local conn, status, msg, _, secs = connect("sluice-he.test", echo.port)
    print(string.format("\n# happy eyeballs: ::1 blackholed, connected via 127.0.0.1 in %.0f ms", secs * 1000))
    assert.are.equal("success", status, msg)
    assert.is_true(secs < 2, string.format("took %.3f s", secs))
    assert.is_true(secs >= 0.2, string.format("the second attempt started after only %.3f s", secs))
    local ip, port, fam = conn:get_peer()
    assert.are.same({ "127.0.0.1", echo.port, "inet" }, { ip, port, fam })
    assert.are.equal("127.0.0.1", conn:get_address():get_ip())
    assert(h.write_all(conn, "over ipv4"))
    assert.are.equal("over ipv4", h.read_n(conn, 9, 10000))
    conn:close()
  end)

  it("falls back to IPv6 when the first address (127.0.0.1) never answers", function()
    if not HAVE_V6 then return pending("no IPv6 loopback") end
    local hole, echo = hole_and_echo(false)
    assert.are.equal(hole.port, echo.port)
    local conn, status, msg, _, secs = connect("sluice-he4.test", echo.port)
    print(string.format("\n# happy eyeballs: 127.0.0.1 blackholed, connected via ::1 in %.0f ms", secs * 1000))
    assert.are.equal("success", status, msg)
    assert.is_true(secs < 2, string.format("took %.3f s", secs))
    local ip, port, fam = conn:get_peer()
    assert.are.same({ "::1", echo.port, "inet6" }, { ip, port, fam })
    assert(h.write_all(conn, "over ipv6"))
    assert.are.equal("over ipv6", h.read_n(conn, 9, 10000))
    conn:close()
  end)

  it("takes the first address when it answers at once", function()
    if not HAVE_V6 then return pending("no IPv6 loopback") end
    -- echo peers on both families, same port
    local v6, v4
    for _ = 1, 5 do
      v6 = h.start_peer("echo", nil, { ipv6 = true })
      local ok, p = pcall(h.start_peer, "echo", nil, { port = v6.port })
      if ok then v4 = p break end
      v6:stop()
    end
    assert(v4, "could not bind both families on one port")
    local conn, status, msg, _, secs = connect("sluice-he.test", v6.port)
    assert.are.equal("success", status, msg)
    assert.are.equal("::1", (conn:get_peer()))
    print(string.format("\n# happy eyeballs: first address answered, connected in %.0f ms", secs * 1000))
    if TIMED then
      assert.is_true(secs < 0.25, string.format("took %.3f s: the first attempt should win at once", secs))
    end
    conn:close()
    conn, status, msg = connect("sluice-he4.test", v6.port)
    assert.are.equal("success", status, msg)
    assert.are.equal("127.0.0.1", (conn:get_peer()))
    conn:close()
  end)

  it("moves on at once when the first address is refused", function()
    if not HAVE_V6 then return pending("no IPv6 loopback") end
    local echo = h.start_peer("echo")   -- 127.0.0.1 only: ::1 refuses this port
    local conn, status, msg, _, secs = connect("sluice-he.test", echo.port)
    assert.are.equal("success", status, msg)
    assert.are.equal("127.0.0.1", (conn:get_peer()))
    print(string.format("\n# happy eyeballs: ::1 refused, connected via 127.0.0.1 in %.0f ms", secs * 1000))
    if TIMED then assert.is_true(secs < 0.2, string.format("took %.3f s after a refusal", secs)) end
    conn:close()
  end)

  it("fails with the last error when every address is refused", function()
    local port = h.closed_port()
    local conn, status, msg, code = connect("sluice-he.test", port)
    assert.are.equal("failure", status)
    assert.are.equal("refused", code, msg)
    -- the last address tried is 127.0.0.1
    assert.are.equal(string.format("connect 127.0.0.1:%d: Connection refused", port), msg)
    conn:close()
    conn, status, msg, code = connect("sluice-he4.test", port)
    assert.are.equal("failure", status)
    assert.are.equal("refused", code, msg)
    assert.are.equal(string.format("connect [::1]:%d: Connection refused", port), msg)
    conn:close()
  end)

  it("gives up on a blackholed address when connect_timeout ends, all attempts included", function()
    if not HAVE_V6 then return pending("no IPv6 loopback") end
    -- ::1 blackholed, 127.0.0.1 refused: the refusal comes first in time, but the
    -- blackholed attempt is still running; connect_timeout ends it
    local hole = h.start_peer("blackhole", nil, { ipv6 = true })
    local conn, status, msg, code, secs = connect("sluice-he.test", hole.port, { connect_timeout = 600 })
    assert.are.equal("failure", status, msg)
    assert.truthy(code == "timeout" or code == "refused", code)
    assert.is_true(secs < 3, string.format("took %.3f s", secs))
    print(string.format("\n# happy eyeballs: blackhole + refused, failed after %.0f ms: %s (%s)",
      secs * 1000, msg, code))
    conn:close()
  end)

  it("starts the next address at once when one fails while an earlier one still hangs", function()
    -- 127.0.0.2 never answers; 127.0.0.3, tried 250 ms later, refuses; 127.0.0.1 answers
    local echo = holes_then_echo({ "127.0.0.2" })
    local conn, status, msg, _, secs = connect("sluice-he3.test", echo.port, { connect_timeout = 30000 })
    print(string.format("\n# happy eyeballs: hang, refused, answer: connected in %.0f ms (the timer alone: 500)",
      secs * 1000))
    assert.are.equal("success", status, msg)
    assert.are.equal("127.0.0.1", (conn:get_peer()))
    if TIMED then assert.is_true(secs < 0.45, string.format("took %.3f s: the refusal waited for the timer", secs)) end
    conn:close()
  end)

  it("alternates the families: an IPv6 address after three IPv4 ones is tried second", function()
    if not HAVE_V6 then return pending("no IPv6 loopback") end
    local echo = holes_then_echo({ "127.0.0.2", "127.0.0.3", "127.0.0.4" }, true)
    local conn, status, msg, _, secs = connect("sluice-he6.test", echo.port, { connect_timeout = 30000 })
    print(string.format("\n# happy eyeballs: ::1 behind three IPv4 addresses, connected in %.0f ms", secs * 1000))
    assert.are.equal("success", status, msg)
    assert.are.equal("::1", (conn:get_peer()))
    if TIMED then assert.is_true(secs < 0.6, string.format("took %.3f s: ::1 was not tried second", secs)) end
    conn:close()
  end)

  it("goes on to a fifth address while four attempts hang", function()
    -- blackholes on 127.0.0.2..5 and an echo peer on 127.0.0.1, all on one port
    local echo = holes_then_echo({ "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5" })
    local conn, status, msg, _, secs = connect("sluice-he5.test", echo.port, { connect_timeout = 30000 })
    print(string.format("\n# happy eyeballs: 4 addresses blackholed, connected via the fifth in %.0f ms",
      secs * 1000))
    assert.are.equal("success", status, msg)
    assert.are.equal("127.0.0.1", (conn:get_peer()))
    assert(h.write_all(conn, "fifth"))
    assert.are.equal("fifth", h.read_n(conn, 5, 10000))
    conn:close()
  end)

  it("closes the losing attempt once one connects", function()
    if not HAVE_V6 then return pending("no IPv6 loopback") end
    local hole, echo = hole_and_echo(true)
    -- sockets in SYN-SENT towards the blackhole: its own fillers, then ours
    local function syn_sent()
      local p = io.popen(string.format("ss -tnH state syn-sent dst '[::1]:%d' 2>/dev/null", hole.port))
      local out = p:read("a")
      p:close()
      local n = 0
      for _ in out:gmatch("[^\n]+") do n = n + 1 end
      return n
    end
    if os.execute("command -v ss >/dev/null 2>&1") ~= true then return pending("no ss") end
    local before = syn_sent()
    local conns = {}
    for i = 1, 5 do
      local c, status, msg = connect("sluice-he.test", echo.port)
      assert.are.equal("success", status, msg)
      conns[i] = c
    end
    assert(h.wait_for(function() return syn_sent() == before end, 3000),
      string.format("%d attempts towards ::1 still in SYN-SENT", syn_sent() - before))
    for _, c in ipairs(conns) do c:close() end
  end)
end)
