-- address_spec: net.resolve_address — literals, names through the test hosts file
-- (SLUICE_HOSTS_FILE) and its long lines, failures, waiting and tostring.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

local STATUSES = { waiting = true, success = true, failure = true }

describe("net.resolve_address", function()
  it("resolves an IPv4 literal at once", function()
    local addr = assert(net.resolve_address("127.0.0.1"))
    assert.are.equal("success", addr:get_status())
    assert.are.equal("127.0.0.1", addr:get_ip())
    assert.are.equal("127.0.0.1", addr:get_hostname())
    assert.are.equal("success", addr:wait_until_resolved())
  end)

  it("resolves an IPv6 literal at once", function()
    local addr = assert(net.resolve_address("::1"))
    assert.are.equal("success", addr:get_status())
    assert.are.equal("::1", addr:get_ip())
    assert.are.equal("::1", addr:get_hostname())
  end)

  it("resolves localhost through the hosts file", function()
    local addr = assert(net.resolve_address("localhost"))
    assert.are.equal("localhost", addr:get_hostname())
    local status = addr:wait_until_resolved(10000)
    assert.are.equal("success", status)
    local ip = addr:get_ip()
    assert.is_true(ip == "127.0.0.1" or ip == "::1", "unexpected ip " .. tostring(ip))
  end)

  it("resolves single-family test names to the right family", function()
    local v4 = assert(net.resolve_address("sluice-v4.test"))
    local v6 = assert(net.resolve_address("sluice-v6.test"))
    assert.are.equal("success", v4:wait_until_resolved(10000))
    assert.are.equal("success", v6:wait_until_resolved(10000))
    assert.are.equal("127.0.0.1", v4:get_ip())
    assert.are.equal("::1", v6:get_ip())
    local dot = assert(net.resolve_address("sluice-v4.test."))   -- the same host, fully qualified
    assert.are.equal("success", dot:wait_until_resolved(10000))
    assert.are.equal("127.0.0.1", dot:get_ip())
  end)

  it("keeps the one IPv4 address of a name with 17 IPv6 ones, so it can be reached", function()
    h.need_hosts_file()
    local srv = assert(net.create_server("127.0.0.1", 0))
    for _, opts in ipairs({ { family = "inet" }, { connect_timeout = 5000 } }) do
      local conn = assert(net.open_tcp("sluice-many6.test", srv:get_port(), opts))
      local status, msg = h.wait_status(conn)
      assert.are.equal("success", status, msg)
      assert.are.equal("127.0.0.1", conn:get_peer())
      conn:close()
    end
    srv:close()
  end)

  it("resolves a name listed in both families", function()
    local addr = assert(net.resolve_address("sluice-dual.test"))
    assert.are.equal("success", addr:wait_until_resolved(10000))
    local ip = addr:get_ip()
    assert.is_true(ip == "127.0.0.1" or ip == "::1", "unexpected ip " .. tostring(ip))
  end)

  it("reads a hosts-file comment from its '#' on, inside a token too", function()
    local hash = assert(net.resolve_address("sluice-hash.test"))
    assert.are.equal("success", hash:wait_until_resolved(10000))
    assert.are.equal("127.0.0.1", hash:get_ip())
    local after = assert(net.resolve_address("sluice-after-hash.test"))
    assert.are.equal("failure", (after:wait_until_resolved(10000)))
  end)

  it("reports a name that cannot resolve as failure with code dns", function()
    local addr = assert(net.resolve_address("no-such-host.invalid"))
    local status, msg, code = addr:wait_until_resolved(10000)
    assert.are.equal("failure", status)
    assert.are.equal("string", type(msg))
    assert.is_true(#msg > 0)
    assert.are.equal("dns", code)
    assert.is_nil(addr:get_ip())
    -- the status stays put
    local s2, m2, c2 = addr:get_status()
    assert.are.same({ "failure", msg, "dns" }, { s2, m2, c2 })
    assert.are.equal("no-such-host.invalid", addr:get_hostname())
  end)

  it("gives no ip while still waiting, and a valid status with a zero timeout", function()
    local addr = assert(net.resolve_address("sluice-v4.test"))
    local status = addr:wait_until_resolved(0)
    assert.is_true(STATUSES[status], "bad status " .. tostring(status))
    -- the resolver may finish at any moment, but an ip only ever comes with success
    local ip = addr:get_ip()
    if ip then assert.are.equal("success", addr:get_status()) end
    assert.is_true(STATUSES[addr:get_status()])
    -- -1 waits until done
    assert.are.equal("success", addr:wait_until_resolved(-1))
    assert.are.equal("127.0.0.1", addr:get_ip())
  end)

  it("returns the final status from wait_until_resolved with a positive timeout", function()
    local addr = assert(net.resolve_address("no-such-host.invalid"))
    local status, _, code = addr:wait_until_resolved(-1)
    assert.are.equal("failure", status)
    assert.are.equal("dns", code)
    -- waiting again on a finished address returns at once with the same answer
    status, _, code = addr:wait_until_resolved(5000)
    assert.are.equal("failure", status)
    assert.are.equal("dns", code)
  end)

  it("shows type, host and state in tostring", function()
    local addr = assert(net.resolve_address("127.0.0.1"))
    assert.are.equal("net.address(127.0.0.1, success)", tostring(addr))
    -- a name: "net.address(localhost, success)", the ip may follow the name
    local named = assert(net.resolve_address("localhost"))
    named:wait_until_resolved(10000)
    local s = tostring(named)
    assert.truthy(s:find("^net%.address%(localhost[ ,]") and s:find(", success%)$"), s)
    local bad = assert(net.resolve_address("no-such-host.invalid"))
    bad:wait_until_resolved(10000)
    s = tostring(bad)
    assert.truthy(s:find("^net%.address%(no%-such%-host%.invalid[ ,]") and s:find(", failure%)$"), s)
  end)

  it("rejects impossible host names with code invalid", function()
    for _, host in ipairs({ "", "a\0b", string.rep("a", 254), string.rep("x", 10000) }) do
      local addr, msg, code = net.resolve_address(host)
      assert.is_nil(addr)
      assert.are.equal("string", type(msg))
      assert.are.equal("invalid", code)
    end
  end)

  it("says at once that a string with ':' that is no IP address is no name either", function()
    local cases = {
      ["example.test:80"] = "a port is an argument of its own",
      ["fe80::1%sluice-no-such-if"] = "no such zone",
      ["fe80::zz%1"] = "not a valid IPv6 address",
      ["1:2:3"] = "neither an IP address nor a host name",
    }
    for host, why in pairs(cases) do
      local addr, msg, code = net.resolve_address(host)
      assert.is_nil(addr, host)
      assert.are.equal("invalid", code, host)
      assert.truthy(msg:find(why, 1, true), host .. ": " .. tostring(msg))
      assert.are.equal("resolve " .. host .. ": ", msg:sub(1, #host + 10))
      local conn, cmsg, ccode = net.open_tcp(host, 80)
      assert.is_nil(conn, host)
      assert.are.equal("invalid", ccode, host)
      assert.are.equal(msg, cmsg)
    end
    local resolver = assert(net.create_resolver { nameservers = { "127.0.0.1:9" } })
    local addr, _, code = resolver:resolve("example.test:80")
    assert.is_nil(addr)
    assert.are.equal("invalid", code)
    resolver:close()
    -- scoped literals with a zone this system has still parse
    assert.are.equal("success", assert(net.resolve_address("fe80::1%1")):get_status())
  end)

  it("accepts a 253-byte name (it just does not resolve)", function()
    local name = string.rep("a", 63) .. "." .. string.rep("b", 63) .. "." ..
      string.rep("c", 63) .. "." .. string.rep("d", 56) .. ".test"
    assert.are.equal(253, #name)
    local addr = assert(net.resolve_address(name))
    local status, _, code = addr:wait_until_resolved(10000)
    assert.are.equal("failure", status)
    assert.are.equal("dns", code)
  end)

  it("raises on a non-string host", function()
    local ok, err = pcall(function() return net.resolve_address({}) end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("bad argument #1 to 'resolve_address'", 1, true), err)
    ok = pcall(function() return net.resolve_address() end)
    assert.is_false(ok)
    h.assert_raises("string expected, got number", function() net.resolve_address(127) end)   -- not 0.0.0.127
  end)

  it("reads a long hosts-file line whole, and skips one past the limit whole", function()
    -- 511 bytes end inside "abc10.1.2.3": a reader that cut the line there would
    -- match "abc", and take "10.1.2.3" for the address of "evil.test"
    local line = "10.9.8.7"
    while #line + 12 <= 511 - 4 - 2 do line = line .. string.format(" alias%04d.x", #line) end
    line = line .. " " .. string.rep("p", 511 - 4 - #line - 1) .. " abc10.1.2.3 evil.test"
    assert.are.equal("abc", line:sub(509, 511))
    -- over the limit; cut in 511-byte pieces, one piece would start at "10.6.6.6"
    local huge = "10.5.5.5 " .. string.rep("q", 511 * 137 - 10) .. " 10.6.6.6 huge.test"
    local hosts = os.tmpname()
    h.write_file(hosts, line .. "\n" .. huge .. "\n10.7.7.7 after.test\n")
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      for _, name in ipairs{ "abc", "abc10.1.2.3", "evil.test", "alias0008.x", "huge.test", "after.test" } do
        local a = net.resolve_address(name)
        print(name, (a:wait_until_resolved(5000)), a:get_ip() or "-")
      end
    ]], { SLUICE_HOSTS_FILE = hosts })
    os.remove(hosts)
    assert.is_true(ok, err)
    assert.are.equal(table.concat({
      "abc\tfailure\t-",
      "abc10.1.2.3\tsuccess\t10.9.8.7",
      "evil.test\tsuccess\t10.9.8.7",
      "alias0008.x\tsuccess\t10.9.8.7",
      "huge.test\tfailure\t-",
      "after.test\tsuccess\t10.7.7.7",
    }, "\n") .. "\n", out)
  end)

  it("answers from the hosts file as it is now: edited, replaced, removed, long", function()
    local hosts = os.tmpname()
    h.write_file(hosts, "10.1.1.1 edit.test\n")
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      local path = arg[1]
      local function put(text)
        local f = assert(io.open(path, "wb"))
        f:write(text)
        f:close()
      end
      local function ask(name)
        local a = net.resolve_address(name)
        local s, msg = a:wait_until_resolved(5000)
        print(name, s, s == "success" and a:get_ip() or msg)
      end
      ask("edit.test")
      put("10.2.2.2 edit.test  other.test\n")                 -- in place, longer
      ask("edit.test")
      ask("OTHER.test.")
      local t = net.clock()
      while net.clock() < t + 0.05 do net.wait(10) end
      put("10.3.3.3 edit.test  other.test\n")                 -- in place, as long: the time tells
      ask("edit.test")
      local new = path .. ".new"                              -- replaced, as long
      local f = assert(io.open(new, "wb"))
      f:write("10.4.4.4 edit.test  other.test\n")
      f:close()
      if not os.rename(new, path) then assert(os.remove(path)) assert(os.rename(new, path)) end   -- Windows
      ask("edit.test")
      os.remove(path)
      ask("edit.test")
      local lines = {}                                        -- long: the name last
      for i = 1, 150000 do lines[i] = string.format("10.%d.%d.%d n%d.test", i >> 16, (i >> 8) & 255, i & 255, i) end
      lines[#lines + 1] = "::1 edit.test\n127.0.0.1 n7.test edit.test\n"
      put(table.concat(lines, "\n"))
      ask("edit.test")
      local srv = assert(net.create_server("127.0.0.1", 0))   -- its second address is there too
      local c = assert(net.open_tcp("edit.test", srv:get_port(), { family = "inet" }))
      while c:get_status() == "waiting" do net.wait(10) end
      print("inet", c:get_status(), (c:get_peer()))
      ask("n7.test")
      ask("n150000.test")
      ask("n150001.test")
    ]], { SLUICE_HOSTS_FILE = hosts }, hosts)
    os.remove(hosts)
    assert.is_true(ok, err)
    assert.are.equal(table.concat({
      "edit.test\tsuccess\t10.1.1.1",
      "edit.test\tsuccess\t10.2.2.2",
      "OTHER.test.\tsuccess\t10.2.2.2",
      "edit.test\tsuccess\t10.3.3.3",
      "edit.test\tsuccess\t10.4.4.4",
      "edit.test\tfailure\tresolve edit.test: cannot read the test hosts file",
      "edit.test\tsuccess\t::1",
      "inet\tsuccess\t127.0.0.1",
      "n7.test\tsuccess\t10.0.0.7",
      "n150000.test\tsuccess\t10.2.73.240",
      "n150001.test\tfailure\tresolve n150001.test: not in the test hosts file",
    }, "\n") .. "\n", out)
  end)

  it("lets many addresses be collected", function()
    collectgarbage()
    collectgarbage()
    local before = net.get_stats().addresses
    for i = 1, 200 do
      net.resolve_address(i % 2 == 0 and "sluice-v4.test" or "127.0.0.1")
    end
    h.wait_for(function()
      collectgarbage()
      collectgarbage()
      return net.get_stats().addresses <= before
    end, 10000)
    assert.is_true(net.get_stats().addresses <= before)
  end)
  it("answers a released address as closed, and raises when one is handed on", function()
    local a = net.resolve_address("127.0.0.1")
    do local _ <close> = a end
    assert.are.same({ "failure", "address was released", "closed" }, { a:get_status() })
    assert.are.same({ "failure", "address was released", "closed" }, { a:wait_until_resolved(10) })
    assert.is_nil(a:get_ip())
    assert.is_nil(a:get_hostname())
    assert.are.equal("net.address(released)", tostring(a))
    local function raises(text, f)
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.truthy(tostring(err):find(text, 1, true), err)
    end
    raises("bad argument #1 to 'open_tcp' (net.address was released)", function() return net.open_tcp(a, 9) end)
    raises("bad argument #1 to 'create_server' (net.address was released)", function() return net.create_server(a, 0) end)
    raises("bad argument #1 to 'open_udp' (net.address was released)", function() return net.open_udp(a, 0) end)
    local u = assert(net.open_udp("127.0.0.1", 0))
    raises("bad argument #1 to 'send' (net.address was released)", function() return u:send(a, 9, "x") end)
    u:close()
  end)
end)
