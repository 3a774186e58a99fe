#!/usr/bin/env node
// Idle-connection load generator: opens N connections (paced, bounded
// concurrency; optionally spread over several local source addresses
// 127.0.0.x so more than one ephemeral-port range is available), holds them
// for S seconds while answering the server's pings (ws does that by itself;
// Engine.IO pings are answered by socket.io-client), then reports the connect
// rate and how many stayed open. Prints ONE JSON line; with --control it
// first prints {"event":"ready"} once all are open and waits for "go" on stdin
// before starting the hold (so the controller can read the server's RSS), and
// after the result waits for "bye"/EOF before closing.
//
// Exit status: 0 all stayed open; 1 some closed during the hold; 2 bad
// arguments; 3 connect phase failed; 4 watchdog fired.
//
//   node loadgen/idle.mjs --dialect ws --url ws://127.0.0.1:8765/ -n 10000 --hold 30 --local-addrs 127.0.0.1-4

import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import {
  DIALECTS, die, log, sleep, num, loadTokens, parseLocalAddrs, openMany,
  waitFor, emit, round, cpuSeconds, performance,
} from './lib.mjs';

const USAGE = `usage: idle.mjs --dialect ws|socketio|chinwag --url URL [-n connections] [--hold seconds]
  [--tokens FILE [--cycle-tokens]] [--room ID [--join-frame]] [--concurrency 100] [--connect-rate 0] [--local-addrs 127.0.0.1-4]
  [--conn-timeout 10] [--connect-timeout 300] [--control] [--max-seconds 900] [--quiet]`;

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      dialect: { type: 'string' },
      url: { type: 'string' },
      connections: { type: 'string', short: 'n', default: '1000' },
      hold: { type: 'string', default: '10' },
      tokens: { type: 'string' },
      'cycle-tokens': { type: 'boolean', default: false },
      room: { type: 'string' },
      'join-frame': { type: 'boolean', default: false },
      'room-type': { type: 'string', default: 'shared' },
      concurrency: { type: 'string', default: '100' },
      'connect-rate': { type: 'string', default: '0' },
      'local-addrs': { type: 'string' },
      'conn-timeout': { type: 'string', default: '10' },
      'connect-timeout': { type: 'string', default: '300' },
      control: { type: 'boolean', default: false },
      run: { type: 'string' },
      'max-seconds': { type: 'string', default: '900' },
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
const N = num(args.connections, 'connections', { min: 1, integer: true });
const holdMs = num(args.hold, 'hold', { min: 0 }) * 1000;
const run = args.run || randomBytes(4).toString('hex');
const localAddrs = parseLocalAddrs(args['local-addrs']);
const tokens = dialect === 'chinwag' ? loadTokens(args.tokens, N, args['cycle-tokens']) : null;
const maxSeconds = num(args['max-seconds'], 'max-seconds', { min: 1 });
const say = args.quiet ? () => {} : log;
setTimeout(() => die(`watchdog: still running after ${maxSeconds} s`, 4), maxSeconds * 1000).unref();

let holding = false;
let closedDuringHold = 0;
const closeCodes = {};

async function main() {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let lastReport = t0;
  let clients;
  try {
    clients = await openMany(
      dialect,
      N,
      (k) => ({
        url: args.url,
        token: tokens?.[k],
        room: args.room,
        joinFrame: args['join-frame'],
        roomType: args['room-type'],
        localAddress: localAddrs[k % localAddrs.length],
        timeoutMs: num(args['conn-timeout'], 'conn-timeout', { min: 0.1 }) * 1000,
        run,
        onClose: (info) => {
          if (!holding) return;
          closedDuringHold++;
          const key = String(info.code ?? info.reason);
          closeCodes[key] = (closeCodes[key] || 0) + 1;
        },
      }),
      {
        concurrency: num(args.concurrency, 'concurrency', { min: 1, integer: true }),
        ratePerS: num(args['connect-rate'], 'connect-rate', { min: 0 }),
        deadlineMs: num(args['connect-timeout'], 'connect-timeout', { min: 1 }) * 1000,
        onProgress: (done) => {
          const now = performance.now();
          if (now - lastReport > 2000) {
            lastReport = now;
            say(`idle: ${done}/${N} open`);
          }
        },
      },
    );
  } catch (e) {
    die(e.message, 3);
  }
  const connectS = (performance.now() - t0) / 1000;
  const connectCpu = cpuSeconds(cpu0);
  say(`idle: ${N} connections ready in ${connectS.toFixed(2)} s (${dialect}, ${localAddrs.filter(Boolean).length || 1} source address(es))`);
  holding = true;
  if (args.control) {
    emit({ event: 'ready', connections: N, connect_s: round(connectS) });
    if (!(await waitFor('go', 600000))) die('stdin closed before "go"', 2);
  }
  const cpu1 = process.cpuUsage();
  await sleep(holdMs);
  const openAtEnd = clients.filter((c) => c.isOpen()).length;
  holding = false;
  const result = {
    event: 'result',
    ok: openAtEnd === N,
    dialect,
    connections: N,
    connect_s: round(connectS),
    connect_per_s: round(N / connectS, 1),
    hold_s: holdMs / 1000,
    open_at_end: openAtEnd,
    closed_during_hold: closedDuringHold,
    close_codes: closeCodes,
    source_addresses: localAddrs.filter(Boolean).length || 1,
    loadgen_connect_cpu_s: round(connectCpu),
    loadgen_hold_cpu_s: round(cpuSeconds(cpu1)),
  };
  emit(result);
  if (!result.ok) log(`idle: ${N - openAtEnd} of ${N} connections did not stay open`);
  if (args.control) {
    try {
      await waitFor('bye', 120000);
    } catch (e) {
      log(`idle: ${e.message}`);
    }
  }
  for (const c of clients) c.terminate();
  await sleep(500);
  process.exit(result.ok ? 0 : 1);
}

main().catch((e) => die(`unexpected: ${e.stack || e}`, 2));
