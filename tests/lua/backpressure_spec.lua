-- backpressure_spec: a reader that falls behind costs bounded memory and loses nothing:
-- while the test does not read, the engine holds at most the 1 MiB receive cap (plus one
-- chunk) for the connection; afterwards every byte of the source pattern arrives. The
-- default cap grows (to 64 MiB) only for a reader that empties a buffer that had filled.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

local CAP = h.MiB          -- default per-direction buffer cap
local GROW_MAX = 64 * h.MiB  -- how far the default cap grows for a reader that keeps up
local CHUNK_SLACK = 16 * h.KiB

describe("backpressure", function()
  after_each(function()
    h.stop_all()
  end)

  it("bounds the receive buffer of a slow reader and loses nothing", function()
    local total = h.scaled(64 * h.MiB)
    local base = h.wait_idle().buffer_bytes
    local peer = h.start_peer("source", tostring(total))
    local conn = assert(net.open_tcp("127.0.0.1", peer.port))
    assert.are.equal("success", conn:wait_until_connected(10000))

    -- Don't read for a while; watch the memory the engine holds.
    local max_held, max_avail = 0, 0
    local stop = net.clock() + 1.0
    while net.clock() < stop do
      max_held = math.max(max_held, net.get_stats().buffer_bytes - base)
      max_avail = math.max(max_avail, conn:available())
      net.wait(10)
    end
    -- it did fill up (the peer sends far more than the cap)...
    assert.is_true(max_avail >= CAP // 2, "receive buffer never filled: " .. max_avail)
    -- ...but never past the cap
    assert.is_true(max_avail <= CAP, "available() above the cap: " .. max_avail)
    assert.is_true(max_held <= CAP + CHUNK_SLACK,
      string.format("engine held %d bytes for one slow connection", max_held))
    assert.are.equal("success", (conn:get_status()))

    -- Now read everything, in odd sizes, and check every byte.
    local check = h.pattern_checker()
    local got, msg, code = h.read_all(conn, function(s)
      local ok, err = check:feed(s)
      assert(ok, err)
      max_held = math.max(max_held, net.get_stats().buffer_bytes - base)
    end, 120000, nil)
    assert.is_nil(msg, code)
    assert.are.equal(total, got)
    assert.are.equal(total, check.offset)
    -- emptying what had filled lets the default cap grow, never past its maximum
    assert.is_true(max_held <= GROW_MAX + CHUNK_SLACK,
      string.format("engine held %d bytes while reading", max_held))
    assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
    conn:close()
  end)

  it("reads in every size without losing or repeating a byte", function()
    local total = h.scaled(8 * h.MiB)
    local peer = h.start_peer("source", tostring(total))
    local conn = assert(net.open_tcp("127.0.0.1", peer.port))
    local check = h.pattern_checker()
    local sizes = { 1, 2, 3, 7, 64, 1000, 4096, 4097, 65535, 65536, 100003, 2 ^ 40 // 1 }
    local deadline = net.clock() + 120
    local k = 0
    while true do
      k = k % #sizes + 1
      local s, msg, code = conn:read(sizes[k])
      if s == nil then
        assert.is_nil(msg, code)
        break
      end
      assert.is_true(#s <= sizes[k])
      if #s == 0 then
        assert(net.clock() < deadline, "timed out at " .. check.offset)
        net.wait(20)
      else
        local ok, err = check:feed(s)
        assert(ok, err)
      end
    end
    assert.are.equal(total, check.offset)
    conn:close()
  end)

  it("refills after being drained below the low-water mark", function()
    -- Several fill / drain cycles: reading re-arms the socket each time.
    local total = h.scaled(16 * h.MiB)
    local peer = h.start_peer("source", tostring(total))
    -- a cap set by hand stays: drained empty time after time, the default would grow
    local conn = assert(net.open_tcp("127.0.0.1", peer.port, { buffer_size = CAP }))
    local check = h.pattern_checker()
    local deadline = net.clock() + 120
    while check.offset < total do
      -- wait until the buffer is mostly full (or the stream has ended)
      h.wait_for(function()
        return conn:available() >= CAP * 3 // 4 or conn:available() + check.offset >= total
      end, 10000)
      assert.is_true(conn:available() <= CAP)
      -- drain it completely
      while conn:available() > 0 do
        local s = assert(conn:read(conn:available()))
        local ok, err = check:feed(s)
        assert(ok, err)
      end
      assert(net.clock() < deadline, "timed out at " .. check.offset)
    end
    assert.are.equal(total, check.offset)
    local extra
    assert.is_true(h.wait_for(function()
      local s = conn:read(1)
      if s and #s > 0 then extra = s end
      return s ~= ""
    end, 10000))
    assert.is_nil(extra, "data after the end of the stream")
    conn:close()
  end)

  -- Reads all there is once per frame, as an editor's loop does: the default cap doubles
  -- each time such a read empties a buffer that had been full for 5 ms or more, so the
  -- frame rate stops bounding the throughput at 1 MiB per frame; a cap set by hand stays.
  -- waiting(): the bytes waiting at a frame's start. Returns the most that waited, and
  -- how many frames read empty a buffer that had filled.
  local function read_frames(read, waiting, check)
    local deadline, biggest, emptied = net.clock() + 120, 0, 0
    while true do
      local w = waiting()
      biggest = math.max(biggest, w)
      local s, msg, code = read(256 * h.KiB)
      while s and #s > 0 do
        assert(check:feed(s))
        s, msg, code = read(256 * h.KiB)
      end
      if s == nil then
        assert.is_nil(msg, code)
        return biggest, emptied
      end
      if w >= CAP then emptied = emptied + 1 end
      assert(net.clock() < deadline, "timed out at " .. check.offset)
      h.sleep(30)
    end
  end

  -- (under ThreadSanitizer the reader copies slower than the I/O thread fills: it may
  -- never empty the buffer before the stream ends, and the buffer rightly stays)
  local function assert_grew(biggest, emptied)
    assert.is_true(emptied >= 2 or h.scale() < 1, "the reader emptied a full buffer " .. emptied .. " times")
    assert.is_true(emptied < 2 or biggest > CAP, "never more than the first cap waiting: " .. biggest)
  end

  local function frame_paced(opts)
    local total = h.scaled(48 * h.MiB, 24 * h.MiB)
    local peer = h.start_peer("source", tostring(total))
    local base = h.wait_idle().buffer_bytes
    local conn = assert(net.open_tcp("127.0.0.1", peer.port, opts))
    local check, held = h.pattern_checker(), 0
    local biggest, emptied = read_frames(function(n) return conn:read(n) end, function()
      held = math.max(held, net.get_stats().buffer_bytes - base)
      return conn:available()
    end, check)
    assert.are.equal(total, check.offset)
    conn:close()
    return biggest, emptied, held
  end

  it("grows the default receive buffer for a reader that empties it once per frame", function()
    local biggest, emptied, held = frame_paced(nil)
    assert_grew(biggest, emptied)
    assert.is_true(biggest <= GROW_MAX and held <= GROW_MAX + CHUNK_SLACK,
      string.format("%d waiting, %d held", biggest, held))
    local biggest_fixed, _, held_fixed = frame_paced({ buffer_size = CAP })
    assert.is_true(biggest_fixed <= CAP and held_fixed <= CAP + CHUNK_SLACK,
      string.format("fixed cap: %d waiting, %d held", biggest_fixed, held_fixed))
  end)

  -- An HTTP body's buffer grows the same way.
  local function frame_paced_body(opts)
    local total = h.scaled(48 * h.MiB, 24 * h.MiB)
    local peer = h.start_peer("http", tostring(total))
    opts.url, opts.max_size, opts.proxy = "http://127.0.0.1:" .. peer.port .. "/bulk", total, false
    local req = assert(net.http_request(opts))
    local check = h.pattern_checker()
    local biggest, emptied = read_frames(function(n) return req:read(n) end,
      function() return req:get_progress() - check.offset end, check)
    assert.are.equal(total, check.offset)
    req:close()
    return biggest, emptied
  end

  it("grows the default body buffer of a request read once per frame", function()
    local biggest, emptied = frame_paced_body({})
    assert_grew(biggest, emptied)
    assert.is_true(biggest <= GROW_MAX, "largest wait: " .. biggest)
    biggest = frame_paced_body({ buffer_size = CAP })
    -- (received counts bytes still on their way from the connection into the buffer)
    assert.is_true(biggest <= CAP + 4 * CHUNK_SLACK, "fixed cap: " .. biggest .. " waiting")
  end)

  it("grows the default send buffer for a writer the I/O thread keeps emptying", function()
    local total = h.scaled(16 * h.MiB, 8 * h.MiB)
    local payload = h.random_bytes(4 * h.MiB)
    local peer = h.start_peer("sink")
    local conn = assert(net.open_tcp("127.0.0.1", peer.port))
    local sent, biggest, hash = 0, 0, nil
    local deadline = net.clock() + 120
    while sent < total do
      local off = sent % #payload
      local piece = payload:sub(off + 1, math.min(#payload, off + total - sent))
      local n = assert(conn:write(piece))
      biggest = math.max(biggest, n)
      hash = h.fnv1a(n == #piece and piece or piece:sub(1, n), hash)
      sent = sent + n
      assert(net.clock() < deadline, "timed out at " .. sent)
      h.sleep(30)
    end
    conn:close()
    assert.is_true(biggest > CAP and biggest <= GROW_MAX, "largest write taken: " .. biggest)
    local sinks = peer:wait_sinks(1, 60000)
    assert.truthy(sinks, "the sink never saw the end of the stream")
    assert.are.equal(total, sinks[1].bytes)
    assert.are.equal(h.hex64(hash), sinks[1].hash)
  end)

  it("pushes back on a writer whose peer does not keep up, and loses nothing", function()
    -- An echo peer stops reading once we stop reading its echo: our receive buffer
    -- fills, then the kernel buffers, then our send buffer; write must then accept
    -- less (partial counts, then 0) instead of queueing without bound.
    local peer = h.start_peer("echo")
    local base = h.wait_idle().buffer_bytes
    local conn = assert(net.open_tcp("127.0.0.1", peer.port, { buffer_size = CAP }))
    assert.are.equal("success", conn:wait_until_connected(10000))
    local pool = h.random_bytes(64 * h.KiB)
    local check = h.echo_checker()
    local accepted, short = 0, false
    local deadline = net.clock() + 60
    while not short do
      local n = assert(conn:write(pool))
      if n > 0 then check:push(n == #pool and pool or pool:sub(1, n)) end
      accepted = accepted + n
      short = n < #pool
      assert(net.clock() < deadline, "write never pushed back after " .. accepted .. " bytes")
      if accepted > 256 * h.MiB then error("write accepted 256 MiB without backpressure") end
    end
    -- Give the I/O thread time to move what it can, then check nothing grew past the caps.
    h.sleep(300)
    assert.is_true(conn:get_pending_writes() <= CAP, "pending " .. conn:get_pending_writes())
    assert.is_true(conn:available() <= CAP, "available " .. conn:available())
    local held = net.get_stats().buffer_bytes - base
    assert.is_true(held <= 2 * (CAP + CHUNK_SLACK), "engine holds " .. held .. " bytes")
    -- Read it all back: every accepted byte, in order.
    while check.pending > 0 do
      local s = assert(conn:read(256 * h.KiB))
      if #s > 0 then
        local ok, err = check:feed(s)
        assert(ok, err)
      else
        assert(net.clock() < deadline, "echo stalled with " .. check.pending .. " bytes pending")
        net.wait(20)
      end
    end
    assert.are.equal(accepted, check.received)
    conn:close()
  end)

  it("reads nothing from connections not yet accepted, and loses nothing of them", function()
    -- clients that write to a server whose owner has not accepted them are held back
    -- by the kernel's flow control, not buffered in the engine, a MiB each
    local base = h.wait_idle().buffer_bytes
    local srv = assert(net.create_server("127.0.0.1", 0))
    local clients, sent, block = {}, 0, string.rep("q", 16 * h.KiB)
    for i = 1, 4 do clients[i] = assert(net.open_tcp("127.0.0.1", srv:get_port(), { buffer_size = 16 * h.KiB })) end
    local max_held, stop = 0, net.clock() + 1
    while net.clock() < stop do
      for _, c in ipairs(clients) do sent = sent + assert(c:write(block)) end
      max_held = math.max(max_held, net.get_stats().buffer_bytes - base)
      net.wait(5)
    end
    assert.is_true(sent > 4 * 16 * h.KiB, "the clients wrote only " .. sent .. " bytes")
    assert.is_true(max_held < CAP, string.format("the engine held %d bytes for 4 queued connections", max_held))
    for _, c in ipairs(clients) do c:close() end   -- delivers what it holds, then closes
    local got, ended, conns, deadline = 0, 0, {}, net.clock() + 30
    while ended < 4 do
      local a = srv:accept()
      if a then conns[#conns + 1] = a end
      for i, a2 in pairs(conns) do
        local d = a2:read(256 * h.KiB)
        if d == nil then
          ended, conns[i] = ended + 1, nil
          a2:close()
        elseif d ~= "" then
          assert.is_nil(d:find("[^q]"), "bytes other than the ones written")
          got = got + #d
        end
      end
      assert(net.clock() < deadline, "only " .. got .. " of " .. sent .. " bytes arrived")
      net.wait(5)
    end
    assert.are.equal(sent, got)
    srv:close()
  end)
end)
