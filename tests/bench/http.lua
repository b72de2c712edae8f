-- http: net.http_request against nginx on loopback, next to curl (and wrk for the
-- request rate) doing the same work in the same run. Prints figures and ratios;
-- never asserts on time.
--
--   lua5.4 tests/bench/http.lua [MiB] [REQUESTS]     (defaults 1024 and 5000)
-- Small requests: REQUESTS keep-alive GETs of a 100-byte file, one after another
-- (sluice and curl, which reuses its connection across the URLs it is given) and
-- 16 at once (sluice and wrk -c16). Download: MiB to a file (sluice output=, curl -o),
-- MB/s and the CPU the caller's thread spent per MB (sluice: the Lua thread polling
-- once a millisecond; the writing happens on a helper thread).
-- Targets (issue 11): requests/s >= curl's; download >= 0.9x curl's; caller CPU per
-- MB near zero.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../lua/?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

local MIB = math.tointeger(tonumber(arg[1] or "1024"))
local REQUESTS = math.tointeger(tonumber(arg[2] or "5000"))

if not h.nginx then
  print("http: nginx is not installed (./run.sh deps): nothing to compare with")
  os.exit(0)
end

local run = h.capture

local caller_cpu = h.caller_cpu

local dir = h.temp_dir()
os.execute("mkdir -p " .. h.shell_quote(dir .. "/www") .. " " .. h.shell_quote(dir .. "/tmp"))
local f = assert(io.open(dir .. "/www/small.bin", "wb"))
f:write(string.rep("s", 100))
f:close()
assert(os.execute(("head -c %d /dev/zero > %s"):format(MIB << 20, h.shell_quote(dir .. "/www/big.bin"))))
local ngx = h.start_nginx(dir, "bench", { rate = "0" })
local base = "http://127.0.0.1:" .. ngx.port

print(string.format("http: nginx on 127.0.0.1:%d; %d small requests, a %d MiB download", ngx.port, REQUESTS, MIB))

-- ---- small requests, one after another ----------------------------------------------
local function sluice_sequential()
  local t0 = net.clock()
  for i = 1, REQUESTS do
    local req = assert(net.http_request{ url = base .. "/small.bin" })
    assert(req:wait(-1) == "success")
    assert(#req:read() == 100)
    req:close()
    if i == 1 then t0 = net.clock() end   -- the connection is made: keep-alive from here
  end
  return (REQUESTS - 1) / (net.clock() - t0)
end

local function curl_sequential()
  local urls = dir .. "/urls.txt"
  local uf = assert(io.open(urls, "w"))
  for _ = 1, REQUESTS do uf:write('url = "', base, '/small.bin"\noutput = "/dev/null"\n') end
  uf:close()
  local t0 = net.clock()
  run("curl -s -K " .. h.shell_quote(urls))
  return REQUESTS / (net.clock() - t0)
end

-- ---- 16 at once --------------------------------------------------------------------------
local function sluice_parallel(total)
  local inflight, done, started = {}, 0, 0
  local t0 = net.clock()
  while done < total do
    while #inflight < 16 and started < total do
      inflight[#inflight + 1] = assert(net.http_request{ url = base .. "/small.bin" })
      started = started + 1
    end
    for i = #inflight, 1, -1 do
      local r = inflight[i]
      local st = r:get_status()
      if st ~= "waiting" then
        assert(st == "success")
        r:close()
        table.remove(inflight, i)
        done = done + 1
      end
    end
    net.wait(1)
  end
  return total / (net.clock() - t0)
end

local function wrk_parallel()
  local out = run("wrk -t1 -c16 -d5s " .. h.shell_quote(base .. "/small.bin") .. " 2>&1")
  return tonumber(out:match("Requests/sec:%s*([%d.]+)")), out
end

-- ---- the download ------------------------------------------------------------------------
local function sluice_download()
  local out = dir .. "/sluice.out"
  local cpu0, t0 = caller_cpu(), net.clock()
  local req = assert(net.http_request{ url = base .. "/big.bin", output = out })
  while req:get_status() == "waiting" do
    req:get_progress()
    net.wait(1)   -- a frame loop polling once a millisecond
  end
  local secs, cpu = net.clock() - t0, caller_cpu() - cpu0
  assert(req:get_status() == "success", select(2, req:get_status()))
  os.remove(out)
  return MIB * 1.048576 / secs, cpu / (MIB * 1.048576)
end

local function curl_download()
  local out = dir .. "/curl.out"
  local t0 = net.clock()
  run("curl -s -o " .. h.shell_quote(out) .. " " .. h.shell_quote(base .. "/big.bin"))
  local secs = net.clock() - t0
  os.remove(out)
  return MIB * 1.048576 / secs
end

local seq_s, seq_c = sluice_sequential(), curl_sequential()
print(string.format("  sequential keep-alive GETs: sluice %8.0f req/s   curl %8.0f req/s   ratio %.2f",
  seq_s, seq_c, seq_s / seq_c))
local par_s = sluice_parallel(REQUESTS)
local par_w = wrk_parallel()
print(string.format("  16 at once:                 sluice %8.0f req/s   wrk  %8.0f req/s   ratio %.2f",
  par_s, par_w or 0, par_w and par_s / par_w or 0))
local dl_s, cpu_mb = sluice_download()
local dl_c = curl_download()
print(string.format("  %d MiB to a file:         sluice %8.1f MB/s    curl %8.1f MB/s    ratio %.2f",
  MIB, dl_s, dl_c, dl_s / dl_c))
print(string.format("  caller thread CPU per MB (sluice, polling every ms): %.3f ms", cpu_mb * 1000))
ngx:stop()
os.execute("rm -rf " .. h.shell_quote(dir))
