-- finalizer_spec: a __gc that closes an object while one of that object's own
-- calls is running (the call's allocations run it) leaves the call safe: receive,
-- read, read_packet and accept, each in a child process that must not crash.
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
