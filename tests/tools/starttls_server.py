#!/usr/bin/env python3
"""starttls_server.py: a small line-based STARTTLS server for tls_starttls_spec.lua.

Binds 127.0.0.1 (or ::1 with -6) on an ephemeral port, prints the port alone on the
first stdout line (flushed), serves every client in a thread of its own until
SIGTERM/SIGINT.

Usage: starttls_server.py [-6 | --unix PATH] --cert FILE --key FILE
  --unix PATH listens on a Unix socket at PATH instead (and prints 0 as its port)

Protocol (lines end in CRLF; a bare LF is accepted):
  server greets     "220 ready"
  plain text:
    "ECHO text"       -> "250 text"
    "STARTTLS"        -> "220 go ahead", then the TLS handshake (server side)
    "STARTTLS-NOW"    -> no answer: the TLS handshake starts at once (so the client may
                         send it and call starttls() without waiting)
    "STARTTLS-INJECT" -> "220 go ahead" and "INJECTED" in one segment, then as STARTTLS
    "STARTTLS-LATE"   -> "220 go ahead", then "INJECTED-LATE" in plain text 0.3 s later
                         (after the client's ClientHello), then as STARTTLS
    "STARTTLS-LSP"    -> "220 go ahead", then the head of an LSP message of 2,000,000
                         bytes and its first 100 bytes, in one segment, then as STARTTLS
    "QUIT"            -> "221 bye", close
    anything else     -> "500 unknown"
  after the handshake, inside TLS:
    first the server sends "230 tls VERSION"
    "STARTTLS-INJECT" -> "220 go ahead" and "INJECTED" in one segment, then as STARTTLS
    "STARTTLS-LATE"   -> "220 go ahead", then "INJECTED-LATE" in plain text 0.3 s later
                         (after the client's ClientHello), then as STARTTLS
    "QUIT"            -> "221 bye", close_notify, close
    any other line    -> echoed back as it came
The plain-text phase reads one byte at a time, so no byte of the ClientHello that
follows a STARTTLS line is ever taken by the line reader.

Stdout, after the port line, for tests to check what reached the server:
  "plain-after-starttls BYTES"   the client sent something other than a TLS
                                 record after STARTTLS (BYTES: Python repr); closed
  "tls-line TEXT"                a line received inside TLS
"""
import argparse
import socket
import ssl
import sys
import threading
import time


_log_lock = threading.Lock()


def log(*args):
    with _log_lock:
        sys.stderr.write(" ".join(str(a) for a in args) + "\n")
        sys.stderr.flush()


def read_line_plain(sock):
    buf = bytearray()
    while True:
        b = sock.recv(1)
        if not b:
            return None
        buf += b
        if b == b"\n":
            return bytes(buf).rstrip(b"\r\n").decode("latin-1")


def report(text):
    with _log_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def tls_record_next(sock):
    """Is what the client sends next a TLS handshake record? (Peeked, not taken.)"""
    first = sock.recv(64, socket.MSG_PEEK)
    if first[:1] == b"\x16":
        return True
    report("plain-after-starttls %r" % first)
    return False


def handle(sock, ctx):
    try:
        sock.settimeout(60)
        sock.sendall(b"220 ready\r\n")
        while True:
            line = read_line_plain(sock)
            if line is None:
                sock.close()
                return
            if line.startswith("ECHO "):
                sock.sendall(("250 " + line[5:] + "\r\n").encode("latin-1"))
            elif line == "QUIT":
                sock.sendall(b"221 bye\r\n")
                sock.close()
                return
            elif line in ("STARTTLS", "STARTTLS-NOW", "STARTTLS-INJECT", "STARTTLS-LATE", "STARTTLS-LSP"):
                if line == "STARTTLS-INJECT":
                    sock.sendall(b"220 go ahead\r\nINJECTED\r\n")
                elif line == "STARTTLS-LSP":
                    sock.sendall(b"220 go ahead\r\nContent-Length: 2000000\r\n\r\n" + b"P" * 100)
                elif line != "STARTTLS-NOW":
                    sock.sendall(b"220 go ahead\r\n")
                if line == "STARTTLS-LATE":
                    time.sleep(0.3)
                    sock.sendall(b"INJECTED-LATE\r\n")
                break
            else:
                sock.sendall(b"500 unknown\r\n")
        if not tls_record_next(sock):
            sock.close()
            return
        conn = ctx.wrap_socket(sock, server_side=True)
        conn.sendall(("230 tls %s\r\n" % conn.version()).encode())
        buf = b""
        while True:
            data = conn.recv(65536)
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                report("tls-line " + line.rstrip(b"\r").decode("latin-1"))
                if line.rstrip(b"\r") == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    try:
                        conn.settimeout(2)
                        conn.unwrap().close()
                    except (OSError, ValueError, ssl.SSLError):
                        conn.close()
                    return
                conn.sendall(line + b"\n")
        try:
            conn.settimeout(2)
            conn.unwrap().close()
        except (OSError, ValueError, ssl.SSLError):
            conn.close()
    except Exception as e:  # a client that goes away is normal here
        log("client: %s: %s" % (type(e).__name__, e))
        try:
            sock.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-6", dest="ipv6", action="store_true")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--unix")
    args = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.unix:
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(args.unix)
    else:
        family = socket.AF_INET6 if args.ipv6 else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("::1" if args.ipv6 else "127.0.0.1", 0))
    lsock.listen(64)
    print(0 if args.unix else lsock.getsockname()[1], flush=True)
    while True:
        sock, _ = lsock.accept()
        threading.Thread(target=handle, args=(sock, ctx), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
