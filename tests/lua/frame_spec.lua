-- frame_spec: framed messages on stream connections: read_packet / write_packet
-- (4-byte big-endian length) and read_lsp / write_lsp (JSON-RPC base protocol).
-- A Python peer (tests/tools/frame_peer.py) sends streams cut at every byte
-- boundary and hostile frames; a Lua language-server stub echoes requests over TCP
-- and a Unix socket; packets go through TLS; a message larger than the receive
-- buffer is gathered; a full send buffer takes nothing.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local h = require "helpers"

local function packet(s)
  return string.pack(">I4", #s) .. s
end

local function lsp(body, header)
  return (header or "Content-Length: %d\r\n\r\n"):format(#body) .. body
end

-- Start frame_peer.py MODE with `bytes`; returns the peer and a connection to it.
local function peer_with(mode, bytes, opts)
  opts = opts or {}
  local file = os.tmpname()
  local f = assert(io.open(file, "wb"))
  f:write(bytes)
  f:close()
  local args = { h.shell_quote(h.python), h.shell_quote(h.tools .. "frame_peer.py") }
  if opts.unix then args[#args + 1] = "--unix " .. h.shell_quote(opts.unix) end
  args[#args + 1] = mode
  args[#args + 1] = h.shell_quote(file)
  local peer = h.start_server("frame_peer.py " .. mode, table.concat(args, " "), function(out)
    local line = out:match("^(%d+)\n")
    return line and math.tointeger(tonumber(line))
  end)
  local conn
  if opts.unix then conn = assert(net.open_unix(opts.unix))
  else conn = assert(net.open_tcp("127.0.0.1", peer.port, opts.conn)) end
  assert.are.equal("success", h.wait_status(conn))
  return peer, conn, file
end

-- Calls read(conn) until it gives something other than false; returns all it gave.
local function next_message(conn, read, ...)
  local args = table.pack(...)
  local r = h.wait_for(function()
    local got = table.pack(read(conn, table.unpack(args, 1, args.n)))
    if got[1] ~= false then return got end
  end, 10000, 2)
  assert(r, "no message within 10 s")
  return table.unpack(r, 1, r.n)
end

-- Every message until the end of the stream, checked against `want` (repeated).
local function read_all_messages(conn, read, want)
  local i, count = 0, 0
  while true do
    local msg, err, code = next_message(conn, read)
    if msg == nil then
      assert.is_nil(err, tostring(err) .. " " .. tostring(code))
      return count
    end
    assert.are.equal(want[i % #want + 1], msg)
    i, count = i + 1, count + 1
  end
end

describe("framing", function()
  after_each(function()
    h.stop_all()
    collectgarbage()
  end)

  it("reads packets cut at every byte boundary", function()
    local msgs = { "", "hi", "\0\1\2" .. string.rep("\255", 37) }
    local stream = packet(msgs[1]) .. packet(msgs[2]) .. packet(msgs[3])
    local _, conn = peer_with("split", stream)
    assert.are.equal(3 * (#stream - 1), read_all_messages(conn, conn.read_packet, msgs))
    assert.are.same({ "failure", "closed", "closed" }, { conn:get_status() })
    conn:close()
  end)

  it("reads LSP messages cut at every byte boundary over a Unix socket, any header case", function()
    local dir = h.temp_dir()
    local msgs = { "{}", '{"id":1,"x":"\xc3\xa9"}', "" }
    local stream = lsp(msgs[1])
      .. lsp(msgs[2], "content-type: application/vscode-jsonrpc; charset=utf-8\r\ncontent-LENGTH:%d\r\n\r\n")
      .. "\r\n" .. lsp(msgs[3], "CONTENT-LENGTH:\t%d  \r\n\r\n")   -- a stray blank line first
    local _, conn = peer_with("split", stream, { unix = dir .. "/lsp.sock" })
    assert.are.equal(3 * (#stream - 1), read_all_messages(conn, conn.read_lsp, msgs))
    conn:close()
    os.execute("rm -rf " .. h.shell_quote(dir))
  end)

  it("reads packets sent one byte at a time", function()
    local msgs = { "one", string.rep("x", 100) }
    local _, conn = peer_with("trickle", packet(msgs[1]) .. packet(msgs[2]))
    assert.are.equal(2, read_all_messages(conn, conn.read_packet, msgs))
    conn:close()
  end)

  -- Hostile or broken streams: each fails the connection with this code and a message
  -- matching the pattern, and allocates nothing of the size it declares.
  local hostile = {
    { "a 4 GiB packet", "packet", "\255\255\255\255abc", "limit", "exceeds max 524288" },
    { "a packet over the max given", "packet", packet(string.rep("x", 11)), "limit", "exceeds max 10", 10 },
    { "a header without Content-Length", "lsp", "Content-Type: x\r\n\r\n{}", "protocol", "no Content%-Length" },
    { "a Content-Length that is no number", "lsp", "Content-Length: 1x\r\n\r\nab", "protocol", "not a number" },
    { "a negative Content-Length", "lsp", "Content-Length: -1\r\n\r\n", "protocol", "not a number" },
    { "a huge Content-Length", "lsp", "Content-Length: 99999999999999999999\r\n\r\n", "protocol", "too large" },
    { "a message over the max given", "lsp", lsp(string.rep("x", 100)), "limit", "exceeds max 50", 50 },
    { "a header that never ends", "lsp", "X-Junk: " .. string.rep("x", 9000), "protocol", "longer than 8192" },
    { "conflicting lengths", "lsp", "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", "protocol", "conflicting" },
    { "a bare CR", "lsp", "Content-Length: 1\rX\r\n\r\nx", "protocol", "CR without LF" },
    { "a header line without a colon", "lsp", "Content-Length 1\r\n\r\nx", "protocol", "bad character" },
    { "JSON without a header", "lsp", '{"jsonrpc":"2.0"}\r\n\r\n', "protocol", "bad character" },
    { "a packet cut short", "packet", "\0\0\0\10abc", "protocol", "ended inside a message %(7 bytes" },
    { "a message cut short", "lsp", "Content-Length: 10\r\n\r\nabc", "protocol", "ended inside a message" },
    -- larger than the receive buffer: gathered outside it, the cut is no clean close either
    { "a large message cut short", "lsp", "Content-Length: 3145728\r\n\r\n" .. string.rep("x", 100000), "protocol",
      "ended inside a message %(100000 bytes" },
    { "a large packet cut short", "packet", "\0\48\0\0" .. string.rep("x", 100000), "protocol",
      "ended inside a message %(100000 bytes", 4 * 1024 * 1024 },
  }
  for _, case in ipairs(hostile) do
    local name, kind, bytes, code, pattern, max = table.unpack(case)
    it("fails the connection on " .. name, function()
      local _, conn = peer_with("raw", bytes)
      local before = net.get_stats().module_bytes
      local read = kind == "lsp" and conn.read_lsp or conn.read_packet
      local msg, err, c = next_message(conn, read, max)
      assert.is_nil(msg)
      assert.are.equal(code, c)
      assert.is_truthy(err:find(pattern), err)
      assert.is_true(net.get_stats().module_bytes < before + 1024 * 1024)   -- nothing of that size
      local status, serr, scode = conn:get_status()
      assert.are.same({ "failure", err, code }, { status, serr, scode })
      assert.are.same({ nil, err, code }, { read(conn) })   -- stays failed
      assert.are.same({ nil, err, code }, { conn:read(10) })
      conn:close()
    end)
  end

  it("gives nil at a clean end between messages", function()
    local _, conn = peer_with("raw", packet("hi") .. packet(""))
    assert.are.equal("hi", next_message(conn, conn.read_packet))
    assert.are.equal("", next_message(conn, conn.read_packet))
    assert.are.same({ nil }, { next_message(conn, conn.read_packet) })
    conn:close()
  end)

  it("gives nil at a clean end after blank lines that follow the last LSP message", function()
    local _, conn = peer_with("raw", lsp("{}") .. "\r\n\r\n")
    assert.are.equal("{}", next_message(conn, conn.read_lsp))
    assert.are.same({ nil }, { next_message(conn, conn.read_lsp) })
    conn:close()
    local _, cut = peer_with("raw", lsp("{}") .. "\r\n\r")   -- not a blank line: a cut
    assert.are.equal("{}", next_message(cut, cut.read_lsp))
    local msg, err, code = next_message(cut, cut.read_lsp)
    assert.is_nil(msg)
    assert.are.equal("protocol", code, err)
    cut:close()
  end)

  it("mixes with read_until and read at message boundaries", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local client, accepted = h.connect_pair(srv)
    assert(client:write("HELLO\n" .. packet("p1") .. lsp("l1") .. "tail"))
    assert.are.equal("HELLO\n", h.wait_for(function() local s = accepted:read_until("\n") return s ~= "" and s end))
    assert.are.equal("p1", next_message(accepted, accepted.read_packet))
    assert.are.equal("l1", next_message(accepted, accepted.read_lsp))
    assert.are.equal("tail", h.wait_for(function() local s = accepted:read(10) return s ~= "" and s end))
    client:close()
    accepted:close()
    srv:close()
  end)

  it("gathers a message larger than the receive buffer, and guards plain reads meanwhile", function()
    local srv = assert(net.create_server("127.0.0.1", 0, { buffer_size = 256 * 1024 }))
    local client, accepted = h.connect_pair(srv, nil, { buffer_size = 4 * h.MiB })
    local body = h.random_bytes(3 * h.MiB + 17)
    assert.is_true(client:write_lsp(body))
    assert.is_true(client:write_packet("after"))
    -- bytes must have arrived first: an empty buffer before that gathers nothing
    assert(h.wait_for(function() return accepted:available() > 0 end, 10000, 1), "nothing arrived")
    local first = h.wait_for(function()
      local m = accepted:read_lsp()
      if m == false and accepted:available() == 0 then return "waiting" end
      return m ~= false and m or nil
    end, 10000, 1)
    if first == "waiting" then   -- partly gathered: a plain read would tear it
      assert.has_error(function() accepted:read(1) end)
      assert.has_error(function() accepted:read_packet() end)
    end
    local got = first ~= "waiting" and first or next_message(accepted, accepted.read_lsp)
    assert.are.equal(#body, #got)
    assert.is_true(got == body)
    assert.are.equal("after", next_message(accepted, accepted.read_packet))
    client:close()
    accepted:close()
    srv:close()
  end)

  it("reads on past a full buffer for a message or line longer than half of it that fits", function()
    -- the buffer fills (it stops reading); after the first unit is taken, more than half
    -- of it is still the second one's start: its rest must come in all the same
    local srv = assert(net.create_server("127.0.0.1", 0))
    for _, case in ipairs({
      { write = "write_packet", read = function(c) return c:read_packet(h.MiB) end },
      { write = "write_lsp", read = function(c) return c:read_lsp() end },
      { line = true, read = function(c) local l = c:read_until("\n"); if l ~= "" then return l end return false end },
    }) do
      local client, accepted = h.connect_pair(srv)   -- 1 MiB buffers
      local one, two = h.random_bytes(200 * 1024), h.random_bytes(900 * 1024)
      if case.line then
        one, two = one:gsub("\n", "x") .. "\n", two:gsub("\n", "x") .. "\n"
        assert(h.write_all(accepted, one .. two))
      else
        for _, m in ipairs({ one, two }) do   -- all or nothing: again while the send buffer is short
          assert(h.wait_for(function() return accepted[case.write](accepted, m) end, 10000), "not sent")
        end
      end
      assert(h.wait_for(function() return client:available() >= h.MiB end, 10000), "the buffer did not fill")
      assert.is_true(next_message(client, case.read) == one)
      assert.is_true(next_message(client, case.read) == two)
      client:close()
      accepted:close()
    end
    srv:close()
  end)

  it("ends a message being gathered at shutdown('receive') as a clean end, the sending side intact", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local client, accepted = h.connect_pair(srv)
    assert(accepted:write("\0\48\0\0" .. string.rep("x", 100000)))   -- the start of a 3 MiB packet
    assert(h.wait_for(function()   -- every byte arrived and was gathered
      assert.is_false(client:read_packet(4 * h.MiB))
      return client:get_stats() == 100004 and client:available() == 0
    end, 10000))
    assert.is_true(client:shutdown("receive"))
    assert.are.same({ nil }, { client:read_packet(4 * h.MiB) })
    assert.are.equal("success", (client:get_status()))
    assert.are.equal(5, client:write("after"))   -- still sends
    assert.are.equal("after", h.read_n(accepted, 5, 10000))
    client:close()
    accepted:close()
    srv:close()
  end)

  it("write_packet takes the whole packet or nothing", function()
    h.need_hosts_file()
    local srv = assert(net.create_server("127.0.0.1", 0))
    -- the name answers after 200 ms: until then nothing leaves the send buffer
    local client = assert(net.open_tcp(net.resolve_address("sluice-slow.test"), srv:get_port(),
                                       { buffer_size = 64 * 1024 }))
    local chunk = string.rep("z", 16 * 1024)
    while assert(client:write(chunk)) > 0 do end
    local pending = client:get_pending_writes()
    assert.are.equal(64 * 1024, pending)
    assert.is_false(client:write_packet("x"))
    assert.is_false(client:write_lsp("{}"))
    assert.are.equal(pending, client:get_pending_writes())
    assert.are.equal("waiting", client:get_status())   -- so nothing could have drained
    client:close()
    assert.are.same({ nil, "closed", "closed" }, { client:write_packet("x") })
    srv:close()
  end)

  it("queues a message larger than the send buffer in parts, the same message passed again until true", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    for _, case in ipairs({
      { write = "write_packet", read = function(c) return c:read_packet(4 * h.MiB) end },
      { write = "write_lsp", read = function(c) return c:read_lsp() end },
    }) do
      local client, accepted = h.connect_pair(srv, nil, { buffer_size = 64 * 1024 })
      local big = h.random_bytes(3 * h.MiB)
      local pending, falses, got = true, 0, nil
      assert(h.wait_for(function()   -- the peer reads as the parts come
        if pending then
          -- an equal string made anew counts as the same message
          local r, err = client[case.write](client, falses % 2 == 0 and big or big:sub(1))
          assert(r ~= nil, err)
          if r then pending = false else falses = falses + 1 end
        end
        got = got or case.read(accepted) or nil
        return not pending and got
      end, 20000), "not sent")
      assert.is_true(falses > 0)
      assert.is_true(client[case.write](client, "after"))   -- the next message starts clean
      assert.is_true(got == big)
      assert.are.equal("after", next_message(accepted, case.read))
      client:close()
      accepted:close()
    end
    srv:close()
  end)

  it("raises on any other write while a large message is partly queued, and forgets it at close", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local client, accepted = h.connect_pair(srv, nil, { buffer_size = 64 * 1024 })
    local big = string.rep("b", 200 * 1024)
    assert.is_false(client:write_lsp(big))
    assert.has_error(function() client:write("x") end,
      "write: a write_lsp message is partly queued; call write_lsp with it again until it returns true")
    assert.has_error(function() client:write_lsp("other") end)
    assert.has_error(function() client:write_packet(big) end)
    assert.has_error(function() client:starttls() end)
    local queued = false
    local body = assert(h.wait_for(function()
      if not queued then
        queued = client:write_lsp(big)
        assert(queued ~= nil)
      end
      local m = accepted:read_lsp()
      return m ~= false and m
    end, 10000), "no message")
    assert.is_true(body == big)
    assert.is_true(client:write_lsp("{}"))
    assert.are.equal("{}", next_message(accepted, accepted.read_lsp))
    assert.is_false(client:write_packet(big))
    client:close()
    assert.are.same({ nil, "closed", "closed" }, { client:write_packet("x") })
    accepted:close()
    srv:close()
  end)

  it("carries packets through TLS", function()
    local server = h.start_tls_server("echo")
    local c = h.tls_certs()
    local conn = assert(net.open_tcp("localhost", server.port, { ca_file = c.ca }))
    assert.are.equal("success", h.wait_status(conn))
    local big = h.random_bytes(300 * 1024)
    assert.is_true(conn:write_packet("small"))
    assert.is_true(conn:write_packet(big))
    assert.are.equal("small", next_message(conn, conn.read_packet))
    assert.is_true(next_message(conn, conn.read_packet) == big)
    conn:close()
  end)

  -- A language-server stub: answers each request with its params as the result.
  local function lsp_stub(srv)
    local conns = {}
    return function()
      local c = srv:accept()
      if c then conns[#conns + 1] = c end
      for _, k in ipairs(conns) do
        local body = k:read_lsp()
        if body then
          local req = assert(net.json_decode(body))
          assert(k:write_lsp(assert(net.json_encode{ jsonrpc = "2.0", id = req.id, result = req.params })))
        end
      end
    end
  end

  local function echo_requests(client, step, n)
    for id = 1, n do
      local params = { text = string.rep("é", id), n = id, list = { 1.5, -id, net.json_null } }
      assert.is_true(client:write_lsp(assert(net.json_encode{ jsonrpc = "2.0", id = id, method = "echo", params = params })))
      local reply = h.wait_for(function()
        step()
        local m = client:read_lsp()
        return m ~= false and m
      end, 10000, 1)
      local r = assert(net.json_decode(reply))
      assert.are.equal(id, r.id)
      assert.are.same(params, r.result)
    end
  end

  it("talks to a language-server stub over TCP", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local client = assert(net.open_tcp("127.0.0.1", srv:get_port()))
    echo_requests(client, lsp_stub(srv), 30)
    client:close()
    srv:close()
  end)

  it("talks to a language-server stub over a Unix socket", function()
    local dir = h.temp_dir()
    local srv = assert(net.create_server{ unix = dir .. "/ls.sock" })
    local client = assert(net.open_unix(dir .. "/ls.sock"))
    echo_requests(client, lsp_stub(srv), 30)
    client:close()
    srv:close()
    os.execute("rm -rf " .. h.shell_quote(dir))
  end)

  it("checks its arguments", function()
    local srv = assert(net.create_server("127.0.0.1", 0))
    local client = assert(net.open_tcp("127.0.0.1", srv:get_port()))
    assert.has_error(function() client:read_packet(-1) end)
    assert.has_error(function() client:read_lsp("x") end)
    assert.has_error(function() client:write_packet({}) end)
    client:close()
    assert.are.same({ nil, "closed", "closed" }, { client:read_packet() })
    srv:close()
  end)
end)
