-- helpers: shared by the Lua integration specs and the benchmarks: start and stop the
-- loopback test peer (tests/tools/peer.c), make and check test data, poll with net.wait;
-- for TLS: the test PKI (tests/tools/mkcerts.sh), the TLS servers (tests/tools/tls_echo.py,
-- starttls_server.py, `openssl s_server`), Lua child processes.
--
-- Environment: SLUICE_BUILD (folder holding `peer`, default build/release),
-- SLUICE_MODE ("tsan" / "asan" shrink the big transfers), SLUICE_LUA (host interpreter
-- for child processes, default lua5.4), SLUICE_PYTHON (default python3), SLUICE_OPENSSL
-- (default openssl).
local net = require "net"

local M = {}

M.build = os.getenv("SLUICE_BUILD") or "build/release"
M.mode = os.getenv("SLUICE_MODE") or ""
-- The host interpreter for child processes: sanitizer builds need their own host.
M.lua = os.getenv("SLUICE_LUA")
local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end
if not M.lua and (M.mode == "asan" or M.mode == "tsan") and exists(M.build .. "/luahost") then
  M.lua = M.build .. "/luahost"
end
M.lua = M.lua or "lua5.4"
M.KiB, M.MiB = 1024, 1024 * 1024

-- Specs that resolve names call this first: without the hosts-file hook a name would
-- go to the system resolver (and maybe the network), which tests must never do.
function M.need_hosts_file()
  local f = os.getenv("SLUICE_HOSTS_FILE")
  if not f or not exists(f) then
    error("SLUICE_HOSTS_FILE must name the test hosts file (tests/lua/hosts)", 2)
  end
end

-- The folder this file lives in (with a trailing slash), to find scripts next to it.
M.dir = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"

--------------------------------------------------------------------------------
-- Scale and time

-- Factor for the big transfers: sanitizer builds are many times slower.
function M.scale()
  if M.mode == "tsan" then return 1 / 8 end
  if M.mode == "asan" then return 1 / 4 end
  return 1
end

-- n bytes, scaled (never below `min`, default 1).
function M.scaled(n, min)
  return math.max(min or 1, math.floor(n * M.scale()))
end

-- What a shell command prints on stdout.
function M.capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

-- CPU seconds of this process's main thread (the caller's), from /proc.
function M.caller_cpu()
  local pid = (M.read_file("/proc/self/stat") or ""):match("^(%d+)")
  local stat = M.read_file("/proc/self/task/" .. pid .. "/stat") or ""
  local fields = {}
  for f in stat:gsub("^.-%) ", ""):gmatch("%S+") do fields[#fields + 1] = f end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100   -- utime, stime in ticks
end

-- Block about `ms` milliseconds (net.wait may return early on network activity).
function M.sleep(ms)
  local deadline = net.clock() + ms / 1000
  while true do
    local left = math.ceil((deadline - net.clock()) * 1000)
    if left <= 0 then return end
    net.wait(left)
  end
end

-- Call `fn` until it returns a truthy first value (then return all its values) or until
-- `timeout_ms` passed (then return nil). Sleeps in net.wait between calls.
function M.wait_for(fn, timeout_ms, step_ms)
  local deadline = net.clock() + (timeout_ms or 10000) / 1000
  step_ms = step_ms or 50
  while true do
    local r = table.pack(fn())
    if r[1] then return table.unpack(r, 1, r.n) end
    local left = math.ceil((deadline - net.clock()) * 1000)
    if left <= 0 then return nil end
    net.wait(math.min(left, step_ms))
  end
end

-- Wait until the engine holds no connection objects any more (earlier tests' lingering
-- closes): tests that measure net.get_stats() start from there. Returns the stats.
function M.wait_idle(timeout_ms)
  M.wait_for(function()
    collectgarbage()
    collectgarbage()
    return net.get_stats().connections == 0
  end, timeout_ms or 10000)
  return net.get_stats()
end

--------------------------------------------------------------------------------
-- Peers

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.shell_quote = shell_quote

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
M.read_file = read_file

-- Writes bytes to path (binary), replacing it.
function M.write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  assert(f:write(bytes))
  f:close()
end

-- The SHA-256 of a file as 64 hex digits (sha256sum).
function M.sha256_file(path)
  local p = assert(io.popen("sha256sum " .. shell_quote(path)))
  local sum = p:read("l"):match("^(%x+)")
  p:close()
  return sum
end

-- Is the process still running? (A zombie counts as gone.)
local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if stat then return not stat:match("^%d+ %b() Z") end
  if exists("/proc/self/stat") then return false end   -- /proc exists: pid is gone
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

local Peer = {}
Peer.__index = Peer

local running = {}   -- every peer started and not yet stopped, by pid

-- Stop the peer (SIGTERM, then SIGKILL after 2 s) and wait until it is gone.
function Peer:stop()
  if not self.pid then return end
  local pid = self.pid
  self.pid = nil
  running[pid] = nil
  os.execute("kill " .. pid .. " 2>/dev/null")
  if not M.wait_for(function() return not alive(pid) end, 2000, 10) then
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
    M.wait_for(function() return not alive(pid) end, 2000, 10)
  end
  os.remove(self.out)
  os.remove(self.err)
end

-- Every stdout line after the port line.
function Peer:lines()
  local t = {}
  for line in (read_file(self.out) or ""):gmatch("([^\n]*)\n") do t[#t + 1] = line end
  table.remove(t, 1)
  return t
end

-- The sink results so far: array of {bytes = n, hash = "16 hex digits"}, in the order
-- the client connections reached EOF.
function Peer:sinks()
  local t = {}
  for _, line in ipairs(self:lines()) do
    local n, h = line:match("^sink (%d+) (%x+)$")
    if n then t[#t + 1] = { bytes = math.tointeger(tonumber(n)), hash = h } end
  end
  return t
end

-- Wait until at least `count` sink results are in; returns them, or nil on timeout.
function Peer:wait_sinks(count, timeout_ms)
  return M.wait_for(function()
    local s = self:sinks()
    if #s >= count then return s end
  end, timeout_ms or 20000, 20)
end

function Peer:__tostring()
  return string.format("peer(%s, port %s, pid %s)", self.mode, self.port, self.pid)
end

-- Start `peer [-6] [-a ADDR] [-p PORT] MODE [ARG]`; opts.ipv6 binds ::1, opts.addr another
-- IPv4 loopback address ("127.0.0.2"), opts.port binds that port (default: an ephemeral
-- one). Returns the peer object, with .port, .pid, .host ("127.0.0.1", "::1" or
-- opts.addr). Raises if it does not come up.
function M.start_peer(mode, arg, opts)
  opts = opts or {}
  local exe = M.build .. "/peer"
  local out = os.tmpname()
  local err = out .. ".err"
  local args = (opts.ipv6 and "-6 " or "") .. (opts.addr and ("-a " .. shell_quote(opts.addr) .. " ") or "")
    .. (opts.port and ("-p " .. math.tointeger(opts.port) .. " ") or "")
    .. shell_quote(mode)
    .. (arg and (" " .. shell_quote(arg)) or "")
  -- `exec` in the background job makes $! the peer itself, so `kill PID` reaches it.
  local p = assert(io.popen(string.format("exec %s %s >%s 2>%s </dev/null & echo $!",
    shell_quote(exe), args, shell_quote(out), shell_quote(err))))
  local pid = p:read("l")
  p:close()
  pid = assert(math.tointeger(tonumber(pid)), "could not start " .. exe)
  local self = setmetatable({ pid = pid, out = out, err = err, mode = mode,
    host = opts.ipv6 and "::1" or opts.addr or "127.0.0.1" }, Peer)
  running[pid] = self
  local port = M.wait_for(function()
    local line = (read_file(out) or ""):match("^(%d+)\n")
    if line then return math.tointeger(tonumber(line)) end
    if not alive(pid) then return false end
  end, 10000, 10)
  if not port then
    local msg = read_file(err) or ""
    self:stop()
    error(string.format("peer %s did not start: %s", args, msg), 2)
  end
  self.port = port
  return self
end

-- Stop every peer this module started (specs call it in after_each / teardown).
function M.stop_all()
  local pids = {}
  for pid in pairs(running) do pids[#pids + 1] = pid end
  for _, pid in ipairs(pids) do running[pid]:stop() end
end

-- Last resort: peers still running when the Lua state closes are stopped too.
M._reaper = setmetatable({}, { __gc = function() M.stop_all() end })

--------------------------------------------------------------------------------
-- Data

-- n random bytes (math.random, 64 bits at a time).
function M.random_bytes(n)
  local parts, r, pack = {}, math.random, string.pack
  for i = 1, n // 64 + 1 do
    parts[i] = pack("<jjjjjjjj", r(0), r(0), r(0), r(0), r(0), r(0), r(0), r(0))
  end
  return table.concat(parts):sub(1, n)
end

local FNV_OFFSET, FNV_PRIME = -3750763034362895579, 0x100000001b3   -- 0xcbf29ce484222325

-- 64-bit FNV-1a of `s`, continuing from `h` (for streams); integer, wraps like uint64.
function M.fnv1a(s, h)
  h = h or FNV_OFFSET
  local byte, P = string.byte, FNV_PRIME
  local n = #s
  local i = 1
  while i + 7 <= n do
    local a, b, c, d, e, f, g, k = byte(s, i, i + 7)
    h = (h ~ a) * P; h = (h ~ b) * P; h = (h ~ c) * P; h = (h ~ d) * P
    h = (h ~ e) * P; h = (h ~ f) * P; h = (h ~ g) * P; h = (h ~ k) * P
    i = i + 8
  end
  for j = i, n do h = (h ~ byte(s, j)) * P end
  return h
end

-- The hash as the sink prints it.
function M.hex64(h) return string.format("%016x", h) end

-- The source pattern (see tests/tools/peer.c):
--   byte i = T[i mod 1000003],  T[j] = ((j * 2654435761) mod 2^32) >> 24
M.PERIOD = 1000003
local SLICE = 64 * 1024
local period_cache

-- T plus its first SLICE bytes again, so every slice of <= SLICE bytes is contiguous.
local function period_string()
  if period_cache then return period_cache end
  local parts, vals = {}, {}
  local P, char, unpack = M.PERIOD, string.char, table.unpack
  local total = P + SLICE
  for base = 0, total - 1, 256 do
    local n = math.min(256, total - base)
    for k = 1, n do
      local j = (base + k - 1) % P
      vals[k] = ((j * 2654435761) & 0xffffffff) >> 24
    end
    parts[#parts + 1] = char(unpack(vals, 1, n))
  end
  period_cache = table.concat(parts)
  return period_cache
end

-- `len` bytes of the pattern starting at stream offset `offset`.
function M.pattern(offset, len)
  local T, parts = period_string(), {}
  while len > 0 do
    local o = offset % M.PERIOD
    local n = math.min(len, SLICE)
    parts[#parts + 1] = T:sub(o + 1, o + n)
    offset, len = offset + n, len - n
  end
  return table.concat(parts)
end

-- A checker for a received pattern stream. checker:feed(data) returns true, or false
-- and a message naming the first wrong byte. checker.offset = bytes checked so far.
function M.pattern_checker()
  local T = period_string()
  local c = { offset = 0 }
  function c:feed(data)
    local pos, n = 1, #data
    while pos <= n do
      local o = self.offset % M.PERIOD
      local len = math.min(n - pos + 1, SLICE)
      local got = (pos == 1 and len == n) and data or data:sub(pos, pos + len - 1)
      local want = T:sub(o + 1, o + len)
      if got ~= want then
        for k = 1, len do
          if got:byte(k) ~= want:byte(k) then
            return false, string.format("pattern mismatch at stream byte %d: got %d, want %d",
              self.offset + k - 1, got:byte(k), want:byte(k))
          end
        end
      end
      pos, self.offset = pos + len, self.offset + len
    end
    return true
  end
  return c
end

-- A checker for an echo stream: push(s) what was written, feed(s) what came back;
-- feed returns true, or false and a message. .pending = bytes sent, not yet received.
function M.echo_checker()
  local q, head, tail, off = {}, 1, 0, 0   -- q[head..tail] are queued, off into q[head]
  local c = { pending = 0, received = 0 }
  function c:push(s)
    if #s > 0 then
      tail = tail + 1
      q[tail] = s
      self.pending = self.pending + #s
    end
  end
  function c:feed(data)
    local pos, n = 1, #data
    while pos <= n do
      local s = q[head]
      if not s then
        return false, string.format("received %d bytes more than sent", n - pos + 1)
      end
      local take = math.min(#s - off, n - pos + 1)
      if data:sub(pos, pos + take - 1) ~= s:sub(off + 1, off + take) then
        return false, string.format("echo mismatch within stream bytes %d..%d",
          self.received, self.received + take - 1)
      end
      pos, off = pos + take, off + take
      self.received, self.pending = self.received + take, self.pending - take
      if off == #s then q[head] = nil; head = head + 1; off = 0 end
    end
    return true
  end
  return c
end

--------------------------------------------------------------------------------
-- Connection helpers (all bounded by a deadline; never spin without net.wait)

-- Write all of `data`, respecting backpressure. Returns true, or nil, message, code.
function M.write_all(conn, data, timeout_ms)
  local deadline = net.clock() + (timeout_ms or 30000) / 1000
  local pos = 1
  while pos <= #data do
    local n, msg, code = conn:write(pos == 1 and data or data:sub(pos))
    if not n then return nil, msg, code end
    pos = pos + n
    if n == 0 then
      if net.clock() > deadline then return nil, "write_all: timed out", "timeout" end
      net.wait(20)
    end
  end
  return true
end

-- Read until EOF, passing every chunk to `sink(chunk)` (default: collect). Returns the
-- collected string (or the byte count when a sink was given), then the read's final
-- message and code (nil, nil after an orderly close), or nil, "timed out".
function M.read_all(conn, sink, timeout_ms, max_len)
  local deadline = net.clock() + (timeout_ms or 30000) / 1000
  local parts, total, collect = {}, 0, not sink
  sink = sink or function(s) parts[#parts + 1] = s end
  local function result() return collect and table.concat(parts) or total end
  while true do
    local s, msg, code = conn:read(max_len or 256 * 1024)
    if s == nil then return result(), msg, code end
    if #s > 0 then
      total = total + #s
      sink(s)
    else
      if net.clock() > deadline then return nil, "read_all: timed out", "timeout" end
      net.wait(20)
    end
  end
end

-- Read exactly n bytes (or until EOF/error/timeout). Returns the string read, plus the
-- message and code if the connection ended first.
function M.read_n(conn, n, timeout_ms)
  local deadline = net.clock() + (timeout_ms or 30000) / 1000
  local parts, got = {}, 0
  while got < n do
    local s, msg, code = conn:read(n - got)
    if s == nil then return table.concat(parts), msg or "eof", code end
    if #s > 0 then
      parts[#parts + 1] = s
      got = got + #s
    else
      if net.clock() > deadline then return table.concat(parts), "read_n: timed out", "timeout" end
      net.wait(20)
    end
  end
  return table.concat(parts)
end

-- Send `total` random bytes through an echo connection and check what comes back:
-- random write sizes (1..opts.max_io, default 200 KiB) and read sizes, writes and reads
-- interleaved, partial and zero writes retried with the rest. Raises on any error or
-- mismatch (opts.timeout_ms, default 120 s). Returns counters: writes, partial, full,
-- reads.
function M.echo_transfer(conn, total, opts)
  opts = opts or {}
  local max_io = opts.max_io or 200 * 1024
  local pool = M.random_bytes(M.MiB + max_io)
  local check = M.echo_checker()
  local stats = { writes = 0, partial = 0, full = 0, reads = 0 }
  local deadline = net.clock() + (opts.timeout_ms or 120000) / 1000
  local sent, chunk, chunk_pos = 0, nil, 1
  while check.received < total do
    local progressed = false
    if sent < total then
      if not chunk then
        local len = math.min(math.random(1, max_io), total - sent)
        local off = math.random(0, #pool - len)
        chunk, chunk_pos = pool:sub(off + 1, off + len), 1
      end
      local rest = chunk_pos == 1 and chunk or chunk:sub(chunk_pos)
      local n, msg, code = conn:write(rest)
      if not n then
        error(string.format("write failed after %d bytes sent: %s (%s)", sent, tostring(msg), tostring(code)), 2)
      end
      if math.type(n) ~= "integer" or n < 0 or n > #rest then error("bad write count " .. tostring(n), 2) end
      stats.writes = stats.writes + 1
      if n == 0 then stats.full = stats.full + 1
      elseif n < #rest then stats.partial = stats.partial + 1 end
      if n > 0 then
        check:push(n == #rest and rest or rest:sub(1, n))
        chunk_pos, sent, progressed = chunk_pos + n, sent + n, true
        if chunk_pos > #chunk then chunk = nil end
      end
    end
    local want = math.random(1, max_io)
    local data, msg, code = conn:read(want)
    if not data then
      error(string.format("read failed after %d bytes received: %s (%s)", check.received,
        tostring(msg), tostring(code)), 2)
    end
    if #data > want then error("read returned more than asked", 2) end
    if #data > 0 then
      stats.reads = stats.reads + 1
      local ok, err = check:feed(data)
      if not ok then error(err, 2) end
      progressed = true
    end
    if not progressed then
      if net.clock() > deadline then
        error(string.format("timed out: sent %d, received %d of %d", sent, check.received, total), 2)
      end
      net.wait(10)
    end
  end
  if check.pending ~= 0 then error("bytes still pending: " .. check.pending, 2) end
  return stats
end

--------------------------------------------------------------------------------
-- TLS: certificates, test servers, child processes

M.tools = M.dir .. "../tools/"
M.python = os.getenv("SLUICE_PYTHON") or "python3"
M.openssl = os.getenv("SLUICE_OPENSSL") or "openssl"

local certs_cache

-- The test PKI (tests/tools/mkcerts.sh), made once per process in a temporary folder
-- (removed when the Lua state closes). Returns a table:
--   .dir, .ca (ca.pem), .password (of client-encrypted.key),
--   :pem(name) / :key(name) (e.g. certs:pem("good")), :path(file)
function M.tls_certs()
  if certs_cache then return certs_cache end
  local p = assert(io.popen("mktemp -d 2>/dev/null || mktemp -d -t sluice"))
  local dir = p:read("l")
  p:close()
  assert(dir and dir ~= "", "mktemp -d failed")
  local log = dir .. ".log"
  local ok = os.execute(string.format("bash %s %s >%s 2>&1",
    shell_quote(M.tools .. "mkcerts.sh"), shell_quote(dir), shell_quote(log)))
  local out = read_file(log) or ""
  os.remove(log)
  if not ok then
    os.execute("rm -rf " .. shell_quote(dir))
    error("tests/tools/mkcerts.sh failed: " .. out, 2)
  end
  local c = { dir = dir, ca = dir .. "/ca.pem" }
  c.password = read_file(dir .. "/password.txt")
  function c:path(file) return self.dir .. "/" .. file end
  function c:pem(name) return self.dir .. "/" .. name .. ".pem" end
  function c:key(name) return self.dir .. "/" .. name .. ".key" end
  certs_cache = c
  return c
end

-- Start a server process: `cmd` is a shell command line (its stdout and stderr go to
-- temporary files, stdin from /dev/null unless `opts.stdin` names a file). `port_of(out)`
-- gets the port from what it printed so far (nil while not there yet). Returns a peer
-- object (stop() / lines() as for start_peer; .out / .err are the files). Raises if the
-- server does not come up within 10 s.
function M.start_server(label, cmd, port_of, opts)
  opts = opts or {}
  local out = os.tmpname()
  local err = out .. ".err"
  local p = assert(io.popen(string.format("exec %s >%s 2>%s <%s & echo $!",
    cmd, shell_quote(out), shell_quote(err), shell_quote(opts.stdin or "/dev/null"))))
  local pid = p:read("l")
  p:close()
  pid = assert(math.tointeger(tonumber(pid)), "could not start " .. label)
  local self = setmetatable({ pid = pid, out = out, err = err, mode = label,
    host = opts.ipv6 and "::1" or "127.0.0.1" }, Peer)
  running[pid] = self
  local port = M.wait_for(function()
    local port = port_of(read_file(out) or "")
    if port then return port end
    if not alive(pid) then return false end
  end, 10000, 10)
  if not port then
    local msg = (read_file(err) or "") .. (read_file(out) or "")
    self:stop()
    error(string.format("%s did not start (%s): %s", label, cmd, msg), 2)
  end
  self.port = port
  return self
end

local function first_line_port(out)
  local line = out:match("^(%d+)\n")
  return line and math.tointeger(tonumber(line))
end

-- The stderr the server wrote so far.
function Peer:stderr()
  return read_file(self.err) or ""
end

-- tests/tools/tls_echo.py MODE [ARG]. opts: cert (name in the PKI, default "good"),
-- client_ca (true: require a client certificate signed by the test CA), alpn (list),
-- tls1_2 / tls1_3 (only that version), ipv6.
function M.start_tls_server(mode, arg, opts)
  opts = opts or {}
  local c = M.tls_certs()
  local cert = opts.cert or "good"
  local args = { shell_quote(M.python), shell_quote(M.tools .. "tls_echo.py") }
  if opts.ipv6 then args[#args + 1] = "-6" end
  args[#args + 1] = "--cert " .. shell_quote(c:pem(cert))
  args[#args + 1] = "--key " .. shell_quote(c:key(cert))
  if opts.client_ca then args[#args + 1] = "--cafile " .. shell_quote(c.ca) end
  if opts.alpn then args[#args + 1] = "--alpn " .. shell_quote(table.concat(opts.alpn, ",")) end
  if opts.tls1_2 then args[#args + 1] = "--tls1_2" end
  if opts.tls1_3 then args[#args + 1] = "--tls1_3" end
  args[#args + 1] = shell_quote(mode)
  if arg then args[#args + 1] = shell_quote(arg) end
  return M.start_server("tls_echo.py " .. mode, table.concat(args, " "), first_line_port, opts)
end

-- `openssl s_server -rev` (each line comes back reversed; a line "CLOSE" makes it close
-- the connection): one connection at a time. opts: cert (default "good"), client_ca
-- (true: -Verify 1 -CAfile ca.pem, a client certificate is required), tls1_2 / tls1_3,
-- alpn (list), ipv6, www (-www instead of -rev: a GET gets a page describing the
-- session, "New, TLSv1.2, ..." or "Reused, ..."), extra (more arguments, a string).
-- tests/tools/http_test_server.py serving the files of dir (its extra routes: see
-- there); opts.ipv6 for ::1, opts.cert/opts.key for HTTPS.
function M.start_http_server(dir, opts)
  opts = opts or {}
  local args = { shell_quote(M.python), shell_quote(M.tools .. "http_test_server.py") }
  if opts.ipv6 then args[#args + 1] = "-6" end
  if opts.cert then
    args[#args + 1] = "--cert " .. shell_quote(opts.cert)
    args[#args + 1] = "--key " .. shell_quote(opts.key)
  end
  args[#args + 1] = shell_quote(dir)
  return M.start_server("http_test_server.py", table.concat(args, " "), first_line_port, opts)
end

function M.start_s_server(opts)
  opts = opts or {}
  local c = M.tls_certs()
  local cert = opts.cert or "good"
  local args = { shell_quote(M.openssl), "s_server", opts.www and "-www" or "-rev",
    "-accept", opts.ipv6 and "'[::1]:0'" or "127.0.0.1:0",
    "-cert", shell_quote(c:pem(cert)), "-key", shell_quote(c:key(cert)) }
  if opts.client_ca then
    args[#args + 1] = "-Verify 1 -CAfile " .. shell_quote(c.ca)
  end
  if opts.tls1_2 then args[#args + 1] = "-tls1_2" end
  if opts.tls1_3 then args[#args + 1] = "-tls1_3" end
  if opts.alpn then args[#args + 1] = "-alpn " .. shell_quote(table.concat(opts.alpn, ",")) end
  if opts.extra then args[#args + 1] = opts.extra end
  return M.start_server("openssl s_server", table.concat(args, " "), function(out)
    local port = out:match("ACCEPT [^\n]*:(%d+)\n")
    return port and math.tointeger(tonumber(port))
  end, opts)
end

-- tests/tools/starttls_server.py (good certificate). opts: ipv6, unix (a path). Its lines() say what
-- reached it: "tls-line TEXT" inside TLS, "plain-after-starttls ..." when no TLS record
-- followed STARTTLS.
function M.start_starttls_server(opts)
  opts = opts or {}
  local c = M.tls_certs()
  local cmd = string.format("%s %s %s--cert %s --key %s", shell_quote(M.python),
    shell_quote(M.tools .. "starttls_server.py"),
    opts.ipv6 and "-6 " or opts.unix and "--unix " .. shell_quote(opts.unix) .. " " or "",
    shell_quote(c:pem("good")), shell_quote(c:key("good")))
  return M.start_server("starttls_server.py", cmd, first_line_port, opts)
end

-- Kill a server at once (SIGKILL), e.g. in the middle of a transfer.
function Peer:kill()
  if not self.pid then return end
  os.execute("kill -9 " .. self.pid .. " 2>/dev/null")
  self:stop()
end

-- Wait (at most timeout_ms, default 10 s) until `conn` is no longer "waiting"; returns
-- its status, message and code ("waiting" on timeout).
function M.wait_status(conn, timeout_ms)
  local deadline = net.clock() + (timeout_ms or 10000) / 1000
  while true do
    local left = math.ceil((deadline - net.clock()) * 1000)
    local status, msg, code = conn:wait_until_connected(math.max(0, math.min(left, 100)))
    if status ~= "waiting" or left <= 0 then return status, msg, code end
  end
end

-- Read one line (up to and including "\n") from `conn`, one byte at a time (for the
-- short lines of line protocols: it never takes a byte past the line). Returns the
-- line without its "\r\n" / "\n", or nil, message, code on EOF / error / timeout.
function M.read_line(conn, timeout_ms)
  local deadline = net.clock() + (timeout_ms or 10000) / 1000
  local parts = {}
  while true do
    local c, msg, code = conn:read(1)
    if c == nil then
      return nil, msg or ("eof after " .. string.format("%q", table.concat(parts))), code
    end
    if c == "\n" then return (table.concat(parts):gsub("\r$", "")) end
    if c == "" then
      if net.clock() > deadline then
        return nil, "read_line: timed out after " .. string.format("%q", table.concat(parts)), "timeout"
      end
      net.wait(10)
    else
      parts[#parts + 1] = c
    end
  end
end

-- Run a Lua chunk (source text) in a child process of the host interpreter under test,
-- with extra environment variables `env` (a table; a value of false unsets). The child
-- gets `arg` = the extra arguments. Returns ok (exit status 0), stdout, stderr.
-- env.ULIMIT_NOFILE (not passed on) limits the child's file descriptors.
function M.run_lua_child(source, env, ...)
  local script = os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write(source)
  f:close()
  local out, err = script .. ".out", script .. ".err"
  local unset, set, limit = {}, {}, ""
  for k, v in pairs(env or {}) do
    if k == "ULIMIT_NOFILE" then limit = "ulimit -n " .. math.tointeger(v) .. " && exec "
    -- writes past the size fail with EFBIG, not with the signal that would kill the child
    elseif k == "ULIMIT_FSIZE_KB" then limit = "trap '' XFSZ && ulimit -f " .. math.tointeger(v) .. " && exec "
    elseif k == "ULIMIT_AS_KB" then limit = "ulimit -v " .. math.tointeger(v) .. " && exec "
    elseif v == false then unset[#unset + 1] = "-u " .. shell_quote(k)   -- env wants these first
    else set[#set + 1] = shell_quote(k .. "=" .. tostring(v)) end
  end
  local prefix = table.move(set, 1, #set, #unset + 1, unset)
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = shell_quote(a) end
  local cmd = string.format("%senv %s timeout -k 5 120 %s %s %s >%s 2>%s </dev/null",
    limit, table.concat(prefix, " "), shell_quote(M.lua), shell_quote(script), table.concat(args, " "),
    shell_quote(out), shell_quote(err))
  local ok = os.execute(cmd)
  -- a Windows child (the specs under wine) writes its text with CRLF
  local stdout = (read_file(out) or ""):gsub("\r\n", "\n")
  local stderr = (read_file(err) or ""):gsub("\r\n", "\n")
  os.remove(script)
  os.remove(out)
  os.remove(err)
  return ok == true, stdout, stderr
end

-- Does the engine speak TLS 1.3? (net.tls13 when it says; else a min_version probe.)
function M.tls13_supported()
  if net.tls13 ~= nil then return net.tls13 == true end
  local conn = net.open_tcp("127.0.0.1", 9, { min_version = "tls1.3" })
  if not conn then return false end
  conn:close()
  return true
end

-- Percentile p (0..1) of a sorted array.
function M.percentile(sorted, p)
  return sorted[math.max(1, math.ceil(#sorted * p))]
end

-- One line of per-call durations (seconds; sorted in place): count, p50, p99,
-- p99.9, max and how many took over 20 µs. `width` pads the name.
function M.call_summary(name, d, width)
  table.sort(d)
  if #d == 0 then return string.format("%-" .. width .. "s calls      0", name) end
  local over = 0
  for i = #d, 1, -1 do
    if d[i] <= 20e-6 then break end
    over = over + 1
  end
  local us = function(p) return M.percentile(d, p) * 1e6 end
  return string.format("%-" .. width .. "s calls %6d   p50 %6.2f µs   p99 %6.2f µs   p99.9 %6.2f µs"
    .. "   max %7.1f µs   over 20 µs: %d", name, #d, us(0.5), us(0.99), us(0.999), d[#d] * 1e6, over)
end

-- The floor under any read() of `size` bytes: `count` same-size Lua string
-- allocations and copies (string.sub of a resident buffer), timed the same way,
-- with no network. Its tail is the allocator's and the machine's, not the engine's.
function M.alloc_floor(count, size)
  local clock = net.clock
  local big = string.rep("x", 1 << 20)
  local durations = {}
  for i = 1, count do
    local off = (i * size) % (#big - size)
    local t0 = clock()
    local s = big:sub(off + 1, off + size)
    durations[i] = clock() - t0
    if #s ~= size then error("short sub") end
  end
  return durations
end

-- The PKI folder goes when the Lua state closes (after the servers using it).
M._certs_reaper = setmetatable({}, { __gc = function()
  if certs_cache then
    os.execute("rm -rf " .. shell_quote(certs_cache.dir))
    certs_cache = nil
  end
end })


--------------------------------------------------------------------------------
-- Servers made with this API, Unix sockets, child processes (server_spec,
-- options_spec, stream_spec, unix_spec, happy_eyeballs_spec, tests/bench/scale_idle.lua)

-- Assert that fn() raises an error whose message contains `text` (plain find); returns
-- the message. The call under test sits in a closure so luaL_argerror names it.
function M.assert_raises(text, fn)
  local ok, err = pcall(fn)
  if ok then error("expected an error containing: " .. text, 2) end
  if not tostring(err):find(text, 1, true) then
    error(string.format("error %q does not contain %q", tostring(err), text), 2)
  end
  return tostring(err)
end

-- Are we root (privileged ports can be bound, permission checks do not apply)?
function M.is_root()
  if os.getenv("USER") == "root" then return true end
  local p = io.popen("id -u 2>/dev/null")
  local uid = p and p:read("l")
  if p then p:close() end
  return uid == "0"
end

-- Is the IPv6 loopback (::1) configured?
function M.ipv6_loopback()
  local s = read_file("/proc/net/if_inet6")
  if not s then return true end   -- not Linux: assume it is
  return s:find("00000000000000000000000000000001", 1, true) ~= nil
end

local temp_dirs = {}

-- A fresh temporary folder (removed when the Lua state closes).
function M.temp_dir()
  local p = assert(io.popen("mktemp -d 2>/dev/null || mktemp -d -t sluice"))
  local dir = p:read("l")
  p:close()
  assert(dir and dir ~= "", "mktemp -d failed")
  temp_dirs[#temp_dirs + 1] = dir
  return dir
end

M._temp_reaper = setmetatable({}, { __gc = function()
  for _, dir in ipairs(temp_dirs) do os.execute("rm -rf " .. shell_quote(dir)) end
  temp_dirs = {}
end })

-- Does `path` exist (any kind of file: a socket cannot be opened, but is there)?
function M.path_exists(path)
  local f, _, errno = io.open(path, "rb")
  if f then f:close() return true end
  return errno ~= 2   -- ENOENT
end

-- A port nobody listens on (on 127.0.0.1 nor ::1, as far as anyone can tell): a peer's
-- ephemeral port, after the peer is gone.
function M.closed_port()
  local p = M.start_peer("close")
  local port = p.port
  p:stop()
  return port
end

-- Start a child process (`cmd`: shell command line; stdout and stderr to temporary
-- files; stdin from opts.stdin or /dev/null). Returns an object like a peer's (stop(),
-- kill()) plus :alive(), :stdout(), :stderr(), :wait_exit(ms) → true once it is gone.
function M.spawn(label, cmd, opts)
  opts = opts or {}
  local out = os.tmpname()
  local err = out .. ".err"
  local p = assert(io.popen(string.format("exec %s >%s 2>%s <%s & echo $!",
    cmd, shell_quote(out), shell_quote(err), shell_quote(opts.stdin or "/dev/null"))))
  local pid = p:read("l")
  p:close()
  pid = assert(math.tointeger(tonumber(pid)), "could not start " .. label)
  local self = setmetatable({ pid = pid, out = out, err = err, mode = label }, Peer)
  running[pid] = self
  return self
end

-- Start a server that takes its port on the command line and prints nothing useful
-- (tinyproxy, microsocks): `cmd_of(port)` gives the command line for a free loopback
-- port; it is up once a connection to 127.0.0.1:port succeeds. A port taken meanwhile
-- by someone else (the server exits) is retried with another. Returns a peer object
-- (.port, stop()), or raises.
function M.start_on_free_port(label, cmd_of)
  local last
  for _ = 1, 5 do
    local probe = assert(net.create_server("127.0.0.1", 0))
    local port = probe:get_port()
    probe:close()
    local ok, peer = pcall(M.start_server, label, cmd_of(port), function()
      local c = net.open_tcp("127.0.0.1", port, { connect_timeout = 1000 })
      local up = c and c:wait_until_connected(1000) == "success"
      if c then c:close() end
      return up and port or nil
    end)
    if ok then return peer end
    last = peer
  end
  error(last, 2)
end

function Peer:alive() return self.pid ~= nil and alive(self.pid) end
function Peer:stdout() return read_file(self.out) or "" end
function Peer:wait_exit(timeout_ms)
  return M.wait_for(function() return not self:alive() end, timeout_ms or 10000, 10) ~= nil
end

-- Wait (at most timeout_ms, default 10 s) for server:accept() to give a connection.
-- Returns it, or nil and a message.
-- tinyproxy (HTTP CONNECT and plain forwarding) on a free port, allowing CONNECT to
-- `ports`, with BasicAuth when `auth` is "user password"; its config goes in dir.
function M.start_tinyproxy(dir, name, ports, auth)
  local conf = dir .. "/" .. name .. ".conf"
  return M.start_on_free_port("tinyproxy", function(port)
    local f = assert(io.open(conf, "wb"))
    f:write(("Port %d\nListen 127.0.0.1\nTimeout 30\nMaxClients 50\nAllow 127.0.0.1\nLogLevel Info\n"):format(port))
    if M.is_root() then f:write("User nobody\nGroup nogroup\n") end
    for _, p in ipairs(ports) do f:write(("ConnectPort %d\n"):format(p)) end
    if auth then f:write("BasicAuth " .. auth .. "\n") end
    f:close()
    return "tinyproxy -d -c " .. shell_quote(conf)
  end)
end

-- nginx (Debian nginx-light): its path, or nil when it is not installed.
M.nginx = (function()
  for _, p in ipairs{ "nginx", "/usr/sbin/nginx" } do
    if os.execute("command -v " .. p .. " >/dev/null 2>&1") then return p end
  end
end)()

-- nginx in the foreground, one process, everything under dir (which holds www/
-- and tmp/): files from dir/www, gzip for text, /empty a 204, /slow/ rate-limited
-- (opts.rate, default 1m), /chunked/ chunked; opts.cert/opts.key for TLS; its access
-- log (dir/NAME-access.log) gives each request's connection number first.
function M.start_nginx(dir, name, opts)
  opts = opts or {}
  local conf = dir .. "/" .. name .. ".conf"
  return M.start_on_free_port("nginx", function(port)
    local f = assert(io.open(conf, "wb"))
    f:write(([[
daemon off; master_process off; worker_processes 1;
error_log %s/%s-error.log; pid %s/%s.pid;
events { worker_connections 64; }
http {
  log_format conns '$connection $request_method $uri $status';
  access_log %s/%s-access.log conns;
  client_body_temp_path %s/tmp; proxy_temp_path %s/tmp; fastcgi_temp_path %s/tmp;
  uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp;
  gzip on; gzip_types text/plain; gzip_min_length 0;
  keepalive_requests 10000; keepalive_timeout 60s;
  types { text/plain txt; application/octet-stream bin; }
  server {
    listen 127.0.0.1:%d %s;
    %s
    root %s/www;
    location = /empty { return 204; }
    location /slow/ { alias %s/www/; limit_rate %s; }
    location /chunked/ { alias %s/www/; chunked_transfer_encoding on; gzip on; gzip_types *; }
  }
}
]]):format(dir, name, dir, name, dir, name, dir, dir, dir, dir, dir, port, opts.cert and "ssl" or "",
      opts.cert and ("ssl_certificate %s; ssl_certificate_key %s;"):format(opts.cert, opts.key) or "",
      dir, dir, opts.rate or "1m", dir))
    f:close()
    return shell_quote(M.nginx) .. " -p " .. shell_quote(dir) .. " -c " .. shell_quote(conf)
  end)
end

-- microsocks (SOCKS5) on a free port; auth: "-u user -P pass" or nil.
function M.start_microsocks(auth)
  return M.start_on_free_port("microsocks", function(port)
    return ("microsocks -i 127.0.0.1 -p %d%s"):format(port, auth and (" " .. auth) or "")
  end)
end

function M.accept_one(server, timeout_ms)
  local got, msg
  M.wait_for(function()
    local c, m = server:accept()
    if c then got = c return true end
    if m then msg = m return true end
  end, timeout_ms or 10000, 5)
  if got then return got end
  return nil, msg or "accept: nothing within the time limit"
end

-- A connection from a client made with this API to `server`, both ends established:
-- returns client, accepted. `host` defaults to 127.0.0.1; opts go to open_tcp.
function M.connect_pair(server, host, opts)
  local client = assert(net.open_tcp(host or "127.0.0.1", server:get_port(), opts))
  local accepted = assert(M.accept_one(server))
  local status, msg = M.wait_status(client)
  assert(status == "success", "client: " .. tostring(status) .. " " .. tostring(msg))
  status, msg = M.wait_status(accepted)
  assert(status == "success", "accepted: " .. tostring(status) .. " " .. tostring(msg))
  return client, accepted
end

-- Wait (at most timeout_ms, default 10 s) until `conn` is "failure" (an established
-- connection that times out, is reset or closed); returns its status, message, code
-- (the last status seen on timeout). Does not read: bytes still unread hold the
-- failure back, as get_status documents.
function M.wait_failure(conn, timeout_ms)
  local r
  M.wait_for(function()
    r = table.pack(conn:get_status())
    return r[1] == "failure"
  end, timeout_ms or 10000, 10)
  return table.unpack(r, 1, r.n)
end

-- Run a frame loop: `step()` returns done, progressed. Between frames without progress
-- it waits in net.wait (at most 5 ms). Raises after timeout_ms, with describe() in the
-- message when given.
function M.run_frames(step, timeout_ms, describe)
  local deadline = net.clock() + (timeout_ms or 60000) / 1000
  local frames = 0
  while true do
    frames = frames + 1
    local done, progressed = step()
    if done then return frames end
    if net.clock() > deadline then
      error("frame loop timed out after " .. frames .. " frames"
        .. (describe and (": " .. describe()) or ""), 2)
    end
    if not progressed then net.wait(5) end
  end
end

-- An echo service on a server made with this API, driven by the test's own frame
-- loop: svc:step() accepts what is waiting, echoes what arrived (respecting each
-- connection's backpressure), and closes a connection once its client's EOF came and
-- everything was written back. Returns progressed. Counters: accepted, finished;
-- errors: list of messages of connections that ended in an error.
function M.echo_service(server, opts)
  opts = opts or {}
  local read_size = opts.read_size or 64 * 1024
  local svc = { server = server, conns = {}, accepted = 0, finished = 0, errors = {} }
  function svc:step()
    local progressed = false
    while true do
      local c, msg, code = self.server:accept()
      if not c then
        if msg then error("accept: " .. tostring(msg) .. " (" .. tostring(code) .. ")") end
        break
      end
      self.accepted = self.accepted + 1
      self.conns[#self.conns + 1] = { conn = c }
      if opts.on_accept then opts.on_accept(c) end
      progressed = true
    end
    for i = #self.conns, 1, -1 do
      local e = self.conns[i]
      for _ = 1, 8 do
        if e.out then
          local n, msg = e.conn:write(e.out)
          if not n then
            self.errors[#self.errors + 1] = "write: " .. tostring(msg)
            e.out, e.eof = nil, true
            break
          end
          if n > 0 then progressed = true end
          if n == #e.out then e.out = nil
          else
            if n > 0 then e.out = e.out:sub(n + 1) end
            break   -- send buffer full: next frame
          end
        end
        if e.eof then break end
        local data, msg = e.conn:read(read_size)
        if data == nil then
          if msg then self.errors[#self.errors + 1] = "read: " .. tostring(msg) end
          e.eof = true
        elseif #data == 0 then
          break
        else
          e.out, progressed = data, true
        end
      end
      if e.eof and not e.out then
        e.conn:close()
        table.remove(self.conns, i)
        self.finished = self.finished + 1
        progressed = true
      end
    end
    return progressed
  end
  function svc:close_all()
    for _, e in ipairs(self.conns) do e.conn:close() end
    self.conns = {}
  end
  return svc
end

-- A client stream for the frame loop: writes `total` bytes of `pool` starting at
-- `offset` through `conn` and checks that the same bytes come back, in order.
-- cl:step() returns progressed; raises on a mismatch or a failed connection;
-- cl.done once everything came back.
function M.stream_client(conn, pool, offset, total, opts)
  opts = opts or {}
  local chunk = opts.chunk or 64 * 1024
  local cl = { conn = conn, sent = 0, received = 0, total = total, done = total == 0 }
  function cl:step()
    local progressed = false
    if self.sent < total then
      -- the piece not yet accepted is kept, so a full buffer costs no new string
      local piece = self.piece
      if not piece then
        local len = math.min(chunk, total - self.sent)
        piece = pool:sub(offset + self.sent + 1, offset + self.sent + len)
      end
      local n, msg, code = self.conn:write(piece)
      if not n then
        error(string.format("%s: write failed after %d bytes: %s (%s)", tostring(self.conn),
          self.sent, tostring(msg), tostring(code)))
      end
      if n == #piece then self.piece = nil
      elseif n > 0 then self.piece = piece:sub(n + 1)
      else self.piece = piece end
      if n > 0 then self.sent, progressed = self.sent + n, true end
    end
    local data, msg, code = self.conn:read(256 * 1024)
    if data == nil then
      error(string.format("%s: read ended after %d of %d bytes: %s (%s)", tostring(self.conn),
        self.received, total, tostring(msg), tostring(code)))
    end
    if #data > 0 then
      local want = pool:sub(offset + self.received + 1, offset + self.received + #data)
      if data ~= want then
        local k = 1
        while data:byte(k) == want:byte(k) do k = k + 1 end
        error(string.format("%s: echo mismatch at stream byte %d (got %s, want %s)",
          tostring(self.conn), self.received + k - 1, tostring(data:byte(k)), tostring(want:byte(k))))
      end
      self.received, progressed = self.received + #data, true
      if self.received == total then self.done = true end
      if self.received > total then error("received more than was sent") end
    end
    return progressed
  end
  return cl
end

return M
