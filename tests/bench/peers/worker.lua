-- worker: runs one workload for one peer in a process of its own, and prints one line
-- "RESULT key=value ..." (seconds, bytes). Started by tests/bench/peers/run.lua:
--
--   lua5.4 worker.lua LIB STYLE WORKLOAD key=value...
-- LIB: luasocket (LuaSocket, LuaSec for TLS), luv, cqueues (luaossl for TLS), sluice.
-- STYLE: how the library is driven (block, spin, loop, frame, wait: see lib_*.lua).
-- Keys: port, tls (1: TLS), ca, name, count, idle, active, frames, and for the
-- frame-budget scenario hs_port, bulk_port, dns_port, handshakes, streams, lookups.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "?.lua;" .. package.path

local lib, style, workload = arg[1], arg[2], arg[3]
local cfg = {}
for i = 4, #arg do
  local k, v = arg[i]:match("^([%w_]+)=(.*)$")
  assert(k, "bad argument " .. arg[i])
  cfg[k] = math.tointeger(tonumber(v)) or tonumber(v) or v
end
cfg.style = style
cfg.tls = cfg.tls == 1

local W = require "common"
local impl = require("lib_" .. lib)
local fn = impl[workload]
local res = fn and fn(cfg)
if not res then   -- the library has no way to do this workload
  print("RESULT unsupported=1")
  os.exit(0)
end
local keys = {}
for k in pairs(res) do keys[#keys + 1] = k end
table.sort(keys)
local out = {}
for _, k in ipairs(keys) do out[#out + 1] = k .. "=" .. W.fmt(res[k]) end
print("RESULT " .. table.concat(out, " "))
