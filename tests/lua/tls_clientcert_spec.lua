-- tls_clientcert_spec: client certificates. A server that requires one (`openssl
-- s_server -Verify 1 -CAfile ca.pem`, and tls_echo.py --cafile, which reports the
-- client's CN) refuses a client without it and accepts one with cert_file / key_file,
-- also with an encrypted key and its key_password; a wrong or missing password (also
-- one that decrypts to bytes that look like a key) and unreadable files fail with a
-- clear message and code "tls".
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"
h.need_hosts_file()

describe("tls client certificates", function()
  local certs, s_server, info

  setup(function()
    certs = h.tls_certs()
    s_server = h.start_s_server({ client_ca = true })
    info = h.start_tls_server("info", nil, { client_ca = true })
  end)

  teardown(function()
    h.stop_all()
  end)

  local function opts(extra)
    local t = { ca_file = certs.ca }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  -- Opens a connection and waits for the handshake: status, message, code, conn. A
  -- failure already at open_tcp comes back as "failure" too (conn nil then).
  local function handshake(port, o)
    local conn, msg, code = net.open_tcp("sluice-v4.test", port, o)
    if not conn then return "failure", msg, code, nil end
    local status
    status, msg, code = h.wait_status(conn, 10000)
    return status, msg, code, conn
  end

  local function exchange_rev(conn, text)
    assert.is_true(h.write_all(conn, text .. "\n"))
    assert.are.equal(text:reverse(), h.read_line(conn, 10000))
  end

  -- A server that refuses us sends an alert and closes; when it closes while our last
  -- handshake flight is still going out, the kernel answers that with a reset, and the
  -- engine may see the failed send before the alert: "tls" (the alert) or "reset".
  local function assert_refused(port, status, msg, code)
    assert.are.equal("failure", status)
    assert.truthy(code == "tls" or code == "reset", tostring(code) .. ": " .. tostring(msg))
    assert.truthy(msg:find("^tls 127%.0%.0%.1:" .. port .. ": "), msg)
    if code == "tls" then
      assert.truthy(msg:find("^tls 127%.0%.0%.1:" .. port .. ": handshake failed: "), msg)
    end
  end

  it("is refused without a client certificate", function()
    local status, msg, code, conn = handshake(s_server.port, opts())
    assert_refused(s_server.port, status, msg, code)
    if conn then conn:close() end
  end)

  it("is accepted with cert_file and key_file", function()
    local status, msg, code, conn = handshake(s_server.port,
      opts({ cert_file = certs:pem("client"), key_file = certs:key("client") }))
    assert.are.equal("success", status, tostring(msg) .. " " .. tostring(code))
    exchange_rev(conn, "client certificate accepted")
    exchange_rev(conn, "again")
    conn:close()
  end)

  it("presents the certificate the server then sees", function()
    local status, msg, code, conn = handshake(info.port,
      opts({ cert_file = certs:pem("client"), key_file = certs:key("client") }))
    assert.are.equal("success", status, tostring(msg) .. " " .. tostring(code))
    local line = assert(h.read_line(conn, 10000))
    assert.truthy(line:find("client=sluice_test_client", 1, true), line)
    assert.is_true(h.write_all(conn, "echo\n"))
    assert.are.equal("echo", h.read_line(conn, 10000))
    conn:close()
    -- and without one, this server refuses too
    status, msg, code, conn = handshake(info.port, opts())
    assert_refused(info.port, status, msg, code)
    if conn then conn:close() end
  end)

  it("works with an encrypted key and its key_password", function()
    local status, msg, code, conn = handshake(s_server.port, opts({
      cert_file = certs:pem("client"), key_file = certs:path("client-encrypted.key"),
      key_password = certs.password }))
    assert.are.equal("success", status, tostring(msg) .. " " .. tostring(code))
    exchange_rev(conn, "encrypted key")
    conn:close()
  end)

  -- Opens with the client certificate and the key file `name` (with `password`):
  -- a "tls" failure naming the key file; returns its message.
  local function key_fails(name, password)
    local key = certs:path(name)
    local status, msg, code, conn = handshake(s_server.port, opts({
      cert_file = certs:pem("client"), key_file = key, key_password = password }))
    if conn then conn:close() end
    assert.are.equal("failure", status)
    assert.are.equal("tls", code, msg)
    assert.truthy(msg:find(key, 1, true), msg)
    return msg
  end

  it("fails clearly with a wrong key_password", function()
    local msg = key_fails("client-encrypted.key", "not the password")
    assert.truthy(msg:find("key_password", 1, true), msg)
  end)

  -- A wrong password decrypts to noise; mbedTLS takes noise that opens like a key for a
  -- key and fails to parse it: still the password's fault, and said so.
  it("fails clearly with a wrong key_password that decrypts to a lookalike", function()
    local msg = key_fails("client-lookalike.key", "not the password")
    assert.truthy(msg:find(": wrong key_password$"), msg)
  end)

  it("says so when this mbedTLS cannot decrypt a key's encryption, not that the right password is wrong", function()
    local key = certs:path("client-pkcs8.key")
    local status, msg, code, conn = handshake(s_server.port, opts({
      cert_file = certs:pem("client"), key_file = key, key_password = certs.password }))
    if status ~= "success" then   -- an mbedTLS that reads PKCS#8 with AES connects
      assert.are.equal("tls", code, msg)
      assert.are.equal(("tls 127.0.0.1:%d: cannot load key_file %s: this mbedTLS cannot decrypt its "
        .. "encryption; re-encrypt it with: openssl pkey -traditional -aes256"):format(s_server.port, key), msg)
    end
    if conn then conn:close() end
  end)

  it("fails clearly when an encrypted key has no key_password", function()
    local msg = key_fails("client-encrypted.key", nil)
    assert.truthy(msg:find("key_password", 1, true), msg)
  end)

  it("fails clearly when cert_file or key_file cannot be read", function()
    local missing_cert = certs:path("no-such-client.pem")
    local status, msg, code, conn = handshake(s_server.port, opts({
      cert_file = missing_cert, key_file = certs:key("client") }))
    assert.are.equal("failure", status)
    assert.are.equal("tls", code, msg)
    assert.truthy(msg:find("cert_file", 1, true), msg)
    assert.truthy(msg:find(missing_cert, 1, true), msg)
    if conn then conn:close() end
    local missing_key = certs:path("no-such-client.key")
    status, msg, code, conn = handshake(s_server.port, opts({
      cert_file = certs:pem("client"), key_file = missing_key }))
    assert.are.equal("failure", status)
    assert.are.equal("tls", code, msg)
    assert.truthy(msg:find("key_file", 1, true), msg)
    assert.truthy(msg:find(missing_key, 1, true), msg)
    if conn then conn:close() end
  end)

  it("fails when the key does not belong to the certificate", function()
    local status, msg, code, conn = handshake(s_server.port, opts({
      cert_file = certs:pem("client"), key_file = certs:key("good") }))
    assert.are.same({ "failure", "tls" }, { status, code })   -- caught before the handshake, naming both files
    assert.are.equal(("tls 127.0.0.1:%d: cannot load key_file %s: it does not belong to cert_file %s"):format(
      s_server.port, certs:key("good"), certs:pem("client")), msg)
    if conn then conn:close() end
  end)

  it("needs cert_file and key_file together", function()
    for _, o in ipairs({ { cert_file = "x.pem" }, { key_file = "x.key" } }) do
      local status, msg, code, conn = handshake(s_server.port, opts(o))
      assert.are.equal("failure", status)
      assert.are.equal("invalid", code, msg)   -- no connection could use these options
      assert.truthy(msg:find("cert_file", 1, true) and msg:find("key_file", 1, true), msg)
      if conn then conn:close() end
    end
  end)

  it("says how many certificates of a cert_file could not be parsed", function()
    local bad = h.temp_dir() .. "/client-and-junk.pem"
    h.write_file(bad, h.read_file(certs:pem("client")) .. "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    local status, msg, code, conn = handshake(s_server.port, opts({ cert_file = bad, key_file = certs:key("client") }))
    assert.are.same({ "failure", "tls" }, { status, code })
    assert.matches("cannot load cert_file " .. bad .. ": 1 of its certificates could not be parsed", msg, 1, true)
    if conn then conn:close() end
  end)

  it("refuses options that would be ignored or could never work: nil, message, invalid", function()
    assert.are.same({ nil, "tls: key_password without key_file", "invalid" },
      { net.open_tcp("127.0.0.1", s_server.port, opts({ key_password = "x" })) })
    assert.are.same({ nil, "tls: server_name is longer than 253 bytes", "invalid" },
      { net.open_tcp("127.0.0.1", s_server.port, opts({ server_name = ("a"):rep(254) })) })
    assert.are.same({ nil, "tls: server_name is a client's (the name it checks)", "invalid" },
      { net.create_server("127.0.0.1", 0, { ssl = { cert_file = certs:pem("good"), key_file = certs:key("good"),
        server_name = "sluice-v4.test" } }) })
  end)
end)
