-- net.http_request: the HTTP engine on the I/O thread, against
-- tests/tools/http_test_server.py (Python's http.server plus chunked, close-delimited,
-- redirect, compressed, interim and stalling handlers) on loopback, plain and TLS.
-- Bodies are checked byte for byte against files of random content.
local net = require "net"
local h = require "helpers"

local start_http = h.start_http_server

-- Reads a request to its end as a frame loop would: body, status, message, code.
local function fetch(opts, timeout_ms)
  local req = assert(net.http_request(opts))
  local parts = {}
  local deadline = net.clock() + (timeout_ms or 30000) / 1000
  while true do
    local data, msg, code = req:read()
    if data == nil then
      local status = req:get_status()
      return table.concat(parts), status, msg, code, req
    end
    if data == "" then
      assert(net.clock() < deadline, "request still waiting at the deadline")
      net.wait(10)
    else
      parts[#parts + 1] = data
    end
  end
end

describe("net.http_request", function()
  local dir, server, base, content

  setup(function()
    dir = h.temp_dir()
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

  teardown(function() h.stop_all() end)

  -- Writes `bytes` as a whole response the server sends verbatim; returns its URL.
  local function raw_response(name, bytes)
    h.write_file(dir .. "/" .. name, bytes)
    return base .. "/raw/" .. name
  end

  it("downloads a Content-Length body byte for byte, with its head and progress", function()
    local body, status, msg, _, req = fetch{ url = base .. "/data.bin" }
    assert.equal("success", status, msg)
    assert.is_true(body == content, "body differs from the file")
    local code, headers, reason, url = req:get_response()
    assert.equal(200, code)
    assert.equal("OK", reason)
    assert.equal(base .. "/data.bin", url)
    assert.equal(tostring(#content), headers["content-length"])
    local received, total = req:get_progress()
    assert.equal(#content, received)
    assert.equal(#content, total)
    req:close()
  end)

  it("reads with a large max allocating only what has arrived", function()
    if h.mode == "asan" or h.mode == "tsan" or h.mode == "windows" then
      return pending("an address-space limit is what shows it, and the sanitizers and wine need more")
    end
    -- a read(2^30) that reserved its max would fail for memory under this limit
    local ok, out, err = h.run_lua_child([[
      local net = require "net"
      local req = assert(net.http_request{ url = ... })
      local parts = {}
      repeat
        local s, msg = req:read(1 << 30)
        assert(s or not msg, msg)
        parts[#parts + 1] = s
        if s == "" then net.wait(10) end
      until s == nil
      io.write(#table.concat(parts))
    ]], { ULIMIT_AS_KB = 700 * 1024 }, base .. "/data.bin")
    assert.is_true(ok, err)
    assert.equal(tostring(#content), out)
  end)

  it("decodes chunked bodies (extensions, trailers) and bodies that end at close", function()
    local body, status, msg, _, req = fetch{ url = base .. "/chunked/data.bin" }
    assert.equal("success", status, msg)
    assert.is_true(body == content, "chunked body differs from the file")
    local received, total = req:get_progress()
    assert.equal(#content, received)
    assert.is_nil(total)
    body, status, msg = fetch{ url = base .. "/close/data.bin" }
    assert.equal("success", status, msg)
    assert.is_true(body == content, "close-delimited body differs from the file")
  end)

  it("says where a body ended early", function()
    local _, status, msg, code = fetch{ url = base .. "/short/hello.txt" }
    assert.equal("failure", status)
    assert.equal("closed", code)
    assert.matches("http 127.0.0.1:" .. server.port .. " GET /short/hello.txt: body ended after 13 of 1013 bytes",
      msg, 1, true)
    -- a signed URL's long query neither cuts the reason off nor goes into the message
    local sig = "X-Amz-Credential=AKIDEXAMPLE&X-Amz-Signature=" .. string.rep("5", 300)
    _, status, msg, code = fetch{ url = base .. "/short/hello.txt?" .. sig }
    assert.equal("closed", code)
    assert.equal("http 127.0.0.1:" .. server.port .. " GET /short/hello.txt?...: body ended after 13 of 1013 bytes", msg)
    _, status, msg, code = fetch{ url = base .. "/short/" .. string.rep("d", 120) .. "/../hello.txt" }
    assert.equal("closed", code, msg)
    assert.matches("GET /short/dddd+%.%.%.: body ended after 13 of 1013 bytes$", msg)
  end)

  it("skips interim responses and reads no body after HEAD, 204 or 304", function()
    local body, status, msg, _, req = fetch{ url = base .. "/interim/hello.txt" }
    assert.equal("success", status, msg)
    assert.equal("hello, world\n", body)
    assert.equal(200, (req:get_response()))
    body, status, msg, _, req = fetch{ url = base .. "/data.bin", method = "HEAD" }
    assert.equal("success", status, msg)
    assert.equal("", body)
    local _, headers = req:get_response()
    assert.equal(tostring(#content), headers["content-length"])
    body, status = fetch{ url = base .. "/status/204" }
    assert.equal("success", status)
    assert.equal("", body)
    body, status, msg, _, req = fetch{ url = base .. "/status/304" }   -- the server sends a body anyway
    assert.equal("success", status, msg)
    assert.equal("", body)
    assert.equal(304, (req:get_response()))
  end)

  it("ends a Content-Length: 0 body at once, on a connection the server keeps open", function()
    for _, url in ipairs{ base .. "/empty", base .. "/empty?gzip" } do
      local body, status, msg, _, req = fetch{ url = url, timeout = 10000 }
      assert.equal("success", status, msg)
      assert.equal("", body)
      assert.equal(200, (req:get_response()))
      assert.equal(0, (req:get_progress()))
    end
  end)

  it("goes on sending the body to a server that answers before it has read it", function()
    local up = h.random_bytes(16 * h.MiB)   -- past what socket buffers hold
    local body, status, msg = fetch{ url = base .. "/stream-echo", method = "POST", body = up, timeout = 60000 }
    assert.equal("success", status, msg)
    assert.equal(#up, #body)
    assert.is_true(body == up, "the echo differs from the body sent")
  end)

  it("sends the whole body after a 200 that came first, and fails if the server closes before it took it", function()
    local up = h.random_bytes(8 * h.MiB)
    local src = dir .. "/upload.bin"
    h.write_file(src, up)
    for _, body in ipairs{ up, { file = src } } do
      os.remove(dir .. "/answer-early.len")
      local got, status, msg = fetch{ url = base .. "/answer-early?read", method = "POST", body = body }
      assert.equal("success", status, msg)
      assert.equal("ok\n", got)
      assert.is_true(h.wait_for(function() return h.read_file(dir .. "/answer-early.len") == tostring(#up) end, 10000),
                     "the server did not have the whole body")
      local _, status2, msg2, code2 = fetch{ url = base .. "/answer-early?close", method = "POST", body = body }
      assert.equal("failure", status2, "a truncated upload passed for a whole one")
      assert.matches("the server answered 200 before it took the whole request body", msg2, 1, true)
      assert.is_true(code2 == "closed" or code2 == "reset", code2)
    end
  end)

  it("gives the answer of a server that refuses a body unread and resets the connection", function()
    -- the reset fails our send while the 413 waits in the kernel, read first
    for _ = 1, 5 do
      local body, status, msg, _, req = fetch{ url = base .. "/refuse-unread", method = "POST",
                                               body = string.rep("x", 8 * h.MiB) }
      assert.equal("success", status, msg)
      assert.equal(413, (req:get_response()))
      assert.equal("too big\n", body)
      req:close()
    end
  end)

  it("never reuses a connection that switched protocols", function()
    local _, status, msg, _, req = fetch{ url = base .. "/upgrade", headers = { Upgrade = "other", Connection = "Upgrade" } }
    assert.equal("success", status, msg)
    assert.equal(101, (req:get_response()))
    local body
    body, status, msg = fetch{ url = base .. "/hello.txt", timeout = 10000 }
    assert.equal("success", status, msg)
    assert.equal("hello, world\n", body)
  end)

  it("fails a 101 to a request that offered no Upgrade (RFC 9110 15.2.2)", function()
    local _, status, msg, code = fetch{ url = base .. "/upgrade" }
    assert.equal("failure", status)
    assert.equal("protocol", code)
    assert.matches("101 Switching Protocols to a request that offered no Upgrade", msg, 1, true)
  end)

  it("sends header values with bytes past ASCII (obs-text) and tabs", function()
    local body, status, msg = fetch{ url = base .. "/echo", headers = { ["X-Name"] = "caf\xc3\xa9", ["X-Tab"] = "a\tb" } }
    assert.equal("success", status, msg)
    assert.matches("\nx%-name: caf[^\n]+\n", body)
    assert.matches("\nx-tab: a\tb\n", body, 1, true)
  end)

  it("sends the method, headers and body it is given", function()
    local body, status, msg = fetch{ url = base .. "/echo?x=1", method = "POST", body = "a=1&b=2",
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["X-Test"] = 42 } }
    assert.equal("success", status, msg)
    local head, sent = body:match("^(.-\n)\n(.*)$")
    assert.equal("a=1&b=2", sent)
    assert.matches("^POST /echo%?x=1\n", head)
    assert.matches("\nhost: 127.0.0.1:" .. server.port .. "\n", head, 1, true)
    assert.matches("\ncontent-length: 7\n", head, 1, true)
    assert.matches("\nx-test: 42\n", head, 1, true)
    assert.matches("\naccept-encoding: gzip, deflate\n", head, 1, true)
    assert.matches("\nuser-agent: sluice/", head, 1, true)
  end)

  it("keeps the body's framing its own: no Transfer-Encoding, a Content-Length only as the body's length", function()
    local post = { url = base .. "/echo", method = "POST", body = "hello" }
    post.headers = { ["Transfer-Encoding"] = "chunked" }
    h.assert_raises("header Transfer-Encoding is not taken", function() net.http_request(post) end)
    post.headers = { ["transfer-encoding"] = "identity" }
    h.assert_raises("header transfer-encoding is not taken", function() net.http_request(post) end)
    post.headers = { ["proxy-authorization"] = "Basic eDp5" }   -- through a tunnel it would reach the origin
    h.assert_raises("header proxy-authorization is not taken: give the proxy's credentials in its URL",
                    function() net.http_request(post) end)
    post.headers = { ["Content-Length"] = "1" }   -- the rest would be read as a second request
    h.assert_raises("header Content-Length: 1 is not the body's length (5)", function() net.http_request(post) end)
    post.headers = { ["Content-Length"] = 5 }
    local body, status, msg = fetch(post)
    assert.equal("success", status, msg)
    local _, count = body:gsub("\ncontent%-length: 5\n", "")
    assert.equal(1, count, body)
    assert.matches("\n\nhello$", body)
    h.assert_raises("header Content-Length: 3 is not the body's length (0)", function()
      net.http_request{ url = base .. "/echo", headers = { ["Content-Length"] = "3" } }
    end)
    -- a body file's size is known later: the request fails then, sending nothing
    local _, code
    _, status, msg, code = fetch{ url = base .. "/echo", method = "PUT", body = { file = dir .. "/hello.txt" },
      headers = { ["Content-Length"] = "1" } }
    assert.equal("failure", status)
    assert.equal("invalid", code, msg)
    assert.matches("Content-Length 1 is not the size of body_file (13 bytes)", msg, 1, true)
    body, status, msg = fetch{ url = base .. "/echo", method = "PUT", body = { file = dir .. "/hello.txt" },
      headers = { ["Content-Length"] = "13" } }
    assert.equal("success", status, msg)
    assert.matches("\n\nhello, world\n$", body)
  end)

  it("streams a request body from a file, with upload progress, again after a 307", function()
    local body, status, msg, _, req = fetch{ url = base .. "/echo", method = "PUT", body = { file = dir .. "/data.bin" } }
    assert.equal("success", status, msg)
    local head, sent = body:match("^(.-\n)\n(.*)$")
    assert.matches("\ncontent-length: " .. #content .. "\n", head, 1, true)
    assert.is_true(sent == content, "the server got other bytes than the file's")
    local _, _, up, up_total = req:get_progress()
    assert.equal(#content, up)
    assert.equal(#content, up_total)
    body, status, msg = fetch{ url = base .. "/goto307?/echo", method = "POST", body = { file = dir .. "/hello.txt" } }
    assert.equal("success", status, msg)
    assert.matches("\n\nhello, world\n$", body)
    _, status, msg = fetch{ url = base .. "/echo", method = "POST", body = { file = dir .. "/missing" } }
    assert.equal("failure", status)
    assert.matches("open " .. dir .. "/missing: ", msg, 1, true)
    _, status, msg = fetch{ url = base .. "/echo", method = "POST", body = { file = dir } }
    assert.equal("failure", status)
    assert.matches("Is a directory", msg, 1, true)
    local code
    _, status, msg, code = fetch{ url = base .. "/echo", method = "POST", body = { file = "/dev/null" } }
    assert.same({ "failure", "invalid" }, { status, code })
    assert.matches("open /dev/null: not a regular file", msg, 1, true)
    h.assert_raises("body", function() net.http_request{ url = base, body = { path = "x" } } end)
  end)

  it("follows redirects: absolute, path-only, relative; 303 turns a POST into a GET, 307 keeps it", function()
    local body, status, msg, _, req = fetch{ url = base .. "/redirect/5/data.bin" }
    assert.equal("success", status, msg)
    assert.is_true(body == content, "body differs from the file")
    local _, _, _, url = req:get_response()
    assert.equal(base .. "/data.bin", url)
    for i = 1, 5 do   -- every hop, in order, with the URL it answered
      local st, headers, _, hop_url = req:get_redirect(i)
      assert.equal(i == 5 and 301 or 302, st)
      assert.equal(base .. "/redirect/" .. (6 - i) .. "/data.bin", hop_url)
      assert.is_string(headers.location)
    end
    assert.is_nil(req:get_redirect(6))
    assert.is_nil(req:get_redirect(0))
    body, status, msg = fetch{ url = base .. "/relative/hello.txt" }
    assert.equal("success", status, msg)
    assert.equal("hello, world\n", body)
    body, status, msg, _, req = fetch{ url = base .. "/post-then-get", method = "POST", body = "data",
      headers = { ["Content-Type"] = "text/plain" } }
    assert.equal("success", status, msg)
    assert.matches("^GET /echo\n", body)
    assert.not_matches("content%-type", body)
    assert.same({ 0, 0 }, { select(3, req:get_progress()) })   -- the body dropped is not to be sent
    body, status, msg = fetch{ url = base .. "/goto307?/echo", method = "POST", body = "kept" }
    assert.equal("success", status, msg)
    assert.matches("^POST /echo\n", body)
    assert.matches("\n\nkept$", body)
  end)

  it("stops at max_redirects, or returns the 3xx itself with max_redirects = 0", function()
    local _, status, msg, code, req = fetch{ url = base .. "/redirect/6/hello.txt" }
    assert.equal("failure", status)
    assert.equal("limit", code)
    assert.matches("more than 5 redirects", msg, 1, true)
    assert.equal(301, req:get_redirect(6))   -- the one refused is there too
    assert.is_nil(req:get_redirect(7))
    assert.is_nil(req:get_response())
    local body
    body, status, msg, _, req = fetch{ url = base .. "/redirect/1/hello.txt", max_redirects = 0 }
    assert.equal("success", status, msg)
    local st, headers = req:get_response()
    assert.equal(301, st)
    assert.equal("/hello.txt", headers.location)
    assert.equal("moved\n", body)
  end)

  it("keeps credentials within their origin across redirects", function()
    local other = start_http(dir)
    local secret = { Authorization = "Bearer s3cret", Cookie = "id=1", ["X-Keep"] = "yes" }
    local body, status, msg = fetch{ url = base .. "/goto?" .. base .. "/echo", headers = secret }
    assert.equal("success", status, msg)
    assert.matches("\nauthorization: Bearer s3cret\n", body, 1, true)
    local to = "http://127.0.0.1:" .. other.port .. "/echo"
    body, status, msg = fetch{ url = base .. "/goto?" .. to, headers = secret }
    assert.equal("success", status, msg)
    assert.not_matches("authorization", body)
    assert.not_matches("cookie", body)
    assert.matches("\nx-keep: yes\n", body, 1, true)
    -- another host on the same port is another origin too; the caller's Host stays behind
    local hosted = { Authorization = "Bearer s3cret", Cookie = "id=1", Host = "a.test" }
    body, status, msg = fetch{ url = base .. "/goto?http://sluice-v4.test:" .. server.port .. "/echo",
      headers = hosted }
    assert.equal("success", status, msg)
    assert.not_matches("authorization", body)
    assert.not_matches("cookie", body)
    assert.matches("\nhost: sluice-v4.test:" .. server.port .. "\n", body, 1, true)
    -- credentials in a Location are never sent, nor shown as where it went
    local req
    body, status, msg, _, req = fetch{ url = base .. "/goto?http://u:pw@127.0.0.1:" .. other.port .. "/echo" }
    assert.equal("success", status, msg)
    assert.not_matches("authorization", body)
    assert.equal("http://127.0.0.1:" .. other.port .. "/echo", select(4, req:get_response()))
    other:stop()
  end)

  it("says limit, not invalid, when memory runs out making a request", function()
    for after = 0, 8 do
      net._fail_allocs(after, 1)
      local req, msg, code = net.http_request{ url = base .. "/echo", headers = { A = "b" }, body = "x" }
      net._fail_allocs(0, 0)
      if req then req:close() end
      assert.is_true(req ~= nil or code == "limit", after .. ": " .. tostring(msg) .. " " .. tostring(code))
    end
  end)

  it("ends with a limit failure when memory runs out anywhere in a redirect to another origin", function()
    local other = start_http(dir)
    -- a child: with the old engine, one of these allocations failing brought the process down
    local code = [[
      local net = require "net"
      local from, to = ...
      for after = 0, 60 do
        net._fail_allocs(after, 1)
        local req, msg, code = net.http_request{ url = from .. "/goto?" .. to, keepalive = false,
          ssl = { server_name = "example.test" } }   -- renamed for the new origin: an allocation
        if req then
          local status = req:wait(10000)
          net._fail_allocs(0, 0)
          net.wait(20)
          local again
          again, msg, code = req:get_status()
          assert(again == status, "the request ended " .. tostring(status) .. ", then " .. tostring(again))
          if status == "success" then assert(req:read(), "no body") end
          req:close()
        end
        net._fail_allocs(0, 0)
        print(after, req and (code or "success") or code, msg)
      end
    ]]
    local ok, out, err = h.run_lua_child(code, nil, base, "http://127.0.0.1:" .. other.port .. "/echo")
    assert.is_true(ok, err .. out)
    local n = 0
    for after, result, msg in out:gmatch("(%d+)\t(%S+)\t?([^\n]*)") do
      n = n + 1
      assert.is_true(result == "success" or result == "limit", after .. ": " .. result .. " " .. msg)
    end
    assert.equal(61, n, out)
    other:stop()
  end)

  it("follows a Location with raw spaces, UTF-8 and other bytes a URL cannot hold, escaped as browsers do", function()
    local body, status, msg, _, req = fetch{ url = base .. "/goto-raw?/echo%3Fa%20b=%C3%A9" }
    assert.equal("success", status, msg)
    assert.matches("^GET /echo%?a%%20b=%%C3%%A9\n", body)
    assert.equal(base .. "/echo?a%20b=%C3%A9", select(4, req:get_response()))
    -- the other bytes a URL cannot hold as they are; an escape that is one stays
    local raw = "/echo?q={a}|\"b\"^<c>`d\\e%zz%41"
    local enc = raw:gsub("[^%w/]", function(c) return string.format("%%%02X", c:byte()) end)
    body, status, msg, _, req = fetch{ url = base .. "/goto-raw?" .. enc }
    assert.equal("success", status, msg)
    assert.equal("GET /echo?q=%7Ba%7D%7C%22b%22%5E%3Cc%3E%60d%5Ce%25zz%41\n", body:match("^[^\n]*\n"))
    -- and brackets, which only an IPv6 host holds as they are
    body, status, msg = fetch{ url = base .. "/goto-raw?" .. ("/echo?ids[]=1"):gsub("[^%w/]", function(c)
      return string.format("%%%02X", c:byte())
    end) }
    assert.equal("success", status, msg)
    assert.equal("GET /echo?ids%5B%5D=1\n", body:match("^[^\n]*\n"))
  end)

  it("sends a URL it is given as browsers do: what a URL cannot hold as it is, escaped", function()
    local body, status, msg, _, req = fetch{ url = base .. "/echo?ids[]=1&q={\"a\"}|é b%zz%41#frag" }
    assert.equal("success", status, msg)
    assert.equal("GET /echo?ids%5B%5D=1&q=%7B%22a%22%7D%7C%C3%A9%20b%25zz%41\n", body:match("^[^\n]*\n"))
    assert.equal(base .. "/echo?ids%5B%5D=1&q=%7B%22a%22%7D%7C%C3%A9%20b%25zz%41", select(4, req:get_response()))
    local bad, bmsg, code = net.http_request{ url = "http://exa mple.test/" }   -- a host is never escaped
    assert.is_nil(bad)
    assert.equal("invalid", code)
    assert.matches("a space at offset 10", bmsg, 1, true)
  end)

  it("decodes gzip and deflate (zlib-wrapped or raw), or leaves them with decompress = false", function()
    for _, enc in ipairs{ "gzip", "deflate", "rawdeflate" } do
      local body, status, msg, _, req = fetch{ url = base .. "/" .. enc .. "/data.bin" }
      assert.equal("success", status, enc .. ": " .. tostring(msg))
      assert.is_true(body == content, enc .. ": decoded body differs from the file")
      local received, total = req:get_progress()
      assert.equal(total, received)
      assert.is_true(received < #content + 1024)
    end
    local body, status = fetch{ url = base .. "/gzip/hello.txt", decompress = false }
    assert.equal("success", status)
    assert.equal("\31\139", body:sub(1, 2))   -- the gzip magic: as sent
    -- two codings (over two header lines): never one layer off passed for the body
    local msg, code
    body, status, msg, code = fetch{ url = base .. "/gzip2/hello.txt" }
    assert.equal("failure", status)
    assert.equal("protocol", code, msg)
    assert.matches("2 Content-Encoding codings stacked", msg, 1, true)
    body, status = fetch{ url = base .. "/gzip2/hello.txt", decompress = false }
    assert.equal("success", status)
    assert.equal("\31\139", body:sub(1, 2))
  end)

  it("fails with limit past max_size, and stops a decompression bomb", function()
    local _, status, msg, code = fetch{ url = base .. "/data.bin", max_size = 1000 }
    assert.equal("failure", status)
    assert.equal("limit", code)
    assert.matches("over max_size 1000", msg, 1, true)
    _, status, msg, code = fetch{ url = base .. "/chunked/data.bin", max_size = 1000 }
    assert.equal("failure", status)
    assert.equal("limit", code)
    local t0 = net.clock()
    _, status, msg, code = fetch({ url = base .. "/bomb", max_size = 16 * h.MiB }, 60000)
    assert.equal("failure", status)
    assert.equal("limit", code, msg)
    print(string.format("# bomb stopped after %.2f s: %s", net.clock() - t0, msg))
  end)

  it("refuses malformed responses with code protocol", function()
    local cases = {
      { "badstatus", "HTTP/1.1 2xx OK\r\nContent-Length: 0\r\n\r\n" },
      { "nulname", "HTTP/1.1 200 OK\r\nX-A\0b: 1\r\nContent-Length: 2\r\n\r\nok" },
      { "badchunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5zzz\r\nhello\r\n0\r\n\r\n" },
      { "twolengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok" },
      { "hugehead", "HTTP/1.1 200 OK\r\n" .. string.rep("X-Pad: " .. string.rep("p", 1000) .. "\r\n", 80) .. "\r\n" },
      { "badgzip", "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\n0123456789" },
    }
    for _, c in ipairs(cases) do
      local _, status, msg, code = fetch{ url = raw_response(c[1], c[2]) }
      assert.equal("failure", status, c[1])
      assert.equal("protocol", code, c[1] .. ": " .. tostring(msg))
      assert.matches("/raw/" .. c[1] .. ": ", msg, 1, true)
    end
  end)

  it("times out as a whole, can be cancelled, and frees everything when closed", function()
    local _, status, msg, code = fetch{ url = base .. "/stall", timeout = 300 }
    assert.equal("failure", status)
    assert.equal("timeout", code)
    assert.matches("timed out after 300 ms (timeout)", msg, 1, true)
    local req = assert(net.http_request{ url = base .. "/stall" })
    assert(h.wait_for(function() return req:get_response() end, 10000))
    req:cancel()
    assert.equal("failure", (req:wait(5000)))
    local _, m, c = req:get_status()
    assert.equal("cancelled", c, m)
    req:close()
    req = assert(net.http_request{ url = base .. "/stall" })
    assert.truthy(tostring(req):find(base .. "/stall", 1, true), tostring(req))   -- before a response too
    req:cancel()   -- before its first step: the failure still names the origin
    assert.equal("failure", (req:wait(5000)))
    _, m, c = req:get_status()
    assert.equal("cancelled", c, m)
    assert.equal(("http 127.0.0.1:%d GET /stall: cancelled"):format(server.port), m)
    req:close()
    for _ = 1, 20 do net.http_request{ url = base .. "/stall" } end   -- dropped while running
    collectgarbage()
    collectgarbage()
    assert(h.wait_for(function() collectgarbage() return net.get_stats().http == 0 end, 10000),
      "requests still alive: " .. net.get_stats().http)
  end)

  it("holds back the server when the owner reads slowly, losing nothing", function()
    local req = assert(net.http_request{ url = base .. "/data.bin", buffer_size = 16384 })
    local parts, got = {}, 0
    assert(h.wait_for(function()
      local d = req:read(4096)
      if d and d ~= "" then parts[#parts + 1] = d got = got + #d end
      return d == nil
    end, 60000, 0))
    assert.equal("success", (req:get_status()))
    assert.is_true(table.concat(parts) == content, "body differs from the file")
  end)

  it("reuses a kept-alive connection per origin, and not one the server closed", function()
    local ports = {}
    for i = 1, 5 do
      local body, status, msg = fetch{ url = base .. "/conn-id" }
      assert.equal("success", status, msg)
      ports[i] = body
    end
    for i = 2, 5 do assert.equal(ports[1], ports[i], "request " .. i .. " came on a new connection") end
    local body, status, msg = fetch{ url = base .. "/conn-id", keepalive = false }
    assert.equal("success", status, msg)
    assert.not_equal(ports[1], body)
    -- a caller's "Connection: close" is keepalive = false: that connection carries nothing more
    local said
    said, status, msg = fetch{ url = base .. "/conn-id", headers = { Connection = "close" } }
    assert.equal("success", status, msg)
    body, status, msg = fetch{ url = base .. "/conn-id" }
    assert.equal("success", status, msg)
    assert.not_equal(said, body, "a connection the request said to close carried the next one")
    -- the server closes after claiming keep-alive: the next request gets a new connection
    local closed
    closed, status, msg = fetch{ url = base .. "/conn-id?close" }
    assert.equal("success", status, msg)
    h.sleep(100)
    body, status, msg = fetch{ url = base .. "/conn-id" }
    assert.equal("success", status, msg)
    assert.not_equal(closed, body)
  end)

  it("follows a redirect on the same kept-alive connection when its short body is already read", function()
    for _, q in ipairs({ "", "?empty" }) do
      local body, status, msg, _, req = fetch{ url = base .. "/kept-redirect/conn-id" .. q }
      assert.equal("success", status, msg)
      local st, hd = req:get_redirect(1)
      assert.equal(302, st)
      assert.equal(hd["x-conn-id"], body, "the redirect target came on a new connection" .. q)
    end
    -- a redirect answered before the whole body went: that connection is mid-request, never reused
    local body, status, msg, _, req = fetch{ url = base .. "/kept-redirect/conn-id", method = "POST",
      body = h.random_bytes(8 * h.MiB), timeout = 30000 }
    assert.equal("success", status, msg)
    local _, hd = req:get_redirect(1)
    assert.not_equal(hd["x-conn-id"], body, "a connection with the POST body half sent was reused")
  end)

  it("gives a kept-alive connection the idle_timeout of the request that takes it", function()
    local first, status, msg = fetch{ url = base .. "/conn-id", idle_timeout = 300 }
    assert.equal("success", status, msg)
    -- without one of its own, a slow answer on that connection is waited for
    _, status, msg = fetch{ url = base .. "/late/800" }
    assert.equal("success", status, msg)
    local again
    again, status, msg = fetch{ url = base .. "/conn-id" }
    assert.equal("success", status, msg)
    assert.equal(first, again, "a second connection was made: the kept one failed, or was not kept")
    -- and its own applies there
    local code
    _, status, msg, code = fetch{ url = base .. "/late/2000", idle_timeout = 300 }
    assert.equal("failure", status)
    assert.equal("timeout", code, msg)
    assert.matches("idle_timeout", msg, 1, true)
  end)

  it("sends a request again only when its kept-alive connection had been closed, not after a timeout or a 1xx", function()
    local function seen(target)
      local body, status, msg = fetch{ url = base .. "/seen?" .. target }
      assert.equal("success", status, msg)
      return tonumber(body)
    end
    assert.equal("success", select(2, fetch{ url = base .. "/conn-id" }))   -- a kept connection
    local _, status, msg, code = fetch{ url = base .. "/late/1500?once", idle_timeout = 300 }
    assert.equal("failure", status)
    assert.equal("timeout", code, msg)
    assert.equal(1, seen("/late/1500?once"), "a timed-out request was sent again")
    assert.equal("success", select(2, fetch{ url = base .. "/conn-id" }))
    local url = raw_response("interim-then-close", "HTTP/1.1 100 Continue\r\n\r\n")
    _, status, msg, code = fetch{ url = url }
    assert.equal("failure", status)
    assert.equal("closed", code, msg)
    assert.equal(1, seen("/raw/interim-then-close"), "a request the server answered with a 1xx was sent again")
  end)

  local function wait_done(req, ms)
    local status = req:wait(ms or 30000)
    local _, msg, code = req:get_status()
    return status, msg, code
  end

  it("writes the body to output: whole, renamed into place, verified by sha256", function()
    local out = dir .. "/out.bin"
    local want = h.sha256_file(dir .. "/data.bin")
    local req = assert(net.http_request{ url = base .. "/chunked/data.bin", output = out, sha256 = want })
    assert.equal("success", wait_done(req))
    assert.is_nil(req:read())                       -- the bytes went to the file
    assert.is_true(h.read_file(out) == content, "output differs from the source")
    assert.is_false(h.path_exists(out .. ".part"))
    -- gzip'd on the wire, decoded into the file through the smallest buffer
    os.remove(out)
    req = assert(net.http_request{ url = base .. "/gzip/data.bin", output = out, buffer_size = 16384 })
    assert.equal("success", wait_done(req))
    assert.is_true(h.read_file(out) == content, "decoded output differs from the source")
    -- a digest that does not match: failure, and no file at all
    os.remove(out)
    req = assert(net.http_request{ url = base .. "/data.bin", output = out, sha256 = string.rep("0", 64) })
    local status, msg, code = wait_done(req)
    assert.equal("failure", status)
    assert.equal("protocol", code)
    assert.matches("GET /data.bin: the file's sha256 is " .. want .. ", not the one given", msg, 1, true)
    assert.is_false(h.path_exists(out))
    assert.is_false(h.path_exists(out .. ".part"))
  end)

  it("caps output at a max_size given, counting a resume's kept part", function()
    local out = dir .. "/capped.bin"
    for _, path in ipairs({ "/data.bin", "/chunked/data.bin", "/gzip/data.bin" }) do
      local req = assert(net.http_request{ url = base .. path, output = out, max_size = 1000 })
      local status, msg, code = wait_done(req)
      assert.equal("failure", status, path)
      assert.equal("limit", code, path .. ": " .. tostring(msg))
      assert.is_false(h.path_exists(out), path)
      assert.is_false(h.path_exists(out .. ".part"), path)
    end
    local t0 = net.clock()
    local req = assert(net.http_request{ url = base .. "/bomb", output = out, max_size = 16 * h.MiB, timeout = 60000 })
    local status, msg, code = wait_done(req, 60000)
    assert.equal("failure", status)
    assert.equal("limit", code, msg)
    print(string.format("# bomb into a file stopped after %.2f s: %s", net.clock() - t0, msg))
    assert.is_false(h.path_exists(out))
    -- exactly the file's size passes; a resume counts the part already there
    req = assert(net.http_request{ url = base .. "/data.bin", output = out, max_size = #content })
    assert.equal("success", wait_done(req))
    assert.is_true(h.read_file(out) == content)
    local cut = #content // 3
    local f = assert(io.open(out, "wb"))
    f:write(content:sub(1, cut))
    f:close()
    req = assert(net.http_request{ url = base .. "/range/data.bin", output = out, resume = true, max_size = #content - 1 })
    status, msg, code = wait_done(req)
    assert.equal("failure", status)
    assert.equal("limit", code, msg)
    assert.is_true(h.read_file(out) == content:sub(1, cut), "the file at output was not put back as it was")
    req = assert(net.http_request{ url = base .. "/range/data.bin", output = out, resume = true, max_size = #content })
    assert.equal("success", wait_done(req))
    assert.is_true(h.read_file(out) == content)
    os.remove(out)
  end)

  it("resumes a partial download with Range, and starts over when the server ignores it", function()
    local out = dir .. "/resumed.bin"
    local cut = #content // 3
    local f = assert(io.open(out .. ".part", "wb"))
    f:write(content:sub(1, cut))
    f:close()
    -- Python's file handler ignores Range: the file is written whole
    local req = assert(net.http_request{ url = base .. "/data.bin", output = out, resume = true,
      sha256 = h.sha256_file(dir .. "/data.bin") })
    assert.equal("success", wait_done(req))
    assert.is_true(h.read_file(out) == content, "restarted output differs from the source")
    -- a server that honours it (Range served by the test server's /range route)
    os.remove(out)
    f = assert(io.open(out, "wb"))   -- the file at output itself, as curl -C - takes it
    f:write(content:sub(1, cut))
    f:close()
    req = assert(net.http_request{ url = base .. "/range/data.bin", output = out, resume = true,
      sha256 = h.sha256_file(dir .. "/data.bin") })
    assert.equal("success", wait_done(req))
    assert.is_true(h.read_file(out) == content, "resumed output differs from the source")
    local st, headers = req:get_response()
    assert.equal(206, st)
    assert.equal(string.format("bytes %d-%d/%d", cut, #content - 1, #content), headers["content-range"])
    local received, total = req:get_progress()
    assert.equal(#content, received)
    assert.equal(#content, total)
    -- a 206 that covers only part of the rest is no whole file: it fails, the part kept
    f = assert(io.open(out, "wb"))
    f:write(content:sub(1, cut))
    f:close()
    req = assert(net.http_request{ url = base .. "/range/short-data.bin", output = out, resume = true })
    local status, msg, code = wait_done(req)
    assert.equal("failure", status)
    assert.equal("protocol", code, msg)
    assert.matches("206 that stops before the file's end to a resume from byte " .. cut, msg, 1, true)
    assert.is_true(h.read_file(out) == content:sub(1, cut), "the file at output was not put back as it was")
  end)

  it("takes a resume's 206 without a length only when its body ends exactly at the file's end", function()
    local head = "HTTP/1.1 206 Partial Content\r\nConnection: close\r\n"
    local chunked = "Transfer-Encoding: chunked\r\n\r\n"
    local cases = {   -- a 20-byte file, 5 bytes of it there
      { "exact", head .. "Content-Range: bytes 5-19/20\r\n" .. chunked .. "f\r\nFGHIJKLMNOPQRST\r\n0\r\n\r\n" },
      { "short", head .. "Content-Range: bytes 5-19/20\r\n" .. chunked .. "5\r\nFGHIJ\r\n0\r\n\r\n",
        "206 body ended at byte 10 of the 20 its Content-Range gave" },
      { "long", head .. "Content-Range: bytes 5-19/20\r\n" .. chunked .. "14\r\nFGHIJKLMNOPQRSTEXTRA\r\n0\r\n\r\n",
        "206 body runs past byte 20, where its Content-Range ends the file" },
      { "to-close", head .. "Content-Range: bytes 5-19/20\r\n\r\nFGHIJ",
        "206 body ended at byte 10 of the 20 its Content-Range gave" },
      { "star", head .. "Content-Range: bytes 5-9/*\r\nContent-Length: 5\r\n\r\nFGHIJ",
        "206 whose Content-Range does not give the file's size" },
    }
    for _, c in ipairs(cases) do
      local out = dir .. "/range-" .. c[1] .. ".bin"
      h.write_file(out, "ABCDE")
      local req = assert(net.http_request{ url = raw_response("range-" .. c[1], c[2]), output = out, resume = true })
      local status, msg, code = wait_done(req)
      if not c[3] then
        assert.equal("success", status, msg)
        assert.equal("ABCDEFGHIJKLMNOPQRST", h.read_file(out))
        local received, total = req:get_progress()
        assert.same({ 20, 20 }, { received, total })
      else
        assert.equal("failure", status, c[1])
        assert.equal("protocol", code, msg)
        assert.matches(c[3], msg, 1, true)
        -- put back with what arrived of the file (a later resume goes on from there), never more
        local got = h.read_file(out)
        assert.is_true(#got >= 5 and #got < 20 and got == ("ABCDEFGHIJKLMNOPQRST"):sub(1, #got), c[1] .. ": " .. got)
      end
      req:close()
    end
  end)

  it("refuses a second download into the .part another one is writing", function()
    local out = dir .. "/twice.bin"
    os.remove(out)
    local function part() return h.read_file(out .. ".part") end
    h.write_file(out .. ".part", "ABC")
    -- the first resumes that .part and holds it (the server stalls after 10 bytes of 100:
    -- less than the writer's batch, so the file is not touched yet)
    local first = assert(net.http_request{ url = base .. "/stall", output = out, resume = true, timeout = 1500 })
    h.run_frames(function() local _, hd = first:get_response() return hd ~= nil end, 10000)
    local second = assert(net.http_request{ url = base .. "/data.bin", output = out })
    local st, msg, code = wait_done(second)
    assert.equal("failure", st)
    assert.equal("limit", code)
    assert.matches("twice.bin.part: another download is writing it", msg, 1, true)
    assert.equal("ABC", part())   -- neither truncated nor written by the second
    st, msg, code = wait_done(first)
    assert.equal("timeout", code, msg)   -- the first was left alone, and ends its own way
    assert.is_nil(io.open(out, "rb"), "a file was put at output")
    os.remove(out .. ".part")
  end)

  it("fails a download answered with a part it never asked for (206 without Range)", function()
    local out = dir .. "/part.bin"
    os.remove(out)
    local req = assert(net.http_request{ url = base .. "/range/part-data.bin", output = out })
    local st, msg, code = wait_done(req)
    assert.equal("failure", st)
    assert.equal("protocol", code)
    assert.matches("206 Partial Content to a request for the whole file", msg, 1, true)
    assert.is_nil(io.open(out, "rb"), "a part was saved as the whole file")
    -- a part the caller asked for with a Range of its own is what it wanted
    req = assert(net.http_request{ url = base .. "/range/data.bin", output = out, headers = { Range = "bytes=900-" } })
    st, msg = wait_done(req)
    assert.equal("success", st, msg)
    assert.is_true(h.read_file(out) == content:sub(901), "the part asked for differs")
    os.remove(out)
  end)

  it("resumes a file already whole as done (416), and a failed resume puts the file at output back", function()
    local out = dir .. "/whole.bin"
    local f = assert(io.open(out, "wb"))
    f:write(content)
    f:close()
    local req = assert(net.http_request{ url = base .. "/range/data.bin", output = out, resume = true,
      sha256 = h.sha256_file(dir .. "/data.bin") })
    assert.same({ "success" }, { wait_done(req) })
    assert.equal(416, (req:get_response()))
    assert.is_true(h.read_file(out) == content, "the whole file changed")
    assert.is_false(h.path_exists(out .. ".part"))
    local got, total = req:get_progress()
    assert.same({ #content, #content }, { got, total })   -- its size is known
    -- whole, but not the file asked for: a failure, and the user's file stays as it was
    req = assert(net.http_request{ url = base .. "/range/data.bin", output = out, resume = true,
      sha256 = string.rep("0", 64) })
    assert.equal("protocol", select(3, wait_done(req)))
    assert.is_true(h.read_file(out) == content, "the file at output was removed or changed")
    assert.is_false(h.path_exists(out .. ".part"))
    -- the same for a part of it, resumed: what came after it is not kept
    h.write_file(out, content:sub(1, 100))
    req = assert(net.http_request{ url = base .. "/range/data.bin", output = out, resume = true,
      sha256 = string.rep("0", 64) })
    assert.equal("protocol", select(3, wait_done(req)))
    assert.equal(content:sub(1, 100), h.read_file(out))
    assert.is_false(h.path_exists(out .. ".part"))
    -- a resume that fails leaves the user's file where it was, not moved to .part
    out = dir .. "/kept.bin"
    f = assert(io.open(out, "wb"))
    f:write(content:sub(1, 100))
    f:close()
    req = assert(net.http_request{ url = base .. "/status/503", output = out, resume = true })
    local status, msg = wait_done(req)
    assert.equal("failure", status)
    assert.matches("server answered 503", msg, 1, true)
    assert(h.wait_for(function() return h.path_exists(out) end, 5000), "the file at output was left moved aside")
    assert.is_false(h.path_exists(out .. ".part"))
    assert.equal(content:sub(1, 100), h.read_file(out))
  end)

  it("keeps the .part of a failed download to resume, and never writes an error page", function()
    local out = dir .. "/failed.bin"
    local req = assert(net.http_request{ url = base .. "/short/data.bin", output = out, resume = true })
    local status, msg, code = wait_done(req)
    assert.equal("failure", status)
    assert.equal("closed", code, msg)
    assert.is_false(h.path_exists(out))
    assert(h.wait_for(function() return h.path_exists(out .. ".part") end, 5000))
    -- retried at once, the failed handle still held: its .part is free to resume
    local again = assert(net.http_request{ url = base .. "/range/data.bin", output = out, resume = true })
    status, msg = wait_done(again)
    assert.equal("success", status, msg)
    assert.is_true(h.read_file(out) == content, "the resumed file differs")
    req:close()
    -- not to be resumed: nothing is left
    out = dir .. "/failed-once.bin"
    req = assert(net.http_request{ url = base .. "/short/data.bin", output = out })
    status, msg, code = wait_done(req)
    assert.equal("closed", code, msg)
    assert(h.wait_for(function() return not h.path_exists(out .. ".part") end, 5000), "the .part stayed")
    assert.is_false(h.path_exists(out))
    req = assert(net.http_request{ url = base .. "/status/404", output = dir .. "/nothing.bin" })
    status, msg, code = wait_done(req)
    assert.equal("failure", status)
    assert.equal("protocol", code)
    assert.matches("server answered 404 Not Found", msg, 1, true)
    assert.is_false(h.path_exists(dir .. "/nothing.bin"))
    -- to be resumed, but nothing came: no .part is left where there was none
    out = dir .. "/refused.bin"
    req = assert(net.http_request{ url = base .. "/status/404", output = out, resume = true })
    status, msg, code = wait_done(req)
    assert.equal("protocol", code, msg)
    assert(h.wait_for(function() return not h.path_exists(out .. ".part") end, 5000), "an empty .part was left")
    assert.is_false(h.path_exists(out))
    -- one that was there stays, empty or not
    h.write_file(out .. ".part", "")
    req = assert(net.http_request{ url = base .. "/status/404", output = out, resume = true })
    status, msg, code = wait_done(req)
    assert.equal("protocol", code, msg)
    req:close()
    h.sleep(200)
    assert.is_true(h.path_exists(out .. ".part"), "an earlier .part was removed")
    req = assert(net.http_request{ url = base .. "/data.bin", output = dir .. "/no/such/dir/x.bin" })
    status, msg, code = wait_done(req)
    assert.equal("failure", status)
    assert.matches("open " .. dir .. "/no/such/dir/x.bin.part: ", msg, 1, true)
    h.assert_raises("resume and sha256 go with output", function() net.http_request{ url = base, resume = true } end)
    h.assert_raises("sha256", function() net.http_request{ url = base, output = "x", sha256 = "abc" } end)
  end)

  it("leaves no file after a cancel, whenever it comes, unless it came too late", function()
    local outs, cancelled = {}, 0
    for i = 1, 60 do
      outs[i] = dir .. "/cancelled-" .. i .. ".txt"
      local req = assert(net.http_request{ url = base .. "/hello.txt", output = outs[i] })
      net.wait(i % 6)
      req:cancel()
      local status = wait_done(req)
      if status == "failure" then
        cancelled = cancelled + 1
        assert.is_false(h.path_exists(outs[i]), "a cancelled download put its file in place")
      else
        assert.equal("hello, world\n", h.read_file(outs[i]))   -- the cancel came too late
      end
      req:close()
    end
    assert.is_true(cancelled > 0)
    assert(h.wait_for(function()
      for i = 1, #outs do if h.path_exists(outs[i] .. ".part") then return false end end
      return true
    end, 5000), "a cancelled download left its .part")
  end)

  it("ends a download cancelled as its file is being finished, either way, every time", function()
    for i = 1, 40 do
      local out = dir .. "/finishing-" .. i .. ".bin"
      local req = assert(net.http_request{ url = base .. "/data.bin", output = out, buffer_size = 64 * h.MiB })
      assert(h.wait_for(function()
        local received, total = req:get_progress()
        return (total and received >= total) or req:get_status() ~= "waiting"
      end, 30000))
      req:cancel()
      local status, msg = wait_done(req, 10000)
      assert.are_not.equal("waiting", status, "download " .. i .. " never ended")
      if status == "success" then assert.is_true(h.read_file(out) == content, msg)
      else assert.is_false(h.path_exists(out), "a cancelled download put its file in place") end
      req:close()
      os.remove(out)
    end
  end)

  it("fails a download whose file cannot be put in place, and keeps its .part only to resume", function()
    for _, resume in ipairs({ false, true }) do
      local out = dir .. "/a-directory-" .. tostring(resume)
      assert(os.execute("mkdir " .. h.shell_quote(out)))
      local req = assert(net.http_request{ url = base .. "/hello.txt", output = out, resume = resume, timeout = 60000 })
      local status, msg = wait_done(req, 10000)
      assert.equal("failure", status)
      assert.matches("rename " .. out .. ".part: ", msg, 1, true)
      assert.equal(resume, h.path_exists(out .. ".part"))
      req:close()
    end
  end)

  it("fails a download at once when its file cannot be written", function()
    if h.mode == "windows" then return pending("a file size limit is a POSIX shell's") end
    local code = [[
      local net = require "net"
      local req = assert(net.http_request{ url = select(1, ...), output = select(2, ...), timeout = 60000 })
      print(req:wait(90000), select(2, req:get_status()))
    ]]
    local ok, out, err = h.run_lua_child(code, { ULIMIT_FSIZE_KB = 64 }, base .. "/data.bin", dir .. "/toolarge.bin")
    assert.is_true(ok, err)
    assert.matches("^failure\t[^\n]*write " .. dir .. "/toolarge.bin.part: ", out)
    assert.is_false(h.path_exists(dir .. "/toolarge.bin"))
  end)

  it("reports connection failures with the connection's message and code", function()
    local _, status, msg, code = fetch{ url = "http://127.0.0.1:" .. h.closed_port() .. "/x" }
    assert.equal("failure", status)
    assert.equal("refused", code)
    assert.matches("^http 127%.0%.0%.1:%d+ GET /x: ", msg)
  end)

  it("rejects what it cannot use", function()
    local req, msg, code = net.http_request{ url = "ftp://example.test/" }
    assert.is_nil(req)
    assert.equal("invalid", code)
    assert.matches("scheme", msg)
    req, msg, code = net.http_request{ url = "http://exa mple.test/" }
    assert.is_nil(req)
    assert.equal("invalid", code)
    h.assert_raises("url", function() net.http_request{} end)
    h.assert_raises("unknown http_request option 'tiemout'", function() net.http_request{ url = base, tiemout = 5 } end)
    h.assert_raises("header", function() net.http_request{ url = base, headers = { ["Bad Name"] = "x" } } end)
    h.assert_raises("header", function() net.http_request{ url = base, headers = { X = "a\r\nInjected: 1" } } end)
    for _, v in ipairs{ "a\1b", "a\0b", "a\127b", "a\27[m" } do   -- the engine's rule: no control byte but tab
      h.assert_raises("header X: a value with a control character", function() net.http_request{ url = base, headers = { X = v } } end)
    end
    h.assert_raises("method", function() net.http_request{ url = base, method = "get" } end)
    h.assert_raises("body", function() net.http_request{ url = base, body = 42 } end)
    -- one field twice (two Hosts: servers that take different ones read different requests)
    h.assert_raises("header host is given twice (names are case-insensitive)", function()
      net.http_request{ url = base, headers = { Host = "a.test", host = "b.test", Accept = "*/*" } }
    end)
    h.assert_raises("given twice", function()
      net.open_websocket("ws://127.0.0.1:1/", { headers = { ["X-A"] = "1", ["x-a"] = "2" } })
    end)
  end)

  describe("through proxies", function()
    local tls_server, tls_base, certs, tp, ms

    local function have(cmd) return os.execute("command -v " .. cmd .. " >/dev/null 2>&1") == true end

    setup(function()
      certs = h.tls_certs()
      tls_server = start_http(dir, { cert = certs:pem("good"), key = certs:key("good") })
      tls_base = "https://127.0.0.1:" .. tls_server.port
      if have("tinyproxy") then tp = h.start_tinyproxy(dir, "http", { tls_server.port }) end
      if have("microsocks") then ms = h.start_microsocks() end
    end)

    it("sends plain http to an http proxy in absolute form, and tunnels https with CONNECT", function()
      if not tp then return pending("tinyproxy is not installed (./run.sh deps)") end
      local proxy = "http://127.0.0.1:" .. tp.port
      local body, status, msg = fetch{ url = base .. "/echo", proxy = proxy }
      assert.equal("success", status, msg)
      assert.matches("\nvia: [^\n]*tinyproxy", body)            -- the proxy forwarded it
      assert.matches("\nhost: 127.0.0.1:" .. server.port .. "\n", body, 1, true)
      body, status, msg = fetch{ url = tls_base .. "/chunked/data.bin", proxy = proxy, ssl = { ca_file = certs.ca } }
      assert.equal("success", status, msg)
      assert.is_true(body == content, "body through the tunnel differs from the file")
    end)

    it("sends Proxy-Authorization with every request, on a new connection or a kept one", function()
      -- the test server takes absolute-form requests as an http proxy would
      local proxy = "http://user:pw@127.0.0.1:" .. server.port
      local ports = {}
      for i = 1, 3 do
        local body, status, msg = fetch{ url = base .. "/echo?keep", proxy = proxy }
        assert.equal("success", status, msg)
        assert.matches("^GET http://127.0.0.1:" .. server.port .. "/echo%?keep\n", body)
        assert.matches("\nproxy-authorization: Basic dXNlcjpwdw==\n", body, 1, true)
        ports[i] = body:match("\nx%-peer%-port: (%d+)\n")
      end
      assert.equal(ports[1], ports[3], "the requests did not share a kept connection")
      -- an IPv6 zone names an interface of this machine: the proxy never sees it
      -- (the test server answers for any target; none is contacted)
      local body, status, msg = fetch{ url = "http://[fe80::1%25lo]:8080/echo", proxy = proxy }
      assert.equal("success", status, msg)
      assert.matches("^GET http://%[fe80::1%]:8080/echo\n", body)
    end)

    it("tunnels through SOCKS5, the name resolved by the proxy", function()
      if not ms then return pending("microsocks is not installed (./run.sh deps)") end
      local body, status, msg = fetch{ url = tls_base .. "/hello.txt", proxy = "socks5h://127.0.0.1:" .. ms.port,
        ssl = { ca_file = certs.ca } }
      assert.equal("success", status, msg)
      assert.equal("hello, world\n", body)
    end)

    it("takes the proxy from the environment (http_proxy in lower case only), except for NO_PROXY hosts", function()
      local closed = h.closed_port()
      local code = [[
        local net = require "net"
        local req = assert(net.http_request{ url = ... })
        print(req:wait(20000), select(2, req:get_status()))
      ]]
      -- Windows' environment has one variable for both spellings: unsetting one unsets the other
      local windows = package.config:sub(1, 1) == "\\"
      local env = { http_proxy = "127.0.0.1:" .. closed, NO_PROXY = false, ALL_PROXY = false }
      if not windows then env.HTTP_PROXY, env.no_proxy, env.all_proxy = false, false, false end
      local ok, out, err = h.run_lua_child(code, env, base .. "/hello.txt")
      assert.is_true(ok, err)
      assert.matches("^failure\t[^\n]*: proxy 127.0.0.1:" .. closed .. ": connect ", out)   -- it went for the proxy, and says so
      if not windows then
        -- HTTP_PROXY in upper case, as curl: a CGI-style host may set it from a request's Proxy header
        ok, out, err = h.run_lua_child(code, { HTTP_PROXY = "127.0.0.1:" .. closed, http_proxy = false,
          NO_PROXY = false, no_proxy = false, ALL_PROXY = false, all_proxy = false }, base .. "/hello.txt")
        assert.is_true(ok, err)
        assert.matches("^success", out)
      end
      env.NO_PROXY = "example.test, .127.0.0.1,localhost"
      ok, out, err = h.run_lua_child(code, env, base .. "/hello.txt")
      assert.is_true(ok, err)
      assert.matches("^success", out)
      local req = assert(net.http_request{ url = base .. "/hello.txt", proxy = false })
      assert.equal("success", (req:wait(20000)))
      h.assert_raises("proxy", function() net.http_request{ url = base, proxy = "ftp://x" } end)
      h.assert_raises("proxy", function() net.http_request{ url = base, proxy = true } end)
    end)
  end)

  describe("over TLS", function()
    local tls_server, tls_base, certs

    setup(function()
      certs = h.tls_certs()
      tls_server = start_http(dir, { cert = certs:pem("good"), key = certs:key("good") })
      tls_base = "https://127.0.0.1:" .. tls_server.port
    end)

    it("downloads with the ssl options given, and verifies by default", function()
      local body, status, msg = fetch{ url = tls_base .. "/chunked/data.bin", ssl = { ca_file = certs.ca } }
      assert.equal("success", status, msg)
      assert.is_true(body == content, "body differs from the file")
      local _, code
      _, status, msg, code = fetch{ url = tls_base .. "/hello.txt", ssl = { ca_file = certs:pem("selfsigned") } }
      assert.equal("failure", status)
      assert.equal("tls-verify", code, msg)
    end)

    it("keeps connections apart by TLS options, however long their paths", function()
      if h.mode == "windows" then return pending("paths past Windows' MAX_PATH") end
      -- two CA files whose paths differ only past the 700th byte
      local long = dir
      for i = 1, 4 do long = long .. "/" .. string.rep(tostring(i), 200) end
      assert(os.execute("mkdir -p " .. h.shell_quote(long)))
      h.write_file(long .. "/a.pem", h.read_file(certs.ca))
      h.write_file(long .. "/b.pem", h.read_file(certs:pem("selfsigned")))
      local _, status, msg = fetch{ url = tls_base .. "/conn-id", ssl = { ca_file = long .. "/a.pem" } }
      assert.equal("success", status, msg)
      local code
      _, status, msg, code = fetch{ url = tls_base .. "/conn-id", ssl = { ca_file = long .. "/b.pem" } }
      assert.equal("failure", status, "a connection verified with another CA was reused")
      assert.equal("tls-verify", code, msg)
    end)

    it("checks the next origin's own name after a redirect, not the server_name given for the first", function()
      local first = start_http(dir, { cert = certs:pem("wrongname"), key = certs:key("wrongname") })   -- other.test
      local url = "https://127.0.0.1:" .. first.port .. "/goto?https://localhost:" .. tls_server.port .. "/echo"
      local body, status, msg = fetch{ url = url, ssl = { ca_file = certs.ca, server_name = "other.test" } }
      assert.equal("success", status, msg)
      assert.matches("\nhost: localhost:" .. tls_server.port .. "\n", body, 1, true)
      first:stop()
    end)

    it("refuses a redirect from https to http unless allow_downgrade is set", function()
      local url = tls_base .. "/goto?" .. base .. "/echo"
      local _, status, msg, code = fetch{ url = url, ssl = { ca_file = certs.ca } }
      assert.equal("failure", status)
      assert.equal("protocol", code)
      assert.matches("from https to http refused: " .. base .. "/echo (allow_downgrade)", msg, 1, true)
      -- named without its query (a signed URL's), the hint kept
      local _, _, signed = fetch{ url = tls_base .. "/goto?" .. base .. "/echo?X-Signature=" .. string.rep("f", 200),
        ssl = { ca_file = certs.ca } }
      assert.matches("from https to http refused: " .. base .. "/echo?... (allow_downgrade)", signed, 1, true)
      assert.not_matches("fff", signed)
      local body
      body, status, msg = fetch{ url = url, ssl = { ca_file = certs.ca }, allow_downgrade = true,
        headers = { Authorization = "Bearer s3cret" } }
      assert.equal("success", status, msg)
      assert.not_matches("authorization", body)
    end)
  end)
end)
