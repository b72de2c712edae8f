#!/usr/bin/env python3
"""frame_peer.py: the loopback peer of frame_spec.lua. Listens on 127.0.0.1 (an
ephemeral port, printed alone on the first stdout line) or on a Unix socket
(--unix PATH; then it prints 0), accepts one client, sends the bytes of FILE
as MODE says, then closes the connection and exits.

Modes:
  split    for every k in 1..len-1: FILE[:k], a pause, FILE[k:]: the file's
           bytes len-1 times over, each copy cut at another byte boundary
  trickle  one byte at a time, with a pause after each
  raw      all at once
Before closing it waits (at most 10 s) for the client to close or send
anything, so the close never races the client's reads."""
import argparse
import os
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unix", default="")
    ap.add_argument("--pause", type=float, default=0.002)
    ap.add_argument("mode", choices=["split", "trickle", "raw"])
    ap.add_argument("file")
    a = ap.parse_args()
    data = open(a.file, "rb").read()
    if a.unix:
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(a.unix):
            os.unlink(a.unix)
        srv.bind(a.unix)
        port = 0
    else:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.bind(("127.0.0.1", 0))
        port = srv.getsockname()[1]
    srv.listen(1)
    print(port, flush=True)
    conn, _ = srv.accept()
    if not a.unix:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if a.mode == "split":
        for k in range(1, len(data)):
            conn.sendall(data[:k])
            time.sleep(a.pause)
            conn.sendall(data[k:])
    elif a.mode == "trickle":
        for i in range(len(data)):
            conn.sendall(data[i:i + 1])
            time.sleep(a.pause)
    else:
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
    conn.settimeout(10)
    try:
        conn.recv(1)
    except OSError:
        pass
    conn.close()


if __name__ == "__main__":
    main()
