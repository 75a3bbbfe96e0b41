'use strict';
// The promise API: connect() and Service over the addon's NativeService.
//
// What keeps the process alive: a service that handles messages (one on() or more, until
// close()), as a listening server does, and each request or stream still awaiting replies.
// A service that only sends keeps nothing alive once its replies came, so a script that
// sends and ends exits without close(). Every service still open when the process exits is
// closed then (its unsettled deliveries are released for redelivery).
const native = require('./native');
const errors = require('./errors');
const { encoded, decoded } = require('./payload');
const { Reply } = require('./reply');

const { Delivery } = native;
const open = new Set();
process.on('exit', () => {
  for (const service of open) service.close();
});

const BACK_PRESSURE = new Set(['queue_full', 'pool_exhausted']);
// Sends through `attempt` (a call of the addon that never waits: the library's own send
// timeout is 0, so that the loop is never blocked); back-pressure is waited out off the loop,
// first by letting the loop turn (setImmediate: the receivers of this process drain), then
// on timers, until `timeoutMs` passed. undefined when the first attempt went through, else a
// promise of the later one; errors other than back-pressure throw at once.
function sendWithBackPressure(attempt, timeoutMs) {
  try {
    attempt();
    return undefined;
  } catch (error) {
    if (!BACK_PRESSURE.has(error.code)) throw error;
  }
  return (async () => {
    const deadline = Date.now() + timeoutMs;
    for (let wait = 0; ; wait = Math.min(wait * 2 + 1, 50)) {
      await new Promise((resolve) => (wait === 0 ? setImmediate(resolve) : setTimeout(resolve, wait)));
      try {
        attempt();
        return;
      } catch (error) {
        if (!BACK_PRESSURE.has(error.code) || Date.now() >= deadline) throw error;
      }
    }
  })();
}

function describe(value) {
  return typeof value === 'string' ? `'${value}'` : String(value);
}

function checkName(name, what) {
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(`${what} is a non-empty string, not ${describe(name)}`);
  }
}

function reportHandlerError(error, delivery) {
  console.error(`exobus: the handler of '${delivery.name}' failed, and its delivery was released:`, error);
}

class Service {
  #native;
  #onError;
  #handlers = []; // by the number the addon gives back with each delivery
  #requests = new Map(); // number -> { reply(reply), timedOut(), closed() }
  #nextRequest = 1;
  #sendTimeoutMs;
  #listening = false; // a handler is registered: the service keeps the process alive
  #started = false;
  #closed = false;

  /** @private Made by connect(). */
  constructor(nativeService, options) {
    this.#native = nativeService;
    this.#onError = options.onError ?? reportHandlerError;
    this.#sendTimeoutMs = options.sendTimeoutMs;
    open.add(this);
  }

  get serviceType() {
    return this.#native.serviceType;
  }
  get instance() {
    return this.#native.instance;
  }
  get closed() {
    return this.#closed;
  }

  /**
   * Handles `name` (this service's own name for it), of `options.version` only if given.
   * handler(msg, ctx) may be async: resolving acks, throwing releases for redelivery, unless
   * it settled the delivery itself (ctx.ack(), ctx.release(), ctx.reject()). msg and ctx are
   * one Delivery. Register before the service starts: it starts by itself once the code that
   * registered returns (or at start()).
   */
  on(name, handler, options = {}) {
    checkName(name, 'a message name');
    if (typeof handler !== 'function') throw new TypeError(`the handler of '${name}' is a function`);
    if (this.#started) {
      throw new errors.ClosedError(`the service has started: register '${name}' before it does (in the same turn of the loop as connect's continuation, or before start())`);
    }
    const version = options.version;
    if (version !== undefined && (typeof version !== 'number' || !(version >= 0))) {
      throw new TypeError(`a version is a non-negative number, not ${describe(version)}`);
    }
    this.#native.on(name, version, this.#handlers.push(handler) - 1);
    if (!this.#listening) {
      this.#listening = true;
      this.#native.ref();
      queueMicrotask(() => this.start());
    }
    return this;
  }

  /** Starts receiving what the handlers take; idempotent. */
  start() {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#native.start();
  }

  /**
   * Sends a command, fire-and-forget. Back-pressure (a full queue, no free buffer) is waited
   * out without blocking the loop, retrying for up to sendTimeoutMs, then rejected
   * (QueueFullError, PoolExhaustedError); every other error rejects at once. Requests and
   * streams wait out back-pressure the same way.
   */
  async send(name, payload, options = {}) {
    const text = encoded(payload);
    const later = sendWithBackPressure(
      () => this.#native.trySend(name, text, options.version, options.requestId),
      this.#sendTimeoutMs
    );
    if (later !== undefined) await later;
  }

  /** As send(), synchronously and without waiting: back-pressure throws at once. */
  trySend(name, payload, options = {}) {
    this.#native.trySend(name, encoded(payload), options.version, options.requestId);
  }

  /** Sends a command and resolves with its first Reply; TimeoutError after timeoutMs. */
  request(name, payload, options = {}) {
    return requestThrough(this, this.#native, name, payload, options);
  }

  /**
   * Sends a command and yields each of its replies as it comes: `for await (const reply of
   * svc.stream('file.copy', job, {end: ['file.copy.done']}))`. The iteration ends after a
   * reply named in `end`; a timeout before it throws TimeoutError. Without `end`, the
   * iteration ends quietly at timeoutMs.
   */
  stream(name, payload, options = {}) {
    return streamThrough(this, this.#native, name, payload, options);
  }

  /**
   * Leaves the bus: receiving stops, unsettled deliveries are released for redelivery, and
   * requests still awaiting replies reject with ClosedError. Idempotent.
   */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    open.delete(this);
    this.#native.close();
    const pending = [...this.#requests.values()];
    this.#requests.clear();
    for (const request of pending) request.closed();
  }

  // Called by the addon on the loop, once per delivery.
  _deliver(handlerNumber, delivery) {
    if (this.#closed) return; // released by the stop already
    delivery.service = this;
    const handler = this.#handlers[handlerNumber];
    let result;
    try {
      result = handler(delivery, delivery);
    } catch (error) {
      this.#failed(delivery, error);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
      result.then(
        () => this.#settle(delivery, false),
        (error) => this.#failed(delivery, error)
      );
    } else {
      this.#settle(delivery, false);
    }
  }

  // Called by the addon on the loop, once per reply; null when the request timed out.
  _reply(requestNumber, fields) {
    const request = this.#requests.get(requestNumber);
    if (request === undefined) return; // its iteration ended, or the service closed
    if (fields === null) {
      this._forget(requestNumber);
      request.timedOut();
    } else {
      request.reply(new Reply(fields));
    }
  }

  /** @private A request's number, awaiting replies until _forget(). */
  _remember(request) {
    if (this.#closed) throw new errors.ClosedError('the service is closed');
    const number = this.#nextRequest;
    this.#nextRequest = number === 0xffffffff ? 1 : number + 1;
    this.#requests.set(number, request);
    if (this.#requests.size === 1) this.#native.ref();
    return number;
  }
  _forget(number) {
    if (this.#requests.delete(number) && this.#requests.size === 0) this.#native.unref();
  }

  /** @private */
  get _sendTimeoutMs() {
    return this.#sendTimeoutMs;
  }

  // Acks (or releases) a delivery its handler did not settle; a stop that came meanwhile
  // released it already.
  #settle(delivery, release) {
    try {
      delivery._finish(release);
    } catch (error) {
      if (error.code !== 'closed') this.#onError(error, delivery);
    }
  }
  #failed(delivery, error) {
    this.#settle(delivery, true);
    this.#onError(error, delivery);
  }
}

// request() and stream() of a Service, or of a Delivery on behalf of its message: `sender`
// is the NativeService or the native Delivery, whose sendWithReplies has one signature.
function requestThrough(service, sender, name, payload, options) {
  const timeoutMs = options.timeoutMs ?? 1000;
  const text = encoded(payload);
  return new Promise((resolve, reject) => {
    const number = service._remember({
      reply(reply) {
        service._forget(number);
        resolve(reply);
      },
      timedOut() {
        reject(new errors.TimeoutError(`no reply to '${name}' came within ${timeoutMs} ms`));
      },
      closed() {
        reject(new errors.ClosedError(`the service closed before a reply to '${name}' came`));
      },
    });
    const fail = (error) => {
      service._forget(number);
      reject(error);
    };
    try {
      const send = () => sender.sendWithReplies(name, text, options.version, options.requestId, number, timeoutMs, null);
      sendWithBackPressure(send, service._sendTimeoutMs)?.catch(fail);
    } catch (error) {
      fail(error);
    }
  });
}

// The replies of one command, as an async iterator. The command is sent when the stream is
// made, so that a bad send throws at the caller.
class ReplyStream {
  #service;
  #number;
  #end;
  #arrived = []; // replies, then possibly a null (the quiet end) or an Error
  #waiting = null; // the resolve of a next() that found nothing
  #finished = false;

  constructor(service, sender, name, payload, options) {
    const timeoutMs = options.timeoutMs ?? 1000;
    this.#service = service;
    this.#end = options.end ?? [];
    this.#number = service._remember({
      reply: (reply) => this.#push(reply),
      timedOut: () =>
        this.#push(this.#end.length === 0 ? null : new errors.TimeoutError(`the replies to '${name}' did not end within ${timeoutMs} ms`)),
      closed: () => this.#push(new errors.ClosedError(`the service closed before the replies to '${name}' ended`)),
    });
    const text = encoded(payload);
    const send = () => sender.sendWithReplies(name, text, options.version, options.requestId, this.#number, timeoutMs, this.#end);
    try {
      // Back-pressure is waited out after the stream is made; its failure ends the stream.
      sendWithBackPressure(send, service._sendTimeoutMs)?.catch((error) => this.#push(error));
    } catch (error) {
      this.#finish();
      throw error;
    }
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  async next() {
    if (this.#finished) return { value: undefined, done: true };
    while (this.#arrived.length === 0) await new Promise((resolve) => (this.#waiting = resolve));
    const item = this.#arrived.shift();
    if (item === null || item instanceof Error) {
      this.#finish();
      if (item !== null) throw item;
      return { value: undefined, done: true };
    }
    // The last reply ends the stream now: its number may be reused once forgotten.
    if (this.#end.includes(item.outcome)) this.#finish();
    return { value: item, done: false };
  }

  /** Ends the iteration early (a break): later replies are dropped. */
  async return() {
    this.#finish();
    return { value: undefined, done: true };
  }

  #push(item) {
    this.#arrived.push(item);
    const waiting = this.#waiting;
    this.#waiting = null;
    if (waiting !== null) waiting();
  }
  #finish() {
    if (this.#finished) return;
    this.#finished = true;
    this.#service._forget(this.#number);
  }
}

function streamThrough(service, sender, name, payload, options) {
  return new ReplyStream(service, sender, name, payload, options);
}

// What JavaScript adds to the addon's Delivery (fields, settling and payload bytes are
// native): the payload as JSON, and sends, replies and requests on behalf of its message.
Object.defineProperties(Delivery.prototype, {
  payload: {
    get() {
      return decoded(this.text);
    },
  },
});
Object.assign(Delivery.prototype, {
  /** Replies with an outcome; call again for a streaming reply. */
  reply(outcome, payload, options = {}) {
    this._reply(outcome, encoded(payload), options.version, options.requestId);
  },
  /** Sends a command as part of this message's request. */
  send(name, payload, options = {}) {
    this._send(name, encoded(payload), options.version, options.requestId);
  },
  request(name, payload, options = {}) {
    return requestThrough(this.service, { sendWithReplies: this._sendWithReplies.bind(this) }, name, payload, options);
  },
  stream(name, payload, options = {}) {
    return streamThrough(this.service, { sendWithReplies: this._sendWithReplies.bind(this) }, name, payload, options);
  },
});

/**
 * Connects this process to a bus as an instance of a service type. bus and service default
 * to $EXOBUS_BUS and $EXOBUS_SERVICE, runtimeDir to $EXOBUS_RUNTIME_DIR or /tmp/exobus-<uid>.
 */
async function connect(options = {}) {
  const sendTimeoutMs = options.sendTimeoutMs ?? 1000;
  let service = null;
  const connected = await native.connect(
    {
      bus: options.bus ?? '',
      service: options.service ?? '',
      runtimeDir: options.runtimeDir ?? '',
      sendTimeoutMs: 0, // the library never waits on the loop's thread: sendWithBackPressure waits
      waitMode: options.waitMode ?? 'adaptive',
    },
    (handler, delivery) => service._deliver(handler, delivery),
    (request, reply) => service._reply(request, reply)
  );
  service = new Service(connected, { onError: options.onError, sendTimeoutMs });
  return service;
}

module.exports = { connect, Service, Delivery, Reply };
