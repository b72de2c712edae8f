#!/usr/bin/env python3
"""fake_proxy.py: a scripted proxy for proxy_spec: well-behaved ones that record what
they were asked and echo, and hostile ones.

Binds one ephemeral port on 127.0.0.1 per MODE, prints the ports (in the order of the
modes, separated by spaces) on the first stdout line, then one line per handshake it
saw ("MODE: http CONNECT host:port auth=..." or "MODE: socks atyp=N host=H port=P"),
and serves until SIGTERM. One thread per client.

Usage: fake_proxy.py MODE [MODE...]
  http-ok          answer CONNECT with 200 and "BANNER\\n" in the same packet, then echo
  socks-ok         SOCKS5 without auth; the success reply and "BANNER\\n" in one packet, then echo
  http-interim     answer CONNECT with "100 Continue" and "102 Processing" heads, sent
                   apart, before the 200, then "BANNER\\n" and echo (RFC 9110 15.2)
  http-garbage     answer CONNECT with an SSH banner
  http-oversized   answer with a status line and a header that never ends (20000 bytes)
  http-close       read the request, close
  socks-truncated  method 0, then 5 bytes of a CONNECT reply, then close
  socks-short-refusal  method 0, then only the first two bytes of a refusal, then silence
  socks-garbage    answer the greeting with an HTTP error
  socks-close      read the greeting, close
  silent           read, never answer
"""
import socket
import sys
import threading
import time


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return None
        data += chunk
    return data


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def log(line):
    sys.stdout.write("%s: %s\n" % (threading.current_thread().name, line))
    sys.stdout.flush()


def echo(s):
    while True:
        data = s.recv(65536)
        if not data:
            return
        s.sendall(data)


def hold(s):
    while s.recv(65536):
        pass


def socks_request(s):
    """The greeting, then the CONNECT request; logs it. False if the client went away."""
    head = recv_exact(s, 2)
    if not head or recv_exact(s, head[1]) is None:
        return False
    s.sendall(b"\x05\x00")
    req = recv_exact(s, 4)
    if not req:
        return False
    atyp = req[3]
    if atyp == 1:
        host = socket.inet_ntop(socket.AF_INET, recv_exact(s, 4))
    elif atyp == 4:
        host = socket.inet_ntop(socket.AF_INET6, recv_exact(s, 16))
    else:
        host = recv_exact(s, recv_exact(s, 1)[0]).decode("ascii", "replace")
    port = int.from_bytes(recv_exact(s, 2), "big")
    log("socks atyp=%d host=%s port=%d" % (atyp, host, port))
    return True


def http_request(s):
    head = read_head(s)
    if head is None:
        return False
    lines = head.decode("latin-1").split("\r\n")
    auth = [l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("proxy-authorization:")]
    log("http %s auth=%s" % (lines[0].rsplit(" ", 1)[0], auth[0] if auth else "-"))
    return True


def serve(s, mode):
    if mode == "silent":
        hold(s)
    elif mode.startswith("http-"):
        if not http_request(s):
            return
        if mode == "http-ok":
            s.sendall(b"HTTP/1.1 200 Connection established\r\n\r\nBANNER\n")
            echo(s)
        elif mode == "http-interim":
            s.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Proc")
            time.sleep(0.05)
            s.sendall(b"essing\r\nX: y\r\n\r\n")
            time.sleep(0.05)
            s.sendall(b"HTTP/1.1 200 Connection established\r\n\r\nBANNER\n")
            echo(s)
        elif mode == "http-garbage":
            s.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            hold(s)
        elif mode == "http-oversized":
            s.sendall(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 20000)
            hold(s)
    elif mode == "socks-garbage":
        recv_exact(s, 3)
        s.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    elif mode == "socks-close":
        recv_exact(s, 3)
    elif socks_request(s):
        if mode == "socks-ok":
            s.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50BANNER\n")
            echo(s)
        elif mode == "socks-truncated":
            s.sendall(b"\x05\x00\x00\x01\x7f")
        elif mode == "socks-short-refusal":
            s.sendall(b"\x05\x05")
            hold(s)


def client(s, mode):
    try:
        serve(s, mode)
    except OSError:
        pass
    finally:
        s.close()


def listen(ls, mode):
    while True:
        s, _ = ls.accept()
        threading.Thread(target=client, args=(s, mode), name=mode, daemon=True).start()


def main():
    socks = []
    for _ in sys.argv[1:]:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.bind(("127.0.0.1", 0))
        ls.listen(16)
        socks.append(ls)
    sys.stdout.write(" ".join(str(ls.getsockname()[1]) for ls in socks) + "\n")
    sys.stdout.flush()
    for ls, mode in zip(socks, sys.argv[1:]):
        threading.Thread(target=listen, args=(ls, mode), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
