#!/usr/bin/env python3
"""HTTP test server for tests/lua/http_spec.lua and tests/plugin/editor_spec.lua.

    http_test_server.py [-6] [--cert PEM --key KEY] DIR

Serves the files of DIR like `python3 -m http.server` (Content-Length bodies)
on 127.0.0.1 (or ::1 with -6) on an ephemeral port, and prints the port on
the first line of stdout. With --cert/--key it speaks HTTPS instead.
HTTP/1.1 responses; the connection closes after each response (the client
sends Connection: close). Extra paths, for the cases http.server lacks:

  /chunked/NAME            the file NAME, chunked transfer encoding, chunks of
                           random sizes (1 byte .. 64 KiB), with extensions and
                           a trailer
  /close/NAME              the file NAME as an HTTP/1.0-style body: no
                           Content-Length, ends when the server closes
  /redirect/N/REST         302 to /redirect/N-1/REST (absolute and path-only
                           Locations alternate), and /redirect/1/REST 301 to
                           /REST: N redirects in all
  /relative/NAME           302 with a relative Location: "../NAME"
  /status/CODE             that status with a small text body
  /echo                    any method: the request line, headers and body
                           back as text/plain (Content-Length)
  /post-then-get           POST: 303 to /echo
  /stall                   headers with Content-Length 100, then 10 bytes,
                           then nothing for 30 s
  /short/NAME              Content-Length of the file + 1000, the file, close
  /delay/MS/NAME           the file NAME, once MS milliseconds have passed
  /late/MS                 "late", once MS milliseconds have passed, keeping the
                           connection open
  /goto?URL                302 to URL (anything after the ?)
  /goto307?URL             307 to URL
  /goto-raw?URL            302 to URL percent-decoded: raw spaces and UTF-8
  /gzip/NAME, /deflate/NAME  the file with Content-Encoding gzip / deflate
  /gzip2/NAME              the file gzip'd twice, in two Content-Encoding lines
                           (zlib-wrapped); /rawdeflate/NAME: deflate without
                           the zlib wrapper, as some servers send it
  /bomb                    64 MiB of zeros, gzip'd (about 64 KiB)
  /interim/NAME            "100 Continue" and "102 Processing", then the file
  /range/NAME              the file, honouring "Range: bytes=N-" with a 206
  /range/short-NAME        as /range/NAME, but a 206 covers 50 bytes at most (its
                           Content-Range says which), as a server capping ranges
  /conn-id[?close]         the client's port, keeping the connection open (with
                           ?close: claiming to, then closing it)
  /raw/NAME                the bytes of the file NAME as the whole response
                           (status line and headers included), then close
  /seen?PATH               how many requests for PATH (path and query, as
                           sent) arrived so far
  /json-echo               any method: what arrived as JSON (method, path,
                           headers, body) and, for a form, JSON or multipart
                           body, the decoded "form" (multipart file parts as
                           {filename, content_type, data})
  /sse                     an event stream (ids, retry, names, comments,
                           multi-line data, CRLF/CR/LF line ends, a BOM) sent
                           in odd pieces with pauses, then close; the first
                           event's data is the Last-Event-ID header received
"""
import argparse
import collections
import email
import email.policy
import functools
import gzip
import json
import os
import random
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import zlib
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


SSE_STREAM = (
    b"\xef\xbb\xbf: a comment first\n"
    b"retry: 1500\nid: 1\nevent: hello\ndata: {last}\n\n"
    b"data: line one\r\ndata: line two\r\nid: 2\r\n\r\n"
    b"event: update\rdata:no space\rdata\r\r"
    b"id\ndata: empty id\n\n"
    b"retry: soon\ndata:  two spaces\n\n"
    b": only a comment\n\n"
    b"data: last without blank line"
)


def raw_deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


SEEN = collections.Counter()   # request targets as they arrived, for /seen
SEEN_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def bomb():
    return gzip.compress(bytes(64 << 20), 9)


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: stderr goes to a temp file
        pass

    def _file(self, name):
        path = os.path.join(self.directory, name.lstrip("/"))
        real = os.path.realpath(path)
        if not real.startswith(os.path.realpath(self.directory) + os.sep):
            return None
        try:
            with open(real, "rb") as f:
                return f.read()
        except OSError:
            return None

    def _simple(self, code, body, headers=()):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True
        return True

    def _keep(self, code, body, headers=()):
        """A response that leaves the connection open for the next request."""
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        return True

    def _stream_echo(self):
        """Answers at once, then echoes the request body as it comes, chunked.
        It reads nothing for a moment, so the client has the head while most
        of a large body is still its to send."""
        left = int(self.headers.get("Content-Length") or 0)
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        time.sleep(0.3)
        while left > 0:
            data = self.rfile.read1(min(left, 65536))
            if not data:
                break
            left -= len(data)
            self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        return True

    def _upgrade(self):
        """101, then another protocol: an HTTP request sent here gets no HTTP answer."""
        self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\n")
        self.wfile.flush()
        if self.rfile.read1(65536):
            self.wfile.write(b"OTHER PROTOCOL\r\n\r\n")
        self.close_connection = True
        return True

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _form(self, ctype, body):
        if ctype.startswith("application/x-www-form-urlencoded"):
            return {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}
        if ctype.startswith("application/json"):
            return json.loads(body)
        if ctype.startswith("multipart/form-data"):
            msg = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body,
                                           policy=email.policy.HTTP)
            form = {}
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                data = part.get_payload(decode=True)
                if part.get_filename():
                    form[name] = {"filename": part.get_filename(), "content_type": part.get_content_type(),
                                  "data": data.decode("latin-1")}
                else:
                    form[name] = data.decode()
            return form
        return None

    def _json_echo(self):
        body = self._read_body()
        ctype = self.headers.get("Content-Type") or ""
        out = {"method": self.command, "path": self.path, "body": body.decode("latin-1"),
               "headers": {k.lower(): v for k, v in self.headers.items()}, "form": self._form(ctype, body)}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.close_connection = True
        return True

    def _sse(self):
        self._read_body()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        data = SSE_STREAM.replace(b"{last}", (self.headers.get("Last-Event-ID") or "none").encode())
        rnd = random.Random(7)
        pos = 0
        while pos < len(data):  # pieces that split lines, CRLFs and the BOM
            n = rnd.choice([1, 2, 3, 5, 11])
            self.wfile.write(data[pos:pos + n])
            self.wfile.flush()
            pos += n
            time.sleep(0.002)
        self.close_connection = True
        return True

    def _route(self):
        with SEEN_LOCK:
            SEEN[self.path] += 1
        p = self.path.split("?", 1)[0]
        if p == "/seen":
            with SEEN_LOCK:
                n = SEEN[self.path.partition("?")[2]]
            return self._keep(200, b"%d" % n)
        if p.startswith("http://"):  # absolute form: the server stands in for an http proxy
            p = "/" + p.split("/", 3)[3] if p.count("/") >= 3 else "/"
        if p == "/empty":
            return self._keep(200, b"", [("Content-Encoding", "gzip")] if self.path.endswith("?gzip") else [])
        if p == "/stream-echo":
            return self._stream_echo()
        if p == "/upgrade":
            return self._upgrade()
        if p == "/json-echo":
            return self._json_echo()
        if p == "/sse":
            return self._sse()
        if p.startswith("/chunked/"):
            data = self._file(p[len("/chunked/"):])
            if data is None:
                return self._simple(404, b"no such file\n")
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Checksum")
            self.send_header("Connection", "close")
            self.end_headers()
            rnd = random.Random(len(data))
            pos = 0
            while pos < len(data):
                n = min(len(data) - pos, rnd.choice([1, 7, 100, 4096, 16384, 65536, rnd.randint(1, 65536)]))
                ext = b";ext=1" if rnd.random() < 0.2 else b""
                self.wfile.write(b"%x%s\r\n" % (n, ext) + data[pos:pos + n] + b"\r\n")
                pos += n
            self.wfile.write(b"0\r\nX-Checksum: none\r\n\r\n")
            self.close_connection = True
            return True
        if p.startswith("/close/"):
            data = self._file(p[len("/close/"):])
            if data is None:
                return self._simple(404, b"no such file\n")
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
            return True
        if p.startswith("/short/"):
            data = self._file(p[len("/short/"):])
            if data is None:
                return self._simple(404, b"no such file\n")
            self.send_response(200)
            self.send_header("Content-Length", str(len(data) + 1000))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
            return True
        if p.startswith("/late/"):
            time.sleep(int(p[len("/late/"):]) / 1000)
            return self._keep(200, b"late\n")
        if p.startswith("/delay/"):
            ms, _, name = p[len("/delay/"):].partition("/")
            time.sleep(int(ms) / 1000)
            data = self._file(name)
            if data is None:
                return self._simple(404, b"no such file\n")
            return self._simple(200, data)
        if p.startswith("/redirect/"):
            n, _, rest = p[len("/redirect/"):].partition("/")
            n = int(n)
            if n <= 1:
                return self._simple(301, b"moved\n", [("Location", "/" + rest)])
            loc = "/redirect/%d/%s" % (n - 1, rest)
            host = self.headers.get("Host")
            if n % 2 == 0 and host:  # absolute and path-only Locations alternate
                scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
                loc = "%s://%s%s" % (scheme, host, loc)
            return self._simple(302, b"found\n", [("Location", loc)])
        if p.startswith("/relative/"):
            return self._simple(302, b"found\n", [("Location", "../" + p[len("/relative/"):])])
        if p.startswith("/status/"):
            code = int(p[len("/status/"):])
            return self._simple(code, b"status %d\n" % code)
        if p == "/echo":
            body = self._read_body()
            head = "%s %s\n" % (self.command, self.path)
            for k, v in self.headers.items():
                head += "%s: %s\n" % (k.lower(), v)
            if self.path.endswith("?keep"):
                head += "x-peer-port: %d\n" % self.client_address[1]
                return self._keep(200, head.encode() + b"\n" + body)
            return self._simple(200, head.encode() + b"\n" + body)
        if p == "/goto":
            return self._simple(302, b"found\n", [("Location", self.path.partition("?")[2])])
        if p == "/goto-raw":   # the Location percent-decoded, bytes as they are (a space, UTF-8)
            loc = urllib.parse.unquote_to_bytes(self.path.partition("?")[2]).decode("latin-1")
            return self._simple(302, b"found\n", [("Location", loc)])
        if p == "/goto307":
            self._read_body()
            return self._simple(307, b"temporary\n", [("Location", self.path.partition("?")[2])])
        for prefix, encode in (("/gzip/", gzip.compress), ("/deflate/", zlib.compress), ("/rawdeflate/", raw_deflate)):
            if p.startswith(prefix):
                data = self._file(p[len(prefix):])
                if data is None:
                    return self._simple(404, b"no such file\n")
                return self._simple(200, encode(data), [("Content-Encoding", prefix.strip("/").replace("raw", ""))])
        if p.startswith("/gzip2/"):   # gzip'd twice, said in two Content-Encoding lines
            data = self._file(p[len("/gzip2/"):])
            if data is None:
                return self._simple(404, b"no such file\n")
            return self._simple(200, gzip.compress(gzip.compress(data)),
                                [("Content-Encoding", "gzip"), ("Content-Encoding", "identity, gzip")])
        if p == "/bomb":
            return self._simple(200, bomb(), [("Content-Encoding", "gzip")])
        if p.startswith("/range/"):
            short = p.startswith("/range/short-")   # 50 bytes a range at most, said so in Content-Range
            data = self._file(p[len("/range/"):].replace("part-", "", 1).replace("short-", "", 1))
            if data is None:
                return self._simple(404, b"no such file\n")
            rng = self.headers.get("Range", "")
            if p.startswith("/range/part-") and not rng:   # a broken server: a part, never asked for
                return self._simple(206, data[:10], [("Content-Range", "bytes 0-9/%d" % len(data))])
            if not rng.startswith("bytes=") or not rng.endswith("-"):
                return self._simple(200, data)
            first = int(rng[6:-1])
            if first >= len(data):
                return self._simple(416, b"range not satisfiable\n", [("Content-Range", "bytes */%d" % len(data))])
            last = min(len(data), first + 50) - 1 if short else len(data) - 1
            return self._simple(206, data[first:last + 1], [("Content-Range", "bytes %d-%d/%d" % (first, last, len(data)))])
        if p.startswith("/kept-redirect/"):   # kept alive, a short body (?empty: none), one write
            body = b"" if self.path.endswith("?empty") else b"moved here\n"
            self.wfile.write(b"HTTP/1.1 302 Found\r\nLocation: /%s\r\nX-Conn-Id: %d\r\nContent-Length: %d\r\n\r\n%s" % (
                p[len("/kept-redirect/"):].encode(), self.client_address[1], len(body), body))
            self._read_body()   # answered before the request body: read it still, and stay open
            return True
        if p == "/conn-id":
            body = b"%d" % self.client_address[1]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = self.path.endswith("?close")
            return True
        if p.startswith("/interim/"):
            data = self._file(p[len("/interim/"):])
            if data is None:
                return self._simple(404, b"no such file\n")
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX-Step: 1\r\n\r\n")
            return self._simple(200, data)
        if p.startswith("/raw/"):
            data = self._file(p[len("/raw/"):])
            if data is None:
                return self._simple(404, b"no such file\n")
            self.wfile.write(data)
            self.close_connection = True
            return True
        if p == "/refuse-unread":   # 413 (?slow: after 1 s), then a close that resets: the body is unread
            if self.path.endswith("?slow"):
                time.sleep(1)
            self.wfile.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n")
            self.wfile.flush()
            self.connection.close()
            self.close_connection = True
            return True
        if p == "/answer-early":   # 200 before the body: ?close leaves it unread, ?read takes it after
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            self.wfile.flush()
            if self.path.endswith("?close"):
                self.connection.close()
                self.close_connection = True
                return True
            n = len(self._read_body())
            with open(os.path.join(self.directory, "answer-early.len"), "w") as f:
                f.write(str(n))
            return True
        if p == "/post-then-get":
            self._read_body()
            return self._simple(303, b"see other\n", [("Location", "/echo")])
        if p == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            time.sleep(30)
            self.close_connection = True
            return True
        return None

    def _dispatch(self, fallback):
        try:
            if not self._route():
                fallback()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def do_GET(self):
        self._dispatch(lambda: SimpleHTTPRequestHandler.do_GET(self))

    def do_HEAD(self):
        self._dispatch(lambda: SimpleHTTPRequestHandler.do_HEAD(self))

    def do_POST(self):
        self._dispatch(lambda: self._simple(405, b"method not allowed\n"))

    do_PUT = do_POST
    do_DELETE = do_POST
    do_PATCH = do_POST
    do_OPTIONS = do_POST


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ssl_context = None

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass  # clients that go away mid-response are part of the tests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-6", dest="ipv6", action="store_true")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("dir")
    a = ap.parse_args()

    class Bound(Server):
        address_family = socket.AF_INET6 if a.ipv6 else socket.AF_INET

    directory = os.path.abspath(a.dir)

    def handler(*args, **kw):
        return Handler(*args, directory=directory, **kw)

    srv = Bound(("::1" if a.ipv6 else "127.0.0.1", 0), handler)
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        srv.ssl_context = ctx
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
