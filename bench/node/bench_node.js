#!/usr/bin/env node
'use strict';
// ExoBus from Node.js beside Node.js over a Unix domain socket (net), two processes each, in
// one run:
//
//   one way    64 B messages, as fast as the sender goes; ExoBus acks each one (a handler
//              that returns). The receiver counts from its first to its last message:
//              msg/s = (messages - 1) / (last - first).
//   round trip 64 B request, 64 B reply; the client times each from before the send to the
//              reply in hand (await request(); a write, then the echoed 64 bytes read), after
//              a warm-up, and reports p50 and p99 (nearest rank).
//
//     node bench/node/bench_node.js --build build [--messages N] [--round-trips N] [--warmup N]
//
// It starts the build's exobusd on a bus of its own and stops everything it started.
const childProcess = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { parseArgs } = require('node:util');

const PAYLOAD = Buffer.from(`"${'x'.repeat(62)}"`); // 64 bytes of JSON text (a string)
const say = (line) => process.stdout.write(`${line}\n`);
const now = () => process.hrtime.bigint();

// The receiving ends, each a process of its own: `bench_node.js --serve ROLE COUNT DIR`.
const roles = {
  async 'exobus-sink'(messages) {
    const exobus = require('exobus');
    const sink = await exobus.connect({ service: 'sink', waitMode: process.env.EXOBUS_BENCH_WAIT_MODE });
    let count = 0;
    let first = 0n;
    sink.on('bench.oneway', () => {
      if (++count === 1) first = now();
      if (count === messages) say(`rate ${((messages - 1) * 1e9) / Number(now() - first)}`);
    });
    say('ready');
    process.stdin.on('end', () => sink.close()).resume();
  },
  async 'exobus-echo'() {
    const exobus = require('exobus');
    const echo = await exobus.connect({ service: 'echo', waitMode: process.env.EXOBUS_BENCH_WAIT_MODE });
    echo.on('bench.ping', (ping) => ping.reply('bench.pong', ping.buffer));
    say('ready');
    process.stdin.on('end', () => echo.close()).resume();
  },
  'net-sink'(messages, directory) {
    const expected = messages * PAYLOAD.length;
    const server = net.createServer((socket) => {
      let received = 0;
      let first = 0n;
      socket.on('data', (chunk) => {
        if (received === 0) first = now();
        received += chunk.length;
        // The first chunk's arrival starts the clock: count the messages after it.
        if (received === expected) say(`rate ${((messages - 1) * 1e9) / Number(now() - first)}`);
      });
    });
    server.listen(path.join(directory, 'oneway.sock'), () => say('ready'));
    process.stdin.on('end', () => server.close() && process.exit(0)).resume();
  },
  'net-echo'(_, directory) {
    const server = net.createServer((socket) => socket.pipe(socket));
    server.listen(path.join(directory, 'roundtrip.sock'), () => say('ready'));
    process.stdin.on('end', () => process.exit(0)).resume();
  },
};

class Peer {
  constructor(role, count, directory, env) {
    this.child = childProcess.spawn(process.execPath, [__filename, '--serve', role, String(count), directory], {
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.lines = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }
  async expect(word) {
    for (;;) {
      const { value, done } = await this.lines.next();
      if (done) throw new Error(`the '${word}' line never came`);
      if (value.startsWith(word)) return value.split(' ').slice(1);
    }
  }
  async stop() {
    this.child.stdin.end();
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  }
}

function percentiles(samples) {
  const ordered = [...samples].sort((a, b) => a - b);
  const rank = (p) => ordered[Math.max(0, Math.ceil((ordered.length * p) / 100) - 1)] / 1000;
  return [rank(50), rank(99)];
}

async function timed(roundTrip, warmup, count) {
  for (let n = 0; n < warmup; ++n) await roundTrip();
  const samples = new Float64Array(count);
  for (let n = 0; n < count; ++n) {
    const started = now();
    await roundTrip();
    samples[n] = Number(now() - started);
  }
  return percentiles(samples);
}

async function benchExobus(args, directory, env, results) {
  const exobus = require('exobus');
  const client = await exobus.connect({ service: 'client', waitMode: process.env.EXOBUS_BENCH_WAIT_MODE });
  try {
    const sink = new Peer('exobus-sink', args.messages, directory, env);
    await sink.expect('ready');
    try {
      for (let n = 0; n < args.messages; ++n) await client.send('bench.oneway', PAYLOAD);
      results['exobus one way'] = Number((await sink.expect('rate'))[0]);
    } finally {
      await sink.stop();
    }
    const echo = new Peer('exobus-echo', 0, directory, env);
    await echo.expect('ready');
    try {
      results['exobus round trip (await request)'] = await timed(
        () => client.request('bench.ping', PAYLOAD, { timeoutMs: 10000 }),
        args.warmup,
        args.roundTrips
      );
    } finally {
      await echo.stop();
    }
  } finally {
    client.close();
  }
}

async function benchNet(args, directory, env, results) {
  const sink = new Peer('net-sink', args.messages, directory, env);
  await sink.expect('ready');
  try {
    const socket = net.createConnection(path.join(directory, 'oneway.sock'));
    await new Promise((resolve) => socket.once('connect', resolve));
    for (let n = 0; n < args.messages; ++n) {
      if (!socket.write(PAYLOAD)) await new Promise((resolve) => socket.once('drain', resolve));
    }
    results['net one way'] = Number((await sink.expect('rate'))[0]);
    socket.destroy();
  } finally {
    await sink.stop();
  }
  const echo = new Peer('net-echo', 0, directory, env);
  await echo.expect('ready');
  try {
    const socket = net.createConnection(path.join(directory, 'roundtrip.sock'));
    socket.setNoDelay(true);
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = 0;
    let answered = null;
    socket.on('data', (chunk) => {
      received += chunk.length;
      if (received >= PAYLOAD.length) {
        received -= PAYLOAD.length;
        answered();
      }
    });
    const roundTrip = () =>
      new Promise((resolve) => {
        answered = resolve;
        socket.write(PAYLOAD);
      });
    results['net round trip'] = await timed(roundTrip, args.warmup, args.roundTrips);
    socket.destroy();
  } finally {
    await echo.stop();
  }
}

function startDaemon(build, directory, bus) {
  const log = fs.openSync(path.join(directory, 'exobusd.log'), 'w');
  const daemon = childProcess.spawn(
    path.join(build, 'daemon/exobusd/exobusd'),
    ['--config', path.join(__dirname, 'application.yml'), '--bus', bus, '--runtime-dir', directory, '--reset', '--remove-segment'],
    { stdio: ['ignore', log, log] }
  );
  const deadline = Date.now() + 10000;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (fs.existsSync(path.join(directory, `${bus}.sock`))) return resolve(daemon);
      if (daemon.exitCode !== null || Date.now() > deadline) {
        return reject(new Error(`exobusd did not start: ${fs.readFileSync(path.join(directory, 'exobusd.log'))}`));
      }
      setTimeout(check, 20);
    };
    check();
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      build: { type: 'string', default: path.join(__dirname, '../../build') },
      messages: { type: 'string', default: '200000' },
      'round-trips': { type: 'string', default: '20000' },
      warmup: { type: 'string', default: '1000' },
      'wait-mode': { type: 'string', default: 'adaptive' },
      serve: { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  if (values.serve) {
    const [role, count, directory] = process.argv.slice(process.argv.indexOf('--serve') + 1);
    await roles[role](Number(count), directory);
    return;
  }
  const args = { messages: Number(values.messages), roundTrips: Number(values['round-trips']), warmup: Number(values.warmup) };
  const build = path.resolve(values.build);
  // The binding this build made, for this process and its peers.
  const packages = path.join(build, 'bindings/node');
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'exobus-nodebench.'));
  const bus = `nodebench-${process.pid}`;
  const waitMode = values['wait-mode'];
  const env = { ...process.env, EXOBUS_BUS: bus, EXOBUS_RUNTIME_DIR: directory, NODE_PATH: packages, EXOBUS_BENCH_WAIT_MODE: waitMode };
  Object.assign(process.env, { EXOBUS_BUS: bus, EXOBUS_RUNTIME_DIR: directory, EXOBUS_BENCH_WAIT_MODE: waitMode });
  module.paths.unshift(packages);
  const daemon = await startDaemon(build, directory, bus);
  const results = {};
  try {
    await benchExobus(args, directory, env, results);
    await benchNet(args, directory, env, results);
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((resolve) => (daemon.exitCode !== null ? resolve() : daemon.once('exit', resolve)));
    fs.rmSync(directory, { recursive: true, force: true });
  }
  const rate = (value) => `${Math.round(value).toLocaleString('en-US').padStart(12)} msg/s`;
  say(`one way, 64 B, ${args.messages} messages`);
  for (const name of ['exobus one way', 'net one way']) say(`  ${name.padEnd(36)} ${rate(results[name])}`);
  say(`round trip, 64 B, ${args.roundTrips} timed after ${args.warmup}`);
  for (const name of ['exobus round trip (await request)', 'net round trip']) {
    const [p50, p99] = results[name];
    say(`  ${name.padEnd(36)} p50 ${p50.toFixed(1).padStart(8)} us   p99 ${p99.toFixed(1).padStart(8)} us`);
  }
  const oneWay = results['exobus one way'] / results['net one way'];
  const roundTrip = results['net round trip'][0] / results['exobus round trip (await request)'][0];
  say(`exobus / net: one way x${oneWay.toFixed(2)}, round trip p50 x${roundTrip.toFixed(1)} faster (target >= 10)`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
