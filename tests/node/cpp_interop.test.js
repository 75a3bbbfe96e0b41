'use strict';
// Node.js and C++ on one bus, both ways: the demo's C++ users service answers a Node.js web
// and fans user.created out to the JavaScript audit log (examples/demo/audit.js); a C++
// program (the exobus tool) asks a Node.js service and gets its reply.
const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');

const { startBus, BUILD_DIR, SOURCE_DIR } = require('./fixture');

const DEMO = path.join(SOURCE_DIR, 'examples/demo');

test('a Node.js web gets the reply of the C++ users service, whose fan-out reaches the JavaScript audit', async (t) => {
  const bus = await startBus(t, path.join(DEMO, 'application.yml'));
  bus.start([path.join(BUILD_DIR, 'examples/services/demo_users')]);
  const audit = bus.start([process.execPath, path.join(DEMO, 'audit.js')]);
  const web = await bus.connect('web');
  const created = await web.request('user.create', { name: 'Jean-Luc', email: 'jl@example.org' }, { timeoutMs: 10000 });
  assert.equal(created.outcome, 'user.create.ok');
  assert.equal(created.sender, 'users');
  assert.equal(created.payload.request.name, 'Jean-Luc');
  const announced = await audit.expect('audit: user.created', 10000);
  assert.match(announced.replaceAll(' ', ''), /"name":"Jean-Luc"/);
});

test('a C++ program gets the reply of a Node.js service', async (t) => {
  const bus = await startBus(t);
  const echo = await bus.serve('echo');
  const asked = bus.cli('send', 'echo', '{"text":"from c++"}', '--as', 'client', '--wait-replies', '2');
  assert.equal(asked.code, 0, asked.stderr);
  assert.match(asked.stdout, /^echo\.ok version=1 request=/);
  assert.ok(asked.stdout.includes(`"text":"FROM C++","pid":${echo.child.pid}`), asked.stdout);
});
