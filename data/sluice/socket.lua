-- socket.lua: LuaSocket's TCP interface on the polled `net` module, so code
-- written for LuaSocket runs unchanged: `package.preload.socket = function()
-- return require "sluice.socket" end`, or `local socket = require "sluice.socket"`.
-- Plain Lua on the public `net` API; runs on the caller's thread.
--
-- What it gives: socket.tcp/tcp4/tcp6, socket.connect/connect4/connect6,
-- socket.bind, socket.select, socket.gettime, socket.sleep, socket.try,
-- socket.newtry, socket.protect, socket.skip, socket.sink/source/choose
-- (LTN12, with sinkt/sourcet), and the objects tcp{master}, tcp{client} and
-- tcp{server} with connect, bind, listen, accept, send, receive, close,
-- shutdown, settimeout/gettimeout, getpeername, getsockname, getstats,
-- setstats, setoption/getoption, dirty, getfd and getfamily. Returns follow
-- LuaSocket 3.0 to the value: 1 (a float, as LuaSocket pushes it) on success,
-- `nil, "timeout", partial` / `nil, "closed", partial` from receive, `nil,
-- err, last_index` from send, and its error strings ("connection refused",
-- "address already in use", "closed", "timeout", ...). No UDP.
--
-- Waiting. As in LuaSocket, every object starts blocking: connect, accept,
-- send, receive and select wait until done. sluice waits in net.wait (the
-- calling thread sleeps until the I/O thread reports activity), so:
--   * settimeout(0): nothing ever waits; calls that cannot finish at once
--     return nil, "timeout" (the partial data with it). This is the mode for
--     a frame loop: call socket.select(r, w, 0) or receive once per frame.
--   * settimeout(t > 0): waits at most t seconds; nil or negative: no limit.
--   * in an editor thread (core.add_thread in Lite XL or Pragtical) a wait
--     yields to the editor instead of sleeping, so blocking-style code there
--     never freezes the editor; on the editor's main thread it would block.
--   * bind with a host name waits for the lookup (use an IP literal or "*").
--
-- Differences that show: send returns once the bytes are in the connection's
-- send buffer (1 MiB), not in the kernel's; getfd returns a number naming the
-- object, not a descriptor; socket.select treats a client as writable while
-- less than 512 KiB wait to be sent; connect of a client with an address to
-- bind to locally (socket.connect's locaddr) is not supported; options that
-- net has no equivalent for (reuseport, ipv6-v6only, buffer sizes, ...) make
-- setoption return nil and a message; a port is a number (no service names
-- such as "http"); receive(0) returns "" at once, without waiting for data;
-- dns.getnameinfo, setfd and tcp.class are missing.

local runtime = require((... and (...):match("^(.*%.)[^.]*$") or "sluice.") .. "runtime")
local net = runtime.load_net(...)
local write_from = runtime.writer(net)

local clock = net.clock
local floor, huge = math.floor, math.huge

---@class sluice.socket
local socket = {
  _VERSION = "LuaSocket 3.0.0 (sluice.socket)",
  _SETSIZE = math.maxinteger,
  _SOCKETINVALID = -1,
  _DEBUG = false,
  BLOCKSIZE = 2048,
}

local RECV_CHUNK = 64 * 1024       -- bytes asked from net per read while looking for a line
local BULK_CHUNK = 256 * 1024      -- per read for "*a" and byte counts
local WRITABLE_BELOW = 512 * 1024  -- select: a client is writable below this many pending bytes
local WAIT_SLICE = 100             -- ms: longest single net.wait (then conditions are checked again)

-- LuaSocket's texts for the system errors it names itself; others pass as the system says.
local LUASOCKET_TEXT = {
  ["address already in use"] = "address already in use",
  ["transport endpoint is already connected"] = "already connected",
  ["permission denied"] = "permission denied",
  ["connection refused"] = "connection refused",
  ["connection reset by peer"] = "closed",
  ["software caused connection abort"] = "closed",
  ["connection timed out"] = "timeout",
  ["broken pipe"] = "closed",
}

-- A net failure as LuaSocket reports it.
local function ls_error(msg, code)
  if code == "closed" or code == "reset" or msg == nil then return "closed" end
  if code == "timeout" then return "timeout" end
  if code == "refused" then return "connection refused" end
  if code == "dns" then return "host or service not provided, or not known" end
  if code == "tls" or code == "tls-verify" then return msg end
  local why = runtime.reason(msg)
  return LUASOCKET_TEXT[why:lower()] or why
end

-- A failure seen by send or receive: a connection that never got established
-- is simply "closed" there, as LuaSocket reports it.
local CONNECT_CODES = { refused = true, dns = true, unreachable = true }
local function io_error(msg, code)
  if CONNECT_CODES[code] then return "closed" end
  return ls_error(msg, code)
end

--------------------------------------------------------------------------------
-- Objects

---@class sluice.socket.tcp
local tcp = {}
local tcp_mt = { __index = tcp }
local next_id = 0

local by_id = setmetatable({}, { __mode = "v" })   -- getfd's number -> the object, for select

local function new_tcp(family)
  next_id = next_id + 1
  local o = setmetatable({
    cls = "master", family = family, id = next_id,
    block = -1.0, total = -1.0,
    rbuf = "", rpos = 1,
    received = 0.0, sent = 0.0, birthday = clock(),
    options = {},
  }, tcp_mt)
  by_id[next_id] = o
  return o
end

tcp_mt.__tostring = function(self) return string.format("tcp{%s}: %p", self.cls, self) end

-- Raises LuaSocket's argument error unless `self` is an object of class `want`
-- ("client", "server", "master" or "any").
local function check(self, want, fname)
  if getmetatable(self) ~= tcp_mt or (want ~= "any" and self.cls ~= want) then
    error(string.format("bad argument #1 to '%s' (tcp{%s} expected)", fname, want), 3)
  end
  return self
end

local function buffered(self) return #self.rbuf - self.rpos + 1 end

-- Takes up to n buffered bytes (all of them when n is nil).
local function take(self, n)
  local avail = buffered(self)
  if avail <= 0 then return "" end
  n = (n == nil or n > avail) and avail or n
  local s = (self.rpos == 1 and n == #self.rbuf) and self.rbuf or self.rbuf:sub(self.rpos, self.rpos + n - 1)
  self.rpos = self.rpos + n
  self.received = self.received + n
  if self.rpos > #self.rbuf then self.rbuf, self.rpos = "", 1 end
  return s
end

-- Timeouts, LuaSocket's rules: "b" alone bounds the whole call, "t" (total)
-- too; with both, each wait without progress is at most "b".
local function op_start() local t = clock() return { t0 = t, last = t } end

local function time_left(self, op)
  local b, t, now = self.block, self.total, clock()
  if b < 0 and t < 0 then return huge end
  if b < 0 then return t - (now - op.t0) end
  if t < 0 then return b - (now - op.t0) end
  return math.min(b - (now - op.last), t - (now - op.t0))
end

-- Waits for activity unless the operation's time is up; false when it is.
local function wait_more(self, op)
  local left = time_left(self, op)
  if left <= 0 then return false end
  runtime.pause(net, left == huge and WAIT_SLICE or math.max(1, math.min(WAIT_SLICE, math.ceil(left * 1000))))
  return true
end

--------------------------------------------------------------------------------
-- receive

-- Reads from the connection: data ("" when none yet), or nil, err at the
-- end, and true when that end is the peer's orderly close (not a reset).
local function pull(self, max)
  if not self.conn then return nil, "closed", false end
  local data, msg, code = self.conn:read(max)
  if data == nil then return nil, io_error(msg, code), msg == nil end
  return data
end

-- Bytes until the next "\n"; the CRs are dropped as LuaSocket does.
local function recv_line(self, op, parts)
  while true do
    local e = self.rbuf:find("\n", self.rpos, true)
    if e then
      parts[#parts + 1] = take(self, e - self.rpos)
      take(self, 1)
      return true
    end
    parts[#parts + 1] = take(self)
    local data, err = pull(self, RECV_CHUNK)
    if not data then return nil, err end
    if data ~= "" then
      self.rbuf, self.rpos, op.last = data, 1, clock()
    elseif not wait_more(self, op) then
      return nil, "timeout"
    end
  end
end

local function recv_count(self, op, parts, want)
  local got = 0
  while got < want do
    local s = take(self, want - got)
    if s == "" then
      local need = want - got
      -- small counts read ahead into the buffer: receive(1) in a loop costs one net read per chunk
      local data, err = pull(self, need < RECV_CHUNK and RECV_CHUNK or math.min(need, BULK_CHUNK))
      if not data then return nil, err end
      if data == "" then
        if not wait_more(self, op) then return nil, "timeout" end
      elseif #data > need then
        self.rbuf, self.rpos, op.last = data, 1, clock()   -- taken from the buffer next turn
      else
        s, op.last = data, clock()
        self.received = self.received + #data
      end
    end
    if s ~= "" then
      parts[#parts + 1] = s
      got = got + #s
    end
  end
  return true
end

-- Everything until the peer closes: success if any byte came before its
-- orderly close, else "closed" (a reset included: the data may be cut).
local function recv_all(self, op, parts)
  local got = 0
  local s = take(self)
  parts[#parts + 1], got = s, #s
  while true do
    local data, err, eof = pull(self, BULK_CHUNK)
    if not data then
      if eof and got > 0 then return true end
      return nil, err
    end
    if data == "" then
      if not wait_more(self, op) then return nil, "timeout" end
    else
      parts[#parts + 1], got, op.last = data, got + #data, clock()
      self.received = self.received + #data
    end
  end
end

local function no_cr(s) return (s:gsub("\r", "")) end

---Reads by LuaSocket's pattern: "*l" (or "l", the default) a line without its
---CR/LF, "*a" (or "a") everything until the peer closes, or a byte count.
---`prefix` is put in front of what is returned (and counts toward a byte count).
---Returns the data, or nil, "timeout"|"closed"|message, partial.
---@param pattern? string|integer
---@param prefix? string
---@return string|nil data
---@return string? err
---@return string? partial
function tcp:receive(pattern, prefix)
  check(self, "client", "receive")
  if (pattern == nil or pattern == "*l") and prefix == nil then   -- the common case, kept cheap
    local rpos = self.rpos
    local e = self.rbuf:find("\n", rpos, true)
    if e then
      local line = self.rbuf:sub(rpos, e - 1)
      self.rpos, self.received = e + 1, self.received + (e - rpos + 1)
      if self.rpos > #self.rbuf then self.rbuf, self.rpos = "", 1 end
      if line:find("\r", 1, true) then line = no_cr(line) end
      return line, nil, nil
    end
  end
  if prefix == nil and not self.closed and math.type(pattern) == "integer" and pattern >= 0
     and buffered(self) >= pattern then
    return take(self, pattern), nil, nil   -- a count already buffered (read ahead), kept cheap too
  end
  if prefix ~= nil and type(prefix) ~= "string" and type(prefix) ~= "number" then
    error("bad argument #3 to 'receive' (string expected, got " .. type(prefix) .. ")", 2)
  end
  prefix = prefix == nil and "" or tostring(prefix)
  local parts, ok, err = { prefix }, nil, nil
  local op = op_start()
  if self.closed then return nil, "closed", prefix end
  local n = pattern ~= nil and tonumber(pattern)
  if n then
    if n < 0 then error("bad argument #2 to 'receive' (invalid receive pattern)", 2) end
    n = floor(n)
    if #prefix == 0 or n > #prefix then ok, err = recv_count(self, op, parts, n - #prefix) else ok = true end
  else
    local p = pattern == nil and "*l" or pattern
    if type(p) ~= "string" then error("bad argument #2 to 'receive' (invalid receive pattern)", 2) end
    if p:sub(1, 2) == "*l" or p == "l" then
      ok, err = recv_line(self, op, parts)
      for i = 2, #parts do parts[i] = no_cr(parts[i]) end
    elseif p:sub(1, 2) == "*a" or p == "a" then
      ok, err = recv_all(self, op, parts)
    else
      error("bad argument #2 to 'receive' (invalid receive pattern)", 2)
    end
  end
  local data = table.concat(parts)
  if ok then return data, nil, nil end   -- three values, as LuaSocket returns
  return nil, err, data
end

--------------------------------------------------------------------------------
-- send

-- send's i and j: numbers, or strings that are, as luaL_optnumber takes them.
local function check_index(v, k)
  if v ~= nil and not tonumber(v) then
    error("bad argument #" .. k .. " to 'send' (number expected, got " .. type(v) .. ")", 3)
  end
end

---Sends data:sub(i, j) (as string.sub counts). Returns the index of the last
---byte sent, or nil, "timeout"|"closed"|message, index of the last byte sent.
---"Sent" means accepted into the connection's send buffer.
---@param data string
---@param i? integer
---@param j? integer
---@return number|nil last
---@return string? err
---@return number? last_sent
function tcp:send(data, i, j)
  check(self, "client", "send")
  if type(data) ~= "string" and type(data) ~= "number" then
    error("bad argument #1 to 'send' (string expected, got " .. type(data) .. ")", 2)
  end
  check_index(i, 2)
  check_index(j, 3)
  data = tostring(data)
  local size = #data
  i, j = floor(tonumber(i) or 1), floor(tonumber(j) or -1)
  if i < 0 then i = size + i + 1 end
  if j < 0 then j = size + j + 1 end
  if i < 1 then i = 1 end
  if j > size then j = size end
  local sent = 0
  if self.closed or not self.conn then return nil, "closed", i - 1.0 end
  local op = op_start()
  local piece = (i == 1 and j == size) and data or (i <= j and data:sub(i, j) or "")
  while sent < #piece do
    local n, msg, code = write_from(self.conn, piece, sent + 1)
    if not n then
      self.sent = self.sent + sent
      return nil, io_error(msg, code), sent + i - 1.0
    end
    if n > 0 then sent, op.last = sent + n, clock()
    elseif not wait_more(self, op) then
      self.sent = self.sent + sent
      return nil, "timeout", sent + i - 1.0
    end
  end
  self.sent = self.sent + sent
  return sent + i - 1.0, nil, nil
end

--------------------------------------------------------------------------------
-- connect, bind, listen, accept

-- The connection options collected by setoption before the connection exists.
local function conn_options(self)
  local o = self.options
  -- (ssl = false: a table with no connection option in it would read as TLS options)
  local opts = { ssl = false, family = self.family, nodelay = o["tcp-nodelay"], keepalive = o.keepalive }
  if o["tcp-keepidle"] and o.keepalive then opts.keepalive = o["tcp-keepidle"] end
  if o.linger then opts.linger = o.linger.on and floor(o.linger.timeout * 1000) or nil end
  return opts
end

local function check_port(port, fname, lo)
  local p = tonumber(port)
  if type(port) ~= "number" and type(port) ~= "string" then
    error(string.format("bad argument #3 to '%s' (string expected, got %s)", fname, type(port)), 3)
  end
  if not p or p ~= floor(p) or p < lo or p > 65535 then return nil end
  return floor(p)
end

-- An established connection, as LuaSocket's connect tells it: 1 once, then
-- the kernel's EISCONN. `told` false leaves the next connect returning 1 too.
local function connected(self, told)
  if self.told_connected then return nil, "already connected" end
  self.told_connected = told
  return 1.0
end

-- Waits until the connection is established; 1 or nil, err. A failure it
-- reports is told: the next connect is another attempt (LuaSocket's order).
local function await_connect(self)
  local op = op_start()
  while true do
    local status, msg, code = self.conn:get_status()
    -- LuaSocket's non-blocking connect is always still in progress: the connect
    -- its program makes after select must return 1 too
    if status == "success" then return connected(self, self.block ~= 0 and self.total ~= 0) end
    if status == "failure" then self.told = true return nil, ls_error(msg, code) end
    if not wait_more(self, op) then return nil, "timeout" end
  end
end

---Connects to address:port (an IP or a name, which resolves in the
---background). Blocking by default; with settimeout(0) it returns
---nil, "timeout" at once and the connection goes on (or 1 when it is already
---up): socket.select reports the object writable once it is established, and
---connect again returns 1.
---@param address string
---@param port integer|string
---@return number|nil ok
---@return string? err
function tcp:connect(address, port)
  check(self, "any", "connect")
  if type(address) ~= "string" and type(address) ~= "number" then
    error("bad argument #2 to 'connect' (string expected, got " .. type(address) .. ")", 2)
  end
  local p = check_port(port, "connect", 1)
  if self.closed then return nil, "closed" end
  if self.conn then
    local status, msg, code = self.conn:get_status()
    if status == "success" then return connected(self, true) end
    if status == "waiting" then return nil, "Operation already in progress" end
    -- as LuaSocket: a failure is told once (after select), then connect tries anew
    if not self.told then
      self.told = true
      return nil, ls_error(msg, code)
    end
    self.conn:close()
    self.conn, self.cls, self.told = nil, "master", nil
  end
  if self.cls ~= "master" then return nil, "already connected" end
  if self.server then return nil, "binding a local address is not supported by sluice.socket" end   -- bound: it listens
  if not p then return nil, "service not supported for socket type" end
  local conn, msg, code = net.open_tcp(tostring(address), p, conn_options(self))
  if not conn then return nil, ls_error(msg, code) end   -- still a master: it may try another address
  self.cls, self.conn = "client", conn
  return await_connect(self)
end

-- net's address for `name` once resolved (waiting for it), or nil, message, code.
local function resolved(name)
  local addr, msg, code = net.resolve_address(name)
  if not addr then return nil, msg, code end
  local status
  repeat
    status, msg, code = addr:get_status()
    if status == "waiting" then runtime.pause(net, WAIT_SLICE) end
  until status ~= "waiting"
  if status == "failure" then return nil, msg, code end
  return addr
end

-- An IP for bind: "*" is every interface; a name is looked up (waiting for it).
local function bind_address(self, address)
  if address == "*" then   -- IPv4's wildcard unless the object is IPv6's, as LuaSocket binds it
    return self.family == "inet6" and "::" or "0.0.0.0"
  end
  local addr, msg, code = resolved(address)
  if not addr then return false, ls_error(msg, code) end
  return addr
end

local function listen_on(self, backlog)
  local opts = { backlog = backlog, reuseaddr = self.options.reuseaddr == true }
  local server, msg, code = net.create_server(self.bound_addr, self.bound_port, opts)
  if not server then return nil, ls_error(msg, code) end
  self.server, self.backlog = server, backlog
  self.bound_port = server:get_port()
  return true
end

---Binds to address:port ("*": every interface; port 0: an ephemeral one).
---The socket is listening from here on (with listen's default backlog, 32);
---`listen` makes it a server. 1, or nil and an error such as
---"address already in use".
---@param address string
---@param port integer|string
---@return number|nil ok
---@return string? err
function tcp:bind(address, port)
  check(self, "master", "bind")
  if type(address) ~= "string" then
    error("bad argument #2 to 'bind' (string expected, got " .. type(address) .. ")", 2)
  end
  local p = check_port(port, "bind", 0)
  if not p then return nil, "service not supported for socket type" end
  if self.closed then return nil, "closed" end
  if self.server then return nil, "Invalid argument" end
  local addr, err = bind_address(self, address)
  if addr == false then return nil, err end
  self.bound_addr, self.bound_port = addr, p
  local ok
  ok, err = listen_on(self, 32)
  if not ok then return nil, err end
  return 1.0
end

---Makes a bound master a server that accepts connections (backlog: pending
---connections the kernel keeps, default 32; after `bind`, which already
---listens, the socket keeps bind's 32, so that no client that connected in
---between is dropped). 1 or nil, err.
---@param backlog? integer
---@return number|nil ok
---@return string? err
function tcp:listen(backlog)
  check(self, "master", "listen")
  backlog = floor(tonumber(backlog) or 32)
  if self.closed then return nil, "closed" end
  if not self.server then
    self.bound_port = 0   -- as the system does: listening unbound picks an ephemeral port
    local ok, err = listen_on(self, backlog)
    if not ok then return nil, err end
  end
  self.cls = "server"
  return 1.0
end

-- What the kernel copies from a listening socket to the ones it accepts.
local INHERITED = { "tcp-nodelay", "keepalive", "tcp-keepidle", "linger" }

local function wrap_client(conn, family, server_options)
  local c = new_tcp(family)
  c.cls, c.conn = "client", conn
  for _, name in ipairs(INHERITED) do
    if server_options[name] ~= nil then c:setoption(name, server_options[name]) end
  end
  return c
end

-- The next connection the server has (select may have taken it early).
local function next_accepted(self)
  local q = self.accepted
  if q and #q > 0 then return table.remove(q, 1) end
  local conn, msg, code = self.server:accept()
  if conn then return conn end
  if msg then return nil, ls_error(msg, code) end
  return false
end

---Waits for a connection and returns it as a tcp{client}; nil, "timeout"
---when the timeout passes first.
---@return sluice.socket.tcp|nil client
---@return string? err
function tcp:accept()
  check(self, "server", "accept")
  if self.closed then return nil, "closed" end
  local op = op_start()
  while true do
    local conn, err = next_accepted(self)
    if conn then return wrap_client(conn, self.family, self.options) end
    if conn == nil then return nil, err end
    if not wait_more(self, op) then return nil, "timeout" end
  end
end

--------------------------------------------------------------------------------
-- The rest of the object

---Closes the object; the connection's buffered bytes are still delivered in
---the background. Always 1.
---@return number
function tcp:close()
  check(self, "any", "close")
  if self.conn then self.conn:close() end
  if self.server then self.server:close() end
  for _, c in ipairs(self.accepted or {}) do c:close() end   -- taken early by select
  self.accepted = nil
  self.closed = true
  self.rbuf, self.rpos = "", 1
  return 1.0
end
tcp_mt.__close = function(self) self:close() end

---Half-closes: "send" (a FIN after what was sent), "receive" or "both" (default). 1.
---@param mode? "send"|"receive"|"both"
---@return number
function tcp:shutdown(mode)
  check(self, "client", "shutdown")
  mode = mode == nil and "both" or mode
  if mode ~= "send" and mode ~= "receive" and mode ~= "both" then
    error("bad argument #2 to 'shutdown' (invalid option '" .. tostring(mode) .. "')", 2)
  end
  if self.conn and not self.closed then
    if mode ~= "send" then   -- what has arrived stays readable, as after the system's SHUT_RD
      local parts = { self.rbuf:sub(self.rpos) }
      repeat
        local d = self.conn:read(BULK_CHUNK)
        parts[#parts + 1] = d
      until not d or d == ""
      self.rbuf, self.rpos = table.concat(parts), 1
    end
    self.conn:shutdown(mode)
  end
  return 1.0
end

---Sets the timeout in seconds (nil or negative: none; 0: never wait).
---mode "b" (default): for each call; "t": the total of a call. 1.
---@param value? number
---@param mode? "b"|"t"|"r"
---@return number
function tcp:settimeout(value, mode)
  check(self, "any", "settimeout")
  local v = value == nil and -1.0 or tonumber(value)
  if not v then error("bad argument #2 to 'settimeout' (number expected, got " .. type(value) .. ")", 2) end
  mode = mode == nil and "b" or tostring(mode)
  local m = mode:sub(1, 1)
  if m == "b" then self.block = v + 0.0
  elseif m == "t" or m == "r" then self.total = v + 0.0
  else error("bad argument #3 to 'settimeout' (invalid timeout mode)", 2) end
  return 1.0
end

---The block timeout and the total timeout (-1: none).
---@return number block
---@return number total
function tcp:gettimeout()
  check(self, "any", "gettimeout")
  return self.block, self.total
end

---ip, port (a number, as LuaSocket gives it here), family ("inet"/"inet6")
---of the peer, or nil and a message.
function tcp:getpeername()
  check(self, "any", "getpeername")
  if self.closed or not (self.conn or self.server) then return nil, "Bad file descriptor" end
  if not self.conn then return nil, "Transport endpoint is not connected" end
  local ip, port, family = self.conn:get_peer()
  if not ip then return nil, "Transport endpoint is not connected" end
  return ip, port, family   -- LuaSocket gives this port as a number, getsockname's as a string
end

---ip, port (a string), family of the local end, or nil and a message.
function tcp:getsockname()
  check(self, "any", "getsockname")
  if self.closed or not (self.conn or self.server) then return nil, "Bad file descriptor" end
  local ip, port, family
  if self.conn then ip, port, family = self.conn:get_local_address()
  else ip, port, family = self.server:get_local_address() end
  if not ip then return nil, ls_error(port, family) end
  return ip, tostring(port), family
end

---"inet4" or "inet6".
function tcp:getfamily()
  check(self, "any", "getfamily")
  local family = self.family
  if self.conn then family = select(3, self.conn:get_local_address()) or family
  elseif self.server then family = select(3, self.server:get_local_address()) or family end
  return family == "inet6" and "inet6" or "inet4"
end

---Bytes received (returned by receive), bytes sent and the age in seconds.
---@return number received
---@return number sent
---@return number age
function tcp:getstats()
  check(self, "client", "getstats")
  return self.received, self.sent, clock() - self.birthday
end

---Resets the counters getstats returns (nil keeps one). 1.
---@param received? number
---@param sent? number
---@param age? number
---@return number
function tcp:setstats(received, sent, age)
  check(self, "client", "setstats")
  self.received = (tonumber(received) or self.received) + 0.0
  self.sent = (tonumber(sent) or self.sent) + 0.0
  if tonumber(age) then self.birthday = clock() - tonumber(age) end
  return 1.0
end

---true when bytes are waiting to be received (receive returns them without
---waiting; socket.select reports such a client readable).
---@return boolean
function tcp:dirty()
  check(self, "any", "dirty")
  if self.closed then return false end
  return buffered(self) > 0 or (self.conn ~= nil and self.conn:available() > 0)
end

---A number naming the object (-1 once closed). Not a system descriptor.
---@return integer
function tcp:getfd()
  check(self, "any", "getfd")
  return self.closed and -1 or self.id
end

-- Options: LuaSocket name -> net's set_option name (nil: kept, applied at creation).
local NET_OPTION = {
  ["tcp-nodelay"] = "nodelay", keepalive = "keepalive", reuseaddr = "reuseaddr",
  linger = "linger", ["tcp-keepidle"] = "keepalive",
}
local UNSUPPORTED = {
  reuseport = true, ["ipv6-v6only"] = true, ["tcp-keepcnt"] = true, ["tcp-keepintvl"] = true,
  ["recv-buffer-size"] = true, ["send-buffer-size"] = true, bindtodevice = true,
  ["tcp-defer-accept"] = true, ["tcp-fastopen"] = true, ["tcp-fastopen-connect"] = true,
}

local function option_value(name, value)
  if name == "linger" then
    if type(value) ~= "table" then error("bad argument #3 to 'setoption' (table expected, got " .. type(value) .. ")", 3) end
    local t = tonumber(value.timeout) or 0
    return { on = value.on and true or false, timeout = t }
  elseif name == "tcp-keepidle" then
    local n = tonumber(value)
    if not n then error("bad argument #3 to 'setoption' (number expected, got " .. type(value) .. ")", 3) end
    return floor(n)
  end
  return value and true or false
end

---Sets "tcp-nodelay", "keepalive", "reuseaddr", "linger" ({on = bool,
---timeout = seconds}) or "tcp-keepidle" (seconds). 1, or nil and a message
---for the options net has no equivalent for. Unknown names raise.
---@param name string
---@param value any
---@return number|nil ok
---@return string? err
function tcp:setoption(name, value)
  check(self, "any", "setoption")
  if UNSUPPORTED[name] then return nil, "option '" .. name .. "' is not supported by sluice.socket" end
  local net_name = NET_OPTION[name]
  if not net_name then error("bad argument #2 to 'setoption' (unsupported option `" .. tostring(name) .. "')", 2) end
  local v = option_value(name, value)
  -- the kernel's TCP_KEEPIDLE refuses these (EINVAL), and net takes 1..86400
  if name == "tcp-keepidle" and not (v >= 1 and v <= 86400) then return nil, "invalid argument" end
  self.options[name] = v
  if self.conn and not self.closed then
    local nv = v
    if name == "linger" then nv = v.on and floor(v.timeout * 1000) or 5000
    elseif name == "tcp-keepidle" then nv = self.options.keepalive and v or false
    elseif name == "keepalive" and v then nv = self.options["tcp-keepidle"] or true end   -- independent, as in LuaSocket
    if name ~= "tcp-keepidle" or self.options.keepalive then
      local ok, msg = self.conn:set_option(net_name, nv)
      if not ok then return nil, ls_error(msg) end
    end
  end
  return 1.0
end

---The value set with setoption (defaults: false; linger {on = false, timeout = 0}).
---@param name string
---@return any
function tcp:getoption(name)
  check(self, "any", "getoption")
  if not NET_OPTION[name] and not UNSUPPORTED[name] then
    error("bad argument #2 to 'getoption' (unsupported option `" .. tostring(name) .. "')", 2)
  end
  local v = self.options[name]
  if name == "linger" then
    v = v or { on = false, timeout = 0 }
    return { on = v.on, timeout = v.timeout }
  end
  if v == nil then return name == "tcp-keepidle" and 0 or false end
  return v
end

--------------------------------------------------------------------------------
-- Module functions

local function create(family)
  return new_tcp(family)
end

---A new tcp{master} object (IPv4 or IPv6 chosen when it connects or binds).
---@return sluice.socket.tcp
function socket.tcp() return create(nil) end
---A new tcp{master} that uses IPv4 only.
function socket.tcp4() return create("inet") end
---A new tcp{master} that uses IPv6 only.
function socket.tcp6() return create("inet6") end

local FAMILIES = { inet = "inet", inet6 = "inet6" }

---A client connected to address:port (blocking). family: "inet" or "inet6".
---@return sluice.socket.tcp|nil client
---@return string? err
function socket.connect(address, port, laddress, lport, family)
  if type(port) ~= "number" and type(port) ~= "string" then
    error("bad argument #2 to 'connect' (number expected, got " .. type(port) .. ")", 2)
  end
  if laddress ~= nil or lport ~= nil then
    return nil, "binding a local address is not supported by sluice.socket"
  end
  local c = create(FAMILIES[family])
  local ok, err = c:connect(address, port)
  if not ok then
    c:close()
    return nil, err
  end
  return c
end
function socket.connect4(address, port) return socket.connect(address, port, nil, nil, "inet") end
function socket.connect6(address, port) return socket.connect(address, port, nil, nil, "inet6") end

---A server bound to host:port with reuseaddr, listening (backlog default 32).
---@return sluice.socket.tcp|nil server
---@return string? err
function socket.bind(host, port, backlog)
  local s = create(nil)
  s:setoption("reuseaddr", true)
  local ok, err = s:bind(host, port)
  if ok then ok, err = s:listen(backlog) end
  if not ok then
    s:close()
    return nil, err
  end
  return s
end

-- select's view of one object: readable / writable now?
local function readable(o)
  if o.closed then return false end
  if o.cls == "client" and o.conn then
    if buffered(o) > 0 or o.conn:available() > 0 then return true end
    return (o.conn:get_status()) == "failure"
  elseif o.cls == "server" then
    if o.accepted and #o.accepted > 0 then return true end
    local conn = o.server:accept()
    if conn then
      o.accepted = o.accepted or {}
      o.accepted[#o.accepted + 1] = conn
      return true
    end
  end
  return false
end

local function writable(o)
  if o.closed or o.cls ~= "client" or not o.conn then return false end
  local status = o.conn:get_status()
  if status == "failure" then return true end
  return status == "success" and o.conn:get_pending_writes() < WRITABLE_BELOW
end

local function collect(t, argn)
  local list = {}
  if t == nil then return list end
  if type(t) ~= "table" then
    error(string.format("bad argument #%d to 'select' (table expected, got %s)", argn, type(t)), 3)
  end
  local i = 1
  while t[i] ~= nil do
    local o = t[i]
    local sock = o
    if getmetatable(o) ~= tcp_mt and type(o) == "table" and type(o.getfd) == "function" then
      sock = by_id[o:getfd()]   -- a wrapper (LuaSec's, a library's) around one of ours, as LuaSocket finds it
    end
    if getmetatable(sock) == tcp_mt and not sock.closed and not list[o] then   -- each once, as LuaSocket
      list[#list + 1], list[o] = { o, sock }, true
    end
    i = i + 1
  end
  return list
end

local function ready(list, test, dirty)
  local out = {}
  for _, e in ipairs(list) do
    local o, sock = e[1], e[2]
    if (dirty and o ~= sock and type(o.dirty) == "function" and o:dirty()) or test(sock) then
      out[#out + 1] = o
      out[o] = #out + 0.0   -- a float, as LuaSocket stores it
    end
  end
  return out
end

---Waits until some of `recvt` can be read (data, a connection to accept, or
---the end) or some of `sendt` written, at most `timeout` seconds (nil or
---negative: no limit; 0: just look). Returns the two lists, each also keyed
---by the objects; with "timeout" as a third value when none is ready. An
---entry may also be a wrapper whose getfd() gives one of these objects'
---(its dirty(), when it has one, also makes it readable), as in LuaSocket.
---@param recvt? sluice.socket.tcp[]
---@param sendt? sluice.socket.tcp[]
---@param timeout? number
---@return table readable
---@return table writable
---@return string? err
function socket.select(recvt, sendt, timeout)
  local t = timeout == nil and -1 or tonumber(timeout)   -- "0.1" too, as luaL_optnumber takes it
  if not t then error("bad argument #3 to 'select' (number expected, got " .. type(timeout) .. ")", 2) end
  local rl, wl = collect(recvt, 1), collect(sendt, 2)
  local deadline = t >= 0 and clock() + t or huge
  while true do
    local r, w = ready(rl, readable, true), ready(wl, writable)
    if #r > 0 or #w > 0 then return r, w end
    local left = deadline - clock()
    if left <= 0 then return r, w, "timeout" end
    runtime.pause(net, left == huge and WAIT_SLICE or math.max(1, math.min(WAIT_SLICE, math.ceil(left * 1000))))
  end
end

--------------------------------------------------------------------------------
-- socket.dns: lookups through net, waiting as LuaSocket's do (net gives the
-- first address of a name; there is no reverse lookup)

local dns = {}
socket.dns = dns

-- The first address of `name`, or nil and LuaSocket's message.
local function lookup(name)
  if type(name) ~= "string" and type(name) ~= "number" then
    error("bad argument #1 (string expected, got " .. type(name) .. ")", 3)
  end
  local addr, msg, code = resolved(tostring(name))
  if not addr then return nil, code == "dns" and "host not found" or ls_error(msg, code) end
  return addr:get_ip()
end

---The address of `name` and {name, alias = {}, ip = {address}}, or nil and
---"host not found".
function dns.toip(name)
  local ip, err = lookup(name)
  if not ip then return nil, err end
  return ip, { name = tostring(name), alias = {}, ip = { ip } }
end

---{{family = "inet"|"inet6", addr = ...}} for `name`, or nil and a message.
function dns.getaddrinfo(name)
  local ip, err = lookup(name)
  if not ip then return nil, err end
  return { { family = ip:find(":", 1, true) and "inet6" or "inet", addr = ip } }
end

---The name itself and its resolution for a name that resolves; an address
---gives nil, "host not found" (net has no reverse lookup).
function dns.tohostname(name)
  local s = tostring(name)
  if s:match("^[%d.]+$") or s:find(":", 1, true) then return nil, "host not found" end
  local ip, err = lookup(s)
  if not ip then return nil, err end
  return s, { name = s, alias = {}, ip = { ip } }
end

---This machine's host name.
function dns.gethostname()
  local f = io.open("/proc/sys/kernel/hostname") or io.open("/etc/hostname")
  local name = f and f:read("l")
  if f then f:close() end
  return name or os.getenv("COMPUTERNAME") or os.getenv("HOSTNAME") or "localhost"
end

local epoch = os.time() - clock()

---Seconds, UNIX time, with sub-millisecond resolution (monotonic while the
---program runs, so differences are exact).
---@return number
function socket.gettime() return epoch + clock() end

---Sleeps `time` seconds (negative: returns at once). In an editor thread it
---yields instead.
---@param time number
function socket.sleep(time)
  local n = tonumber(time)
  if not n then error("bad argument #1 to 'sleep' (number expected, got " .. type(time) .. ")", 2) end
  if n ~= n then return end   -- NaN: no time to wait for
  local deadline = clock() + n
  while true do
    local left = deadline - clock()
    if left <= 0 then return end
    runtime.pause(net, math.max(1, math.ceil(math.min(left, 3600) * 1000)))   -- net.wait takes integers
  end
end

--------------------------------------------------------------------------------
-- Exceptions (LTN12's finalized exceptions): try raises, protect catches

local exception_mt = {}

---A try function that calls `finalizer` before raising.
---@param finalizer? function
---@return fun(...): ...
function socket.newtry(finalizer)
  return function(...)
    if select("#", ...) == 0 or not (...) then
      if finalizer then finalizer() end   -- its own error goes up instead, as LuaSocket's
      error(setmetatable({ (select(2, ...)) }, exception_mt), 0)
    end
    return ...
  end
end

socket.try = socket.newtry()

---`func`, with the errors raised by try turned into nil, message.
---@param func function
---@return function
function socket.protect(func)
  return function(...)
    local r = table.pack(pcall(func, ...))
    if r[1] then return table.unpack(r, 2, r.n) end
    if getmetatable(r[2]) == exception_mt then return nil, r[2][1] end
    error(r[2], 0)
  end
end

---Drops the first `d` arguments and returns the rest.
function socket.skip(d, ...)
  return select(d + 1, ...)
end

--------------------------------------------------------------------------------
-- LTN12 sinks and sources over a client

local sinkt, sourcet = {}, {}
socket.sinkt, socket.sourcet = sinkt, sourcet

sinkt["close-when-done"] = function(sock)
  return function(chunk, err)
    if not chunk then
      sock:close()
      return 1
    end
    return sock:send(chunk)
  end
end

sinkt["keep-open"] = function(sock)
  return function(chunk, err)
    if chunk then return sock:send(chunk) end
    return 1
  end
end

sinkt["default"] = sinkt["keep-open"]

sourcet["by-length"] = function(sock, length)
  return function()
    if length <= 0 then return nil end
    local chunk, err = sock:receive(math.min(socket.BLOCKSIZE, length))
    if err then return nil, err end
    length = length - #chunk
    return chunk
  end
end

sourcet["until-closed"] = function(sock)
  local done = false
  return function()
    if done then return nil end
    local chunk, err, partial = sock:receive(socket.BLOCKSIZE)
    if not err then return chunk end
    if err == "closed" then
      sock:close()
      done = true
      return partial
    end
    return nil, err
  end
end

sourcet["default"] = sourcet["until-closed"]

---A function that picks an entry of `tbl` by its first argument (a string;
---else "default") and calls it with the others.
---@param tbl table
---@return function
function socket.choose(tbl)
  return function(name, opt1, opt2)
    if type(name) ~= "string" then
      name, opt1, opt2 = "default", name, opt1
    end
    local f = tbl[name or "nil"]
    if not f then error("unknown key (" .. tostring(name) .. ")", 3) end
    return f(opt1, opt2)
  end
end

socket.sink = socket.choose(sinkt)
socket.source = socket.choose(sourcet)

return socket
