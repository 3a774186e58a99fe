// Shared pieces of the chinwag load generators: argument parsing, the three
// client dialects (ws / socketio / chinwag), paced connection opening with
// bounded concurrency, the stdin control handshake used by bench/measure.py,
// and percentile helpers.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { io } from 'socket.io-client';

export { performance };

export const DIALECTS = ['ws', 'socketio', 'chinwag'];

export function die(msg, code = 2) {
  process.stderr.write(`${process.argv[1].split('/').pop()}: ${msg}\n`);
  process.exit(code);
}

export function log(msg) {
  process.stderr.write(`${msg}\n`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Reject `promise` with `msg` if it hasn't settled within `ms`.
export function withTimeout(promise, ms, msg) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(msg)), ms);
      t.unref?.();
    }),
  ]).finally(() => clearTimeout(t));
}

// ---------------------------------------------------------------- arguments

export function num(v, name, { min = -Infinity, integer = false } = {}) {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    die(`--${name}: expected ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(v)}`);
  }
  return n;
}

// A JSON array of chinwag ws tokens, one per connection. With cycle=true a
// shorter list is reused round-robin (several connections per user: mind the
// server's WEBSOCKET_MAX_CONNECTIONS_PER_USER).
export function loadTokens(path, needed, cycle = false) {
  if (!path) die('--tokens FILE is required for the chinwag dialect');
  let tokens;
  try {
    tokens = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    die(`--tokens ${path}: ${e.message}`);
  }
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string')) {
    die(`--tokens ${path}: expected a JSON array of ws token strings`);
  }
  if (!tokens.length || (!cycle && tokens.length < needed)) {
    die(`--tokens ${path}: ${tokens.length} tokens, need ${needed} (or --cycle-tokens)`);
  }
  return Array.from({ length: needed }, (_, k) => tokens[k % tokens.length]);
}

export function parseLocalAddrs(spec) {
  if (!spec) return [undefined];
  // "127.0.0.1,127.0.0.2" or "127.0.0.1-8" (last octet range)
  const out = [];
  for (const part of spec.split(',')) {
    const m = part.match(/^(\d+\.\d+\.\d+\.)(\d+)-(\d+)$/);
    if (m) for (let i = Number(m[2]); i <= Number(m[3]); i++) out.push(`${m[1]}${i}`);
    else if (part) out.push(part);
  }
  return out.length ? out : [undefined];
}

// ---------------------------------------------------------------- dialects
//
// Teardown note: the generators end with terminate() (the client closes the
// TCP connection first, so TIME_WAIT stays on the client side, where bind()
// skips those ports). A graceful WebSocket close makes the *server* close
// first; thousands of server-side TIME_WAITs then collide with the next run's
// client ports and stall its handshakes by a SYN retransmit (1 s).
//
// open(dialect, opts) resolves, once the connection is *ready* (in the room,
// so a message sent now will reach it), to
//   { send(i, payload), close(), isOpen(), closeInfo }
// opts: { url, token, room, joinFrame (chinwag: send join_room after connect instead
//         of room_id in the URL), localAddress, timeoutMs, run,
//         onPayload(payloadObject), onClose(info), onConfirm(), onError(frame) }
// payload objects are {r: run id, i: message index, t: send time (ms, performance.now)}.

export function open(dialect, o) {
  switch (dialect) {
    case 'ws':
      return openWs(o);
    case 'socketio':
      return openSocketio(o);
    case 'chinwag':
      return openChinwag(o);
    default:
      throw new Error(`unknown dialect ${dialect}`);
  }
}

function wsOptions(o) {
  return {
    perMessageDeflate: false, // compression off for every target: compare servers, not zlib
    handshakeTimeout: o.timeoutMs,
    localAddress: o.localAddress,
    maxPayload: 16 * 1024 * 1024,
    // The generator is usually the tighter CPU budget (one core receiving
    // every delivery); the servers' UTF-8 is trusted.
    skipUTF8Validation: true,
  };
}

// Generic promise plumbing shared by the raw-WebSocket dialects.
function rawClient(o, url, { onFrame, isReadyFrame }) {
  return new Promise((resolve, reject) => {
    let ready = false;
    let settled = false;
    const ws = new WebSocket(url, wsOptions(o));
    const client = {
      ws,
      closeInfo: null,
      send: (s) => ws.send(s),
      close: () => {
        try {
          ws.close(1000);
        } catch {
          ws.terminate();
        }
      },
      terminate: () => ws.terminate(),
      isOpen: () => ws.readyState === WebSocket.OPEN,
    };
    const timer = setTimeout(() => fail(new Error(`not ready after ${o.timeoutMs} ms`)), o.timeoutMs);
    function fail(err) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    }
    ws.on('message', (data, isBinary) => {
      if (!ready) {
        let r;
        try {
          r = isReadyFrame(data, isBinary, ws);
        } catch (e) {
          return fail(e);
        }
        if (r) {
          ready = true;
          settled = true;
          clearTimeout(timer);
          resolve(client);
        }
        return;
      }
      onFrame(data, isBinary);
    });
    ws.on('error', (e) => fail(e));
    ws.on('unexpected-response', (_req, res) => fail(new Error(`handshake refused: HTTP ${res.statusCode}`)));
    ws.on('close', (code, reason) => {
      client.closeInfo = { code, reason: reason.toString() };
      if (!ready) fail(new Error(`closed before ready: ${code} ${reason}`));
      else o.onClose?.(client.closeInfo);
    });
  });
}

// Payloads the generator itself serialised: {"r":"<run>","i":<int>,"t":<float>...}.
// Reads i and t straight from the bytes (no JSON.parse, no string) when the
// frame starts with the expected prefix; otherwise null (use slowPayload).
function fastPayload(buf, marker) {
  if (!Buffer.isBuffer(buf) || buf.length < marker.length + 8) return null;
  if (buf.compare(marker, 0, marker.length, 0, marker.length) !== 0) return null;
  let k = marker.length;
  let i = 0;
  let c;
  while ((c = buf[k]) >= 48 && c <= 57) {
    i = i * 10 + (c - 48);
    k++;
  }
  // expect ,"t":
  if (buf[k] !== 44 || buf[k + 1] !== 34 || buf[k + 2] !== 116 || buf[k + 3] !== 34 || buf[k + 4] !== 58) return null;
  k += 5;
  const start = k;
  while ((c = buf[k]) !== 44 && c !== 125 && k < buf.length) k++;
  const t = Number(buf.latin1Slice(start, k));
  if (!Number.isFinite(t)) return null;
  return { r: marker.run, i, t };
}

function slowPayload(data) {
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}

// Bare websockets peer: ready on the server's first frame ({"type":"joined"});
// every later text frame is a payload JSON object, broadcast verbatim.
async function openWs(o) {
  const marker = Buffer.from(`{"r":${JSON.stringify(o.run)},"i":`);
  marker.run = o.run;
  const c = await rawClient(o, o.url, {
    isReadyFrame: () => true,
    onFrame: (data) => {
      const p = fastPayload(data, marker) ?? slowPayload(data);
      if (p && p.r === o.run) o.onPayload?.(p);
    },
  });
  c.send = (_i, payload) => c.ws.send(JSON.stringify(payload));
  return c;
}

// Socket.IO over the websocket transport only: ready on `connect` (the server
// has run its connect handler, which put the socket in the room); payloads
// travel as the argument of event "msg".
function openSocketio(o) {
  return new Promise((resolve, reject) => {
    const s = io(o.url, {
      transports: ['websocket'],
      forceNew: true,
      multiplex: false,
      reconnection: false,
      timeout: o.timeoutMs,
      perMessageDeflate: false,
      localAddress: o.localAddress,
    });
    let ready = false;
    const timer = setTimeout(() => fail(new Error(`not ready after ${o.timeoutMs} ms`)), o.timeoutMs);
    function fail(err) {
      clearTimeout(timer);
      s.close();
      reject(err);
    }
    const client = {
      closeInfo: null,
      send: (_i, payload) => s.emit('msg', payload),
      close: () => s.close(),
      // drop the TCP connection from this side (client keeps the TIME_WAIT)
      terminate: () => {
        const ws = s.io?.engine?.transport?.ws;
        if (ws?.terminate) ws.terminate();
        else s.close();
      },
      isOpen: () => s.connected,
    };
    s.on('connect', () => {
      ready = true;
      clearTimeout(timer);
      resolve(client);
    });
    s.on('connect_error', (e) => fail(e));
    s.on('msg', (p) => {
      if (p && p.r === o.run) o.onPayload?.(p);
    });
    s.on('disconnect', (reason) => {
      client.closeInfo = { code: null, reason };
      if (ready) o.onClose?.(client.closeInfo);
    });
  });
}

// chinwag (SPEC §3-4): ws://host:port/api/v1/ws/ws?token=..&room_id=..&room_type=shared
// First frame `connect`; with room_id in the query a `join_room` confirmation
// follows: ready then (or on `connect` when no room is given). Receivers
// parse the payload out of chat frames' data.content; other frame types
// (presence, delivery_confirmation, system heartbeat, ...) are ignored except
// for counting. Messages carry message_id "b-<run>-<i>" (the idempotency key
// must be fresh per run, or a re-run with the same users stores nothing).
function openChinwag(o) {
  const q = new URLSearchParams({ token: o.token });
  if (o.room && !o.joinFrame) {
    q.set('room_id', o.room);
    q.set('room_type', o.roomType || 'shared');
  }
  const url = `${o.url}${o.url.includes('?') ? '&' : '?'}${q}`;
  const prefix = `b-${o.run}-`;
  let sawConnect = false;
  const parse = (data) => {
    try {
      return JSON.parse(data);
    } catch {
      return null;
    }
  };
  const handle = (f) => {
    if (!f || typeof f !== 'object') return;
    switch (f.type) {
      case 'chat': {
        const d = f.data || {};
        if ((f.room_id ?? d.room_id) !== o.room || typeof d.content !== 'string') return;
        const p = parse(d.content);
        if (p && p.r === o.run) o.onPayload?.(p, f);
        return;
      }
      case 'delivery_confirmation': {
        const d = f.data || {};
        if (d.status === 'delivered' && !d.recipient && String(d.message_id).startsWith(prefix)) o.onConfirm?.(d);
        return;
      }
      case 'error':
        o.onError?.(f);
        return;
      default:
    }
  };
  return rawClient(o, url, {
    isReadyFrame: (data, _isBinary, ws) => {
      const f = parse(data);
      if (!f) return false;
      if (f.type === 'error') {
        throw new Error(`server error before ready: ${JSON.stringify(f.data)}`);
      }
      if (f.type === 'connect') {
        sawConnect = true;
        if (o.room && o.joinFrame) {
          // as a client does: connect, then a join_room frame for the room
          ws.send(JSON.stringify({ type: 'join_room', data: { room_id: o.room, room_type: o.roomType || 'shared' } }));
        }
        return !o.room;
      }
      if (f.type === 'join_room' && sawConnect) {
        const rid = f.data?.room_id ?? f.room_id;
        return rid === o.room;
      }
      handle(f); // e.g. offline-queue replay before the confirmation
      return false;
    },
    onFrame: (data) => handle(parse(data)),
  }).then((c) => {
    c.send = (i, payload) =>
      c.ws.send(
        JSON.stringify({
          type: 'chat',
          room_id: o.room,
          message_id: `${prefix}${i}`,
          data: { message: JSON.stringify(payload), ai: false },
        }),
      );
    return c;
  });
}

// ------------------------------------------------- paced, bounded connecting

// Open `count` connections with at most `concurrency` handshakes in flight and
// at most `ratePerS` connection starts per second (0 = unpaced). makeOpts(k)
// gives the options of connection k. Retries a failed connection `retries`
// times. Resolves to the array of clients; rejects on the first connection
// that fails for good or when the whole phase exceeds deadlineMs.
export function openMany(dialect, count, makeOpts, { concurrency = 50, ratePerS = 0, retries = 2, deadlineMs = 60000, onProgress } = {}) {
  const clients = new Array(count);
  const t0 = performance.now();
  let next = 0;
  let done = 0;
  let failed = null;
  async function worker() {
    while (failed === null && next < count) {
      const k = next++;
      if (ratePerS > 0) {
        const due = t0 + (k * 1000) / ratePerS;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
      }
      for (let attempt = 0; ; attempt++) {
        try {
          clients[k] = await open(dialect, makeOpts(k));
          break;
        } catch (e) {
          if (attempt >= retries || failed !== null) {
            failed ??= new Error(`connection ${k} failed: ${e.message}`);
            return;
          }
          await sleep(50 * 2 ** attempt);
        }
      }
      done++;
      onProgress?.(done);
    }
  }
  const all = Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker)).then(() => {
    if (failed) throw failed;
    return clients;
  });
  return withTimeout(all, deadlineMs, `connect phase: only ${done}/${count} ready after ${deadlineMs} ms`).catch((e) => {
    for (const c of clients) c?.terminate?.();
    throw e;
  });
}

// --------------------------------------------------------- control protocol
//
// With --control, the generator prints {"event":"ready",...} when every
// connection is ready, waits for a "go" line on stdin, runs, prints the result
// line, then waits for "bye" (or EOF) before closing its connections, so the
// controller can read the server's CPU time around exactly the measured work.

let stdinLines = null;
function lines() {
  if (!stdinLines) {
    const rl = createInterface({ input: process.stdin });
    const queue = [];
    const waiters = [];
    let ended = false;
    rl.on('line', (l) => (waiters.length ? waiters.shift()(l) : queue.push(l)));
    rl.on('close', () => {
      ended = true;
      while (waiters.length) waiters.shift()(null);
    });
    stdinLines = () => (queue.length ? Promise.resolve(queue.shift()) : ended ? Promise.resolve(null) : new Promise((r) => waiters.push(r)));
  }
  return stdinLines;
}

export async function waitFor(word, timeoutMs) {
  const next = lines();
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const remaining = deadline - performance.now();
    if (remaining <= 0) throw new Error(`no "${word}" on stdin within ${timeoutMs} ms`);
    const l = await withTimeout(next(), remaining, `no "${word}" on stdin within ${timeoutMs} ms`);
    if (l === null) return false; // EOF
    if (l.trim() === word) return true;
  }
}

export function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

// ---------------------------------------------------------------- statistics

export function percentile(sorted, q) {
  if (!sorted.length) return null;
  const k = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[k];
}

export const round = (x, d = 3) => (x === null || x === undefined ? null : Math.round(x * 10 ** d) / 10 ** d);

export function cpuSeconds(since) {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}
