-- websocket: net.open_websocket against a Node `ws` echo server on loopback
-- (tests/bench/ws_echo.js), next to a Node `ws` client (ws_client.js) and a Python
-- `websockets` client (ws_client.py) doing the same work in the same run. Prints
-- figures and ratios; never asserts on time (every echo is checked, though).
--
--   lua5.4 tests/bench/websocket.lua [--quick]
-- Work (each client in turn, one connection each):
--   64 B ping-pong     text messages, one in flight: round trips per second
--   64 B window 64     text messages, 64 in flight: messages per second
--   1 MiB window 4     binary messages of random bytes: MB/s of payload echoed
--   1 MiB deflate      text messages that compress well, permessage-deflate on
--                      both sides (the only compressed run; the others have none)
-- sluice runs three loops: "tight" polls without ever waiting; "wait" is the README's
-- frame loop (poll, then net.wait until the next 1/60 s tick, which returns early on
-- network activity); "60 fps" polls once per 1/60 s frame and sleeps through
-- activity, with more in flight (a game's script), for a fixed time. The caller's
-- per-call durations of send and receive are measured around each call (net.clock).
-- Environment: SLUICE_NODE (default /usr/bin/node), SLUICE_PYTHON_WS (default
-- /usr/bin/python3: Debian's python3-websockets), NODE_PATH (default /usr/share/nodejs),
-- SLUICE_BENCH_ROUNDS (default 2, 1 with --quick: every client runs that many times,
-- interleaved, and the best of each is shown).
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../lua/?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

io.stdout:setvbuf("line")   -- the progress lines on stderr interleave in order
local QUICK = arg[1] == "--quick"
local NODE = os.getenv("SLUICE_NODE") or "/usr/bin/node"
local PYTHON = os.getenv("SLUICE_PYTHON_WS") or "/usr/bin/python3"
local NODE_PATH = os.getenv("NODE_PATH") or "/usr/share/nodejs"
local MiB = 1024 * 1024
local FPS_SECONDS = QUICK and 1 or 3
local ROUNDS = math.tointeger(tonumber(os.getenv("SLUICE_BENCH_ROUNDS") or (QUICK and "1" or "2")))
local FRAME = 1 / 60

local function q(n_quick, n_full) return QUICK and n_quick or n_full end
local WORK = {
  { name = "64 B ping-pong", unit = "msg/s", size = 64, kind = "text", window = 1,
    count = q(2000, 20000) },
  { name = "64 B window 64", unit = "msg/s", size = 64, kind = "text", window = 64,
    count = q(20000, 200000), fps_window = 4096 },
  { name = "1 MiB window 4", unit = "MB/s", size = MiB, kind = "binary", window = 4,
    count = q(32, 512), fps_window = 16 },
  { name = "1 MiB deflate", unit = "MB/s", size = MiB, kind = "text", window = 4,
    count = q(16, 128), fps_window = 16, deflate = true },
}

local run = h.capture

if not h.path_exists(NODE) or not h.path_exists(NODE_PATH .. "/ws") then
  print("websocket: Node and its ws module (Debian nodejs, node-ws) are not installed: nothing to compare with")
  os.exit(0)
end
local have_python = run(PYTHON .. " -c 'import websockets' 2>&1; echo $?"):match("(%d+)%s*$") == "0"
local have_sluice = net.open_websocket ~= nil

local caller_cpu = h.caller_cpu

-- ---- per-call durations --------------------------------------------------------------
-- A uniform sample of at most CAP durations (a tight loop makes millions of empty
-- polls), with the exact count and maximum.
local CAP = 1000000
local function recorder()
  return { n = 0, max = 0, d = {} }
end
local function record(r, x)
  local n = r.n + 1
  r.n = n
  if x > r.max then r.max = x end
  if n <= CAP then
    r.d[n] = x
  else
    local j = math.random(n)
    if j <= CAP then r.d[j] = x end
  end
end
local function summary(name, r)
  if r.n == 0 then return string.format("  %-28s calls        0", name) end
  table.sort(r.d)
  local us = function(p) return h.percentile(r.d, p) * 1e6 end
  return string.format("  %-28s calls %9d   p50 %7.2f µs   p99 %7.2f µs   p99.9 %7.2f µs   max %8.1f µs",
    name, r.n, us(0.5), us(0.99), us(0.999), r.max * 1e6)
end

-- ---- the peers -----------------------------------------------------------------------
local function node_cmd(script, args)
  return string.format("env NODE_PATH=%s %s %s %s", h.shell_quote(NODE_PATH), h.shell_quote(NODE),
    h.shell_quote(here .. script), args)
end

local function start_echo(deflate)
  return h.start_server("ws_echo.js", node_cmd("ws_echo.js", deflate and "--deflate" or ""),
    function(out)
      local line = out:match("^(%d+)\n")
      return line and math.tointeger(tonumber(line))
    end)
end

-- A peer client's run: rate (msg/s or MB/s), the extension it got; nil, output on failure.
local function peer_client(cmd, url, w)
  local out = run(string.format("%s %s %d %d %d %s %s 2>&1", cmd, h.shell_quote(url), w.count,
    w.size, w.window, w.kind, w.deflate and "--deflate" or ""))
  local count, bytes, secs, ext = out:match("ws_client (%d+) (%d+) ([%d.]+) (%S+)")
  if not count then return nil, out end
  secs = tonumber(secs)
  if w.unit == "MB/s" then return tonumber(bytes) / secs / 1e6, ext end
  return tonumber(count) / secs, ext
end

-- ---- sluice's client -----------------------------------------------------------------
local LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789 "

local function filler(w)
  if w.kind == "text" then
    return string.rep(LETTERS, w.size // #LETTERS + 1):sub(1, w.size - 8)
  end
  return h.random_bytes(w.size - 8)
end

-- Sleep until `deadline` (net.clock seconds) through any network activity.
local function sleep_until(deadline) h.sleep((deadline - net.clock()) * 1000) end

-- One sluice run of `w` in `loop` ("tight", "wait", "fps"); the call durations go to
-- `rec`. Returns the rate, the extension agreed, and the caller's CPU seconds per
-- wall second.
local function sluice_client(url, w, loop, rec)
  io.stderr:write(("  [%s: sluice, %s loop]\n"):format(w.name, loop))
  local clock, fill = net.clock, filler(w)
  local ws = assert(net.open_websocket(url, { compress = w.deflate or false, max_message = 64 * MiB }))
  local st, msg = ws:wait_until_connected(10000)
  assert(st == "success", msg)
  local ext = ws:get_extensions() and "deflate" or "none"
  local window = loop == "fps" and w.fps_window or w.window
  local count = loop == "fps" and math.maxinteger or w.count
  local inflight = {}
  local sent, received, bytes = 0, 0, 0
  local t0, cpu0 = clock(), caller_cpu()
  local stop = loop == "fps" and t0 + FPS_SECONDS or math.huge
  local tick = t0 + FRAME
  while received < count do
    -- receive first, then send: a net.wait after the sends wakes on their echoes
    while true do
      local c0 = clock()
      local data, kind, code = ws:receive()
      local dt = clock() - c0
      if not data then
        assert(kind == nil, kind and ("receive: nil, %q, %q; status %s"):format(kind, tostring(code),
          table.concat({ tostring((ws:get_status())), select(2, ws:get_status()) }, ", ")))
        record(rec.empty, dt)
        break
      end
      record(rec.recv, dt)
      received = received + 1
      assert(kind == w.kind and data == inflight[received], "echo " .. received .. " differs")
      inflight[received] = nil
      bytes = bytes + #data
    end
    while sent < count and sent - received < window do
      local m = string.format("%08d", sent % 100000000) .. fill
      local c0 = clock()
      local ok, err, code = ws:send(m, w.kind)
      record(rec.send, clock() - c0)
      if not ok then
        if not (ok == false and code == "limit") then
          local ccode, reason = ws:get_close()
          error(("send: %s, %q, %q; get_close: %s %q"):format(tostring(ok), tostring(err), tostring(code),
            tostring(ccode), tostring(reason)))
        end
        break                                   -- the send queue is full: next round
      end
      sent = sent + 1
      inflight[sent] = m
    end
    if loop == "wait" then
      net.wait(math.max(0, math.floor((tick - clock()) * 1000)))
    elseif loop == "fps" then
      if clock() >= stop then break end
      sleep_until(tick)
    end
    if clock() >= tick then tick = tick + FRAME * math.ceil((clock() - tick) / FRAME + 1e-9) end
  end
  local secs, cpu = clock() - t0, caller_cpu() - cpu0
  ws:close()
  local deadline = clock() + 10
  while clock() < deadline do                   -- take the echoes still coming, then the close
    local data, err, code = ws:receive()
    if data == nil and err then
      assert(code == "closed", err)
      break
    end
    if data == nil then net.wait(10) end
  end
  assert(ws:get_close() == 1000, "the close was not clean: " .. tostring(ws:get_close()))
  local rate = w.unit == "MB/s" and bytes / secs / 1e6 or received / secs
  return rate, ext, cpu / secs, received / (secs / FRAME)
end

-- ---- the run -------------------------------------------------------------------------
local echo, echo_deflate = start_echo(false), start_echo(true)
local ok, err = pcall(function()
  print(string.format("websocket: Node ws echo server on 127.0.0.1:%d (permessage-deflate on :%d); best of %d round(s)%s",
    echo.port, echo_deflate.port, ROUNDS, QUICK and "; --quick" or ""))
  if not have_sluice then print("  (net.open_websocket is not in this build: sluice columns are empty)") end
  if not have_python then print("  (" .. PYTHON .. " has no websockets module: python columns are empty)") end
  -- Rounds interleave the clients so that a burst of load on the shared machine hits all
  -- of them alike; each figure is the best of its rounds.
  local rows, notes, calls = {}, {}, {}
  local function recs() return { send = recorder(), recv = recorder(), empty = recorder() } end
  for i, w in ipairs(WORK) do
    rows[i] = { w = w }
    -- durations of the frame loops (wait, 60 fps) apart from the tight loop's: a caller
    -- spinning on a shared core slows the I/O thread it competes with
    calls[i] = { tight = recs(), frame = recs() }
  end
  -- keep the best run: res = {rate, cpu, per_frame}, or false for a failed run
  local function keep(row, key, res)
    if res and (not row[key] or res[1] > row[key][1]) then row[key] = res
    elseif not res and row[key] == nil then row[key] = false end
  end
  for round = 1, ROUNDS do
    for i, w in ipairs(WORK) do
      local url = string.format("ws://127.0.0.1:%d/", w.deflate and echo_deflate.port or echo.port)
      local row, rec = rows[i], calls[i]
      if have_sluice then
        -- a failed run (an engine bug) is reported, and the others still run
        local function try(loop)
          if loop == "fps" and not w.fps_window then return end
          local res = table.pack(pcall(sluice_client, url, w, loop, loop == "tight" and rec.tight or rec.frame))
          if not res[1] then
            notes[#notes + 1] = ("round %d: sluice %s loop FAILED (%s): %s"):format(round, loop, w.name, res[2])
            return keep(row, loop, false)
          end
          row.ext = row.ext or res[3]
          keep(row, loop, { res[2], res[4], res[5] })
        end
        try("tight")
        try("wait")
        try("fps")
      end
      -- a peer's run: its rate, or a note (a failure, or not the compression asked)
      local function peer(name, cmd)
        local rate, out = peer_client(cmd, url, w)
        if not rate then
          notes[#notes + 1] = ("round %d: %s client failed (%s): %s"):format(round, name, w.name, out)
        elseif out ~= (w.deflate and "deflate" or "none") then
          notes[#notes + 1] = ("%s client: permessage-deflate %s in %s"):format(name,
            w.deflate and "was not agreed" or "was used", w.name)
        end
        keep(row, name, rate and { rate } or false)
      end
      peer("node", node_cmd("ws_client.js", ""))
      if have_python then peer("python", PYTHON .. " " .. h.shell_quote(here .. "ws_client.py")) end
    end
  end
  -- the table wants plain figures: rate (or false), cpu, per frame
  for _, row in ipairs(rows) do
    for _, k in ipairs { "tight", "wait", "fps", "node", "python" } do
      local res = row[k]
      row[k] = res and res[1] or res
      row[k .. "_cpu"] = res and res[2]
      if k == "fps" then row.per_frame = res and res[3] end
    end
  end

  local function f(x, unit)
    if x == false then return "    FAILED" end
    return x and string.format(unit == "MB/s" and "%10.1f" or "%10.0f", x) or "         -"
  end
  local function r(a, b) return a and b and string.format("%7.2f", a / b) or "      -" end
  print(string.format("  %-21s %-5s %10s %10s %10s %10s %10s %7s %7s %7s %7s",
    "", "", "sl. tight", "sl. wait", "sl. 60fps", "node ws", "python ws",
    "t/node", "w/node", "t/py", "w/py"))
  for _, row in ipairs(rows) do
    local w = row.w
    print(string.format("  %-21s %-5s %s %s %s %s %s %s %s %s %s", w.name, w.unit,
      f(row.tight, w.unit), f(row.wait, w.unit), f(row.fps, w.unit), f(row.node, w.unit),
      f(row.python, w.unit), r(row.tight, row.node), r(row.wait, row.node),
      r(row.tight, row.python), r(row.wait, row.python)))
  end
  print("  (t/node: sluice's tight loop / node's client; w/: sluice's wait loop; 60fps: "
    .. FPS_SECONDS .. " s of frames, more in flight)")
  if have_sluice then
    print("caller thread CPU per wall second, and messages per 60 fps frame:")
    for _, row in ipairs(rows) do
      local function c(x) return x and string.format("%4.2f", x) or "   -" end
      print(string.format("  %-21s tight %s   wait %s   60fps %s%s", row.w.name, c(row.tight_cpu),
        c(row.wait_cpu), c(row.fps_cpu),
        row.per_frame and string.format("   (%.1f messages per frame)", row.per_frame) or ""))
    end
    for _, loops in ipairs { { "frame", "the wait and 60 fps loops" }, { "tight", "the tight loop" } } do
      print("per-call durations on the calling thread, " .. loops[2] .. ":")
      for i, row in ipairs(rows) do
        local rec = calls[i][loops[1]]
        print(summary("send    " .. row.w.name, rec.send))
        print(summary("receive " .. row.w.name, rec.recv))
        print(summary("receive (none waiting)", rec.empty))
      end
    end
    local floor = recorder()
    for _, d in ipairs(h.alloc_floor(2000, 1024 * 1024 - 1)) do record(floor, d) end
    print(summary("baseline: Lua sub 1 MiB", floor))
    for _, row in ipairs(rows) do
      if row.w.deflate and row.ext ~= "deflate" then
        notes[#notes + 1] = "permessage-deflate was not agreed in sluice's deflate run"
      end
    end
  end
  for _, n in ipairs(notes) do print("  " .. n) end
  return #notes
end)
echo:stop()
echo_deflate:stop()
if not ok then error(err, 0) end
if err > 0 then
  print(("websocket: %d run(s) failed (above)"):format(err))
  os.exit(1)   -- a wrong echo or a failed websocket is a bug, whatever the figures
end
