'use strict';
// How a process with services ends: one that only sent exits by itself once its replies came,
// one that handles messages stays until close(), and process.exit() closes what is open. And
// a million messages through the binding leave its memory where it was.
const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');

const { startBus, sleep } = require('./fixture');

const script = (body) => [
  process.execPath,
  '-e',
  `const exobus = require('exobus');
   (async () => { ${body} })().catch((error) => { console.error(error); process.exit(2); });`,
];

test('a process that only sent exits by itself once its reply came, without close()', async (t) => {
  const bus = await startBus(t);
  await bus.serve('echo');
  const sender = bus.start(script(`
    const client = await exobus.connect({ service: 'client' });
    const reply = await client.request('echo', { text: 'bye' }, { timeoutMs: 5000 });
    console.log('got ' + reply.payload.text);`));
  await sender.expect('got BYE');
  const exited = await Promise.race([sender.exited, sleep(5000).then(() => 'still running')]);
  assert.deepEqual(exited, { code: 0, signal: null });
});

test('a process that handles messages stays until close(); process.exit() closes what is open', async (t) => {
  const bus = await startBus(t);
  const listener = bus.start(script(`
    const audit = await exobus.connect({ service: 'audit' });
    audit.on('news', (msg) => {
      console.log('news ' + msg.payload.n);
      if (msg.payload.n === 2) process.exit(0);
    });
    const client = await exobus.connect({ service: 'client' });
    const pending = client.request('echo', { text: 'never answered' }, { timeoutMs: 60000 }).catch(() => {});
    console.log('listening');`));
  await listener.expect('listening');
  const client = await bus.connect('client');
  await client.send('news', { n: 1 });
  await listener.expect('news 1');
  assert.equal(await Promise.race([listener.exited, sleep(300).then(() => 'still running')]), 'still running');
  await client.send('news', { n: 2 });
  await listener.expect('news 2');
  assert.deepEqual(await listener.exited, { code: 0, signal: null });
  const status = bus.cli('status');
  assert.equal(status.code, 0, status.stderr);
});

test('a million messages and many requests leave the memory of the process where it was', async (t) => {
  const bus = await startBus(t);
  const tally = await bus.connect('tally');
  const echo = await bus.connect('echo');
  const client = await bus.connect('client');
  let received = 0;
  tally.on('tally', (msg) => {
    if (msg.payload.n !== received) throw new Error(`tally ${msg.payload.n} came as number ${received}`);
    received++;
  });
  echo.on('echo', (msg, ctx) => ctx.reply('echo.ok', msg.buffer));
  const rounds = 10;
  const perRound = 100000;
  const rss = [];
  for (let round = 0; round < rounds; ++round) {
    for (let n = round * perRound; n < (round + 1) * perRound; ++n) await client.send('tally', { n });
    for (let n = 0; n < 2000; ++n) await client.request('echo', { text: 'x' }, { timeoutMs: 5000 });
    while (received < (round + 1) * perRound) await sleep(1);
    global.gc?.();
    rss.push(process.memoryUsage().rss);
  }
  assert.equal(received, rounds * perRound);
  // After the first rounds warmed the heap and the pools, growth would be a leak per message.
  const grown = rss[rounds - 1] - rss[2];
  assert.ok(grown < 32 * 1024 * 1024, `RSS grew by ${grown} bytes over ${(rounds - 3) * perRound} messages: ${rss}`);
});
