-- plugin_check.lua: run by tests/windows/plugin_check.sh in build/windows/xl_host.exe
-- under wine (Lua static, no SDL in the process): loads plugin/net.dll through one
-- editor's entry point and checks real work with it, polled with net.wait.
--
--   xl_host.exe plugin_check.lua FLAVOR FIRST PLUGIN ECHO_PORT TLS_PORT CA OTHER_CA
--
-- FLAVOR "lite-xl": `require "net"` through the host's native searcher
-- (luaopen_lite_xl_net); "pragtical": xl_host.load_native_plugin(..., "pragtical")
-- (luaopen_pragtical_net), PLUGIN a UTF-8 path. Prints TAP lines numbered from FIRST, no plan (the
-- shell script prints it); exits 1 when a check failed.
local flavor, first, plugin, echo_port, tls_port, ca, other_ca = ...
local n = assert(math.tointeger(tonumber(first)), "FIRST: a number") - 1
local failures = 0

local function check(ok, desc, why)
  n = n + 1
  print(string.format("%s %d - [%s] %s", ok and "ok" or "not ok", n, flavor, desc))
  if not ok then failures = failures + 1 end
  if why ~= nil then print("# " .. tostring(why)) end
  io.stdout:flush()
  return ok
end

-- Load the plugin the way this editor does.
local loaded, net, expected
if flavor == "pragtical" then
  expected = "luaopen_pragtical_net"
  loaded, net = pcall(xl_host.load_native_plugin, "net", plugin, "pragtical")
else
  expected = "luaopen_lite_xl_net"
  package.cpath = plugin:gsub("net%.dll$", "?.dll")
  loaded, net = pcall(require, "net")
end
local entry = package.native_plugins.net and package.native_plugins.net.entry
if not check(loaded and type(net) == "table" and type(net.open_tcp) == "function"
    and entry == expected, "net.dll loads through " .. expected,
    loaded and ("entry " .. tostring(entry) .. " from " .. plugin) or tostring(net)) then
  os.exit(1, true)
end

local sdl, why = net.set_wakeup(true)
check(sdl == false and type(why) == "string",
  "no SDL in the process: set_wakeup(true) gives false and a reason", why)

-- Polls fn (with net.wait between) until it returns non-nil; nil after ms.
local function poll(fn, ms)
  local deadline = net.clock() + ms / 1000
  repeat
    local v = fn()
    if v ~= nil then return v end
    net.wait(50)
  until net.clock() > deadline
end

-- The connection's final status: "success" or "failure", message, code.
local function settle(conn)
  local status, msg, code
  poll(function()
    status, msg, code = conn:get_status()
    if status ~= "waiting" then return true end
  end, 30000)
  return status, msg, code
end

-- TCP: 256 KiB holding every byte value (NUL, CR, LF too) echoed intact.
local function echo_check()
  local parts = {}
  for i = 0, 1023 do
    local t = {}
    for j = 0, 255 do t[j + 1] = (j * 167 + i * 31) % 256 end
    parts[#parts + 1] = string.char(table.unpack(t))
  end
  local data = table.concat(parts)
  local conn, err = net.open_tcp("127.0.0.1", math.tointeger(tonumber(echo_port)))
  if not conn then return false, err end
  local status, msg = settle(conn)
  if status ~= "success" then return false, "connect: " .. tostring(msg) end
  local sent, got = 0, {}
  local received = 0
  poll(function()
    if sent < #data then
      local k, werr = conn:write(data:sub(sent + 1, sent + 65536))
      if not k then return werr end
      sent = sent + k
    end
    local chunk, rerr = conn:read(65536)
    if not chunk then return rerr or "closed early" end
    got[#got + 1], received = chunk, received + #chunk
    if received >= #data then return true end
  end, 60000)
  conn:close()
  local back = table.concat(got)
  return back == data, string.format("sent %d, received %d bytes, equal: %s", sent, #back,
    tostring(back == data))
end
local ok, detail = echo_check()
check(ok, "TCP to the echo peer: 256 KiB of every byte value echoed intact", detail)

-- TLS, verified against the test CA: a line comes back reversed (s_server -rev).
local function tls_check()
  local conn, err = net.open_tcp("127.0.0.1", math.tointeger(tonumber(tls_port)), { ca_file = ca })
  if not conn then return false, err end
  local status, msg = settle(conn)
  if status ~= "success" then return false, "handshake: " .. tostring(msg) end
  local info = conn:get_tls_info()
  conn:write("sluice on windows\n")
  local line = poll(function()
    local l, rerr = conn:read_until("\n")
    if l == nil then return rerr or "closed early" end
    if l ~= "" then return l end
  end, 30000)
  conn:close()
  return line == "swodniw no eciuls\n" and info and info.peer_subject ~= "",
    string.format("reply %s, %s, %s", (tostring(line):gsub("\n", "\\n")), info and info.version,
      info and info.peer_subject)
end
ok, detail = tls_check()
check(ok, "TLS to openssl s_server verified with ca_file: a line comes back reversed", detail)

-- Fails closed: with no CA for it (the default trust), or another CA.
local function must_fail(opts)
  local conn, err = net.open_tcp("127.0.0.1", math.tointeger(tonumber(tls_port)), opts)
  if not conn then return false, err end
  local status, msg, code = settle(conn)
  conn:close()
  return status == "failure" and code == "tls-verify",
    string.format("%s, %s, %s", status, msg, code)
end
ok, detail = must_fail(true)
check(ok, "TLS without the test CA fails verification (tls-verify)", detail)
ok, detail = must_fail({ ca_file = other_ca })
check(ok, "TLS with another CA fails verification (tls-verify)", detail)

os.exit(failures == 0 and 0 or 1, true)
