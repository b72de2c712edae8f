-- eof_spec: an orderly close by the peer: the data comes first, then read() returns nil
-- (no message) for good, and only then is the status "failure", "closed", "closed".
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

describe("end of stream", function()
  after_each(function()
    h.stop_all()
  end)

  it("delivers the data, then nil, then the closed status", function()
    local size = 100000
    local peer = h.start_peer("source", tostring(size))
    local conn = assert(net.open_tcp("127.0.0.1", peer.port))
    assert.are.equal("success", conn:wait_until_connected(10000))
    -- Wait until everything has arrived (the peer has closed by then, or soon will).
    assert.is_true(h.wait_for(function() return conn:available() == size end, 10000))
    h.sleep(100)
    -- Unread data: the connection still reports success.
    assert.are.equal("success", (conn:get_status()))
    assert.are.equal("success", (conn:wait_until_connected(0)))
    local data = assert(conn:read(size + 1000))
    assert.are.equal(size, #data)
    assert.are.equal(h.pattern(0, size), data)
    -- Then nil, without a message.
    local s, msg, code = conn:read(10)
    if s == "" then
      -- the FIN may still be on its way
      assert.is_true(h.wait_for(function()
        s, msg, code = conn:read(10)
        return s ~= ""
      end, 10000))
    end
    assert.is_nil(s)
    assert.is_nil(msg)
    assert.is_nil(code)
    assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
    assert.are.same({ "failure", "closed", "closed" }, { conn:wait_until_connected(100) })
    assert.are.equal(0, conn:available())
    conn:close()
  end)

  it("keeps returning nil after the end", function()
    local peer = h.start_peer("source", "10")
    local conn = assert(net.open_tcp("127.0.0.1", peer.port))
    local data, msg, code = h.read_all(conn, nil, 10000)
    assert.are.equal(h.pattern(0, 10), data)
    assert.is_nil(msg, code)
    for _ = 1, 5 do
      local s, m, c = conn:read(1)
      assert.is_nil(s)
      assert.is_nil(m)
      assert.is_nil(c)
      local big = conn:read(2 ^ 40 // 1)
      assert.is_nil(big)
    end
    assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
    conn:close()
    -- after our own close, the closed answers of the contract
    assert.are.same({ nil, "closed", "closed" }, { conn:read(1) })
  end)

  it("reports a peer that closes at once as closed", function()
    local peer = h.start_peer("close")
    local conn = assert(net.open_tcp("127.0.0.1", peer.port))
    local s, msg, code
    assert.is_true(h.wait_for(function()
      s, msg, code = conn:read(100)
      return s ~= ""
    end, 10000))
    assert.is_nil(s)
    assert.is_nil(msg)
    assert.is_nil(code)
    assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
    assert.is_nil(conn:read(1))
    conn:close()
  end)

  it("delivers a peer-closed stream of exactly one byte", function()
    local peer = h.start_peer("source", "1")
    local conn = assert(net.open_tcp("127.0.0.1", peer.port))
    local data, msg = h.read_all(conn, nil, 10000)
    assert.are.equal(h.pattern(0, 1), data)
    assert.is_nil(msg)
    conn:close()
  end)

  it("reports the end of an empty stream of a source peer", function()
    local peer = h.start_peer("source", "0")
    local conn = assert(net.open_tcp("127.0.0.1", peer.port))
    local data, msg = h.read_all(conn, nil, 10000)
    assert.are.equal("", data)
    assert.is_nil(msg)
    assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
    conn:close()
  end)
end)
