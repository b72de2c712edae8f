#!/usr/bin/env python3
"""make_http_seeds.py: writes the seed corpora of fuzz_http_head, fuzz_http_chunked and
fuzz_inflate (tests/fuzz/corpus/<target>/). Not part of the build; run it again after
changing it:  python3 tests/fuzz/make_http_seeds.py
Each seed starts with the selector byte the target reads first."""
import gzip
import os
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

NGINX = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 30 Nov 2026 20:00:00 GMT\r\n"
         b"Content-Type: text/html\r\nContent-Length: 615\r\n"
         b"Last-Modified: Tue, 13 Jun 2023 15:08:10 GMT\r\nConnection: keep-alive\r\n"
         b"ETag: \"6488865a-267\"\r\nAccept-Ranges: bytes\r\n\r\n<!DOCTYPE html>")
NGINX_CHUNKED = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nContent-Encoding: gzip\r\n\r\n")
NGINX_304 = b"HTTP/1.1 304 Not Modified\r\nServer: nginx\r\nETag: \"x\"\r\n\r\n"
PYTHON = (b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\n"
          b"Date: Mon, 30 Nov 2026 20:00:00 GMT\r\nContent-type: text/plain\r\n"
          b"Content-Length: 12\r\n\r\nhello world\n")
PYTHON_404 = (b"HTTP/1.0 404 File not found\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\n"
              b"Connection: close\r\nContent-Type: text/html;charset=utf-8\r\nContent-Length: 335\r\n\r\n")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
BOTH = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
UPGRADE = (b"GET /chat?room=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n"
           b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")
POST = b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello"
TRAILER = b"Expires: never\r\nX-Checksum: 1234\r\n\r\n"
FOLDED = b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"

CHUNKED = (b"5\r\nhello\r\n6;name=value;flag\r\n world\r\n"
           b"1A \t; ext=\"quoted\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n"
           b"Expires: never\r\nX-Checksum: 1234\r\n\r\nHTTP/1.1 200 OK\r\n")


def chunk(data, sizes):
    out, i = b"", 0
    for n in sizes:
        out += b"%x\r\n" % n + data[i:i + n] + b"\r\n"
        i += n
    return out + b"0\r\n\r\n"


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    # fuzz_http_head: bit 0 request, bits 0-1 == 3 trailer, bits 2-3 cap, bit 4 field cap
    for name, sel, s in [("nginx", 0, NGINX), ("nginx-chunked", 0, NGINX_CHUNKED),
                         ("nginx-304", 0, NGINX_304), ("python", 0, PYTHON),
                         ("python-404", 0x20, PYTHON_404), ("continue", 0x40, CONTINUE),
                         ("cl-and-te", 0, BOTH), ("upgrade", 1, UPGRADE), ("post", 1, POST),
                         ("trailer", 3, TRAILER), ("folded", 0, FOLDED),
                         ("small-cap", 0x08, NGINX), ("few-fields", 0x10, NGINX)]:
        write("fuzz_http_head", name, bytes([sel]) + s)
    body = b"".join(b"line %d of a chunked body\n" % i for i in range(200))
    for name, s in [("trailer", CHUNKED), ("empty", b"0\r\n\r\n"),
                    ("many", chunk(body, [1, 2, 3, 100, 1000, len(body) - 1106])),
                    ("one", chunk(body, [len(body)])),
                    ("gzip", chunk(gzip.compress(body, mtime=0), [64, 512]))]:
        write("fuzz_http_chunked", name, b"\x07" + s)
    text = b"".join(b"{\"id\": %d, \"name\": \"plugin-%d\", \"version\": \"1.%d\"}\n" % (i, i, i)
                    for i in range(300))
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw_body = raw.compress(text) + raw.flush()
    ws = zlib.compressobj(6, zlib.DEFLATED, -9)
    ws_msg = ws.compress(text[:500]) + ws.flush(zlib.Z_SYNC_FLUSH)
    zeros = gzip.compress(b"\0" * (256 << 10), mtime=0)
    # fuzz_inflate: bits 0-1 kind (gzip, deflate, raw), bits 2-3 cap (64 KiB, 4096, 100, 1)
    for name, sel, s in [("gzip", 0, gzip.compress(text, mtime=0)),
                         ("gzip-small-cap", 4, gzip.compress(text, mtime=0)),
                         ("gzip-members", 0, gzip.compress(text[:100], mtime=0) + gzip.compress(text[100:900], mtime=0)),
                         ("gzip-padding", 0, gzip.compress(text[:100], mtime=0) + b"\0\0\0"),
                         ("gzip-garbage", 0, gzip.compress(text[:100], mtime=0) + b"<html>"),
                         ("gzip-zeros-bomb", 0, zeros),
                         ("deflate-zlib", 1, zlib.compress(text)),
                         ("deflate-raw", 1, raw_body),
                         ("raw-ws", 2 | 0x30, ws_msg[:-4] + b"\0\0\xff\xff"),
                         ("raw-tiny-cap", 2 | 0x0c, raw_body)]:
        write("fuzz_inflate", name, bytes([sel]) + s)


if __name__ == "__main__":
    main()
