-- exit_open: a child process for lifecycle_spec. Opens COUNT connections to a sink peer,
-- writes BYTES bytes on each (connection i sends string.rep(char(65 + i % 26), BYTES)),
-- and ends without closing them, so lua_close finalizes live connections.
-- Usage: exit_open.lua PORT COUNT BYTES [drop]   ("drop": let half become garbage first)
local net = require "net"

local port = assert(math.tointeger(tonumber(arg[1])), "port")
local count = assert(math.tointeger(tonumber(arg[2])), "count")
local bytes = assert(math.tointeger(tonumber(arg[3])), "bytes")
local drop = arg[4] == "drop"

local conns = {}
for i = 1, count do
  local conn = assert(net.open_tcp("127.0.0.1", port))
  local data = string.rep(string.char(65 + i % 26), bytes)
  local pos = 1
  local deadline = net.clock() + 30
  while pos <= #data do
    local n = assert(conn:write(pos == 1 and data or data:sub(pos)))
    pos = pos + n
    if n == 0 then
      assert(net.clock() < deadline, "write timed out")
      net.wait(20)
    end
  end
  if not (drop and i % 2 == 0) then conns[#conns + 1] = conn end
end
if drop then collectgarbage() end
-- Keep the rest reachable to the very end: the interpreter's lua_close finalizes them.
_G.KEEP = conns
