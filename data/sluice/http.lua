-- http.lua: Pragtical's `core.http` interface on sluice's HTTP engine
-- (net.http_request, run on the I/O thread). Plain Lua on the public `net`
-- API; runs on the caller's thread and never waits.
--
--   local http = require "sluice.http"     -- in an editor: libraries.sluice.http
--   http.get("https://example.org/api", {q = "x"}, {
--     on_done = function(ok, err, body, info) print(ok, err, info and info.status) end,
--   })
--   -- in an editor callbacks just come; in a plain program:  http.run()
--
-- Functions, options and callbacks are those of core.http:
--   http.request(method, url, options)   method in any case ("get" is GET)
--   http.get / head / options(url, params, options)       params: query string
--   http.post / put / delete / patch(url, submit_type, params, options)
--     submit_type "application/x-www-form-urlencoded", "multipart/form-data"
--     (a param {filename, content_type, data | path} is a file part),
--     "application/json" (net.json_encode), "text/plain" (tostring(params));
--     options.body, when given, is sent as is instead
--   http.download(url, options)   options.filename, .directory, .on_progress;
--     on_done(ok, err, filename, info); a status outside 2xx is "HTTP <code>"
--     (except the 416 of a resume whose file was already whole: done)
--   http.sse(url, options)        options.on_event(event, info) with
--     {event, data, id, retry}; .last_event_id, .method, .submit_type, .params;
--     on_done(ok, err, info)
-- options: headers, body, timeout (seconds), is_cancelled(), decode_json
-- (default true: a JSON content type gives a decoded table, null as nil, as
-- core.json decodes it), on_redirect(info)
-- (every response head, redirects included), on_header(info) (the final one),
-- on_chunk(chunk) (the body in the pieces it arrives in, not per HTTP chunk;
-- then it is not kept), on_done(ok, err, result, info).
-- info = {status, headers (lower-case names; a repeated one as a list), url,
-- reason}. Failures before a response pass on_done(false, message); later
-- ones also pass nil and info.
--
-- sluice extras: ssl (net.open_tcp's), max_size, decompress, connect_timeout
-- and idle_timeout (seconds), max_redirects, keepalive, proxy, output, resume
-- and sha256 (as net.http_request takes them), allow_downgrade (a redirect
-- from https to http is refused without it), on_progress(received, total) for
-- every request; the handle
-- each call returns (:cancel()); http.sse_max_event (bytes of one event, 16
-- MiB: past it the stream fails). A body handed to on_chunk has no size cap
-- unless max_size is given; one kept whole has the engine's (64 MiB).
--
-- Where it differs: the engine speaks HTTP (chunked, gzip, TLS, redirects:
-- up to 5 unless max_redirects says otherwise, Authorization, Cookie and
-- Host dropped on a redirect to another origin, a Proxy-Authorization
-- header refused; a POST answered 301 or 302 goes on as a GET without its body, as
-- browsers and curl do, where core.http keeps it: 307 and 308 keep it here)
-- on the I/O thread, and on_redirect sees every hop it followed; this file
-- calls back. `timeout` covers the whole request, redirects included. A URL
-- is sent as browsers send it: what its path and query cannot hold as it is
-- (a space, UTF-8, brackets...) percent-encoded. JSON params must be UTF-8
-- (net.json_encode refuses other bytes, and the call raises). A download is written by the engine off the caller's
-- thread under a temporary name next to the file, renamed into place once
-- complete: a failed or cancelled one leaves nothing, and a file already at
-- the name stays as it was (with resume and a filename, the engine writes
-- "<filename>.part" itself and a failed attempt keeps it for the next); a
-- name from Content-Disposition or the URL keeps only its last path
-- component (the server's own never replaces a file: "name (1).ext"; nor
-- makes a hidden one); a missing directory is created (core.common.mkdirp in an
-- editor, else LuaFileSystem; without either the download fails, naming
-- it). JSON is not decoded for an empty body (HEAD, 204). Callbacks run from
-- http.update(): in an editor (Lite XL, Pragtical) an editor thread calls it
-- while requests run; elsewhere call http.update() each frame, or http.run().

local runtime = require((... and (...):match("^(.*%.)[^.]*$") or "sluice.") .. "runtime")
local net = runtime.load_net(...)

---@class sluice.http
local http = { _VERSION = "sluice.http 1.0" }

---User-Agent sent unless the request sets one.
http.user_agent = "sluice.http/1.0"

local MAX_REDIRECTS = 5
local READ_MAX = 256 * 1024
local POLL_BUDGET = 1024 * 1024      -- bytes taken per request per update: frames stay short
local PATHSEP = package.config:sub(1, 1)

-- The folder with one separator after it: the system's, unless the folder is
-- written with "/" only (as Windows takes too), so the path stays in one style.
local function join_dir(dir)
  local sep = (PATHSEP == "\\" and not dir:find("\\", 1, true)) and "/" or PATHSEP
  return dir:gsub("[/\\]+$", "") .. sep
end

local active = {}                    -- jobs still running, in start order
local settling = {}                  -- ended downloads whose engine may still have their file
local SETTLED = {}                   -- key of a download's settled(status) in its options

---@class sluice.http.info
---@field status integer
---@field headers table<string, string|string[]>
---@field url string
---@field reason string

-- ---- URLs and bodies ---------------------------------------------------------

local function clone(v)
  if type(v) ~= "table" or getmetatable(v) ~= nil then return v end   -- an object (a callable) stays itself
  local t = {}
  for k, x in pairs(v) do t[k] = clone(x) end
  return t
end

local function urlencode(s)
  return (tostring(s):gsub("[^%w%-._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

-- Keys sorted so that the same params always give the same text.
local function encode_query(params)
  local out = {}
  for _, k in ipairs(sorted_keys(params)) do
    out[#out + 1] = urlencode(k) .. "=" .. urlencode(params[k])
  end
  return table.concat(out, "&")
end

local function append_query(url, params)
  local qs = params and encode_query(params) or ""
  if qs == "" then return url end
  local base, fragment = url:match("^([^#]*)(.*)$")   -- the query goes before a #fragment
  return base .. (base:find("?", 1, true) and "&" or "?") .. qs .. fragment
end

-- A name or file name inside the quotes of Content-Disposition (as browsers write them).
local function quoted(s)
  return (tostring(s):gsub('[\r\n"]', { ["\r"] = "%0D", ["\n"] = "%0A", ['"'] = "%22" }))
end

local function file_part(name, v)
  local data = v.data
  if v.path then
    local f, err = io.open(v.path, "rb")
    if not f then error("multipart: cannot read " .. tostring(v.path) .. ": " .. tostring(err), 0) end
    data = f:read("a")
    f:close()
  end
  return string.format('Content-Disposition: form-data; name="%s"; filename="%s"\r\nContent-Type: %s\r\n\r\n',
    quoted(name), quoted(v.filename or "file"), v.content_type or "application/octet-stream") .. data
end

local function encode_multipart(params, boundary)
  local out = {}
  for _, name in ipairs(sorted_keys(params)) do
    local v = params[name]
    out[#out + 1] = "--" .. boundary .. "\r\n"
    if type(v) == "table" and (v.data or v.path) then
      out[#out + 1] = file_part(name, v)
    else
      out[#out + 1] = string.format('Content-Disposition: form-data; name="%s"\r\n\r\n', quoted(name))
        .. tostring(v)
    end
    out[#out + 1] = "\r\n"
  end
  out[#out + 1] = "--" .. boundary .. "--\r\n"
  return table.concat(out)
end

-- The body and the Content-Type for params sent as `submit_type`.
local function encode_body(submit_type, params)
  if submit_type == "application/x-www-form-urlencoded" then
    return encode_query(params), submit_type
  elseif submit_type == "multipart/form-data" then
    local boundary = string.format("sluice-%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
    return encode_multipart(params, boundary), submit_type .. "; boundary=" .. boundary
  elseif submit_type == "application/json" then
    local text, err = net.json_encode(params)
    if not text then error(err, 0) end
    return text, submit_type
  elseif submit_type == "text/plain" then
    return tostring(params), submit_type
  end
  error("Unsupported Content-Type: " .. tostring(submit_type), 0)
end


local function header_value(headers, name)
  local v = headers and headers[name]
  if type(v) == "table" then return v[#v] end
  return v
end

local function is_json(content_type)
  return content_type ~= nil and (content_type:find("application/json", 1, true)
    or content_type:find("+json", 1, true)) ~= nil
end

-- ---- the request job ---------------------------------------------------------

local Job = {}
Job.__index = Job

-- Header names as sent ("content-type" -> "Content-Type"); a later spelling
-- of the same name replaces an earlier one, as core.http does.
local function wire_headers(headers, user_agent)
  local lower = {}
  for k, v in pairs(headers or {}) do lower[tostring(k):lower()] = tostring(v) end
  if not lower["user-agent"] and user_agent then lower["user-agent"] = user_agent end
  local out = {}
  for k, v in pairs(lower) do
    out[k:gsub("(%a)([%w]*)", function(a, b) return a:upper() .. b end)] = v
  end
  return out
end

-- A body handed on piece by piece (on_chunk: downloads, event streams) has
-- no size cap unless the caller sets one; a body kept whole has the engine's.
local STREAM_MAX = 1 << 53

local ENGINE_MS_MAX = 0x7fffffff

-- Seconds (this file's unit) as the engine's milliseconds. `zero` is what 0
-- becomes: 1 for the timeout (core.http's 0 times out at once), 0 (none) for
-- the others, as net.http_request takes them. Past the engine's range (24
-- days, math.huge): none there, abort_reason keeps the caller's timeout.
local function ms(seconds, zero)
  if type(seconds) ~= "number" then return nil end   -- nil or false: the engine's default
  local v = math.ceil(seconds * 1000)
  if v ~= v or v > ENGINE_MS_MAX then return 0 end
  return v <= 0 and zero or v
end

local function engine_options(job)
  local o = job.options
  local streamed = type(o.on_chunk) == "function"
  local e = {
    url = job.url, method = job.method, body = job.body, max_redirects = o.max_redirects or MAX_REDIRECTS,
    headers = wire_headers(job.headers, http.user_agent),
    timeout = ms(o.timeout, 1) or 0, connect_timeout = ms(o.connect_timeout, 0), idle_timeout = ms(o.idle_timeout, 0),
    ssl = o.ssl, allow_downgrade = o.allow_downgrade, proxy = o.proxy,
    max_size = o.max_size or (streamed and STREAM_MAX or nil),
    output = o.output, resume = o.resume, sha256 = o.sha256,
  }
  if o.decompress ~= nil then e.decompress = o.decompress end
  if o.keepalive ~= nil then e.keepalive = o.keepalive end
  return e
end

-- The engine request is closed, or for a download kept until the engine
-- says how its file ended (http.update looks), after on_done has run.
function Job:release()
  local req, settled = self.req, self.options[SETTLED]
  self.req = nil
  if not req then return end
  if settled then
    settling[#settling + 1] = { req = req, settled = settled }
    runtime.drive("sluice.http", http.update)
  else
    req:close()
  end
end

function Job:finish(ok, err, result)
  self:release()
  self.state = "done"
  if ok then
    self.options.on_done(true, nil, result, self.info)
  elseif self.info then
    self.options.on_done(false, err, nil, self.info)
  else
    self.options.on_done(false, err)
  end
end

-- "request cancelled" / "request timed out" when the caller's limits say stop
-- (or why :fail asked a download to stop).
function Job:abort_reason()
  local o = self.options
  if self.stopping then return self.stopping end
  if type(o.is_cancelled) == "function" and o.is_cancelled() then return "request cancelled" end
  if o.timeout and net.clock() - self.started >= o.timeout then return "request timed out" end
end

-- Whether the engine puts the file at the user's own name (output, or a
-- download's resume) rather than under a name of ours this file renames.
function Job:engine_places()
  local o = self.options
  return o.output ~= nil and (o[SETTLED] == nil or o.resume ~= nil)
end

-- A download asked to stop: the engine's word decides how its file ended.
-- While it puts a whole file in place the stop comes too late and the
-- download succeeds; a failure shows once the engine let go of the file
-- (within 2 s). Returns the engine's status: "waiting" while that word is
-- still to come.
function Job:stop_download(why)
  local status = self.req:get_status()
  if status ~= "success" then
    if not self.stopping then self.req:cancel() end
    self.stopping = why
  end
  return status
end

function Job:start()
  if not self.url:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]") then return self:finish(false, "invalid URL") end
  local ok, req, err = pcall(net.http_request, engine_options(self))
  if not ok then return self:finish(false, tostring(req)) end
  if not req then return self:finish(false, err) end
  self.req, self.state = req, "head"
end

-- Each redirect the engine answered since the last look, to on_redirect.
function Job:report_hops()
  while self.state ~= "done" do
    local status, headers, reason, url = self.req:get_redirect(self.hops + 1)
    if not status then return end
    self.hops = self.hops + 1
    if self.options.on_redirect then
      self.options.on_redirect({ status = status, headers = headers, url = url, reason = reason })
    end
  end
end

function Job:on_head(status, headers, reason, url)
  self.info = { status = status, headers = headers, url = url, reason = reason }
  local o = self.options
  if o.on_redirect then o.on_redirect(self.info) end
  if self.state == "done" then return end
  self.state = "body"
  if o.on_header then o.on_header(self.info) end
end

-- After each callback: it may have ended its own request.
function Job:take(chunk)
  local o = self.options
  if o.on_progress then o.on_progress(self.req:get_progress()) end
  if self.state == "done" then return end
  if type(o.on_chunk) == "function" then o.on_chunk(chunk)
  else self.parts[#self.parts + 1] = chunk end
end

-- JSON null as core.json gives it: nil (an array keeps its length as a hole).
local function drop_nulls(v)
  if v == net.json_null then return nil end
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = drop_nulls(x) end
  end
  return v
end

function Job:done_ok()
  local o = self.options
  if type(o.on_chunk) == "function" then return self:finish(true) end
  local body = table.concat(self.parts)
  self.parts = {}
  if o.decode_json ~= false and body ~= "" and is_json(header_value(self.info.headers, "content-type")) then
    local value, err = net.json_decode(body)
    if value == nil then return self:finish(false, "json decode error: " .. tostring(err)) end
    return self:finish(true, nil, drop_nulls(value))
  end
  return self:finish(true, nil, body)
end

-- The engine's failure, in core.http's words where it has some.
function Job:engine_error(msg, code)
  if code == "timeout" and self.options.timeout and msg:find("(timeout)", 1, true) then msg = "request timed out"
  elseif code == "limit" and msg:find("more than %d+ redirects$") then msg = "too many redirects"
  else msg = msg:match("(redirect from https to http refused: %S+)") or msg end
  return self:finish(false, msg)
end

-- A body written to a file by the engine: only progress to report. The
-- status is read first, so that the progress reported is the final one.
function Job:watch_output()
  local o = self.options
  local st, msg, code = self.req:get_status()
  local received, total = self.req:get_progress()
  if o.on_progress and received ~= self.reported then
    self.reported = received
    o.on_progress(received, total)
    if self.state == "done" then return end   -- on_progress ended it
  end
  if st == "failure" then return self:engine_error(msg, code) end
  if st == "success" then return self:finish(true) end
end

function Job:read_body()
  if self.options.output then return self:watch_output() end
  local taken = 0
  while self.state == "body" and taken < POLL_BUDGET do
    local data, msg, code = self.req:read(READ_MAX)
    if data == nil then
      if msg then return self:engine_error(msg, code) end
      return self:done_ok()
    end
    if data == "" then return end
    taken = taken + #data
    self:take(data)
  end
end

-- One step as far as it can go now.
function Job:poll()
  if self.state == "done" then return end
  local why = self:abort_reason()
  -- the engine kept the same timeout: a response it finished in time, looked at
  -- only now (a long frame), did not time out
  if why == "request timed out" and not self.stopping and self.req and self.req:get_status() == "success" then
    why = nil
  end
  if why and self.req and self:engine_places() then
    local status = self:stop_download(why)
    if status == "waiting" then return end
    if status == "success" then why = nil end   -- too late: it is in place
  end
  if why then
    if self.req then self.req:cancel() end
    return self:finish(false, why)
  end
  if self.state == "start" then self:start() end
  if self.state == "head" then self:report_hops() end
  if self.state == "head" then
    local status, headers, reason, url = self.req:get_response()
    local st, msg, code
    if not status then st, msg, code = self.req:get_status() end
    -- hops the engine published since the look above come before the end
    if status or st == "failure" then self:report_hops() end
    if self.state ~= "head" then return end   -- an on_redirect cancelled it
    if status then
      self:on_head(status, headers, reason, url)
    elseif st == "failure" then
      return self:engine_error(msg, code)
    end
  end
  if self.state == "body" then self:read_body() end
end

-- Ends the request with `msg` (on_done gets it) unless it already ended.
function Job:fail(msg)
  if self.state == "done" then return end
  if self.req and self:engine_places() then   -- on_done waits for the engine's word (Job:poll)
    if not self.stopping then self:stop_download(msg) end
    return runtime.drive("sluice.http", http.update)
  end
  if self.req then self.req:cancel() end
  self:finish(false, msg)
end

function Job:cancel() self:fail("request cancelled") end

-- Downloads whose engine has ended: their files are theirs to tidy now.
-- Returns how many still wait.
local function settle()
  for i = #settling, 1, -1 do
    local s = settling[i]
    local status = s.req:get_status()
    if status ~= "waiting" then
      table.remove(settling, i)
      s.req:close()
      s.settled(status)
    end
  end
  return #settling
end

---Advances every request and runs their callbacks; returns how many still
---run. An error raised by a callback ends its request and is raised here
---once the others have been advanced.
---@return integer
function http.update()
  local list, errs = {}, {}
  for i = 1, #active do list[i] = active[i] end
  for _, job in ipairs(list) do
    local ok, err = pcall(job.poll, job)
    if not ok then
      job:release()
      job.state = "done"
      errs[#errs + 1] = err
    end
  end
  local n = 0
  for i = 1, #active do
    if active[i].state ~= "done" then n = n + 1; active[n] = active[i] end
  end
  for i = #active, n + 1, -1 do active[i] = nil end
  n = n + settle()
  if #errs == 1 then error(errs[1], 0) end
  if #errs > 1 then   -- every callback's error, none lost
    for i = 1, #errs do errs[i] = tostring(errs[i]) end
    error(table.concat(errs, "\n"), 0)
  end
  return n
end

---Runs http.update() until no request is left (or `timeout` seconds passed);
---for programs without an editor. Returns how many requests still run.
---@param timeout? number seconds
---@return integer
function http.run(timeout)
  local deadline = timeout and net.clock() + timeout
  while true do
    local n = http.update()
    if n == 0 or (deadline and net.clock() >= deadline) then return n end
    runtime.pause(net, 10)
  end
end

local function check_options(options, what)
  assert(type(options) == "table", "provide the options object")
  assert(type(options[what]) == "function", "provide the " .. what .. " callback")
end

-- Wrong types raise at the call, not from a later http.update() that would
-- never call on_done.
local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

local function check_request(url, options)
  assert(type(url) == "string", "provide the url as a string")
  for _, k in ipairs({ "timeout", "connect_timeout", "idle_timeout" }) do
    local v = options[k]
    assert(not v or type(v) == "number", "options." .. k .. " must be a number of seconds")
  end
  -- on_chunk and is_cancelled are used only when functions, as core.http does
  for _, k in ipairs({ "on_header", "on_redirect", "on_progress" }) do
    local v = options[k]
    assert(not v or callable(v), "options." .. k .. " must be a function")
  end
end

-- A method as the engine takes it: HTTP's are upper-case tokens, and "get"
-- means GET (the engine refuses any other case).
local function upper_method(method)
  return type(method) == "string" and method:upper() or method
end

---Starts a request; callbacks come from http.update() (by itself in an editor).
---Returns a handle with :cancel(). `method` in any case ("get" is GET).
---@param method string
---@param url string
---@param options table
function http.request(method, url, options)
  check_options(options, "on_done")
  check_request(url, options)
  local job = setmetatable({
    method = upper_method(method), url = url, options = options, headers = clone(options.headers),
    body = options.body, parts = {}, hops = 0, state = "start", started = net.clock(),
  }, Job)
  active[#active + 1] = job
  runtime.drive("sluice.http", http.update)
  return job
end

local function query_request(method, url, params, options)
  check_options(options, "on_done")
  check_request(url, options)
  return http.request(method, append_query(url, params), clone(options))
end

local function body_request(method, url, submit_type, params, options)
  check_options(options, "on_done")
  check_request(url, options)
  options = clone(options)
  if options.body == nil and params ~= nil then
    local body, content_type = encode_body(submit_type, params)
    options.headers = options.headers or {}
    for k in pairs(options.headers) do
      if tostring(k):lower() == "content-type" then options.headers[k] = nil end
    end
    options.headers["Content-Type"] = content_type
    options.body = body
  end
  return http.request(method, url, options)
end

function http.get(url, params, options) return query_request("GET", url, params, options) end
function http.head(url, params, options) return query_request("HEAD", url, params, options) end
function http.options(url, params, options) return query_request("OPTIONS", url, params, options) end
function http.post(url, st, params, options) return body_request("POST", url, st, params, options) end
function http.put(url, st, params, options) return body_request("PUT", url, st, params, options) end
function http.delete(url, st, params, options) return body_request("DELETE", url, st, params, options) end
function http.patch(url, st, params, options) return body_request("PATCH", url, st, params, options) end

-- ---- download ---------------------------------------------------------------

-- The last path component of `name`, or nil when nothing usable is left.
local function base_name(name)
  name = name and name:match("([^/\\]*)$")
  if not name or name == "" or name == "." or name == ".." then return nil end
  return name
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- A name of the server's own that no file in dir has: "name (2).ext" after
-- "name (1).ext", as browsers do; nil when a thousand are taken.
local function free_name(dir, name)
  if not exists(dir .. name) then return name end
  local stem, ext = name:match("^(.+)(%.[^.]*)$")
  stem, ext = stem or name, stem and ext or ""
  for i = 1, 1000 do
    local try = string.format("%s (%d)%s", stem, i, ext)
    if not exists(dir .. try) then return try end
  end
end

-- The name the server gives (Content-Disposition), else that of the URL the
-- caller gave, not of where it redirected to (as core.http and curl -O). The
-- server's own name never replaces a file nor makes a hidden one (curl -OJ
-- refuses both): it gets a free name instead, or gives way to the URL's.
local function served_name(headers, url, dir)
  local from_url = base_name(url:match("^[^?#]*"))
  local cd = header_value(headers, "content-disposition")
  local quoted = base_name(cd and (cd:match('filename="([^"]+)"') or cd:match("filename=([^;%s]+)")))
  if quoted and quoted ~= from_url and quoted:sub(1, 1) ~= "." then quoted = free_name(dir, quoted)
  elseif quoted ~= from_url then quoted = nil end
  return quoted or from_url or "download"
end

-- Whether path is a file (not a folder: reading one fails; a file gives bytes or its end).
local function is_file(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local _, err = f:read(1)
  f:close()
  return err == nil
end

-- Moves the finished part file over `path`. Where rename cannot replace a file
-- (Windows), the file at path goes first; anything else there (a folder)
-- stays, and the rename's error says why.
local function put_in_place(part, path)
  local ok, err = os.rename(part, path)
  if ok or not is_file(path) then return ok, err end
  os.remove(path)
  return os.rename(part, path)
end

-- `s` with every plain `what` replaced by `with`.
local function replace_plain(s, what, with)
  local out, pos = {}, 1
  while true do
    local a, b = s:find(what, pos, true)
    if not a then break end
    out[#out + 1] = s:sub(pos, a - 1) .. with
    pos = b + 1
  end
  return table.concat(out) .. s:sub(pos)
end

-- The engine names the file it writes; the caller knows only `shown`.
local function in_user_words(err, written, shown)
  if written == shown then return err end   -- a resume writes under the user's own name
  local cannot = err:find(written .. ".part", 1, true) and "cannot write " .. shown .. ": " or ""
  return cannot .. replace_plain(replace_plain(err, written .. ".part", shown), written, shown)
end

local lfs   -- LuaFileSystem when it can be loaded, else false

-- The directory and its parents, with what the host has: the editor's
-- core.common.mkdirp, else LuaFileSystem (a mkdir per missing level, as
-- quick as the rename a download ends with). Plain Lua has no mkdir and a
-- shell would block the caller, so without either a download into a missing
-- directory fails, naming it.
local function make_dirs(dir)
  local common = package.loaded["core.common"]
  if type(common) == "table" and common.mkdirp then return common.mkdirp(dir) end
  if lfs == nil then
    local ok, mod = pcall(require, "lfs")
    lfs = ok and type(mod) == "table" and mod.mkdir and mod or false
  end
  if not lfs then return end
  local path = ""
  for part, sep in dir:gmatch("([^/\\]*)([/\\]*)") do
    path = path .. part
    if part ~= "" and not lfs.attributes(path, "mode") then lfs.mkdir(path) end
    path = path .. sep
  end
end

-- Where the engine writes before the name is known: unique within this process run.
local temp_count = 0
local function temp_name(dir)
  temp_count = temp_count + 1
  return string.format("%s.sluice-download-%d-%d-%d", dir, os.time(), math.floor(net.clock() * 1e6) % 1000000,
    temp_count)
end

---Downloads `url` into a file (options.filename, else the name the server
---or the URL gives, in options.directory). The engine writes it off the
---caller's thread.
---@param url string
---@param options table
function http.download(url, options)
  check_options(options, "on_done")
  check_request(url, options)
  local dir = options.directory and join_dir(options.directory) or ""
  if options.directory then make_dirs(options.directory) end
  local named = options.filename and dir .. options.filename
  -- The engine writes to a name of our own (and its ".part") until the file
  -- is whole, so a file already at the name stays unless one replaces it;
  -- a resume continues the user's own "<filename>.part".
  local resume = named and options.resume
  local written = resume and named or temp_name(named and named:match("^(.*[/\\])") or dir)
  local filename, placed = named, resume
  local wanted   -- the head's status says a file comes (2xx; 416: a resume already whole)
  local function on_header(info)
    wanted = info.status >= 200 and info.status < 300 or (resume and info.status == 416)
    if info.status >= 200 and info.status < 300 then filename = filename or dir .. served_name(info.headers, url, dir) end
  end
  -- as core.http: an error page is no progress of the download
  local on_progress = options.on_progress and function(received, total)
    if wanted then options.on_progress(received, total) end
  end
  local function on_done(ok, err, _, info)
    if ok and resume and info and info.status == 416 then
      -- the engine found the file already whole: done, at its name
    elseif info and (info.status < 200 or info.status >= 300) then
      ok, err, filename = false, "HTTP " .. info.status, nil
    elseif not ok then
      err = in_user_words(err, written, filename or (dir ~= "" and dir:sub(1, -2)) or ".")
    end
    if ok and not placed then
      local rerr
      placed, rerr = put_in_place(written, filename)
      if not placed then ok, err = false, "cannot put the download in place at " .. filename .. ": " .. tostring(rerr) end
    end
    options.on_done(ok, err, filename, info)
  end
  -- The engine removes a .part it gives up; a whole file it wrote that did
  -- not become the download (a cancel that came too late) goes here.
  local function settled(status)
    if status == "success" and not placed then os.remove(written) end
  end
  local o = clone(options)   -- every request option goes on to the engine
  o.filename, o.directory, o.params = nil, nil, nil
  o.decompress, o.output, o.on_header, o.on_done, o.on_progress = false, written, on_header, on_done, on_progress
  o.resume, o[SETTLED] = resume or nil, settled
  return http.get(url, nil, o)
end

-- ---- server-sent events --------------------------------------------------------

---Bytes of one server-sent event (or line) held at most before the stream fails.
http.sse_max_event = 16 * 1024 * 1024

-- An event-stream parser fed arbitrary pieces; calls emit(event) per event.
-- feed(piece) is false once an event being read grows past http.sse_max_event.
local function sse_parser(last_id, emit)
  local data, name, retry, held = {}, nil, nil, 0   -- held: bytes in data
  -- the line being read, in the pieces it came in (joined once it ends: a
  -- long line in small pieces costs its size, not its size squared)
  local parts, plen, cr, head = {}, 0, false, ""    -- cr: a piece ended in CR
  local id, first, over = last_id, true, false
  local function dispatch()
    if #data > 0 and not over then
      emit({ event = name or "message", data = table.concat(data, "\n"), id = id, retry = retry })
    end
    data, name, retry, held = {}, nil, nil, 0
  end
  local function line(l)
    if l == "" then return dispatch() end
    if l:sub(1, 1) == ":" then return end
    local field, value = l:match("^([^:]*):? ?(.*)$")
    if field == "event" then name = value
    elseif field == "data" then
      data[#data + 1] = value
      held = held + #value + 1
      over = over or held > http.sse_max_event
    elseif field == "id" then if not value:find("\0", 1, true) then id = value end
    elseif field == "retry" and value:match("^%d+$") then retry = tonumber(value) end
  end
  local function line_end(piece)
    if plen > 0 then
      piece = table.concat(parts) .. piece
      parts, plen = {}, 0
    end
    line(piece)
  end
  -- A UTF-8 BOM at the very start is dropped: the first bytes, or nil while it may still come.
  local function skip_bom(chunk)
    local bom = "\239\187\191"
    head = head .. chunk
    if head:sub(1, 3) == bom then chunk = head:sub(4)
    elseif bom:sub(1, #head) == head then return nil
    else chunk = head end
    first, head = false, ""
    return chunk
  end
  -- Lines end at LF, CRLF or a lone CR (an LF after a piece's last CR is that CR's).
  local function feed(chunk)
    if first then
      chunk = skip_bom(chunk)
      if not chunk then return true end
    end
    local pos = 1
    if cr and chunk ~= "" then
      cr = false
      if chunk:byte(1) == 10 then pos = 2 end
    end
    while true do
      local s = chunk:find("[\r\n]", pos)
      if not s then break end
      line_end(chunk:sub(pos, s - 1))
      if chunk:byte(s) == 13 then
        if s == #chunk then cr = true
        elseif chunk:byte(s + 1) == 10 then s = s + 1 end
      end
      pos = s + 1
    end
    if pos <= #chunk then
      parts[#parts + 1] = chunk:sub(pos)
      plen = plen + #chunk - pos + 1
    end
    over = over or plen > http.sse_max_event
    return not over
  end
  local function finish()
    if first then   -- the stream ended inside what could have been a BOM: it was text
      first = false
      feed(head)
    end
    if plen > 0 then line_end("") end
    dispatch()
  end
  return feed, finish
end
http._sse_parser = sse_parser   -- for the tests

---Opens a Server-Sent Events stream: options.on_event(event, info) per event,
---options.on_done(ok, err, info) at its end.
---@param url string
---@param options table
function http.sse(url, options)
  check_options(options, "on_event")
  check_options(options, "on_done")
  check_request(url, options)
  local o = clone(options)
  local method = upper_method(o.method or "GET")
  local headers = o.headers or {}
  local has = {}
  for k in pairs(headers) do has[tostring(k):lower()] = true end
  if not has.accept then headers.Accept = "text/event-stream" end
  if options.last_event_id and not has["last-event-id"] then
    headers["Last-Event-ID"] = options.last_event_id
  end
  local info, handle, ending
  local feed, finish = sse_parser(options.last_event_id, function(ev)
    if ending or handle.state ~= "done" then options.on_event(ev, info) end   -- not after on_event ended it
  end)
  o.headers, o.method, o.submit_type, o.params, o.last_event_id, o.on_event = headers, nil, nil, nil, nil, nil
  o.decompress = false   -- events must come as sent, not when a compressor flushes
  o.on_header = function(i)
    info = i
    if options.on_header then options.on_header(i) end
  end
  o.on_chunk = function(chunk)
    if not feed(chunk) then handle:fail("event stream: an event over " .. http.sse_max_event .. " bytes") end
  end
  o.on_done = function(ok, err, _, i)
    if ok then ending = true; finish() end
    options.on_done(ok, err, i)
  end
  if method == "GET" or method == "HEAD" or method == "OPTIONS" then
    handle = query_request(method, url, options.params, o)
  else
    handle = body_request(method, url, options.submit_type or "application/json", options.params, o)
  end
  return handle
end


return http
