#!/usr/bin/python3
"""ws_crosscheck.py: the WebSocket protocol core against Python's `websockets`
(Debian python3-websockets; run with the system python3), through ws_drv.c:

  - frames websockets makes (masked and not, compressed, fragmented, control
    frames between fragments, 7/16/64-bit lengths) parse to the same frames;
  - frames the core builds parse in websockets to the same opcode and data;
  - permessage-deflate: every combination of offers websockets' client makes
    is selected by the core and accepted by websockets with the same terms,
    and the other way round.

Prints one line per part and exits 1 on any mismatch.
Usage: /usr/bin/python3 tests/tools/ws_crosscheck.py
"""
import os
import random
import subprocess
import sys
import tempfile

import websockets.frames as F
from websockets.exceptions import NegotiationError
from websockets.extensions.permessage_deflate import (ClientPerMessageDeflateFactory,
                                                       PerMessageDeflate,
                                                       ServerPerMessageDeflateFactory)
from websockets.headers import build_extension, parse_extension
from websockets.streams import StreamReader

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
rnd = random.Random(7)


def build_driver(tmp):
    exe = os.path.join(tmp, "ws_drv")
    srcs = [os.path.join(ROOT, "tests/tools/ws_drv.c")] + [
        os.path.join(ROOT, "net", f) for f in ("ws_frame.c", "ws_ext.c", "ws_hs.c", "ws_utf8.c")]
    subprocess.run(["cc", "-O1", "-std=c11", "-D_GNU_SOURCE", "-I" + os.path.join(ROOT, "net"),
                    "-o", exe] + srcs + ["-lmbedtls", "-lmbedx509", "-lmbedcrypto"], check=True)
    return exe


def frames_for(kind, size):
    data = os.urandom(size)
    if kind == "text":
        return [F.Frame(F.Opcode.TEXT, "é€𝄞x".encode() * (size // 10 + 1))]
    if kind == "binary":
        return [F.Frame(F.Opcode.BINARY, data)]
    if kind == "fragmented":
        return [F.Frame(F.Opcode.BINARY, data[:size // 2], fin=False), F.Frame(F.Opcode.PING, b"p"),
                F.Frame(F.Opcode.CONT, data[size // 2:])]
    if kind in ("ping", "pong"):
        return [F.Frame(F.Opcode.PING if kind == "ping" else F.Opcode.PONG, data[:125])]
    return [F.Frame(F.Opcode.CLOSE, F.Close(1000, "bye").serialize())]


def theirs_to_ours(drv):
    bad = 0
    for trial in range(60):
        masked, compressed = trial % 2 == 0, trial % 3 == 0
        ext = [PerMessageDeflate(False, False, 15, 15)] if compressed else None
        twin = PerMessageDeflate(False, False, 15, 15)   # same state: what the wire carries
        wire, expect = b"", []
        for _ in range(rnd.randint(1, 8)):
            kind = rnd.choice(["text", "binary", "fragmented", "ping", "pong", "close"])
            for fr in frames_for(kind, rnd.choice([0, 1, 125, 126, 200, 65535, 65536, 70000])):
                wire += fr.serialize(mask=masked, extensions=ext)
                if compressed:
                    fr = twin.encode(fr)
                expect.append("F %d %d %d %s" % (fr.opcode.value, fr.fin, fr.rsv1, fr.data.hex()))
        out = subprocess.run([drv, "parse", "s" if masked else "c", "1" if compressed else "0"],
                             input=wire, capture_output=True, check=True).stdout.decode().split("\n")
        if out[:len(expect)] != expect or out[len(expect)] != "OK":
            bad += 1
    print("websockets -> core: 60 streams, %d mismatches" % bad)
    return bad


def ours_to_theirs(drv):
    bad = 0
    for trial in range(40):
        masked, spec, sent = trial % 2, [], []
        for _ in range(rnd.randint(1, 6)):
            op = rnd.choice([1, 2, 9, 10])
            size = rnd.choice([0, 5, 125, 126, 65535, 65536, 100000]) if op < 8 else rnd.randint(0, 125)
            data = b"a" * size if op == 1 else os.urandom(size)
            spec.append("%d 1 0 %d %s" % (op, masked, data.hex()))
            sent.append((op, data))
        wire = subprocess.run([drv, "build"], input=("\n".join(spec) + "\n").encode(),
                              capture_output=True, check=True).stdout
        reader = StreamReader()
        reader.feed_data(wire)
        reader.feed_eof()
        for op, data in sent:
            parser = F.Frame.parse(reader.read_exact, mask=bool(masked), max_size=1 << 24)
            try:
                next(parser)
                bad += 1   # it wanted more bytes than were built
            except StopIteration as done:
                bad += done.value.opcode.value != op or done.value.data != data
    print("core -> websockets: 40 streams, %d mismatches" % bad)
    return bad


def drv_lines(drv, *args):
    return subprocess.run([drv] + [str(a) for a in args], capture_output=True,
                          check=True).stdout.decode().split("\n")


def negotiation(drv):
    bad = cases = both = 0
    for snct in (0, 1):
        for cnct in (0, 1):
            for smwb in (None, 9, 10, 15):
                for cmwb in (True, None, 9, 12, 15):
                    for server in ((15, 15, 0, 0), (10, 11, 1, 0), (9, 9, 0, 1)):
                        cases += 1
                        # their client offers, the core's server answers, their client checks
                        client = ClientPerMessageDeflateFactory(bool(snct), bool(cnct), smwb, cmwb)
                        offer = build_extension([("permessage-deflate", client.get_request_params())])
                        out = drv_lines(drv, "select", *server, offer)
                        if out[0].startswith("1"):
                            try:
                                ext = client.process_response_params(parse_extension(out[1])[0][1], [])
                                terms = [int(ext.remote_no_context_takeover), int(ext.local_no_context_takeover),
                                         ext.remote_max_window_bits, ext.local_max_window_bits]
                                bad += [int(x) for x in out[0].split()[1:]] != terms
                                both += 1
                            except NegotiationError:
                                bad += 1
                        elif out[0] != "0":
                            bad += 1
                        # the core's client offers, their server answers, the core checks
                        mine = (smwb or 15, 15 if cmwb in (True, None) else cmwb, snct, cnct)
                        offer = drv_lines(drv, "offer", *mine)[0]
                        theirs = ServerPerMessageDeflateFactory(bool(server[2]), bool(server[3]),
                                                                None if server[0] == 15 else server[0],
                                                                None if server[1] == 15 else server[1])
                        try:
                            params, ext = theirs.process_request_params(parse_extension(offer)[0][1], [])
                        except NegotiationError:
                            continue   # declined: no compression, which is fine
                        out = drv_lines(drv, "check", *mine, build_extension([("permessage-deflate", params)]))
                        terms = [int(ext.local_no_context_takeover), int(ext.remote_no_context_takeover),
                                 ext.local_max_window_bits, ext.remote_max_window_bits]
                        got = out[0].split()
                        bad += got[0] != "1" or [int(x) for x in got[1:]] != terms
                        both += 1
    print("permessage-deflate: %d cases, %d agreements checked, %d mismatches" % (cases, both, bad))
    return bad


def main():
    with tempfile.TemporaryDirectory() as tmp:
        drv = build_driver(tmp)
        bad = theirs_to_ours(drv) + ours_to_theirs(drv) + negotiation(drv)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
