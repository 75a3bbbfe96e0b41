'use strict';
// exobus/exorelay: ExoRelay's API over ExoBus, so that a service written against ExoRelay
// moves onto the bus by changing its import:
//
//   const ExoRelay = require('exobus/exorelay');
//   const relay = new ExoRelay({ role: 'users' });
//   relay.registerHandler('user.create', (payload, { reply, send }) => reply('user.created', user));
//   relay.on('online', () => relay.send('file.copy', job, (outcome, payload) => ...));
//   relay.listen();
//
// The bus is $EXOBUS_BUS unless `bus` is given. README.md lists what differs from ExoRelay:
// handlers are registered before listen(), and a reply handler is called until its
// `replyTimeoutMs` (one per send) passes.
const { EventEmitter } = require('node:events');
const { connect, Delivery } = require('./lib/service');

/** The errors ExoRelay raised for bad arguments, as a class with a code each. */
class ExoRelayError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ExoRelayError';
    this.code = code;
  }
}

function checkName(name, what) {
  if (typeof name !== 'string' || name === '') {
    throw new ExoRelayError('EXORELAY_NO_NAME', `${what} must be provided with a message name`);
  }
}

class ExoRelay extends EventEmitter {
  #options;
  #handlers = new Map();
  #service = null;
  #state = 'new'; // new, connecting, online, offline

  /**
   * options: role (the service type; default $EXOBUS_SERVICE), bus, runtimeDir,
   * replyTimeoutMs (how long a send's reply handler is called; default 60 000).
   */
  constructor(options = {}) {
    super();
    if (options === null || typeof options !== 'object') {
      throw new ExoRelayError('EXORELAY_BAD_OPTIONS', 'ExoRelay takes an options object ({role, bus})');
    }
    if (options.role !== undefined && (typeof options.role !== 'string' || options.role === '')) {
      throw new ExoRelayError('EXORELAY_NO_ROLE', 'the role of an ExoRelay is the name of its service type');
    }
    this.#options = { replyTimeoutMs: 60000, ...options };
  }

  get role() {
    return this.#service?.serviceType ?? this.#options.role ?? process.env.EXOBUS_SERVICE;
  }

  /** handler(payload, {reply, send, message}); its return (or its promise's) acks. */
  registerHandler(name, handler) {
    checkName(name, 'Request handlers');
    if (typeof handler !== 'function') {
      throw new ExoRelayError('EXORELAY_HANDLER_NOT_FUNCTION', `the request handler for '${name}' must be a function`);
    }
    if (this.#handlers.has(name)) {
      throw new ExoRelayError('EXORELAY_DUPLICATE_HANDLER', `there is already a handler for message '${name}'`);
    }
    if (this.#state !== 'new') {
      throw new ExoRelayError('EXORELAY_ALREADY_LISTENING', `register the handler for '${name}' before listen()`);
    }
    this.#handlers.set(name, handler);
  }

  /** Each entry of {name: handler}, as registerHandler(). */
  registerHandlers(handlers) {
    if (handlers === null || typeof handlers !== 'object') {
      throw new ExoRelayError('EXORELAY_HANDLER_NOT_FUNCTION', 'registerHandlers takes an object of {name: handler}');
    }
    for (const [name, handler] of Object.entries(handlers)) this.registerHandler(name, handler);
  }

  /**
   * Joins the bus and starts handling; emits 'online' (with the role) once it did. A failure
   * rejects, and is emitted as 'error' when something listens for it.
   */
  async listen() {
    if (this.#state !== 'new') return;
    this.#state = 'connecting';
    try {
      this.#service = await connect({
        bus: this.#options.bus,
        service: this.#options.role,
        runtimeDir: this.#options.runtimeDir,
        onError: (error) => this.#report(error),
      });
    } catch (error) {
      this.#state = 'offline';
      this.#report(error);
      throw error;
    }
    for (const [name, handler] of this.#handlers) {
      this.#service.on(name, (delivery) => handler(delivery.payload, this.#context(delivery)));
    }
    this.#service.start();
    this.#state = 'online';
    this.emit('online', this.role);
  }

  /**
   * Sends a command; replyHandler(outcome, payload, reply), if given, is called once for each
   * of its replies. Bad names and undeclared messages throw the bus's typed errors.
   */
  send(name, payload, replyHandler) {
    checkName(name, 'Messages');
    return this.#send(this.#online(), name, payload, replyHandler);
  }

  /** Leaves the bus; emits 'offline'. */
  close() {
    if (this.#state === 'offline') return;
    const wasOnline = this.#state === 'online';
    this.#state = 'offline';
    this.#service?.close();
    if (wasOnline) this.emit('offline');
  }

  #online() {
    if (this.#state !== 'online') {
      throw new ExoRelayError('EXORELAY_NOT_ONLINE', "send once the relay is online (after listen() and its 'online' event)");
    }
    return this.#service;
  }

  // `through`: the Service, or a Delivery (a send from a handler is part of its request).
  #send(through, name, payload, replyHandler) {
    if (replyHandler === undefined) {
      if (through instanceof Delivery) through.send(name, payload);
      else through.trySend(name, payload); // at once: a full queue throws QueueFullError
      return;
    }
    if (typeof replyHandler !== 'function') {
      throw new ExoRelayError('EXORELAY_HANDLER_NOT_FUNCTION', `the reply handler for '${name}' must be a function`);
    }
    const replies = through.stream(name, payload, { timeoutMs: this.#options.replyTimeoutMs }); // sends, or throws
    (async () => {
      for await (const reply of replies) {
        try {
          replyHandler(reply.outcome, reply.payload, reply);
        } catch (error) {
          this.#report(error);
        }
      }
    })().catch((error) => this.#report(error));
  }

  #context(delivery) {
    return {
      reply: (outcome, payload) => delivery.reply(outcome, payload),
      send: (name, payload, replyHandler) => {
        checkName(name, 'Messages');
        return this.#send(delivery, name, payload, replyHandler);
      },
      message: delivery,
    };
  }

  #report(error) {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else console.error('exorelay:', error);
  }
}

module.exports = ExoRelay;
module.exports.ExoRelay = ExoRelay;
module.exports.ExoRelayError = ExoRelayError;
