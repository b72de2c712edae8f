-- lib_c: the raw C blocking baseline (bench_client, one process per run), read back
-- into the same figures as the Lua peers. BENCH_BIN names the folder of bench_client.
local M = {}
local bin = (os.getenv("BENCH_BIN") or "build/bench/bin") .. "/bench_client"

local function run(cfg, ...)
  local args = { bin }
  if cfg.tls then
    args[#args + 1] = string.format("--tls '%s' '%s'", cfg.ca, cfg.name)
    if cfg.resume == 1 then args[#args + 1] = "--resume" end
  end
  for _, a in ipairs({ ... }) do args[#args + 1] = tostring(a) end
  local p = assert(io.popen(table.concat(args, " ")))
  local line = p:read("a")
  local ok = p:close()
  assert(ok, "bench_client failed: " .. line)
  local out = {}
  for k, v in line:gmatch("([%w_]+)=(%S+)") do out[k] = tonumber(v) end
  return out
end

function M.bulk(cfg) return run(cfg, "bulk", cfg.port) end

function M.pingpong(cfg)
  local r = run(cfg, "pingpong", cfg.port, cfg.count)
  return { rtt_n = r.count, rtt_mean = r.mean, rtt_p99 = r.p99, rtt_max = r.max }
end

function M.connrate(cfg) return run(cfg, "connrate", cfg.port, cfg.count) end

function M.idle(cfg) return run(cfg, "idle", cfg.port, cfg.idle, cfg.active, cfg.frames) end

return M
