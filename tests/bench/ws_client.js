// ws_client.js: the Node `ws` client of tests/bench/websocket.lua. Sends COUNT
// messages of SIZE bytes to an echo server keeping at most WINDOW unanswered (1:
// ping-pong), checks every echo (same order, same bytes) and prints
//   ws_client COUNT BYTES SECONDS EXTENSION
// (BYTES: payload bytes echoed; the time runs from the open to the last echo;
// EXTENSION: "deflate" when permessage-deflate was agreed, else "none").
//
//   NODE_PATH=/usr/share/nodejs node tests/bench/ws_client.js URL COUNT SIZE WINDOW KIND [--deflate]
// KIND: "text" (a sequence number, then letters: compresses well) or "binary"
// (a sequence number, then random bytes). --deflate: offer permessage-deflate.
'use strict';
const crypto = require('crypto');
const WebSocket = require('ws');

const [url, countArg, sizeArg, windowArg, kind] = process.argv.slice(2);
const deflate = process.argv.includes('--deflate');
const count = Number(countArg);
const size = Number(sizeArg);
const window = Number(windowArg);
if (!url || !(count > 0) || !(size >= 8) || !(window > 0) || !['text', 'binary'].includes(kind)) {
  process.stderr.write('usage: ws_client.js URL COUNT SIZE WINDOW text|binary [--deflate]\n');
  process.exit(2);
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz0123456789 ';
const filler = kind === 'text'
  ? Buffer.from(LETTERS.repeat(Math.ceil(size / LETTERS.length)).slice(0, size - 8))
  : crypto.randomBytes(size - 8);

// Message i: its number in 8 decimal digits, then the filler.
function message(i) {
  const m = Buffer.allocUnsafe(size);
  m.write(String(i % 1e8).padStart(8, '0'), 0, 'latin1');
  filler.copy(m, 8);
  return m;
}

const ws = new WebSocket(url, { perMessageDeflate: deflate, maxPayload: 64 * 1024 * 1024 });
const inflight = [];
let sent = 0;
let received = 0;
let t0;

function fail(msg) {
  process.stderr.write(`ws_client: ${msg}\n`);
  process.exit(1);
}

function sendNext() {
  const m = message(sent++);
  inflight.push(m);
  ws.send(kind === 'text' ? m.toString('latin1') : m, { binary: kind === 'binary' });
}

ws.on('open', () => {
  t0 = process.hrtime.bigint();
  while (sent < count && sent < window) sendNext();
});

ws.on('message', (data, isBinary) => {
  const want = inflight.shift();
  if (!want || isBinary !== (kind === 'binary') || !want.equals(data)) fail(`echo ${received} differs`);
  received++;
  if (sent < count) sendNext();
  if (received === count) {
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const ext = ws.extensions ? 'deflate' : 'none';
    process.stdout.write(`ws_client ${count} ${count * size} ${secs.toFixed(6)} ${ext}\n`);
    ws.close(1000);
  }
});

ws.on('close', () => {
  if (received !== count) fail(`closed after ${received} of ${count} echoes`);
});
ws.on('error', (err) => fail(err.message));
