'use strict';
// The Node.js services the tests start as processes of their own:
//
//     serve.js ROLE [SERVICE_TYPE [NAME]]
//
// Each connects from $EXOBUS_BUS and $EXOBUS_RUNTIME_DIR, prints "ready" once it serves, a
// line for each message it handles, and "stopped" once it left the bus on SIGTERM.
const exobus = require('exobus');
const ExoRelay = require('exobus/exorelay');

const say = (line) => process.stdout.write(`${line}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function report(serviceType, msg) {
  say(`${serviceType}: ${msg.name} ${msg.text} deliveries=${msg.deliveries} pid=${process.pid}`);
}

const roles = {
  // Replies to each echo with its text in capitals, from an async handler.
  echo(service, name) {
    service.on(name ?? 'echo', async (msg, ctx) => {
      ctx.reply('echo.ok', { text: msg.payload.text.toUpperCase(), pid: process.pid, requestId: msg.requestId });
    });
  },
  // Streams three progress replies, then the end, for each file.copy.
  files(service, name) {
    service.on(name ?? 'file.copy', async (msg, ctx) => {
      for (const percent of [0, 50, 100]) {
        ctx.reply('file.copy.in-progress', { percent });
        await sleep(10);
      }
      ctx.reply('file.copy.done', { to: msg.payload.to });
    });
  },
  // Prints each message (news by default), from a plain handler.
  listen(service, name) {
    service.on(name ?? 'news', (msg) => report(service.serviceType, msg));
  },
  // Takes 20 ms over each job, as real work would.
  work(service, name) {
    service.on(name ?? 'job', async (msg) => {
      await sleep(20);
      report(service.serviceType, msg);
    });
  },
  // Prints each job and never settles it: it stays held until the process dies or stops.
  keep(service, name) {
    service.on(name ?? 'job', (msg) => {
      report(service.serviceType, msg);
      return new Promise(() => {});
    });
  },
  // Defers each hold: asks lookup, and replies and acks only once its answer came.
  hold(service, name) {
    service.on(name ?? 'hold', async (msg, ctx) => {
      const found = await ctx.request('lookup', msg.payload, { timeoutMs: 5000 });
      ctx.reply('hold.ok', { found: found.payload, requestId: found.requestId });
      ctx.ack();
    });
  },
  // Answers a lookup after a while, as a slow database would.
  lookup(service, name) {
    service.on(name ?? 'lookup', async (msg, ctx) => {
      await sleep(50);
      ctx.reply('lookup.ok', { key: msg.payload.key, value: `value of ${msg.payload.key}` });
    });
  },
};

// The same services written against ExoRelay's API (exobus/exorelay).
const relayRoles = {
  'relay-echo'(relay) {
    relay.registerHandler('echo', (payload, { reply }) => reply('echo.ok', { text: payload.text.toUpperCase() }));
  },
  'relay-files'(relay) {
    relay.registerHandlers({
      'file.copy': async (payload, { reply }) => {
        for (const percent of [0, 50, 100]) {
          reply('file.copy.in-progress', { percent });
          await sleep(10);
        }
        reply('file.copy.done', { to: payload.to });
      },
    });
  },
};

async function main() {
  const [role, serviceType, name] = process.argv.slice(2);
  if (relayRoles[role]) {
    const relay = new ExoRelay({ role: serviceType ?? role.replace('relay-', '') });
    relayRoles[role](relay, name);
    relay.on('online', (joined) => say(`ready as ${joined}`));
    relay.on('offline', () => say('stopped'));
    process.on('SIGTERM', () => relay.close());
    await relay.listen();
    return;
  }
  const service = await exobus.connect({ service: serviceType ?? role });
  roles[role](service, name);
  service.start();
  process.on('SIGTERM', () => {
    service.close();
    say('stopped');
  });
  say('ready');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
