'use strict';
// The package as `npm pack` makes it and `npm install` installs it, without a network (node-
// addon-api from npm's cache, filled by scripts/setup.sh), against the C++ library as
// `cmake --install` installs it (bindings/node/README.md), serving on a real bus.
const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const { startBus, BUILD_DIR, SOURCE_DIR } = require('./fixture');

function run(command, args, options) {
  const ran = childProcess.spawnSync(command, args, { encoding: 'utf8', timeout: 600000, ...options });
  assert.equal(ran.status, 0, `${command} ${args.join(' ')}: ${ran.stdout}${ran.stderr}${ran.error ?? ''}`);
  return ran.stdout;
}

test('npm installs the packed package against the installed library, and it serves on a bus', async (t) => {
  const work = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'exobus-npm.'));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));
  const prefix = path.join(work, 'prefix');
  run('cmake', ['--install', BUILD_DIR, '--prefix', prefix]);
  // A copy: the source tree stays as it is (no build/ or node_modules/ left in it).
  const source = path.join(work, 'source');
  fs.cpSync(path.join(SOURCE_DIR, 'bindings/node'), source, {
    recursive: true,
    filter: (from) => !/\/(build|node_modules)$/.test(from),
  });
  const { NODE_PATH, ...env } = process.env; // only the installed package is found
  const tarball = run('npm', ['pack', '--silent', '--pack-destination', work], { cwd: source, env }).trim().split('\n').pop();
  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), '{"name": "app", "private": true}\n');
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(work, tarball)], {
    cwd: app,
    env: { ...env, CMAKE_PREFIX_PATH: prefix, npm_config_cache: process.env.npm_config_cache ?? path.join(require('node:os').homedir(), '.npm') },
  });
  assert.ok(fs.existsSync(path.join(app, 'node_modules/exobus/build/exobus.node')));

  const bus = await startBus(t);
  // A service written from the README alone, in the app that installed the package.
  fs.writeFileSync(
    path.join(app, 'echo.js'),
    `const exobus = require('exobus');
     (async () => {
       const echo = await exobus.connect({ service: 'echo' });
       echo.on('echo', async (msg, ctx) => ctx.reply('echo.ok', { text: msg.payload.text.toUpperCase(), from: require.resolve('exobus') }));
       console.log('ready');
       process.on('SIGTERM', () => echo.close());
     })();`
  );
  const echo = bus.start([process.execPath, path.join(app, 'echo.js')], { NODE_PATH: '' });
  await echo.expect('ready');
  const client = await bus.connect('client');
  const reply = await client.request('echo', { text: 'installed' }, { timeoutMs: 5000 });
  assert.equal(reply.payload.text, 'INSTALLED');
  assert.equal(reply.payload.from, path.join(app, 'node_modules/exobus/index.js'));
});
