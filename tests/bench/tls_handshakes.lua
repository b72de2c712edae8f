-- tls_handshakes: 50 TLS handshakes in flight at once against a server with an RSA
-- 4096-bit certificate (the expensive kind), driven by a frame-loop style poll, while
-- every API call made on the calling thread (open_tcp, get_status, write, read, close)
-- is timed: all the certificate and key math must stay on the I/O thread. Prints
-- figures only; never asserts on time.
--
--   lua5.4 tests/bench/tls_handshakes.lua [COUNT]     (default 50 connections per round)
-- Environment: LUA_CPATH (net.so), SLUICE_HOSTS_FILE (./run.sh bench sets it),
-- SLUICE_BENCH_ROUNDS (default 3).
-- The server: tests/tools/tls_echo.py "echo" (one thread per client, so the handshakes
-- really are concurrent), TLS 1.2, certificate rsa4096 from the test PKI.
-- Each connection: open_tcp (verified: CA and name), poll get_status until "success",
-- write "ping N\n", read it back, close.
-- Targets (DESIGN.md, Budgets): every call p99.9 < 20 µs, max < 1 ms.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../lua/?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()   -- half the connections go by name (sluice-v4.test)

local COUNT = math.tointeger(tonumber(arg[1] or "50"))
local ROUNDS = math.tointeger(tonumber(os.getenv("SLUICE_BENCH_ROUNDS") or "3"))

local certs = h.tls_certs()
local clock = net.clock

local durations = { all = {}, open_tcp = {}, get_status = {}, write = {}, read = {}, close = {},
  baseline = {} }

-- The noise floor: an empty Lua function timed the same way, as often as get_status, in
-- the same loop. Its tail is the machine's (preemption while the server and the I/O
-- thread burn both cores), not the engine's.
local function noop() end
local function baseline()
  local t0 = clock()
  noop()
  local b = durations.baseline
  b[#b + 1] = clock() - t0
end

local function timed(kind, fn, ...)
  local t0 = clock()
  local a, b, c = fn(...)
  local d = clock() - t0
  local t = durations[kind]
  t[#t + 1] = d
  durations.all[#durations.all + 1] = d
  return a, b, c
end

-- One round: COUNT connections, all opened at once. Returns the seconds from the first
-- open_tcp to the last handshake, and to the last echo; the handshake times per
-- connection (seconds, sorted); failures.
local function round(port)
  local conns, state, hs_done = {}, {}, {}
  local start = clock()
  for i = 1, COUNT do
    local host = (i % 2 == 0) and "127.0.0.1" or "sluice-v4.test"
    conns[i] = assert(timed("open_tcp", net.open_tcp, host, port,
      { ca_file = certs.ca, server_name = "sluice-v4.test" }))
    state[i] = "handshake"
  end
  local left, failures, t_handshakes = COUNT, 0, nil
  local handshaking = COUNT
  local want = {}
  while left > 0 do
    for i = 1, COUNT do
      local conn, st = conns[i], state[i]
      if st == "handshake" then
        local status, msg = timed("get_status", conn.get_status, conn)
        baseline()
        if status == "success" then
          hs_done[#hs_done + 1] = clock() - start
          want[i] = "ping " .. i .. "\n"
          local n = timed("write", conn.write, conn, want[i])
          assert(n == #want[i], "short write")
          state[i] = "echo"
          handshaking = handshaking - 1
        elseif status == "failure" then
          print("  connection " .. i .. " failed: " .. tostring(msg))
          failures = failures + 1
          state[i] = "done"
          left, handshaking = left - 1, handshaking - 1
          timed("close", conn.close, conn)
        end
        if handshaking == 0 and not t_handshakes then t_handshakes = clock() - start end
      elseif st == "echo" then
        local s, msg = timed("read", conn.read, conn, 64)
        assert(s, msg)
        if #s > 0 then
          assert(s == want[i]:sub(1, #s), "bad echo")
          want[i] = want[i]:sub(#s + 1)
          if want[i] == "" then
            timed("close", conn.close, conn)
            state[i] = "done"
            left = left - 1
          end
        end
      end
    end
    if left > 0 then net.wait(1) end   -- the frame loop's sleep
    assert(clock() - start < 120, "round took more than 120 s")
  end
  table.sort(hs_done)
  return t_handshakes or (clock() - start), clock() - start, hs_done, failures
end

local server = h.start_tls_server("echo", nil, { cert = "rsa4096", tls1_2 = true })
local ok, err = pcall(function()
  print(string.format("tls_handshakes: %d concurrent verified handshakes (RSA 4096 server certificate), %d round(s)",
    COUNT, ROUNDS))
  local total_failures = 0
  for r = 1, ROUNDS do
    local t_hs, t_all, hs, failures = round(server.port)
    total_failures = total_failures + failures
    print(string.format("  round %d  all %d handshakes done in %.3f s (first %.1f ms, median %.1f ms, last %.1f ms), echoes done in %.3f s%s",
      r, #hs, t_hs, (hs[1] or 0) * 1e3, (h.percentile(hs, 0.5) or 0) * 1e3, (hs[#hs] or 0) * 1e3, t_all,
      failures > 0 and string.format(", %d FAILED", failures) or ""))
    h.wait_idle(10000)
  end
  print("per-call durations on the calling thread (targets: p99.9 < 20 µs, max < 1000 µs):")
  for _, kind in ipairs({ "open_tcp", "get_status", "write", "read", "close", "all", "baseline" }) do
    print("  " .. h.call_summary(kind, durations[kind], 11))
  end
  if total_failures > 0 then error(total_failures .. " connections failed") end
end)
server:stop()
if not ok then error(err, 0) end
