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
  print("  " .. h.call_summary("read(64 KiB) in transfer", best_reads, 26))
  print("  " .. h.call_summary("open_tcp/get_status/close", best_other, 26))
  local floor = h.alloc_floor(#best_reads, READ_SIZE)
  print("  " .. h.call_summary("baseline: Lua sub 64 KiB", floor, 26))
  print(string.format("  p99.9 ratio read/baseline %.2f", h.percentile(best_reads, 0.999) / h.percentile(floor, 0.999)))
end)
server:stop()
if not ok then error(err, 0) end
