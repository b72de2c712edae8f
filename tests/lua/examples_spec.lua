-- examples_spec: the scripts in data/examples/ that end by themselves run and say what
-- they should. ws_chat.lua (its server and two clients on loopback) must show every
-- line of its conversation to both clients in order, and both closing handshakes;
-- demo.lua must take its local HTTP download through and check every byte.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local h = require "helpers"

local root = os.getenv("SLUICE_ROOT") or "."

describe("examples", function()
  it("demo.lua: downloads 8 MiB over HTTP from its local peer in a 60 fps loop, every byte checked", function()
    local source = assert(h.read_file(root .. "/data/examples/demo.lua"))
    local ok, out, err = h.run_lua_child(source, { SLUICE_DEMO_BYTES = "8M" })
    assert(ok, "demo.lua failed:\n" .. out .. err)
    assert.truthy(out:find("downloading 8 MiB from http://127.0.0.1:%d+/demo"), out)
    assert.truthy(out:find("payload verified: every byte as sent", 1, true), out)
    assert.truthy(out:find("received 8.4 MB in", 1, true), out)
    assert.are.equal("", err)
  end)

  it("demo.lua: a host without a valid port is a usage error, not the local download", function()
    local source = assert(h.read_file(root .. "/data/examples/demo.lua"))
    for _, args in ipairs({ { "127.0.0.1", "notaport" }, { "127.0.0.1" }, { "127.0.0.1", "70000" } }) do
      local ok, out, err = h.run_lua_child(source, { SLUICE_DEMO_BYTES = "1M" }, table.unpack(args))
      assert.is_false(ok)
      assert.are.equal("", out)
      assert.truthy(err:find("usage: demo.lua", 1, true), err)
    end
  end)

  it("demo.lua: a URL's file is named after the last segment of its path, else download.bin", function()
    -- the name it picks is printed and the file goes elsewhere (the port is closed anyway)
    local preamble = [[
local net = require "net"
local request = net.http_request
net.http_request = function(opts)
  print("output", opts.output)
  opts.output = os.tmpname()
  os.remove(opts.output)   -- only the name: the download fails and leaves nothing
  return request(opts)
end
]]
    local source = assert(h.read_file(root .. "/data/examples/demo.lua"))
    local base = "http://127.0.0.1:" .. h.closed_port()
    for _, t in ipairs({ { "/", "download.bin" }, { "", "download.bin" }, { "/dir/", "download.bin" },
      { "/dir/file.txt?x=1/y#z", "file.txt" }, { "/a/..", "download.bin" } }) do
      local _, out, err = h.run_lua_child(preamble .. source, { SLUICE_DEMO_OUT = false }, base .. t[1])
      assert.are.equal(t[2], out:match("\noutput\t([^\n]*)"), t[1] .. ": " .. out .. err)
    end
  end)

  it("ws_chat.lua: a server and two clients chat, then close cleanly", function()
    local source = assert(h.read_file(root .. "/data/examples/ws_chat.lua"))
    local ok, out, err = h.run_lua_child(source, {})
    assert(ok, "ws_chat.lua failed:\n" .. out .. err)
    local lines = {
      "ada: hello, anyone here?",
      "bob: hi ada! websockets from a frame loop, nice",
      "ada: and the server is in the same script",
      "bob: see you",
      "ada: bye",
    }
    for _, who in ipairs { "ada", "bob" } do
      local heard = {}
      for line in out:gmatch(who .. "%s*| ([^\n]+)") do
        if not line:find("^%* ") then heard[#heard + 1] = line end
      end
      assert.are.same(lines, heard)
      assert.truthy(out:find("server: " .. who .. " left (closed, close 1000 \"bye\")", 1, true), out)
      assert.truthy(out:find(who .. ": disconnected (closed, close 1000)", 1, true), out)
    end
    assert.truthy(out:find("ws_chat: done\n", 1, true), out)
    assert.are.equal("", err)
  end)

  it("ws_chat.lua: a member who sends binary (not UTF-8) is told off, and the chat goes on", function()
    -- a third member, mallory, joins between ada and bob (most often: the server takes
    -- them in the order they connect), sends "\xff\xfe" as binary and leaves
    local preamble = [[
local net = require "net"
local open, wait, opened, mallory, sent = net.open_websocket, net.wait, 0, nil, false
net.open_websocket = function(url, opts)
  opened = opened + 1
  if opened == 2 then mallory = assert(open(url:gsub("name=%w+", "name=mallory"), opts)) end
  return open(url, opts)
end
net.wait = function(ms)
  if mallory and not sent and mallory:get_status() == "success" then
    assert(mallory:send("\xff\xfe", "binary"))
    mallory:close(1000)
    sent = true
  end
  return wait(ms)
end
]]
    local source = assert(h.read_file(root .. "/data/examples/ws_chat.lua"))
    local ok, out, err = h.run_lua_child(preamble .. source, {})
    assert(ok, "ws_chat.lua failed:\n" .. out .. err)
    assert.truthy(out:find("server: mallory sent 2 bytes of binary; dropped", 1, true), out)
    assert.truthy(out:find("ws_chat: done\n", 1, true), out)
    assert.are.equal("", err)
  end)
end)
