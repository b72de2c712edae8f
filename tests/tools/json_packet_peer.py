#!/usr/bin/env python3
"""json_packet_peer.py: the loopback peer of packet_spec.lua, written with
Python's json module so that sluice.packet's framing and JSON are checked
against another implementation. Listens on 127.0.0.1, an ephemeral port
printed alone on the first stdout line; one thread per client; serves until
killed. With --cert/--key it speaks TLS.

Modes:
  packets   reads packets (4-byte big-endian length, then JSON) and answers
            each with the packet {"echo": VALUE, "count": N} (N counts the
            client's packets from 1)
  lines     the same with JSON lines ("\\n" after each text)
  huge      sends a header announcing 600 KiB, then that many bytes of JSON
            text (over sluice.packet's 512 KiB cap)
  hugeline  sends a JSON line of 600 KiB, then a small one
  blanks    sends blank lines as fast as it can for 10 s
  garbage   sends one packet whose payload is not JSON
  silent    reads and never answers
  hangup    reads one packet and closes without answering
"""
import argparse
import json
import socket
import ssl
import struct
import threading
import time


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_packet(conn):
    head = read_exact(conn, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">I", head)
    return read_exact(conn, size)


def send_packet(conn, payload):
    conn.sendall(struct.pack(">I", len(payload)) + payload)


def serve_packets(conn):
    count = 0
    while True:
        payload = read_packet(conn)
        if payload is None:
            return
        count += 1
        reply = {"echo": json.loads(payload), "count": count}
        send_packet(conn, json.dumps(reply, ensure_ascii=False).encode())


def serve_lines(conn):
    count = 0
    f = conn.makefile("rb")
    for line in f:
        count += 1
        reply = {"echo": json.loads(line), "count": count}
        conn.sendall(json.dumps(reply).encode() + b"\n")


def serve(conn, mode):
    try:
        if mode == "packets":
            serve_packets(conn)
        elif mode == "lines":
            serve_lines(conn)
        elif mode == "huge":
            size = 600 * 1024
            body = b'"' + b"x" * (size - 2) + b'"'
            send_packet(conn, body)
            read_exact(conn, 1)
        elif mode == "hugeline":
            conn.sendall(b'"' + b"x" * (600 * 1024) + b'"\n{"ok": 1}\n')
            read_exact(conn, 1)
        elif mode == "blanks":   # a keep-alive that never ends (for 10 s)
            end = time.monotonic() + 10
            while time.monotonic() < end:
                conn.sendall(b"\n" * 65536)
        elif mode == "garbage":
            send_packet(conn, b"this is not JSON")
            read_exact(conn, 1)
        elif mode == "silent":
            while conn.recv(65536):
                pass
        elif mode == "hangup":
            read_packet(conn)
    except (OSError, ValueError):
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("mode", choices=["packets", "lines", "huge", "hugeline", "blanks", "garbage", "silent",
                                         "hangup"])
    a = ap.parse_args()
    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    print(srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        if ctx:
            try:
                conn = ctx.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                conn.close()
                continue
        threading.Thread(target=serve, args=(conn, a.mode), daemon=True).start()


if __name__ == "__main__":
    main()
