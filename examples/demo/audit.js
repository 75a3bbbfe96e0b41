#!/usr/bin/env node
'use strict';
// audit, the demo's service in JavaScript: subscribed to user.created beside the mailer (a
// fan-out), it writes each one it gets to its log, marked when redelivered, as
// demo_subscriber does in C++. Run it with the built binding on the path (scripts/demo.sh
// does):
//
//     NODE_PATH=build/bindings/node node examples/demo/audit.js
const exobus = require('exobus');

async function main() {
  const audit = await exobus.connect({ service: 'audit' }); // the bus from $EXOBUS_BUS
  audit.on('user.created', (msg) => {
    const redelivered = msg.redelivered ? ' (redelivered)' : '';
    process.stdout.write(`audit: user.created ${msg.text}${redelivered}\n`);
  });
  // Until Ctrl-C or SIGTERM: a service that handles messages keeps the process alive.
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => audit.close());
}

main().catch((error) => {
  console.error(`audit: ${error.message}`);
  process.exit(1);
});
