---@meta net
-- LuaLS definitions for `require "net"` (sluice). Add this folder to
-- `workspace.library` for completion and type checks; it is never loaded.
--
-- Every function returns at once. Only the `wait*` functions may block, and
-- only for the timeout they are given (milliseconds; -1 waits until done).
-- One exception serves spinning loops: a loop that comes back to the same
-- objects (`read`, `get_status`, `receive`...) within 0.1 ms, finds nothing
-- four times over, and has lately been taken off its core (the cores are
-- short), naps in the call until the I/O thread next publishes, at most
-- 0.5 ms, so that it does not take the core the I/O thread needs. A frame
-- loop comes back a frame later and never naps.
-- Wrong argument types or impossible values raise a Lua error; run-time
-- failures return `nil, message, code` (or the status `"failure", message, code`).
-- Codes: "closed", "refused", "reset", "timeout", "unreachable", "dns", "tls",
-- "tls-verify", "limit" (a cap or the process's resources reached: buffers,
-- queues, descriptors, memory), "invalid" (options no connection could use:
-- a bad combination of TLS files, an empty path, a bind that failed; a
-- certificate file that cannot be read or parsed is "tls"), "protocol"
-- (a framed message the peer got wrong), "cancelled" (an HTTP request its
-- owner cancelled, a websocket closed before it opened), "proxy" (a proxy refused or broke its handshake), and
-- "io" for any other system error.

---@class net
---@field _VERSION string
local net = {}

---@alias net.status "waiting"|"success"|"failure"
---@alias net.code "closed"|"refused"|"reset"|"timeout"|"unreachable"|"dns"|"tls"|"tls-verify"|"limit"|"invalid"|"protocol"|"cancelled"|"proxy"|"io"

---Starts resolving `host` in the background and returns its address object.
---Numeric IPv4/IPv6 literals (also `"[::1]"`) are `"success"` at once.
---An empty host, one with a NUL byte or one longer than 253 bytes gives
---`nil, message, "invalid"`; so does one with `:` that is no IP address
---(`"host:80"`, or a scoped `"fe80::1%eth9"` whose zone this system lacks):
---no name holds a `:`, so no lookup is started.
---Names come from the hosts file first (`localhost` names are the loopback
---addresses), then from the system's resolver. The hosts file is indexed
---once per version of it: a lookup costs a `stat`, not a read through a long
---file, and an edit or a replacement counts from the next lookup.
---@param host string
---@return net.address|nil address
---@return string? message
---@return net.code? code
function net.resolve_address(host) end

---@class net.tls_options
---@field verify? boolean check the certificate chain and name (default true). A wildcard in a certificate stands for one label and never directly under a top-level domain (`*.example.org` names `a.example.org`; `*.org` names nothing), as browsers and OpenSSL match it
---@field server_name? string clients only: SNI and the name checked (default: the host given; none is sent for IP literals, which are checked against the certificate's IP addresses); at most 253 bytes, one trailing dot dropped
---@field ca_file? string PEM bundle of trusted CAs (default: `net.get_cacert_path()`)
---@field ca_path? string directory of PEM CA certificates; with ca_file, both are trusted
---@field cert_file? string client certificate (PEM), with key_file
---@field key_file? string client private key (PEM); one that does not belong to cert_file fails the load, naming both
---@field key_password? string password of an encrypted key_file (without key_file: `nil, message, "invalid"`). mbedTLS 2.28 cannot decrypt openssl 3's default PKCS#8 with AES: re-encrypt such a key with `openssl pkey -traditional -aes256`
---@field alpn? string[] protocols to offer, e.g. {"h2", "http/1.1"}
---@field min_version? "tls1.2"|"tls1.3" lowest version accepted (default "tls1.2"; "tls1.3" needs `net.tls13`)
---@field resume? boolean session resumption (default true): a client offers the session of its last verified handshake with the same server (same name, address and TLS options) and the server may skip the certificate and key exchange; a server issues session tickets. `false`: every handshake is a full one
---@field pkcs12? {path: string, password?: string} a PKCS#12 client certificate: mbedTLS cannot read one, so the open fails with `nil, message, "invalid"`, the message giving the command that converts it (`openssl pkcs12 -in FILE -out FILE.pem -nodes`; then use cert_file and key_file)

---@class net.conn_options
---@field ssl? boolean|net.tls_options
---@field connect_timeout? integer ms for resolving, connecting and the TLS handshake (default 30000, so a peer that never answers cannot hold a connection "waiting" for ever; 0: none); then `"failure", "connect ...: timed out after N ms (connect_timeout)", "timeout"` (`"tls handshake ...: timed out ..."` when the handshake took the time, `"... loading its TLS files"` when reading its certificate files did)
---@field idle_timeout? integer ms without a byte in or out once established; then `"failure", "recv ...: idle for N ms (idle_timeout)", "timeout"`. Time while this side does not read (its buffer full of unread bytes, or `pause_read`) does not count, nor time after the peer closed its side while nothing waits to be sent to it
---@field nodelay? boolean TCP_NODELAY (default false)
---@field keepalive? boolean|integer SO_KEEPALIVE: `true` after the system's idle time, or 1..86400 idle seconds before probes (Linux keeps at most 32767: more gets that)
---@field buffer_size? integer bytes buffered per direction (16 KiB..1 GiB), rounded up to a multiple of 16 KiB and fixed; by default 1 MiB, doubling up to 64 MiB each time a read empties a buffer that had been full for 5 ms or more (a frame loop that reads until `""` is not held to 1 MiB per frame)
---@field family? "inet"|"inet6" try only addresses of this family
---@field linger? integer ms `close()` keeps delivering (default 5000; 0: drop at once)
---@field resolver? net.resolver resolve a host name through this resolver (`net.create_resolver`) instead of the system's
---@field proxy? string tunnel through a proxy: `"http://[user:pass@]host[:port]"` (HTTP CONNECT, Basic auth; port 80 by default), `"socks5h://[user:pass@]host[:port]"` (SOCKS5, the proxy resolves the target's name), `"socks5://..."` (SOCKS5, the name is resolved here and its address sent; port 1080 by default). A malformed URL or another scheme raises an argument error. See `net.open_tcp`.

---Opens a TCP connection and returns it at once; resolving, connecting and the
---TLS handshake go on in the background. `addr_or_host` may be an address
---still resolving. Every resolved address is tried in turn until one connects.
---Bytes written while `"waiting"` are sent once connected (encrypted, for TLS).
---`ssl`: `true` for TLS with verification, a TLS options table, or a
---connection options table `{ssl = ...}`. A table holding no connection
---option is the TLS options table, so `{}` is TLS with verification (as in
---Pragtical's `net`). Unknown options raise.
---Verification fails closed: with no CA bundle at all the connection fails
---with a message saying to call `net.set_cacert_path` or pass `{verify = false}`.
---On Windows with no bundle set, the Windows ROOT store's certificates are the
---roots, and every chain also goes to the system's chain engine (which may
---fetch missing roots and intermediates, and knows the store's restrictions,
---off the caller's thread), which has the last word: `... checked against the
---Windows ROOT store and the system's chain engine: no chain to a trusted root`.
---TLS failures name their reason: `tls 1.2.3.4:443: certificate not trusted
---(expired | not yet valid | wrong name: ... | self-signed | unknown CA)` with
---code "tls-verify", `tls ...: handshake failed: ...` with code "tls".
---
---With `proxy`, the connection goes to the proxy (only its host is resolved
---here) and its handshake runs in the background before TLS; with http:// and
---socks5h:// the target's name goes to the proxy unresolved (no DNS lookup
---here), with socks5:// it is resolved here (`resolver` applies). TLS and
---`starttls` run end to end through the tunnel and verify the target's name;
---`connect_timeout` covers the whole. A proxy that refuses or answers badly
---fails the connection with code "proxy" and what it said: `proxy
---127.0.0.1:3128: CONNECT example.test:443 refused: 407 Proxy Authentication
---Required`; an unreachable proxy fails as any connect (`connect proxy
---127.0.0.1:3128: Connection refused`, "refused"). Through a proxy,
---`get_peer`/`get_address` give the proxy's address (the socket's other end)
---and `tostring(conn)` says `example.test:443 via proxy 127.0.0.1:3128`.
---Through a proxy the host must be an IP address or a host name (letters,
---digits, `-`, `_`, dots between labels), else nil, message, "invalid".
---No environment variable is read here.
---@param addr_or_host string|net.address
---@param port integer 1..65535
---@param ssl? boolean|net.tls_options|net.conn_options
---@return net.tcp|nil conn
---@return string? message
---@return net.code? code
function net.open_tcp(addr_or_host, port, ssl) end

---Opens a Unix domain socket connection (a local language server, another
---instance of the program): the same object and semantics as TCP. A path with
---no socket file fails with `"refused"`, as a closed port does; while the
---server's backlog is full the connection stays `"waiting"` (tried again 10 ms
---doubling to 200 ms), as a TCP one does, until `connect_timeout`.
---@param path string 1..107 bytes (another length returns `nil, message, "invalid"`; a NUL byte raises)
---@param options? net.conn_options
---@return net.tcp|nil conn
---@return string? message
---@return net.code? code
function net.open_unix(path, options) end

---@class net.server_options
---@field backlog? integer connections waiting for `accept`: the kernel holds this many, and the server's queue as many again (a power of two, 64 at least), where nothing is read from a connection until `accept` takes it (a TLS handshake and a websocket's upgrade run first) (default 128)
---@field reuseaddr? boolean SO_REUSEADDR (default true)
---@field ssl? {cert_file: string, key_file: string, key_password?: string, ca_file?: string, ca_path?: string, verify?: boolean, resume?: boolean, alpn?: string[], min_version?: "tls1.2"|"tls1.3"} accepted connections speak TLS (handshake on the I/O thread); the files are read off the caller's thread, and a missing or bad one fails the server a moment later (`get_status()` and `accept()`: `"tls: cannot load cert_file ..."`, code `"tls"`); `verify = true` requires client certificates signed by ca_file (or a CA in ca_path); `resume = false`: no session tickets; `alpn`: the protocols it agrees to, in its order of preference; `min_version` as for clients
---@field unix? string listen on this Unix socket path instead (table-only form)
---@field idle_timeout? integer for accepted connections
---@field nodelay? boolean for accepted connections
---@field keepalive? boolean|integer for accepted connections
---@field buffer_size? integer for accepted connections
---@field linger? integer for accepted connections
---@field handshake_timeout? integer ms an accepted connection's TLS handshake may take before it fails with `"timeout"` (default 30000); a websocket server's own `handshake_timeout` bounds TLS and the upgrade together as well
---@field websocket? boolean|net.websocket_server_options accept WebSocket upgrades instead of raw connections: `accept()` returns websockets whose opening handshake is done (see `net.websocket_server_options`)

---@class net.websocket_server_options
---@field path? string|string[] the request paths accepted (1..64; the query is not compared; default: any); another path gets `404 Not Found`
---@field origins? string|string[] the `Origin` values accepted (1..64, compared ignoring case: `"http://localhost:3000"`; default: any); a request from a page of another origin gets `403 Forbidden`, so no website a user visits can reach the server through their browser. A request without `Origin` (not from a browser) is accepted
---@field protocols? string|string[] subprotocols the server speaks, in its order of preference: the first of them the client offers is agreed; a client offering none of them gets no `Sec-WebSocket-Protocol` (RFC 6455: the client decides whether to go on)
---@field compress? boolean agree to permessage-deflate when a client offers it (default true)
---@field max_message? integer the largest message in bytes, either way (1..512 MiB, default 16 MiB); a bigger incoming one closes the websocket with 1009 and fails it with `"limit"`
---@field ping_interval? integer ms without a byte from the client before a keep-alive ping (default 0: none)
---@field ping_timeout? integer ms without a byte from the peer after a ping before the websocket fails with `"timeout"` (default ping_interval); it does not run while a full receive queue has stopped reading, and a peer that takes what we send (acknowledged by its TCP, where the system says: Linux, BSDs) counts as alive
---@field close_timeout? integer ms the closing handshake may take without progress (the client taking what we send, or the owner reading messages its full receive queue held back before the client's close) (default 5000)
---@field handshake_timeout? integer ms for the TLS handshake and the upgrade request of a new connection (default 10000); a client slower than that is dropped unseen. Upgrades in progress have a cap of their own, apart from the accept queue (512, more with a larger `backlog`): past it, or when the process is out of descriptors, the oldest is dropped, so idle connections never keep a client that upgrades at once out. An upgrade request that arrives while the accept queue is full (the owner has not taken the websockets before it) is answered `503`

---Listens for connections. `addr`: nil (every interface, IPv6 and IPv4),
---an IP literal or a resolved address (never a name); `port` 0 picks a free
---one (`server:get_port()`). Binding happens at once, so
---`nil, "listen 127.0.0.1:80: Address already in use", code` comes back here.
---`net.create_server{unix = path, ...}` listens on a Unix socket (only in
---this form: `unix` next to an address or port raises): a stale socket file
---left by a crashed process is replaced; a path a live server is bound to, or
---a file that is not a socket, is refused and left alone. Finding out opens
---no connection to the live server, except on Windows, which has no datagram
---Unix sockets to probe with: there it sees one connection that ends at once.
---With `websocket = true` (or a table of options) the server takes WebSocket
---upgrades on the I/O thread (plain, or TLS with `ssl`) and `accept()` returns
---websockets that are open (`"success"`). A request that is not a valid
---upgrade is answered and closed there, never seen by the caller: `426
---Upgrade Required` without `Upgrade: websocket`, `404 Not Found` for a path
---not in `path`, `403 Forbidden` for an `Origin` not in `origins`, `400 Bad
---Request` for any other fault (version, key, method).
---@overload fun(options: net.server_options): net.server|nil, string?, net.code?
---@param addr? string|net.address
---@param port integer 0..65535
---@param options? net.server_options
---@return net.server|nil server
---@return string? message
---@return net.code? code
function net.create_server(addr, port, options) end

---IP addresses of this host's interfaces that are up. It asks the kernel
---(netlink on Linux) on the calling thread: a diagnostic, not one for every frame.
---@return net.address[]|nil
---@return string? message
function net.get_local_addresses() end

---Wakes the host's frame loop when data arrives or a state changes, so an
---editor asleep in `SDL_WaitEvent*` runs at once. With `true` a background
---thread pushes an SDL user event (code 1) through the SDL the host itself
---runs, SDL3 or SDL2, found at run time: sluice never links SDL. The nudge
---is repeated at most every 20 ms while news waits unread (data, a state,
---a connection to accept), so a host that drops an event it was not ready
---for gets another; after about a second of nudges it has not answered,
---once a second. A nudge with nothing unread behind it (room to write) is
---repeated for about a second at most, and an idle host is left asleep. A
---light userdata that is a C function `void fn(void *ud)` (with `ud`) is
---called instead, on a background thread (no check can tell
---a function from other memory; `net.json_null` and a NULL are refused with
---an argument error; `ud` must be a light userdata or nil). A call that
---replaces a callback returns once no call of it is running, so its `ud`
---may be freed then (at most 64 different settings per process). `false` turns it
---off (the default). Closing the last Lua state that loaded the module turns
---it off too: no event or call reaches the host after `lua_close` returns.
---Returns the event type and the SDL version (2 or 3) for `true`, `true` for
---the others, or `false, reason` when it cannot be done: a host that links
---SDL statically (the official Lite XL builds) exports no SDL to bind to, and
---one whose SDL has not initialised its events yet (`SDL_INIT_EVENTS`) would
---take no event.
---@param how boolean|lightuserdata
---@param ud? lightuserdata
---@return integer|boolean event_type_or_ok
---@return integer|string|nil sdl_version_or_reason
function net.set_wakeup(how, ud) end

---Makes later verifying TLS connections trust the PEM bundle (file or
---directory) at `path`; connections already open keep theirs. nil restores
---the default search. Raises when memory runs out; the earlier setting stays.
---@param path string|nil at most 32767 bytes, without NUL (else an argument error)
function net.set_cacert_path(path) end

---The CA bundle verifying connections use: the one set with
---`set_cacert_path`, else `SSL_CERT_FILE` / `SSL_CERT_DIR` (as OpenSSL-based
---programs honour them), else the first system bundle found, else nil. Unless
---a path was set, it looks at the file system (up to a dozen `stat` calls) on
---the calling thread, the one call that does: a diagnostic, not one for every frame.
---When `SSL_CERT_FILE` and `SSL_CERT_DIR` are both set and both exist, both are
---trusted: the folder is the second value. `SSL_CERT_DIR` may list folders
---(`:`-separated, `;` on Windows), given back as set; of its first eight entries, those that exist are read.
---@return string|nil bundle
---@return string? folder
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
---Useful as the sleep of a plain-Lua frame loop. On Linux, when this thread's
---previous wait had news within 0.1 ms, it first watches for up to 0.1 ms
---(giving its core away at each look) before it sleeps, unless the cores are
---short (see the README's "A frame loop").
---@param timeout? integer milliseconds, default 0, -1 = until activity
---@return boolean activity true when woken by activity, false on timeout
function net.wait(timeout) end

---Encodes a Lua value as JSON text (RFC 8259). Strings must be UTF-8 (else
---`nil, message`); integers are written as integers, floats in a short form
---that reads back exactly (`12.345`; at most 17 significant digits), with
---".0" when whole, so that `json_decode` gives a float back. `nil` and `net.json_null`
---are `null`. Tables: keys exactly 1..n (n = `#t` > 0) make an array;
---string keys only make an object; an empty table is an object (`{}`) unless
---its metatable has `__jsontype = "array"` (as `net.json_array_mt` has;
---`__jsontype = "object"` forces an object). Anything else is an error: a
---sparse array (a nil inside: use `net.json_null`), string and number keys
---mixed, other key types, cycles, functions, userdata, NaN and infinities.
---Errors say where: `nil, "json_encode: cannot encode a function at
---$.params.cb", "invalid"`; text that would pass max_size gives `nil, message, "limit"`.
---@param value any
---@param options? {max_depth?: integer, max_size?: integer} nesting (1..1000, default 1000) and text bytes (default 256 MiB)
---@return string|nil text
---@return string? message
---@return net.code? code
function net.json_encode(value, options) end

---Decodes JSON text (RFC 8259, strictly: no comments, no trailing commas,
---UTF-8 checked, lone surrogates refused). Objects and arrays become tables
---(an empty array gets `net.json_array_mt`, so it encodes back as `[]`),
---`null` is `net.json_null`, numbers without fraction or exponent that fit
---are integers, others floats (read in the C locale whatever the host set).
---Bad text gives `nil, "json_decode: unexpected '}', expected a string key
---at byte 8", "invalid"`; text over max_size gives `nil, message, "limit"`.
---@param text string
---@param options? {max_depth?: integer, max_size?: integer} nesting (1..1000, default 1000) and text bytes (default 256 MiB)
---@return any value
---@return string? message
---@return net.code? code
function net.json_decode(text, options) end

---The value JSON `null` decodes to and encodes from (a light userdata).
net.json_null = nil ---@type lightuserdata

---A metatable marking a table as a JSON array (`__jsontype = "array"`).
net.json_array_mt = {}

---@class net.http_options
---@field url string `http://` or `https://` (credentials in the URL are refused: give an Authorization header); bytes its path and query cannot hold as they are (a space, UTF-8, `[ ] { } | " < > \ ^` and backtick, a `%` that starts no escape) are sent percent-encoded, as browsers and curl do; a host that needs them is refused
---@field method? string an upper-case token (default "GET")
---@field headers? table<string, string|number> sent as given (names are sent in sorted order; a name is a token, given once whatever its case, a value holds no control character but tab, else an argument error; `Proxy-Authorization` is refused (the proxy's credentials go in its URL: through a tunnel the header would reach the origin); the body's framing is the module's: Transfer-Encoding is refused and a Content-Length must be the body's length, a body file's size failing the request with "invalid"); Host, User-Agent, Accept, Accept-Encoding and Connection are added unless given; a `101` answer is taken only when an `Upgrade` header was given (else `"protocol"`)
---@field body? string|{file: string} the request body (Content-Length is added), or `{file = path}`: streamed from the file, read on a helper thread (sent again from its start after a 307/308); `get_progress` counts it. A `2xx` whose body ends before the request body went out whole succeeds only once the server took the rest; if it closes first, `"failure", "the server answered 200 before it took the whole request body, then closed ...", "closed"`
---@field timeout? integer ms for the whole exchange, redirects included (default 300000; 0: none)
---@field connect_timeout? integer ms per connection: resolving, connecting, TLS (default 30000; 0: none)
---@field idle_timeout? integer ms without a byte in or out on the connection (default none)
---@field max_redirects? integer redirects followed (0..100, default 5; 0: a 3xx is the response); a redirect whose body is empty or short (at most 4 KiB) and already arrived leaves its kept-alive connection for the next request, often to the same origin; any other is closed rather than read on
---@field max_size? integer the largest body taken through `read`, decoded (default 64 MiB); past it `"limit"`. It guards a loop that gathers the body in memory; a stream read piece by piece may raise it. With `output` it caps the file only when given (a resume's kept part counted), so a download from a server that may lie can be bounded: without it a file's only bound is the 1000:1 decoding ratio
---@field decompress? boolean ask for gzip/deflate and decode it (default true); false: the body as sent. A coding not asked for comes as sent; a body in two codings or more fails with `"protocol"`
---@field allow_downgrade? boolean follow a redirect from https to http (default false)
---@field keepalive? boolean reuse idle connections to the same origin and TLS options (default true)
---@field ssl? boolean|net.tls_options TLS options for https, redirects included (default: verified)
---@field buffer_size? integer body bytes held for the caller (16384..2^30, fixed); by default 1 MiB, growing up to 64 MiB as a connection's does; when full, the server is slowed down
---@field output? string write the body to this file instead: on a helper thread, into `output .. ".part"`, renamed into place once whole (then `read` gives no bytes; `max_size` caps the file only when given). A failed or cancelled download leaves its .part only with `resume` (and not one it made and wrote nothing into, as after a 404), and its failure shows only once nothing writes that .part any more (waiting at most 2 s for a disk that lags), so a retry or a look at its size finds it as it stays; a cancel or timeout that comes while the whole file is being put in place is too late and the request succeeds, so a failure never leaves a new file at output; a `206` part it did not ask for (no `resume`, no `Range` header of the caller's) fails (`"protocol"`); while one download writes a .part (in this process or another) a second to the same output fails within half a second (`"limit"`, "another download is writing it": it waits that long for one just cancelled to let go) and leaves it alone
---@field resume? boolean with output: continue `output .. ".part"` left by an earlier attempt (else a file at output, as `curl -C -`) with a Range request; a server that ignores it sends the whole file, which starts over; a file already whole (416 with `Content-Range: bytes */size`) succeeds with that 416 head; a failed resume that began from the file at output puts it back there. A 206 must run from the file's end to its end (`Content-Range: bytes N-last/size` with `last + 1 == size`, and a body of that length), else the download fails with `"protocol"` and keeps what it has. Resumable downloads ask for no compression (a range of the file, not of its encoding)
---@field sha256? string with output: the 64 hex digits the whole file must hash to; a mismatch fails with `"protocol"` and keeps nothing that arrived (a resume from the file at output puts that file back as it was, unless the server ignored the Range and sent the whole file over it)
---@field proxy? string|false a proxy URL (`http://[user:pass@]host:port`, `socks5h://...`, `socks5://...`), or false for none; default from the environment: HTTPS_PROXY / ALL_PROXY (or in lower case) and http_proxy (lower case only, as curl: a CGI-style host may set HTTP_PROXY from a request's `Proxy` header; Windows has one variable for both spellings); a bare host:port is http://; NO_PROXY (`*`, or comma-separated names, which take their subdomains too, IP addresses and CIDR blocks like `10.0.0.0/8`, which match addresses only) exempting hosts. Plain http goes to an http proxy in absolute form; https and every SOCKS proxy are tunnels

---Starts an HTTP/1.1 exchange; returns at once. The I/O thread does all of it:
---connecting (a kept-alive connection to the same origin first), the request,
---the response head (1xx skipped), redirects (301, 302, 303, 307, 308: a 303,
---and a 301/302 after a POST, continue as GET without the body; a redirect to
---another origin drops Authorization, Cookie and the caller's Host; https to http fails unless allow_downgrade), the body
---(Content-Length, chunked, or until close) decoded from gzip/deflate, with a
---cap on the decoded size and on the ratio (a decompression bomb fails with
---`"limit"`). A request on a kept-alive connection the server had closed (it
---ended before any byte of a response) is made again once, on a new
---connection, when its method is idempotent; never after a timeout, which
---fails the request.
---Failures name the request: `"http 127.0.0.1:8080 GET /x: body ended after
---10 of 100 bytes"`. A URL it cannot use gives `nil, message, "invalid"`; bad
---option types and values raise.
---@param options net.http_options
---@return net.http|nil request
---@return string? message
---@return net.code? code
function net.http_request(options) end

---@class net.http
local http = {}

---`"waiting"`, `"success"` (the whole body arrived; what was not read yet
---stays readable) or `"failure", message, code` (`"timeout"`, `"limit"`,
---`"protocol"`, `"cancelled"`, `"closed"`, or a connection's code).
---@return net.status status
---@return string? message
---@return net.code? code
function http:get_status() end

---Waits at most `ms` (default 0; -1: until done) for the exchange to end; returns as get_status.
---@param ms? integer
---@return net.status status
---@return string? message
---@return net.code? code
function http:wait(ms) end

---Once the final response's head arrived: its status code, its header fields
---(names in lower case; a repeated field as a list of its values), the reason
---phrase and the URL it came from (after redirects). nil before.
---@return integer|nil status
---@return table<string, string|string[]>? headers
---@return string? reason
---@return string? url
function http:get_response() end

---The `i`-th redirect the server answered (from 1), in order, as
---`get_response` gives a head (its URL is the one that answered); a
---redirect that was refused (past `max_redirects`, or https to http) is
---there too. nil when there is no such hop (yet).
---@param i integer
---@return integer|nil status
---@return table<string, string|string[]>? headers
---@return string? reason
---@return string? url
function http:get_redirect(i) end

---Body bytes received as the server sent them (before decoding), the
---Content-Length (nil when the server gave none), request body bytes sent
---and their total.
---@return integer received
---@return integer|nil total
---@return integer sent
---@return integer send_total
function http:get_progress() end

---Body bytes (decoded), at most `max` (1..2^30, default 1 MiB): `""` when
---none has arrived yet, nil after the last one, `nil, message, code` once
---failed and what arrived before the failure was read. It allocates only
---what has arrived, never `max`; a memory error while making the string
---leaves the bytes to the next read.
---@param max? integer
---@return string|nil data
---@return string? message
---@return net.code? code
function http:read(max) end

---Ends the exchange: it fails with `"cancelled"` (unless it already ended)
---as soon as the I/O thread takes the cancel, a moment later (`wait` for it).
function http:cancel() end

---Ends the exchange if it still runs and releases it; idempotent, never blocks.
---Also `__gc` and `__close`. Afterwards `get_status` and `wait` give
---`"failure", "closed", "closed"`, `cancel` does nothing, and the others give
---`nil, "closed", "closed"`.
function http:close() end

---@class net.websocket_options
---@field headers? table<string, string> extra request headers for the opening handshake, each name once whatever its case (the `Host`, `Upgrade`, `Connection`, `Sec-WebSocket-*` and body fields are the module's own: giving one returns `nil, message, "invalid"`)
---@field protocols? string|string[] subprotocols to offer (`Sec-WebSocket-Protocol`; 1..64 names), in order of preference; `ws:get_protocol()` says which one the server took (nil: none)
---@field ssl? net.tls_options TLS options for `wss://` (verified by default, as for `net.open_tcp`)
---@field proxy? string tunnel through a proxy: `"http://[user:pass@]host:port"` (HTTP CONNECT), `"socks5h://[user:pass@]host:port"` or `"socks5://..."` (SOCKS5), as `net.conn_options.proxy`
---@field connect_timeout? integer ms for resolving, connecting, a proxy, TLS and the opening handshake (default 30000; 0: none)
---@field max_message? integer the largest incoming message in bytes, once reassembled and inflated (1..512 MiB, default 16 MiB); a bigger one closes the websocket with 1009 and fails it with `"limit"` (nothing past the cap is ever allocated). Also the largest message `send` takes
---@field compress? boolean offer permessage-deflate (RFC 7692; default true); used when the server agrees (`ws:get_extensions()`)
---@field ping_interval? integer ms without a byte from the server before the I/O thread sends a keep-alive ping (default 0: none)
---@field ping_timeout? integer ms without a byte from the peer after a ping before the websocket fails with `"timeout"` (default ping_interval); it does not run while a full receive queue has stopped reading, and a peer that takes what we send (acknowledged by its TCP, where the system says: Linux, BSDs) counts as alive
---@field close_timeout? integer ms the closing handshake may take without progress (the peer taking what we send, or the owner reading messages its full receive queue held back before the peer's close; a peer that ignores the close and sends on does not count) before the connection is dropped (default 5000); the messages queued before the close go first

---Opens a WebSocket client (RFC 6455) and returns it at once; resolving,
---connecting, a proxy's handshake, TLS and the opening handshake go on in the
---background (`"waiting"` until done). The I/O thread does all the protocol:
---the handshake checked fully (`101`, `Upgrade`, `Connection`,
---`Sec-WebSocket-Accept`), a fresh random mask per frame, fragmentation and
---reassembly, UTF-8 checks of text messages, automatic pongs, keep-alive
---pings, permessage-deflate and the closing handshake. The caller moves only
---whole messages (`send`, `receive`).
---A URL it cannot use (not `ws://` or `wss://`, a bad host or port) gives
---`nil, message, "invalid"`; wrong option types and unknown keys raise.
---Failures name the websocket: `"ws 127.0.0.1:8080: ..."`.
---@param url string `ws://host[:port][/path][?query]` or `wss://...`, escaped as `http_request`'s
---@param options? net.websocket_options
---@return net.websocket|nil ws
---@return string? message
---@return net.code? code
function net.open_websocket(url, options) end

---A WebSocket, client (`net.open_websocket`) or server side (`server:accept()`
---of a `websocket` server); both have the same methods. Also `__gc` (closes
---it with 1001 "going away" after the queued messages, without waiting),
---`__close` (`close()` with 1000, unless it was closed already, then the
---same) and `__tostring` (`net.websocket(127.0.0.1:8080, open)`).
---Used after `__close`, it answers as a closed object: `get_status` gives
---`"failure", "closed", "closed"`, `close` `true`, the others `nil, "closed",
---"closed"`; wrong arguments (a text message that is not UTF-8, a long ping,
---a bad close code) still raise, as on an open one.
---@class net.websocket
local websocket = {}

---`"waiting"` (connecting, opening handshake), `"success"` (open; also while
---closing as long as messages remain to receive) or `"failure", message,
---code`. After a clean close, once every message was received: `"failure",
---"closed", "closed"`; when the peer closed first while messages of ours
---were still queued (nothing may follow its close), the message is `"closed
---by the peer before every queued message was sent"`. Codes: `"protocol"` (a bad handshake or frame from
---either side: close 1002/1007), `"limit"` (a message over max_message:
---1009), `"timeout"` (connect_timeout, ping_timeout, close_timeout), `"tls"`,
---`"tls-verify"`, `"proxy"`, `"refused"`, `"closed"` (also when the peer went
---away without a close frame: `get_close()` says 1006), `"cancelled"` (closed
---while `"waiting"` with no message queued: `"ws ...: closed before it
---opened"`, 1006) and the others of a connection.
---@return net.status status
---@return string? message
---@return net.code? code
function websocket:get_status() end

---As `get_status`, after waiting at most `ms` (default 0; -1: no limit) for
---the websocket to leave `"waiting"`.
---@param ms? integer
---@return net.status status
---@return string? message
---@return net.code? code
function websocket:wait_until_connected(ms) end

---Queues one whole message: `true` once queued (allowed while `"waiting"`:
---sent once open). `false, message, "limit"` when the send queue is full:
---nothing was queued; retry later. `nil, message, code` once the websocket
---failed (its message and code) or is closing (`nil, "the websocket is closing",
---"closed"`). `kind` is `"text"` (default) or `"binary"`; a text
---message that is not valid UTF-8, or a message larger than max_message,
---raises an argument error.
---@param message string
---@param kind? "text"|"binary"
---@return boolean|nil ok
---@return string? message
---@return net.code? code
function websocket:send(message, kind) end

---The next whole message and its kind, nil when none is waiting, `nil,
---message, code` once the websocket failed or closed and every message
---before that was received (after a clean close `nil, "closed", "closed"`).
---Text messages are valid UTF-8 (checked on the I/O thread, across
---fragments). Pings are answered while the caller does not receive, as long
---as the receive queue (max_message, at least 1 MiB) has room; once it is
---full the I/O thread stops reading, so the peer feels backpressure (and its
---pings wait behind its messages).
---@return string|nil message
---@return "text"|"binary"|string|nil kind or the error message
---@return net.code? code
function websocket:receive() end

---Sends a ping with `data` (at most 125 bytes, else an argument error;
---default empty), with the same returns as `send`. The peer's pongs need no
---handling; pongs to the peer's pings are sent automatically.
---@param data? string
---@return boolean|nil ok
---@return string? message
---@return net.code? code
function websocket:ping(data) end

---Starts the closing handshake after the messages already queued: `code`
---1000 (default), 1001-1003, 1007-1014 or 3000-4999, `reason` at most 123
---bytes of UTF-8 (others raise). Messages the peer sent before its close
---frame stay receivable. The connection ends when the peer answers, or after
---close_timeout. Idempotent; returns at once. While `"waiting"`, the opening
---handshake goes on when messages are queued: they are sent once open, then
---the close (a handshake that fails fails as usual); with none queued the
---websocket ends with `"cancelled"` as soon as the I/O thread takes the close. `__gc` does the same with 1001.
---@param code? integer
---@param reason? string
---@return true
function websocket:close(code, reason) end

---Once closed: the close code and reason (`""` when none). The peer's close
---frame (1005 when it had no code), 1006 when the connection dropped without
---one (also when it never opened: as a browser's close event says), or ours
---when we closed it for a fault (1002 protocol, 1007 bad UTF-8 or compressed
---data, 1009 too big, 1011 out of memory). nil while open. A connection that
---dropped without a close frame fails with code `"closed"` too, but with a
---message that says so, never the bare `"closed"` of a clean close.
---@return integer|nil code
---@return string? reason
function websocket:get_close() end

---The subprotocol agreed in the opening handshake, or nil.
---@return string|nil
function websocket:get_protocol() end

---The `Sec-WebSocket-Extensions` value agreed (e.g. `"permessage-deflate;
---server_no_context_takeover"`), or nil when no extension is in use.
---@return string|nil
function websocket:get_extensions() end

---Once open. Server side: the request target of the client's upgrade request
---(path and query, `"/chat?name=ada"`) and its header fields (names in lower
---case; a repeated field: its last value). Client side: nil and the header
---fields of the server's `101` answer. nil while connecting. A server without
---`origins` takes upgrades from any `Origin`, so any web page a user opens can
---reach it through their browser: list the pages that may in `origins`, or
---check `headers.origin` here and close (1008) a websocket from another site.
---@return string|nil target
---@return table<string, string>? headers
function websocket:get_request() end

---ip, port, family of the peer once connected, as for a TCP connection (a
---proxy's when through one); nil before.
---@return string|nil ip
---@return integer? port
---@return string? family
function websocket:get_peer() end

---@class net.resolver_options
---@field nameservers string[] 1..8 of "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:53" (IP literals; port 53 unless given)
---@field timeout? integer ms to wait for the first try's answer (1..600000, default 2000; c-ares doubles it for later rounds)
---@field tries? integer attempts per nameserver (1..20, default 3); a lookup ends after 60 s in all, or `tries` × `timeout` per nameserver when that is longer

---A resolver that asks these nameservers directly (c-ares on the I/O thread,
---no helper thread). The hosts file (/etc/hosts, or `SLUICE_HOSTS_FILE` when
---set) and "localhost" are answered from there first; other names are asked
---exactly as given (no search domains, no `HOSTALIASES`). Bad options raise.
---@param options net.resolver_options
---@return net.resolver
function net.create_resolver(options) end

---@class net.resolver
local resolver = {}

---An address object for `host`, exactly as `net.resolve_address` gives: the
---lookup (A and AAAA) runs in the background, and is cancelled when the
---address is collected while still waiting. Failures name the name and the
---nameservers: `resolve nx.test via 127.0.0.1:5353: no such name` ("dns"),
---`...: no answer (3 tries, 2000 ms timeout)` ("timeout"; `no answer in 60000 ms (...)`
---when the bound on the whole lookup ended it).
---@param host string
---@return net.address|nil address
---@return string? message
---@return net.code? code
function resolver:resolve(host) end

---Releases the resolver (also `__gc`, `__close`; idempotent): `resolve` then
---gives `nil, "closed", "closed"`, and handing it to `open_tcp` raises.
---Lookups in flight go on for the addresses still held.
function resolver:close() end

---@class net.stats
---@field module_bytes integer memory the module itself holds: objects, buffers, queues, TLS configurations (not mbedTLS's own sessions)
---@field heap_bytes integer malloc'ed bytes in use in the whole process, the host's included (glibc), for memory checks; buffer chunks are in pages of the module's own, outside it (`buffer_bytes` counts them). Counting them walks the heap (milliseconds when it is fragmented), so a helper thread samples it: the value is the last sample (the first is taken as the module loads; 0 until it is in), and a call finding it over 0.1 s old starts a new one (after a quiet spell, call again a moment later for a fresh figure). The call never waits
---@field servers integer listening servers alive
---@field connections integer connection objects alive in the engine (including closing ones)
---@field udp integer UDP sockets alive in the engine (closed ones until the I/O thread let go)
---@field addresses integer address objects alive
---@field buffer_bytes integer ring memory held by all connections
---@field chunks integer buffer chunks in use
---@field http integer HTTP requests alive in the engine
---@field websockets integer websockets alive in the engine

---Process-wide counters, for diagnostics and leak checks.
---@return net.stats
function net.get_stats() end

---@class net.address
---An address released (by `<close>`) answers its own methods as a closed
---object: `"failure", "address was released", "closed"`, and nil from
---`get_ip`/`get_hostname`. Handed to another call (`open_tcp`,
---`create_server`, `open_udp`, `udp:send`) it raises
---`bad argument #1 to 'open_tcp' (net.address was released)`.
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
---With `i`, `j`: the bytes `data:sub(i, j)` (counted as `string.sub` counts)
---without making that string, so the rest of a large, partly taken string
---costs no copy: `n = n + conn:write(data, n + 1)`.
---@param data string
---@param i? integer first byte (default 1)
---@param j? integer last byte (default -1)
---@return integer|nil accepted
---@return string? message
---@return net.code? code
function tcp:write(data, i, j) end

---Up to `max_len` bytes that have arrived, and at most 1 MiB a call (which
---bounds what one call costs: a loop that wants more reads again); `""` when
---none yet; `nil` (no message) after the peer's orderly close once everything
---was read; `nil, message, code` after an error (bytes received before it come
---first). Never allocates more than what is available, whatever `max_len` is.
---The bytes are copied once into the string when they lie in one piece of the
---receive buffer (a 16 KiB chunk, or chunks side by side: a buffer that grew for
---a frame loop keeps them so, as does a fixed one of 2 MiB or more), else gathered
---first.
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
---`"waiting"` until the handshake ends, and reads give nothing (`""`) until
---then. `nil, message, code` if the connection
---is not established, already uses TLS or has shut its sending side, for a
---connection a server accepted (`"invalid"`: only the client side can start
---TLS; a server serves it from the start with `create_server`'s `ssl`), and
---(code `"protocol"`) while bytes that came before the call are unread or a
---`read_packet`/`read_lsp` message that began before it is partly read. A
---peer that sends anything in plain text after the call fails the connection
---(`"protocol"`, "... bytes came in plain text after starttls() (injected?)",
---or `"tls"` when the handshake reads it) and none of it is ever read: text
---slipped in there would otherwise read as if it came through TLS (STARTTLS
---command injection). The bytes written before the call must reach the peer within
---the connection's `connect_timeout`, and then the handshake within another:
---past either, `"failure", "starttls ...: timed out after N ms ...", "timeout"`.
---@param options? net.tls_options
---@return true|nil ok
---@return string? message
---@return net.code? code
function tcp:starttls(options) end

---@class net.tls_info
---@field version string "TLSv1.2"
---@field cipher string the suite agreed, "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256" say (AES-GCM comes first where the CPU has AES-NI: those records are sluice's own, the fast ones)
---@field alpn? string the protocol agreed, if any
---@field peer_subject string the peer certificate's subject (a server sees its client's), "" if none; one over 1020 bytes is cut there and ends in "..."

---TLS details once the handshake is done, else nil.
---@return net.tls_info|nil
function tcp:get_tls_info() end

---The data up to and including `delim` (1 to 1024 bytes) once it has
---arrived; `""` before that; the rest without `delim` once the peer closed
---(then `nil`, as read); `nil, message, "limit"` when the data and `delim`
---together would take more than `max_len` bytes (default: the buffer size), or when the receive buffer is
---full without it and `max_len` is larger than the buffer. Searches only the
---bytes that arrived since the previous call with the same delimiter.
---LuaSocket's `"*l"`, rspamd's stop_pattern.
---@param delim string
---@param max_len? integer
---@return string|nil data
---@return string? message
---@return net.code? code
function tcp:read_until(delim, max_len) end

---The next packet: a 4-byte big-endian length, then that many bytes. Returns
---the payload (maybe `""`) once it has arrived whole; `false` while it has
---not; `nil` at the end of the stream between packets; `nil, message, code`
---on failure. A declared length over `max` (default 512 KiB) fails the
---connection with `"limit"` and allocates nothing; a stream ending inside a
---packet fails it with `"protocol"`. The payload is copied from the
---receive buffer into the string (once when it lies in one piece of it, as
---`read`'s bytes); one larger than the receive buffer
---(`buffer_size`) is gathered as it arrives (one more copy), and until it is
---whole `read`/`read_until` raise an error (the stream is inside it).
---@param max? integer
---@return string|false|nil payload
---@return string? message
---@return net.code? code
function tcp:read_packet(max) end

---Queues one packet (the length prefix and `data`): `true` once all of it is
---queued; `false` when it is not yet: call again later with the same `data`
---until `true` (a string of the same bytes will do). A packet that fits the
---send buffer (`buffer_size`) goes whole or not at all (`false`: nothing was
---written). A larger one goes in parts as the buffer drains, each call
---queuing what fits; until its last part is in, the stream is inside it, so
---`write`, `starttls` or another message raises an error (`close` drops the rest).
---`nil, message, "limit"` for a packet over 4 GiB - 1 bytes; `nil, message,
---code` once the connection failed.
---@param data string
---@return boolean|nil queued
---@return string? message
---@return net.code? code
function tcp:write_packet(data) end

---The next LSP / JSON-RPC base-protocol message: a header block
---(`Content-Length: N`, any case, the space after the colon optional, other
---headers such as `Content-Type` allowed, blank lines between messages
---skipped, at most 8 KiB) ended by an empty line, then N bytes of body.
---Returns as `read_packet` (default `max`: 64 MiB); a malformed header block
---fails the connection with `"protocol"`.
---@param max? integer
---@return string|false|nil body
---@return string? message
---@return net.code? code
function tcp:read_lsp(max) end

---Queues one LSP message (`Content-Length: N\r\n\r\n` and `body`) whole, with
---the returns of `write_packet`.
---@param body string
---@return boolean|nil queued
---@return string? message
---@return net.code? code
function tcp:write_lsp(body) end

---Half-close. `"send"`: a FIN (TLS: close_notify first) once what was written
---is out, after which `write` fails; reading goes on. `"receive"`: what
---arrives is thrown away and `read` returns nil. `"both"` (default): both.
---@param mode? "send"|"receive"|"both"
---@return true|nil
---@return string? message
function tcp:shutdown(mode) end

---Bytes received and sent (plain text for TLS) and the age in seconds.
---@return integer received
---@return integer sent
---@return number age
function tcp:get_stats() end

---Our end once connected: ip, port, family ("inet"/"inet6"; for Unix
---sockets the path, nil, "unix").
---@return string|nil ip
---@return integer|string|nil port_or_message
---@return string? family
function tcp:get_local_address() end

---The peer's end once connected, as get_local_address.
---@return string|nil ip
---@return integer|string|nil port_or_message
---@return string? family
function tcp:get_peer() end

---Stops reading the socket: the peer feels TCP backpressure; nothing is lost.
---@return true|nil ok `nil, "closed", "closed"` on a closed connection
---@return string? message
---@return net.code? code
function tcp:pause_read() end

---Reads again after pause_read.
---@return true|nil ok `nil, "closed", "closed"` on a closed connection
---@return string? message
---@return net.code? code
function tcp:resume_read() end

---Sets "nodelay" (boolean), "keepalive" (boolean or idle seconds), "linger"
---(ms close() keeps delivering) or "reuseaddr" (boolean); applied at once by
---the I/O thread. Unknown names raise.
---@param name "nodelay"|"keepalive"|"linger"|"reuseaddr"
---@param value boolean|integer
---@return true|nil
function tcp:set_option(name, value) end

---The value last set, as it was given: keepalive is the idle seconds when a
---number was set, `true` when `true` was (defaults: nodelay false, keepalive
---false, linger 5000, reuseaddr false).
---@param name "nodelay"|"keepalive"|"linger"|"reuseaddr"
---@return boolean|integer
function tcp:get_option(name) end

---The peer's address once connected (also while a `starttls` handshake
---runs), else nil; nil for a Unix socket (its path is `get_peer()`'s).
---@return net.address|nil
function tcp:get_address() end

---Closes the connection; idempotent, never blocks. Bytes already accepted are
---still delivered in the background (for at most 5 s), then TLS sends
---close_notify and the socket closes.
---Afterwards `read`/`write` give `nil, "closed", "closed"`.
function tcp:close() end

---@class net.server
local server = {}

---The next accepted connection (`"success"`, or `"waiting"` while its TLS
---handshake runs), nil when none is waiting, `nil, message, code` once the
---server failed or was closed. When the process is out of file descriptors,
---`nil, message, "limit"`: the server backs off (50 ms doubling to 1 s),
---waiting connections stay in the kernel's backlog, and accepting resumes by
---itself once descriptors free up. A websocket server (`websocket` option)
---returns websockets, each with its opening handshake done.
---@return net.tcp|net.websocket|nil conn
---@return string? message
---@return net.code? code
function server:accept() end

---The port actually bound (the real one when 0 was asked).
---@return integer
function server:get_port() end

---ip, port, family of the listening socket (Unix: path, nil, "unix").
---@return string ip
---@return integer|nil port
---@return string family
function server:get_local_address() end

---`"success"` while listening, `"failure", message, code` after an error.
---@return net.status
---@return string? message
---@return net.code? code
function server:get_status() end

---Stops listening at once: when it returns, the port refuses connections and
---a new server may bind it (with `reuseaddr`, the default; without, a moment
---later, once the I/O thread has closed the socket), and the Unix socket path
---is free. Connections already accepted live on. Idempotent.
function server:close() end

---@class net.udp_options
---@field reuseaddr? boolean SO_REUSEADDR before bind, so that several sockets can share a port (multicast receivers)
---@field buffer_size? integer cap of the send and of the receive queue in bytes, headers included (default 1 MiB; at least one 64 KiB datagram always fits)

---Opens a datagram socket bound at once to `addr` and `port`: socket() and
---bind() never block, so their failures come back here, e.g.
---`nil, "bind 127.0.0.1:5353: Address already in use", "invalid"`. A port a
---socket of this process still holds while it closes (sending what it
---queued) is no refusal: the new socket binds as soon as that one has let go,
---and what it sends meanwhile waits and goes out from that port. Should the
---port still be taken then (by another socket), `receive` and `send` give
---that same failure.
---`addr`: nil for every interface (the IPv6 wildcard with IPv4 too where the
---system allows, else 0.0.0.0), an IP literal (`"127.0.0.1"`, `"::1"`), or a
---resolved address object (its first IP). A host name, or an address still
---resolving, gives `nil, message, "invalid"`: resolve names first.
---`port`: 0 for an ephemeral one (see `get_port`). Unknown options raise.
---@param addr string|net.address|nil
---@param port integer 0..65535
---@param options? net.udp_options
---@return net.udp|nil udp
---@return string? message
---@return net.code? code
function net.open_udp(addr, port, options) end

---@class net.udp
local udp = {}

---Queues one datagram (`""` is one too) for `port` at `addr`, an IP literal
---or a resolved address object (its first IP the socket can reach; from the
---wildcard socket an IPv4 address is fine too). Never blocks: `true` once
---queued, and the I/O thread sends it. Else nothing is queued and it returns
---`false, message, code`:
---`"send queue full"` ("limit": wait, e.g. `net.wait(10)`, and try again),
---`"datagram too large (max 65507 bytes)"` ("invalid"; 65527 over IPv6),
---an address that is a name, still resolving or of a family the socket
---cannot reach ("invalid"; a failed resolution gives its own code),
---`"closed"` ("closed"). What the kernel refuses later on the I/O thread
---(unreachable, broadcast without the option, an ICMP error for an earlier
---datagram, where the system reports one to a socket with no fixed peer:
---Windows does, Linux does not) is not an error here: it counts in `get_stats().send_errors`.
---@param addr string|net.address
---@param port integer 1..65535
---@param data string at most 65507 bytes (IPv4) / 65527 (IPv6)
---@return boolean ok
---@return string? message
---@return net.code? code
function udp:send(addr, port, data) end

---The oldest datagram that arrived and was not yet taken, or nil when none is
---waiting; `nil, message, code` once the socket failed (datagrams received
---before the failure come first) or after `close()` (`"closed"`).
---The receive queue holds at most 1 MiB (payload and a small header per
---datagram): while it is full the newest datagrams are read and dropped,
---and `get_stats().dropped` counts them.
---@return net.datagram|nil dgram
---@return string? message
---@return net.code? code
function udp:receive() end

---The port the socket is bound to (the real one when 0 was asked); still
---answers after `close()`.
---@return integer
function udp:get_port() end

---@class net.udp_stats
---@field received integer datagrams queued for `receive`
---@field sent integer datagrams the kernel accepted
---@field dropped integer datagrams that arrived while the receive queue was full, and were discarded (the kernel's own drops, when its socket buffer overflows, are not seen here)
---@field send_errors integer datagrams the kernel refused on send, plus errors it reported for earlier ones (ICMP port unreachable, ...: Windows reports these to a socket with no fixed peer, Linux does not)

---Counters kept by the I/O thread since the socket was opened (after
---`close()`: the values at close). This is how a program sees datagrams
---lost to a full receive queue.
---@return net.udp_stats
function udp:get_stats() end

---@alias net.udp_option "broadcast"|"reuseaddr"|"multicast_loop"|"multicast_ttl"|"multicast_interface"

---Sets a socket option at once: `"broadcast"` (boolean, SO_BROADCAST: may
---send to broadcast addresses), `"reuseaddr"` (boolean), `"multicast_loop"`
---(boolean, default true: own multicast datagrams come back to this host;
---on Windows it is the receiving socket's choice, whether it hears datagrams
---sent from this host, as Winsock defines the option),
---`"multicast_ttl"` (integer 0..255, default 1; the hop limit for IPv6),
---`"multicast_interface"` (where multicast goes out: an IPv4 address such as
---`"127.0.0.1"`, or for IPv6 an interface name like `"lo"` or an index; nil:
---the system's choice). An unknown name or a value of the wrong type raises;
---what the system refuses gives `nil, message, code`.
---@param name net.udp_option
---@param value boolean|integer|string|nil
---@return true|nil ok
---@return string? message
---@return net.code? code
function udp:set_option(name, value) end

---The current value of an option (see `set_option`); `"multicast_interface"`
---gives an IPv4 address string, or an interface index on IPv6 sockets.
---@param name net.udp_option
---@return boolean|integer|string|nil value
---@return string? message
---@return net.code? code
function udp:get_option(name) end

---Joins a multicast group: an IPv4 group (224.0.0.0/4) with `interface` the
---IPv4 address of the interface (`"127.0.0.1"`; default: the system's
---choice), or an IPv6 group (ff00::/8) with `interface` a name (`"lo"`) or
---index (default 0). A group that is not a multicast literal raises; what
---the system refuses (already a member, no such interface, ...) gives
---`nil, message, code`.
---@param group string
---@param interface? string|integer
---@return true|nil ok
---@return string? message
---@return net.code? code
function udp:join(group, interface) end

---Leaves a group joined with `join` (same arguments).
---@param group string
---@param interface? string|integer
---@return true|nil ok
---@return string? message
---@return net.code? code
function udp:leave(group, interface) end

---Closes the socket; idempotent, never blocks. Datagrams already queued go
---out while the kernel takes them (a batch at a time, other sockets served
---in between), and the process's exit waits for that, as it does for
---sockets left open that still hold datagrams (Linux; 5 s at most); there is
---no linger beyond that. The port can be reopened at once: the new socket
---binds once this one has let go of it (see `net.open_udp`).
---Afterwards `send` gives `false, "closed", "closed"`, the others
---`nil, "closed", "closed"`.
function udp:close() end

---A received datagram.
---@class net.datagram
local datagram = {}

---The payload.
---@return string
function datagram:get_data() end

---The sender's address (resolved; its hostname is its IP). IPv4 senders show
---as IPv4 (`"127.0.0.1"`), also on the dual-stack wildcard socket.
---@return net.address
function datagram:get_address() end

---The sender's port.
---@return integer
function datagram:get_port() end

return net
