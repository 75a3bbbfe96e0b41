'use strict';
// Streaming replies, through both APIs: for await over stream(), and ExoRelay's reply
// handler called once per reply.
const assert = require('node:assert/strict');
const { test } = require('node:test');

const exobus = require('exobus');
const ExoRelay = require('exobus/exorelay');
const { startBus } = require('./fixture');

const PROGRESS = [
  ['file.copy.in-progress', { percent: 0 }],
  ['file.copy.in-progress', { percent: 50 }],
  ['file.copy.in-progress', { percent: 100 }],
  ['file.copy.done', { to: 'backup.csv' }],
];

test('for await over stream() yields every reply in order and ends after the end outcome', async (t) => {
  const bus = await startBus(t);
  await bus.serve('files');
  const client = await bus.connect('client');
  const replies = [];
  for await (const reply of client.stream('file.copy', { from: 'large.csv', to: 'backup.csv' }, { timeoutMs: 5000, end: ['file.copy.done'] })) {
    replies.push([reply.outcome, reply.payload]);
  }
  assert.deepEqual(replies, PROGRESS);
});

test('a stream whose end does not come in time throws TimeoutError; one without an end stops quietly', async (t) => {
  const bus = await startBus(t);
  await bus.serve('files');
  const client = await bus.connect('client');
  const outcomes = [];
  await assert.rejects(async () => {
    for await (const reply of client.stream('file.copy', { to: 'x' }, { timeoutMs: 300, end: ['file.copy.never'] })) {
      outcomes.push(reply.outcome);
    }
  }, exobus.TimeoutError);
  assert.equal(outcomes.length, 4);
  const quiet = [];
  for await (const reply of client.stream('file.copy', { to: 'y' }, { timeoutMs: 300 })) quiet.push(reply.outcome);
  assert.equal(quiet.length, 4);
});

test('breaking out of a stream drops the later replies, and the next request still works', async (t) => {
  const bus = await startBus(t);
  await bus.serve('files');
  const client = await bus.connect('client');
  for await (const reply of client.stream('file.copy', { to: 'z' }, { timeoutMs: 5000, end: ['file.copy.done'] })) {
    assert.equal(reply.outcome, 'file.copy.in-progress');
    break;
  }
  const replies = [];
  for await (const reply of client.stream('file.copy', { to: 'backup.csv' }, { timeoutMs: 5000, end: ['file.copy.done'] })) {
    replies.push([reply.outcome, reply.payload]);
  }
  assert.deepEqual(replies, PROGRESS);
});

test("ExoRelay's send calls its reply handler once per streamed reply, from an ExoRelay service", async (t) => {
  const bus = await startBus(t);
  await bus.serve('relay-files', 'files');
  const relay = new ExoRelay({ role: 'client', bus: bus.name, runtimeDir: bus.runtimeDir });
  t.after(() => relay.close());
  await relay.listen();
  const replies = await new Promise((resolve) => {
    const got = [];
    relay.send('file.copy', { from: 'large.csv', to: 'backup.csv' }, (outcome, payload) => {
      got.push([outcome, payload]);
      if (outcome === 'file.copy.done') resolve(got);
    });
  });
  assert.deepEqual(replies, PROGRESS);
});
