-- run: the side-by-side benchmarks. Starts the C servers, runs every workload for every
-- peer that can do it (each run a worker process of its own), prints a table per
-- workload with ratios against raw C and sluice against the best Lua peer, and writes
-- OUT/results.json and OUT/*.png (gnuplot). Figures only: nothing asserts on them.
-- Called by scripts/bench_peers.sh (`./run.sh bench peers`), which builds what it needs:
--
--   lua5.4 tests/bench/peers/run.lua [--quick] [--only LIB,...] [--workloads W,...]
--                                     [--tap] [--out DIR]
-- --only: libraries to run (c, luasocket, luv, cqueues, sluice); --workloads: the
-- workloads to run by name (bulk_plain, idle, frame_budget...); --tap: also print TAP
-- lines (one per run: "ok" when the run gave figures, whatever they are); --rounds N:
-- runs of each peer and workload, the best main figure kept (default 2, --quick 1).
-- Environment: BENCH_BIN (bench_server, bench_client), BENCH_PKI (tests/tools/mkcerts.sh
-- output), SLUICE_BUILD (its peer), LUA_CPATH (net.so), SLUICE_LUA (the interpreter).
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "?.lua;" .. package.path

local opts = { out = "build/bench", only = nil, quick = false, tap = false, rounds = nil }
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--quick" then opts.quick = true
    elseif a == "--tap" then opts.tap = true
    elseif a == "--only" then i = i + 1; opts.only = arg[i]
    elseif a == "--workloads" then i = i + 1; opts.workloads = arg[i]
    elseif a == "--out" then i = i + 1; opts.out = arg[i]
    elseif a == "--rounds" then i = i + 1; opts.rounds = math.tointeger(tonumber(arg[i]))
    else error("run.lua: unknown argument " .. a) end
    i = i + 1
  end
end

local BIN = os.getenv("BENCH_BIN") or "build/bench/bin"
local PKI = os.getenv("BENCH_PKI") or "build/bench/pki"
local PEER = (os.getenv("SLUICE_BUILD") or "build/release") .. "/peer"
local LUA = os.getenv("SLUICE_LUA") or "lua5.4"

-- Sizes: the full run, and --quick (seconds in all).
local S = opts.quick and {
  bulk = 32 << 20, tls_bulk = 8 << 20, pings = 500, frame_pings = 30, conns = 100,
  tls_conns = 10, idle = 200, active = 20, idle_frames = 20, frames = 30, handshakes = 10,
  streams = 4, stream_bytes = 1 << 20, lookups = 4, timeout = 120,
} or {
  bulk = 1 << 30, tls_bulk = 256 << 20, pings = 20000, frame_pings = 60, conns = 2000,
  tls_conns = 200, idle = 10000, active = 100, idle_frames = 300, frames = 300,
  handshakes = 50, streams = 20, stream_bytes = 16 << 20, lookups = 20, timeout = 600,
}

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function sleep(s) os.execute("sleep " .. s) end

-- Servers ---------------------------------------------------------------------------
local servers = {}

local function start(name, cmd)
  local out = os.tmpname()
  local p = assert(io.popen(string.format("exec %s >%s 2>%s.err </dev/null & echo $!", cmd,
    sh_quote(out), sh_quote(out))))
  local pid = math.tointeger(tonumber(p:read("l")))
  p:close()
  local srv = { pid = pid, out = out, name = name }
  servers[#servers + 1] = srv
  for _ = 1, 200 do
    local port = (read_file(out) or ""):match("^(%d+)\n")
    if port then srv.port = math.tointeger(tonumber(port)) return srv end
    sleep(0.05)
  end
  error(name .. " did not start: " .. (read_file(out .. ".err") or ""))
end

local function stop_servers()
  for _, s in ipairs(servers) do
    os.execute("kill " .. s.pid .. " 2>/dev/null")
    os.remove(s.out)
    os.remove(s.out .. ".err")
  end
  servers = {}
end

-- Peers and workloads ---------------------------------------------------------------
local PEERS = {
  { id = "c", lib = "c", style = "block", label = "raw C blocking" },
  -- the TLS library sluice uses, alone: its cipher speed is the ceiling of sluice's TLS bulk
  { id = "mbedtls", lib = "mbedtls", style = "block", label = "mbedTLS blocking (C)",
    only = { bulk_tls = true } },
  { id = "luasocket", lib = "luasocket", style = "block", label = "LuaSocket blocking" },
  { id = "luasocket_spin", lib = "luasocket", style = "spin", label = "LuaSocket settimeout(0) spin" },
  { id = "luv", lib = "luv", style = "loop", label = "luv" },
  { id = "cqueues", lib = "cqueues", style = "loop", label = "cqueues" },
  { id = "sluice_frame", lib = "sluice", style = "frame", label = "sluice frame-paced" },
  -- a frame loop reads at most what the buffer held since the last frame; the default
  -- buffer grows for it (from 1 MiB, doubling to 64 MiB): against a fixed 32 MiB
  { id = "sluice_frame_32m", lib = "sluice", style = "frame", label = "sluice frame, 32 MiB buffer",
    args = { buffer = 32 << 20 }, only = { bulk_plain = true, bulk_tls = true } },
  { id = "sluice_spin", lib = "sluice", style = "spin", label = "sluice tight loop" },
  { id = "sluice_wait", lib = "sluice", style = "wait", label = "sluice net.wait" },
}

local function mbps(r) return r.bytes / r.secs / 1e6 end
local function us(x) return type(x) == "number" and x * 1e6 or x end   -- "n/a": too few samples

-- Each workload: its worker name, its arguments (from the servers), its columns (the
-- first is the main figure, charted and compared), which peers run it, and a check of
-- the work done (all the bytes, all the connections): a run that fails it is an error.
local WORKLOADS = {
  { name = "bulk_plain", worker = "bulk", title = "plain bulk receive",
    args = function(sv) return { port = sv.source.port } end,
    check = function(r) return r.bytes == S.bulk, "received " .. r.bytes .. " bytes of " .. S.bulk end,
    cols = { { "MB/s", mbps, "high" }, { "client CPU %", function(r) return 100 * r.cpu / r.secs end } } },
  { name = "bulk_tls", worker = "bulk", title = "TLS bulk receive", tls = true,
    args = function(sv) return { port = sv.tls_source.port } end,
    check = function(r) return r.bytes == S.tls_bulk, "received " .. r.bytes .. " bytes of " .. S.tls_bulk end,
    cols = { { "MB/s", mbps, "high" }, { "client CPU %", function(r) return 100 * r.cpu / r.secs end } } },
  { name = "pingpong", worker = "pingpong", title = "64-byte ping-pong", log = true,
    args = function(sv, p)
      return { port = sv.echo.port, count = p.style == "frame" and S.frame_pings or S.pings }
    end,
    check = function(r) return r.rtt_n > 0, "no round trip" end,
    cols = { { "mean µs", function(r) return us(r.rtt_mean) end, "low" },
      { "p99 µs", function(r) return us(r.rtt_p99) end } } },
  { name = "connrate_plain", worker = "connrate", title = "connections per second, one at a time (plain)",
    note = "sluice frame-paced keeps 64 in flight here: one at a time, a frame each, would be 60/s",
    args = function(sv) return { port = sv.close.port, count = S.conns } end,
    check = function(r) return r.count == S.conns, r.count .. " connections of " .. S.conns end,
    cols = { { "conn/s", function(r) return r.count / r.secs end, "high" },
      { "client CPU %", function(r) return 100 * r.cpu / r.secs end } } },
  -- the event-driven peers keep 64 connects in flight; the blocking ones cannot
  { name = "connrate_many", worker = "connrate", title = "connections per second, 64 in flight (plain)",
    note = "raw C connects one at a time here (a blocking client): its row is the baseline still",
    skip = { luasocket = true, luasocket_spin = true },
    args = function(sv) return { port = sv.close.port, count = S.conns, inflight = 64 } end,
    check = function(r) return r.count == S.conns, r.count .. " connections of " .. S.conns end,
    cols = { { "conn/s", function(r) return r.count / r.secs end, "high" },
      { "client CPU %", function(r) return 100 * r.cpu / r.secs end } } },
  { name = "connrate_tls", worker = "connrate", title = "connections per second (TLS, P-256, full handshakes)",
    tls = true,
    args = function(sv) return { port = sv.tls_close.port, count = S.tls_conns, resume = 0 } end,
    check = function(r) return r.count == S.tls_conns, r.count .. " connections of " .. S.tls_conns end,
    cols = { { "conn/s", function(r) return r.count / r.secs end, "high" },
      { "client CPU %", function(r) return 100 * r.cpu / r.secs end } } },
  -- each connection offers the previous one's session (LuaSec and cqueues' runs do not)
  { name = "connrate_tls_resumed", worker = "connrate", title = "connections per second (TLS, resumed sessions)",
    tls = true, skip = { luasocket = true, luasocket_spin = true, cqueues = true },
    args = function(sv) return { port = sv.tls_close.port, count = S.tls_conns * 5, resume = 1 } end,
    check = function(r) return r.count == S.tls_conns * 5, r.count .. " connections of " .. S.tls_conns * 5 end,
    cols = { { "conn/s", function(r) return r.count / r.secs end, "high" },
      { "client CPU %", function(r) return 100 * r.cpu / r.secs end } } },
  { name = "idle", worker = "idle", title = "idle connections", log = true,
    args = function(sv) return { port = sv.echo.port, idle = S.idle, active = S.active,
      frames = S.idle_frames } end,
    check = function(r) return r.idle == S.idle, r.idle .. " idle connections of " .. S.idle end,
    cols = { { "KiB per conn (RSS)", function(r) return r.rss_per_conn / 1024 end, "low" },
      { "after 1 B each way", function(r) return r.rss_used_per_conn / 1024 end },
      { "frame median µs", function(r) return us(r.frame_median) end },
      { "frame p99 µs", function(r) return us(r.frame_p99) end } } },
  { name = "frame_budget", worker = "frame", title = "frame budget (60 fps)", log = true,
    skip = { c = true, sluice_spin = true, sluice_wait = true },
    -- a peer that could not run the handshakes (luv: no TLS) is not compared
    -- nor one whose handshakes did not all complete: its calls had less to do
    partial = function(r) return r.handshakes == "n/a" or (tonumber(r.handshakes) or 0) < S.handshakes end,
    args = function(sv)
      return { hs_port = sv.rsa4096.port, bulk_port = sv.streams.port, dns_port = sv.dns.port,
        handshakes = S.handshakes, streams = S.streams, lookups = S.lookups, frames = S.frames }
    end,
    cols = { { "worst call µs", function(r) return us(r.call_max) end, "low" },
      { "p99.9 call µs", function(r) return us(r.call_p999) end },
      { "calls timed", function(r) return r.call_n end },
      { "worst frame ms", function(r) return r.frame_max * 1e3 end },
      { "frames > 16.7 ms", function(r) return r.frames_over end },
      { "handshakes", function(r) return r.handshakes end },
      { "DNS answered", function(r) return r.dns_answered end },
      { "worst call is", function(r) return r.worst_call end },
      { "noise worst µs", function(r) return us(r.noise_max) end } } },
}

-- Runs one worker; returns the figures table, or nil and what went wrong.
local function run_worker(w, peer, sv)
  local a = w.args(sv, peer)
  for k, v in pairs(peer.args or {}) do a[k] = v end
  if w.tls or w.name == "frame_budget" then
    a.ca, a.name = PKI .. "/ca.pem", "localhost"
  end
  if w.tls then a.tls = 1 end
  local keys = {}
  for k in pairs(a) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = sh_quote(k .. "=" .. tostring(a[k])) end
  local err = os.tmpname()
  local cmd = string.format("timeout -k 5 %d %s %s %s %s %s %s 2>%s", S.timeout, sh_quote(LUA),
    sh_quote(here .. "worker.lua"), peer.lib, peer.style, w.worker, table.concat(parts, " "),
    sh_quote(err))
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok, _, code = p:close()
  local msg = read_file(err) or ""
  os.remove(err)
  local line = out:match("RESULT ([^\n]*)")
  if not ok or not line then
    local missing = msg:match("module '([^']+)' not found")
    if missing then return nil, "not installed (" .. missing .. ")" end   -- run with --no-deps
    local first = msg:match("[^\n]+") or ("exit " .. tostring(code))
    return nil, first
  end
  local r = {}
  for k, v in line:gmatch("([%w_]+)=(%S+)") do r[k] = tonumber(v) or v end
  if r.unsupported then return nil, "unsupported" end
  if w.check then
    local good, what = w.check(r)
    if not good then return nil, what end
  end
  return r
end

-- JSON ------------------------------------------------------------------------------
local function json(v, ind)
  ind = ind or ""
  local t = type(v)
  if t == "table" then
    local inner = ind .. "  "
    if #v > 0 or next(v) == nil then
      local items = {}
      for i = 1, #v do items[i] = inner .. json(v[i], inner) end
      return #items == 0 and "[]" or "[\n" .. table.concat(items, ",\n") .. "\n" .. ind .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local items = {}
    for _, k in ipairs(keys) do
      items[#items + 1] = inner .. string.format("%q", k) .. ": " .. json(v[k], inner)
    end
    return "{\n" .. table.concat(items, ",\n") .. "\n" .. ind .. "}"
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return math.type(v) == "integer" and tostring(v) or string.format("%.6g", v)
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", c:byte())
    end) .. '"'
  elseif t == "boolean" then return tostring(v) end
  return "null"
end

-- Tables and charts -----------------------------------------------------------------
local function fmt_fig(x)
  if type(x) ~= "number" then return tostring(x) end
  if math.type(x) == "integer" then return tostring(x) end
  if x >= 100 then return string.format("%.0f", x) end
  if x >= 10 then return string.format("%.1f", x) end
  return string.format("%.2f", x)
end

local function is_lua_peer(id) return id ~= "c" and id ~= "mbedtls" and not id:match("^sluice") end

-- Prints the table of one workload; fills w.result (for the JSON) and returns it.
local function report(w, rows)
  local main = w.cols[1]
  local base = rows.c and rows.c.figs[1]
  local best_lua, best_lua_id
  for _, p in ipairs(PEERS) do
    local row = rows[p.id]
    if row and row.figs and is_lua_peer(p.id) and type(row.figs[1]) == "number"
      and not (w.partial and w.partial(row.raw)) then
      local v = row.figs[1]
      if not best_lua or (main[3] == "high" and v > best_lua) or (main[3] == "low" and v < best_lua) then
        best_lua, best_lua_id = v, p.id
      end
    end
  end
  print(string.format("\n== %s (%s)", w.title, w.name))
  local head = string.format("  %-30s", "peer")
  for _, c in ipairs(w.cols) do head = head .. string.format(" %16s", c[1]) end
  print(head .. string.format(" %10s %12s", "vs raw C", "vs best Lua"))
  local result = { title = w.title, metric = main[1], better = main[3], peers = {}, note = w.note }
  for _, p in ipairs(PEERS) do
    local row = rows[p.id]
    if row then
      local line = string.format("  %-30s", p.label)
      local entry = { label = p.label, raw = row.raw, error = row.err }
      if row.figs then
        entry.figures = {}
        for i, c in ipairs(w.cols) do
          line = line .. string.format(" %16s", fmt_fig(row.figs[i]))
          entry.figures[c[1]] = row.figs[i]
        end
        local v = row.figs[1]
        local vs_c = base and type(v) == "number" and base > 0 and v / base
        local vs_lua = p.id:match("^sluice") and best_lua and best_lua > 0 and v / best_lua
        entry.vs_raw_c, entry.vs_best_lua = vs_c or nil, vs_lua or nil
        line = line .. string.format(" %10s %12s", vs_c and string.format("%.2fx", vs_c) or "-",
          vs_lua and string.format("%.2fx", vs_lua) or "")
      else
        line = line .. "  " .. (row.err == "unsupported" and "- (cannot)"
          or row.err:match("^not installed") and "- " .. row.err or "ERROR: " .. row.err)
      end
      print(line)
      result.peers[p.id] = entry
    end
  end
  if w.note then print("  (" .. w.note .. ")") end
  if w.partial then
    print("  (luv has no TLS and LuaSocket and luv cannot be pointed at a DNS server: they run")
    print("  only the parts they can; a peer without every handshake done is left out of the best-Lua ratio)")
  end
  if best_lua_id then
    result.best_lua = best_lua_id
    print(string.format("  (ratios of %s; best Lua peer: %s; %s is better)", main[1],
      best_lua_id, main[3] == "high" and "higher" or "lower"))
  end
  return result
end

-- One bar chart per workload, of its main figure.
local function chart(w, result, dir)
  local dat = dir .. "/" .. w.name .. ".dat"
  local f = assert(io.open(dat, "w"))
  local n = 0
  for _, p in ipairs(PEERS) do
    local e = result.peers[p.id]
    local v = e and e.figures and e.figures[w.cols[1][1]]
    if type(v) == "number" then
      f:write(string.format("%q %.6g\n", p.label, v))
      n = n + 1
    end
  end
  f:close()
  if n == 0 then return nil end
  local png = dir .. "/" .. w.name .. ".png"
  local gp = string.format([[
set terminal png size 900,480
set output %q
set title %q
set ylabel %q
set style fill solid 0.8
set boxwidth 0.7
set xtics rotate by -30 left
set bmargin 9
set rmargin 8
%s
set grid ytics
unset key
plot %q using 0:2:xtic(1) with boxes lc rgb "#3070b0", '' using 0:2:($2 >= 100 ? sprintf("%%.0f", $2) : sprintf("%%.3g", $2)) with labels offset 0,0.7
]], png, w.title .. (opts.quick and " (--quick)" or ""), w.cols[1][1]
    .. (w.cols[1][3] == "high" and " (higher is better)" or " (lower is better)"),
    w.log and "set logscale y\nset yrange [*:*]" or "set yrange [0:*]", dat)
  local gpf = dir .. "/" .. w.name .. ".gp"
  f = assert(io.open(gpf, "w"))
  f:write(gp)
  f:close()
  if os.execute("gnuplot " .. sh_quote(gpf) .. " 2>/dev/null") then return png end
  return nil
end

-- The figures of one run (columns in order; "?" where one cannot be computed).
local function figures(w, r)
  local figs = {}
  for i, c in ipairs(w.cols) do
    local okc, v = pcall(c[2], r)
    figs[i] = okc and v or "?"
  end
  return figs
end

-- Is main figure a better than b?
local function better(w, a, b)
  if type(a) ~= "number" then return false end
  if type(b) ~= "number" then return true end
  if w.cols[1][3] == "low" then return a < b end
  return a > b
end

-- Main ------------------------------------------------------------------------------
local function machine()
  local cpu = (read_file("/proc/cpuinfo") or ""):match("model name%s*:%s*([^\n]+)") or "?"
  local p = io.popen("nproc; uname -sr; date -u '+%Y-%m-%dT%H:%M:%SZ'")
  local nproc, kernel, date = p:read("l", "l", "l")
  p:close()
  return { cpu = cpu, cores = tonumber(nproc), kernel = kernel, date = date,
    loadavg_at_start = (read_file("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)") }
end

local function wanted(peer)
  if not opts.only then return true end
  for lib in opts.only:gmatch("[^,]+") do
    if lib == peer.lib or lib == "net" and peer.lib == "sluice" then return true end
  end
  return false
end

local function workload_wanted(w)
  if not opts.workloads then return true end
  for name in opts.workloads:gmatch("[^,]+") do
    if name == w.name then return true end
  end
  return false
end

local function nofile_limit()
  local s = read_file("/proc/self/limits") or ""
  return math.tointeger(tonumber(s:match("Max open files%s+(%d+)") or "1024"))
end

opts.rounds = opts.rounds or (opts.quick and 1 or 2)
local results = { machine = machine(), quick = opts.quick, sizes = S, rounds = opts.rounds,
  workloads = {}, notes = {} }
local fit = nofile_limit() - 2 * S.active - 200
if fit < S.idle then
  local note = string.format("the open-file limit is %d: %d idle connections instead of %d",
    nofile_limit(), fit, S.idle)
  print("NOTE: " .. note)
  results.notes[#results.notes + 1] = note
  S.idle = fit
end

os.execute("mkdir -p " .. sh_quote(opts.out))
local K = PKI
local sv
local failures = 0   -- runs that gave no figures (an error, not a figure)
local ok, err = pcall(function()
  sv = {
    source = start("source", sh_quote(PEER) .. " source " .. S.bulk),
    tls_source = start("tls source", string.format("%s/bench_server tls %s/good.pem %s/good.key source %d",
      BIN, K, K, S.tls_bulk)),
    echo = start("echo", BIN .. "/bench_server echo"),
    close = start("close", sh_quote(PEER) .. " close"),
    tls_close = start("tls close", string.format("%s/bench_server tls %s/good.pem %s/good.key close", BIN, K, K)),
    -- echo: the connection stays up after the handshake until the client closes it
    rsa4096 = start("rsa4096", string.format("%s/bench_server tls %s/rsa4096.pem %s/rsa4096.key echo", BIN, K, K)),
    streams = start("streams", sh_quote(PEER) .. " source " .. S.stream_bytes),
    dns = start("dns", BIN .. "/bench_server udp-silent"),
  }
  print(string.format("side-by-side benchmarks%s on %s (%d cores), load %s",
    opts.quick and " (--quick)" or "", results.machine.cpu, results.machine.cores or 0,
    results.machine.loadavg_at_start or "?"))
  print(string.format("sizes: bulk %d MiB, TLS bulk %d MiB, %d ping-pongs, %d/%d connections, %d idle, frame budget %d frames; best of %d round(s)",
    S.bulk >> 20, S.tls_bulk >> 20, S.pings, S.conns, S.tls_conns, S.idle, S.frames, opts.rounds))
  local n = 0
  for _, w in ipairs(WORKLOADS) do
    if not workload_wanted(w) then goto next_workload end
    local rows = {}
    for _, p in ipairs(PEERS) do
      if wanted(p) and not (w.skip and w.skip[p.id]) and (not p.only or p.only[w.name]) then
        local row, r, why
        for _ = 1, opts.rounds do
          r, why = run_worker(w, p, sv)
          if not r then break end
          local this = { raw = r, figs = figures(w, r) }
          if not row or better(w, this.figs[1], row.figs[1]) then row = this end
        end
        row = r and row or { err = why }
        rows[p.id] = row
        local cannot = not r and (why == "unsupported" or why:match("^not installed"))
        if not r and not cannot then failures = failures + 1 end
        if opts.tap and not cannot then
          n = n + 1
          print(string.format("%s %d - %s %s%s", r and "ok" or "not ok", n, w.name, p.id,
            r and "" or (": " .. tostring(why))))
        end
      end
    end
    local res = report(w, rows)
    res.png = chart(w, res, opts.out)
    results.workloads[w.name] = res
    ::next_workload::
  end
  if opts.tap then print("1.." .. n) end
end)
stop_servers()
if not ok then error(err, 0) end
local path = opts.out .. "/results.json"
local f = assert(io.open(path, "w"))
f:write(json(results), "\n")
f:close()
print("\nwrote " .. path .. " and the charts in " .. opts.out)
if failures > 0 then
  print(failures .. " run(s) failed: see ERROR above")
  os.exit(1)
end
