'use strict';
// Request and reply between Node.js processes, every field of the message, and the typed
// errors of bad sends.
const assert = require('node:assert/strict');
const { test } = require('node:test');

const exobus = require('exobus');
const { startBus } = require('./fixture');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

test('a request gets the reply of a service in another process, with every field', async (t) => {
  const bus = await startBus(t);
  const echo = await bus.serve('echo');
  const client = await bus.connect('client');
  const requestId = '0b6e3a52-8a3c-4f0e-9d55-5e0c3f6f1a01';
  const reply = await client.request('echo', { text: 'hello' }, { timeoutMs: 5000, requestId });
  assert.equal(reply.outcome, 'echo.ok');
  assert.equal(reply.name, 'echo.ok');
  assert.deepEqual(reply.payload, { text: 'HELLO', pid: echo.child.pid, requestId });
  assert.equal(reply.requestId, requestId);
  assert.equal(reply.sender, 'echo');
  assert.equal(reply.version, 1);
  assert.match(reply.id, UUID);
  assert.match(reply.responseTo, UUID);
  assert.notEqual(reply.responseTo, reply.id);
  assert.equal(reply.deliveries, 0);
  assert.equal(reply.redelivered, false);
  assert.equal(reply.buffer.toString(), reply.text);
});

test('a handler reads every field and the payload as JSON, text and a Buffer in place', async (t) => {
  const bus = await startBus(t);
  const echo = await bus.connect('echo');
  const seen = [];
  echo.on('echo', (msg, ctx) => {
    seen.push({
      name: msg.name, version: msg.version, sender: msg.sender, id: msg.id, requestId: msg.requestId,
      responseTo: msg.responseTo, deliveries: msg.deliveries, redelivered: msg.redelivered,
      payload: msg.payload, text: msg.text, buffer: Buffer.from(msg.buffer), intact: msg.payloadIntact(),
    });
    ctx.reply('echo.ok', msg.buffer); // a Buffer is JSON text already, sent as it is
  });
  const client = await bus.connect('client');
  const reply = await client.request('echo', { text: 'in place' }, { timeoutMs: 5000 });
  assert.deepEqual(reply.payload, { text: 'in place' });
  const [msg] = seen;
  assert.equal(msg.name, 'echo');
  assert.equal(msg.version, 1);
  assert.equal(msg.sender, 'client');
  assert.match(msg.id, UUID);
  assert.equal(msg.requestId, msg.id); // a new request's id is its first message's
  assert.equal(msg.responseTo, null);
  assert.equal(msg.deliveries, 0);
  assert.equal(msg.redelivered, false);
  assert.deepEqual(msg.payload, { text: 'in place' });
  assert.equal(msg.text, '{"text":"in place"}');
  assert.equal(msg.buffer.toString(), msg.text);
  assert.equal(msg.intact, true);
  assert.equal(reply.responseTo, msg.id);
});

test('bad sends reject with the Error subclass of their code, and the bus still works after them', async (t) => {
  const bus = await startBus(t);
  await bus.serve('echo');
  const client = await bus.connect('client');
  const cases = [
    [() => client.send('user.create', {}), exobus.NotDeclaredError, 'not_declared'],
    [() => client.request('echo', { text: 7 }), exobus.SchemaViolationError, 'schema_violation'],
    [() => client.send('echo', Buffer.from('{"text": ')), exobus.MalformedJsonError, 'malformed_json'],
    [() => client.send('echo', { text: 'x'.repeat(5000) }), exobus.PayloadTooLargeError, 'payload_too_large'],
    [() => client.send('echo', { text: 'v' }, { version: 2 }), exobus.UnknownVersionError, 'unknown_version'],
    [() => client.send('echo', { text: 'id' }, { requestId: 'not-a-uuid' }), exobus.InvalidUuidError, 'invalid_uuid'],
  ];
  for (const [send, type, code] of cases) {
    await assert.rejects(send, (error) => {
      assert.ok(error instanceof type, `${error.name} is a ${type.name}`);
      assert.ok(error instanceof exobus.ExobusError);
      assert.ok(error instanceof Error);
      assert.equal(error.code, code);
      assert.equal(typeof error.errno, 'number');
      assert.ok(error.message.length > 10);
      return true;
    });
  }
  assert.throws(() => client.on('', () => {}), TypeError);
  assert.throws(() => client.on('echo.ok', 'not a function'), TypeError);
  const reply = await client.request('echo', { text: 'still here' }, { timeoutMs: 5000 });
  assert.equal(reply.payload.text, 'STILL HERE');
});

test('a request nobody answers rejects with TimeoutError; one after close() with ClosedError', async (t) => {
  const bus = await startBus(t);
  const client = await bus.connect('client');
  await bus.connect('echo'); // an instance that never handles: the command waits in its queue
  await assert.rejects(client.request('echo', { text: 'anyone?' }, { timeoutMs: 100 }), exobus.TimeoutError);
  const pending = client.request('echo', { text: 'closing' }, { timeoutMs: 10000 });
  client.close();
  await assert.rejects(pending, exobus.ClosedError);
  await assert.rejects(client.send('echo', { text: 'after' }), exobus.ClosedError);
});

test('connecting to a bus without a daemon rejects with DaemonNotRunningError', async (t) => {
  const bus = await startBus(t);
  await assert.rejects(
    exobus.connect({ bus: `${bus.name}-none`, service: 'client', runtimeDir: bus.runtimeDir }),
    exobus.DaemonNotRunningError
  );
  await assert.rejects(bus.connect('nobody'), exobus.ExobusError);
});

test('index.d.ts declares exactly the error classes the package exports', () => {
  const declared = [...require('node:fs').readFileSync(require.resolve('exobus/index.d.ts'), 'utf8')
    .matchAll(/^export class (\w+Error) /gm)].map((match) => match[1]);
  const exported = Object.keys(exobus).filter((name) => name.endsWith('Error'));
  assert.deepEqual(declared.sort(), exported.sort());
});
