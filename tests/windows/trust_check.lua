-- trust_check.lua: one verified TLS connection with no CA file, so the Windows
-- stores decide (tests/windows/trust_check.sh). Prints "status<TAB>code<TAB>message".
--   lua.exe trust_check.lua PORT [NAME]
local net = require "net"
local port, name = math.tointeger(tonumber(arg[1])), arg[2]
local conn = assert(net.open_tcp("127.0.0.1", port, { server_name = name, resume = false }))
local status, msg, code
local deadline = net.clock() + 60
repeat
  net.wait(50)
  status, msg, code = conn:get_status()
until status ~= "waiting" or net.clock() > deadline
conn:close()
print(status, code, msg)
