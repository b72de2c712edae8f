-- ws_chat.lua: a WebSocket chat room in one script. A server on 127.0.0.1 relays
-- every line to everyone in the room; two clients, ada and bob, join, take turns
-- saying a few lines, then leave with the closing handshake. One frame loop drives
-- them all: each frame polls, then net.wait sleeps until the next frame (and wakes
-- early when the network has news). Nothing in it ever blocks on the network.
--
--   lua5.4 data/examples/ws_chat.lua        (or ./run.sh demo chat)
-- LUA_CPATH must find net.so (e.g. "build/release/?.so;;").
local net = require "net"

local FRAME = 1 / 30             -- seconds per frame
local GIVE_UP = 15               -- seconds: the script ends even if something hangs

local SCRIPT = {                 -- who says what, in this order
  { "ada", "hello, anyone here?" },
  { "bob", "hi ada! websockets from a frame loop, nice" },
  { "ada", "and the server is in the same script" },
  { "bob", "see you" },
  { "ada", "bye" },
}

--------------------------------------------------------------------------------
-- The server: accepts websockets on /chat (subprotocol "chat"), names members from
-- the query (?name=ada) and relays each line to every member.

local server = assert(net.create_server("127.0.0.1", 0, {
  websocket = { path = "/chat", protocols = { "chat" } },
}))
local members = {}               -- { ws = websocket, name = string }

local function broadcast(line)
  for _, m in ipairs(members) do
    local ok, err, code = m.ws:send(line)
    if ok == false then          -- "limit": this member reads too slowly; drop the line
      print(("server: %s misses a line (%s)"):format(m.name, err))
    elseif not ok and code ~= "closed" then
      print(("server: cannot send to %s: %s"):format(m.name, err))
    end
  end
end

local function server_frame()
  while true do
    local ws = server:accept()
    if not ws then break end
    local path = ws:get_request()
    local name = path:match("[?&]name=([%w_]+)") or "guest"
    local ip, port = ws:get_peer()
    print(("server: %s joined from %s:%d (protocol %s)"):format(name, ip, port, ws:get_protocol()))
    members[#members + 1] = { ws = ws, name = name }
    local here = {}
    for i, m in ipairs(members) do here[i] = m.name end
    broadcast(("* %s joined (%d here: %s)"):format(name, #members, table.concat(here, ", ")))
  end
  for i = #members, 1, -1 do
    local m = members[i]
    while true do
      local line, kind, code = m.ws:receive()
      if line and kind == "binary" then   -- not a line of chat (and perhaps not UTF-8)
        print(("server: %s sent %d bytes of binary; dropped"):format(m.name, #line))
      elseif line then
        broadcast(m.name .. ": " .. line)
      else
        if kind then             -- nil, message, code: closed (or failed)
          table.remove(members, i)
          local ccode, reason = m.ws:get_close()
          print(("server: %s left (%s, close %s %q)"):format(m.name, code, ccode, reason or ""))
          broadcast("* " .. m.name .. " left")
        end
        break
      end
    end
  end
end

--------------------------------------------------------------------------------
-- The clients: once both are in, each says its SCRIPT lines when their turn comes
-- (after hearing the line before), and leaves once it has heard the last one.

local url = ("ws://127.0.0.1:%d/chat"):format(server:get_port())
local clients = {}
for _, name in ipairs { "ada", "bob" } do
  local ws = assert(net.open_websocket(url .. "?name=" .. name, { protocols = { "chat" } }))
  clients[#clients + 1] = { name = name, other = name == "ada" and "bob" or "ada", ws = ws, heard = 0, said = 0,
    ready = false }
end

local function client_frame(c)
  if c.done then return end
  local status, err = c.ws:get_status()
  if status == "waiting" then return end
  while true do
    local line, kind, code = c.ws:receive()
    if not line then
      if kind then               -- the closing handshake finished (or it failed)
        c.done = true
        print(("%s: disconnected (%s, close %s)"):format(c.name, code, c.ws:get_close()))
        if code ~= "closed" then error(c.name .. ": " .. kind) end
      end
      break
    end
    print(("%-4s| %s"):format(c.name, line))
    local here = line:match("^%* [%w_]+ joined %(%d+ here: (.*)%)$")   -- who is in
    if here and (" " .. here .. ","):find(" " .. c.other .. ",", 1, true) then c.ready = true end
    if not line:find("^%* ") then c.heard = c.heard + 1 end
  end
  if c.done or status ~= "success" then
    if status == "failure" and not c.done then error(c.name .. ": " .. err) end
    return
  end
  local next_line = SCRIPT[c.heard + 1]
  if c.ready and next_line and next_line[1] == c.name and c.said <= c.heard then
    assert(c.ws:send(next_line[2]))
    c.said = c.heard + 1
  elseif c.heard == #SCRIPT and not c.closing then
    c.closing = true
    c.ws:close(1000, "bye")      -- after what is queued; the server answers the close
  end
end

--------------------------------------------------------------------------------
-- The frame loop.

local give_up = net.clock() + GIVE_UP
repeat
  local t = net.clock()
  server_frame()
  for _, c in ipairs(clients) do client_frame(c) end
  local all_done = #members == 0 and clients[1].done and clients[2].done
  -- draw the rest of the frame here, then sleep until the next one:
  net.wait(math.max(0, math.floor((t + FRAME - net.clock()) * 1000)))
until all_done or net.clock() > give_up
server:close()
if net.clock() > give_up then
  print("ws_chat: gave up after " .. GIVE_UP .. " s")
  os.exit(1)
end
print("ws_chat: done")
