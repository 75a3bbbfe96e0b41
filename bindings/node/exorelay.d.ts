// Types of exobus/exorelay (exorelay.js): ExoRelay's API over ExoBus.
/// <reference types="node" />
import { EventEmitter } from 'node:events';
import { Delivery, Reply } from './index';

declare namespace ExoRelay {
  interface Options {
    /** The service type; default $EXOBUS_SERVICE. */
    role?: string;
    bus?: string;
    runtimeDir?: string;
    /** How long a send's reply handler is called; default 60 000. */
    replyTimeoutMs?: number;
  }
  type ReplyHandler = (outcome: string, payload: any, reply: Reply) => void;
  interface HandlerContext {
    reply(outcome: string, payload?: unknown): void;
    send(name: string, payload?: unknown, replyHandler?: ReplyHandler): void;
    /** Every field of the message being handled. */
    message: Delivery;
  }
  type Handler = (payload: any, context: HandlerContext) => unknown;

  type Code =
    | 'EXORELAY_NO_NAME'
    | 'EXORELAY_HANDLER_NOT_FUNCTION'
    | 'EXORELAY_DUPLICATE_HANDLER'
    | 'EXORELAY_ALREADY_LISTENING'
    | 'EXORELAY_NOT_ONLINE'
    | 'EXORELAY_NO_ROLE'
    | 'EXORELAY_BAD_OPTIONS';
  class ExoRelayError extends Error {
    readonly code: Code;
  }
}

declare class ExoRelay extends EventEmitter {
  constructor(options?: ExoRelay.Options);
  readonly role: string | undefined;
  registerHandler(name: string, handler: ExoRelay.Handler): void;
  registerHandlers(handlers: Record<string, ExoRelay.Handler>): void;
  /** Joins the bus; 'online' (with the role) once it did. */
  listen(): Promise<void>;
  send(name: string, payload?: unknown, replyHandler?: ExoRelay.ReplyHandler): void;
  /** Leaves the bus; 'offline'. */
  close(): void;
  on(event: 'online', listener: (role: string) => void): this;
  on(event: 'offline', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  static ExoRelay: typeof ExoRelay;
  static ExoRelayError: typeof ExoRelay.ExoRelayError;
}

export = ExoRelay;
