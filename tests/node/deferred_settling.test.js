'use strict';
// Settling: an async handler that settles after awaiting another request, resolving acks,
// throwing releases, and the explicit ack/release/reject/renew.
const assert = require('node:assert/strict');
const { test } = require('node:test');

const exobus = require('exobus');
const { startBus, sleep } = require('./fixture');

test('an async handler replies and acks after awaiting a request of its own, in the same request', async (t) => {
  const bus = await startBus(t);
  await bus.serve('lookup');
  await bus.serve('hold', 'holder');
  const client = await bus.connect('client');
  const requestId = '7d4b5f0e-2c1a-4b3e-8f9a-0a1b2c3d4e5f';
  const answers = await Promise.all(
    ['a', 'b', 'c'].map((key) => client.request('hold', { key }, { timeoutMs: 10000, requestId }))
  );
  for (const [n, key] of ['a', 'b', 'c'].entries()) {
    assert.equal(answers[n].outcome, 'hold.ok');
    assert.deepEqual(answers[n].payload.found, { key, value: `value of ${key}` });
    assert.equal(answers[n].payload.requestId, requestId); // the lookup was part of the hold's request
  }
});

test('a handler that throws, or whose promise rejects, releases its delivery for redelivery', async (t) => {
  const bus = await startBus(t);
  const errors = [];
  const worker = await bus.connect('worker', { onError: (error, msg) => errors.push([error.message, msg.name]) });
  const seen = [];
  worker.on('job', async (msg) => {
    seen.push(msg.deliveries);
    if (msg.deliveries === 0) throw new Error('first try fails');
  });
  const client = await bus.connect('client');
  await client.send('job', { n: 1 });
  while (seen.length < 2) await sleep(10);
  assert.deepEqual(seen, [0, 1]);
  assert.deepEqual(errors, [['first try fails', 'job']]);
});

test('a delivery settled explicitly is not settled again; reject dead-letters, renew keeps it', async (t) => {
  const bus = await startBus(t);
  const worker = await bus.connect('worker');
  const seen = [];
  worker.on('job', async (msg, ctx) => {
    seen.push(msg.payload.n);
    if (msg.payload.n === 1) {
      ctx.renew();
      assert.equal(ctx.settled, false);
      ctx.reject();
      assert.equal(ctx.settled, true);
      assert.throws(() => ctx.text, exobus.ClosedError); // its payload is no longer held
      assert.throws(() => ctx.ack(), exobus.ExobusError);
    }
  });
  const client = await bus.connect('client');
  await client.send('job', { n: 1 });
  await client.send('job', { n: 2 });
  while (seen.length < 2) await sleep(10);
  await sleep(200);
  assert.deepEqual(seen, [1, 2]); // the rejected one came once: dead-lettered, not redelivered
  const listed = bus.cli('dlq', 'list', '--type', 'worker');
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /job/);
});
