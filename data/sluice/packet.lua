-- packet.lua: the seed `tcp` module's interface for scripts: connect, then
-- send and receive strings, JSON lines and size-prefixed JSON packets (a
-- 4-byte big-endian length, then the JSON text; at most 512 KiB). Plain Lua
-- on the public `net` API (conn:read_packet / write_packet, net.json_encode /
-- json_decode); runs on the caller's thread.
--
--   local packet = require "sluice.packet"
--   local conn = assert(packet.connect("127.0.0.1", 7000, 5000))   -- 5 s
--   assert(conn:write_json_packet({ cmd = "hello", n = 1 }))
--   local reply = assert(conn:read_json_packet())
--   conn:close()
--
-- THESE CALLS WAIT. connect waits until connected, reads until the data has
-- come, writes until the send buffer took everything: the calling thread
-- sleeps in net.wait meanwhile (inside an editor thread, core.add_thread in
-- Lite XL or Pragtical, they yield to the editor instead). That suits a
-- script or a game's loading screen. In a frame loop use the connection
-- underneath, which never waits: conn.conn:read_packet() once per frame
-- (false until a whole packet is there) and net.json_decode, or
-- sluice.tcpd / sluice.request.
--
-- Timeouts are milliseconds, as everywhere in net: the one given to connect
-- bounds the connect and each later call (conn:settimeout changes it; nil:
-- no limit, and connect keeps net's own 30 s; 0: each call looks once and
-- does not wait, and connect keeps net's 30 s). Failures return nil, message,
-- code: "timeout", "closed" (the peer closed first), "limit" (a packet over
-- the cap, which fails the connection and is never allocated), "invalid"
-- (text that is not JSON, or a value JSON cannot hold), or net's codes
-- ("refused", "tls-verify", ...). JSON: net.json_encode's rules (integers stay
-- integers; net.json_null for null; a table is an array when its keys are
-- 1..n).

local runtime = require((... and (...):match("^(.*%.)[^.]*$") or "sluice.") .. "runtime")
local net = runtime.load_net(...)
local write_from = runtime.writer(net)

local clock = net.clock

---@class sluice.packet
local packet = { _VERSION = "sluice.packet 1.0", MAX_PACKET = 512 * 1024 }

local WAIT_SLICE = 100      -- ms: longest single wait before conditions are checked again
local BUSY_SLICE = 0.005    -- s: longest a call goes on without looking at its time (and yielding)
local READ_CHUNK = 64 * 1024

---@class sluice.packet.conn
---@field conn net.tcp the net connection underneath (for polling in a frame loop)
---@field timeout integer|nil ms each call may wait (nil: no limit)
local Conn = {}
Conn.__index = Conn

local function json()
  if not (net.json_encode and net.json_decode) then
    error("sluice.packet: this net module has no json_encode/json_decode (an older sluice build?)", 3)
  end
  return net.json_encode, net.json_decode
end

local function check_timeout(t, n, fname)
  if t ~= nil and (math.type(t) ~= "integer" or t < 0) then
    error(string.format("bad argument #%d to '%s' (timeout must be an integer number of ms >= 0)", n, fname), 3)
  end
  return t
end

-- A deadline for one call: returns a function that waits a little and says
-- whether there is time left.
local function waiter(self)
  local deadline = self.timeout and clock() + self.timeout / 1000 or math.huge
  return function()
    local left = deadline - clock()
    if left <= 0 then return false end
    runtime.pause(net, left == math.huge and WAIT_SLICE or math.max(1, math.min(WAIT_SLICE, math.ceil(left * 1000))))
    return true
  end
end

local function timed_out(self, what)
  return nil, string.format("%s: nothing within %d ms (timeout)", what, self.timeout or 0), "timeout"
end

local function ended(what)
  return nil, what .. ": the peer closed the connection", "closed"
end

local function wrap(conn, timeout)
  return setmetatable({ conn = conn, timeout = timeout }, Conn)
end

-- Raises at the caller of connect / connect_tls.
local function check_args(host, port, timeout, fname)
  if type(host) ~= "string" then error("bad argument #1 to '" .. fname .. "' (string expected, got " .. type(host) .. ")", 3) end
  if math.type(port) ~= "integer" or port < 1 or port > 65535 then
    error("bad argument #2 to '" .. fname .. "' (port must be an integer 1..65535)", 3)
  end
  if timeout ~= nil and (math.type(timeout) ~= "integer" or timeout < 0) then
    error("bad argument #3 to '" .. fname .. "' (timeout must be an integer number of ms >= 0)", 3)
  end
end

local function open(host, port, timeout, ssl)
  local opts = { ssl = ssl or false }
  if timeout and timeout > 0 then opts.connect_timeout = timeout end
  local conn, msg, code = net.open_tcp(host, port, opts)
  if not conn then return nil, msg, code end
  local self = wrap(conn, timeout)
  -- 0 (each later call polls once) cannot bound a connect, which never ends
  -- at once: it keeps net's own limit, as nil does
  local more = waiter({ timeout = timeout ~= 0 and timeout or nil })
  while true do
    local status, smsg, scode = conn:get_status()
    if status == "success" then return self end
    if status == "failure" then
      conn:close()
      return nil, smsg, scode
    end
    if not more() then
      conn:close()
      return nil, string.format("connect %s:%d: not connected within %d ms (timeout)", host, port, timeout), "timeout"
    end
  end
end

---Connects (waiting) to host:port. timeout: ms for the connect and then for
---each call (nil: no limit on calls; 0: calls do not wait; with either, the
---connect keeps net's 30 s).
---@param host string
---@param port integer
---@param timeout? integer ms
---@return sluice.packet.conn|nil conn
---@return string? message
---@return string? code
function packet.connect(host, port, timeout)
  check_args(host, port, timeout, "connect")
  local conn, msg, code = open(host, port, timeout, false)
  return conn, msg, code
end

---Like connect, over TLS (verified; `tls` is net's TLS options table, e.g.
---{ca_file = ..., server_name = ...}).
---@param host string
---@param port integer
---@param timeout? integer ms
---@param tls? net.tls_options
---@return sluice.packet.conn|nil conn
---@return string? message
---@return string? code
function packet.connect_tls(host, port, timeout, tls)
  check_args(host, port, timeout, "connect_tls")
  if tls ~= nil and type(tls) ~= "table" then
    error("bad argument #4 to 'connect_tls' (table expected, got " .. type(tls) .. ")", 2)
  end
  local conn, msg, code = open(host, port, timeout, tls or true)
  return conn, msg, code
end

---Wraps a net connection (e.g. one a server accepted) with these calls.
---@param conn net.tcp
---@param timeout? integer ms
---@return sluice.packet.conn
function packet.wrap(conn, timeout)
  if type(conn) ~= "userdata" and type(conn) ~= "table" then
    error("bad argument #1 to 'wrap' (a net connection expected, got " .. type(conn) .. ")", 2)
  end
  return wrap(conn, check_timeout(timeout, 2, "wrap"))
end

---Sets the ms each call may wait (nil: no limit).
---@param timeout? integer
function Conn:settimeout(timeout)
  self.timeout = check_timeout(timeout, 1, "settimeout")
end

---Sends all of `s`, waiting while the send buffer is full. true, or nil,
---message, code (and the bytes sent).
---@param s string
---@return true|nil ok
---@return string? message
---@return string? code
---@return integer? sent
function Conn:write_str(s)
  if type(s) ~= "string" then error("bad argument #1 to 'write_str' (string expected, got " .. type(s) .. ")", 2) end
  local sent, more = 0, waiter(self)
  while sent < #s do
    local n, msg, code = write_from(self.conn, s, sent + 1)
    if not n then return nil, msg, code, sent end
    sent = sent + n
    if n == 0 and not more() then
      local _, tmsg, tcode = timed_out(self, "write_str")
      return nil, tmsg, tcode, sent
    end
  end
  return true
end

---Reads exactly `n` bytes, or (without n) what arrives next (at least one
---byte, at most 64 KiB). nil, message, code (and the partial data) when the
---peer closes first, on a failure or a timeout.
---@param n? integer
---@return string|nil data
---@return string? message
---@return string? code
---@return string? partial
function Conn:read_str(n)
  if n ~= nil and (math.type(n) ~= "integer" or n < 1) then
    error("bad argument #1 to 'read_str' (byte count must be an integer >= 1)", 2)
  end
  local parts, got, more = {}, 0, waiter(self)
  while true do
    local data, msg, code = self.conn:read(n and n - got or READ_CHUNK)
    if data == nil then
      if not msg then msg, code = select(2, ended("read_str")) end
      return nil, msg, code, table.concat(parts)
    end
    if data ~= "" then
      parts[#parts + 1], got = data, got + #data
      if not n or got == n then return table.concat(parts) end
    elseif not more() then
      local _, tmsg, tcode = timed_out(self, "read_str")
      return nil, tmsg, tcode, table.concat(parts)
    end
  end
end

---Sends `value` as one line of JSON (the text, then "\n").
---@param value any
---@return true|nil ok
---@return string? message
---@return string? code
function Conn:write_json(value)
  local encode = json()
  local text, err = encode(value)
  if not text then return nil, err, "invalid" end
  return self:write_str(text .. "\n")
end

---Reads one line of JSON (at most 512 KiB, and what the connection's receive
---buffer holds: a longer one fails the connection, "limit") and decodes it;
---blank lines between values are skipped.
---@return any value
---@return string? message
---@return string? code
function Conn:read_json()
  local _, decode = json()
  local more, looked = waiter(self), clock()
  while true do
    local line, msg, code = self.conn:read_until("\n", packet.MAX_PACKET)
    if line == nil then
      if not msg then return ended("read_json") end
      if code ~= "limit" then return nil, msg, code end
      self.conn:close()   -- a packet over the cap fails the connection, as read_packet's does
      return nil, "read_json: " .. msg:gsub("^read_until: ", "") .. " (the connection is closed)", code
    end
    if line:find("%S") then
      local value, err = decode(line)
      if err then return nil, err, "invalid" end
      return value
    end
    -- a blank line (a JSON-lines stream's keep-alive) is no value: on to the next,
    -- within the call's time (a peer sending only blank lines must not hold it,
    -- nor the editor it yields to)
    if line == "" or clock() - looked >= BUSY_SLICE then
      if not more() then return timed_out(self, "read_json") end
      looked = clock()
    end
  end
end

---Sends `value` as one JSON packet: a 4-byte big-endian length, then the
---text. A text over 512 KiB is refused ("limit"): the peer could not read it.
---A timeout sends nothing, except for a packet larger than a wrapped
---connection's send buffer, which goes in parts: a timeout inside it closes
---the connection (its stream would be broken) and says so.
---@param value any
---@return true|nil ok
---@return string? message
---@return string? code
function Conn:write_json_packet(value)
  local encode = json()
  local text, err = encode(value)
  if not text then return nil, err, "invalid" end
  if #text > packet.MAX_PACKET then
    return nil, string.format("write_json_packet: %d bytes of JSON, more than a packet holds (%d)", #text, packet.MAX_PACKET), "limit"
  end
  local more = waiter(self)
  while true do
    local ok, msg, code = self.conn:write_packet(text)
    if ok then return true end
    if ok == nil then return nil, msg, code end
    if not more() then
      -- a packet larger than the send buffer may be partly queued: the stream
      -- is inside it (any other write raises), so the connection cannot go on
      if not pcall(self.conn.write, self.conn, "") then
        self.conn:close()
        local _, m, c = timed_out(self, "write_json_packet")
        return nil, m .. "; the packet was partly sent, so the connection is closed", c
      end
      return timed_out(self, "write_json_packet")
    end
  end
end

---Reads one JSON packet (at most `max` bytes, default 512 KiB) and decodes
---it. A longer one fails the connection with "limit" and is never read.
---@param max? integer
---@return any value
---@return string? message
---@return string? code
function Conn:read_json_packet(max)
  if max ~= nil and (math.type(max) ~= "integer" or max < 0) then
    error("bad argument #1 to 'read_json_packet' (max must be an integer >= 0)", 2)
  end
  local _, decode = json()
  local more = waiter(self)
  while true do
    local text, msg, code = self.conn:read_packet(max or packet.MAX_PACKET)
    if text == nil then
      if not msg then return ended("read_json_packet") end
      return nil, msg, code
    end
    if text then
      local value, err = decode(text)
      if err then return nil, err, "invalid" end
      return value
    end
    if not more() then return timed_out(self, "read_json_packet") end
  end
end

---Closes the connection (what was sent is still delivered).
function Conn:close()
  self.conn:close()
end
Conn.__close = Conn.close

function Conn:__tostring()
  return "sluice.packet(" .. tostring(self.conn) .. ")"
end

return packet
