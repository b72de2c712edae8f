-- http.lua: a small HTTP/1.1 client on the public `net` API (sluice).
--
-- Plain Lua, never blocks: a request is an object the caller polls, e.g.
-- once per frame.
--
--   local http = require "http"
--   local req = assert(http.request{ url = "https://example.org/file.txt" })
--   -- every frame:
--   local state, err = req:poll()        -- "waiting", "done" or "failure"
--   show_progress(req.received, req.total)
--   if state == "done" then use(req.status, req.headers, req.body) end
--
-- http.request(opts) takes a URL string or a table:
--   url          "http://host[:port]/path?query" or "https://..." (required)
--   method       default "GET"
--   headers      extra request headers {name = value}; they replace the
--                defaults of the same name (Host, User-Agent, Accept,
--                Accept-Encoding: identity, Connection: close)
--   body         request body (string); Content-Length is added
--   timeout      whole exchange, redirects included, in ms (default 30000;
--                -1: none)
--   max_size     largest response body accepted, in bytes (default 64 MiB)
--   allow_downgrade  follow a redirect from https to plain http (default false)
--   ssl          TLS options for https (net.open_tcp's third argument;
--                default true: verified TLS)
--   max_redirects  redirects followed (default 5; 0: return the 3xx itself)
--   poll_bytes   bytes read at most per poll (default 1 MiB)
-- It returns the request object, or nil, message for a URL it cannot use
-- (wrong argument types raise). Fields of the request, updated by poll():
--   state        "waiting", "done" or "failure"
--   status, reason   status code (integer) and reason phrase, once received
--   headers      response headers, names in lower case (repeated ones joined
--                with ", "), once received
--   body         the response body (string), once "done"
--   received     body bytes received so far; total: Content-Length or nil
--   url          the URL of the current (last) request of a redirect chain;
--                redirects: how many were followed
--   error, code  failure message and short code ("timeout", "limit",
--                "protocol", "closed", or net's code)
-- req:poll() returns state, and error, code on failure. req:cancel() ends it
-- (state "failure", code "cancelled").
--
-- Bodies: Content-Length, chunked transfer encoding, or until the server
-- closes. Requests always ask for Connection: close. Redirects (301, 302, 303,
-- 307, 308): up to max_redirects are followed, relative Locations resolved;
-- 303, and 301/302 after a POST, continue with a GET without body. A redirect
-- to another origin (scheme, host or port) drops the caller's Authorization,
-- Cookie, Proxy-Authorization and Host headers; one from https to http fails
-- (code "protocol") unless allow_downgrade is set.
--
-- http.fetch(url [, opts]) runs a request to the end and returns body, req or
-- nil, message, req. Inside a coroutine it yields between polls
-- (coroutine.yield(opts.interval or 0.01): in Lite XL's and Pragtical's
-- core.add_thread threads that means "resume me in 10 ms"); outside one it
-- waits in net.wait, blocking the caller (scripts, tests).
--
-- The net module: the one next to this file (loaded as "libraries.sluice.http"
-- it uses "libraries.sluice.net"), else require "net". Set http.net to use
-- another one.

local modname = ...

local M = { _VERSION = "sluice-http 0.1" }

local NET_NAME = (type(modname) == "string" and modname:match("^(.*%.)[^.]*$") or "") .. "net"

local function get_net()
  if not M.net then
    M.net = require(NET_NAME)
  end
  return M.net
end

-- Monotonic seconds: net.clock (sluice), else the editor's system.get_time
-- (Pragtical's built-in net has no clock).
local function now()
  local net = get_net()
  if net.clock then return net.clock() end
  local system = rawget(_G, "system")
  if type(system) == "table" and system.get_time then return system.get_time() end
  return os.time()
end

local MAX_LINE = 64 * 1024          -- a status, header or chunk-size line
local MAX_HEADERS = 256 * 1024      -- all headers of one response
local READ_SIZE = 256 * 1024
local MAX_TRAILERS = 64 * 1024      -- all trailer lines of a chunked body
local DEFAULT_MAX_SIZE = 64 * 1024 * 1024
-- headers that identify the caller to one origin only
local ORIGIN_BOUND = { authorization = true, cookie = true, ["proxy-authorization"] = true, host = true }

--------------------------------------------------------------------------------
-- URLs

-- Splits an absolute http(s) URL. Returns a table {scheme, host, port, path,
-- authority} or nil, message.
function M.parse_url(url)
  if type(url) ~= "string" then return nil, "URL must be a string" end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil, "not an absolute http(s) URL: " .. url end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return nil, "unsupported URL scheme '" .. scheme .. "' (http and https only)"
  end
  local authority, path = rest:match("^([^/?#]*)(.*)$")
  path = path:gsub("#.*$", "")
  if path == "" or path:sub(1, 1) == "?" then path = "/" .. path end
  if path:find("[%s%c]") then return nil, "URL path has spaces or control characters: " .. url end
  authority = authority:gsub("^.*@", "")   -- user:password@ is not supported: dropped
  local host, port, bracketed
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^%[([%x:.]+)%]:?(%d*)$")
    bracketed = true
  else
    host, port = authority:match("^([^:]+):?(%d*)$")
  end
  if not host or host == "" then return nil, "no host in URL: " .. url end
  local default = scheme == "https" and 443 or 80
  port = port ~= "" and math.tointeger(tonumber(port)) or default
  if not port or port < 1 or port > 65535 then return nil, "bad port in URL: " .. url end
  local host_header = bracketed and ("[" .. host .. "]") or host
  if port ~= default then host_header = host_header .. ":" .. port end
  return { scheme = scheme, host = host, port = port, path = path, authority = host_header }
end

-- RFC 3986 remove_dot_segments, on a path (with its query, kept as is).
local function remove_dots(path)
  local p, query = path:match("^([^?]*)(.*)$")
  local out = {}
  local segs = {}
  for seg in (p .. "/"):gmatch("([^/]*)/") do segs[#segs + 1] = seg end
  segs[#segs] = p:match("([^/]*)$")   -- the last segment (no trailing slash)
  for i, seg in ipairs(segs) do
    local last = i == #segs
    if seg == "." then
      if last then out[#out + 1] = "" end
    elseif seg == ".." then
      if #out > 1 then table.remove(out) end
      if last then out[#out + 1] = "" end
    else
      out[#out + 1] = seg
    end
  end
  local r = table.concat(out, "/")
  if r:sub(1, 1) ~= "/" then r = "/" .. r end
  return r .. query
end

-- Resolves a Location header against the URL it came from.
local function resolve_location(base, loc)
  if loc:match("^%a[%w+.-]*://") then return loc end
  if loc:sub(1, 2) == "//" then return base.scheme .. ":" .. loc end
  local prefix = base.scheme .. "://" .. base.authority
  if loc:sub(1, 1) == "/" then return prefix .. remove_dots(loc) end
  if loc:sub(1, 1) == "?" then return prefix .. base.path:gsub("%?.*$", "") .. loc end
  local dir = base.path:gsub("%?.*$", ""):match("^(.*/)") or "/"
  return prefix .. remove_dots(dir .. loc)
end
M._resolve_location = resolve_location

--------------------------------------------------------------------------------
-- Requests

local Request = {}
Request.__index = Request

local function check_header_text(s, what)
  if s:find("[\r\n%z]") then error("bad argument #1 to 'request' (header " .. what .. " with CR, LF or NUL: " .. string.format("%q", s) .. ")", 3) end
end

local function build_request(self)
  local u = self.parsed
  local defaults = {
    { "Host", u.authority },
    { "User-Agent", "sluice-http/0.1" },
    { "Accept", "*/*" },
    { "Accept-Encoding", "identity" },
    { "Connection", "close" },
  }
  local given = {}
  for name in pairs(self.req_headers) do given[name:lower()] = true end
  local lines = { self.method .. " " .. u.path .. " HTTP/1.1" }
  for _, h in ipairs(defaults) do
    if not given[h[1]:lower()] then lines[#lines + 1] = h[1] .. ": " .. h[2] end
  end
  local names = {}
  for name in pairs(self.req_headers) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    lines[#lines + 1] = name .. ": " .. self.req_headers[name]
  end
  if self.req_body and not given["content-length"] then
    lines[#lines + 1] = "Content-Length: " .. #self.req_body
  end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (self.req_body or "")
end

function Request:_close()
  if self.conn then
    self.conn:close()
    self.conn = nil
  end
end

function Request:_fail(msg, code)
  if self.state ~= "waiting" then return end
  self:_close()
  self.state, self.error, self.code = "failure", msg, code
  self.parts = nil
end

function Request:_finish()
  self:_close()
  self.body = table.concat(self.parts)
  self.parts = nil
  self.state = "done"
end

-- (Re)starts the exchange with self.url.
function Request:_start()
  local u, err = M.parse_url(self.url)
  if not u then return self:_fail(err, "invalid") end
  self.parsed = u
  self.status, self.reason, self.headers = nil, nil, nil
  self.received, self.total, self.parts = 0, nil, {}
  self.phase, self.buf, self.header_bytes, self.remaining, self.chunked = "status", "", 0, nil, false
  self.trailer_bytes = 0
  local net = get_net()
  local ssl = nil
  if u.scheme == "https" then ssl = self.ssl == nil and true or self.ssl end
  local conn, msg, code
  if ssl ~= nil then
    conn, msg, code = net.open_tcp(u.host, u.port, ssl)
  else
    conn, msg, code = net.open_tcp(u.host, u.port)
  end
  if not conn then return self:_fail(msg, code) end
  self.conn = conn
  self.out, self.out_pos = build_request(self), 1
end

-- Credentials stay with the origin they were given for.
function Request:_leave_origin(to)
  local from = self.parsed
  if from.scheme == to.scheme and from.host:lower() == to.host:lower() and from.port == to.port then return end
  for name in pairs(self.req_headers) do
    if ORIGIN_BOUND[name:lower()] then self.req_headers[name] = nil end
  end
end

function Request:_redirect(location)
  if self.redirects >= self.max_redirects then
    return self:_fail(string.format("too many redirects (more than %d)", self.max_redirects), "limit")
  end
  local target = resolve_location(self.parsed, location)
  local to, err = M.parse_url(target)
  if not to then return self:_fail("bad redirect: " .. err, "protocol") end
  if self.parsed.scheme == "https" and to.scheme == "http" and not self.allow_downgrade then
    return self:_fail("redirect from https to http refused: " .. target .. " (set allow_downgrade)", "protocol")
  end
  self:_leave_origin(to)
  self:_close()
  local from = self.url
  self.url = target
  self.redirects = self.redirects + 1
  self.history[#self.history + 1] = { url = from, status = self.status, location = location }
  if self.status == 303 or ((self.status == 301 or self.status == 302) and self.method == "POST") then
    if self.method ~= "HEAD" then self.method = "GET" end
    self.req_body = nil
    for name in pairs(self.req_headers) do
      local l = name:lower()
      if l == "content-length" or l == "content-type" then self.req_headers[name] = nil end
    end
  end
  self:_start()
end

function Request:_headers_done()
  local s = self.status
  if s >= 100 and s < 200 and s ~= 101 then   -- interim response: the real one follows
    self.phase, self.headers = "status", nil
    return
  end
  local h = self.headers
  if (s == 301 or s == 302 or s == 303 or s == 307 or s == 308) and h.location
      and self.max_redirects > 0 then
    return self:_redirect(h.location)
  end
  if self.method == "HEAD" or s == 204 or s == 304 or s < 200 then
    return self:_finish()
  end
  local te = h["transfer-encoding"]
  if te and te:lower():find("chunked", 1, true) then
    self.chunked, self.phase = true, "chunk_size"
    return
  end
  local cl = h["content-length"]
  if cl then
    local n = cl:match("^%s*(%d+)%s*$")
    n = n and math.tointeger(tonumber(n))
    if not n then return self:_fail("bad Content-Length: " .. cl, "protocol") end
    self.total = n
    if self.max_size and n > self.max_size then
      return self:_fail(string.format("response too large: %d bytes (max_size %d)", n, self.max_size), "limit")
    end
    if n == 0 then return self:_finish() end
    self.remaining, self.phase = n, "data"
    return
  end
  self.phase = "data"   -- until the server closes
end

function Request:_line(line)
  local phase = self.phase
  if phase == "status" then
    if line == "" then return end   -- tolerate a stray empty line before it
    local code, reason = line:match("^HTTP/%d%.%d (%d%d%d) ?(.-)%s*$")
    if not code then
      return self:_fail("bad HTTP status line: " .. string.format("%q", line:sub(1, 80)), "protocol")
    end
    self.status, self.reason = math.tointeger(tonumber(code)), reason
    self.headers, self.phase = {}, "headers"
  elseif phase == "headers" then
    if line == "" then return self:_headers_done() end
    local name, value = line:match("^([!#$%%&'*+.^_`|~%w-]+):[ \t]*(.-)[ \t]*$")
    if not name or value:find("[\0-\8\10-\31\127]") then
      return self:_fail("bad header line: " .. string.format("%q", line:sub(1, 80)), "protocol")
    end
    name = name:lower()
    local old = self.headers[name]
    self.headers[name] = old and (old .. ", " .. value) or value
  elseif phase == "chunk_size" then
    -- hex digits, then nothing but optional whitespace and ;extensions
    local hex, rest = line:match("^(%x+)(.*)$")
    local ok = rest and (rest == "" or rest:match("^[ \t]*;[^\0-\8\10-\31\127]*$"))
    local n = ok and #hex <= 15 and tonumber(hex, 16)
    if not n then
      return self:_fail("bad chunk size line: " .. string.format("%q", line:sub(1, 80)), "protocol")
    end
    if n == 0 then
      self.phase = "trailers"
    else
      self.remaining, self.phase = n, "data"
    end
  elseif phase == "chunk_end" then
    if line ~= "" then return self:_fail("chunk not followed by CRLF", "protocol") end
    self.phase = "chunk_size"
  elseif phase == "trailers" then
    if line == "" then return self:_finish() end
    if not line:match("^[!#$%%&'*+.^_`|~%w-]+:") or line:find("[\0-\8\10-\31\127]") then
      return self:_fail("bad trailer line: " .. string.format("%q", line:sub(1, 80)), "protocol")
    end
  end
end

function Request:_body(s)
  self.received = self.received + #s
  if self.max_size and self.received > self.max_size then
    return self:_fail(string.format("response larger than max_size (%d bytes)", self.max_size), "limit")
  end
  self.parts[#self.parts + 1] = s
end

-- Consumes bytes that arrived.
function Request:_feed(data)
  local buf = self.buf .. data
  self.buf = ""
  local pos, n = 1, #buf
  local conn = self.conn   -- a redirect replaces it: the old response's bytes are dropped
  while self.state == "waiting" and self.conn == conn do
    local phase = self.phase
    if phase == "data" then
      local avail = n - pos + 1
      if avail <= 0 then return end
      local take = self.remaining and math.min(self.remaining, avail) or avail
      self:_body((pos == 1 and take == n) and buf or buf:sub(pos, pos + take - 1))
      pos = pos + take
      if self.remaining then
        self.remaining = self.remaining - take
        if self.remaining == 0 then
          if self.chunked then
            self.remaining, self.phase = nil, "chunk_end"
          else
            self:_finish()
          end
        end
      end
    else   -- a line
      local e = buf:find("\n", pos, true)
      if not e then
        self.buf = buf:sub(pos)
        if #self.buf > MAX_LINE then self:_fail("response line too long", "protocol") end
        return
      end
      if e - pos > MAX_LINE then return self:_fail("response line too long", "protocol") end
      if phase == "status" or phase == "headers" then
        self.header_bytes = self.header_bytes + (e - pos + 1)
        if self.header_bytes > MAX_HEADERS then
          return self:_fail("response headers too large", "protocol")
        end
      elseif phase == "trailers" then
        self.trailer_bytes = self.trailer_bytes + (e - pos + 1)
        if self.trailer_bytes > MAX_TRAILERS then
          return self:_fail("response trailers too large", "protocol")
        end
      end
      local line = buf:sub(pos, e - 1):gsub("\r$", "")
      pos = e + 1
      self:_line(line)
    end
  end
end

function Request:_eof()
  if self.phase == "data" and not self.remaining and not self.chunked then
    return self:_finish()
  end
  if self.phase == "status" and self.header_bytes == 0 and self.buf == "" then
    return self:_fail("connection closed without a response", "closed")
  end
  if self.phase == "status" or self.phase == "headers" then
    return self:_fail("connection closed in the middle of the response headers", "closed")
  end
  if self.total then
    return self:_fail(string.format("connection closed after %d of %d bytes", self.received, self.total), "closed")
  end
  return self:_fail(string.format("connection closed in the middle of the chunked body (%d bytes received)",
    self.received), "closed")
end

-- Advances the exchange; returns "waiting", "done" or "failure", message, code.
function Request:poll()
  if self.state ~= "waiting" then return self.state, self.error, self.code end
  if self.deadline and now() > self.deadline then
    self:_fail(string.format("timed out after %d ms", self.timeout), "timeout")
    return self.state, self.error, self.code
  end
  if self.out then
    local out = self.out_pos == 1 and self.out or self.out:sub(self.out_pos)
    local n, msg, code = self.conn:write(out)
    if not n then
      self:_fail(msg, code)
      return self.state, self.error, self.code
    end
    self.out_pos = self.out_pos + n
    if self.out_pos > #self.out then self.out, self.out_pos = nil, nil end
  end
  local budget = self.poll_bytes
  while budget > 0 and self.state == "waiting" do
    local conn = self.conn
    local data, msg, code = conn:read(math.min(budget, READ_SIZE))
    if data == nil then
      if msg then
        self:_fail(msg, code)
      else
        self:_eof()
      end
    elseif data == "" then
      break
    else
      budget = budget - #data
      self:_feed(data)
      if self.conn ~= conn then break end   -- redirected: a new connection starts
    end
  end
  return self.state, self.error, self.code
end

function Request:cancel()
  self:_fail("cancelled", "cancelled")
end

function Request:__tostring()
  return string.format("http.request(%s %s, %s)", self.method, self.url, self.state)
end

function M.request(opts)
  if type(opts) == "string" then opts = { url = opts } end
  if type(opts) ~= "table" then error("bad argument #1 to 'request' (table or URL expected)", 2) end
  if type(opts.url) ~= "string" then error("bad argument #1 to 'request' (url must be a string)", 2) end
  local method = opts.method or "GET"
  if type(method) ~= "string" or not method:match("^%u+$") then
    error("bad argument #1 to 'request' (method must be an upper-case token)", 2)
  end
  if opts.body ~= nil and type(opts.body) ~= "string" then
    error("bad argument #1 to 'request' (body must be a string)", 2)
  end
  local headers = {}
  if opts.headers ~= nil then
    if type(opts.headers) ~= "table" then error("bad argument #1 to 'request' (headers must be a table)", 2) end
    for name, value in pairs(opts.headers) do
      if type(name) ~= "string" or not name:match("^[!#$%%&'*+.^_`|~%w-]+$") then
        error("bad argument #1 to 'request' (bad header name " .. tostring(name) .. ")", 2)
      end
      value = tostring(value)
      check_header_text(value, "value")
      headers[name] = value
    end
  end
  local function int_opt(name, default, min)
    local v = opts[name]
    if v == nil then return default end
    if math.type(v) ~= "integer" or v < min then
      error(string.format("bad argument #1 to 'request' (%s must be an integer >= %d)", name, min), 3)
    end
    return v
  end
  local timeout = int_opt("timeout", 30000, -1)
  local req = setmetatable({
    url = opts.url,
    method = method,
    req_headers = headers,
    req_body = opts.body,
    ssl = opts.ssl,
    timeout = timeout,
    max_size = int_opt("max_size", DEFAULT_MAX_SIZE, 0),
    allow_downgrade = opts.allow_downgrade == true,
    max_redirects = int_opt("max_redirects", 5, 0),
    poll_bytes = int_opt("poll_bytes", 1024 * 1024, 1),
    redirects = 0,
    history = {},
    state = "waiting",
    received = 0,
  }, Request)
  local u, err = M.parse_url(req.url)
  if not u then return nil, err end
  if timeout >= 0 then req.deadline = now() + timeout / 1000 end
  req:_start()
  return req
end

-- Runs a request to the end: body, req or nil, message, req (see above).
function M.fetch(url, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.url = url
  local req, err = M.request(o)
  if not req then return nil, err end
  local yieldable = coroutine.isyieldable()
  local interval = o.interval or 0.01
  while true do
    local state, msg = req:poll()
    if o.progress then o.progress(req) end
    if state == "done" then return req.body, req end
    if state == "failure" then return nil, msg, req end
    if yieldable then
      coroutine.yield(interval)
    elseif get_net().wait then
      get_net().wait(math.max(1, math.floor(interval * 1000)))
    else
      error("http.fetch: call it from a coroutine (this net module has no wait)", 2)
    end
  end
end

return M
