-- tcpd.lua: luafan's fan.tcpd callback style on the polled `net` module:
-- tcpd.connect{...} for clients, tcpd.bind{...} for servers, callbacks for
-- data, connection, send-buffer drain and disconnection, all dispatched by
-- tcpd.update() (once per frame), or by a thread of the editor in Lite XL and
-- Pragtical. Plain Lua on the public `net` API; runs on the caller's thread
-- and never waits.
--
--   local tcpd = require "sluice.tcpd"
--   local conn = tcpd.connect{
--     host = "127.0.0.1", port = 7000,
--     onconnected = function() conn:send("hello\n") end,
--     onread = function(data) print("got", data) end,
--     ondisconnected = function(reason) print("gone:", reason) end,
--   }
--   -- once per frame:  tcpd.update()
--
-- tcpd.connect(args) keys (wrong types raise; unknown keys are ignored, as
-- luafan does):
--   host, port          where to connect (a name resolves in the background)
--   onread(data)        bytes as they arrive (at most 256 KiB per call)
--   onsendready()       everything sent so far has reached the kernel
--   onconnected()       the connection is up (TLS: handshake done)
--   ondisconnected(reason)  the connection ended: "server disconnected" (the
--                       peer closed; once what send queued has gone out, as
--                       a peer that shut only its sending side still reads
--                       it), "read timeout", "write timeout", or
--                       net's message for a failure ("connect 127.0.0.1:7000:
--                       Connection refused", "tls ...: certificate not
--                       trusted (self-signed)"; luafan gives the system's
--                       words alone). Not called after conn:close().
--   ssl                 true: TLS, with
--     ssl_host          the name sent (SNI) and checked (default: host)
--     cainfo, capath    CA bundle file / folder (default: net's bundle)
--     ssl_verifypeer    1 (default) checks the certificate and its name,
--                       0 checks nothing. ssl_verifyhost = 0 with
--                       ssl_verifypeer = 1 (the chain without the name)
--                       cannot be had, net checks both: it raises.
--   read_timeout        seconds without a byte received (while reading is
--                       not paused) before ondisconnected("read timeout");
--   write_timeout       seconds with unsent data and no progress before
--                       ondisconnected("write timeout"). Both also bound
--                       the connect. Default 0: none.
--   callback_self_first true: every callback gets the connection first:
--                       onread(conn, data), ondisconnected(conn, reason), ...
--   resolver (or evdns) an object with :resolve(host) returning a net
--                       address (net.create_resolver's), used for host
--   max_send_queue      bytes send may hold beyond net's buffer before it
--                       refuses more (64 MiB; a send to an empty queue is
--                       always taken)
-- conn:send(data) queues bytes and returns how many wait to go out, as
-- luafan's does (-1, msg, code when it took nothing: "limit" when the queue
-- is full, "closed" once the connection ended, "invalid" for "");
-- conn:close() stops the callbacks and closes once the queued bytes are
-- handed over (within 5 s);
-- conn:pause_read() / resume_read() stop and restart onread (the peer feels
-- backpressure); conn:reconnect() drops the connection and its queue and
-- connects again; conn:shutdown() ends the sending side once nothing waits
-- (returns what still waits, as luafan's); conn:getsockname() /
-- getpeername() give ip, port. A port may be given as "8080", as luafan
-- reads it.
--
-- tcpd.bind(args) returns serv, port (or nil, msg, code): host (an IP
-- literal; nil: every interface), port (0 or nil: a free one), onaccept(apt)
-- (apt, an accepted connection: send, close, flush, pause_read,
-- resume_read, remoteinfo() -> {ip, port}, and bind{onread, onsendready,
-- ondisconnected} -> ip, port, which sets its callbacks; bytes that arrive
-- while it has no onread are dropped, as in luafan), ssl with cert and key,
-- callback_self_first (onaccept(serv, apt) and the accepted connections'
-- callbacks get apt first), read_timeout, write_timeout (for accepted
-- connections), receive_buffer_size / send_buffer_size (net's buffer_size).
-- A server that fails once bound (a TLS cert or key that cannot be loaded:
-- net reads them off the caller's thread) closes; onerror(reason, code)
-- (serv first with callback_self_first) hears why, and without it
-- tcpd.update() raises "<tcpd.bind PORT>: reason" (in an editor: core.error).
-- An accepted connection ends with "client disconnected". serv:close(),
-- serv:rebind() (close and bind the same address again), serv:get_port(),
-- serv:localinfo() -> {ip, port}.
--
-- tcpd.update() runs everything due and returns the number of live objects
-- (connections and servers). In an editor a thread calls it every 10 ms
-- while objects live; errors raised by callbacks are reported there with
-- core.error. Elsewhere an error raised by a callback comes out of update()
-- once every other object ran (the object that raised stays consistent; when
-- several raise, the first one's error comes out).
--
-- Timeouts are in seconds, as luafan has them.

local runtime = require((... and (...):match("^(.*%.)[^.]*$") or "sluice.") .. "runtime")
local net = runtime.load_net(...)
local write_from = runtime.writer(net)

local clock = net.clock

---@class sluice.tcpd
local tcpd = { _VERSION = "sluice.tcpd 1.0" }

---@class sluice.tcpd.connect_args
---@field host string
---@field port integer
---@field onread? fun(data: string)|fun(conn: sluice.tcpd.conn, data: string)
---@field onsendready? fun()|fun(conn: sluice.tcpd.conn)
---@field onconnected? fun()|fun(conn: sluice.tcpd.conn)
---@field ondisconnected? fun(reason: string)|fun(conn: sluice.tcpd.conn, reason: string)
---@field ssl? boolean
---@field ssl_host? string
---@field cainfo? string
---@field capath? string
---@field ssl_verifyhost? integer
---@field ssl_verifypeer? integer
---@field read_timeout? number seconds (0: none)
---@field write_timeout? number seconds (0: none)
---@field callback_self_first? boolean
---@field resolver? {resolve: fun(self, host: string): net.address|nil, string?}
---@field evdns? {resolve: fun(self, host: string): net.address|nil, string?}
---@field max_send_queue? integer bytes (default 64 MiB)

---@class sluice.tcpd.bind_args
---@field host? string IP literal (nil: every interface)
---@field port? integer 0 or nil: a free one
---@field onaccept? fun(apt: sluice.tcpd.conn)|fun(serv: sluice.tcpd.server, apt: sluice.tcpd.conn)
---@field onerror? fun(reason: string, code: string)|fun(serv: sluice.tcpd.server, reason: string, code: string)
---@field ssl? boolean
---@field cert? string PEM file
---@field key? string PEM file
---@field callback_self_first? boolean
---@field read_timeout? number seconds, for accepted connections
---@field write_timeout? number seconds, for accepted connections
---@field receive_buffer_size? integer
---@field send_buffer_size? integer
---@field max_send_queue? integer

local READ_CHUNK = 256 * 1024
local READ_BUDGET = 1024 * 1024       -- bytes delivered per connection per update
local ACCEPT_BUDGET = 64              -- connections accepted per server per update
local CLOSE_LINGER = 5                -- seconds close() keeps handing queued bytes over
local DEFAULT_MAX_QUEUE = 64 * 1024 * 1024

local live = {}                       -- every object tcpd.update() dispatches

-- Raised at the program's call: argerror <- check_* <- validate <- tcpd.x <- caller.
local function argerror(fname, msg)
  error(string.format("bad argument #1 to '%s' (%s)", fname, msg), 5)
end

local function check_callbacks(fname, args, names)
  for _, k in ipairs(names) do
    if args[k] ~= nil and type(args[k]) ~= "function" then argerror(fname, k .. " must be a function") end
  end
end

local function check_seconds(fname, args, k)
  local v = args[k]
  -- (not v >= 0: NaN too, which no age would ever pass)
  if v ~= nil and (type(v) ~= "number" or not (v >= 0)) then argerror(fname, k .. " must be a number of seconds >= 0") end
  return v or 0
end

--------------------------------------------------------------------------------
-- Connections (clients and accepted ones share this class)

---@class sluice.tcpd.conn
local Conn = {}
Conn.__index = Conn

local function new_conn(kind, netconn, cb, opts)
  local c = setmetatable({
    kind = kind, conn = netconn, cb = cb,
    state = "connecting", started = clock(),
    self_first = opts.self_first, read_timeout = opts.read_timeout, write_timeout = opts.write_timeout,
    max_queue = opts.max_queue or DEFAULT_MAX_QUEUE,
  }, Conn)
  c:_drop_queue()   -- an empty queue
  return c
end

-- Calls callback `name` of the connection (the connection first when asked).
function Conn:_fire(name, ...)
  local f = self.cb[name]
  if not f then return end
  if self.self_first then return f(self, ...) end
  return f(...)
end

local function unregister(obj) live[obj] = nil end
local function register(obj)
  live[obj] = true
  runtime.drive("sluice.tcpd", tcpd.update)
end

-- Ends the connection; ondisconnected(reason) unless the program closed it.
function Conn:_die(reason)
  if self.state == "dead" then return end
  local notify = self.state ~= "closing"
  self.state = "dead"
  if self.conn then self.conn:close() end
  self:_drop_queue()
  unregister(self)
  if notify then self:_fire("ondisconnected", reason) end
end

-- The queue is pieces qhead..qtail (explicit ends: with its sent front set
-- to nil, the table's length operator may answer 0).
function Conn:_drop_queue()
  self.queue, self.qhead, self.qtail, self.qoff, self.qbytes = {}, 1, 0, 0, 0
end

-- Hands queued bytes to net as far as its send buffer takes them.
-- Returns true, or nil, msg, code when the connection failed.
function Conn:_flush()
  if not self.conn then return true end   -- it never opened: the next update reports why
  local q = self.queue
  while self.qhead <= self.qtail do
    local piece = q[self.qhead]
    local rest = #piece - self.qoff
    local n, msg, code = write_from(self.conn, piece, self.qoff + 1)
    if not n then return nil, msg, code end
    if n > 0 then
      self.qbytes, self.wprogress = self.qbytes - n, clock()
    end
    if n < rest then
      self.qoff = self.qoff + n
      return true
    end
    q[self.qhead] = nil
    self.qhead, self.qoff = self.qhead + 1, 0
  end
  self.queue, self.qhead, self.qtail = {}, 1, 0
  return true
end

-- Bytes still to go out: this queue's and net's buffer's (luafan's answer to send).
function Conn:_waiting()
  return self.qbytes + (self.conn and self.conn:get_pending_writes() or 0)
end

---Queues bytes for sending and returns, as luafan does, how many bytes are
---waiting to go out (0 once all reached the kernel), or -1 (with a message
---and a code) when nothing was taken: empty data, "limit" when max_send_queue
---bytes already wait beyond net's buffer (a send to an empty queue is always
---taken), "closed" once the connection ended or was closed.
---@param data string
---@return integer waiting
---@return string? message
---@return string? code
function Conn:send(data)
  if type(data) ~= "string" and type(data) ~= "number" then
    error("bad argument #1 to 'send' (string expected, got " .. type(data) .. ")", 2)
  end
  data = tostring(data)
  if self.state == "dead" or self.state == "closing" then return -1, "connection closed", "closed" end
  if #data == 0 then return -1, "nothing to send", "invalid" end
  if self.qbytes > 0 and self.qbytes + #data > self.max_queue then
    return -1, string.format("send queue full (%d bytes waiting, max_send_queue %d)", self.qbytes, self.max_queue),
      "limit"
  end
  if self.qbytes == 0 then self.wprogress = clock() end
  self.qtail = self.qtail + 1
  self.queue[self.qtail] = data
  self.qbytes = self.qbytes + #data
  self.want_sendready = true
  local ok, msg, code = self:_flush()
  if not ok then return -1, msg, code end
  return self:_waiting()
end

---Closes the connection: no callback runs any more; bytes already queued are
---still handed over (for at most 5 s), then net delivers them and closes.
function Conn:close()
  if self.state == "dead" or self.state == "closing" then return end
  self.state, self.close_by = "closing", clock() + CLOSE_LINGER
  if self.qbytes == 0 or not self.conn then
    self.state = "dead"
    if self.conn then self.conn:close() end
    unregister(self)
  end
end

---Stops onread; the peer feels backpressure once buffers fill.
function Conn:pause_read()
  if self.paused then return end
  self.paused = true
  if self.conn then self.conn:pause_read() end
end

---Restarts onread (the read timeout counts again from now).
function Conn:resume_read()
  if not self.paused then return end
  self.paused = false
  self.last_read = clock()
  if self.conn then self.conn:resume_read() end
end

function Conn:__tostring()
  if self.kind == "accept" then
    return string.format("<tcpd.accept %s:%s>", tostring(self.ip), tostring(self.port))
  end
  return string.format("<tcpd.connect %s:%s>", tostring(self.host), tostring(self.port))
end

-- The first timeout that ran out, or nil.
function Conn:_timed_out(now)
  local rt, wt = self.read_timeout, self.write_timeout
  if self.state == "connecting" then
    local age = now - self.started
    if rt > 0 and age > rt and (wt <= 0 or rt <= wt) then return "read timeout" end
    if wt > 0 and age > wt then return "write timeout" end
    return nil
  end
  if rt > 0 and not self.paused and not self.ended and now - self.last_read > rt then return "read timeout" end
  if wt > 0 and (self.qbytes > 0 or self.conn:get_pending_writes() > 0)
     and now - (self.wprogress or now) > wt then
    return "write timeout"
  end
  return nil
end

-- Reads what has arrived and hands it to onread (or drops it without one).
function Conn:_read()
  local budget = READ_BUDGET
  while budget > 0 and self.state == "open" and not self.paused do
    local data, msg = self.conn:read(READ_CHUNK)
    if data == nil then
      local reason = msg or (self.kind == "accept" and "client disconnected" or "server disconnected")
      -- a peer that only shut its sending side still reads: what waits for
      -- it goes out first, and ondisconnected follows
      if msg == nil and self:_waiting() > 0 then self.ended = reason return end
      return self:_die(reason)
    end
    if data == "" then return end
    self.last_read, budget = clock(), budget - #data
    self:_fire("onread", data)
  end
end

-- Tracks how much net still has to send, for the write timeout and onsendready.
function Conn:_drain()
  local pending = self.conn:get_pending_writes()
  if pending < (self.last_pending or math.huge) then self.wprogress = clock() end
  self.last_pending = pending
  if self.want_sendready and self.qbytes == 0 and pending == 0 then
    self.want_sendready = false
    self:_fire("onsendready")
  end
end

function Conn:_closing(now)
  local ok = self:_flush()
  if not ok or self.qbytes == 0 or now > self.close_by then
    self.state = "dead"
    self.conn:close()
    unregister(self)
  end
end

-- One update of the connection: state, writes, reads, drain, timeouts.
function Conn:_dispatch(now)
  if self.state == "closing" then return self:_closing(now) end
  if self.deferred then return self:_die(self.deferred) end
  local status, msg = self.conn:get_status()
  if self.state == "connecting" then
    if status == "failure" then return self:_die(msg) end
    if status == "success" then
      self.state, self.last_read, self.wprogress = "open", now, now
      self:_fire("onconnected")
    end
  end
  if self.state == "open" then
    local ok, fmsg = self:_flush()
    if not ok then return self:_die(fmsg) end
    if self.ended then
      if self:_waiting() == 0 then return self:_die(self.ended) end
    else
      self:_read()
    end
  end
  if self.state == "open" then self:_drain() end
  if self.state == "open" or self.state == "connecting" then
    local why = self:_timed_out(clock())
    if why then self:_die(why) end
  end
end

-- The TLS argument for net from luafan's keys.
local function tls_of(args)
  if not args.ssl then return false end
  local peer = args.ssl_verifypeer == nil and 1 or args.ssl_verifypeer
  return { verify = peer ~= 0, server_name = args.ssl_host, ca_file = args.cainfo, ca_path = args.capath }
end

local function open_client(self)
  local args = self.args
  local opts = { ssl = tls_of(args) }
  local target = args.host
  local resolver = args.resolver or args.evdns
  if resolver then
    local addr, msg = resolver:resolve(args.host)
    if not addr then return nil, msg end
    target = addr
  end
  return net.open_tcp(target, args.port, opts)
end

-- A port as luafan reads it (lua_tointeger): "8080" and 8080.0 are 8080.
local function port_of(args)
  local p = args.port
  if type(p) == "string" or math.type(p) == "float" then args.port = math.tointeger(tonumber(p)) or p end
end

local function check_connect_args(args)
  local function check(ok, msg) if not ok then argerror("connect", msg) end end
  check(type(args) == "table", "table expected, got " .. type(args))
  port_of(args)
  check(type(args.host) == "string", "host must be a string")
  check(math.type(args.port) == "integer" and args.port >= 1 and args.port <= 65535, "port must be an integer 1..65535")
  check_callbacks("connect", args, { "onread", "onsendready", "onconnected", "ondisconnected" })
  local resolver = args.resolver or args.evdns
  check(resolver == nil or type(resolver) == "table" or type(resolver) == "userdata",
    "resolver must be an object with a resolve method")
  local mq = args.max_send_queue
  check(mq == nil or (math.type(mq) == "integer" and mq > 0), "max_send_queue must be a positive integer")
  if args.ssl then
    local peer = args.ssl_verifypeer == nil and 1 or args.ssl_verifypeer
    local host = args.ssl_verifyhost == nil and 1 or args.ssl_verifyhost
    check(not (peer ~= 0 and host == 0), "ssl_verifyhost = 0 with ssl_verifypeer = 1 cannot be had: the name "
      .. "is checked with the chain; set ssl_host to the name in the certificate, or ssl_verifypeer = 0")
  end
  return {
    self_first = args.callback_self_first == true,
    read_timeout = check_seconds("connect", args, "read_timeout"),
    write_timeout = check_seconds("connect", args, "write_timeout"),
    max_queue = mq,
  }
end

---Connects to args.host:args.port; see the top of this file for the keys.
---@param args sluice.tcpd.connect_args
---@return sluice.tcpd.conn
function tcpd.connect(args)
  local opts = check_connect_args(args)
  local cb = { onread = args.onread, onsendready = args.onsendready,
               onconnected = args.onconnected, ondisconnected = args.ondisconnected }
  local self = new_conn("connect", nil, cb, opts)
  self.args, self.host, self.port = args, args.host, args.port
  local conn, msg = open_client(self)
  self.conn = conn
  if not conn then self.deferred = msg end   -- ondisconnected(msg) from the next update
  register(self)
  return self
end

---Drops the connection (and what was queued) and connects again.
function Conn:reconnect()
  if self.kind ~= "connect" then error("reconnect: only connections made with tcpd.connect reconnect", 2) end
  if self.conn then self.conn:close() end
  self:_drop_queue()
  self.state, self.started, self.deferred, self.want_sendready = "connecting", clock(), nil, false
  self.paused, self.last_pending, self.ended = false, nil, nil
  local conn, msg = open_client(self)
  self.conn = conn
  if not conn then self.deferred = msg end
  register(self)
end

---Accepted connections: sets onread, onsendready, ondisconnected; returns
---the peer's ip and port.
---@param args table
---@return string ip
---@return integer port
function Conn:bind(args)
  if type(args) ~= "table" then error("bad argument #1 to 'bind' (table expected, got " .. type(args) .. ")", 2) end
  for _, k in ipairs { "onread", "onsendready", "ondisconnected" } do
    if args[k] ~= nil and type(args[k]) ~= "function" then
      error("bad argument #1 to 'bind' (" .. k .. " must be a function)", 2)
    end
    self.cb[k] = args[k]
  end
  return self.ip, self.port
end

---Accepted connections: {ip = ..., port = ...} of the peer.
function Conn:remoteinfo()
  return { ip = self.ip, port = self.port }
end

-- ip, port from one of net's endpoint methods; nil, nil when there is none.
local function endpoint(self, method)
  if not self.conn or self.state == "dead" then return nil, nil end
  local ip, port = self.conn[method](self.conn)
  if math.type(port) ~= "integer" then return nil, nil end
  return ip, port
end

---The local end's ip and port, as luafan gives them; nil, nil before the
---connection is up or after it ended.
function Conn:getsockname() return endpoint(self, "get_local_address") end

---The peer's ip and port, as getsockname.
function Conn:getpeername() return endpoint(self, "get_peer") end

---luafan's half close: the sending side ends once what was sent is out (the
---peer reads its end; reading goes on). Returns the bytes still waiting, as
---luafan's: while this queue holds some nothing is done yet, so call again
---(after onsendready); once only net's buffer does, the FIN follows them.
---@return integer
function Conn:shutdown()
  if not self.conn or self.state ~= "open" then return 0 end
  self:_flush()
  local waiting = self:_waiting()
  if self.qbytes == 0 then self.conn:shutdown("send") end   -- net sends the FIN after what it holds
  return waiting
end

---Hands queued bytes to net now; returns how many bytes are still queued.
---@return integer
function Conn:flush()
  if self.conn and self.state ~= "dead" then self:_flush() end
  return self.qbytes
end

--------------------------------------------------------------------------------
-- Servers

---@class sluice.tcpd.server
local Server = {}
Server.__index = Server

local function listen(self)
  local a = self.args
  local opts = {}
  if a.ssl then opts.ssl = { cert_file = a.cert, key_file = a.key } end
  local size = math.max(a.receive_buffer_size or 0, a.send_buffer_size or 0)
  if size > 0 then opts.buffer_size = math.max(16 * 1024, size) end
  local srv, msg, code = net.create_server(a.host, self.port or a.port or 0, opts)
  if not srv then return nil, msg, code end
  self.srv, self.port = srv, srv:get_port()
  return true
end

local function accept_one(self, netconn)
  local a = self.args
  local apt = new_conn("accept", netconn, {}, {
    self_first = self.self_first,
    read_timeout = a.read_timeout or 0, write_timeout = a.write_timeout or 0,
    max_queue = a.max_send_queue,
  })
  apt.ip, apt.port = netconn:get_peer()
  register(apt)
  if a.onaccept then
    if self.self_first then a.onaccept(self, apt) else a.onaccept(apt) end
  end
end

-- The server failed after bind returned (net loads the TLS files later):
-- it closes and leaves; onerror(reason, code) hears why, else update() raises it.
function Server:_fail(msg, code)
  self.srv:close()
  self.srv = nil
  unregister(self)
  local f = self.args.onerror
  if not f then error(string.format("%s: %s", tostring(self), tostring(msg)), 0) end
  if self.self_first then return f(self, msg, code) end
  return f(msg, code)
end

function Server:_dispatch()
  if not self.srv then return end
  for _ = 1, ACCEPT_BUDGET do
    local c, msg, code = self.srv:accept()
    if not c then
      -- "limit" (out of descriptors) passes: net backs off and accepts again
      if msg and code ~= "limit" and self.srv:get_status() == "failure" then return self:_fail(msg, code) end
      return
    end
    accept_one(self, c)
    if not self.srv then return end   -- onaccept closed the server
  end
end

---Stops listening; accepted connections live on.
function Server:close()
  if self.srv then self.srv:close() end
  self.srv = nil
  unregister(self)
end

---Closes and binds the same address and port again. true, or nil, msg, code.
function Server:rebind()
  if self.srv then self.srv:close() end
  self.srv = nil
  local ok, msg, code = listen(self)
  if not ok then
    unregister(self)
    return nil, msg, code
  end
  register(self)
  return true
end

---The port listened on.
function Server:get_port() return self.port end

---{ip = ..., port = ...} the server listens on, as luafan's; nil once closed.
function Server:localinfo()
  if not self.srv then return nil end
  local ip, port = self.srv:get_local_address()
  return ip and { ip = ip, port = port } or nil
end

function Server:__tostring() return string.format("<tcpd.bind %d>", self.port or 0) end

local function check_bind_args(args)
  local function check(ok, msg) if not ok then argerror("bind", msg) end end
  check(type(args) == "table", "table expected, got " .. type(args))
  port_of(args)
  check(args.host == nil or type(args.host) == "string", "host must be a string")
  check(args.port == nil or (math.type(args.port) == "integer" and args.port >= 0 and args.port <= 65535),
    "port must be an integer 0..65535")
  check_callbacks("bind", args, { "onaccept", "onerror" })
  check(not args.ssl or (type(args.cert) == "string" and type(args.key) == "string"), "ssl needs cert and key (file paths)")
  check_seconds("bind", args, "read_timeout")
  check_seconds("bind", args, "write_timeout")
  for _, k in ipairs { "max_send_queue", "receive_buffer_size", "send_buffer_size" } do
    local v = args[k]
    check(v == nil or (math.type(v) == "integer" and v > 0), k .. " must be a positive integer")
  end
end

---Listens; see the top of this file for the keys. Returns the server and its
---port, or nil, message, code (an address in use, ...).
---@param args sluice.tcpd.bind_args
---@return sluice.tcpd.server|nil serv
---@return integer|string port_or_message
---@return string? code
function tcpd.bind(args)
  check_bind_args(args)
  local self = setmetatable({ args = args, self_first = args.callback_self_first == true }, Server)
  local ok, msg, code = listen(self)
  if not ok then return nil, msg, code end
  register(self)
  return self, self.port
end

--------------------------------------------------------------------------------
-- Dispatch

---Runs every callback that is due, without waiting. Call it once per frame
---(an editor's thread does, inside Lite XL and Pragtical).
---@return integer live connections and servers still alive
function tcpd.update()
  local list = {}
  for obj in pairs(live) do list[#list + 1] = obj end
  local now, first_err = clock(), nil
  -- every object runs, whatever one raises: its error comes out once the others ran
  for _, obj in ipairs(list) do
    if live[obj] then
      local ok, err = pcall(obj._dispatch, obj, now)
      if not ok and first_err == nil then first_err = err end
    end
  end
  if first_err ~= nil then error(first_err, 0) end
  local n = 0
  for _ in pairs(live) do n = n + 1 end
  return n
end

return tcpd
