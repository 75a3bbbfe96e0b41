'use strict';
// Fan-out to every subscribed service type, competing instances of one type, and what a
// killed Node.js consumer held coming back to another instance.
const assert = require('node:assert/strict');
const { test } = require('node:test');

const { startBus, sleep } = require('./fixture');

test('a command reaches one instance of every type that receives it', async (t) => {
  const bus = await startBus(t);
  const audit = await bus.serve('listen', 'audit');
  const mailer = await bus.serve('listen', 'mailer');
  const client = await bus.connect('client');
  await client.send('news', { headline: 'fan-out' });
  assert.match(await audit.expect('audit: news'), /"headline":"fan-out"/);
  assert.match(await mailer.expect('mailer: news'), /"headline":"fan-out"/);
});

test('instances of one type share its work, each job handled once', async (t) => {
  const bus = await startBus(t);
  const workers = [await bus.serve('work', 'worker'), await bus.serve('work', 'worker')];
  const client = await bus.connect('client');
  const jobs = 20;
  for (let n = 0; n < jobs; ++n) await client.send('job', { n });
  const lines = () => workers.flatMap((worker) => worker.output.filter((line) => line.startsWith('worker: job')));
  const deadline = Date.now() + 15000;
  while (lines().length < jobs && Date.now() < deadline) await sleep(20);
  await sleep(100); // a job handled twice would show by now
  const handled = new Map(); // n -> pid
  const perWorker = [0, 0];
  for (const line of lines()) {
    const job = JSON.parse(line.match(/job (\{.*\}) deliveries/)[1]).n;
    const pid = Number(line.match(/pid=(\d+)/)[1]);
    assert.ok(!handled.has(job), `job ${job} handled twice`);
    handled.set(job, pid);
    perWorker[workers.findIndex((worker) => worker.child.pid === pid)]++;
  }
  assert.equal(handled.size, jobs);
  assert.ok(perWorker[0] > 0 && perWorker[1] > 0, `both instances took part: ${perWorker}`);
});

test('the job of a killed Node.js consumer is redelivered to another instance, marked so', async (t) => {
  const bus = await startBus(t);
  const keeper = await bus.serve('keep', 'worker');
  const client = await bus.connect('client');
  await client.send('job', { n: 7 });
  assert.match(await keeper.expect('worker: job'), /deliveries=0/);
  keeper.kill('SIGKILL');
  await keeper.exited;
  const taker = await bus.serve('listen', 'worker', 'job');
  const line = await taker.expect('worker: job', 15000);
  assert.match(line, /job \{"n":7\} deliveries=1/);
});

test('a service closed on SIGTERM gives back what it held, at once', async (t) => {
  const bus = await startBus(t);
  const keeper = await bus.serve('keep', 'worker');
  const client = await bus.connect('client');
  await client.send('job', { n: 8 });
  await keeper.expect('worker: job');
  keeper.kill('SIGTERM');
  await keeper.expect('stopped');
  assert.equal((await keeper.exited).code, 0);
  const taker = await bus.serve('listen', 'worker', 'job');
  assert.match(await taker.expect('worker: job', 15000), /job \{"n":8\} deliveries=1/);
});
