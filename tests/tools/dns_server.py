#!/usr/bin/env python3
"""dns_server.py: a small DNS server on loopback for resolver_spec.lua: UDP and
TCP on one port (printed on the first line of stdout), every query logged as a
line "QUERY <proto> <name> <type>" to the file given with --log.

Names (class IN):
  a.test      A 127.0.0.1            six.test   AAAA ::1
  both.test   A 127.0.0.1, AAAA ::1  nx.test    NXDOMAIN
  fail.test   SERVFAIL               big.test   40 A records: too large for a
                                                512-byte UDP answer, so UDP says
                                                "truncated" and the client must
                                                ask again over TCP
  silent.test no answer at all (UDP and TCP)
  other names NXDOMAIN
Runs until killed."""
import argparse
import socket
import struct
import sys
import threading

A, AAAA = 1, 28
RECORDS = {
    "a.test": [(A, "127.0.0.1")],
    "six.test": [(AAAA, "::1")],
    "both.test": [(A, "127.0.0.1"), (AAAA, "::1")],
    "big.test": [(A, "127.0.0.%d" % i) for i in range(1, 41)],
}
log_lock = threading.Lock()


def log(path, line):
    if not path:
        return
    with log_lock, open(path, "a") as f:
        f.write(line + "\n")


def parse_query(msg):
    """(id, flags, name, qtype, question bytes) of a query, or None."""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd != 1:
        return None
    i, labels = 12, []
    while i < len(msg) and msg[i] != 0:
        n = msg[i]
        if n > 63 or i + 1 + n > len(msg):
            return None
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if i + 5 > len(msg):
        return None
    qtype = struct.unpack("!H", msg[i + 1:i + 3])[0]
    return qid, flags, ".".join(labels).lower(), qtype, msg[12:i + 5]


def answer(q, udp):
    """The reply to query q, or None for silence."""
    qid, flags, name, qtype, question = q
    if name == "silent.test":
        return None
    rcode, rrs = 0, []
    if name == "fail.test":
        rcode = 2
    elif name not in RECORDS:
        rcode = 3
    else:
        for rtype, ip in RECORDS[name]:
            if rtype != qtype:
                continue
            data = socket.inet_pton(socket.AF_INET if rtype == A else socket.AF_INET6, ip)
            rrs.append(b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 60, len(data)) + data)
    body = b"".join(rrs)
    tc = 0
    if udp and 12 + len(question) + len(body) > 512:
        rrs, body, tc = [], b"", 0x0200
    rflags = 0x8000 | (flags & 0x0100) | 0x0080 | tc | rcode
    return struct.pack("!HHHHHH", qid, rflags, 1, len(rrs), 0, 0) + question + body


def serve_udp(sock, logpath):
    while True:
        msg, peer = sock.recvfrom(4096)
        q = parse_query(msg)
        if not q:
            continue
        log(logpath, "QUERY udp %s %d" % (q[2], q[3]))
        r = answer(q, True)
        if r:
            sock.sendto(r, peer)


def serve_tcp_conn(conn, logpath):
    with conn:
        buf = b""
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            while len(buf) >= 2:
                n = struct.unpack("!H", buf[:2])[0]
                if len(buf) < 2 + n:
                    break
                msg, buf = buf[2:2 + n], buf[2 + n:]
                q = parse_query(msg)
                if not q:
                    return
                log(logpath, "QUERY tcp %s %d" % (q[2], q[3]))
                r = answer(q, False)
                if r:
                    conn.sendall(struct.pack("!H", len(r)) + r)


def serve_tcp(sock, logpath):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve_tcp_conn, args=(conn, logpath), daemon=True).start()


def bind_pair(host):
    """A UDP and a TCP socket on the same free port."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((host, 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, port))
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen(16)
        return udp, tcp, port
    raise SystemExit("no free port")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", default="")
    args = ap.parse_args()
    udp, tcp, port = bind_pair("127.0.0.1")
    threading.Thread(target=serve_tcp, args=(tcp, args.log), daemon=True).start()
    print(port, flush=True)
    serve_udp(udp, args.log)


if __name__ == "__main__":
    main()
