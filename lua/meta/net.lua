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

---@class net.tls_options
---@field verify? boolean check the certificate chain and name (default true)
---@field server_name? string SNI and the name checked (default: the host given; none is sent for IP literals, which are checked against the certificate's IP addresses)
---@field ca_file? string PEM bundle of trusted CAs (default: `net.get_cacert_path()`)
---@field ca_path? string directory of PEM CA certificates
---@field cert_file? string client certificate (PEM), with key_file
---@field key_file? string client private key (PEM)
---@field key_password? string password of an encrypted key_file
---@field alpn? string[] protocols to offer, e.g. {"h2", "http/1.1"}
---@field min_version? "tls1.2"|"tls1.3" lowest version accepted (default "tls1.2"; "tls1.3" needs `net.tls13`)

---@class net.conn_options
---@field ssl? boolean|net.tls_options

---Opens a TCP connection and returns it at once; resolving, connecting and the
---TLS handshake go on in the background. `addr_or_host` may be an address
---still resolving. Every resolved address is tried in turn until one connects.
---Bytes written while `"waiting"` are sent once connected (encrypted, for TLS).
---`ssl`: `true` for TLS with verification, a TLS options table, or a
---connection options table `{ssl = ...}`. Unknown options raise.
---Verification fails closed: with no CA bundle at all the connection fails
---with a message saying to call `net.set_cacert_path` or pass `{verify = false}`.
---TLS failures name their reason: `tls 1.2.3.4:443: certificate not trusted
---(expired | not yet valid | wrong name: ... | self-signed | unknown CA)` with
---code "tls-verify", `tls ...: handshake failed: ...` with code "tls".
---@param addr_or_host string|net.address
---@param port integer 1..65535
---@param ssl? boolean|net.tls_options|net.conn_options
---@return net.tcp|nil conn
---@return string? message
---@return net.code? code
function net.open_tcp(addr_or_host, port, ssl) end

---Makes later verifying TLS connections trust the PEM bundle (file or
---directory) at `path`; connections already open keep theirs. nil restores
---the default search.
---@param path string|nil
function net.set_cacert_path(path) end

---The CA bundle verifying connections use: the one set with
---`set_cacert_path`, else `SSL_CERT_FILE` / `SSL_CERT_DIR` (as OpenSSL-based
---programs honour them), else the first system bundle found, else nil.
---@return string|nil
function net.get_cacert_path() end

---true when the mbedTLS in use speaks TLS 1.3.
---@type boolean
net.tls13 = false

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

---`"waiting"` while resolving, connecting or handshaking, `"success"` once
---established, `"failure", message, code` after an error, and
---`"failure", "closed", "closed"` after the peer's orderly close (or after
---`close()`). Either kind of end shows only once every byte received before
---it has been read, so a loop that stops at `"failure"` loses nothing.
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

---Upgrades a plain connection to TLS (after a protocol's STARTTLS exchange).
---Bytes written before the call go out in plain text first; the status is
---`"waiting"` until the handshake ends. `nil, message, code` if the connection
---is not established or already uses TLS.
---@param options? net.tls_options
---@return true|nil ok
---@return string? message
---@return net.code? code
function tcp:starttls(options) end

---@class net.tls_info
---@field version string "TLSv1.2"
---@field cipher string
---@field alpn? string the protocol agreed, if any
---@field peer_subject string the server certificate's subject, "" if none

---TLS details once the handshake is done, else nil.
---@return net.tls_info|nil
function tcp:get_tls_info() end

---The peer's address once connected, else nil.
---@return net.address|nil
function tcp:get_address() end

---Closes the connection; idempotent, never blocks. Bytes already accepted are
---still delivered in the background (for at most 5 s), then TLS sends
---close_notify and the socket closes.
---Afterwards `read`/`write` give `nil, "closed", "closed"`.
function tcp:close() end

return net
