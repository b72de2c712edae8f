-- net.http_request against nginx (Debian nginx-light) on loopback, plain and TLS:
-- keep-alive reuse counted in nginx's own access log, gzip, chunked, Range,
-- HEAD/204/304, a large download to a file verified by sha256 with progress, and a
-- resume after the server was killed mid-download.
local net = require "net"
local h = require "helpers"

local NGINX = h.nginx
local start_nginx = h.start_nginx

local function fetch(opts)
  local req = assert(net.http_request(opts))
  local parts = {}
  assert(h.wait_for(function()
    local d = req:read()
    if d and d ~= "" then parts[#parts + 1] = d end
    return d == nil
  end, 60000, 0), "request still running")
  local status, msg, code = req:get_status()
  return table.concat(parts), status, msg, code, req
end

describe("net.http_request against nginx", function()
  local dir, ngx, base, text, big

  setup(function()
    if not NGINX then return end
    dir = h.temp_dir()
    os.execute("mkdir -p " .. h.shell_quote(dir .. "/www") .. " " .. h.shell_quote(dir .. "/tmp"))
    text = string.rep("sluice over nginx, line after line\n", 20000)
    local f = assert(io.open(dir .. "/www/text.txt", "wb"))
    f:write(text)
    f:close()
    big = dir .. "/www/big.bin"
    assert(os.execute(("head -c %d /dev/urandom > %s"):format(h.scaled(100 * h.MiB, 8 * h.MiB), h.shell_quote(big))))
    ngx = start_nginx(dir, "plain")
    base = "http://127.0.0.1:" .. ngx.port
  end)

  teardown(function() h.stop_all() end)

  -- without nginx every test is reported pending (busted takes pending() in a test, not in before_each)
  local it = NGINX and it or function(name) pending(name .. ": nginx is not installed (./run.sh deps)") end

  local function access_log(name)
    return h.read_file(dir .. "/" .. (name or "plain") .. "-access.log") or ""
  end

  it("reuses one kept-alive connection for a run of requests, as nginx's log shows", function()
    local before = access_log()
    for i = 1, 20 do
      local body, status, msg = fetch{ url = base .. "/text.txt?n=" .. i }
      assert.equal("success", status, msg)
      assert.is_true(body == text)
    end
    local conns = {}
    for conn in access_log():sub(#before + 1):gmatch("(%d+) GET /text.txt") do conns[conn] = true end
    local n = 0
    for _ in pairs(conns) do n = n + 1 end
    assert.equal(1, n, "20 requests came on " .. n .. " connections")
  end)

  it("decodes nginx's gzip and chunked responses", function()
    local body, status, msg, _, req = fetch{ url = base .. "/text.txt" }
    assert.equal("success", status, msg)
    local _, headers = req:get_response()
    assert.equal("gzip", headers["content-encoding"])
    assert.is_true(body == text)
    local received = req:get_progress()
    assert.is_true(received < #text // 10, "received " .. received .. " bytes on the wire")
    body, status, msg = fetch{ url = base .. "/chunked/text.txt" }
    assert.equal("success", status, msg)
    assert.is_true(body == text)
  end)

  it("reads no body after HEAD, 204 or 304", function()
    local body, status, msg, _, req = fetch{ url = base .. "/text.txt", method = "HEAD", decompress = false }
    assert.equal("success", status, msg)
    assert.equal("", body)
    local _, headers = req:get_response()
    assert.equal(tostring(#text), headers["content-length"])
    local etag = headers.etag
    body, status, msg, _, req = fetch{ url = base .. "/empty" }
    assert.equal("success", status, msg)
    assert.equal(204, (req:get_response()))
    body, status, msg, _, req = fetch{ url = base .. "/text.txt", headers = { ["If-None-Match"] = etag },
      decompress = false }
    assert.equal("success", status, msg)
    assert.equal(304, (req:get_response()))
    assert.equal("", body)
    -- the connection is still good afterwards
    body, status = fetch{ url = base .. "/text.txt" }
    assert.equal("success", status)
    assert.is_true(body == text)
  end)

  it("downloads a large file to disk, verified by sha256, with progress all the way", function()
    local out = dir .. "/big.out"
    local req = assert(net.http_request{ url = base .. "/big.bin", output = out, sha256 = h.sha256_file(big) })
    local last, steps = -1, 0
    assert(h.wait_for(function()
      local received, total = req:get_progress()
      assert.is_true(received >= last, "progress went back")
      if received > last then steps = steps + 1 end
      last = received
      return req:get_status() ~= "waiting"
    end, 120000, 5))
    local status, msg = req:get_status()
    assert.equal("success", status, msg)
    local received, total = req:get_progress()
    local size = #h.read_file(big)
    assert.equal(size, received)
    assert.equal(size, total)
    assert.is_true(steps > 1, "progress seen " .. steps .. " times")
    assert.equal(h.sha256_file(big), h.sha256_file(out))
  end)

  it("resumes a download after the server was killed in the middle of it", function()
    local slow = start_nginx(dir, "slow", { rate = "2m" })
    local out = dir .. "/resume.out"
    local url = "http://127.0.0.1:" .. slow.port .. "/slow/big.bin"
    -- resume from the start: a failed attempt keeps its .part only for a resume
    local req = assert(net.http_request{ url = url, output = out, resume = true })
    assert(h.wait_for(function() return req:get_progress() > 512 * 1024 end, 30000), "no progress")
    slow:stop()
    assert.equal("failure", (req:wait(30000)))
    assert.is_true(h.path_exists(out .. ".part"))
    local kept = #h.read_file(out .. ".part")
    assert.is_true(kept > 0)
    -- the same file from a server up again: the rest only
    local again = start_nginx(dir, "again", { rate = "0" })
    req = assert(net.http_request{ url = "http://127.0.0.1:" .. again.port .. "/big.bin", output = out,
      resume = true, sha256 = h.sha256_file(big) })
    local status, msg = req:wait(120000)
    assert.equal("success", status, msg)
    local st, headers = req:get_response()
    assert.equal(206, st)
    assert.matches("^bytes " .. kept .. "%-", headers["content-range"])
    assert.equal(h.sha256_file(big), h.sha256_file(out))
    again:stop()
  end)

  it("downloads over TLS from nginx, verified against the test CA", function()
    local certs = h.tls_certs()
    local tls = start_nginx(dir, "tls", { cert = certs:pem("good"), key = certs:key("good") })
    local body, status, msg = fetch{ url = "https://127.0.0.1:" .. tls.port .. "/text.txt",
      ssl = { ca_file = certs.ca } }
    assert.equal("success", status, msg)
    assert.is_true(body == text)
    tls:stop()
  end)
end)
