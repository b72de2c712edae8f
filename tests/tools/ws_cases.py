#!/usr/bin/python3
"""ws_cases.py: a WebSocket case peer in the style of the Autobahn test suite, on raw
sockets (frames made by hand here, malformed ones included; zlib for
permessage-deflate). The side under test runs an echo loop: every message it
receives goes back with the same type. For each case this peer sends exactly the
frames the case needs, then checks what comes back: the echoed messages, pongs, the
close frame's code, and that the TCP connection ends.

  ws_cases.py list
      one line per case: "ID SECTION CODE DESC", CODE the close code the side under
      test ends up with (the peer's when the peer closed, its own when it failed the
      connection: its get_close()), "-" when more than one is right
  ws_cases.py server [--max-message N] [--timeout S]
      binds 127.0.0.1 on an ephemeral port, prints the port alone on the first
      stdout line; the request path "/ID" picks the case of each connection (an
      unknown one gets 404). "/hang" completes the handshake, then reads and
      discards everything and answers nothing (a dead peer); "/slow" sends one
      2 MiB message as a single frame over 1.6 s (no pong can pass it), "/flood"
      40 binary messages of 64 KiB at once, both then answering pings until the
      side under test closes; "/stream" sends "tick" every 20 ms for a minute,
      answering nothing (a peer that ignores the close); "/pings" answers pings, printing "ping MS" for each
      (ms since the handshake); "/msgbad" sends a text message and a reserved
      opcode in one write, then waits for the end; "/slowread" reads at about 1 MB/s, answering pings
      and the close as it comes to them; "/stall" answers no
      handshake at all; "/hs-*" give a bad handshake answer (BAD_HANDSHAKES) or an
      unusual good one, then a message to echo (GOOD_HANDSHAKES).
  ws_cases.py client URL [--max-message N] [--timeout S] [ID...]
      runs the cases (all by default), each on its own connection to URL + ID.
Each case prints "ok ID DESC" or "FAIL ID DESC: why" (flushed); the client prints
"done passed=N failed=M" at the end. --max-message is the side under test's
max_message (section 9 and 13 go past it; default 2 MiB).
"""
import base64
import fcntl
import hashlib
import os
import select
import socket
import struct
import sys
import termios
import threading
import time
import urllib.parse
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
MiB = 1024 * 1024
MAX = 2 * MiB
TIMEOUT = 20.0


def out(line):
    print(line, flush=True)


def xor(data, key):
    n = len(data)
    if n == 0:
        return data
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def close_payload(code, reason=b""):
    return code.to_bytes(2, "big") + reason


class Fail(Exception):
    pass


class Conn:
    """One connection after the opening handshake; role "server" or "client" (this
    peer's role). deflate: None or the agreed parameters (dict)."""

    def __init__(self, sock, role, rest=b"", deflate=None):
        self.sock, self.role, self.buf = sock, role, bytearray(rest)
        self.out = bytearray()
        self.eof = self.reset = False
        self.msg, self.last_compressed = None, False
        self.keys = set()   # their masking keys so far
        self.deflate = deflate
        self.inflater = self.deflater = None
        self.chunk, self.pace = 256 * 1024, 0   # bytes per read, seconds after each
        sock.setblocking(False)

    # --- frames this peer sends
    def f(self, op, payload=b"", fin=True, rsv=0, mask=None, length=None):
        """A frame: masked when this peer is the client unless mask says otherwise;
        length overrides the announced payload length."""
        if mask is None:
            mask = self.role == "client"
        n = len(payload) if length is None else length
        b = bytearray([(0x80 if fin else 0) | (rsv << 4) | op])
        mbit = 0x80 if mask else 0
        if n < 126:
            b.append(mbit | n)
        elif n < 65536:
            b.append(mbit | 126)
            b += n.to_bytes(2, "big")
        else:
            b.append(mbit | 127)
            b += n.to_bytes(8, "big")
        if mask:
            key = os.urandom(4)
            b += key
            payload = xor(payload, key)
        return bytes(b) + payload

    def z(self, payload):
        """payload compressed as one permessage-deflate message of this peer."""
        d = self.deflate
        mine = "client" if self.role == "client" else "server"
        if self.deflater is None or d[mine + "_no_context_takeover"]:
            self.deflater = zlib.compressobj(6, zlib.DEFLATED, -d[mine + "_max_window_bits"])
        data = self.deflater.compress(payload) + self.deflater.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        return data[:-4]

    def unz(self, payload):
        d = self.deflate
        theirs = "server" if self.role == "client" else "client"
        if self.inflater is None or d[theirs + "_no_context_takeover"]:
            self.inflater = zlib.decompressobj(-d[theirs + "_max_window_bits"])
        try:
            return self.inflater.decompress(payload + b"\x00\x00\xff\xff")
        except zlib.error as e:
            raise Fail("their compressed message does not inflate with window bits %d: %s"
                       % (d[theirs + "_max_window_bits"], e))

    # --- I/O
    def pump(self, deadline):
        """Write what is queued and read what is there; waits until one of them moves."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise Fail("timed out")
        w = [self.sock] if self.out else []
        r, wr, _ = select.select([self.sock] if not self.eof else [], w, [], min(left, 0.5))
        if wr:
            try:
                n = self.sock.send(self.out[:256 * 1024])
                del self.out[:n]
            except (BrokenPipeError, ConnectionResetError):
                self.out.clear()   # they stopped reading: what they sent may still be here
        if r:
            try:
                data = self.sock.recv(self.chunk)
                time.sleep(self.pace)
            except ConnectionResetError:
                self.reset = True
                data = b""
            if data:
                self.buf += data
            else:
                self.eof = True
        if self.eof and not r and not wr and not self.out:
            time.sleep(0.01)

    def send(self, data):
        self.out += data

    def frame(self, deadline):
        """Their next frame: (fin, rsv, op, payload); None at EOF."""
        while True:
            b = self.buf
            if len(b) >= 2:
                masked, n, pos = b[1] & 0x80, b[1] & 0x7F, 2
                if n == 126:
                    n, pos = (int.from_bytes(b[2:4], "big") if len(b) >= 4 else -1), 4
                elif n == 127:
                    n, pos = (int.from_bytes(b[2:10], "big") if len(b) >= 10 else -1), 10
                if masked:
                    pos += 4
                if n >= 0 and len(b) >= pos + n:
                    if bool(masked) != (self.role == "server"):
                        raise Fail("their frame is %smasked" % ("" if masked else "not "))
                    payload = bytes(b[pos:pos + n])
                    if masked:
                        key = bytes(b[pos - 4:pos])
                        if key in self.keys:   # 1 in 2^32 by chance per pair of frames
                            raise Fail("their masking key %s came twice" % key.hex())
                        self.keys.add(key)
                        payload = xor(payload, key)
                    fin, rsv, op = b[0] >> 7, (b[0] >> 4) & 7, b[0] & 15
                    del b[:pos + n]
                    return fin, rsv, op, payload
            if self.eof:
                if self.reset:
                    raise Fail("connection reset (the frames sent before it may be lost)")
                return None
            self.pump(deadline)

    def flush(self, deadline):
        while self.out and not self.eof:
            self.pump(deadline)

    def drain_or_reset(self, deadline):
        """Waits until the kernel sent all we wrote; when they stopped reading, that
        would hold our FIN back for good, so the connection ends with a reset."""
        while time.monotonic() < deadline:
            queued = struct.unpack("i", fcntl.ioctl(self.sock, termios.TIOCOUTQ, b"\0" * 4))[0]
            if queued == 0 and not self.out:
                return
            if self.out:
                try:
                    self.pump(deadline)
                except Fail:
                    break
            else:
                time.sleep(0.01)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def wait_eof(self, deadline):
        """Reads (and drops) until their end of the TCP stream; False on timeout."""
        try:
            while not self.eof:
                self.buf.clear()
                self.pump(deadline)
        except Fail:
            return False
        return True

    def event(self, deadline):
        """Their next event: ("msg", op, data) | ("pong", data) | ("close", payload) |
        ("eof",). Their pings are answered here."""
        while True:
            fr = self.frame(deadline)
            if fr is None:
                return ("eof",)
            fin, rsv, op, payload = fr
            if op >= 8:
                if not fin or rsv or len(payload) > 125:
                    raise Fail("their control frame %d is malformed (fin %d rsv %d, %d bytes)"
                               % (op, fin, rsv, len(payload)))
                if op == PING:
                    if getattr(self, "log_pings", False):
                        out("ping %d ms" % round((time.monotonic() - self.t0) * 1000))
                    self.send(self.f(PONG, payload))
                    continue
                if op in (PONG, CLOSE):
                    return ("pong" if op == PONG else "close", payload)
                raise Fail("they sent opcode %d" % op)
            if op in (TEXT, BINARY):
                if self.msg is not None:
                    raise Fail("they started a message inside another")
                if rsv & 3 or (rsv & 4 and not self.deflate):
                    raise Fail("their data frame has RSV bits %d" % rsv)
                self.msg = [op, bool(rsv & 4), [payload]]
            elif op == CONT:
                if self.msg is None or rsv:
                    raise Fail("their continuation frame is wrong (rsv %d)" % rsv)
                self.msg[2].append(payload)
            else:
                raise Fail("they sent opcode %d" % op)
            if fin:
                op, compressed, parts = self.msg
                self.msg, self.last_compressed = None, compressed
                data = b"".join(parts)
                if compressed:
                    data = self.unz(data)
                if op == TEXT:
                    try:
                        data.decode("utf-8")
                    except UnicodeDecodeError:
                        raise Fail("their text message is not UTF-8")
                return ("msg", op, data)


def describe(ev):
    if ev[0] == "msg":
        d = ev[2]
        return "a %s message of %d bytes%s" % ("text" if ev[1] == TEXT else "binary", len(d),
                                               " (%r)" % d[:20] if len(d) <= 20 else "")
    if ev[0] == "pong":
        return "a pong of %d bytes%s" % (len(ev[1]), " (%r)" % ev[1] if len(ev[1]) <= 20 else "")
    if ev[0] == "close":
        return "a close frame (%s)" % close_text(ev[1])
    return "the end of the TCP stream"


def close_text(payload):
    if not payload:
        return "no code"
    if len(payload) == 1:
        return "a 1-byte payload"
    return "code %d%s" % (int.from_bytes(payload[:2], "big"),
                          ", reason %r" % payload[2:] if len(payload) > 2 else "")


def close_code(payload):
    """The code of a close payload, None when empty; raises on a malformed one."""
    if not payload:
        return None
    if len(payload) == 1:
        raise Fail("their close frame has a 1-byte payload")
    try:
        payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise Fail("their close reason is not UTF-8")
    return int.from_bytes(payload[:2], "big")


# ------------------------------------------------------------------ the cases

CASES = []   # (id, section, desc, fn(conn) -> frames, expect, opts)


def case(cid, desc, frames, expect=None, **opts):
    """expect: a list of ("msg", op, data) / ("pong", data) / ("close", {codes}) (last),
    or None: the frames' data messages come back as echoes. opts: deflate (the
    parameters the case negotiates), we_close (the frames include our close)."""
    section = cid.split(".")[0]
    CASES.append((cid, section, desc, frames, expect, opts))


def final_code(expect, opts):
    """The close code the side under test ends up with (its get_close()): the peer's
    code when the peer closed validly, its own when it failed the connection; "-" when
    more than one is right."""
    codes = expect[-1][1] if expect and expect[-1][0] == "close" else {1000}
    if opts.get("we_close"):
        if None in codes:
            return "1005"
        rest = codes - {1000}
        return str(rest.pop()) if len(rest) == 1 else "1000"
    return str(next(iter(codes))) if len(codes) == 1 else "-"


def close_codes(*codes):
    return [("close", set(codes))]


def words(n, seed=0):
    """n bytes of compressible text."""
    vocab = [b"sluice", b"frame", b"deflate", b"window", b"lua", b"echo", b"\xc3\xa9t\xc3\xa9", b"42"]
    parts, size, i = [], 0, seed
    while size < n:
        w = vocab[(i * 7 + i // 3) % len(vocab)] + b" "
        parts.append(w)
        size += len(w)
        i += 1
    return b"".join(parts)[:n]


def rand(n, seed):
    import random
    return random.Random(seed).randbytes(n)


def define_cases():
    # 1 framing
    for i, n in enumerate((0, 125, 126, 127, 65535, 65536, MiB)):
        t, b = b"*" * n, rand(n, i)
        case("1.1.%d" % (i + 1), "text message of %d bytes" % n,
             lambda c, t=t: [c.f(TEXT, t)], [("msg", TEXT, t)])
        case("1.2.%d" % (i + 1), "binary message of %d bytes" % n,
             lambda c, b=b: [c.f(BINARY, b)], [("msg", BINARY, b)])
    case("1.3.1", "64-bit length with the most significant bit set -> 1002 or 1009",
         lambda c: [c.f(BINARY, b"x" * 16, length=(1 << 63) + 16)], close_codes(1002, 1009))
    case("1.3.2", "a frame masked the wrong way for its direction -> 1002",
         lambda c: [c.f(TEXT, b"hello", mask=c.role != "client")], close_codes(1002))
    case("1.3.3", "ten messages in one write",
         lambda c: [c.f(TEXT, b"m%d" % i) for i in range(10)],
         [("msg", TEXT, b"m%d" % i) for i in range(10)])

    # 2 pings/pongs
    case("2.1", "ping without payload -> pong", lambda c: [c.f(PING)], [("pong", b"")])
    case("2.2", "ping with text payload -> same pong", lambda c: [c.f(PING, b"Hello, world!")],
         [("pong", b"Hello, world!")])
    p125 = bytes(range(125))
    case("2.3", "ping with 125 bytes of binary -> same pong", lambda c: [c.f(PING, p125)], [("pong", p125)])
    case("2.4", "ping with 126 bytes -> 1002", lambda c: [c.f(PING, b"x" * 126)], close_codes(1002))
    case("2.5", "unsolicited pong ignored", lambda c: [c.f(PONG, b"unasked"), c.f(TEXT, b"after")],
         [("msg", TEXT, b"after")])
    case("2.6", "ten pings -> pongs in order, the last one answered (RFC 6455 5.5.3 lets earlier ones go)",
         lambda c: [c.f(PING, b"p%d" % i) for i in range(10)], [("pongs", [b"p%d" % i for i in range(10)])])
    case("2.7", "ping between the fragments of a message",
         lambda c: [c.f(TEXT, b"frag", fin=False), c.f(PING, b"mid"), c.f(CONT, b"ment")],
         [("pong", b"mid"), ("msg", TEXT, b"fragment")])

    # 3 reserved bits
    for i, (op, rsv, what) in enumerate(((TEXT, 4, "RSV1 on a text frame"), (TEXT, 2, "RSV2 on a text frame"),
                                         (BINARY, 1, "RSV3 on a binary frame"), (BINARY, 7, "RSV1+2+3"),
                                         (PING, 2, "RSV2 on a ping"), (CLOSE, 1, "RSV3 on a close"))):
        pay = close_payload(1000) if op == CLOSE else b"hello"
        case("3.%d" % (i + 1), what + " without extension -> 1002",
             lambda c, op=op, rsv=rsv, pay=pay: [c.f(op, pay, rsv=rsv)], close_codes(1002))

    # 4 opcodes
    for op in (3, 4, 5, 6, 7):
        case("4.1.%d" % op, "reserved data opcode %d -> 1002" % op,
             lambda c, op=op: [c.f(op, b"reserved")], close_codes(1002))
    for op in range(0xB, 0x10):
        case("4.2.%d" % op, "reserved control opcode 0x%X -> 1002" % op,
             lambda c, op=op: [c.f(op, b"reserved")], close_codes(1002))

    # 5 fragmentation
    case("5.1", "text in two fragments", lambda c: [c.f(TEXT, b"frag", fin=False), c.f(CONT, b"ment")],
         [("msg", TEXT, b"fragment")])
    bb = rand(3000, 51)
    case("5.2", "binary in two fragments", lambda c: [c.f(BINARY, bb[:1000], fin=False), c.f(CONT, bb[1000:])],
         [("msg", BINARY, bb)])
    t = "fragmented κόσμε".encode()
    case("5.3", "text in 1-byte fragments (multi-byte characters split)",
         lambda c: [c.f(TEXT if i == 0 else CONT, t[i:i + 1], fin=i == len(t) - 1) for i in range(len(t))],
         [("msg", TEXT, t)])
    case("5.4", "empty fragments around data",
         lambda c: [c.f(TEXT, b"", fin=False), c.f(CONT, b"", fin=False), c.f(CONT, b"abc", fin=False),
                    c.f(CONT, b"")], [("msg", TEXT, b"abc")])
    case("5.5", "pong between fragments",
         lambda c: [c.f(BINARY, b"ab", fin=False), c.f(PONG, b"x"), c.f(CONT, b"cd")], [("msg", BINARY, b"abcd")])
    case("5.6", "continuation (fin) without a start -> 1002", lambda c: [c.f(CONT, b"orphan")], close_codes(1002))
    case("5.7", "continuation (not fin) without a start -> 1002",
         lambda c: [c.f(CONT, b"orphan", fin=False), c.f(CONT, b"end")], close_codes(1002))
    case("5.8", "new text message inside a fragmented one -> 1002",
         lambda c: [c.f(TEXT, b"one", fin=False), c.f(TEXT, b"two"), c.f(CONT, b"end")], close_codes(1002))
    case("5.9", "new binary message inside a fragmented one -> 1002",
         lambda c: [c.f(BINARY, b"one", fin=False), c.f(BINARY, b"two", fin=False), c.f(CONT, b"end")],
         close_codes(1002))
    case("5.10", "fragmented ping -> 1002",
         lambda c: [c.f(PING, b"pi", fin=False), c.f(CONT, b"ng")], close_codes(1002))
    case("5.11", "fragmented close -> 1002",
         lambda c: [c.f(CLOSE, close_payload(1000), fin=False), c.f(CONT, b"")], close_codes(1002))
    big = rand(MiB, 512)
    case("5.12", "1 MiB binary in 64 KiB fragments",
         lambda c: [c.f(BINARY if i == 0 else CONT, big[i:i + 65536], fin=i + 65536 >= MiB)
                    for i in range(0, MiB, 65536)], [("msg", BINARY, big)])
    case("5.13", "two fragmented messages in a row",
         lambda c: [c.f(TEXT, b"a", fin=False), c.f(CONT, b"b"), c.f(BINARY, b"c", fin=False), c.f(CONT, b"d")],
         [("msg", TEXT, b"ab"), ("msg", BINARY, b"cd")])

    # 6 UTF-8 handling
    valid = [("κόσμε (2-byte characters)", "κόσμε".encode()), ("U+1D11E (4 bytes)", "𝄞".encode()),
             ("U+10FFFF, the last code point", b"\xf4\x8f\xbf\xbf"), ("U+FFFF, a non-character", b"\xef\xbf\xbf"),
             ("U+0000", b"a\x00b"), ("every length of character", "a\u00e9\u20ac\U0001d11e".encode())]
    for i, (what, data) in enumerate(valid):
        case("6.1.%d" % (i + 1), "valid text: " + what, lambda c, d=data: [c.f(TEXT, d)], [("msg", TEXT, data)])
    case("6.1.7", "valid 4-byte character split across fragments",
         lambda c: [c.f(TEXT, b"\xf0\x9d", fin=False), c.f(CONT, b"\x84\x9e")], [("msg", TEXT, "𝄞".encode())])
    invalid = [("0xFF", b"ab\xff"), ("a lone continuation byte", b"\x80"), ("overlong '/' (C0 AF)", b"\xc0\xaf"),
               ("overlong 3-byte (E0 80 AF)", b"\xe0\x80\xaf"), ("overlong 4-byte (F0 80 80 AF)", b"\xf0\x80\x80\xaf"),
               ("surrogate U+D800", b"\xed\xa0\x80"), ("surrogate U+DFFF", b"\xed\xbf\xbf"),
               ("above U+10FFFF (F4 90 80 80)", b"\xf4\x90\x80\x80"), ("F5 lead byte", b"\xf5\x80\x80\x80"),
               ("truncated at the end", "κόσμ".encode() + b"\xce"),
               ("invalid byte at the end of 64 KiB", b"x" * 65535 + b"\xff")]
    for i, (what, data) in enumerate(invalid):
        case("6.2.%d" % (i + 1), "invalid text: %s -> 1007" % what, lambda c, d=data: [c.f(TEXT, d)],
             close_codes(1007))
    case("6.3.1", "invalid sequence split across fragments -> 1007",
         lambda c: [c.f(TEXT, b"abc\xce", fin=False), c.f(CONT, b"\xff")], close_codes(1007))
    case("6.3.2", "character truncated by the last fragment -> 1007",
         lambda c: [c.f(TEXT, b"ab\xf0\x9d", fin=False), c.f(CONT, b"\x84")], close_codes(1007))
    case("6.3.3", "invalid first fragment, message not finished -> 1007",
         lambda c: [c.f(TEXT, b"\xed\xa0\x80", fin=False), c.f(CONT, b"more", fin=False)], close_codes(1007))
    case("6.3.4", "surrogate split across fragments -> 1007",
         lambda c: [c.f(TEXT, b"a\xed", fin=False), c.f(CONT, b"\xa0\x80")], close_codes(1007))

    # 7 close handling
    case("7.1", "close 1000 with a reason -> close 1000", lambda c: [c.f(CLOSE, close_payload(1000, b"bye"))],
         close_codes(1000), we_close=True)
    case("7.2", "close without payload -> close", lambda c: [c.f(CLOSE)], close_codes(None, 1000), we_close=True)
    case("7.3", "close with a 1-byte payload -> 1002", lambda c: [c.f(CLOSE, b"\x03")], close_codes(1002),
         we_close=True)
    case("7.4", "close with a 123-byte reason -> close 1000",
         lambda c: [c.f(CLOSE, close_payload(1000, b"r" * 123))], close_codes(1000), we_close=True)
    case("7.5", "close with a 124-byte reason (126-byte payload) -> 1002",
         lambda c: [c.f(CLOSE, close_payload(1000, b"r" * 124))], close_codes(1002), we_close=True)
    case("7.6", "close reason not UTF-8 -> 1007",
         lambda c: [c.f(CLOSE, close_payload(1000, b"bad \xff"))], close_codes(1007), we_close=True)
    case("7.7", "data after close ignored",
         lambda c: [c.f(CLOSE, close_payload(1000)), c.f(TEXT, b"late"), c.f(PING, b"late")],
         close_codes(1000), we_close=True)
    for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
        case("7.8.%d" % code, "close with invalid code %d -> 1002" % code,
             lambda c, code=code: [c.f(CLOSE, close_payload(code))], close_codes(1002), we_close=True)
    for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999):
        case("7.9.%d" % code, "close with valid code %d -> close" % code,
             lambda c, code=code: [c.f(CLOSE, close_payload(code))], close_codes(code, 1000), we_close=True)

    # 9 limits (MAX: the max_message of the side under test)
    case("9.1", "text of max_message + 1 in one frame -> 1009",
         lambda c: [c.f(TEXT, b"a" * (MAX + 1))], close_codes(1009))
    case("9.2", "binary of max_message + 1 in three fragments -> 1009",
         lambda c: [c.f(BINARY, b"\x01" * (MAX // 2), fin=False), c.f(CONT, b"\x02" * (MAX // 2), fin=False),
                    c.f(CONT, b"\x03")], close_codes(1009))
    case("9.3", "binary of exactly max_message -> echo",
         lambda c: [c.f(BINARY, b"\x07" * MAX)], [("msg", BINARY, b"\x07" * MAX)])
    case("9.4", "frame header announcing 4 GiB, no payload -> 1009",
         lambda c: [c.f(BINARY, b"", length=1 << 32)], close_codes(1009))
    case("9.6", "binary of exactly max_message in 64 KiB fragments -> echo",
         lambda c: [c.f(BINARY if i == 0 else CONT, b"\x06" * 65536, fin=i + 65536 >= MAX) for i in range(0, MAX, 65536)],
         [("msg", BINARY, b"\x06" * MAX)])
    case("9.5", "64 KiB fragments adding up past max_message -> 1009",
         lambda c: [c.f(BINARY if i == 0 else CONT, b"\x05" * 65536, fin=False) for i in range(MAX // 65536 + 1)],
         close_codes(1009))

    # 12 compression (permessage-deflate, context takeover)
    for i, n in enumerate((16, 64, 256, 1024, 4096, 65536, MiB)):
        msgs = [words(n, k) for k in range(5)]
        case("12.1.%d" % (i + 1), "5 compressed text messages of %d bytes" % n,
             lambda c, m=msgs: [c.f(TEXT, c.z(x), rsv=4) for x in m], [("msg", TEXT, x) for x in msgs], deflate={})
        bins = [rand(n // 2, k) + bytes(n - n // 2) for k in range(5)]
        case("12.2.%d" % (i + 1), "5 compressed binary messages of %d bytes" % n,
             lambda c, m=bins: [c.f(BINARY, c.z(x), rsv=4) for x in m], [("msg", BINARY, x) for x in bins],
             deflate={})
    w = words(10000, 3)

    def fragz(c):
        z = c.z(w)
        k = len(z) // 3
        return [c.f(TEXT, z[:k], fin=False, rsv=4), c.f(PING, b"in"), c.f(CONT, z[k:2 * k], fin=False),
                c.f(CONT, z[2 * k:])]
    case("12.3", "compressed message in three fragments, a ping between", fragz,
         [("pong", b"in"), ("msg", TEXT, w)], deflate={})
    case("12.4", "uncompressed message while compression is agreed",
         lambda c: [c.f(TEXT, w), c.f(TEXT, c.z(w), rsv=4)], [("msg", TEXT, w), ("msg", TEXT, w)], deflate={})
    case("12.5", "compressed empty message", lambda c: [c.f(BINARY, c.z(b""), rsv=4)], [("msg", BINARY, b"")],
         deflate={})

    # 13 compression parameters and errors
    # repeats 3000 bytes apart: a compressor using a window past what was agreed
    # leaves distances that the agreed window cannot inflate
    block = rand(3000, 13)
    rep = [block * 3] * 3 + [words(3000, 10) + block]
    for cid, desc, params in (("13.1", "no context takeover both ways", {"server_no_context_takeover": True,
                                                                         "client_no_context_takeover": True}),
                              ("13.2", "server_max_window_bits=9", {"server_max_window_bits": 9}),
                              ("13.3", "client_max_window_bits=9", {"client_max_window_bits": 9}),
                              ("13.4", "all of them", {"server_no_context_takeover": True,
                                                       "client_no_context_takeover": True,
                                                       "server_max_window_bits": 10,
                                                       "client_max_window_bits": 11})):
        case(cid, desc + ": repeated compressed messages",
             lambda c, m=rep: [c.f(BINARY, c.z(x), rsv=4) for x in m], [("msg", BINARY, x) for x in rep],
             deflate=params)
    case("13.5", "RSV1 on a continuation frame -> 1002",
         lambda c: [c.f(TEXT, c.z(b"abcdef"), fin=False, rsv=4), c.f(CONT, b"", rsv=4)], close_codes(1002),
         deflate={})
    case("13.6", "RSV1 on a ping -> 1002", lambda c: [c.f(PING, b"x", rsv=4)], close_codes(1002), deflate={})
    case("13.7", "compressed message inflating past max_message -> 1009",
         lambda c: [c.f(BINARY, c.z(bytes(MAX + 1)), rsv=4)], close_codes(1009), deflate={})
    case("13.8", "compressed text inflating to invalid UTF-8 -> 1007",
         lambda c: [c.f(TEXT, c.z(b"ok \xff"), rsv=4)], close_codes(1007), deflate={})
    case("13.9", "data that does not inflate -> 1002 or 1007",
         lambda c: [c.f(BINARY, b"\xff\xff\xff\xff\xff\xff", rsv=4)], close_codes(1002, 1007), deflate={})
    case("13.10", "compressed message inflating to exactly max_message -> echo",
         lambda c: [c.f(BINARY, c.z(bytes(MAX)), rsv=4)], [("msg", BINARY, bytes(MAX))], deflate={})

    def split_z(c):
        z = c.z(bytes(MAX // 2) + b"\x01" * (MAX // 2 + 1))
        k = len(z) // 2
        return [c.f(BINARY, z[:k], fin=False, rsv=4), c.f(CONT, z[k:])]
    case("13.11", "compressed fragments inflating past max_message together -> 1009", split_z, close_codes(1009),
         deflate={})
    case("13.12", "compressed message whose first fragment is empty",
         lambda c: [c.f(TEXT, b"", fin=False, rsv=4), c.f(CONT, c.z(w))], [("msg", TEXT, w)], deflate={})


# ------------------------------------------------------------------ running a case

def run_case(conn, frames, expect, opts, timeout):
    """Sends the case's frames, then matches their answers against expect in order.
    Returns whether we sent a close frame, and the code of theirs."""
    deadline = time.monotonic() + timeout
    for fr in frames(conn):
        conn.send(fr)
    we_closed = opts.get("we_close", False)
    if not expect or expect[-1][0] != "close":
        expect = list(expect) + [("our close",)]   # the echoes done: close normally
    code = None
    for want in expect:
        if want[0] == "our close":
            conn.send(conn.f(CLOSE, close_payload(1000)))
            we_closed, want = True, ("close", {1000})
        ev = conn.event(deadline)
        while ev[0] == "pong" and want[0] not in ("pong", "pongs"):   # a pong nobody asked for
            ev = conn.event(deadline)
        if want[0] == "close":
            if ev[0] != "close":
                raise Fail("wanted a close frame (%s), got %s" % (codes_text(want[1]), describe(ev)))
            code = close_code(ev[1])
            if code not in want[1]:
                raise Fail("they closed with %s, wanted %s" % (close_text(ev[1]), codes_text(want[1])))
        elif want[0] == "pongs":   # pongs in order, up to the last ping's
            left = list(want[1])
            while True:
                if ev[0] != "pong" or ev[1] not in left:
                    raise Fail("wanted pongs of %r in order, got %s" % (left, describe(ev)))
                left = left[left.index(ev[1]) + 1:]
                if not left:
                    break
                ev = conn.event(deadline)
        elif ev != want:
            raise Fail("wanted %s, got %s" % (describe(want), describe(ev)))
        elif opts.get("plain") and conn.last_compressed:
            raise Fail("the message came compressed with a window zlib cannot make")
    return we_closed, code


def codes_text(codes):
    return " or ".join("no code" if c is None else str(c) for c in sorted(codes, key=lambda c: c or 0))


def finish(conn, we_closed, code, timeout):
    """After their close frame: answer it (when we had not closed; a frame still being
    sent goes out first, unless they stopped reading), then see the TCP connection end:
    a server (this peer's role) closes it itself; a client waits for the server to."""
    deadline = time.monotonic() + timeout
    if not we_closed:
        try:
            conn.flush(min(deadline, time.monotonic() + 3))
            conn.send(conn.f(CLOSE, close_payload(code) if code not in (None, 1005) else b""))
            conn.flush(deadline)
        except Fail:
            pass
    if conn.role == "server":
        conn.drain_or_reset(time.monotonic() + 2)
        return
    if not conn.wait_eof(deadline):
        raise Fail("the server did not end the TCP connection within %g s of the close handshake" % timeout)


def one(conn, cid, desc, frames, expect, opts, timeout):
    try:
        if opts.get("deflate") is not None and not conn.deflate:
            raise Fail("permessage-deflate was not agreed")
        we_closed, code = run_case(conn, frames, expect or [], opts, timeout)
        finish(conn, we_closed, code, 10.0)
        out("ok %s %s" % (cid, desc))
        return True
    except Fail as e:
        out("FAIL %s %s: %s" % (cid, desc, e))
    except OSError as e:
        out("FAIL %s %s: %s" % (cid, desc, e))
    return False


# ------------------------------------------------------------------ handshakes

def read_head(sock, deadline):
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(4096)
        if not data:
            raise Fail("connection ended during the opening handshake")
        buf += data
        if len(buf) > 65536:
            raise Fail("endless HTTP head")
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k = k.strip().lower()
        headers[k] = headers[k] + ", " + v.strip() if k in headers else v.strip()
    return lines[0], headers, rest


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def parse_pmd(value):
    """The first permessage-deflate element of an extensions header: dict of its
    parameters (value or True), or None."""
    for ext in (value or "").split(","):
        parts = [p.strip() for p in ext.split(";")]
        if parts[0] == "permessage-deflate":
            params = {}
            for p in parts[1:]:
                k, eq, v = p.partition("=")
                params[k.strip()] = v.strip().strip('"') if eq else True
            return params
    return None


def agreed(offer, answer):
    """What both sides use, from the offer's and the answer's parameters."""
    def bits(v):
        return int(v) if v not in (None, True) else 15
    return {"server_no_context_takeover": "server_no_context_takeover" in answer,
            "client_no_context_takeover": "client_no_context_takeover" in answer
            or "client_no_context_takeover" in offer,
            "server_max_window_bits": bits(answer.get("server_max_window_bits")),
            "client_max_window_bits": bits(answer.get("client_max_window_bits",
                                                      offer.get("client_max_window_bits")))}


def pmd_header(params):
    s = "permessage-deflate"
    for k, v in params.items():
        s += "; " + k if v is True else "; %s=%s" % (k, v)
    return s


# Opening-handshake answers a client must refuse ("protocol"), by path; "stall" never
# answers (the client's connect_timeout ends it).
BAD_HANDSHAKES = {
    "hs-status-200": "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",
    "hs-no-upgrade": "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n",
    "hs-no-connection": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n",
    "hs-bad-accept": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    "hs-no-accept": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    "hs-two-accepts": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Accept: {accept}\r\n",
    "hs-extension-not-offered": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: x-unknown\r\n",
    "hs-protocol-not-offered": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: never-offered\r\n",
    "hs-garbage": "SSH-2.0-OpenSSH_9.2\r\n",
    "stall": None,
}


# Opening-handshake answers a client must take (then one message is echoed): odd
# letter case and token lists, and a first frame (compressed or not) in the same
# write as the answer.
GOOD_HANDSHAKES = {
    "hs-odd-case": ("HTTP/1.1 101 Web Socket Protocol Handshake\r\nupgrade: WebSocket\r\n"
                    "connection: keep-alive, upgrade\r\nsec-websocket-accept: {accept}\r\nX-Extra: 1\r\n", False),
    "hs-same-write": ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: {accept}\r\n", True),
    "hs-same-write-deflate": ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
                              True),
    # RFC 7692 7.1.2.2 allows 8; zlib cannot deflate so: the echo must come uncompressed
    "hs-deflate-window-8": ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Accept: {accept}\r\n"
                            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=8\r\n", False),
}


def good_handshake(sock, name, headers, rest, timeout):
    answer, same_write = GOOD_HANDSHAKES[name]
    head = (answer.format(accept=accept_key(headers.get("sec-websocket-key", ""))) + "\r\n").encode()
    deflate = None
    if "permessage-deflate" in answer:
        deflate = agreed(parse_pmd(headers.get("sec-websocket-extensions")) or {}, {})
    conn = Conn(sock, "server", rest, deflate)
    text = b"early frame" + (b" again" * 60 if "window_bits=8" in answer else b"")   # long enough to compress
    first = conn.f(TEXT, conn.z(text), rsv=4) if deflate else conn.f(TEXT, text)
    sock.setblocking(True)
    sock.sendall(head + first if same_write else head)
    sock.setblocking(False)
    frames = (lambda c: []) if same_write else (lambda c: [first])
    one(conn, name, "handshake answer " + name, frames, [("msg", TEXT, text)],
        {"plain": "window_bits=8" in answer}, timeout)


def bad_handshake(sock, name, headers):
    answer = BAD_HANDSHAKES[name]
    if answer is None:
        Conn(sock, "server").wait_eof(time.monotonic() + 3600)
    else:
        sock.sendall((answer.format(accept=accept_key(headers.get("sec-websocket-key", ""))) + "\r\n").encode())
        time.sleep(3)   # our side, not the end of the stream, must end it
    out("%s ended" % name)


def answer_until_close(conn):
    """Pongs for their pings, until their close (answered) or EOF."""
    deadline = time.monotonic() + 60
    try:
        while True:
            ev = conn.event(deadline)
            if ev[0] == "eof":
                return
            if ev[0] == "close":
                conn.send(conn.f(CLOSE, ev[1][:2]))
                conn.flush(deadline)
                conn.wait_eof(deadline)
                return
    except Fail as e:
        out("FAIL live peer: %s" % e)


def slow_message(conn):
    frame = conn.f(BINARY, b"y" * (2 * MiB))
    step = len(frame) // 16 + 1
    for i in range(0, len(frame), step):
        conn.send(frame[i:i + step])
        conn.flush(time.monotonic() + 20)
        time.sleep(0.1)
    answer_until_close(conn)


def slow_reader(conn):
    """A live peer busy reading: takes about 1 MB/s (its window kept small, so
    the sender's kernel holds the rest), answering pings and the close in turn."""
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    conn.chunk, conn.pace = 64 * 1024, 0.06
    answer_until_close(conn)


def flood(conn):
    for i in range(40):
        conn.send(conn.f(BINARY, bytes([i]) * (64 * 1024)))
    answer_until_close(conn)


def stream(conn):
    """A peer that ignores the close: a small message every 20 ms for a minute."""
    end = time.monotonic() + 60
    while time.monotonic() < end:
        conn.send(conn.f(TEXT, b"tick"))
        conn.flush(end)
        time.sleep(0.02)


def message_then_bad(conn):
    """A message and a reserved opcode in one write: the side under test fails
    with the message still to receive."""
    conn.send(conn.f(TEXT, b"one") + conn.f(3, b"reserved"))
    conn.wait_eof(time.monotonic() + 30)


def ping_logger(conn):
    """Prints "ping MS" for each of their pings (ms since the handshake), answering them."""
    conn.log_pings, conn.t0 = True, time.monotonic()
    answer_until_close(conn)


LIVE_PEERS = {
    "hang": lambda conn: conn.wait_eof(time.monotonic() + 3600),   # a dead peer: reads, never answers
    "slow": slow_message,
    "flood": flood,
    "stream": stream,
    "slowread": slow_reader,
    "pings": ping_logger,
    "msgbad": message_then_bad,
}


def serve_one(sock, timeout):
    """Server role: one connection from the side under test."""
    deadline = time.monotonic() + timeout
    try:
        line, headers, rest = read_head(sock, deadline)
    except (Fail, OSError) as e:
        out("FAIL handshake: %s" % e)
        return
    path = line.split(" ")[1] if line.count(" ") >= 2 else ""
    cid = path.lstrip("/")
    if cid in BAD_HANDSHAKES:
        bad_handshake(sock, cid, headers)
        return
    if cid in GOOD_HANDSHAKES:
        good_handshake(sock, cid, headers, rest, timeout)
        return
    found = [c for c in CASES if c[0] == cid]
    key = headers.get("sec-websocket-key")
    if (cid not in LIVE_PEERS and not found) or not key or headers.get("sec-websocket-version") != "13":
        sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        out("FAIL %s: no such case, or not an upgrade request" % (cid or "?"))
        return
    resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
           "Sec-WebSocket-Accept: %s\r\n" % accept_key(key)
    deflate = None
    if found and found[0][5].get("deflate") is not None:
        want = found[0][5]["deflate"]
        offer = parse_pmd(headers.get("sec-websocket-extensions"))
        if offer is not None and ("client_max_window_bits" not in want or "client_max_window_bits" in offer):
            resp += "Sec-WebSocket-Extensions: %s\r\n" % pmd_header(want)
            deflate = agreed(offer, want)
    sock.sendall((resp + "\r\n").encode())
    conn = Conn(sock, "server", rest, deflate)
    if cid in LIVE_PEERS:
        LIVE_PEERS[cid](conn)
        out("%s ended" % cid)
        return
    cid, _, desc, frames, expect, opts = found[0]
    one(conn, cid, desc, frames, expect, opts, timeout)


def connect_one(url, c, timeout):
    """Client role: one case on a new connection to the server under test."""
    cid, _, desc, frames, expect, opts = c
    u = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((u.hostname, u.port), timeout=5)
    except OSError as e:
        out("FAIL %s %s: connect: %s" % (cid, desc, e))
        return False
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        req = "GET %s%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
              "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (
                  u.path.rstrip("/") + "/", cid, u.hostname, u.port, key)
        offer = None
        if opts.get("deflate") is not None:
            offer = dict(opts["deflate"])
            offer.setdefault("client_max_window_bits", True)
            req += "Sec-WebSocket-Extensions: %s\r\n" % pmd_header(offer)
        sock.sendall((req + "\r\n").encode())
        try:
            line, headers, rest = read_head(sock, deadline)
        except Fail as e:
            out("FAIL %s %s: %s" % (cid, desc, e))
            return False
        if line.split(" ")[1:2] != ["101"] or headers.get("sec-websocket-accept") != accept_key(key):
            out("FAIL %s %s: the server answered %r" % (cid, desc, line))
            return False
        deflate = None
        answer = parse_pmd(headers.get("sec-websocket-extensions"))
        if offer is not None and answer is not None:
            deflate = agreed(offer, answer)
            if deflate["server_max_window_bits"] > int(offer.get("server_max_window_bits", 15)):
                out("FAIL %s %s: server_max_window_bits above the offer" % (cid, desc))
                return False
        return one(Conn(sock, "client", rest, deflate), cid, desc, frames, expect, opts, timeout)
    finally:
        sock.close()


def main():
    global MAX
    args, timeout, rest = sys.argv[1:], TIMEOUT, []
    while args:
        a = args.pop(0)
        if a == "--max-message":
            MAX = int(args.pop(0))
        elif a == "--timeout":
            timeout = float(args.pop(0))
        else:
            rest.append(a)
    args = rest
    define_cases()
    if not args:
        sys.exit(__doc__)
    if args[0] == "list":
        for cid, section, desc, _, expect, opts in CASES:
            out("%s %s %s %s" % (cid, section, final_code(expect, opts), desc))
    elif args[0] == "server":
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        out(str(lsock.getsockname()[1]))
        def serve(sock):
            try:
                serve_one(sock, timeout)
            finally:
                sock.close()
        while True:
            sock, _ = lsock.accept()
            threading.Thread(target=serve, args=(sock,), daemon=True).start()
    elif args[0] == "client":
        ids = set(args[2:])
        passed = failed = 0
        for c in CASES:
            if not ids or c[0] in ids or c[1] in ids:
                if connect_one(args[1], c, timeout):
                    passed += 1
                else:
                    failed += 1
        out("done passed=%d failed=%d" % (passed, failed))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
