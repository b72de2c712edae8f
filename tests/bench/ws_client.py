#!/usr/bin/env python3
"""ws_client.py: the Python `websockets` client of tests/bench/websocket.lua.
Sends COUNT messages of SIZE bytes to an echo server keeping at most WINDOW
unanswered (1: ping-pong), checks every echo (same order, same bytes) and prints
  ws_client COUNT BYTES SECONDS EXTENSION
(BYTES: payload bytes echoed; the time runs from the open to the last echo;
EXTENSION: "deflate" when permessage-deflate was agreed, else "none").

  python3 tests/bench/ws_client.py URL COUNT SIZE WINDOW KIND [--deflate]
KIND: "text" (a sequence number, then letters: compresses well) or "binary" (a
sequence number, then random bytes). --deflate: offer permessage-deflate."""
import asyncio
import collections
import os
import sys
import time

import websockets

LETTERS = b"abcdefghijklmnopqrstuvwxyz0123456789 "


async def run(url, count, size, window, kind, deflate):
    if kind == "text":
        filler = (LETTERS * (size // len(LETTERS) + 1))[: size - 8]
    else:
        filler = os.urandom(size - 8)

    def message(i):
        m = b"%08d" % (i % 100000000) + filler
        return m.decode("ascii") if kind == "text" else m

    async with websockets.connect(url, compression="deflate" if deflate else None,
                                  max_size=64 * 1024 * 1024, max_queue=max(32, window + 1),
                                  ping_interval=None) as ws:
        inflight = collections.deque()
        sent = 0
        t0 = time.perf_counter()
        while sent < count and sent < window:
            m = message(sent)
            inflight.append(m)
            await ws.send(m)
            sent += 1
        for received in range(count):
            data = await ws.recv()
            if data != inflight.popleft():
                sys.exit("ws_client: echo %d differs" % received)
            if sent < count:
                m = message(sent)
                inflight.append(m)
                await ws.send(m)
                sent += 1
        secs = time.perf_counter() - t0
        ext = "deflate" if ws.extensions else "none"
        print("ws_client %d %d %.6f %s" % (count, count * size, secs, ext), flush=True)


def main():
    args = [a for a in sys.argv[1:] if a != "--deflate"]
    if len(args) != 5 or args[4] not in ("text", "binary"):
        sys.exit("usage: ws_client.py URL COUNT SIZE WINDOW text|binary [--deflate]")
    url, count, size, window, kind = args[0], int(args[1]), int(args[2]), int(args[3]), args[4]
    asyncio.run(run(url, count, size, window, kind, "--deflate" in sys.argv))


if __name__ == "__main__":
    main()
