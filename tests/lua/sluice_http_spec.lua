-- sluice_http_spec: sluice.http, Pragtical's core.http interface on net.http_request,
-- against tests/tools/http_test_server.py on loopback: every verb and submit type
-- (checked by what the server decoded), callback order and arguments, JSON decoding,
-- redirects (hops seen by on_redirect, 303, the limit, credentials kept to their
-- origin), 404 and refused connections as core.http reports them, timeouts,
-- is_cancelled, downloads to a file byte for byte, server-sent events sent in odd
-- pieces (and the parser fed at every split point), and a plugin written for core.http
-- run unchanged, polled and driven by a stand-in editor's threads.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
local http = require "sluice.http"

local function start_http(dir, certs)
  return h.start_http_server(dir, certs and { cert = certs:pem("good"), key = certs:key("good") })
end

-- Runs every request to its end; fails past 30 s.
local function run_all()
  assert.equal(0, http.run(30), "requests still running after 30 s")
end

-- Calls fn(..., options) with options.on_done recording its arguments, runs it
-- to the end; returns the arguments (a packed table, .n of them).
local function call(fn, ...)
  local args = table.pack(...)
  local opts = args[args.n]
  local done
  opts.on_done = function(...)
    assert.is_nil(done, "on_done called twice")
    done = table.pack(...)
  end
  fn(table.unpack(args, 1, args.n))
  run_all()
  assert.is_truthy(done, "on_done was not called")
  return done
end

local SSE_TEXT = "\239\187\191: a comment first\nretry: 1500\nid: 1\nevent: hello\ndata: %s\n\n"
  .. "data: line one\r\ndata: line two\r\nid: 2\r\n\r\n"
  .. "event: update\rdata:no space\rdata\r\r"
  .. "id\ndata: empty id\n\n"
  .. "retry: soon\ndata:  two spaces\n\n"
  .. ": only a comment\n\n"
  .. "data: last without blank line"

local function sse_events(last)
  return {
    { event = "hello", data = last, id = "1", retry = 1500 },
    { event = "message", data = "line one\nline two", id = "2" },
    { event = "update", data = "no space\n", id = "2" },
    { event = "message", data = "empty id", id = "" },
    { event = "message", data = " two spaces", id = "" },
    { event = "message", data = "last without blank line", id = "" },
  }
end

describe("sluice.http", function()
  local dir, server, server2, base, base2, content

  setup(function()
    dir = h.temp_dir()
    content = h.random_bytes(h.scaled(2 * h.MiB, 256 * h.KiB))
    local f = assert(io.open(dir .. "/data.bin", "wb"))
    f:write(content)
    f:close()
    f = assert(io.open(dir .. "/hello.txt", "wb"))
    f:write("hello, world\n")
    f:close()
    server = start_http(dir)
    server2 = start_http(dir)
    base = "http://127.0.0.1:" .. server.port
    base2 = "http://127.0.0.1:" .. server2.port
  end)

  teardown(function() h.stop_all() end)

  local function raw_response(name, bytes)
    h.write_file(dir .. "/" .. name, bytes)
    return base .. "/raw/" .. name
  end

  it("GET: params in the query string, a JSON answer decoded, info of the response", function()
    local d = call(http.get, base .. "/json-echo", { b = "x y", a = "1&2=3/é" }, {})
    assert.equal(4, d.n)
    assert.is_true(d[1])
    assert.is_nil(d[2])
    local info = d[4]
    assert.equal(200, info.status)
    assert.equal(base .. "/json-echo?a=1%262%3D3%2F%C3%A9&b=x%20y", info.url)
    assert.equal("application/json; charset=utf-8", info.headers["content-type"])
    assert.equal("GET", d[3].method)
    assert.equal("/json-echo?a=1%262%3D3%2F%C3%A9&b=x%20y", d[3].path)
    assert.equal(http.user_agent, d[3].headers["user-agent"])
    -- decode_json = false: the text as it came
    d = call(http.get, base .. "/json-echo", nil, { decode_json = false, headers = { ["X-One"] = 1 } })
    assert.equal("string", type(d[3]))
    local echo = net.json_decode(d[3])
    assert.equal("1", echo.headers["x-one"])
    assert.equal("/json-echo", echo.path)
    -- params go before a #fragment, which is not sent
    d = call(http.get, base .. "/json-echo?x=1#part", { y = 2 }, {})
    assert.equal("/json-echo?x=1&y=2", d[3].path)
  end)

  it("HEAD and OPTIONS; a method in any case", function()
    local d = call(http.head, base .. "/data.bin", nil, {})
    assert.is_true(d[1])
    assert.equal("", d[3])
    assert.equal(tostring(#content), d[4].headers["content-length"])
    d = call(http.head, base .. "/json-echo", nil, {})   -- a JSON type with no body is no error
    assert.is_true(d[1], d[2])
    assert.equal("", d[3])
    d = call(http.options, base .. "/json-echo", { q = "1" }, {})
    assert.is_true(d[1], d[2])
    assert.equal("OPTIONS", d[3].method)
    assert.equal("/json-echo?q=1", d[3].path)
    -- a method in lower case is the same method
    d = call(http.request, "options", base .. "/json-echo", {})
    assert.is_true(d[1], d[2])
    assert.equal("OPTIONS", d[3].method)
    d = call(http.request, "Delete", base .. "/json-echo", { body = "x" })
    assert.is_true(d[1], d[2])
    assert.equal("DELETE", d[3].method)
  end)

  it("POST form-urlencoded, JSON, multipart and text/plain; PUT, DELETE, PATCH", function()
    local d = call(http.post, base .. "/json-echo", "application/x-www-form-urlencoded",
      { name = "a b&c", n = 5 }, {})
    assert.is_true(d[1], d[2])
    assert.equal("POST", d[3].method)
    assert.equal("application/x-www-form-urlencoded", d[3].headers["content-type"])
    assert.same({ name = "a b&c", n = "5" }, d[3].form)

    local doc = { list = { 1, 2, 3 }, nested = { ok = true }, text = "ünï" }
    d = call(http.put, base .. "/json-echo", "application/json", doc, {})
    assert.equal("PUT", d[3].method)
    assert.equal("application/json", d[3].headers["content-type"])
    assert.same(doc, d[3].form)

    local path = dir .. "/upload.txt"
    local f = assert(io.open(path, "wb"))
    f:write("from a file\r\n--not a boundary\n")
    f:close()
    d = call(http.patch, base .. "/json-echo", "multipart/form-data", {
      field = "plain value",
      inline = { filename = "a.json", content_type = "application/json", data = '{"x":1}' },
      disk = { filename = "upload.txt", path = path },
    }, {})
    assert.equal("PATCH", d[3].method)
    assert.matches("^multipart/form%-data; boundary=", d[3].headers["content-type"])
    assert.same({
      field = "plain value",
      inline = { filename = "a.json", content_type = "application/json", data = '{"x":1}' },
      disk = { filename = "upload.txt", content_type = "application/octet-stream",
               data = "from a file\r\n--not a boundary\n" },
    }, d[3].form)

    d = call(http.delete, base .. "/json-echo", "text/plain", "raw text body", {})
    assert.equal("DELETE", d[3].method)
    assert.equal("text/plain", d[3].headers["content-type"])
    assert.equal("raw text body", d[3].body)

    -- options.body is sent as it is, params or not
    d = call(http.post, base .. "/json-echo", "application/json", { ignored = true },
      { body = "<xml/>", headers = { ["content-type"] = "application/xml" } })
    assert.equal("<xml/>", d[3].body)
    assert.equal("application/xml", d[3].headers["content-type"])
    -- no params, no body: no Content-Type
    d = call(http.post, base .. "/json-echo", "application/json", nil, {})
    assert.equal("", d[3].body)
    assert.is_nil(d[3].headers["content-type"])
  end)

  it("raises on wrong use as core.http does", function()
    assert.has_error(function() http.get(base, nil, nil) end, "provide the options object")
    assert.has_error(function() http.get(base, nil, {}) end, "provide the on_done callback")
    assert.has_error(function()
      http.post(base, "application/yaml", { a = 1 }, { on_done = function() end })
    end, "Unsupported Content-Type: application/yaml")
    assert.has_error(function() http.sse(base, { on_done = function() end }) end,
      "provide the on_event callback")
    -- wrong types raise at the call, not from a later update that never calls on_done
    local done = function() end
    assert.has_error(function() http.get(nil, nil, { on_done = done }) end, "provide the url as a string")
    assert.has_error(function() http.request("GET", 42, { on_done = done }) end, "provide the url as a string")
    assert.has_error(function() http.download(nil, { on_done = done }) end, "provide the url as a string")
    assert.has_error(function() http.get(base, nil, { on_done = done, timeout = "5" }) end,
      "options.timeout must be a number of seconds")
    assert.has_error(function() http.post(base, "text/plain", "x", { on_done = done, idle_timeout = {} }) end,
      "options.idle_timeout must be a number of seconds")
    assert.has_error(function() http.get(base, nil, { on_done = done, on_header = 1 }) end,
      "options.on_header must be a function")
    -- what core.http takes is taken: callable tables, false for no timeout
    local calls = 0
    local callable = setmetatable({}, { __call = function() calls = calls + 1 end })
    local d = call(http.get, base .. "/hello.txt", nil, { on_header = callable, on_progress = callable,
      timeout = false, connect_timeout = false, idle_timeout = false })
    assert.is_true(d[1], d[2])
    assert.is_true(calls >= 2)
    assert.equal(0, http.update())
  end)

  it("calls on_redirect for every head, on_header once, on_chunk with the body, then on_done", function()
    local calls = {}
    local d = call(http.get, base .. "/redirect/3/chunked/data.bin", nil, {
      on_redirect = function(info) calls[#calls + 1] = { "redirect", info.status, info.url } end,
      on_header = function(info) calls[#calls + 1] = { "header", info.status, info.url } end,
      on_chunk = function(chunk)
        local last = calls[#calls]
        if last[1] ~= "chunk" then last = { "chunk", {} }; calls[#calls + 1] = last end
        last[2][#last[2] + 1] = chunk
      end,
    })
    assert.equal(4, d.n)
    assert.is_true(d[1])
    assert.is_nil(d[2])
    assert.is_nil(d[3])
    local final = base .. "/chunked/data.bin"
    assert.equal(final, d[4].url)
    assert.same({ "redirect", 302, base .. "/redirect/3/chunked/data.bin" }, calls[1])
    assert.same({ "redirect", 302, base .. "/redirect/2/chunked/data.bin" }, calls[2])
    assert.same({ "redirect", 301, base .. "/redirect/1/chunked/data.bin" }, calls[3])
    assert.same({ "redirect", 200, final }, calls[4])
    assert.same({ "header", 200, final }, calls[5])
    assert.equal("chunk", calls[6][1])
    assert.equal(6, #calls)
    assert.is_true(table.concat(calls[6][2]) == content, "streamed body differs from the file")
  end)

  it("calls on_redirect for every hop even when they all came while it looked away", function()
    -- a first look at the head that stalls: the hops and the final head all arrive meanwhile
    local methods = getmetatable(net.http_request{ url = base .. "/hello.txt" }).__index
    local get_response, stalled = methods.get_response, false
    methods.get_response = function(req)
      if not stalled then
        stalled = true
        req:wait(10000)
      end
      return get_response(req)
    end
    local hops = {}
    local ok, d = pcall(call, http.get, base .. "/redirect/3/hello.txt", nil, {
      on_redirect = function(info) hops[#hops + 1] = info.status end,
    })
    methods.get_response = get_response
    assert.is_true(ok, d)
    assert.is_true(d[1], d[2])
    assert.same({ 302, 302, 301, 200 }, hops)
  end)

  it("follows at most 5 redirects; 303 turns into GET; a relative Location", function()
    local d = call(http.get, base .. "/redirect/5/hello.txt", nil, {})
    assert.is_true(d[1], d[2])
    assert.equal("hello, world\n", d[3])
    d = call(http.get, base .. "/redirect/6/hello.txt", nil, {})
    assert.equal(2, d.n)
    assert.is_false(d[1])
    assert.equal("too many redirects", d[2])
    d = call(http.post, base .. "/post-then-get", "text/plain", "payload", {})
    assert.is_true(d[1], d[2])
    assert.matches("^GET /echo\n", d[3])
    assert.equal(base .. "/echo", d[4].url)
    d = call(http.get, base .. "/relative/hello.txt", nil, {})
    assert.equal("hello, world\n", d[3])
  end)

  it("keeps Authorization and Cookie to their origin across redirects", function()
    local hdr = { Authorization = "Bearer secret", Cookie = "s=1", ["X-Keep"] = "yes" }
    local d = call(http.get, base .. "/goto?/json-echo", nil, { headers = hdr })
    assert.equal("Bearer secret", d[3].headers.authorization)
    d = call(http.get, base .. "/goto?" .. base2 .. "/json-echo", nil, { headers = hdr })
    assert.is_true(d[1], d[2])
    assert.equal(base2 .. "/json-echo", d[4].url)
    assert.is_nil(d[3].headers.authorization)
    assert.is_nil(d[3].headers.cookie)
    assert.equal("yes", d[3].headers["x-keep"])
  end)

  it("reports a 404 as a response, a refused connection and a bad URL as failures", function()
    local d = call(http.get, base .. "/status/404", nil, {})
    assert.equal(4, d.n)
    assert.is_true(d[1])
    assert.is_nil(d[2])
    assert.equal("status 404\n", d[3])
    assert.equal(404, d[4].status)
    local port = h.closed_port()
    d = call(http.get, "http://127.0.0.1:" .. port .. "/x", nil, {})
    assert.equal(2, d.n)
    assert.is_false(d[1])
    assert.matches("refused", d[2])
    d = call(http.get, "ftp://127.0.0.1/x", nil, {})
    assert.same({ n = 2, false, "invalid URL" }, d)
  end)

  it("fails with 'json decode error' and the info when a JSON body is broken", function()
    local url = raw_response("badjson", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      .. "Content-Length: 5\r\nConnection: close\r\n\r\n{bad}")
    local d = call(http.get, url, nil, {})
    assert.equal(4, d.n)
    assert.is_false(d[1])
    assert.matches("^json decode error: ", d[2])
    assert.is_nil(d[3])
    assert.equal(200, d[4].status)
  end)

  it("decodes JSON null as nil and encodes an empty table as {}, as core.json does", function()
    local doc = '{"a":null,"b":{"c":null,"d":1},"list":[1,null,3]}'
    local url = raw_response("nulljson", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      .. "Content-Length: " .. #doc .. "\r\nConnection: close\r\n\r\n" .. doc)
    local d = call(http.get, url, nil, {})
    assert.is_true(d[1], d[2])
    assert.is_nil(d[3].a)
    assert.is_nil(d[3].b.c)
    assert.equal(1, d[3].b.d)
    assert.same({ 1, nil, 3 }, { d[3].list[1], d[3].list[2], d[3].list[3] })
    d = call(http.post, base .. "/json-echo", "application/json", {}, {})
    assert.equal("{}", d[3].body)
  end)

  it("passes max_size on: a body kept whole over it fails with the info", function()
    local d = call(http.get, base .. "/data.bin", nil, { max_size = 1000 })
    assert.equal(4, d.n)
    assert.is_false(d[1])
    assert.matches("max_size 1000", d[2], 1, true)
    assert.equal(200, d[4].status)
  end)

  it("passes the engine's options on: proxy, idle_timeout, keepalive, max_redirects", function()
    local port = h.closed_port()
    local d = call(http.get, base .. "/hello.txt", nil, { proxy = "http://127.0.0.1:" .. port })
    assert.is_false(d[1])
    assert.matches("127.0.0.1:" .. port, d[2], 1, true)   -- it went for the proxy
    d = call(http.get, base .. "/stall", nil, { idle_timeout = 0.3, timeout = 20 })
    assert.is_false(d[1])
    assert.matches("idle for 300 ms", d[2], 1, true)
    d = call(http.get, base .. "/redirect/2/hello.txt", nil, { max_redirects = 1 })
    assert.same({ n = 2, false, "too many redirects" }, d)
    -- 0 for connect_timeout and idle_timeout is none, as the engine takes it; a timeout past
    -- the engine's range (24 days) is kept here
    d = call(http.get, base .. "/hello.txt", nil, { timeout = math.huge, connect_timeout = 0, idle_timeout = 0 })
    assert.is_true(d[1], d[2])
    d = call(http.get, base .. "/hello.txt", nil, { timeout = 1e12 })
    assert.is_true(d[1], d[2])
    local ports = {}
    for i = 1, 2 do ports[i] = call(http.get, base .. "/conn-id", nil, { keepalive = false })[3] end
    assert.are_not.equal(ports[1], ports[2])
  end)

  it("downloads with sha256 and resume", function()
    local ddir = h.temp_dir()
    local target = ddir .. "/data.bin"
    h.write_file(target, "the user's own text\n")
    local d = call(http.download, base .. "/data.bin", { filename = target, sha256 = string.rep("0", 64) })
    assert.is_false(d[1])
    assert.matches("the file's sha256 is ", d[2], 1, true)
    assert.equal("the user's own text\n", h.read_file(target))
    assert.is_false(h.path_exists(target .. ".part"))
    -- a .part of other bytes: only a resume keeps them
    local cut = 1000
    h.write_file(target .. ".part", string.rep("x", cut))
    d = call(http.download, base .. "/range/data.bin", { filename = target, resume = true })
    assert.is_true(d[1], d[2])
    assert.is_true(h.read_file(target) == string.rep("x", cut) .. content:sub(cut + 1), "not resumed")
    assert.is_false(h.path_exists(target .. ".part"))
    -- resumed again once whole: the server answers 416, and the download is done
    local whole = h.read_file(target)
    d = call(http.download, base .. "/range/data.bin", { filename = target, resume = true })
    assert.is_true(d[1], d[2])
    assert.equal(target, d[3])
    assert.equal(416, d[4].status)
    assert.is_true(h.read_file(target) == whole, "the whole file changed")
    assert.is_false(h.path_exists(target .. ".part"))
  end)

  it("times out, and stops when is_cancelled says so, before and after the head", function()
    local d = call(http.get, base .. "/stall", nil, { timeout = 0.3 })
    assert.equal(4, d.n)
    assert.is_false(d[1])
    assert.equal("request timed out", d[2])
    assert.equal(200, d[4].status)
    local seen = false
    d = call(http.get, base .. "/stall", nil, {
      on_header = function() seen = true end,
      is_cancelled = function() return seen end,
    })
    assert.same({ n = 4, false, "request cancelled", nil, d[4] }, d)
    assert.equal(200, d[4].status)
    d = call(http.get, base .. "/stall", nil, { is_cancelled = function() return true end })
    assert.same({ n = 2, false, "request cancelled" }, d)
    -- the handle's cancel()
    local done
    local r = http.get(base .. "/stall", nil, { on_done = function(...) done = table.pack(...) end })
    r:cancel()
    assert.same({ n = 2, false, "request cancelled" }, done)
    assert.equal(0, http.update())
  end)

  it("does not time out a response the engine finished in time, looked at only after a long frame", function()
    local done
    -- 1 s: the engine, held 0.3 s below, must still finish in time on a
    -- loaded machine (sanitizers, spec files run side by side)
    local r = http.get(base .. "/hello.txt", nil, { timeout = 1, on_done = function(...) done = table.pack(...) end })
    net._hold_requests(300)   -- the engine cannot end it inside this first update
    http.update()   -- starts it
    assert(h.wait_for(function() return r.req:get_status() ~= "waiting" end, 10000))
    assert.equal("success", r.req:get_status())
    h.sleep(1100)   -- the frame that looks comes after the timeout
    run_all()
    assert.is_true(done[1], done[2])
    assert.equal("hello, world\n", done[3])
  end)

  it("raises every callback error of one update, none lost", function()
    local done = 0
    local function boom(tag) return { on_done = function() done = done + 1; error("boom " .. tag, 0) end } end
    local one = http.get(base .. "/hello.txt", nil, boom("one"))
    local two = http.get(base .. "/hello.txt", nil, boom("two"))
    net._hold_requests(300)   -- the engine cannot end it inside this first update
    http.update()   -- starts both
    assert(h.wait_for(function()   -- both ended in the engine: the next update calls both back
      return one.req:get_status() ~= "waiting" and two.req:get_status() ~= "waiting"
    end, 10000))
    local ok, err = pcall(http.update)
    assert.is_false(ok)
    assert.equal(2, done)
    assert.matches("boom one", err, 1, true)
    assert.matches("boom two", err, 1, true)
    assert.equal(0, http.update())
  end)

  it("calls on_done once for a request ended by its own callback", function()
    local ddir = h.temp_dir()
    local dones, handle = {}, nil
    handle = http.download(base .. "/hello.txt", {
      filename = ddir .. "/hello.txt",
      on_progress = function(got, total) if got == total then handle:cancel() end end,
      on_done = function(...) dones[#dones + 1] = table.pack(...) end,
    })
    net._hold_requests(300)   -- the engine cannot end it inside this first update
    http.update()   -- starts it; the engine ends it before the next look
    assert(h.wait_for(function() return handle.req:get_status() ~= "waiting" end, 5000))
    run_all()
    assert.equal(1, #dones)
    assert.same({ false, "request cancelled" }, { dones[1][1], dones[1][2] })
    local function keep(fn) return function(...) handle = fn(...) end end
    -- a body kept in memory: no on_chunk after on_progress ended it
    local chunks = 0
    local d = call(keep(http.get), base .. "/data.bin", nil, {
      on_progress = function() handle:cancel() end,
      on_chunk = function() chunks = chunks + 1 end,
    })
    assert.equal("request cancelled", d[2])
    assert.equal(0, chunks)
    -- an event stream: no event after on_event ended it
    local events = {}
    d = call(keep(http.sse), base .. "/sse", {
      on_event = function(ev) events[#events + 1] = ev; handle:cancel() end,
    })
    assert.equal("request cancelled", d[2])
    assert.equal(1, #events)
  end)

  it("downloads to a file byte for byte with progress, no part file left", function()
    local ddir = h.temp_dir()
    local progress = {}
    local d = call(http.download, base .. "/chunked/data.bin?x=1", {
      directory = ddir .. "/",
      on_progress = function(got, total) progress[#progress + 1] = { got, total } end,
    })
    assert.is_true(d[1], d[2])
    assert.equal(ddir .. "/data.bin", d[3])
    assert.equal(200, d[4].status)
    assert.is_true(h.read_file(ddir .. "/data.bin") == content, "downloaded file differs")
    assert.is_false(h.path_exists(ddir .. "/data.bin.part"))
    assert.is_true(#progress > 0)
    for i = 2, #progress do assert.is_true(progress[i][1] > progress[i - 1][1]) end
    assert.same({ #content }, { progress[#progress][1], progress[#progress][2] })

    -- Content-Length gives the total; an explicit filename
    progress = {}
    d = call(http.download, base .. "/data.bin", {
      filename = ddir .. "/named.bin",
      on_progress = function(got, total) progress[#progress + 1] = { got, total } end,
    })
    assert.is_true(d[1], d[2])
    assert.equal(ddir .. "/named.bin", d[3])
    assert.is_true(h.read_file(ddir .. "/named.bin") == content, "downloaded file differs")
    assert.same({ #content, #content }, progress[#progress])

    -- the name of the URL asked for, not of where it redirected to
    d = call(http.download, base .. "/goto?/hello.txt", { directory = ddir })
    assert.is_true(d[1], d[2])
    assert.equal(ddir .. "/goto", d[3])
    assert.equal("hello, world\n", h.read_file(ddir .. "/goto"))
    assert.is_false(h.path_exists(ddir .. "/hello.txt"))

    -- a name from Content-Disposition keeps only its last component
    local f
    local url = raw_response("cd", "HTTP/1.1 200 OK\r\nContent-Disposition: attachment; "
      .. "filename=\"../escape.txt\"\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
    d = call(http.download, url, { directory = ddir })
    assert.is_true(d[1], d[2])
    assert.equal(ddir .. "/escape.txt", d[3])
    assert.equal("abc", h.read_file(ddir .. "/escape.txt"))
    url = raw_response("cd2", "HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=plain.bin; "
      .. "size=3\r\nContent-Length: 3\r\nConnection: close\r\n\r\nxyz")
    f = assert(io.open(ddir .. "/plain.bin", "wb"))   -- the server's name never replaces a file
    f:write("older and longer")
    f:close()
    d = call(http.download, url, { directory = ddir })
    assert.is_true(d[1], d[2])
    assert.equal(ddir .. "/plain (1).bin", d[3])
    assert.equal("xyz", h.read_file(ddir .. "/plain (1).bin"))
    assert.equal("older and longer", h.read_file(ddir .. "/plain.bin"))
    d = call(http.download, url, { directory = ddir })
    assert.equal(ddir .. "/plain (2).bin", d[3])
    -- nor makes a hidden file: the URL's name serves, and the caller's URL may replace
    url = raw_response("cd3", "HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=.bashrc\r\n"
      .. "Content-Length: 3\r\nConnection: close\r\n\r\nrc!")
    h.write_file(ddir .. "/cd3", "older")
    d = call(http.download, url, { directory = ddir })
    assert.is_true(d[1], d[2])
    assert.equal(ddir .. "/cd3", d[3])
    assert.equal("rc!", h.read_file(ddir .. "/cd3"))
    assert.is_false(h.path_exists(ddir .. "/.bashrc"))
  end)

  it("fails a download on a status outside 2xx or a cut body, leaving no file", function()
    local ddir = h.temp_dir()
    local progress = 0
    local d = call(http.download, base .. "/status/404", { directory = ddir,
      on_progress = function() progress = progress + 1 end })
    assert.same({ n = 4, false, "HTTP 404", nil, d[4] }, d)
    assert.equal(404, d[4].status)
    assert.equal(0, progress, "an error page is no progress (core.http)")
    d = call(http.download, base .. "/short/hello.txt", { directory = ddir })
    assert.equal(4, d.n)
    assert.is_false(d[1])
    assert.matches("body ended after 13 of 1013 bytes", d[2], 1, true)
    assert.equal(ddir .. "/hello.txt", d[3])
    assert.is_false(h.path_exists(ddir .. "/hello.txt"))
    assert.is_false(h.path_exists(ddir .. "/hello.txt.part"))
    d = call(http.download, base .. "/hello.txt", { filename = ddir .. "/no/such/dir/x" })
    assert.is_false(d[1])
    assert.matches("cannot write " .. ddir .. "/no/such/dir/x: ", d[2], 1, true)
  end)

  it("creates the directory it is to download into; an error names the user's file", function()
    -- outside an editor that takes LuaFileSystem (plain Lua has no mkdir)
    if not pcall(require, "lfs") then return pending("no LuaFileSystem in this Lua") end
    local ddir = h.temp_dir()
    local d = call(http.download, base .. "/hello.txt", { directory = ddir .. "/new/sub/" })
    assert.is_true(d[1], d[2])
    assert.equal(ddir .. "/new/sub/hello.txt", d[3])
    assert.equal("hello, world\n", h.read_file(d[3]))
    h.write_file(ddir .. "/plain", "a file, not a directory\n")
    d = call(http.download, base .. "/hello.txt", { directory = ddir .. "/plain/sub" })
    assert.is_false(d[1])
    assert.matches("^cannot write " .. ddir .. "/plain/sub: ", d[2])
    assert.is_nil(d[2]:find("sluice-download", 1, true), d[2])
  end)

  it("leaves no file of its own after quick cancels; a file at filename stays", function()
    local ddir = h.temp_dir()
    h.write_file(ddir .. "/kept.txt", "the user's own text\n")
    -- A download the engine ended inside its first update is done before its
    -- cancel comes: its file is the download. Every other one must leave nothing.
    local settled, expected, cancelled = 0, { ["kept.txt"] = true }, 0
    local kept_text = "the user's own text\n"
    for i = 1, 60 do
      local opts = { directory = ddir }
      opts.on_done = function(ok, err, filename)
        settled = settled + 1
        if ok then
          local name = filename:match("[^/\\]+$")
          expected[name] = true
          if name == "kept.txt" then kept_text = "hello, world\n" end
        elseif err == "request cancelled" then
          cancelled = cancelled + 1
        end
      end
      if i % 2 == 0 then opts.filename = i % 4 == 0 and "kept.txt" or "f" .. i end
      local handle = http.download(base .. "/hello.txt", opts)
      http.update()   -- the engine starts; the cancel comes before, while or after it ends
      if i % 3 == 0 then h.wait_for(function() return not handle.req or handle.req:get_status() ~= "waiting" end, 5000)
      else net.wait(i % 5) end
      handle:cancel()
    end
    run_all()
    assert.equal(60, settled)
    assert.is_true(cancelled >= 40, cancelled .. " of 60 downloads were cancelled")
    local want = {}
    for name in pairs(expected) do want[#want + 1] = name end
    table.sort(want)
    want = table.concat(want, " ")
    local names
    assert(h.wait_for(function()
      local p, listed = assert(io.popen("ls -A " .. ddir)), {}
      for name in p:lines() do listed[#listed + 1] = name end
      p:close()
      table.sort(listed)
      names = table.concat(listed, " ")
      return names == want
    end, 5000), "a cancelled download left a file: " .. names .. " (expected: " .. want .. ")")
    assert.equal(kept_text, h.read_file(ddir .. "/kept.txt"))
  end)

  it("leaves a resumable download's end to its engine: a cancel after the file went in place is too late", function()
    local ddir = h.temp_dir()
    local target = ddir .. "/whole.bin"
    local d
    local handle = http.download(base .. "/data.bin", { filename = target, resume = true,
      on_done = function(...) d = table.pack(...) end })
    http.update()
    assert(h.wait_for(function() return handle.req:get_status() ~= "waiting" end, 30000))
    handle:cancel()
    run_all()
    assert.is_true(d[1], tostring(d[2]))
    assert.is_true(h.read_file(target) == content, "the file at filename differs")
    assert.is_false(h.path_exists(target .. ".part"))
    -- a cancelled resume that began from the file at filename finds it back there in on_done
    local partial = ddir .. "/partial.bin"
    h.write_file(partial, content:sub(1, 1000))
    handle = http.download(base .. "/delay/1500/data.bin", { filename = partial, resume = true,
      on_done = function(ok, err)
        d = { ok, err, h.read_file(partial), h.path_exists(partial .. ".part") }
      end })
    http.update()
    net.wait(300)
    handle:cancel()
    run_all()
    assert.same({ false, "request cancelled", content:sub(1, 1000), false }, d)
  end)

  it("puts a download in place only over a file: a folder at filename stays, and the error names it", function()
    local ddir = h.temp_dir()
    for _, full in ipairs({ false, true }) do
      local target = ddir .. (full and "/full" or "/empty")
      assert(os.execute("mkdir " .. h.shell_quote(target)))
      if full then h.write_file(target .. "/inside.txt", "x") end
      local d = call(http.download, base .. "/hello.txt", { filename = target })
      assert.is_false(d[1])
      assert.matches("^cannot put the download in place at " .. target .. ": ", d[2])
      assert.is_true(h.path_exists(target), "the folder at filename went")
      assert.is_false(h.path_exists(target .. "/hello.txt"))
    end
  end)

  it("keeps an existing file at filename when a download to it fails", function()
    local ddir = h.temp_dir()
    local target = ddir .. "/kept.txt"
    h.write_file(target, "the user's own text\n")
    local d = call(http.download, base .. "/status/404", { filename = target })
    assert.is_false(d[1])
    assert.equal("HTTP 404", d[2])
    assert.equal("the user's own text\n", h.read_file(target))
    assert.is_false(h.path_exists(target .. ".part"))
    d = call(http.download, base .. "/short/hello.txt", { filename = target })
    assert.is_false(d[1])
    assert.equal("the user's own text\n", h.read_file(target))
    assert.is_false(h.path_exists(target .. ".part"))
  end)

  it("parses server-sent events sent in odd pieces, with Last-Event-ID", function()
    local events, info_seen = {}, {}
    local d = call(http.sse, base .. "/sse", {
      last_event_id = "41",
      on_event = function(ev, info)
        events[#events + 1] = ev
        info_seen[#info_seen + 1] = info and info.status
      end,
    })
    assert.equal(3, d.n)
    assert.is_true(d[1], d[2])
    assert.is_nil(d[2])
    assert.equal(200, d[3].status)
    assert.same(sse_events("41"), events)
    assert.equal(6, #info_seen)
    for _, st in ipairs(info_seen) do assert.equal(200, st) end
    -- a POST stream with a JSON body, no Last-Event-ID
    events = {}
    d = call(http.sse, base .. "/sse", {
      method = "POST", params = { prompt = "hi" },
      on_event = function(ev) events[#events + 1] = ev end,
    })
    assert.is_true(d[1], d[2])
    assert.same(sse_events("none"), events)
  end)

  it("fails a stream whose event outgrows sse_max_event; a BOM counts only first", function()
    local url = raw_response("longsse", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
      .. "Connection: close\r\n\r\ndata: short\n\ndata: " .. string.rep("x", 300) .. "\n\n")
    local saved, events = http.sse_max_event, {}
    http.sse_max_event = 100
    local ok, d = pcall(call, http.sse, url, { on_event = function(ev) events[#events + 1] = ev.data end })
    http.sse_max_event = saved
    assert(ok, d)
    assert.equal(3, d.n)
    assert.is_false(d[1])
    assert.equal("event stream: an event over 100 bytes", d[2])
    assert.equal(200, d[3].status)
    assert.same({ "short" }, events)
    local got = {}
    local feed, finish = http._sse_parser(nil, function(ev) got[#got + 1] = ev.data end)
    assert.is_true(feed("\239\187"))
    assert.is_true(feed("\191data: a\n\n\239\187\191data: b\n\n"))
    finish()
    assert.same({ "a" }, got)   -- a later BOM is part of a field name: no data field
    -- a line that never ends is held only up to the cap too
    http.sse_max_event = 100
    feed = http._sse_parser(nil, function() end)
    local fed = { feed("data: " .. string.rep("x", 60)), feed(string.rep("x", 60)) }
    http.sse_max_event = saved
    assert.same({ true, false }, fed)
  end)

  it("parses an event stream split at any place", function()
    local text = SSE_TEXT:format("x")
    local want = sse_events("x")
    local function parse(pieces)
      local got = {}
      local feed, finish = http._sse_parser(nil, function(ev) got[#got + 1] = ev end)
      for _, p in ipairs(pieces) do feed(p) end
      finish()
      return got
    end
    for i = 0, #text do
      assert.same(want, parse({ text:sub(1, i), text:sub(i + 1) }), "split at " .. i)
    end
    local bytes = {}
    for i = 1, #text do bytes[i] = text:sub(i, i) end
    assert.same(want, parse(bytes))
    local rnd = 12345
    for _ = 1, 200 do
      local pieces, pos = {}, 1
      while pos <= #text do
        rnd = (rnd * 1103515245 + 12345) % 2147483648
        local n = rnd % 9 + 1
        pieces[#pieces + 1] = text:sub(pos, pos + n - 1)
        pos = pos + n
      end
      assert.same(want, parse(pieces))
    end
  end)

  it("speaks https with the ssl options given; refuses a downgrade unless allowed", function()
    local certs = h.tls_certs()
    local tls_base = "https://127.0.0.1:" .. start_http(dir, certs).port
    local ddir = h.temp_dir()
    local d = call(http.download, tls_base .. "/chunked/data.bin",
      { directory = ddir, ssl = { ca_file = certs.ca } })
    assert.is_true(d[1], d[2])
    assert.is_true(h.read_file(ddir .. "/data.bin") == content, "downloaded file differs")
    d = call(http.get, tls_base .. "/hello.txt", nil, { ssl = { ca_file = certs:pem("selfsigned") } })
    assert.equal(2, d.n)
    assert.is_false(d[1])
    assert.matches("certificate", d[2])
    local hops = 0
    d = call(http.get, tls_base .. "/goto?" .. base .. "/json-echo", nil,
      { ssl = { ca_file = certs.ca }, on_redirect = function() hops = hops + 1 end })
    assert.same({ n = 2, false, "redirect from https to http refused: " .. base .. "/json-echo" }, d)
    assert.equal(1, hops)
    d = call(http.get, tls_base .. "/goto?" .. base .. "/json-echo", nil,
      { ssl = { ca_file = certs.ca }, allow_downgrade = true })
    assert.is_true(d[1], d[2])
    assert.equal("GET", d[3].method)
  end)

  it("runs a plugin written for core.http unchanged, polled or driven by editor threads", function()
    local plugin = [[
      local http = require "core.http"
      local results = {}
      http.get(BASE .. "/json-echo", { page = 2 }, {
        on_done = function(ok, err, data, info)
          results.get = { ok = ok, err = err, method = data.method, path = data.path, status = info.status }
        end,
      })
      http.post(BASE .. "/json-echo", "application/json", { name = "x" }, {
        on_done = function(ok, err, data) results.post = data.form end,
      })
      http.download(BASE .. "/hello.txt", {
        directory = DIR,
        on_done = function(ok, err, filename) results.download = { ok, err, filename } end,
      })
      return results
    ]]
    local function check(results, ddir)
      assert.same({ ok = true, method = "GET", path = "/json-echo?page=2", status = 200 }, results.get)
      assert.same({ name = "x" }, results.post)
      assert.same({ true, nil, ddir .. "/hello.txt" }, results.download)
      assert.equal("hello, world\n", h.read_file(ddir .. "/hello.txt"))
    end
    local saved_http, saved_core = package.loaded["core.http"], package.loaded.core
    local ok, err = pcall(function()
      package.loaded["core.http"] = require "sluice.http"
      -- polled, as a script would
      local ddir = h.temp_dir()
      local env = setmetatable({ BASE = base, DIR = ddir }, { __index = _G })
      local results = assert(load(plugin, "=plugin", "t", env))()
      run_all()
      check(results, ddir)
      -- in an editor: its threads run the callbacks, nobody polls
      local threads = {}
      package.loaded.core = {
        add_thread = function(fn) threads[#threads + 1] = coroutine.create(fn) end,
        error = function(fmt, ...) error(string.format(fmt, ...)) end,
      }
      ddir = h.temp_dir()
      env.DIR = ddir
      results = assert(load(plugin, "=plugin", "t", env))()
      assert.equal(1, #threads)
      local deadline = net.clock() + 30
      while #threads > 0 do
        assert(net.clock() < deadline, "editor thread still running after 30 s")
        for i = #threads, 1, -1 do
          local resumed, e = coroutine.resume(threads[i])
          assert(resumed, e)
          if coroutine.status(threads[i]) == "dead" then table.remove(threads, i) end
        end
        net.wait(10)
      end
      check(results, ddir)
    end)
    package.loaded["core.http"], package.loaded.core = saved_http, saved_core
    assert(ok, err)
  end)
end)
