// ws_node_peer.js: a WebSocket peer made with Node's `ws` (Debian node-ws; run with
// `node`, NODE_PATH=/usr/share/nodejs), for websocket_spec. Same interface as
// ws_py_peer.py:
//
// Server: binds 127.0.0.1 on an ephemeral port, prints the port alone on the first
// stdout line, then echoes every message with its type (permessage-deflate on) until
// SIGTERM. Each connection logs "conn path=P protocol=P extensions=E". Text messages
// starting with "__" are commands: __info (a JSON object: path, headers, protocol,
// extensions), __close CODE [REASON], __ping DATA (answers "__pong DATA" once the pong
// came), __big N (answers N zero bytes, binary).
//   node ws_node_peer.js server [--cert F --key F] [--protocols a,b] [--no-compress]
//                               [--ping-interval S]
//
// Client: connects to URL, sends COUNT messages of random sizes MIN..MAX (seeded; text,
// binary or mixed), checks each echo, closes with CODE and prints one line:
//   result ok count=N bytes=B sha256=H protocol=P extensions=E close=C
//   result rejected status=S | result FAIL why
//   node ws_node_peer.js client URL [--cafile F] [--protocols a,b] [--header K:V]...
//        [--no-compress] [--count N] [--min N] [--max N] [--kind K] [--seed N] [--close C]
'use strict';
const fs = require('fs');
const https = require('https');
const crypto = require('crypto');
const WebSocket = require('ws');

function parseArgs(argv) {
  const a = { role: argv[0], header: [], count: 10, min: 1, max: 1000, kind: 'mixed', seed: 1,
    close: 1000, compress: true };
  for (let i = 1; i < argv.length; i++) {
    const k = argv[i];
    const next = () => argv[++i];
    if (k === '--cert') a.cert = next();
    else if (k === '--key') a.key = next();
    else if (k === '--cafile') a.cafile = next();
    else if (k === '--protocols') a.protocols = next().split(',');
    else if (k === '--header') a.header.push(next());
    else if (k === '--no-compress') a.compress = false;
    else if (k === '--ping-interval') a.pingInterval = parseFloat(next());
    else if (k === '--count') a.count = parseInt(next(), 10);
    else if (k === '--min') a.min = parseInt(next(), 10);
    else if (k === '--max') a.max = parseInt(next(), 10);
    else if (k === '--kind') a.kind = next();
    else if (k === '--seed') a.seed = parseInt(next(), 10);
    else if (k === '--close') a.close = parseInt(next(), 10);
    else if (k.startsWith('--')) throw new Error('unknown option ' + k);
    else a.url = k;
  }
  return a;
}

const log = (line) => process.stdout.write(line + '\n');
const deflate = (on) => (on ? { threshold: 16 } : false);

function command(ws, req, msg) {
  const sp = msg.indexOf(' ');
  const cmd = sp < 0 ? msg : msg.slice(0, sp);
  const rest = sp < 0 ? '' : msg.slice(sp + 1);
  if (cmd === '__info') {
    ws.send(JSON.stringify({ path: req.url, protocol: ws.protocol || null,
      extensions: ws.extensionsHeader || null, headers: req.headers }));
  } else if (cmd === '__close') {
    const sp2 = rest.indexOf(' ');
    ws.close(parseInt(sp2 < 0 ? rest : rest.slice(0, sp2), 10), sp2 < 0 ? '' : rest.slice(sp2 + 1));
  } else if (cmd === '__big') {
    ws.send(Buffer.alloc(parseInt(rest, 10)));
  } else if (cmd === '__ping') {
    ws.once('pong', (data) => ws.send('__pong ' + data.toString()));
    ws.ping(rest);
  } else {
    ws.send(msg);
  }
}

function serve(a) {
  const opts = { perMessageDeflate: deflate(a.compress), maxPayload: 256 * 1024 * 1024 };
  if (a.protocols) {
    opts.handleProtocols = (offered) => a.protocols.find((p) => offered.has(p)) || false;
  }
  let listening;
  if (a.cert) {
    const server = https.createServer({ cert: fs.readFileSync(a.cert), key: fs.readFileSync(a.key) });
    opts.server = server;
    listening = (cb) => server.listen(0, '127.0.0.1', () => cb(server.address().port));
  }
  else {
    opts.host = '127.0.0.1';
    opts.port = 0;
  }
  const wss = new WebSocket.WebSocketServer(opts);
  wss.on('headers', (headers, req) => { req.extensionsHeader = headers.find((h) => /^sec-websocket-extensions:/i.test(h)); });
  wss.on('connection', (ws, req) => {
    ws.extensionsHeader = req.extensionsHeader ? req.extensionsHeader.replace(/^[^:]*:\s*/, '') : null;
    log(`conn path=${req.url} protocol=${ws.protocol || 'None'} extensions=${ws.extensionsHeader || 'None'}`);
    let timer;
    if (a.pingInterval) timer = setInterval(() => ws.ping(), a.pingInterval * 1000);
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.length > 1 && data[0] === 0x5f && data[1] === 0x5f) command(ws, req, data.toString());
      else ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code, reason) => {
      if (timer) clearInterval(timer);
      log(`end code=${code} reason=${reason.toString()}`);
    });
    ws.on('error', (e) => log(`error ${e.message}`));
  });
  if (listening) listening((port) => log(String(port)));
  else wss.on('listening', () => log(String(wss.address().port)));
}

// A small seeded generator (xorshift32), so runs repeat.
function rng(seed) {
  let x = (seed * 2654435761) >>> 0 || 1;
  const next = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  return { int: (lo, hi) => lo + (next() % (hi - lo + 1)), next };
}

function makeMessage(r, kind, size) {
  if (kind === 'mixed') kind = r.int(0, 1) ? 'text' : 'binary';
  if (kind === 'text') {
    const alphabet = ['a', 'b', 'c', ' ', 'é', '€', '𝄞', 'x', 'y', 'z'];
    let s = '';
    for (let i = 0; i < Math.min(size, 64); i++) s += alphabet[r.int(0, alphabet.length - 1)];
    return s.repeat(Math.floor(size / s.length) + 1).slice(0, Math.max(1, size >> 1)).replace(/[\ud800-\udbff]$/, 'q');
  }
  if (r.int(0, 1)) {
    const unit = Buffer.alloc(Math.min(size, 256));
    for (let i = 0; i < unit.length; i++) unit[i] = r.next() & 255;
    return Buffer.concat(Array(Math.floor(size / unit.length) + 1).fill(unit)).subarray(0, size);
  }
  return crypto.randomBytes(size);
}

function client(a) {
  const opts = { perMessageDeflate: deflate(a.compress), maxPayload: a.max * 4 + 1024, headers: {} };
  if (a.cafile) opts.ca = fs.readFileSync(a.cafile);
  for (const h of a.header) {
    const i = h.indexOf(':');
    opts.headers[h.slice(0, i)] = h.slice(i + 1);
  }
  const ws = new WebSocket(a.url, a.protocols || [], opts);
  const r = rng(a.seed);
  const msgs = [];
  for (let i = 0; i < a.count; i++) msgs.push(makeMessage(r, a.kind, r.int(a.min, a.max)));
  const hash = crypto.createHash('sha256');
  let next = 0;
  let total = 0;
  let failed = false;
  const fail = (why) => { if (!failed) { failed = true; log('result FAIL ' + why); process.exit(1); } };
  ws.on('unexpected-response', (req, res) => { log(`result rejected status=${res.statusCode}`); process.exit(0); });
  ws.on('error', (e) => fail(e.message));
  ws.on('open', () => { for (const m of msgs) ws.send(m); });
  ws.on('message', (data, isBinary) => {
    const m = msgs[next];
    const want = typeof m === 'string' ? Buffer.from(m) : m;
    if (isBinary !== (typeof m !== 'string') || !want.equals(data)) {
      fail(`message ${next} (${want.length} bytes): echo differs (${data.length} bytes, binary=${isBinary})`);
      return;
    }
    hash.update(data);
    total += data.length;
    if (++next === msgs.length) ws.close(a.close, 'bye');
  });
  ws.on('close', (code) => {
    if (failed) return;
    if (next !== msgs.length) fail(`closed (${code}) after ${next} of ${msgs.length} echoes`);
    const ext = (ws.extensions || '-').replace(/ /g, '') || '-';
    log(`result ok count=${a.count} bytes=${total} sha256=${hash.digest('hex')} protocol=${ws.protocol || 'None'} extensions=${ext} close=${code}`);
  });
}

const args = parseArgs(process.argv.slice(2));
if (args.role === 'server') serve(args);
else client(args);
