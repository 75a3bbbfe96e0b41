'use strict';
// exobus/exorelay: an ExoRelay-style service runs unchanged but for its import, and the
// errors ExoRelay raised for bad arguments.
const assert = require('node:assert/strict');
const { test } = require('node:test');

const exobus = require('exobus');
const ExoRelay = require('exobus/exorelay');
const { ExoRelayError } = ExoRelay;
const { startBus } = require('./fixture');

function relayOn(t, bus, role) {
  const relay = new ExoRelay({ role, bus: bus.name, runtimeDir: bus.runtimeDir });
  t.after(() => relay.close());
  return relay;
}

function rejectsWith(code) {
  return (error) => {
    assert.ok(error instanceof ExoRelayError, `${error} is an ExoRelayError`);
    assert.equal(error.code, code);
    return true;
  };
}

test('registerHandler refuses a missing name, a handler that is not a function, and a second handler', () => {
  const relay = new ExoRelay({ role: 'echo' });
  assert.throws(() => relay.registerHandler(), rejectsWith('EXORELAY_NO_NAME'));
  assert.throws(() => relay.registerHandler('', () => {}), rejectsWith('EXORELAY_NO_NAME'));
  assert.throws(() => relay.registerHandler('echo'), rejectsWith('EXORELAY_HANDLER_NOT_FUNCTION'));
  assert.throws(() => relay.registerHandler('echo', 'reply'), rejectsWith('EXORELAY_HANDLER_NOT_FUNCTION'));
  relay.registerHandler('echo', () => {});
  assert.throws(() => relay.registerHandler('echo', () => {}), rejectsWith('EXORELAY_DUPLICATE_HANDLER'));
  assert.throws(() => relay.registerHandlers({ other: 42 }), rejectsWith('EXORELAY_HANDLER_NOT_FUNCTION'));
  assert.throws(() => relay.registerHandlers(null), rejectsWith('EXORELAY_HANDLER_NOT_FUNCTION'));
  assert.throws(() => new ExoRelay({ role: 7 }), rejectsWith('EXORELAY_NO_ROLE'));
});

test('send refuses a missing name, a reply handler that is not a function, and a relay not online', async (t) => {
  const bus = await startBus(t);
  const relay = relayOn(t, bus, 'client');
  assert.throws(() => relay.send('echo', { text: 'early' }), rejectsWith('EXORELAY_NOT_ONLINE'));
  await relay.listen();
  assert.throws(() => relay.send(), rejectsWith('EXORELAY_NO_NAME'));
  assert.throws(() => relay.send('echo', { text: 'x' }, 'not a function'), rejectsWith('EXORELAY_HANDLER_NOT_FUNCTION'));
  assert.throws(() => relay.registerHandler('late', () => {}), rejectsWith('EXORELAY_ALREADY_LISTENING'));
  // What the bus refuses is its own typed error, thrown at the call.
  assert.throws(() => relay.send('user.create', {}), exobus.NotDeclaredError);
  assert.throws(() => relay.send('echo', { text: 1 }, () => {}), exobus.SchemaViolationError);
});

test('an ExoRelay service and client: online, a reply from a handler, offline', async (t) => {
  const bus = await startBus(t);
  const echo = relayOn(t, bus, 'echo');
  const seen = [];
  echo.registerHandler('echo', (payload, { reply, message }) => {
    seen.push([payload, message.sender]);
    reply('echo.ok', { text: payload.text.toUpperCase() });
  });
  const online = new Promise((resolve) => echo.once('online', resolve));
  await echo.listen();
  assert.equal(await online, 'echo');
  assert.equal(echo.role, 'echo');

  const client = relayOn(t, bus, 'client');
  await client.listen();
  const [outcome, payload] = await new Promise((resolve) =>
    client.send('echo', { text: 'exorelay' }, (...reply) => resolve(reply))
  );
  assert.equal(outcome, 'echo.ok');
  assert.deepEqual(payload, { text: 'EXORELAY' });
  assert.deepEqual(seen, [[{ text: 'exorelay' }, 'client']]);

  const offline = new Promise((resolve) => echo.once('offline', resolve));
  echo.close();
  await offline;
});

test("a handler's error is emitted as 'error' and its message redelivered; a failed listen rejects", async (t) => {
  const bus = await startBus(t);
  const worker = relayOn(t, bus, 'worker');
  const deliveries = [];
  worker.registerHandler('job', (payload, { message }) => {
    deliveries.push(message.deliveries);
    if (message.deliveries === 0) throw new Error('try again');
  });
  const failed = new Promise((resolve) => worker.once('error', resolve));
  await worker.listen();
  const client = await bus.connect('client');
  await client.send('job', { n: 1 });
  assert.equal((await failed).message, 'try again');
  while (deliveries.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(deliveries, [0, 1]);

  const stranger = new ExoRelay({ role: 'nobody', bus: bus.name, runtimeDir: bus.runtimeDir });
  const emitted = new Promise((resolve) => stranger.once('error', resolve));
  await assert.rejects(stranger.listen(), exobus.ExobusError);
  assert.ok((await emitted) instanceof exobus.ExobusError);
});

test("an ExoRelay handler's send is part of its message's request, and it may reply from the reply handler", async (t) => {
  const bus = await startBus(t);
  await bus.serve('lookup');
  const holder = relayOn(t, bus, 'holder');
  holder.registerHandler('hold', (payload, { reply, send }) => {
    send('lookup', payload, (outcome, found, message) => reply('hold.ok', { outcome, found, requestId: message.requestId }));
  });
  await holder.listen();
  const client = await bus.connect('client');
  const requestId = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';
  const answer = await client.request('hold', { key: 'k' }, { timeoutMs: 10000, requestId });
  assert.deepEqual(answer.payload, { outcome: 'lookup.ok', found: { key: 'k', value: 'value of k' }, requestId });
});
