-- skip: the specs (whole, or tests by a piece of their name) that cannot run with a
-- Windows Lua under wine, and why. spec_runner reports them as skipped with the reason.
local no_unix = "wine has no AF_UNIX sockets (Windows 10+ has them; the engine's Windows side uses them there)"
return {
  ["fault_spec.lua"] = { ["*"] = "fault injection preloads a Linux library into Linux Lua hosts (LD_PRELOAD) and limits descriptors with ulimit" },
  ["unix_spec.lua"] = { ["*"] = no_unix },
  ["tls_starttls_spec.lua"] = { ["over a Unix socket"] = no_unix },
  ["frame_spec.lua"] = { ["over a Unix socket"] = no_unix },
  ["websocket_spec.lua"] = {
    ["reading a long upload slowly"] = "Windows does not say how much of the send queue the peer has acknowledged",
    ["close_timeout counts from what the peer last took"] = "Windows does not say how much of the send queue the peer has acknowledged",
  },
  ["request_spec.lua"] = { ["talks to a Unix socket"] = no_unix, ["still leaving net's buffer"] = no_unix },
  ["hardening_spec.lua"] = {
    ["runs out of descriptors"] = "limits descriptors with ulimit -n, which a Windows process does not have",
    ["finds no descriptor"] = "limits descriptors with ulimit -n, which a Windows process does not have",
    ["a folder or a FIFO"] = "FIFOs are POSIX",
    ["naps a loop spinning"] = "os.clock is wall-clock time in the Windows C runtime, not CPU time",
  },
  ["server_spec.lua"] = {
    ["frees its port at once on close"] = "Windows cannot stop a listening socket with shutdown(): the I/O thread closes it a moment after close() returns (README, Windows: what differs)",
  },
  ["options_spec.lua"] = {
    ["keepalive as seconds of idleness"] = "checked with Linux's ss on the socket under wine, which does not pass Windows' TCP_KEEPALIVE idle time on",
  },
  ["udp_spec.lua"] = {
    ["joined on lo"] = "interface names are Linux's (\"lo\")",
    ["still resolving"] = "FIFOs are POSIX: wine opens one without waiting for a writer, so the lookup the test holds back fails at once",
    ["os.exit without close"] = "a DLL's exit handlers run after Windows stopped its threads: only closing the Lua state hands over what is left (README, Windows)",
  },
  ["socket_spec.lua"] = {
    ["the peer resets"] = "under wine a peer's reset after its data reads as an orderly close (recv gives 0; "
      .. "Windows' own recv gives WSAECONNRESET), so nothing under it can tell the two apart",
  },
  ["errors_spec.lua"] = {
    ["exits without closing"] = "a DLL's exit handlers run after Windows stopped its threads: only closing the Lua state hands over what is left (README, Windows)",
  },
}
