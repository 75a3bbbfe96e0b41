// Types of the exobus package (index.js); README.md has the API in prose.
/// <reference types="node" />

/** A payload: any JSON value (encoded with JSON.stringify), or JSON text as a Buffer. */
export type Payload = unknown;

export interface SendOptions {
  /** The message's version; default: the one the sender's configuration gives the name. */
  version?: number;
  /** The end-user request (a UUID) the message belongs to; default: a new request. */
  requestId?: string;
}

export interface RequestOptions extends SendOptions {
  /** How long to wait for the reply (for a stream: for all of them); default 1000. */
  timeoutMs?: number;
}

export interface StreamOptions extends RequestOptions {
  /** Outcomes that end the stream; without them it ends quietly at timeoutMs. */
  end?: string[];
}

export interface ConnectOptions {
  /** The bus; default $EXOBUS_BUS. */
  bus?: string;
  /** The service type; default $EXOBUS_SERVICE. */
  service?: string;
  /** Where the daemon's sockets are; default $EXOBUS_RUNTIME_DIR or /tmp/exobus-<uid>. */
  runtimeDir?: string;
  /** How long a send waits out back-pressure (a full queue, no free buffer); default 1000. */
  sendTimeoutMs?: number;
  /** How the library's receiving threads wait; default 'adaptive'. */
  waitMode?: 'adaptive' | 'busyPoll' | 'sleep';
  /** Called when a handler throws or rejects (its delivery is released); default: stderr. */
  onError?: (error: unknown, msg: Delivery) => void;
}

/** Every field of a received message. */
export interface Message {
  /** The message's name, in this service's terms. */
  readonly name: string;
  readonly version: number;
  /** The message's own id (a UUID). */
  readonly id: string;
  /** The end-user request it belongs to (a UUID). */
  readonly requestId: string;
  /** The id of the command a reply answers; null for a command. */
  readonly responseTo: string | null;
  /** The sending service type. */
  readonly sender: string;
  /** How often it was delivered to this service type before. */
  readonly deliveries: number;
  readonly redelivered: boolean;
  /** The payload's JSON value; undefined for none. */
  readonly payload: any;
  /** The payload's JSON text ('' for none). */
  readonly text: string;
  /** The payload's bytes. */
  readonly buffer: Buffer;
}

/** A reply to a command this service sent. */
export class Reply implements Message {
  private constructor();
  /** The reply's name: its outcome. */
  readonly outcome: string;
  readonly name: string;
  readonly version: number;
  readonly id: string;
  readonly requestId: string;
  readonly responseTo: string | null;
  readonly sender: string;
  readonly deliveries: number;
  readonly redelivered: boolean;
  readonly payload: any;
  readonly text: string;
  readonly buffer: Buffer;
}

/**
 * A message being handled, held until settled: a handler's msg and ctx are this one object.
 * text, payload and buffer read the payload where it lies in shared memory (buffer without a
 * copy), until the delivery is settled: after that they throw ClosedError.
 */
export class Delivery implements Message {
  private constructor();
  readonly name: string;
  readonly version: number;
  readonly id: string;
  readonly requestId: string;
  readonly responseTo: string | null;
  readonly sender: string;
  readonly deliveries: number;
  readonly redelivered: boolean;
  readonly payload: any;
  readonly text: string;
  /** The payload in shared memory, not copied; valid until the delivery is settled. */
  readonly buffer: Buffer;
  readonly settled: boolean;
  /** The service that received it. */
  readonly service: Service;
  /** After reading buffer: false only when the lease was lost meanwhile and the bytes reused. */
  payloadIntact(): boolean;
  /** Replies with an outcome; call again for a streaming reply. */
  reply(outcome: string, payload?: Payload, options?: SendOptions): void;
  /** Sends a command as part of this message's request. */
  send(name: string, payload?: Payload, options?: SendOptions): void;
  request(name: string, payload?: Payload, options?: RequestOptions): Promise<Reply>;
  stream(name: string, payload?: Payload, options?: StreamOptions): AsyncIterableIterator<Reply>;
  ack(): void;
  /** Gives it back for redelivery now. */
  release(): void;
  /** Dead-letters it. */
  reject(): void;
  /** Extends its lease, to hold it past ack-timeout-ms. */
  renew(): void;
}

/** handler(msg, ctx): resolving (or returning) acks, throwing releases, unless it settled. */
export type Handler = (msg: Delivery, ctx: Delivery) => unknown;

export class Service {
  private constructor();
  readonly serviceType: string;
  readonly instance: number;
  readonly closed: boolean;
  /** Handles `name`; register before the service starts (it starts once the registering code returns). */
  on(name: string, handler: Handler, options?: { version?: number }): this;
  start(): void;
  send(name: string, payload?: Payload, options?: SendOptions): Promise<void>;
  /** As send(), at once: back-pressure throws QueueFullError or PoolExhaustedError. */
  trySend(name: string, payload?: Payload, options?: SendOptions): void;
  request(name: string, payload?: Payload, options?: RequestOptions): Promise<Reply>;
  stream(name: string, payload?: Payload, options?: StreamOptions): AsyncIterableIterator<Reply>;
  close(): void;
}

export function connect(options?: ConnectOptions): Promise<Service>;

/** An error the bus reported: code is the ErrorCode's name ('queue_full'), errno its number. */
export class ExobusError extends Error {
  readonly code: string;
  readonly errno: number;
}
export class InvalidNameError extends ExobusError {}
export class InvalidUuidError extends ExobusError {}
export class InvalidVersionError extends ExobusError {}
export class MalformedJsonError extends ExobusError {}
export class SchemaViolationError extends ExobusError {}
export class PayloadTooLargeError extends ExobusError {}
export class UnknownMessageError extends ExobusError {}
export class NotDeclaredError extends ExobusError {}
export class QueueFullError extends ExobusError {}
export class TimeoutError extends ExobusError {}
export class DaemonNotRunningError extends ExobusError {}
export class PermissionDeniedError extends ExobusError {}
export class VersionMismatchError extends ExobusError {}
export class ConfigError extends ExobusError {}
export class SegmentError extends ExobusError {}
export class CorruptedError extends ExobusError {}
export class ClosedError extends ExobusError {}
export class InternalError extends ExobusError {}
export class RefusedError extends ExobusError {}
export class ProtocolError extends ExobusError {}
export class IoError extends ExobusError {}
export class NotFoundError extends ExobusError {}
export class AlreadyExistsError extends ExobusError {}
export class NotInitialisedError extends ExobusError {}
export class NoSpaceError extends ExobusError {}
export class UnknownVersionError extends ExobusError {}
export class PoolExhaustedError extends ExobusError {}
export class QuotaExceededError extends ExobusError {}
export class PartiallyDeliveredError extends ExobusError {}
