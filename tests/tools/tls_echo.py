#!/usr/bin/env python3
"""tls_echo.py: the loopback TLS test server of the TLS specs and benchmarks.

One thread per client, Python's ssl module (OpenSSL). Binds 127.0.0.1 (or ::1 with -6)
on an ephemeral port, prints the port number alone on the first stdout line (flushed),
then serves until SIGTERM/SIGINT (the default handlers: the process just ends, which
is also how a spec "kills the server mid-stream").

Usage: tls_echo.py [-6] --cert FILE --key FILE [--cafile FILE] [--alpn P1,P2]
                   [--tls1_2 | --tls1_3] MODE [ARG]
  --cafile FILE  require a client certificate signed by FILE
  --alpn LIST    offer these ALPN protocols (comma-separated)
  --tls1_2/3     allow only that protocol version
Modes (TLS ones):
  echo         echo every byte back. At the client's close_notify answer with ours
               (unwrap), then close. Logs "end: close_notify" (or "end: eof without
               close_notify") on stderr when the client's stream ends.
  info         first send one line "sni=NAME alpn=PROTO version=V client=CN\\n" ("-" for
               none), then echo as above.
  sink         read everything, checking it against the pattern; at the end print (stdout)
               "sink BYTES ok|mismatch-at-OFFSET close_notify|eof" (eof: no close_notify)
  source N     send N bytes of the pattern of tests/tools/peer.c (K/M/G suffixes), then
               close_notify, then close.
  truncate N   send N bytes of the pattern, then end the TCP stream (FIN) without
               close_notify: a truncated TLS stream.
Modes (no TLS at all; they read the client's first flight, the ClientHello):
  hs-close     then close (FIN) mid-handshake
  hs-reset     then reset (RST) mid-handshake
  hs-garbage   then answer with a plain-text line, then close
  hs-stall     then say nothing until the client goes away
"""
import argparse
import os
import socket
import ssl
import struct
import sys
import threading

PERIOD = 1000003
SLICE = 256 * 1024
_pattern = None
_pattern_lock = threading.Lock()


def pattern():
    """The source pattern plus its first SLICE bytes again (every slice is contiguous)."""
    global _pattern
    with _pattern_lock:
        if _pattern is None:
            t = bytes(((j * 2654435761) & 0xFFFFFFFF) >> 24 for j in range(PERIOD))
            _pattern = memoryview(t + t[:SLICE])
    return _pattern


def parse_size(s):
    units = {"": 0, "k": 10, "m": 20, "g": 30}
    s = s.strip()
    unit = s[-1].lower() if s and s[-1].isalpha() else ""
    num = s[:-1] if unit else s
    return int(num) << units[unit]


_out_lock = threading.Lock()


def log(*args):
    with _out_lock:
        sys.stderr.write(" ".join(str(a) for a in args) + "\n")
        sys.stderr.flush()


def say(line):
    """One whole line on stdout (threads must not interleave their lines)."""
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def close_notify(conn):
    """Send our close_notify (and take the peer's if it comes within 2 s), then close."""
    try:
        conn.settimeout(2)
        raw = conn.unwrap()
        raw.close()
        return
    except (OSError, ValueError, ssl.SSLError):
        pass
    try:
        conn.close()
    except OSError:
        pass


def send_pattern(conn, n):
    pat = pattern()
    off = 0
    while off < n:
        o = off % PERIOD
        ln = min(SLICE, n - off)
        conn.sendall(pat[o:o + ln])
        off += ln


def serve_tls(conn, args):
    mode = args.mode
    if mode in ("echo", "info"):
        if mode == "info":
            cert = conn.getpeercert() or {}
            cn = "-"
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v.replace(" ", "_")
            line = "sni=%s alpn=%s version=%s client=%s\n" % (
                getattr(conn, "sluice_sni", None) or "-",
                conn.selected_alpn_protocol() or "-", conn.version(), cn)
            conn.sendall(line.encode())
        while True:
            try:
                data = conn.recv(256 * 1024)
            except ssl.SSLEOFError:
                log("end: eof without close_notify")
                conn.close()
                return
            if not data:
                log("end: close_notify")
                break
            conn.sendall(data)
        close_notify(conn)
    elif mode == "sink":
        pat = pattern()
        count, bad, end = 0, None, "close_notify"
        while True:
            try:
                data = conn.recv(256 * 1024)
            except ssl.SSLEOFError:
                end = "eof"
                break
            if not data:
                break
            if bad is None:
                pos = 0
                while pos < len(data):
                    o = (count + pos) % PERIOD
                    ln = min(SLICE, len(data) - pos)
                    if pat[o:o + ln] != data[pos:pos + ln]:
                        for k in range(ln):
                            if pat[o + k] != data[pos + k]:
                                bad = count + pos + k
                                break
                        break
                    pos += ln
            count += len(data)
        say("sink %d %s %s" % (count, "ok" if bad is None else "mismatch-at-%d" % bad, end))
        if end == "close_notify":
            close_notify(conn)
        else:
            conn.close()
    elif mode == "source":
        send_pattern(conn, args.size)
        close_notify(conn)
    elif mode == "truncate":
        send_pattern(conn, args.size)
        # SSLSocket.shutdown drops the TLS layer without close_notify and sends a FIN.
        conn.shutdown(socket.SHUT_WR)
        try:
            conn.settimeout(5)
            while conn.recv(65536):
                pass
        except OSError:
            pass
        conn.close()


def read_client_hello(sock):
    """Read one TLS record (the ClientHello) or until EOF; returns the bytes read."""
    buf = b""
    while len(buf) < 5:
        chunk = sock.recv(65536)
        if not chunk:
            return buf
        buf += chunk
    need = 5 + struct.unpack("!H", buf[3:5])[0]
    while len(buf) < need:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def serve_raw(sock, args):
    hello = read_client_hello(sock)
    log("hs: read %d bytes" % len(hello))
    if args.mode == "hs-reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif args.mode == "hs-garbage":
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    elif args.mode == "hs-stall":
        while sock.recv(65536):
            pass
    sock.close()


def handle(sock, ctx, args):
    try:
        if args.mode.startswith("hs-"):
            serve_raw(sock, args)
            return
        sock.settimeout(30)
        conn = ctx.wrap_socket(sock, server_side=True, suppress_ragged_eofs=False)
        conn.settimeout(None)
        serve_tls(conn, args)
    except Exception as e:  # a client that goes away is normal here
        log("client: %s: %s" % (type(e).__name__, e))
        try:
            sock.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-6", dest="ipv6", action="store_true")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--cafile")
    ap.add_argument("--alpn")
    ap.add_argument("--tls1_2", action="store_true")
    ap.add_argument("--tls1_3", action="store_true")
    ap.add_argument("mode", choices=["echo", "info", "sink", "source", "truncate", "hs-close",
                                     "hs-reset", "hs-garbage", "hs-stall"])
    ap.add_argument("arg", nargs="?")
    args = ap.parse_args()
    if args.mode in ("source", "truncate"):
        if args.arg is None:
            ap.error("%s needs a size" % args.mode)
        args.size = parse_size(args.arg)

    ctx = None
    if not args.mode.startswith("hs-"):
        if not (args.cert and args.key):
            ap.error("--cert and --key are required for TLS modes")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if args.tls1_2:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if args.tls1_3:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        if args.cafile:
            ctx.load_verify_locations(args.cafile)
            ctx.verify_mode = ssl.CERT_REQUIRED
        if args.alpn:
            ctx.set_alpn_protocols(args.alpn.split(","))

        def sni_cb(conn, name, _ctx):
            conn.sluice_sni = name
            return None
        ctx.sni_callback = sni_cb

    family = socket.AF_INET6 if args.ipv6 else socket.AF_INET
    host = "::1" if args.ipv6 else "127.0.0.1"
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((host, 0))
    lsock.listen(512)
    if args.mode in ("source", "truncate", "sink"):
        pattern()   # before the port line: no client waits for it
    print(lsock.getsockname()[1], flush=True)
    while True:
        sock, _ = lsock.accept()
        threading.Thread(target=handle, args=(sock, ctx, args), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        os._exit(0)
