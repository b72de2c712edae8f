-- finalizer_spec: a __gc that closes an object while one of that object's own
-- calls is running (the call's allocations run it) leaves the call safe: receive,
-- read, read_packet and accept, each in a child process that must not crash; one that
-- reads it leaves each read its own bytes; one that releases an object while its
-- failure is returned leaves the message whole.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local h = require "helpers"

-- Runs body 300 times in a child process, after setup; closer(f) makes a wrapper whose __gc is f.
local function child(setup, body)
  local ok, out, err = h.run_lua_child([[
    local net = require "net"
    collectgarbage("generational")   -- a young wrapper is collected at the next allocation
    local function closer(f) do local w = setmetatable({}, {__gc = f}) end end
    ]] .. setup .. [[
    for i = 1, 300 do
    ]] .. body .. [[
    end
    print("ok")
  ]])
  assert.is_true(ok, "the child crashed: " .. out .. err)
  assert.equal("ok\n", out)
end

describe("a finalizer closing the object whose call runs", function()
  it("leaves udp:receive safe", function()
    child("", [[
      local u = assert(net.open_udp("127.0.0.1", 0))
      for k = 1, 3 do u:send("127.0.0.1", u:get_port(), ("q"):rep(2000)) end
      local t0 = net.clock()
      while u:get_stats().received < 3 and net.clock() - t0 < 1 do net.wait(5) end
      closer(function() u:close() end)
      for k = 1, 4 do if not u:receive() then break end end
      u:close()
    ]])
  end)

  local pair = [[
      local c = assert(net.open_tcp("127.0.0.1", srv:get_port()))
      local a
      repeat a = srv:accept(); if not a then net.wait(5) end until a
  ]]
  local wait_for = [[
      local t0 = net.clock()
      while c:available() < WANT and net.clock() - t0 < 2 do net.wait(5) end
      closer(function() c:close() end)
  ]]

  it("leaves tcp:read safe", function()
    child('local srv = assert(net.create_server("127.0.0.1", 0))', pair .. [[
      a:write(("r"):rep(3000))
    ]] .. wait_for:gsub("WANT", "3000") .. [[
      for k = 1, 6 do if not c:read(500) then break end end
      c:close(); a:close()
    ]])
  end)

  it("leaves tcp:read_packet safe", function()
    child('local srv = assert(net.create_server("127.0.0.1", 0))', pair .. [[
      for k = 1, 3 do a:write_packet(("p"):rep(20000)) end
    ]] .. wait_for:gsub("WANT", "60012") .. [[
      for k = 1, 3 do if not c:read_packet() then break end end
      c:close(); a:close()
    ]])
  end)

  it("leaves server:accept safe", function()
    child("", [[
      local s = assert(net.create_server("127.0.0.1", 0))
      closer(function() s:close() end)
      for k = 1, 3 do s:accept() end
      s:close()
    ]])
  end)
end)

-- A finalizer that reads the connection while one of its reads makes its string:
-- each gets bytes of its own, in stream order, none twice, none lost. The child
-- logs every piece as it returns; their concatenation must be the stream.
describe("a finalizer reading the object whose read runs", function()
  local function reentry(mode, size, outer, inner)
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      local mode, size, outer, inner = ...
      size = tonumber(size)
      local srv = assert(net.create_server("127.0.0.1", 0))
      local c = assert(net.open_tcp("127.0.0.1", srv:get_port()))
      local s
      repeat s = srv:accept(); if not s then net.wait(5) end until s
      local recs = {}
      for i = 1, 120000 // size do recs[i] = string.format("%05d", i) .. ("x"):rep(size - 6) .. "\n" end
      local payload = table.concat(recs)
      local want = #payload
      if mode == "packet" then
        for i = 1, #recs do assert(s:write_packet(recs[i])) end
        want = want + 4 * #recs
      else
        local off = 1
        while off <= #payload do off = off + assert(s:write(payload, off)); net.wait(1) end
      end
      local t0 = net.clock()
      while c:available() < want and net.clock() - t0 < 5 do net.wait(5) end
      assert(c:available() == want, "not all arrived")
      local read = load("local c = ... return " .. outer)
      local read_inner = load("local c = ... return " .. inner)
      local log, busy = {}, false
      local function reader()
        setmetatable({}, {__gc = function()
          if busy then return end
          busy = true
          local d = read_inner(c)
          if d and d ~= "" then log[#log + 1] = d end
          busy = false
        end})
      end
      collectgarbage("generational")   -- a young reader is collected at the next collection
      while true do
        reader()
        local grow = {}
        for j = 1, 20000 do grow[j] = j end   -- grows without a collection: one is due in the read
        local d = read(c)
        if not d or d == "" then break end
        log[#log + 1] = d
      end
      local all = table.concat(log)
      if all ~= payload then
        local at = 1
        while all:sub(at, at) == payload:sub(at, at) do at = at + 1 end
        print(string.format("got %d of %d bytes; first difference at %d", #all, #payload, at))
      else
        print("ok")
      end
    ]], nil, mode, size, outer, inner)
    assert.is_true(ok, "the child failed: " .. out .. err)
    assert.equal("ok\n", out)
  end

  it("keeps tcp:read's bytes whole, short and long reads", function()
    reentry("stream", 6, "c:read(4000)", "c:read(7)")
    reentry("stream", 6, "c:read(40000)", "c:read(7)")
  end)

  it("keeps tcp:read_until's lines whole", function()
    reentry("stream", 200, 'c:read_until("\\n")', 'c:read_until("\\n")')
  end)

  it("keeps tcp:read_packet's messages whole", function()
    reentry("packet", 2000, "c:read_packet()", "c:read_packet()")
  end)
end)

describe("a finalizer closing an object while its failure is returned", function()
  it("leaves the message whole", function()
    child([[
      local addrs = {}
      for i = 1, 300 do addrs[i] = net.resolve_address("nx" .. i .. ".test") end
      for i = 1, 300 do addrs[i]:wait_until_resolved(2000) end
    ]], [[
      local a = addrs[i]
      closer(function() getmetatable(a).__close(a) end)
      local grow = {}
      for j = 1, 20000 do grow[j] = j end   -- grows without a collection: one is due at the next push
      local st, msg = a:get_status()
      assert(msg == "resolve nx" .. i .. ".test: not in the test hosts file" or msg == "address was released", msg)
    ]])
  end)
end)
