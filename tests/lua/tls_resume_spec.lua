-- tls_resume_spec: TLS session resumption. A client offers the session of its last
-- verified handshake with the same server (checked name and address, same CA set and
-- options) and `openssl s_server -www` reports it "Reused"; another name, another
-- address or other TLS options get a full handshake ("New"). A server of ours issues
-- session tickets that `openssl s_client -sess_in` resumes. Through a proxy, "the same server"
-- is the same target host and port (and proxy), not the proxy's address.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

local certs

-- "New" or "Reused": what s_server -www says of the session of one GET.
local function session_kind(host, port, extra, proxy)
  local opts = { ca_file = certs.ca }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local conn = assert(net.open_tcp(host, port, proxy and { ssl = opts, proxy = proxy } or opts))
  local status, msg, code = h.wait_status(conn, 10000)
  assert.are.equal("success", status, string.format("%s (%s)", tostring(msg), tostring(code)))
  assert.is_true(h.write_all(conn, "GET / HTTP/1.0\r\n\r\n"))
  local page = {}
  h.read_all(conn, function(s) page[#page + 1] = s end, 10000)
  conn:close()
  page = table.concat(page)
  local kind = page:match("\n(%a+), TLSv")
  assert(kind, "no session line in the page: " .. page:sub(1, 300))
  return kind
end

describe("tls session resumption", function()
  setup(function()
    certs = h.tls_certs()
  end)

  it("resumes with the same server, and only there", function()
    local srv = h.start_s_server({ tls1_2 = true, www = true })
    assert.are.equal("New", session_kind("sluice-v4.test", srv.port))
    assert.are.equal("Reused", session_kind("sluice-v4.test", srv.port))
    assert.are.equal("Reused", session_kind("sluice-v4.test", srv.port))
    -- another checked name for the same address: its own session
    assert.are.equal("New", session_kind("127.0.0.1", srv.port))
    assert.are.equal("Reused", session_kind("127.0.0.1", srv.port))
    -- other TLS options (another configuration): never the verified one's session
    assert.are.equal("New", session_kind("sluice-v4.test", srv.port, { verify = false }))
    assert.are.equal("New", session_kind("sluice-v4.test", srv.port, { alpn = { "http/1.1" } }))
    -- resume = false: full handshakes, every time
    assert.are.equal("New", session_kind("sluice-v4.test", srv.port, { resume = false }))
    assert.are.equal("New", session_kind("sluice-v4.test", srv.port, { resume = false }))
    assert.are.equal("Reused", session_kind("sluice-v4.test", srv.port))
    -- the name checked is what counts: the same name by address resumes, another one
    -- is checked in full (and fails: the certificate is not for it)
    assert.are.equal("Reused", session_kind("127.0.0.1", srv.port, { server_name = "sluice-v4.test" }))
    local conn = assert(net.open_tcp("127.0.0.1", srv.port, { ca_file = certs.ca, server_name = "other.test" }))
    local status, msg, code = h.wait_status(conn, 10000)
    conn:close()
    assert.are.same({ "failure", "tls-verify" }, { status, code }, msg)
    assert.matches("wrong name: certificate is not for other.test", msg, 1, true)
    srv:stop()
    -- a new server on another port: nothing to resume
    local other = h.start_s_server({ tls1_2 = true, www = true })
    assert.are.equal("New", session_kind("sluice-v4.test", other.port))
    other:stop()
  end)

  it("resumes through a proxy with the same target, not with another port behind it", function()
    if os.execute("command -v tinyproxy >/dev/null 2>&1") ~= true then
      return pending("tinyproxy is not installed (./run.sh deps)")
    end
    local srv = h.start_s_server({ tls1_2 = true, www = true })
    local other = h.start_s_server({ tls1_2 = true, www = true })
    local proxy = h.start_tinyproxy(h.temp_dir(), "resume", { srv.port, other.port })
    local via = "http://127.0.0.1:" .. proxy.port
    assert.are.equal("New", session_kind("127.0.0.1", srv.port, nil, via))
    assert.are.equal("Reused", session_kind("127.0.0.1", srv.port, nil, via))
    -- the same proxy (the same peer address) and name, another target port
    assert.are.equal("New", session_kind("127.0.0.1", other.port, nil, via))
    srv:stop()
    other:stop()
  end)

  it("resumes every reconnect of a quick series", function()
    -- one right after another: a session stored a moment before it is offered again
    local srv = h.start_s_server({ tls1_2 = true, www = true })
    assert.are.equal("New", session_kind("sluice-v4.test", srv.port))
    local kinds = {}
    for i = 1, 20 do kinds[i] = session_kind("sluice-v4.test", srv.port) end
    assert.are.equal(string.rep("Reused ", 20), table.concat(kinds, " ") .. " ")
    srv:stop()
  end)

  it("falls back to a full handshake when the server forgot the session", function()
    local srv = h.start_s_server({ tls1_2 = true, www = true })
    assert.are.equal("New", session_kind("sluice-v4.test", srv.port))
    local port = srv.port
    srv:stop()
    -- the same port, a fresh server process: the offered session is unknown there
    local again = h.start_server("openssl s_server", string.format(
      "%s s_server -www -tls1_2 -accept 127.0.0.1:%d -cert %s -key %s", h.openssl, port,
      certs:pem("good"), certs:key("good")), function(out)
        return out:find("ACCEPT", 1, true) and port
      end)
    assert.are.equal("New", session_kind("sluice-v4.test", port))
    assert.are.equal("Reused", session_kind("sluice-v4.test", port))
    again:stop()
  end)

  it("issues session tickets from its servers that clients resume", function()
    local server = assert(net.create_server("127.0.0.1", 0, {
      ssl = { cert_file = certs:pem("good"), key_file = certs:key("good") } }))
    local dir = h.temp_dir()
    local sess = dir .. "/session.pem"
    local function s_client(extra)
      local child = h.spawn("openssl s_client", string.format(
        "%s s_client -connect 127.0.0.1:%d -tls1_2 -CAfile %s %s", h.openssl, server:get_port(),
        certs.ca, extra))
      local accepted = {}
      assert.truthy(h.wait_for(function()
        local c = server:accept()
        if c then accepted[#accepted + 1] = c end
        return not child:alive()
      end, 10000, 5), "s_client did not finish")
      for _, c in ipairs(accepted) do c:close() end
      return child:stdout()
    end
    local first = s_client("-sess_out " .. sess)
    assert.truthy(first:find("New, TLSv1.2", 1, true), first)
    local second = s_client("-sess_in " .. sess)
    assert.truthy(second:find("Reused, TLSv1.2", 1, true), second)
    server:close()
    -- and none from a server made with resume = false
    server = assert(net.create_server("127.0.0.1", 0, {
      ssl = { cert_file = certs:pem("good"), key_file = certs:key("good"), resume = false } }))
    s_client("-sess_out " .. sess)
    local third = s_client("-sess_in " .. sess)
    assert.truthy(third:find("New, TLSv1.2", 1, true), third)
    server:close()
  end)
end)
