-- data/http.lua against tests/tools/http_test_server.py (Python's http.server plus
-- chunked, close-delimited, redirect, echo and stalling handlers) on loopback: bodies
-- are checked byte for byte against a file of random content.
local net = require "net"
local http = require "http"
local h = require "helpers"

local start_http = h.start_http_server

-- Polls `req` to the end with net.wait between polls; returns the final state and
-- the (received, total) pairs seen while waiting.
local function poll_to_end(req, timeout_ms)
  local progress = {}
  local deadline = net.clock() + (timeout_ms or 30000) / 1000
  while true do
    local state, err, code = req:poll()
    if state ~= "waiting" then return state, err, code, progress end
    progress[#progress + 1] = { req.received, req.total }
    assert(net.clock() < deadline, "request still waiting at the deadline")
    net.wait(10)
  end
end

describe("http client", function()
  local dir, server, base, content

  setup(function()
    local p = assert(io.popen("mktemp -d 2>/dev/null || mktemp -d -t sluice"))
    dir = p:read("l")
    p:close()
    content = h.random_bytes(h.scaled(3 * h.MiB, 256 * h.KiB))
    local f = assert(io.open(dir .. "/data.bin", "wb"))
    f:write(content)
    f:close()
    f = assert(io.open(dir .. "/hello.txt", "wb"))
    f:write("hello, world\n")
    f:close()
    server = start_http(dir)
    base = "http://127.0.0.1:" .. server.port
  end)

  teardown(function()
    h.stop_all()
    if dir then os.execute("rm -rf " .. h.shell_quote(dir)) end
  end)

  it("downloads a file with Content-Length through the poll API, byte for byte", function()
    local req = assert(http.request{ url = base .. "/data.bin", poll_bytes = 64 * 1024 })
    assert.equal("waiting", req.state)
    local state, err, _, progress = poll_to_end(req)
    assert.equal("done", state, err)
    assert.equal(200, req.status)
    assert.equal("OK", req.reason)
    assert.equal(tostring(#content), req.headers["content-length"])
    assert.equal(#content, req.total)
    assert.equal(#content, req.received)
    assert.equal(#content, #req.body)
    assert.is_true(req.body == content, "body differs from the file")
    -- progress: received never decreases, and was seen strictly between 0 and total
    local last, between = 0, false
    for _, p in ipairs(progress) do
      assert.is_true(p[1] >= last)
      last = p[1]
      if p[2] then
        assert.equal(#content, p[2])
        if p[1] > 0 and p[1] < p[2] then between = true end
      end
    end
    assert.is_true(between, "no partial progress seen")
    -- polling a finished request repeats the result
    assert.equal("done", req:poll())
  end)

  it("decodes chunked transfer encoding (chunk extensions and trailers too)", function()
    local req = assert(http.request(base .. "/chunked/data.bin"))
    local state, err = poll_to_end(req)
    assert.equal("done", state, err)
    assert.equal("chunked", req.headers["transfer-encoding"])
    assert.is_nil(req.total)
    assert.equal(#content, req.received)
    assert.is_true(req.body == content, "body differs from the file")
  end)

  it("reads a body that ends when the server closes", function()
    local req = assert(http.request(base .. "/close/data.bin"))
    local state, err = poll_to_end(req)
    assert.equal("done", state, err)
    assert.is_nil(req.headers["content-length"])
    assert.is_nil(req.total)
    assert.is_true(req.body == content, "body differs from the file")
  end)

  it("fails when the connection ends before Content-Length bytes", function()
    local req = assert(http.request(base .. "/short/hello.txt"))
    local state, err, code = poll_to_end(req)
    assert.equal("failure", state)
    assert.equal("closed", code)
    assert.matches("closed after 13 of 1013 bytes", err, 1, true)
  end)

  it("follows up to 5 redirects, absolute, path-only and relative", function()
    local req = assert(http.request(base .. "/redirect/5/data.bin"))
    local state, err = poll_to_end(req)
    assert.equal("done", state, err)
    assert.equal(5, req.redirects)
    assert.equal(base .. "/data.bin", req.url)
    assert.equal(200, req.status)
    assert.is_true(req.body == content, "body differs from the file")
    assert.equal(base .. "/redirect/5/data.bin", req.history[1].url)
    assert.equal(302, req.history[1].status)

    req = assert(http.request(base .. "/relative/hello.txt"))
    state, err = poll_to_end(req)
    assert.equal("done", state, err)
    assert.equal(base .. "/hello.txt", req.url)
    assert.equal("hello, world\n", req.body)
  end)

  it("gives up after too many redirects, or returns the 3xx when told not to follow", function()
    local req = assert(http.request(base .. "/redirect/6/hello.txt"))
    local state, err, code = poll_to_end(req)
    assert.equal("failure", state)
    assert.equal("limit", code)
    assert.matches("too many redirects", err, 1, true)

    req = assert(http.request{ url = base .. "/redirect/2/hello.txt", max_redirects = 0 })
    state, err = poll_to_end(req)
    assert.equal("done", state, err)
    assert.equal(302, req.status)
    assert.matches("/redirect/1/hello.txt$", req.headers.location)
  end)

  it("returns error statuses as responses", function()
    local req = assert(http.request(base .. "/status/404"))
    local state, err = poll_to_end(req)
    assert.equal("done", state, err)
    assert.equal(404, req.status)
    assert.equal("status 404\n", req.body)
  end)

  it("sends the method, headers and body; 303 after a POST continues with GET", function()
    local req = assert(http.request{ url = base .. "/echo?x=1", method = "POST", body = "a=1&b=2",
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["User-Agent"] = "spec/1",
        ["X-Test"] = 42 } })
    local state, err = poll_to_end(req)
    assert.equal("done", state, err)
    local head, body = req.body:match("^(.-\n)\n(.*)$")
    assert.equal("a=1&b=2", body)
    assert.matches("^POST /echo%?x=1\n", head)
    assert.matches("\nhost: 127.0.0.1:" .. server.port .. "\n", head, 1, true)
    assert.matches("\nuser-agent: spec/1\n", head, 1, true)
    assert.matches("\ncontent-length: 7\n", head, 1, true)
    assert.matches("\nx-test: 42\n", head, 1, true)
    assert.matches("\nconnection: close\n", head, 1, true)

    req = assert(http.request{ url = base .. "/post-then-get", method = "POST", body = "data",
      headers = { ["Content-Type"] = "text/plain" } })
    state, err = poll_to_end(req)
    assert.equal("done", state, err)
    assert.equal(1, req.redirects)
    assert.matches("^GET /echo\n", req.body)
    assert.not_matches("content%-length", req.body)
    assert.not_matches("content%-type", req.body)
  end)

  it("makes HEAD requests without reading a body", function()
    local req = assert(http.request{ url = base .. "/data.bin", method = "HEAD" })
    local state, err = poll_to_end(req)
    assert.equal("done", state, err)
    assert.equal(200, req.status)
    assert.equal(tostring(#content), req.headers["content-length"])
    assert.equal("", req.body)
  end)

  it("enforces max_size, by Content-Length or while reading", function()
    local req = assert(http.request{ url = base .. "/data.bin", max_size = 1000 })
    local state, err, code = poll_to_end(req)
    assert.equal("failure", state)
    assert.equal("limit", code)
    assert.matches("too large", err, 1, true)

    req = assert(http.request{ url = base .. "/close/data.bin", max_size = 1000 })
    state, err, code = poll_to_end(req)
    assert.equal("failure", state)
    assert.equal("limit", code)
    assert.matches("max_size", err, 1, true)
  end)

  it("keeps credentials within their origin across redirects", function()
    local other = start_http(dir)
    local secret = { Authorization = "Bearer s3cret", Cookie = "id=1", ["Proxy-Authorization"] = "Basic x",
      ["X-Keep"] = "yes" }
    -- same origin: everything goes along
    local req = assert(http.request{ url = base .. "/goto?" .. base .. "/echo", headers = secret })
    local state, err = poll_to_end(req)
    assert.equal("done", state, err)
    assert.matches("\nauthorization: Bearer s3cret\n", req.body, 1, true)
    assert.matches("\ncookie: id=1\n", req.body, 1, true)
    -- another origin (another port): no Authorization, Cookie, Proxy-Authorization or Host
    local to = "http://127.0.0.1:" .. other.port .. "/echo"
    req = assert(http.request{ url = base .. "/goto?" .. to, headers = secret })
    state, err = poll_to_end(req)
    assert.equal("done", state, err)
    assert.equal(to, req.url)
    assert.not_matches("authorization", req.body)
    assert.not_matches("cookie", req.body)
    assert.matches("\nx-keep: yes\n", req.body, 1, true)
    -- a caller's Host header stays with the first origin too
    req = assert(http.request{ url = base .. "/goto?" .. to, headers = { Host = "pinned.test" } })
    state, err = poll_to_end(req)
    assert.equal("done", state, err)
    assert.not_matches("pinned", req.body)
    assert.matches("\nhost: 127.0.0.1:" .. other.port .. "\n", req.body, 1, true)
    other:stop()
  end)

  -- Writes `bytes` as a whole response the server sends verbatim; returns its URL.
  local function raw_response(name, bytes)
    local f = assert(io.open(dir .. "/" .. name, "wb"))
    f:write(bytes)
    f:close()
    return base .. "/raw/" .. name
  end

  it("refuses malformed chunk sizes, header names with NUL and endless trailers", function()
    local cases = {
      { "chunk5zzz", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5zzz\r\nhello\r\n0\r\n\r\n",
        "bad chunk size line" },
      { "nulname", "HTTP/1.1 200 OK\r\nX-A\0b: 1\r\nContent-Length: 2\r\n\r\nok", "bad header line" },
      { "nulvalue", "HTTP/1.1 200 OK\r\nX-A: 1\0\r\nContent-Length: 2\r\n\r\nok", "bad header line" },
      { "spacename", "HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 2\r\n\r\nok", "bad header line" },
      { "trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
        .. string.rep("X-Trailer: 0123456789abcdef\r\n", 8192) .. "\r\n", "trailers too large" },
    }
    for _, c in ipairs(cases) do
      local req = assert(http.request(raw_response(c[1], c[2])))
      local state, err, code = poll_to_end(req)
      assert.equal("failure", state, c[1])
      assert.equal("protocol", code, c[1] .. ": " .. tostring(err))
      assert.matches(c[3], err, 1, true)
    end
    -- chunk extensions (with whitespace before them) are still fine
    local req = assert(http.request(raw_response("chunkext",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 ;name=v\r\nhello\r\n0\r\n\r\n")))
    local state, err = poll_to_end(req)
    assert.equal("done", state, err)
    assert.equal("hello", req.body)
  end)

  it("caps bodies at 64 MiB by default", function()
    local req = assert(http.request(raw_response("huge",
      "HTTP/1.1 200 OK\r\nContent-Length: 68719476736\r\n\r\n")))
    local state, err, code = poll_to_end(req)
    assert.equal("failure", state)
    assert.equal("limit", code)
    assert.matches("max_size 67108864", err, 1, true)
  end)

  it("times out a stalled response", function()
    local t0 = net.clock()
    local req = assert(http.request{ url = base .. "/stall", timeout = 300 })
    local state, err, code = poll_to_end(req)
    assert.equal("failure", state)
    assert.equal("timeout", code)
    assert.matches("timed out after 300 ms", err, 1, true)
    assert.is_true(req.received == 10, "received " .. req.received)
    assert.is_true(net.clock() - t0 < 5)
  end)

  it("can be cancelled", function()
    local req = assert(http.request{ url = base .. "/stall" })
    assert(h.wait_for(function() req:poll(); return req.status end, 10000))
    req:cancel()
    assert.equal("failure", req.state)
    assert.equal("cancelled", req.code)
    assert.equal("failure", (req:poll()))
  end)

  it("reports connection failures with net's message and code", function()
    local req = assert(http.request("http://127.0.0.1:9/"))
    local state, err, code = poll_to_end(req)
    assert.equal("failure", state)
    assert.equal("refused", code)
    assert.matches("127.0.0.1:9", err, 1, true)
  end)

  it("rejects URLs it cannot use, and wrong argument types", function()
    local req, err = http.request("ftp://example.org/")
    assert.is_nil(req)
    assert.matches("unsupported URL scheme", err, 1, true)
    req, err = http.request("example.org/x")
    assert.is_nil(req)
    assert.matches("not an absolute", err, 1, true)
    req, err = http.request("http://127.0.0.1:99999/")
    assert.is_nil(req)
    assert.matches("bad port", err, 1, true)
    h.assert_raises("bad argument #1 to 'request'", function() http.request(42) end)
    h.assert_raises("method", function() http.request{ url = base, method = "get me" } end)
    h.assert_raises("header value", function()
      http.request{ url = base, headers = { X = "a\r\nInjected: 1" } }
    end)
    h.assert_raises("timeout", function() http.request{ url = base, timeout = 1.5 } end)
  end)

  it("parses URLs: default ports, IPv6 literals, queries, fragments", function()
    local u = assert(http.parse_url("HTTPS://[::1]:8443?q=1#frag"))
    assert.same({ scheme = "https", host = "::1", port = 8443, path = "/?q=1", authority = "[::1]:8443" }, u)
    u = assert(http.parse_url("http://user:pw@example.org/a%20b"))
    assert.same({ scheme = "http", host = "example.org", port = 80, path = "/a%20b", authority = "example.org" }, u)
    u = assert(http.parse_url("https://example.org:443"))
    assert.equal("example.org", u.authority)
    assert.equal("/", u.path)
  end)

  it("fetches over IPv6", function()
    local server6 = start_http(dir, { ipv6 = true })
    local body, req = http.fetch("http://[::1]:" .. server6.port .. "/hello.txt")
    assert.equal("hello, world\n", body, req)
    server6:stop()
  end)

  it("fetch yields between polls inside a coroutine", function()
    local co = coroutine.create(function()
      return http.fetch(base .. "/chunked/data.bin", { interval = 0.005 })
    end)
    local yields, deadline = 0, net.clock() + 30
    local ok, a, b
    while true do
      ok, a, b = coroutine.resume(co)
      assert.is_true(ok, a)
      if coroutine.status(co) == "dead" then break end
      assert.equal(0.005, a)   -- the yield value: seconds until the next resume
      yields = yields + 1
      assert.is_true(net.clock() < deadline)
      net.wait(5)
    end
    assert.is_true(yields > 0)
    assert.is_true(a == content, "body differs from the file")
    assert.equal(200, b.status)
  end)

  describe("over TLS", function()
    local tls_server, tls_base, certs

    setup(function()
      certs = h.tls_certs()
      tls_server = start_http(dir, { cert = certs:pem("good"), key = certs:key("good") })
      tls_base = "https://127.0.0.1:" .. tls_server.port
    end)

    teardown(function()
      if tls_server then tls_server:stop() end
    end)

    it("downloads through https with the ssl options given, byte for byte", function()
      local req = assert(http.request{ url = tls_base .. "/data.bin", ssl = { ca_file = certs.ca } })
      local state, err = poll_to_end(req)
      assert.equal("done", state, err)
      assert.is_true(req.body == content, "body differs from the file")
      req = assert(http.request{ url = tls_base .. "/chunked/data.bin", ssl = { ca_file = certs.ca } })
      state, err = poll_to_end(req)
      assert.equal("done", state, err)
      assert.is_true(req.body == content, "body differs from the file")
    end)

    it("verifies the certificate by default", function()
      local req = assert(http.request{ url = tls_base .. "/hello.txt",
        ssl = { ca_file = certs:pem("selfsigned") } })
      local state, _, code = poll_to_end(req)
      assert.equal("failure", state)
      assert.equal("tls-verify", code)
    end)

    it("refuses a redirect from https to http unless allow_downgrade is set", function()
      local url = tls_base .. "/goto?" .. base .. "/echo"
      local req = assert(http.request{ url = url, ssl = { ca_file = certs.ca },
        headers = { Authorization = "Bearer s3cret" } })
      local state, err, code = poll_to_end(req)
      assert.equal("failure", state)
      assert.equal("protocol", code)
      assert.matches("from https to http refused", err, 1, true)
      req = assert(http.request{ url = url, ssl = { ca_file = certs.ca }, allow_downgrade = true,
        headers = { Authorization = "Bearer s3cret" } })
      state, err = poll_to_end(req)
      assert.equal("done", state, err)
      assert.matches("^GET /echo\n", req.body)
      assert.not_matches("authorization", req.body)
    end)

    it("keeps the ssl options across a redirect to https", function()
      local req = assert(http.request{ url = tls_base .. "/redirect/2/hello.txt", ssl = { ca_file = certs.ca } })
      local state, err = poll_to_end(req)
      assert.equal("done", state, err)
      assert.equal(2, req.redirects)
      assert.equal("hello, world\n", req.body)
    end)
  end)
end)
