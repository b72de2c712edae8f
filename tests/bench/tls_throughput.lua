-- tls_throughput: loopback TLS bulk receive through the Lua API against mbedTLS's own
-- blocking read loop (mbedtls_recv) in the same run, plus how long each API call takes
-- on the calling thread. Prints figures only; never asserts on time.
--
--   lua5.4 tests/bench/tls_throughput.lua [BYTES]     (default 512M; K/M/G suffixes)
-- Environment: SLUICE_BUILD (mbedtls_recv), LUA_CPATH (net.so), SLUICE_HOSTS_FILE
-- (./run.sh bench sets it), SLUICE_BENCH_ROUNDS (default 2: mbedtls, lua, mbedtls, lua;
-- the best of each is compared).
-- The server: tests/tools/tls_echo.py "source" (Python's ssl, i.e. OpenSSL, which
-- encrypts faster than mbedTLS decrypts, so the client side is what is measured), TLS
-- 1.2 with the test PKI's P-256 certificate; both clients verify it (CA, name).
-- Targets (DESIGN.md, Budgets): lua/mbedtls >= 0.8; every call p99.9 < 20 µs, max < 1 ms.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../lua/?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

local function parse_size(s)
  local n, unit = s:match("^(%d+)([KkMmGg]?)$")
  assert(n, "bad size " .. s)
  return math.tointeger(tonumber(n)) << ({ [""] = 0, k = 10, m = 20, g = 30 })[unit:lower()]
end

local BYTES = parse_size(arg[1] or "512M")
local ROUNDS = math.tointeger(tonumber(os.getenv("SLUICE_BENCH_ROUNDS") or "2"))
local READ_SIZE = 64 * 1024
local HOST, NAME = "127.0.0.1", "sluice-v4.test"

local certs = h.tls_certs()

local function run_mbedtls(port)
  local err = os.tmpname()
  local p = assert(io.popen(string.format("%s %s %d %s %s 2>%s",
    h.shell_quote(h.build .. "/mbedtls_recv"), HOST, port, h.shell_quote(certs.ca), NAME,
    h.shell_quote(err))))
  local line = p:read("a")
  p:close()
  local stderr = h.read_file(err) or ""
  os.remove(err)
  local bytes, secs = line:match("^mbedtls_recv (%d+) ([%d.]+)")
  assert(bytes, "mbedtls_recv failed: " .. line .. stderr)
  return math.tointeger(tonumber(bytes)), tonumber(secs), stderr:match("mbedtls_recv: (TLS%S+ %S+)")
end

-- The Lua read loop: open_tcp by IP with server_name (as mbedtls_recv connects), read(64 KiB)
-- as fast as possible, net.wait(1) only after several empty reads in a row. Returns
-- bytes, seconds, the durations (seconds) of every read() and of the other calls.
local function run_lua(port)
  local clock, wait = net.clock, net.wait
  local reads, other = {}, {}
  local nr = 0
  local total, empty = 0, 0
  local start = clock()
  local t0 = clock()
  local conn = assert(net.open_tcp(HOST, port, { ca_file = certs.ca, server_name = NAME }))
  other[#other + 1] = clock() - t0
  -- the handshake: poll the status like a frame loop would
  while true do
    t0 = clock()
    local status, msg = conn:get_status()
    other[#other + 1] = clock() - t0
    if status == "success" then break end
    assert(status == "waiting", msg)
    wait(1)
  end
  while true do
    t0 = clock()
    local data, msg = conn:read(READ_SIZE)
    local t1 = clock()
    nr = nr + 1
    reads[nr] = t1 - t0
    if data == nil then
      assert(msg == nil, msg)
      break
    end
    local len = #data
    if len > 0 then
      total, empty = total + len, 0
    else
      empty = empty + 1
      if empty >= 4 then
        wait(1)
        empty = 0
      end
    end
  end
  local secs = clock() - start
  local info = conn:get_tls_info()
  t0 = clock()
  conn:close()
  other[#other + 1] = clock() - t0
  return total, secs, reads, other, info and (info.version .. " " .. info.cipher) or "?"
end

-- The floor under any read(): the same number of same-size Lua string allocations
-- and copies (string.sub of a resident buffer), timed the same way, with no network.
local function run_floor(count)
  local clock = net.clock
  local big = string.rep("x", 1 << 20)
  local durations = {}
  for i = 1, count do
    local off = (i * READ_SIZE) % (#big - READ_SIZE)
    local t0 = clock()
    local s = big:sub(off + 1, off + READ_SIZE)
    durations[i] = clock() - t0
    if #s ~= READ_SIZE then error("short sub") end
  end
  return durations
end

local function summary(name, d)
  table.sort(d)
  local over = 0
  for i = #d, 1, -1 do
    if d[i] <= 20e-6 then break end
    over = over + 1
  end
  local us = function(p) return h.percentile(d, p) * 1e6 end
  return string.format("%-26s calls %6d   p50 %6.2f µs   p99 %6.2f µs   p99.9 %6.2f µs   max %7.1f µs   over 20 µs: %d",
    name, #d, us(0.5), us(0.99), us(0.999), d[#d] * 1e6, over)
end

local server = h.start_tls_server("source", tostring(BYTES), { tls1_2 = true })
local ok, err = pcall(function()
  print(string.format("tls_throughput: %d MiB per transfer over loopback TLS, %d round(s)",
    BYTES >> 20, ROUNDS))
  local best_m, best_l, best_reads, best_other = 0, 0, nil, nil
  for round = 1, ROUNDS do
    local mb, ms, msuite = run_mbedtls(server.port)
    local m_rate = mb / ms / 1e6
    print(string.format("  round %d  mbedtls_recv  %d bytes  %.3f s  %8.1f MB/s  (%s)", round, mb, ms,
      m_rate, msuite or "?"))
    local lb, ls, reads, other, lsuite = run_lua(server.port)
    local l_rate = lb / ls / 1e6
    print(string.format("  round %d  lua read      %d bytes  %.3f s  %8.1f MB/s  (%s)%s", round, lb, ls,
      l_rate, lsuite, lb == BYTES and "" or "  (SHORT!)"))
    best_m = math.max(best_m, m_rate)
    if l_rate > best_l then best_l, best_reads, best_other = l_rate, reads, other end
  end
  print(string.format("mbedtls_recv %.1f MB/s   lua %.1f MB/s   ratio %.2f (target >= 0.80)",
    best_m, best_l, best_l / best_m))
  print("per-call durations on the calling thread, best Lua round (targets: p99.9 < 20 µs, max < 1000 µs):")
  print("  " .. summary("read(64 KiB) in transfer", best_reads))
  print("  " .. summary("open_tcp/get_status/close", best_other))
  local floor = run_floor(#best_reads)
  print("  " .. summary("baseline: Lua sub 64 KiB", floor))
  print(string.format("  p99.9 ratio read/baseline %.2f", h.percentile(best_reads, 0.999) / h.percentile(floor, 0.999)))
end)
server:stop()
if not ok then error(err, 0) end
