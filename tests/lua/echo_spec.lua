-- echo_spec: bulk data through an echo peer comes back byte for byte — random bytes,
-- random write and read sizes, writes and reads interleaved, backpressure respected;
-- over IPv4 and IPv6, by literal, by name and by an address object still resolving.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

local MAX_IO = 200 * 1024

-- Send `total` random bytes through `conn` and check what comes back. Partial and zero
-- writes are retried with the rest (whether they happen depends on relative speeds;
-- backpressure_spec forces them). Returns counters: writes, partial, full, reads.
local function echo_transfer(conn, total, timeout_ms)
  local pool = h.random_bytes(h.MiB + MAX_IO)
  local check = h.echo_checker()
  local stats = { writes = 0, partial = 0, full = 0, reads = 0 }
  local deadline = net.clock() + (timeout_ms or 120000) / 1000
  local sent, chunk, chunk_pos = 0, nil, 1
  while check.received < total do
    local progressed = false
    if sent < total then
      if not chunk then
        local len = math.min(math.random(1, MAX_IO), total - sent)
        local off = math.random(0, #pool - len)
        chunk, chunk_pos = pool:sub(off + 1, off + len), 1
      end
      local rest = chunk_pos == 1 and chunk or chunk:sub(chunk_pos)
      local n, msg, code = conn:write(rest)
      assert(n, string.format("write failed: %s (%s)", tostring(msg), tostring(code)))
      assert.is_true(math.type(n) == "integer" and n >= 0 and n <= #rest, "bad write count")
      stats.writes = stats.writes + 1
      if n == 0 then stats.full = stats.full + 1
      elseif n < #rest then stats.partial = stats.partial + 1 end
      if n > 0 then
        check:push(n == #rest and rest or rest:sub(1, n))
        chunk_pos, sent, progressed = chunk_pos + n, sent + n, true
        if chunk_pos > #chunk then chunk = nil end
      end
    end
    local want = math.random(1, MAX_IO)
    local data, msg, code = conn:read(want)
    assert(data, string.format("read failed: %s (%s)", tostring(msg), tostring(code)))
    assert.is_true(#data <= want, "read returned more than asked")
    if #data > 0 then
      stats.reads = stats.reads + 1
      local ok, err = check:feed(data)
      assert(ok, err)
      progressed = true
    end
    if not progressed then
      assert(net.clock() < deadline, string.format(
        "timed out: sent %d, received %d of %d", sent, check.received, total))
      net.wait(10)
    end
  end
  assert.are.equal(total, check.received)
  assert.are.equal(0, check.pending)
  -- nothing more than we sent may arrive
  assert.are.equal("", conn:read(1))
  return stats
end

describe("echo", function()
  local v4, v6

  setup(function()
    v4 = h.start_peer("echo")
    v6 = h.start_peer("echo", nil, { ipv6 = true })
  end)

  teardown(function()
    h.stop_all()
  end)

  it("returns 64 MiB of random bytes intact over IPv4", function()
    local total = h.scaled(64 * h.MiB)
    local conn = assert(net.open_tcp("127.0.0.1", v4.port))
    assert.are.equal("success", conn:wait_until_connected(10000))
    echo_transfer(conn, total)
    conn:close()
    assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
  end)

  it("returns data intact over IPv6", function()
    local conn = assert(net.open_tcp("::1", v6.port))
    assert.are.equal("success", conn:wait_until_connected(10000))
    echo_transfer(conn, h.scaled(8 * h.MiB))
    local addr = conn:get_address()
    assert.truthy(addr)
    assert.are.equal("::1", addr:get_ip())
    conn:close()
  end)

  it("connects by host name (IPv4 and IPv6)", function()
    for _, case in ipairs({ { "sluice-v4.test", v4, "127.0.0.1" },
                            { "sluice-v6.test", v6, "::1" } }) do
      local name, peer, ip = case[1], case[2], case[3]
      local conn = assert(net.open_tcp(name, peer.port))
      local status, msg = conn:wait_until_connected(10000)
      assert.are.equal("success", status, msg)
      assert.are.equal(ip, conn:get_address():get_ip())
      echo_transfer(conn, 256 * h.KiB)
      conn:close()
    end
  end)

  it("connects through an address object that is still resolving", function()
    local addr = assert(net.resolve_address("sluice-v4.test"))
    local conn = assert(net.open_tcp(addr, v4.port))   -- addr may well be "waiting" here
    local status, msg = conn:wait_until_connected(10000)
    assert.are.equal("success", status, msg)
    assert.are.equal("success", addr:get_status())
    echo_transfer(conn, 512 * h.KiB)
    conn:close()
  end)

  it("reuses one resolved address for several connections", function()
    local addr = assert(net.resolve_address("127.0.0.1"))
    local conns = {}
    for i = 1, 8 do conns[i] = assert(net.open_tcp(addr, v4.port)) end
    for i, conn in ipairs(conns) do
      assert.is_true(h.write_all(conn, "hello " .. i))
    end
    for i, conn in ipairs(conns) do
      assert.are.equal("hello " .. i, h.read_n(conn, #("hello " .. i), 10000))
      conn:close()
    end
  end)

  it("shows the endpoint and state in tostring", function()
    local conn = assert(net.open_tcp("127.0.0.1", v4.port))
    assert.are.equal("success", conn:wait_until_connected(10000))
    assert.are.equal(string.format("net.tcp(127.0.0.1:%d, success)", v4.port), tostring(conn))
    conn:close()
    assert.truthy(tostring(conn):find("^net%.tcp%("))
  end)
end)
