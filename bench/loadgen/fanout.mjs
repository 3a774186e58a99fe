#!/usr/bin/env node
// Room fan-out load generator.
//
// Opens N receiver connections (paced, bounded concurrency) plus 1 sender to a
// target, waits until every one is ready (in the room), then sends M messages
// as a burst (default) or at a fixed rate R msg/s. Each message carries its
// send time (performance.now() in this process, which also hosts the
// receivers, so latency = receive time - send time with one clock). In rate
// mode the stamp is the message's *scheduled* send time, so a stalled sender
// shows up as latency instead of hiding it (no coordinated omission).
// Deliveries are counted at the receivers (the sender's own copy is not
// counted). Prints ONE JSON line (the result) on stdout; with --control it
// first prints {"event":"ready"} and waits for "go" on stdin, and after the
// result waits for "bye"/EOF before closing (see bench/measure.py).
//
// Exit status: 0 ok; 1 deliveries missing after the deadline (result line
// still printed, ok:false); 2 bad arguments; 3 connect phase failed;
// 4 watchdog (--max-seconds) fired; 5 a connection dropped mid-run.
//
//   node loadgen/fanout.mjs --dialect ws --url ws://127.0.0.1:8765/ -n 1000 -m 100
//   node loadgen/fanout.mjs --dialect socketio --url http://127.0.0.1:8766 -n 100 -m 1000 --rate 100
//   node loadgen/fanout.mjs --dialect chinwag --url ws://127.0.0.1:8000/api/v1/ws/ws \
//        --tokens tokens.json --room bench-1 -n 100 -m 100

import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import {
  DIALECTS, die, log, sleep, num, loadTokens, parseLocalAddrs, openMany, open,
  waitFor, emit, percentile, round, cpuSeconds, performance,
} from './lib.mjs';

const USAGE = `usage: fanout.mjs --dialect ws|socketio|chinwag --url URL [-n receivers] [-m messages]
  [--rate msg/s (0 = burst)] [--tokens FILE [--cycle-tokens]] [--room ID] [--concurrency 50] [--connect-rate 0]
  [--local-addrs 127.0.0.1-4] [--conn-timeout 10] [--connect-timeout 120] [--timeout 60]
  [--pad bytes] [--settle-ms 200] [--control] [--run ID] [--max-seconds 600] [--quiet]`;

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      dialect: { type: 'string' },
      url: { type: 'string' },
      receivers: { type: 'string', short: 'n', default: '100' },
      messages: { type: 'string', short: 'm', default: '100' },
      rate: { type: 'string', default: '0' },
      tokens: { type: 'string' },
      'cycle-tokens': { type: 'boolean', default: false },
      room: { type: 'string' },
      'room-type': { type: 'string', default: 'shared' },
      concurrency: { type: 'string', default: '50' },
      'connect-rate': { type: 'string', default: '0' },
      'local-addrs': { type: 'string' },
      'conn-timeout': { type: 'string', default: '10' },
      'connect-timeout': { type: 'string', default: '120' },
      timeout: { type: 'string', default: '60' },
      pad: { type: 'string', default: '0' },
      'settle-ms': { type: 'string', default: '200' },
      control: { type: 'boolean', default: false },
      run: { type: 'string' },
      'max-seconds': { type: 'string', default: '600' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (e) {
  die(`${e.message}\n${USAGE}`);
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (!DIALECTS.includes(args.dialect)) die(`--dialect must be one of ${DIALECTS.join(', ')}\n${USAGE}`);
if (!args.url) die(`--url is required\n${USAGE}`);

const dialect = args.dialect;
const N = num(args.receivers, 'receivers', { min: 1, integer: true });
const M = num(args.messages, 'messages', { min: 1, integer: true });
const RATE = num(args.rate, 'rate', { min: 0 });
const run = args.run || randomBytes(4).toString('hex');
const room = args.room || `bench-${run}`;
const connTimeoutMs = num(args['conn-timeout'], 'conn-timeout', { min: 0.1 }) * 1000;
const connectTimeoutMs = num(args['connect-timeout'], 'connect-timeout', { min: 1 }) * 1000;
const deliveryTimeoutMs = num(args.timeout, 'timeout', { min: 0.1 }) * 1000;
const pad = num(args.pad, 'pad', { min: 0, integer: true });
const settleMs = num(args['settle-ms'], 'settle-ms', { min: 0 });
const maxSeconds = num(args['max-seconds'], 'max-seconds', { min: 1 });
const localAddrs = parseLocalAddrs(args['local-addrs']);
const tokens = dialect === 'chinwag' ? loadTokens(args.tokens, N + 1, args['cycle-tokens']) : null;
const expected = M * N;
const say = args.quiet ? () => {} : log;

setTimeout(() => die(`watchdog: still running after ${maxSeconds} s`, 4), maxSeconds * 1000).unref();

// ------------------------------------------------------------------ state
const seen = new Uint8Array(expected); // seen[k*M + i]: receiver k got message i
const lat = new Float64Array(expected); // latency (ms) of each first delivery
const lastIdx = new Int32Array(N).fill(-1);
let unique = 0;
let duplicates = 0;
let outOfOrder = 0;
let confirmations = 0;
let errors = 0;
let running = false;
let lastDelivery = 0;
let finish; // resolves when every delivery arrived
let abort; // rejects when a receiver drops mid-run
const allDelivered = new Promise((res, rej) => {
  finish = res;
  abort = rej;
});
let confirmed;
const allConfirmed = new Promise((res) => (confirmed = res));

function onError(who) {
  return (f) => {
    errors++;
    if (errors <= 3) log(`${who}: server error frame: ${JSON.stringify(f.data ?? f)}`);
  };
}

function receiverOpts(k) {
  return {
    url: args.url,
    token: tokens ? tokens[k + 1] : undefined,
    room,
    roomType: args['room-type'],
    localAddress: localAddrs[(k + 1) % localAddrs.length],
    timeoutMs: connTimeoutMs,
    run,
    onPayload: (p) => {
      const now = performance.now();
      const i = p.i;
      if (!Number.isInteger(i) || i < 0 || i >= M) return;
      const slot = k * M + i;
      if (seen[slot]) {
        duplicates++;
        return;
      }
      seen[slot] = 1;
      if (i < lastIdx[k]) outOfOrder++;
      else lastIdx[k] = i;
      lat[unique++] = now - p.t;
      lastDelivery = now;
      if (unique === expected) finish();
    },
    onClose: (info) => {
      if (running) abort(new Error(`receiver ${k} closed mid-run: ${info.code ?? ''} ${info.reason ?? ''}`));
    },
    onError: onError(`receiver ${k}`),
  };
}

async function main() {
  const tConnect0 = performance.now();
  // The sender goes first: for chinwag it creates the room (as its owner).
  let sender;
  try {
    sender = await open(dialect, {
      url: args.url,
      token: tokens?.[0],
      room,
      roomType: args['room-type'],
      localAddress: localAddrs[0],
      timeoutMs: connTimeoutMs,
      run,
      onConfirm: () => {
        if (++confirmations === M) confirmed();
      },
      onError: onError('sender'),
      onClose: (info) => {
        if (running) abort(new Error(`sender closed mid-run: ${info.code ?? ''} ${info.reason ?? ''}`));
      },
    });
  } catch (e) {
    die(`sender connection failed: ${e.message}`, 3);
  }
  let receivers;
  try {
    receivers = await openMany(dialect, N, receiverOpts, {
      concurrency: num(args.concurrency, 'concurrency', { min: 1, integer: true }),
      ratePerS: num(args['connect-rate'], 'connect-rate', { min: 0 }),
      deadlineMs: connectTimeoutMs,
    });
  } catch (e) {
    sender.terminate();
    die(e.message, 3);
  }
  const connectS = (performance.now() - tConnect0) / 1000;
  say(`fanout: ${N} receivers + 1 sender ready in ${connectS.toFixed(2)} s (${dialect}, room ${room})`);

  if (args.control) {
    emit({ event: 'ready', connections: N + 1, connect_s: round(connectS) });
    if (!(await waitFor('go', 600000))) die('stdin closed before "go"', 2);
  } else if (settleMs > 0) {
    await sleep(settleMs);
  }

  // ----------------------------------------------------------- measure
  running = true;
  const filler = pad > 0 ? 'x'.repeat(pad) : undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  if (RATE > 0) {
    const period = 1000 / RATE;
    let i = 0;
    while (i < M) {
      const due = Math.min(M, Math.floor((performance.now() - t0) / period) + 1);
      for (; i < due; i++) {
        const p = { r: run, i, t: t0 + i * period };
        if (filler) p.x = filler;
        sender.send(i, p);
      }
      if (i < M) await sleep(Math.max(0, t0 + i * period - performance.now()));
    }
  } else {
    for (let i = 0; i < M; i++) {
      const p = { r: run, i, t: performance.now() };
      if (filler) p.x = filler;
      sender.send(i, p);
    }
  }
  const tSent = performance.now();

  let ok = true;
  let failure = null;
  let exitCode = 0;
  try {
    await Promise.race([
      allDelivered,
      sleep(deliveryTimeoutMs).then(() => {
        throw new Error(`${expected - unique} of ${expected} deliveries missing ${deliveryTimeoutMs / 1000} s after the last send`);
      }),
    ]);
  } catch (e) {
    ok = false;
    failure = e.message;
    exitCode = e.message.includes('mid-run') ? 5 : 1;
  }
  const tDone = ok ? lastDelivery : performance.now();
  if (ok && dialect === 'chinwag' && confirmations < M) {
    // the sender's delivery_confirmations are part of the server's work
    await Promise.race([allConfirmed, sleep(5000)]);
    if (confirmations < M) log(`fanout: only ${confirmations}/${M} delivery_confirmations reached the sender`);
  }
  const cpu = cpuSeconds(cpu0);
  running = false;

  const sorted = lat.subarray(0, unique).sort();
  const seconds = (tDone - t0) / 1000;
  const result = {
    event: 'result',
    ok,
    dialect,
    receivers: N,
    messages: M,
    rate: RATE || null,
    expected,
    deliveries: unique,
    missing: expected - unique,
    duplicates,
    out_of_order: outOfOrder,
    seconds: round(seconds, 4),
    send_s: round((tSent - t0) / 1000, 4),
    deliveries_per_s: round(unique / seconds, 1),
    p50_ms: round(percentile(sorted, 0.5)),
    p90_ms: round(percentile(sorted, 0.9)),
    p99_ms: round(percentile(sorted, 0.99)),
    max_ms: round(sorted.length ? sorted[sorted.length - 1] : null),
    loadgen_cpu_s: round(cpu),
    connect_s: round(connectS),
    connect_per_s: round((N + 1) / connectS, 1),
    errors,
    ...(dialect === 'chinwag' ? { confirmations } : {}),
    run,
    room,
  };
  if (failure) result.failure = failure;
  emit(result);
  if (!ok) log(`fanout: FAILED: ${failure}`);

  if (args.control) {
    try {
      await waitFor('bye', 120000);
    } catch (e) {
      log(`fanout: ${e.message}`);
    }
  }
  for (const c of [sender, ...receivers]) c.terminate();
  await sleep(300);
  process.exit(exitCode);
}

main().catch((e) => die(`unexpected: ${e.stack || e}`, 2));
