#!/usr/bin/python3
"""ws_py_peer.py: a WebSocket peer made with Python's `websockets` (Debian
python3-websockets 10.4; run with /usr/bin/python3), for websocket_spec.

Server: binds 127.0.0.1 on an ephemeral port, prints the port alone on the first
stdout line (flushed), then echoes every message with its type until SIGTERM.
Each connection logs one line "conn path=P protocol=P extensions=E" on stdout.
Text messages starting with "__" are commands instead of echoes:
  __info            answers a JSON object: path, headers (lower-case names),
                    protocol, extensions
  __close CODE [R]  closes with that code and reason
  __ping DATA       pings with DATA; once the pong came, answers "__pong DATA"
  __big N           answers a binary message of N zero bytes
  __frags N SIZE    answers one binary message of N fragments of SIZE random
                    bytes (compressed, each fragment flushed on its own)
  __flood N SIZE    sends N text messages "seq K ....." of SIZE bytes, then closes
                    with 4002 "flood done"

  ws_py_peer.py server [--cert F --key F] [--protocols a,b] [--ping-interval S] [--ping-timeout S]
                       [--no-compress] [--max-size N]

Client: connects to URL, sends COUNT messages of random sizes MIN..MAX (seeded;
text, binary or mixed), reading the echoes concurrently, checks each echo (type
and bytes), closes with CODE (default 1000) and prints one line:
  result ok count=N bytes=B sha256=H protocol=P extensions=E close=C
  result rejected status=S          (the server refused the upgrade)
  result FAIL why

  ws_py_peer.py client URL [--cafile F] [--protocols a,b] [--header K:V]...
                [--no-compress] [--count N] [--min N] [--max N] [--kind K]
                [--seed N] [--close CODE] [--hold S]
  --hold S: print "connected", then stay idle S seconds before sending
"""
import argparse
import asyncio
import hashlib
import json
import random
import ssl
import sys

import websockets
from websockets.exceptions import InvalidStatusCode


def log(line):
    print(line, flush=True)


async def command(ws, msg):
    parts = msg.split(" ", 2)
    if parts[0] == "__info":
        info = {"path": ws.path, "protocol": ws.subprotocol,
                "extensions": ws.response_headers.get("Sec-WebSocket-Extensions"),
                "headers": {k.lower(): v for k, v in ws.request_headers.raw_items()}}
        await ws.send(json.dumps(info))
    elif parts[0] == "__close":
        await ws.close(int(parts[1]), parts[2] if len(parts) > 2 else "")
    elif parts[0] == "__flood":   # N messages "seq K" padded to SIZE bytes, then close 4002
        for k in range(int(parts[1])):
            await ws.send(("seq %d " % k).ljust(int(parts[2].split()[0]), "."))
        await ws.close(4002, "flood done")
    elif parts[0] == "__frags":   # one binary message of N random fragments of SIZE bytes
        n, size = int(parts[1]), int(parts[2])
        await ws.send(random.randbytes(size) for _ in range(n))
    elif parts[0] == "__big":
        await ws.send(bytes(int(parts[1])))
    elif parts[0] == "__ping":
        data = msg[len("__ping "):]
        waiter = await ws.ping(data)
        await waiter
        await ws.send("__pong " + data)
    else:
        await ws.send(msg)


async def serve(args):
    async def handler(ws):
        log("conn path=%s protocol=%s extensions=%s" % (
            ws.path, ws.subprotocol, ws.response_headers.get("Sec-WebSocket-Extensions")))
        try:
            async for msg in ws:
                if isinstance(msg, str) and msg.startswith("__"):
                    await command(ws, msg)
                else:
                    await ws.send(msg)
        except websockets.ConnectionClosed:
            pass
        log("end code=%s reason=%s" % (ws.close_code, ws.close_reason))

    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    server = await websockets.serve(
        handler, "127.0.0.1", 0, ssl=ctx,
        subprotocols=args.protocols.split(",") if args.protocols else None,
        compression=None if args.no_compress else "deflate",
        ping_interval=args.ping_interval, ping_timeout=args.ping_timeout or args.ping_interval,
        max_size=args.max_size, max_queue=64)
    log(str(server.sockets[0].getsockname()[1]))
    await asyncio.Future()


def make_message(rnd, kind, size):
    if kind == "mixed":
        kind = rnd.choice(("text", "binary"))
    if kind == "text":
        alphabet = "abcdefghij é€𝄞"
        s = "".join(rnd.choice(alphabet) for _ in range(min(size, 64)))
        return (s * (size // max(1, len(s)) + 1))[:max(1, size // 2)]
    if rnd.random() < 0.5:   # compressible half the time
        return bytes(rnd.getrandbits(8) for _ in range(min(size, 256))) * (size // 256 + 1)
    return rnd.randbytes(size)


async def client(args):
    ctx = None
    if args.url.startswith("wss:"):
        ctx = ssl.create_default_context(cafile=args.cafile)
    headers = [tuple(h.split(":", 1)) for h in args.header]
    try:
        ws = await websockets.connect(
            args.url, ssl=ctx, extra_headers=headers,
            subprotocols=args.protocols.split(",") if args.protocols else None,
            compression=None if args.no_compress else "deflate",
            max_size=args.max * 4 + 1024, ping_interval=None)
    except InvalidStatusCode as e:
        log("result rejected status=%d" % e.status_code)
        return
    if args.hold:   # an idle connection first (the spec may stop this process meanwhile)
        log("connected")
        await asyncio.sleep(args.hold)
    rnd = random.Random(args.seed)
    msgs = [make_message(rnd, args.kind, rnd.randint(args.min, args.max)) for _ in range(args.count)]
    sent, got = hashlib.sha256(), hashlib.sha256()
    total = 0

    async def sender():
        for m in msgs:
            await ws.send(m)

    task = asyncio.ensure_future(sender())
    for i, m in enumerate(msgs):
        echo = await ws.recv()
        data = m.encode() if isinstance(m, str) else m
        sent.update(data)
        got.update(echo.encode() if isinstance(echo, str) else echo)
        total += len(data)
        if type(echo) is not type(m) or echo != m:
            log("result FAIL message %d (%d bytes, %s): echo differs (%d bytes, %s)" % (
                i, len(data), type(m).__name__, len(echo), type(echo).__name__))
            task.cancel()
            return
    await task
    await ws.close(args.close, "bye")
    log("result ok count=%d bytes=%d sha256=%s protocol=%s extensions=%s close=%s" % (
        args.count, total, got.hexdigest(), ws.subprotocol,
        (ws.response_headers.get("Sec-WebSocket-Extensions") or "-").replace(" ", ""),
        ws.close_code))
    assert sent.digest() == got.digest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=("server", "client"))
    ap.add_argument("url", nargs="?")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--cafile")
    ap.add_argument("--protocols")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--no-compress", action="store_true")
    ap.add_argument("--ping-interval", type=float, default=None)
    ap.add_argument("--ping-timeout", type=float, default=None)
    ap.add_argument("--max-size", type=int, default=256 * 1024 * 1024)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--min", type=int, default=1)
    ap.add_argument("--max", type=int, default=1000)
    ap.add_argument("--kind", choices=("text", "binary", "mixed"), default="mixed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--close", type=int, default=1000)
    ap.add_argument("--hold", type=float, default=0)
    args = ap.parse_args()
    try:
        asyncio.run(serve(args) if args.role == "server" else client(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    except Exception as e:   # the spec reads the result line, not a traceback
        log("result FAIL %s: %s" % (type(e).__name__, e))
        sys.exit(1)


if __name__ == "__main__":
    main()
