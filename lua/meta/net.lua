---@meta net
-- LuaLS definitions for `require "net"` (sluice). Add this folder to
-- `workspace.library` for completion and type checks; it is never loaded.
--
-- Every function returns at once. Only the `wait*` functions may block, and
-- only for the timeout they are given (milliseconds; -1 waits until done).
-- Wrong argument types or impossible values raise a Lua error; run-time
-- failures return `nil, message, code` (or the status `"failure", message, code`).
-- Codes: "closed", "refused", "reset", "timeout", "unreachable", "dns", "tls",
-- "tls-verify", "limit", "invalid", and "io" for any other system error.

---@class net
---@field _VERSION string
local net = {}

---@alias net.status "waiting"|"success"|"failure"
---@alias net.code "closed"|"refused"|"reset"|"timeout"|"unreachable"|"dns"|"tls"|"tls-verify"|"limit"|"invalid"|"io"

---Starts resolving `host` in the background and returns its address object.
---Numeric IPv4/IPv6 literals (also `"[::1]"`) are `"success"` at once.
---An empty host, one with a NUL byte or one longer than 253 bytes gives
---`nil, message, "invalid"`.
---@param host string
---@return net.address|nil address
---@return string? message
---@return net.code? code
function net.resolve_address(host) end

---Opens a TCP connection and returns it at once; resolving and connecting go
---on in the background. `addr_or_host` may be an address still resolving.
---Every resolved address is tried in turn until one connects.
---Bytes written while `"waiting"` are sent once connected.
---`ssl` (TLS) is not available in this build: a true value gives
---`nil, message, "tls"`.
---@param addr_or_host string|net.address
---@param port integer 1..65535
---@param ssl? boolean|table
---@return net.tcp|nil conn
---@return string? message
---@return net.code? code
function net.open_tcp(addr_or_host, port, ssl) end

---Monotonic time in seconds with microsecond resolution (for frame timing).
---@return number
function net.clock() end

---Blocks at most `timeout` ms until the engine publishes anything (data
---arrived, a state changed, a send buffer drained) since this Lua state's
---previous `net.wait`. Returns at once if something already happened.
---Useful as the sleep of a plain-Lua frame loop.
---@param timeout? integer milliseconds, default 0, -1 = until activity
---@return boolean activity true when woken by activity, false on timeout
function net.wait(timeout) end

---@class net.stats
---@field connections integer connection objects alive in the engine (including closing ones)
---@field addresses integer address objects alive
---@field buffer_bytes integer ring memory held by all connections
---@field chunks integer buffer chunks in use

---Process-wide counters, for diagnostics and leak checks.
---@return net.stats
function net.get_stats() end

---@class net.address
local address = {}

---@return net.status status
---@return string? message on failure
---@return net.code? code on failure ("dns", "limit")
function address:get_status() end

---Like `get_status`, after waiting at most `timeout` ms for the resolution.
---@param timeout? integer default 0, -1 = until done
---@return net.status status
---@return string? message
---@return net.code? code
function address:wait_until_resolved(timeout) end

---The first resolved address as text (`"127.0.0.1"`, `"::1"`), or nil until resolved.
---@return string|nil
function address:get_ip() end

---The name the address was made from; for a peer's address, its IP.
---@return string
function address:get_hostname() end

---@class net.tcp
local tcp = {}

---`"waiting"` while resolving or connecting, `"success"` once established,
---`"failure", message, code` after an error, and `"failure", "closed", "closed"`
---once the peer closed and every received byte was read (or after `close()`).
---@return net.status status
---@return string? message
---@return net.code? code
function tcp:get_status() end

---Like `get_status`, after waiting at most `timeout` ms for the connection.
---@param timeout? integer default 0, -1 = until done
---@return net.status status
---@return string? message
---@return net.code? code
function tcp:wait_until_connected(timeout) end

---Copies up to `#data` bytes into the send buffer (1 MiB per direction) and
---returns how many it took; 0 means full, try again later. Accepted bytes are
---sent in order in the background. `nil, message, code` once failed or closed.
---@param data string
---@return integer|nil accepted
---@return string? message
---@return net.code? code
function tcp:write(data) end

---Up to `max_len` bytes that have arrived; `""` when none yet; `nil` (no
---message) after the peer's orderly close once everything was read;
---`nil, message, code` after an error (bytes received before it come first).
---Never allocates more than what is available, whatever `max_len` is.
---@param max_len integer at least 1
---@return string|nil data
---@return string? message
---@return net.code? code
function tcp:read(max_len) end

---Bytes ready to `read` now.
---@return integer
function tcp:available() end

---Bytes accepted by `write` and not yet handed to the kernel.
---@return integer
function tcp:get_pending_writes() end

---Pending bytes after waiting at most `timeout` ms for them to reach the kernel.
---@param timeout? integer default 0, -1 = until drained or failed
---@return integer
function tcp:wait_until_drained(timeout) end

---The peer's address once connected, else nil.
---@return net.address|nil
function tcp:get_address() end

---Closes the connection; idempotent, never blocks. Bytes already accepted are
---still delivered in the background (for at most 5 s), then the socket closes.
---Afterwards `read`/`write` give `nil, "closed", "closed"`.
function tcp:close() end

return net
