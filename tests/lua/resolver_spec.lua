-- resolver_spec: net.create_resolver: lookups asked of our own nameservers (a Python
-- DNS server on loopback UDP and TCP, tests/tools/dns_server.py): A and AAAA answers,
-- NXDOMAIN, SERVFAIL, an answer too large for UDP that must be asked again over TCP,
-- a server that never answers, the hosts file first, cancellation when the address is
-- collected, open_tcp{resolver = r}, a dotless name never rewritten by HOSTALIASES, and
-- bad arguments.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

local function start_dns()
  local log = os.tmpname()
  local cmd = h.shell_quote(h.python) .. " " .. h.shell_quote(h.tools .. "dns_server.py") .. " --log " .. h.shell_quote(log)
  local server = h.start_server("dns_server.py", cmd, function(out)
    local line = out:match("^(%d+)\n")
    return line and math.tointeger(tonumber(line))
  end)
  server.log = log
  function server:queries(pattern)
    local n = 0
    for line in ((h.read_file(self.log) or "") .. ""):gmatch("[^\n]+") do
      if not pattern or line:find(pattern) then n = n + 1 end
    end
    return n
  end
  return server
end

local function ips(addr) return addr:get_ip() end   -- the first address (the API shows no more)

describe("custom resolvers", function()
  local dns, r

  before_each(function()
    h.need_hosts_file()
    dns = start_dns()
    r = assert(net.create_resolver{ nameservers = { "127.0.0.1:" .. dns.port }, timeout = 300, tries = 2 })
  end)

  after_each(function()
    r:close()
    h.stop_all()
    os.remove(dns.log)
    collectgarbage()
  end)

  it("resolves A and AAAA records", function()
    local a, six, both = r:resolve("a.test"), r:resolve("six.test"), r:resolve("both.test")
    assert.are.equal("success", a:wait_until_resolved(5000))
    assert.are.equal("127.0.0.1", ips(a))
    assert.are.equal("a.test", a:get_hostname())
    assert.are.equal("success", six:wait_until_resolved(5000))
    assert.are.equal("::1", ips(six))
    assert.are.equal("success", both:wait_until_resolved(5000))
    assert.are.equal("::1", ips(both))   -- IPv6 first, as RFC 6724 sorts and RFC 8305 starts
    assert.are.equal(2, dns:queries("QUERY udp a%.test"))   -- A and AAAA
    assert.is_truthy(tostring(r):find("127.0.0.1:" .. dns.port, 1, true))
  end)

  it("says which name failed and which nameserver said so", function()
    local where = "via 127.0.0.1:" .. dns.port
    local st, msg, code = r:resolve("nx.test"):wait_until_resolved(5000)
    assert.are.same({ "failure", "dns" }, { st, code })
    assert.are.equal("resolve nx.test " .. where .. ": no such name", msg)
    st, msg, code = r:resolve("fail.test"):wait_until_resolved(5000)
    assert.are.same({ "failure", "dns" }, { st, code })
    assert.is_truthy(msg:find("resolve fail.test " .. where, 1, true), msg)
    assert.is_truthy(msg:find("refused or failed"), msg)
  end)

  it("keeps the reason whole in a message with a long name and many nameservers", function()
    local servers = {}
    for i = 1, 8 do servers[i] = "127.0.0.1:" .. dns.port end
    local many = assert(net.create_resolver{ nameservers = servers, timeout = 300, tries = 1 })
    local st, msg, code = many:resolve(string.rep("n", 60) .. ".nx.test"):wait_until_resolved(5000)
    assert.are.same({ "failure", "dns" }, { st, code })
    assert.is_truthy(msg:find("^resolve n+%.nx%.test via 8 nameservers: no such name$"), msg)
    local long = string.rep("n", 63) .. "." .. string.rep("m", 63) .. "." .. string.rep("o", 63) .. ".nx.test"
    st, msg = many:resolve(long):wait_until_resolved(5000)
    assert.is_truthy(msg:find("^resolve n+.*%.%.%. via 8 nameservers: no such name$"), msg)
    many:close()
  end)

  it("asks again over TCP when the UDP answer is truncated", function()
    local a = r:resolve("big.test")
    assert.are.equal("success", a:wait_until_resolved(5000))
    assert.is_truthy(ips(a):match("^127%.0%.0%.%d+$"))
    assert.are.equal(1, dns:queries("QUERY udp big%.test 1$"))
    assert.are.equal(1, dns:queries("QUERY tcp big%.test 1$"))
  end)

  it("gives up on a silent server after its tries, naming it", function()
    local st, msg, code = r:resolve("silent.test"):wait_until_resolved(10000)
    assert.are.same({ "failure", "timeout" }, { st, code })
    assert.are.equal("resolve silent.test via 127.0.0.1:" .. dns.port .. ": no answer (2 tries, 300 ms timeout)", msg)
    assert.are.equal(4, dns:queries("silent%.test"))   -- A and AAAA, twice
  end)

  it("ends a lookup whose rounds would double for hours at its bound", function()
    -- 20 tries of 10 ms: c-ares would wait 10 ms x (2^20 - 1), 3 hours; the bound (60 s,
    -- 400 ms here) ends it
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      net._lookup_max(400)
      local r = assert(net.create_resolver{ nameservers = { "127.0.0.1:" .. ... }, timeout = 10, tries = 20 })
      local t0 = net.clock()
      local st, msg, code = r:resolve("silent.test"):wait_until_resolved(30000)
      print(string.format("%s|%s|%s|%.2f", st, msg, code, net.clock() - t0))
    ]], { SLUICE_TEST_HOOKS = 1 }, tostring(dns.port))
    assert.is_true(ok, out .. err)
    local st, msg, code, took = out:match("^(%w+)|(.-)|(%w+)|([%d.]+)")
    assert.are.same({ "failure", "timeout" }, { st, code }, out)
    assert.are.equal("resolve silent.test via 127.0.0.1:" .. dns.port .. ": no answer in 400 ms (20 tries, 10 ms timeout)", msg)
    assert.is_true(tonumber(took) < 5, "took " .. took .. " s")
  end)

  it("says a connect_timeout that passed while the name was resolving", function()
    local conn = assert(net.open_tcp("silent.test", 80, { resolver = r, connect_timeout = 200 }))
    local st, msg, code = h.wait_status(conn, 10000)
    assert.are.same({ "failure", "timeout" }, { st, code })
    assert.are.equal("connect silent.test:80: timed out after 200 ms resolving the name (connect_timeout)", msg)
    conn:close()
  end)

  it("answers from the hosts file without asking", function()
    local a = r:resolve("sluice-v4.test")
    assert.are.equal("success", a:wait_until_resolved(5000))
    assert.are.equal("127.0.0.1", ips(a))
    local lit = r:resolve("::1")
    assert.are.equal("success", lit:get_status())
    assert.are.equal("success", r:resolve("localhost"):wait_until_resolved(5000))
    -- a trailing dot names the same host; localhost names (RFC 6761) are never asked for
    for _, name in ipairs({ "sluice-v4.test.", "localhost.", "LocalHost", "a.localhost", "b.localhost." }) do
      local l = r:resolve(name)
      assert.are.equal("success", l:wait_until_resolved(5000), name)
    end
    assert.are.equal(0, dns:queries())
  end)

  it("cancels a lookup whose address is collected", function()
    local slow = assert(net.create_resolver{ nameservers = { "127.0.0.1:" .. dns.port }, timeout = 400, tries = 5 })
    local a = slow:resolve("silent.test")
    assert(h.wait_for(function() return dns:queries("silent%.test") >= 2 end, 5000, 5))
    local before = net.get_stats().addresses
    a = nil
    collectgarbage()
    collectgarbage()
    assert.is_true(h.wait_for(function() return net.get_stats().addresses < before end, 5000, 10))
    local asked = dns:queries("silent%.test")
    h.sleep(1500)   -- the next tries would have come after 400 and 800 ms more
    assert.are.equal(asked, dns:queries("silent%.test"))
    slow:close()
  end)

  it("tries the next nameserver when one refuses", function()
    local two = assert(net.create_resolver{ nameservers = { "127.0.0.1:" .. h.closed_port(), "127.0.0.1:" .. dns.port },
                                            timeout = 300, tries = 2 })
    local a = two:resolve("a.test")
    assert.are.equal("success", a:wait_until_resolved(5000))
    assert.are.equal("127.0.0.1", ips(a))
    two:close()
  end)

  it("connects through open_tcp{resolver = r}", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local conn = assert(net.open_tcp("a.test", srv:get_port(), { resolver = r }))
    assert.are.equal("success", h.wait_status(conn))
    assert.is_truthy(h.accept_one(srv))
    conn:close()
    local bad = assert(net.open_tcp("nx.test", srv:get_port(), { resolver = r }))
    local st, msg, code = h.wait_status(bad)
    assert.are.same({ "failure", "dns" }, { st, code })
    assert.is_truthy(msg:find("nx.test via 127.0.0.1:" .. dns.port, 1, true), msg)
    bad:close()
    srv:close()
  end)

  it("looks up a proxy's name with open_tcp{resolver = r}, for a host name and an address object", function()
    local proxy = assert(net.create_server("127.0.0.1", 0))
    for _, dest in ipairs({ "127.0.0.1", net.resolve_address("127.0.0.1") }) do
      local conn = assert(net.open_tcp(dest, 9, { resolver = r, proxy = "http://a.test:" .. proxy:get_port() }))
      local a = assert(h.accept_one(proxy), "no connection to the proxy for " .. tostring(dest))
      assert.matches("^CONNECT 127%.0%.0%.1:9 HTTP/1%.1", h.read_line(a, 5000))
      a:close()
      conn:close()
    end
    proxy:close()
  end)

  it("asks its servers for a dotless name as given, whatever HOSTALIASES says", function()
    -- c-ares would read that file on the I/O thread (a FIFO there stalls every
    -- connection) and ask for the alias instead: a child, for its environment
    local aliases = os.tmpname()
    h.write_file(aliases, "foo a.test\n")
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      local r = assert(net.create_resolver{ nameservers = { "127.0.0.1:" .. arg[1] }, timeout = 300, tries = 1 })
      print(r:resolve("foo"):wait_until_resolved(5000))
    ]], { HOSTALIASES = aliases }, tostring(dns.port))
    os.remove(aliases)
    assert.is_true(ok, err)
    assert.are.equal("failure\tresolve foo via 127.0.0.1:" .. dns.port .. ": no such name\tdns\n", out)
    assert.is_true(dns:queries("QUERY udp foo ") > 0)
    assert.are.equal(0, dns:queries("a%.test"))
  end)

  it("checks its arguments", function()
    h.assert_raises("string expected, got number", function() r:resolve(1e300) end)
    h.assert_raises("nameserver 'dns.example': not an IP address", function()
      net.create_resolver{ nameservers = { "dns.example" } }
    end)
    h.assert_raises("the port must be 1..65535", function() net.create_resolver{ nameservers = { "127.0.0.1:0" } } end)
    h.assert_raises("the port must be 1..65535", function() net.create_resolver{ nameservers = { "[::1]:99999" } } end)
    h.assert_raises("1..8 nameservers", function() net.create_resolver{ nameservers = {} } end)
    h.assert_raises("nameserver 1 contains a NUL byte", function()
      net.create_resolver{ nameservers = { "127.0.0.1\0:5353" } }
    end)
    h.assert_raises("unknown resolver option 'timeout_ms'", function()
      net.create_resolver{ nameservers = { "::1" }, timeout_ms = 5 }
    end)
    h.assert_raises("timeout must be", function() net.create_resolver{ nameservers = { "::1" }, timeout = 0 } end)
    h.assert_raises("bad argument #1 to 'create_resolver' (timeout must be 1..600000 ms)", function()
      net.create_resolver{ nameservers = { "::1" }, timeout = 1.5 }
    end)
    h.assert_raises("bad argument #1 to 'create_resolver' (tries must be 1..20)", function()
      net.create_resolver{ nameservers = { "::1" }, tries = {} }
    end)
    assert(net.create_resolver{ nameservers = { "::1" }, timeout = 300.0, tries = 2.0 }):close()
    h.assert_raises("option 'resolver' must be a net.resolver", function()
      net.open_tcp("a.test", 80, { resolver = "8.8.8.8" })
    end)
    assert.are.equal("net.resolver([::1]:53)", tostring(assert(net.create_resolver{ nameservers = { "::1" } })))
    local _, err, code = r:resolve("")
    assert.are.equal("invalid", code)
    assert.is_string(err)
    local closed = assert(net.create_resolver{ nameservers = { "127.0.0.1" } })
    closed:close()
    assert.are.same({ nil, "closed", "closed" }, { closed:resolve("a.test") })
    h.assert_raises("option 'resolver' is closed", function() net.open_tcp("a.test", 80, { resolver = closed }) end)
  end)
end)
