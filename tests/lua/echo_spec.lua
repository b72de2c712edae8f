-- echo_spec: bulk data through an echo peer comes back byte for byte — random bytes,
-- random write and read sizes, writes and reads interleaved, backpressure respected;
-- over IPv4 and IPv6, by literal, by name and by an address object still resolving.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

-- h.echo_transfer sends `total` random bytes with random write and read sizes
-- (1..200 KiB), retrying partial and zero writes, and checks what comes back.
local function echo_transfer(conn, total, timeout_ms)
  local stats = h.echo_transfer(conn, total, { timeout_ms = timeout_ms })
  assert.are.equal("", conn:read(1))   -- nothing more than we sent may arrive
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
