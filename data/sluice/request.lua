-- request.lua: rspamd's one-shot TCP request on the polled `net` module:
-- connect, send the data, read the reply (up to a stop pattern, or until the
-- peer closes), call back once. Plain Lua on the public `net` API; runs on the
-- caller's thread and never waits.
--
--   local request = require "sluice.request"
--   local r = request{
--     host = "127.0.0.1", port = 25,
--     data = {"EHLO example.org", "\r\n"},     -- a string or a table of strings
--     stop_pattern = "\r\n",
--     callback = function(err, data, r) print(err or data) end,
--   }
--   -- once per frame:  request.update()   (or r:poll() for this one)
--
-- Options (a table; wrong types and impossible values raise):
--   host          IP, host name, or a Unix socket path ("/..."; then no port)
--   port          1..65535
--   data          string or array of strings, sent in order (default: nothing)
--   stop_pattern  the reply ends where this string (at most 1024 bytes; "" is
--                 none, as rspamd has it) first
--                 appears; the pattern and anything after it are dropped.
--                 Without it the reply is everything until the peer closes.
--   timeout       seconds without progress (connecting, sending or receiving)
--                 before the request fails with code "timeout" (default 5.0,
--                 as rspamd)
--   ssl           true (verified TLS) or a TLS options table (net.open_tcp's);
--                 ssl_noverify = true (or no_ssl_verify) turns verification off
--   shutdown      half-close (FIN) once all data is sent (default false)
--   read          read a reply (default true); false: done once the data has
--                 reached the kernel, and the callback is callback(nil, r)
--   partial       true: `callback(nil, chunk, r)` for every piece of the reply as
--                 it arrives, then `callback(nil, "", r)` once at the end; or a
--                 function `partial(chunk, r)` that gets the pieces while
--                 `callback` is called once at the end with "". Nothing is kept.
--   callback      function(err, data, r): once, when the request ends: err nil
--                 and data the reply ("" with partial), or err a message
--                 (r.code the short code) and data nil; with read = false,
--                 function(err, r) on success, as rspamd's
--   on_connect    function(r): once connected (TLS: after the handshake)
--   max_size      largest reply kept, bytes (default 16 MiB; then "limit")
--
-- The request object: r:poll() advances it and returns its state, "waiting",
-- "done" or "failure" (then also the message and code); r.data (the reply, or
-- what had arrived at a failure), r.error, r.code, r.received, r.sent;
-- r:cancel() (or r:close(), as rspamd's conn has it) ends it (code
-- "cancelled", no callback); there is no add_read or add_write: one request,
-- one exchange. request.update() polls
-- every request still running and returns how many remain. Callbacks run from
-- poll or update, on the caller's thread; in an editor (Lite XL, Pragtical) a
-- thread of the editor calls update while requests run, so callbacks come
-- without any polling. A request is kept alive until it ends, even with no
-- reference to it.
--
-- Compared with rspamd: timeouts are in seconds, as there, but count time
-- without progress (rspamd's is one budget for the whole request: bound a
-- slow peer with max_size, or cancel); the reply of a request without
-- stop_pattern ends when the peer closes (rspamd calls back with the first
-- piece read), and a peer that closes having sent nothing gives "" (rspamd:
-- a read error); failures carry net's message ("connect 127.0.0.1:25:
-- Connection refused") and a code in r.code.

local runtime = require((... and (...):match("^(.*%.)[^.]*$") or "sluice.") .. "runtime")
local net = runtime.load_net(...)
local write_from = runtime.writer(net)

local clock = net.clock

---@class sluice.request.options
---@field host string IP, name, or Unix socket path
---@field port? integer 1..65535 (not for a Unix socket)
---@field data? string|string[]
---@field stop_pattern? string
---@field timeout? number seconds without progress (default 5)
---@field ssl? boolean|net.tls_options
---@field ssl_noverify? boolean
---@field no_ssl_verify? boolean
---@field shutdown? boolean
---@field read? boolean default true
---@field partial? boolean|fun(chunk: string, r: sluice.request)
---@field callback? fun(err: string|nil, data: string|nil, r: sluice.request)
---@field on_connect? fun(r: sluice.request)
---@field max_size? integer default 16 MiB

---@class sluice.request
---@field state "waiting"|"done"|"failure"
---@field data string|nil the reply once done; what had arrived at a failure
---@field error string|nil
---@field code string|nil
---@field received integer bytes of reply read
---@field sent integer bytes of data accepted for sending
local Request = {}
Request.__index = Request

local M = { _VERSION = "sluice.request 1.0" }

local DEFAULT_TIMEOUT = 5.0
local DEFAULT_MAX = 16 * 1024 * 1024
local READ_CHUNK = 64 * 1024
local POLL_BUDGET = 1024 * 1024     -- bytes read at most per poll, so one frame stays short

local pending = {}                  -- requests still running, kept alive until they end

-- Raised at the caller of request() (argerror <- check_options <- request <- caller).
local function argerror(n, msg)
  error(string.format("bad argument #%d to 'request' (%s)", n, msg), 4)
end

local function check_options(o)
  if type(o) ~= "table" then argerror(1, "table expected, got " .. type(o)) end
  if type(o.host) ~= "string" then argerror(1, "host must be a string") end
  local unix = o.port == nil and o.host:sub(1, 1) == "/"   -- an empty host fails like net's
  if not unix and (math.type(o.port) ~= "integer" or o.port < 1 or o.port > 65535) then
    argerror(1, "port must be an integer 1..65535")
  end
  local data = o.data
  if type(data) == "table" then
    for i, piece in ipairs(data) do
      if type(piece) ~= "string" then argerror(1, "data[" .. i .. "] must be a string") end
    end
  elseif data ~= nil and type(data) ~= "string" then
    argerror(1, "data must be a string or a table of strings")
  end
  local sp = o.stop_pattern
  if sp ~= nil and (type(sp) ~= "string" or #sp > 1024) then
    argerror(1, "stop_pattern must be a string of at most 1024 bytes")
  end
  if o.timeout ~= nil and (type(o.timeout) ~= "number" or o.timeout <= 0) then
    argerror(1, "timeout must be a number of seconds > 0")
  end
  for _, k in ipairs { "callback", "on_connect" } do
    if o[k] ~= nil and type(o[k]) ~= "function" then argerror(1, k .. " must be a function") end
  end
  local p = o.partial
  if p ~= nil and type(p) ~= "boolean" and type(p) ~= "function" then
    argerror(1, "partial must be a boolean or a function")
  end
  if o.max_size ~= nil and (math.type(o.max_size) ~= "integer" or o.max_size < 1) then
    argerror(1, "max_size must be a positive integer")
  end
  return unix
end

-- The TLS argument for net: nil (plain), true, or an options table.
local function tls_of(o)
  local noverify = o.ssl_noverify or o.no_ssl_verify
  if not o.ssl then return nil end
  if o.ssl == true and not noverify then return true end
  local t = {}
  if type(o.ssl) == "table" then for k, v in pairs(o.ssl) do t[k] = v end end
  if noverify then t.verify = false end
  return t
end

local function open(o, unix)
  local opts = { ssl = tls_of(o) or false }
  if unix then return net.open_unix(o.host, opts) end
  return net.open_tcp(o.host, o.port, opts)
end

---Starts a request; see the top of this file for the options.
---@param o sluice.request.options
---@return sluice.request
function M.request(o)
  local unix = check_options(o)
  local out = {}   -- a copy: the caller may reuse its table
  if type(o.data) == "table" then
    for i, piece in ipairs(o.data) do out[i] = piece end
  else
    out[1] = o.data
  end
  local r = setmetatable({
    state = "waiting", host = o.host, port = o.port,
    out = out, out_i = 1, out_off = 0,
    stop = o.stop_pattern ~= "" and o.stop_pattern or nil, carry = "",   -- "": none, as rspamd ignores it
    timeout = o.timeout or DEFAULT_TIMEOUT, max_size = o.max_size or DEFAULT_MAX,
    do_shutdown = o.shutdown == true, do_read = o.read ~= false,
    partial = o.partial, callback = o.callback, on_connect = o.on_connect,
    parts = {}, kept = 0, received = 0, sent = 0,
    last = clock(),
  }, Request)
  local conn, msg, code = open(o, unix)
  r.conn = conn
  if not conn then r.deferred = { msg, code } end   -- reported by the first poll, like any failure
  pending[r] = true
  runtime.drive("sluice.request", M.update)
  return r
end

--------------------------------------------------------------------------------
-- Ending

local function endpoint(r)
  return r.port and string.format("%s:%d", r.host, r.port) or r.host
end

local function close(r)
  if r.conn then r.conn:close() end
  pending[r] = nil
end

function Request:_finish()
  if self.state ~= "waiting" then return end
  self.state = "done"
  self.data = (self.partial and "") or table.concat(self.parts)
  self.parts = nil
  close(self)
  if not self.callback then return end
  if self.do_read then return self.callback(nil, self.data, self) end
  self.callback(nil, self)   -- a write-only request's callback(err, conn), as rspamd's
end

function Request:_fail(msg, code)
  if self.state ~= "waiting" then return end
  self.state, self.error, self.code = "failure", msg, code
  if self.parts then self.data = table.concat(self.parts) end
  self.parts = nil
  close(self)
  if self.callback then self.callback(msg, nil, self) end
end

---Ends the request at once: state "failure", code "cancelled"; the callback
---is not called.
function Request:cancel()
  if self.state ~= "waiting" then return end
  self.state, self.error, self.code = "failure", "cancelled", "cancelled"
  if self.parts then self.data = table.concat(self.parts) end
  self.parts = nil
  close(self)
end

---rspamd's conn:close(), from a callback or any time: as cancel, and nothing
---once the request has ended.
Request.close = Request.cancel

--------------------------------------------------------------------------------
-- Sending and receiving

-- Hands the data to the connection as far as its send buffer takes it.
-- Returns true once everything was accepted, or nil, msg, code.
function Request:_send()
  local out = self.out
  while self.out_i <= #out do
    local piece = out[self.out_i]
    local rest = #piece - self.out_off
    if rest == 0 then
      self.out_i, self.out_off = self.out_i + 1, 0
    else
      local n, msg, code = write_from(self.conn, piece, self.out_off + 1)
      if not n then return nil, msg, code end
      if n > 0 then self.sent, self.last = self.sent + n, clock() end
      if n < rest then
        self.out_off = self.out_off + n
        return false
      end
      self.out_i, self.out_off = self.out_i + 1, 0
    end
  end
  return true
end

-- One piece of the reply goes to the partial callback or into the kept parts.
function Request:_emit(s)
  if s == "" then return true end
  local p = self.partial
  if p == true then
    if self.callback then self.callback(nil, s, self) end
  elseif p then
    p(s, self)
  else
    self.kept = self.kept + #s
    if self.kept > self.max_size then
      return nil, string.format("%s: reply larger than %d bytes (max_size)", endpoint(self), self.max_size), "limit"
    end
    self.parts[#self.parts + 1] = s
  end
  return true
end

-- Feeds a received chunk through the stop pattern. Returns "found" when the
-- pattern came (everything before it emitted), true to go on, or nil, msg, code.
function Request:_feed(chunk)
  local stop = self.stop
  if not stop then return self:_emit(chunk) end
  local window = self.carry .. chunk
  local at = window:find(stop, 1, true)
  if at then
    self.carry = ""
    local ok, msg, code = self:_emit(window:sub(1, at - 1))
    if not ok then return nil, msg, code end
    return "found"
  end
  -- keep back the end of the window that could be the start of the pattern
  local keep = math.min(#stop - 1, #window)
  local first = stop:byte(1)
  while keep > 0 and not (window:byte(-keep) == first and window:sub(-keep) == stop:sub(1, keep)) do
    keep = keep - 1
  end
  self.carry = keep > 0 and window:sub(-keep) or ""
  return self:_emit(window:sub(1, #window - keep))
end

-- Reads what has arrived (at most POLL_BUDGET bytes).
function Request:_receive()
  local budget = POLL_BUDGET
  while budget > 0 and self.state == "waiting" do
    local data, msg, code = self.conn:read(READ_CHUNK)
    if data == nil then
      if msg then return self:_fail(msg, code) end
      if self.stop then
        self:_emit(self.carry)
        return self:_fail(endpoint(self) .. ": closed before the stop pattern came", "closed")
      end
      return self:_finish()
    end
    if data == "" then return end
    self.received, self.last, budget = self.received + #data, clock(), budget - #data
    local ok, fmsg, fcode = self:_feed(data)
    if not ok then return self:_fail(fmsg, fcode) end
    if ok == "found" then return self:_finish() end
  end
end

--------------------------------------------------------------------------------
-- Polling

-- Notices the connection being established (on_connect) or failing before it
-- was. Returns the status.
function Request:_connected()
  local status, msg, code = self.conn:get_status()
  if status == "failure" and not self.connected then
    self:_fail(msg, code)
  elseif status == "success" and not self.connected then
    self.connected, self.last = true, clock()
    if self.on_connect then self.on_connect(self) end
  end
  return status, msg, code
end

-- Bytes net hands to the kernel are progress too (a slow peer still taking
-- the upload). Returns what net still holds.
function Request:_pending()
  local p = self.conn:get_pending_writes()
  if p < (self.last_pending or math.huge) then self.last = clock() end
  self.last_pending = p
  return p
end

-- Without a reply to read, the request is done once the kernel has the data.
function Request:_drained(status, msg, code)
  if self:_pending() == 0 then return self:_finish() end
  if status == "failure" then return self:_fail(msg, code) end
end

function Request:_step()
  if self.deferred then return self:_fail(self.deferred[1], self.deferred[2]) end
  local status, msg, code = self:_connected()
  if self.state ~= "waiting" then return end
  if self.connected then
    if not self.written then
      local ok, wmsg, wcode = self:_send()
      if ok == nil then return self:_fail(wmsg, wcode) end
      if ok then
        self.written = true
        if self.do_shutdown then self.conn:shutdown("send") end
      end
    end
    if self.do_read then
      if self.written then self:_pending() end
      self:_receive()
    elseif self.written then
      self:_drained(status, msg, code)
    end
  end
  if self.state == "waiting" and clock() - self.last > self.timeout then
    self:_fail(string.format("%s: no progress for %g s (timeout)", endpoint(self), self.timeout), "timeout")
  end
end

---Advances the request without waiting; may run its callbacks.
---@return "waiting"|"done"|"failure" state
---@return string? message on failure
---@return string? code on failure
function Request:poll()
  if self.state == "waiting" then self:_step() end
  if self.state == "failure" then return "failure", self.error, self.code end
  return self.state
end

function Request:__tostring()
  return string.format("sluice.request(%s, %s)", endpoint(self), self.state)
end

---Polls every request still running (their callbacks run from here). A
---callback's error comes out once every request was polled.
---@return integer running requests still running
function M.update()
  local list, first_err = {}, nil
  for r in pairs(pending) do list[#list + 1] = r end
  -- every request runs, whatever one's callback raises
  for _, r in ipairs(list) do
    local ok, err = pcall(r.poll, r)
    if not ok and first_err == nil then first_err = err end
  end
  if first_err ~= nil then error(first_err, 0) end
  local n = 0
  for _ in pairs(pending) do n = n + 1 end
  return n
end

M.new = M.request
return setmetatable(M, { __call = function(_, o) return M.request(o) end })
