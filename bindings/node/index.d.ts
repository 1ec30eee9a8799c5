// Type declarations of the `ferrymq` package (hand-written, checked by `tsc --strict` over
// examples/ and test/typed.ts in bindings/node/test.sh).

/// <reference types="node" />
import { EventEmitter } from 'node:events';

/** A message body: bytes, or a string sent as UTF-8. */
export type Body = Buffer | Uint8Array | string;

/** How a transaction ended, or `unknown` to have the broker ask again later. */
export type TransactionVerdict = 'commit' | 'rollback' | 'unknown';

/** Clustering: each message to one member of the group. Broadcasting: to every member. */
export type ConsumeMode = 'clustering' | 'broadcasting';

/** How a group's queues are shared among its members (RocketMQ's allocation strategies). */
export type Strategy = 'average' | 'average_by_circle' | 'consistent_hash' | 'machine_room';

/** Where a group with no committed offset on a queue begins: the earliest retained
 * message, only new ones, or the first stored at or after an epoch-ms time. */
export type StartPosition = 'first' | 'last' | number | Date;

/** A topic's permission: publish and consume, consume only, publish only. */
export type Perm = 'rw' | 'r' | 'w';

/** Where a lookup finds a message: in its topic, waiting for its delay, or a half
 * (transactional, not yet committed) message. */
export type MessageState = 'stored' | 'scheduled' | 'half';

/** The error kinds of the contract (`urn:ferrymq:error:<kind>`), plus `internal`. */
export type ErrorCode =
  | 'invalid-argument'
  | 'invalid-filter'
  | 'payload-too-large'
  | 'not-found'
  | 'conflict'
  | 'idempotency-conflict'
  | 'timeout'
  | 'connection'
  | 'unauthorized'
  | 'forbidden'
  | 'unavailable'
  | 'insufficient-storage'
  | 'internal';

/** Attributes of a message to publish. Give at most one of `delayLevel`, `delayMs` and
 * `deliverAt`. */
export interface SendOptions {
  /** One tag, matched by tag filters (`TagA || TagB`). */
  tag?: string | null;
  /** Keys, indexed for `admin.findMessages({ key })`. */
  keys?: string | string[] | null;
  /** User properties, matched by SQL92 filters; numbers and booleans are sent as text. */
  properties?: Record<string, string | number | boolean> | null;
  /** A delay level, 1-based (1s 5s 10s 30s 1m ... by default). */
  delayLevel?: number | null;
  /** Deliver this many milliseconds after the send. */
  delayMs?: number | null;
  /** Deliver at this time (epoch ms or a Date); in the past: at once. */
  deliverAt?: number | Date | null;
  /** FIFO group: messages with one sharding key land in one queue, in order. */
  shardingKey?: string | null;
  /** A send repeating this key on the topic within the dedup window returns the first
   * result and stores nothing new. */
  idempotencyKey?: string | null;
}

/** One message of a batch: its body and the attributes of `send()`. */
export interface BatchMessage extends SendOptions {
  body: Body;
}

/** Where a send landed. `queueId` and `queueOffset` are null for delayed and transactional
 * sends (the message has no place in its topic yet). */
export interface SendResult {
  /** The message id, stable through delay, retry, dead letter and resend. */
  msgId: string;
  queueId: number | null;
  queueOffset: number | null;
  /** Set for transactional sends. */
  transactionId?: string;
}

/** Options of `message.nack()` and `simpleConsumer.nack()`. */
export interface NackOptions {
  /** Redeliver after this many milliseconds instead of the retry delay. */
  delayMs?: number;
}

/** A message as delivered or looked up: the contract's "Message out". */
export declare class Message {
  private constructor();
  /** The message id, stable through delay, retry, dead letter and resend. */
  readonly msgId: string;
  /** The topic it was published to (also for retried and dead letters). */
  readonly topic: string;
  /** Its queue; null while scheduled or half. */
  readonly queueId: number | null;
  /** Its offset in that queue; null while scheduled or half. */
  readonly queueOffset: number | null;
  /** Its offset in the commit log; null while scheduled or half. */
  readonly commitOffset: number | null;
  /** The body bytes. A consumed message's body is a view of a buffer shared with the other
   * messages fetched in the same batch: `Buffer.from(message.body)` for a copy of its own
   * (to keep one body without the others). */
  readonly body: Buffer;
  /** The body decoded as UTF-8; null when it is not valid UTF-8. */
  readonly text: string | null;
  /** The body in base64 (the contract's `body_base64`). */
  readonly bodyBase64: string;
  readonly tag: string | null;
  readonly keys: string[];
  readonly properties: Record<string, string>;
  /** Creation time at the producer, epoch ms. */
  readonly bornTs: number;
  /** Time the broker stored it, epoch ms. */
  readonly storeTs: number;
  /** How many times it was redelivered after a failure. */
  readonly reconsumeTimes: number;
  /** The receipt handle when received by a simple consumer (changes with
   * `changeInvisibleDuration`), else null. */
  readonly receipt: string | null;
  readonly state: MessageState;
  /** Marks it consumed: a message from a push consumer's iterator or a simple consumer's
   * `receive()`. Never blocks the event loop; an iterator's acks of one tick reach the
   * client together. A listener's message is settled by the listener instead, and a message
   * already acked or nacked cannot be again (`Conflict`). */
  ack(): Promise<void>;
  /** Marks it failed: redelivered after `delayMs`, or after the retry delay (in place for
   * orderly and broadcasting consumers); to the dead-letter queue after the group's
   * `maxReconsumeTimes`. */
  nack(options?: NackOptions): Promise<void>;
}

/** Options of `Client.connect`. */
export interface ConnectOptions {
  /** Bearer token, when the server has an `auth_file`. */
  token?: string;
  /** How long one request may take (default 30 000 ms). */
  requestTimeoutMs?: number;
  /** The server's `lease_ttl` in ms, when not the default (its protocol does not carry it). */
  leaseTtlMs?: number;
  /** The server's `orderly_suspend` in ms, when not the default. */
  orderlySuspendMs?: number;
  /** The server's `max_reconsume_times`, when not the default. */
  maxReconsumeTimes?: number;
  /** For `https://` URLs: a PEM file of the certificate authorities to trust instead of the
   * system's roots (a private CA, or a self-signed server certificate). */
  caFile?: string;
}

/** A broker setting's value: as for `ferrymq serve --set key=value` (durations as text with
 * a unit: `'500ms'`; sizes as bytes or `'8MiB'`), or a list of durations for
 * `delay_levels`. */
export type ConfigValue = string | number | boolean | string[];

/** Options of `Client.embedded`. */
export interface EmbeddedOptions {
  /** Broker settings by the server's key names, e.g. `{ delay_levels: '100ms 200ms',
   * lease_ttl: '3s' }`. An unknown or server-only key is an `InvalidArgument`. */
  config?: Record<string, ConfigValue>;
}

/** A push consumer's listener: return (or resolve) to ack, throw (or reject) to nack. */
export type Listener = (message: Message) => unknown;

/** Options of `client.pushConsumer()`. */
export interface PushConsumerOptions {
  /** Tag expression: `*` (default), `TagA`, `TagA || TagB`. */
  filter?: string;
  /** SQL92 over properties instead of a tag filter, e.g. `"region = 'eu' AND amount > 10"`. */
  sql?: string;
  mode?: ConsumeMode;
  /** One message at a time per queue, in queue order, under a broker lease. */
  orderly?: boolean;
  strategy?: Strategy;
  /** Called for each message; without one, iterate the consumer (`for await`). */
  listener?: Listener;
  start?: StartPosition;
  /** Most listener calls (or un-acked iterated messages) at once (default 16). */
  consumeWorkers?: number;
  /** Rebalance period in ms (default 20 000); membership changes rebalance at once. */
  rebalanceIntervalMs?: number;
  /** Machine room of each queue id, for the `machine_room` strategy. */
  queueRooms?: Record<number, string>;
  /** Called on the JS thread with the queues this member takes on, after each rebalance that
   * gave it some (the first one at `start()`), sorted. For per-queue state: caches,
   * transactions, offsets kept elsewhere. May be async: the next change is reported after its
   * promise settles. A throw or rejection is reported as the consumer's `'hookError'` event
   * (a process warning when nobody listens) and changes nothing. */
  onAssign?: RebalanceHook;
  /** Called on the JS thread with the queues this member gave up (before `onAssign` of the
   * same change): their messages are no longer handed out. `close()` revokes every queue and
   * resolves after this hook ran. Errors as for `onAssign`. */
  onRevoke?: RebalanceHook;
}

/** A push consumer's `onAssign` / `onRevoke`: told of a change of its queues. */
export type RebalanceHook = (queues: QueueRef[]) => void | Promise<void>;

/** Which rebalance hook failed, and with which queues (the `'hookError'` event). */
export interface HookErrorInfo {
  hook: 'onAssign' | 'onRevoke';
  queues: QueueRef[];
}

/** Options of `client.simpleConsumer()`: a tag `filter` or an `sql` filter. */
export interface SimpleConsumerOptions {
  filter?: string;
  sql?: string;
}

/** Options of `simpleConsumer.receive()`. */
export interface ReceiveOptions {
  /** At most this many messages, 1 to 1000 (default 16). */
  maxMessages?: number;
  /** Long poll: wait up to this many ms when none is available (default 0, at most 30 000). */
  waitMs?: number;
  /** The messages stay invisible to the rest of the group this long unless acked, nacked or
   * changed (default 30 000; 1 000 to 43 200 000). */
  invisibleMs?: number;
}

/** A check-back checker or local transaction: says how the transaction of a half message
 * ended. May be async. (TypeScript widens the string an async function returns: write
 * `async (half): Promise<TransactionVerdict> => 'commit'`, or `'commit' as const`.) */
export type TransactionDecider = (message: Message) => TransactionVerdict | Promise<TransactionVerdict>;

/** A connection to one broker: `Client.embedded(path)` runs a broker in this process on a
 * local directory; `Client.connect(url)` talks to a running `ferrymq serve`. Close it (or
 * `await using` it): that closes its push consumers, committing their offsets, and lets the
 * process exit. */
export declare class Client {
  private constructor();
  /** Connects to a gateway at `url` (`http://host:port`, or `https://` when the server has
   * `tls_cert`). `ConnectionError` when it cannot
   * be reached, `Unauthorized` for a missing or wrong token. */
  static connect(url: string, options?: ConnectOptions): Promise<Client>;
  /** `connect(url, { token })`. */
  static connect(url: string, token: string): Promise<Client>;
  /** Opens a broker in this process on the directory `path` (created if missing, recovered
   * if it holds data). */
  static embedded(path: string, options?: EmbeddedOptions): Promise<Client>;
  /** `embedded` or `remote`. */
  readonly transport: 'embedded' | 'remote';
  /** A producer, optionally in a producer group. */
  producer(group?: string | null): Producer;
  /** A transactional producer of `group`; `checker` answers the broker's check-backs about
   * the group's unresolved transactions (a throw counts as `unknown`). */
  transactionProducer(group: string, checker: TransactionDecider): Promise<TransactionProducer>;
  /** A member of `group` on `topic`. Nothing happens until `start()`. */
  pushConsumer(group: string, topic: string, options?: PushConsumerOptions): PushConsumer;
  /** A lease-based consumer of `topic` in `group`. */
  simpleConsumer(group: string, topic: string, options?: SimpleConsumerOptions): SimpleConsumer;
  /** Administration: topics, groups, offsets, dead letters, lookups. */
  admin(): Admin;
  /** Closes the push consumers made here (committing offsets), then the connection (an
   * embedded broker shuts down cleanly), and releases every callback. Idempotent. After it,
   * every call of the client and of what it made rejects with `ConnectionError`. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Publishes messages. A send that fails for a transient reason is retried twice before it
 * rejects. Emits `'error'` when a `sendOneway()` fails. */
export declare class Producer extends EventEmitter {
  private constructor();
  /** The producer group, or null. */
  readonly group: string | null;
  /** Publishes one message; resolves once it is stored (or scheduled, when delayed). */
  send(topic: string, body: Body, options?: SendOptions): Promise<SendResult>;
  /** Publishes a batch atomically (all stored, or none); results in order. */
  sendBatch(topic: string, messages: Array<Body | BatchMessage>): Promise<SendResult[]>;
  /** Publishes without waiting. A failure is emitted as `'error'` (with `topic` set) or,
   * without an `'error'` listener, as a process warning. Bad arguments throw at once. */
  sendOneway(topic: string, body: Body, options?: SendOptions): void;
  on(event: 'error', listener: (error: FerryError & { topic: string }) => void): this;
  once(event: 'error', listener: (error: FerryError & { topic: string }) => void): this;
}

/** A producer of transactional messages for one producer group. */
export declare class TransactionProducer {
  private constructor();
  readonly group: string;
  /** Sends `body` as a half message (invisible), runs `localTransaction` with it, and
   * commits or rolls back as it answers; resolves with the `transactionId`. On `unknown`
   * the checker decides at a check-back; when `localTransaction` throws, the transaction is
   * left unknown too and the error propagates. */
  sendInTransaction(
    topic: string,
    body: Body,
    localTransaction: TransactionDecider,
    options?: SendOptions,
  ): Promise<SendResult>;
  /** Ends a transaction explicitly. `NotFound` for an unknown id, `Conflict` once ended. */
  endTransaction(transactionId: string, status: 'commit' | 'rollback'): Promise<void>;
  /** Stops answering check-backs; open transactions wait for another producer of the group. */
  close(): void;
}

/** A queue a push consumer holds (the group's retry queue appears under `%RETRY%<group>`). */
export interface QueueRef {
  topic: string;
  queueId: number;
}

/** Options of `pushConsumer.recv()`. */
export interface RecvOptions {
  /** Give up after this many ms (resolving to null); default: wait until a message or close. */
  timeoutMs?: number;
}

/** A member of a consumer group on one topic. Nothing happens until `start()`; `close()`
 * leaves cleanly, committing offsets.
 *
 * Without a listener it is an async iterable: `for await (const m of consumer) { await
 * m.ack() }`; each message must be acked or nacked, and iteration ends when the consumer
 * (or its client) is closed. Breaking out of the loop does not close it. It fetches up to
 * 256 messages beyond `consumeWorkers` ahead of time; those not handed out when it closes,
 * and those handed out but not settled within the close, go back to the group untouched (not
 * counted as a reconsume). With a listener,
 * a listener's throw emits `'listenerError'` and nacks the message. The `onAssign` /
 * `onRevoke` options follow its share of the group's queues. */
export declare class PushConsumer extends EventEmitter implements AsyncIterable<Message> {
  private constructor();
  readonly group: string;
  readonly topic: string;
  /** This member's id in the group. */
  readonly clientId: string;
  /** The queues this member consumes now. */
  assignment(): QueueRef[];
  /** Joins the group and starts consuming; with `start: 'last'` it resolves once the queues it
   * took know where they start, so a message sent afterwards is consumed. `NotFound` for a
   * missing topic, `Conflict` when started twice. */
  start(): Promise<this>;
  /** The next message (no listener), or null on timeout or once closed. */
  recv(options?: RecvOptions): Promise<Message | null>;
  [Symbol.asyncIterator](): AsyncIterator<Message>;
  /** Leaves the group: stops pulling, waits for running listeners, commits, releases
   * orderly leases; ends iteration. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  on(event: 'listenerError', listener: (error: unknown, message: Message) => void): this;
  once(event: 'listenerError', listener: (error: unknown, message: Message) => void): this;
  /** An `onAssign` or `onRevoke` hook threw or rejected. */
  on(event: 'hookError', listener: (error: unknown, info: HookErrorInfo) => void): this;
  once(event: 'hookError', listener: (error: unknown, info: HookErrorInfo) => void): this;
}

/** A lease-based consumer (RocketMQ 5's simple consumer): `receive()` hands out messages
 * that stay invisible to the rest of the group; ack what was processed, nack what should
 * come back. */
export declare class SimpleConsumer {
  private constructor();
  readonly group: string;
  readonly topic: string;
  /** Receives up to `maxMessages`, long-polling up to `waitMs`. Never blocks the event loop. */
  receive(options?: ReceiveOptions): Promise<Message[]>;
  /** Acks a received message. `NotFound` for a receipt the broker does not hold; `Conflict`
   * when its lease expired or it was acked already. */
  ack(message: Message): Promise<void>;
  /** Gives a received message back (see `Message.nack`). */
  nack(message: Message, options?: NackOptions): Promise<void>;
  /** Sets the message's remaining invisibility and gives it a new receipt (the old one stops
   * working). `NotFound` when the lease is no longer held. */
  changeInvisibleDuration(message: Message, invisibleMs: number): Promise<void>;
  /** Leaves the group: held messages go back without counting a reconsume. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The offsets of one queue: `min` the lowest retained, `max` the next to be written. */
export interface QueueOffsets {
  queueId: number;
  min: number;
  max: number;
}

/** A topic; `queueOffsets` only from `admin.topic()`. */
export interface Topic {
  name: string;
  queues: number;
  perm: Perm;
  queueOffsets?: QueueOffsets[];
}

/** A subscription of a group: a tag `filter` or an `sql` filter. */
export interface Subscription {
  topic: string;
  filter: string | null;
  sql: string | null;
  mode: ConsumeMode;
}

/** A live member of a group. */
export interface Member {
  clientId: string;
  transport: 'ws' | 'rest' | 'native';
  /** When it joined, epoch ms. */
  since: number;
}

/** A group's progress on one queue: `lag = max - committed`. */
export interface GroupOffset {
  topic: string;
  queueId: number;
  committed: number;
  max: number;
  lag: number;
}

/** A consumer group: settings, subscriptions, members and offsets. */
export interface Group {
  group: string;
  maxReconsumeTimes: number;
  subscriptions: Subscription[];
  members: Member[];
  offsets: GroupOffset[];
}

/** Options of `admin.createTopic()`. */
export interface CreateTopicOptions {
  /** Number of queues (default 8). */
  queues?: number;
  /** Permission (default `rw`). */
  perm?: Perm;
}

/** Options of `admin.resetOffsets()`: a timestamp (inclusive) or `to`. */
export interface ResetOptions {
  timestamp?: number | Date;
  to?: 'earliest' | 'latest';
}

/** A queue's offset after a reset. */
export interface ResetOffset {
  queueId: number;
  offset: number;
}

/** Options of `admin.findMessages()`: each optional. */
export interface FindOptions {
  key?: string;
  /** Stored at or after (epoch ms or Date). */
  fromTs?: number | Date;
  /** Stored before (epoch ms or Date). */
  toTs?: number | Date;
  /** At most this many, oldest first (default 100, at most 1 000). */
  limit?: number;
}

/** Administration of the broker behind a client. */
export declare class Admin {
  private constructor();
  /** Creates a topic. `Conflict` if it exists; `InvalidArgument` for a bad or reserved name. */
  createTopic(name: string, options?: CreateTopicOptions): Promise<Topic>;
  /** Every topic. */
  topics(): Promise<Topic[]>;
  /** One topic with the offsets of its queues. `NotFound` if it does not exist. */
  topic(name: string): Promise<Topic>;
  /** Deletes a topic: its queues and every group's offsets on it. */
  deleteTopic(name: string): Promise<void>;
  /** A group. `NotFound` for a group never seen. */
  group(name: string): Promise<Group>;
  /** Creates a group, or sets its `maxReconsumeTimes`. */
  putGroup(name: string, options?: { maxReconsumeTimes?: number }): Promise<Group>;
  /** Moves the group's offsets on `topic`; applies at once. */
  resetOffsets(group: string, topic: string, options: ResetOptions): Promise<ResetOffset[]>;
  /** The group's dead letters, oldest first. */
  dlq(group: string): Promise<Message[]>;
  /** Moves a dead letter back to its topic (same `msgId`, `reconsumeTimes` 0). `NotFound`
   * if it is not in the group's dead-letter queue. */
  resendDlq(group: string, msgId: string): Promise<SendResult>;
  /** Messages of `topic` by key and/or store time, oldest first. */
  findMessages(topic: string, options?: FindOptions): Promise<Message[]>;
  /** One message by id: stored, scheduled or half. `NotFound` if unknown. */
  message(msgId: string): Promise<Message>;
}

/** Options of the error constructors. */
export interface FerryErrorOptions {
  code?: ErrorCode;
  field?: string | null;
  cause?: unknown;
}

/** Base class of every FerryMQ error. */
export declare class FerryError extends Error {
  constructor(message: string, options?: FerryErrorOptions);
  /** The contract's error kind, e.g. `not-found`. */
  readonly code: ErrorCode;
  /** `urn:ferrymq:error:<code>`, the REST problem type. */
  readonly type: string;
  /** For invalid arguments, the offending argument as a JSON Pointer (`/delayLevel`,
   * `/config/lease_ttl`), else null. */
  readonly field: string | null;
  /** Whether the same call may succeed if tried again (`unavailable`, `timeout`,
   * `connection`). */
  readonly retriable: boolean;
}

/** A bad argument: a wrong type, a malformed name, an out-of-range number, a filter that
 * does not parse (`invalid-filter`), a body over the size limit (`payload-too-large`). */
export declare class InvalidArgument extends FerryError {}
/** Something named does not exist: a topic, group, message, transaction or receipt. */
export declare class NotFound extends FerryError {}
/** The call conflicts with the current state: the topic exists, the message was settled,
 * the transaction ended, an idempotency key was reused (`idempotency-conflict`). */
export declare class Conflict extends FerryError {}
/** The call did not complete in time. */
export declare class Timeout extends FerryError {}
/** The server could not be reached or the connection broke. */
export declare class ConnectionError extends FerryError {}
/** Missing or invalid credentials. */
export declare class Unauthorized extends FerryError {}
/** The token, or the topic's permission, does not allow this. */
export declare class Forbidden extends FerryError {}
/** The broker is not available (starting, recovering, shutting down). */
export declare class Unavailable extends FerryError {}
/** The broker's disk is nearly full: writes are refused. */
export declare class InsufficientStorage extends FerryError {}
