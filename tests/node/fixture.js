'use strict';
// What the Node.js binding's tests share: a real exobusd on a bus of the test's own (its own
// name and runtime directory), and the processes a test starts on it, every one stopped when
// the test ends, passed or failed.
//
// ctest (CMakeLists.txt here) sets EXOBUS_BUILD_DIR, the build whose exobusd and programs
// run, and NODE_PATH, where that build laid out the exobus package.
const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const exobus = require('exobus');

const HERE = __dirname;
const SOURCE_DIR = path.resolve(HERE, '../..');
const BUILD_DIR = process.env.EXOBUS_BUILD_DIR ?? path.join(SOURCE_DIR, 'build');
let busNumber = 0;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// SIGTERM, then SIGKILL if it is still there after 5 s; resolves once it exited.
async function terminate(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(killer);
}

/** A process started by a test; its output is read line by line as it comes. */
class Process {
  constructor(argv, env) {
    this.child = childProcess.spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.output = []; // every line so far
    this.unmatched = []; // read, and not returned by expect()
    this.waiters = [];
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    this.ended = false;
    for (const stream of [this.child.stdout, this.child.stderr]) {
      readline.createInterface({ input: stream }).on('line', (line) => {
        this.output.push(line);
        this.unmatched.push(line);
        for (const wake of this.waiters.splice(0)) wake();
      });
    }
    this.exited.then(() => {
      this.ended = true;
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** The first line not returned yet that contains `text`; fails after `timeoutMs`. */
  async expect(text, timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.unmatched.findIndex((line) => line.includes(text));
      if (index >= 0) return this.unmatched.splice(index, 1)[0];
      if (this.ended) await sleep(50); // the last lines may still be on their way
      if (this.ended && !this.unmatched.some((line) => line.includes(text))) {
        assert.fail(`the process ended before printing '${text}': ${JSON.stringify(this.output)}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`no line with '${text}' within ${timeoutMs} ms; output so far: ${JSON.stringify(this.output)}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  kill(signal) {
    this.child.kill(signal);
  }
  stop() {
    return terminate(this.child);
  }
}

/** A running exobusd and what the test connects or starts on its bus. */
class Bus {
  static async start(application = path.join(HERE, 'application.yml')) {
    const bus = new Bus();
    bus.name = `node${process.pid}-${busNumber++}`;
    // Under /tmp: a socket's path must stay under 108 bytes.
    bus.runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'exobus-node.'));
    bus.env = { ...process.env, EXOBUS_BUS: bus.name, EXOBUS_RUNTIME_DIR: bus.runtimeDir };
    bus.processes = [];
    bus.services = [];
    const logPath = path.join(bus.runtimeDir, 'exobusd.log');
    const log = fs.openSync(logPath, 'w');
    bus.daemon = childProcess.spawn(
      path.join(BUILD_DIR, 'daemon/exobusd/exobusd'),
      ['--config', application, '--bus', bus.name, '--runtime-dir', bus.runtimeDir, '--reset', '--remove-segment'],
      { stdio: ['ignore', log, log] }
    );
    fs.closeSync(log);
    const socket = path.join(bus.runtimeDir, `${bus.name}.sock`);
    const deadline = Date.now() + 10000;
    while (!(fs.existsSync(socket) && fs.readFileSync(logPath, 'utf8').includes('serving bus'))) {
      if (bus.daemon.exitCode !== null || Date.now() > deadline) {
        const text = fs.readFileSync(logPath, 'utf8');
        await bus.close();
        assert.fail(`exobusd did not start: ${text}`);
      }
      await sleep(20);
    }
    return bus;
  }

  /** This test process as an instance of `service` (closed when the test ends). */
  async connect(service, options = {}) {
    const connected = await exobus.connect({ bus: this.name, service, runtimeDir: this.runtimeDir, ...options });
    this.services.push(connected);
    return connected;
  }

  /** A program on this bus (it finds it in $EXOBUS_BUS and $EXOBUS_RUNTIME_DIR). */
  start(argv, env = {}) {
    const started = new Process(argv.map(String), { ...this.env, ...env });
    this.processes.push(started);
    return started;
  }

  /** A Node.js service of services/serve.js, once it says it is serving. */
  async serve(role, ...args) {
    const started = this.start([process.execPath, path.join(HERE, 'services/serve.js'), role, ...args]);
    await started.expect('ready');
    return started;
  }

  /** `exobus ARGS...` on this bus: {code, stdout, stderr}. */
  cli(...args) {
    const ran = childProcess.spawnSync(path.join(BUILD_DIR, 'cli/exobus'), args, { env: this.env, encoding: 'utf8', timeout: 30000 });
    return { code: ran.status, stdout: ran.stdout, stderr: ran.stderr };
  }

  async close() {
    for (const service of this.services) service.close();
    for (const started of [...this.processes].reverse()) await started.stop();
    await terminate(this.daemon);
    fs.rmSync(this.runtimeDir, { recursive: true, force: true });
  }
}

/** A bus for test `t` (node:test's context), closed when the test ends. */
async function startBus(t, application) {
  const bus = await Bus.start(application);
  t.after(() => bus.close());
  return bus;
}

module.exports = { startBus, sleep, BUILD_DIR, SOURCE_DIR, HERE };
