// ws_echo.js: the echo peer of tests/bench/websocket.lua, a Node `ws` server on
// 127.0.0.1 that sends every message back as it came (text stays text, binary
// stays binary). Prints its port on the first line of stdout; runs until killed.
//
//   NODE_PATH=/usr/share/nodejs node tests/bench/ws_echo.js [--deflate] [--port N]
// --deflate: permessage-deflate offered to clients that ask (default off).
'use strict';
const { WebSocketServer } = require('ws');

const args = process.argv.slice(2);
const deflate = args.includes('--deflate');
const portArg = args.indexOf('--port');
const port = portArg >= 0 ? Number(args[portArg + 1]) : 0;

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: deflate ? { threshold: 0 } : false,
  maxPayload: 64 * 1024 * 1024,
  clientTracking: false,
});

wss.on('connection', (ws, req) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', (err) => process.stderr.write(`ws_echo: ${err.message}\n`));
  if (req.socket.setNoDelay) req.socket.setNoDelay(true);
});
wss.on('listening', () => process.stdout.write(`${wss.address().port}\n`));
wss.on('error', (err) => {
  process.stderr.write(`ws_echo: ${err.message}\n`);
  process.exit(1);
});
process.on('SIGTERM', () => process.exit(0));
