// FerryMQ for Node.js: the public API over the native module (`ferrymq.node`, built from
// bindings/node/src by scripts/build.js).
//
// The native classes convert types and run every wait on Rust's runtime; this file gives
// them Node's idiom: Promises, `for await` over push consumers, EventEmitters for
// failures that have no caller to reject (one-way sends, listeners), and the FerryError
// classes. `fromNative` is the one place where the client's error kinds become classes.
// Types and documentation: index.d.ts.
'use strict';

const { EventEmitter } = require('node:events');
const path = require('node:path');

function loadNative() {
  const file = path.join(__dirname, 'ferrymq.node');
  try {
    return require(file);
  } catch (e) {
    const hint = 'the native module is missing or broken: run `npm run build` in ' + __dirname;
    throw new Error(`ferrymq: cannot load ${file}: ${e.message}\n${hint}`, { cause: e });
  }
}

const native = loadNative();
/** `await using` support where the runtime has it (Node 20.4+ defines the symbol). */
const asyncDispose = Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose');

// ---------------------------------------------------------------------------------------
// Errors

const PROBLEM = 'urn:ferrymq:error:';
/** Kinds for which trying the same call again may succeed. */
const RETRIABLE = new Set(['unavailable', 'timeout', 'connection']);

class FerryError extends Error {
  constructor(message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? new.target.defaultCode;
    this.type = PROBLEM + this.code;
    this.field = options.field ?? null;
  }

  get retriable() {
    return RETRIABLE.has(this.code);
  }
}
FerryError.defaultCode = 'internal';

function errorClass(name, code) {
  const cls = { [name]: class extends FerryError {} }[name];
  cls.defaultCode = code;
  return cls;
}

const InvalidArgument = errorClass('InvalidArgument', 'invalid-argument');
const NotFound = errorClass('NotFound', 'not-found');
const Conflict = errorClass('Conflict', 'conflict');
const Timeout = errorClass('Timeout', 'timeout');
const ConnectionError = errorClass('ConnectionError', 'connection');
const Unauthorized = errorClass('Unauthorized', 'unauthorized');
const Forbidden = errorClass('Forbidden', 'forbidden');
const Unavailable = errorClass('Unavailable', 'unavailable');
const InsufficientStorage = errorClass('InsufficientStorage', 'insufficient-storage');

const CLASSES = {
  'invalid-argument': InvalidArgument,
  'invalid-filter': InvalidArgument,
  'payload-too-large': InvalidArgument,
  'not-found': NotFound,
  conflict: Conflict,
  'idempotency-conflict': Conflict,
  timeout: Timeout,
  connection: ConnectionError,
  unauthorized: Unauthorized,
  forbidden: Forbidden,
  unavailable: Unavailable,
  'insufficient-storage': InsufficientStorage,
};

/** napi-rs's codes for an argument of the wrong JS type. */
const NAPI_TYPE_CODES = new Set([
  'InvalidArg',
  'ObjectExpected',
  'StringExpected',
  'NameExpected',
  'FunctionExpected',
  'NumberExpected',
  'BooleanExpected',
  'ArrayExpected',
  'BigintExpected',
]);

const MARK = '\u0001ferrymq\u0001';

/** The FerryError for an error thrown by the native module (other errors pass through). */
function fromNative(e) {
  if (e instanceof FerryError || !(e instanceof Error)) return e;
  if (e.message.startsWith(MARK)) {
    const [code, field, message] = e.message.slice(MARK.length).split('\u0001');
    const cls = CLASSES[code] ?? FerryError;
    return new cls(message, { code, field: field || null });
  }
  if (NAPI_TYPE_CODES.has(e.code)) return new InvalidArgument(e.message, { cause: e });
  return e;
}

async function call(promise) {
  try {
    return await promise;
  } catch (e) {
    throw fromNative(e);
  }
}

function sync(f) {
  try {
    return f();
  } catch (e) {
    throw fromNative(e);
  }
}

// ---------------------------------------------------------------------------------------
// Argument checks: wrong types are InvalidArgument, with the field as a JSON Pointer.

function typeName(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? (value.constructor?.name ?? 'an object') : typeof value;
}

function bad(field, expected, value) {
  return new InvalidArgument(`${field.slice(1) || 'value'} must be ${expected}, not ${typeName(value)}`, {
    field,
  });
}

function str(value, field) {
  if (typeof value !== 'string') throw bad(field, 'a string', value);
  return value;
}

function optStr(value, field) {
  return value === undefined || value === null ? undefined : str(value, field);
}

function optInt(value, field) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw bad(field, 'an integer', value);
  return value;
}

function optBool(value, field) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw bad(field, 'a boolean', value);
  return value;
}

function optFn(value, field) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'function') throw bad(field, 'a function', value);
  return value;
}

function options(value, field, known) {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw bad(field, 'an options object', value);
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new InvalidArgument(`unknown option ${JSON.stringify(key)}; expected one of ${known.join(', ')}`, {
        field: `${field}/${key}`,
      });
    }
  }
  return value;
}

function toBuffer(body, field) {
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  throw bad(field, 'a Buffer, Uint8Array or string', body);
}

function epochMs(value, field) {
  if (value instanceof Date) return value.getTime();
  return optInt(value, field);
}

const SEND_OPTIONS = ['tag', 'keys', 'properties', 'delayLevel', 'delayMs', 'deliverAt', 'shardingKey', 'idempotencyKey'];

/** The native form of a message to publish; `prefix` locates it in the call. */
function outgoing(body, opts, prefix) {
  const o = options(opts, prefix, SEND_OPTIONS);
  let keys;
  if (typeof o.keys === 'string') keys = [o.keys];
  else if (o.keys !== undefined && o.keys !== null) {
    if (!Array.isArray(o.keys)) throw bad(`${prefix}/keys`, 'a string or an array of strings', o.keys);
    keys = o.keys.map((k, i) => str(k, `${prefix}/keys/${i}`));
  }
  let properties;
  if (o.properties !== undefined && o.properties !== null) {
    if (typeof o.properties !== 'object' || Array.isArray(o.properties)) {
      throw bad(`${prefix}/properties`, 'an object of strings', o.properties);
    }
    properties = {};
    for (const [name, value] of Object.entries(o.properties)) {
      if (!['string', 'number', 'boolean'].includes(typeof value)) {
        throw bad(`${prefix}/properties/${name}`, 'a string, number or boolean', value);
      }
      properties[name] = String(value);
    }
  }
  return {
    body: toBuffer(body, `${prefix}/body`),
    tag: optStr(o.tag, `${prefix}/tag`),
    keys,
    properties,
    delayLevel: optInt(o.delayLevel, `${prefix}/delayLevel`),
    delayMs: optInt(o.delayMs, `${prefix}/delayMs`),
    deliverAt: epochMs(o.deliverAt, `${prefix}/deliverAt`),
    shardingKey: optStr(o.shardingKey, `${prefix}/shardingKey`),
    idempotencyKey: optStr(o.idempotencyKey, `${prefix}/idempotencyKey`),
  };
}

function sendResult(r) {
  const result = { msgId: r.msgId, queueId: r.queueId ?? null, queueOffset: r.queueOffset ?? null };
  if (r.transactionId !== undefined && r.transactionId !== null) result.transactionId = r.transactionId;
  return result;
}

// ---------------------------------------------------------------------------------------
// Messages

/** Verdicts on a push consumer's messages, as the native side reads them: consumed, failed,
 * or not started (the consumer closed before the message was handed to the application). */
const CONSUMED = 1;
const FAILED = 0;
const NOT_STARTED = 2;

/** How a message is settled: by nobody (looked up), its listener, a push delivery or a receipt. */
const LOOKED_UP = { kind: 'none' };
const LISTENER = { kind: 'listener' };

/** Decodes UTF-8 and refuses anything that is not. */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

class Message {
  /** How it is settled (a private field: cheaper to set than a non-enumerable property, and
   * as invisible to `Object.keys`, JSON and `assert.deepEqual`). */
  #settle;

  constructor(data, settle = LOOKED_UP) {
    this.msgId = data.msgId;
    this.topic = data.topic;
    this.queueId = data.queueId ?? null;
    this.queueOffset = data.queueOffset ?? null;
    this.commitOffset = data.commitOffset ?? null;
    this.body = data.body;
    this.tag = data.tag ?? null;
    this.keys = data.keys;
    this.properties = data.properties;
    this.bornTs = data.bornTs;
    this.storeTs = data.storeTs;
    this.reconsumeTimes = data.reconsumeTimes;
    this.receipt = data.receipt ?? null;
    this.state = data.state;
    this.#settle = settle;
  }

  /** The body as UTF-8 text; null when it is not valid UTF-8. */
  get text() {
    try {
      return STRICT_UTF8.decode(this.body);
    } catch {
      return null;
    }
  }

  /** The body in base64 (the contract's `body_base64`). */
  get bodyBase64() {
    return this.body.toString('base64');
  }

  async ack() {
    const settle = this.#settle;
    switch (settle.kind) {
      case 'push':
        return settle.consumer._settle(settle, CONSUMED);
      case 'simple':
        return settle.consumer.ack(this);
      default:
        throw this._unsettleable();
    }
  }

  async nack(opts) {
    const o = options(opts, '/options', ['delayMs']);
    const delayMs = optInt(o.delayMs, '/delayMs');
    const settle = this.#settle;
    switch (settle.kind) {
      case 'push':
        return settle.consumer._settle(settle, FAILED, delayMs);
      case 'simple':
        return settle.consumer.nack(this, { delayMs });
      default:
        throw this._unsettleable();
    }
  }

  _unsettleable() {
    if (this.#settle.kind === 'listener') {
      return new Conflict("a listener's message is settled by the listener: return to ack, throw to nack");
    }
    return new InvalidArgument('the message was not received for a group', { field: '/receipt' });
  }
}

/** The messages of a native batch: fields from its JSON (one array per message, the fields
 * in the order of `Meta` in src/message.rs), each body a view of its part of the batch's one
 * buffer. */
function unpack(batch) {
  const rows = JSON.parse(batch.meta);
  const bodies = batch.bodies;
  const messages = new Array(rows.length);
  let offset = 0;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    const end = offset + r[13];
    messages[i] = {
      msgId: r[0],
      topic: r[1],
      queueId: r[2],
      queueOffset: r[3],
      commitOffset: r[4],
      tag: r[5],
      keys: r[6],
      properties: r[7],
      bornTs: r[8],
      storeTs: r[9],
      reconsumeTimes: r[10],
      receipt: r[11],
      state: r[12],
      body: bodies.subarray(offset, end),
    };
    offset = end;
  }
  return messages;
}

// ---------------------------------------------------------------------------------------
// Producers

/** Sends in flight across every producer, and the timer that keeps the event loop alive
 * while there are any: the native side reports results through a weak thread-safe function
 * (an idle producer must not keep the process alive), so without it a process whose only
 * work is an awaited send could exit before the send's result arrived. */
let inFlight = 0;
let keepAlive = null;

function sendStarted() {
  if (inFlight++ === 0) {
    keepAlive ??= setInterval(() => {}, 2 ** 30);
    keepAlive.ref();
  }
}

function sendsFinished(count) {
  inFlight -= count;
  if (inFlight === 0) keepAlive.unref();
}

/** The producers with sends in flight, by their map of sends: `client.producer().send(...)`
 * keeps no producer, and a collected producer takes its native side, which would deliver the
 * results, with it (the send would never settle). Its callback reaches this map through its
 * own map of sends, never through the producer, so that an idle producer can be collected. */
const sending = new Map();

class Producer extends EventEmitter {
  constructor(nativeClient, groupName) {
    super();
    /** Resolve and reject of each send in flight, by id. */
    const waiting = new Map();
    this._waiting = waiting;
    this._nextId = 0;
    // Called on the JS thread with every send finished since its last call (one call for
    // many while the thread is busy): the results of a send, or its error.
    const onSent = (json) => {
      const finished = JSON.parse(json);
      for (const sent of finished) {
        const settle = waiting.get(sent.id);
        waiting.delete(sent.id);
        if (sent.err === undefined) settle.resolve(sent.ok);
        else settle.reject(fromNative(new Error(sent.err)));
      }
      if (waiting.size === 0) sending.delete(waiting);
      sendsFinished(finished.length);
    };
    this._native = nativeClient.producer(groupName, onSent);
  }

  get group() {
    return this._native.group ?? null;
  }

  /** Starts a send with `start(id)` (a native call that throws for bad input); resolves to
   * its results. */
  _start(start) {
    const id = this._nextId;
    this._nextId = (id + 1) >>> 0;
    sync(() => start(id));
    sendStarted();
    sending.set(this._waiting, this);
    return new Promise((resolve, reject) => this._waiting.set(id, { resolve, reject }));
  }

  async send(topic, body, opts) {
    str(topic, '/topic');
    if (opts === undefined || opts === null) {
      const buffer = toBuffer(body, '/body');
      const [result] = await this._start((id) => this._native.sendBody(topic, buffer, id));
      return result;
    }
    const message = outgoing(body, opts, '');
    const [result] = await this._start((id) => this._native.send(topic, message, id));
    return result;
  }

  async sendBatch(topic, messages) {
    str(topic, '/topic');
    if (!Array.isArray(messages)) throw bad('/messages', 'an array of bodies or message objects', messages);
    if (messages.every((entry) => Buffer.isBuffer(entry))) {
      return this._start((id) => this._native.sendBodies(topic, messages, id));
    }
    const specs = messages.map((entry, i) => {
      const prefix = `/messages/${i}`;
      if (entry !== null && typeof entry === 'object' && !(entry instanceof Uint8Array) && !(entry instanceof ArrayBuffer)) {
        const { body, ...rest } = entry;
        if (body === undefined) throw new InvalidArgument('a message needs a body', { field: `${prefix}/body` });
        return outgoing(body, rest, prefix);
      }
      return outgoing(entry, undefined, prefix);
    });
    return this._start((id) => this._native.sendBatch(topic, specs, id));
  }

  sendOneway(topic, body, opts) {
    str(topic, '/topic');
    const message = outgoing(body, opts, '');
    this._start((id) => this._native.send(topic, message, id)).catch((error) => {
      error.topic = topic;
      if (this.listenerCount('error') > 0) this.emit('error', error);
      else process.emitWarning(`ferrymq: a one-way send to ${topic} failed: ${error.message}`, 'FerryMQWarning');
    });
  }
}

const VERDICTS = ['commit', 'rollback', 'unknown'];

class TransactionProducer {
  constructor(nativeProducer) {
    this._native = nativeProducer;
  }

  get group() {
    return this._native.group;
  }

  async sendInTransaction(topic, body, localTransaction, opts) {
    str(topic, '/topic');
    if (typeof localTransaction !== 'function') throw bad('/localTransaction', 'a function', localTransaction);
    const message = outgoing(body, opts, '');
    let thrown;
    const decide = async (data) => {
      try {
        const verdict = await localTransaction(new Message(data));
        if (!VERDICTS.includes(verdict)) {
          throw new InvalidArgument(`the local transaction returned ${JSON.stringify(verdict)}, not commit, rollback or unknown`, {
            field: '/status',
          });
        }
        return verdict;
      } catch (e) {
        thrown = e;
        throw e;
      }
    };
    try {
      return sendResult(await this._native.sendInTransaction(topic, message, decide));
    } catch (e) {
      throw thrown ?? fromNative(e);
    }
  }

  async endTransaction(transactionId, status) {
    str(transactionId, '/transactionId');
    str(status, '/status');
    return call(this._native.endTransaction(transactionId, status));
  }

  close() {
    this._native.close();
  }
}

// ---------------------------------------------------------------------------------------
// Consumers

/** `consumeWorkers` when not given (as index.d.ts says). */
const DEFAULT_WORKERS = 16;

class PushConsumer extends EventEmitter {
  constructor(hasListener, workers) {
    super();
    this._native = null;
    this._hasListener = hasListener;
    /** `consumeWorkers`: the most listener calls running at once, or the most iterated
     * messages not yet acked or nacked (the native consumer hands over more, which wait on
     * the JS side). */
    this._workers = workers;
    this._closing = false;
    /** What `close()` does first on the JS side (give back the messages not started). */
    this._onClose = null;
    /** Without a listener: messages handed over by the native side, not yet to the
     * application, as [data, id]; those handed out and not yet settled; the ids acked since
     * the last report (reported together, once per tick); the `recv()` calls waiting for a
     * message or a free slot. */
    this._buffer = [];
    this._outstanding = 0;
    this._acks = [];
    this._waiters = [];
    this._flush = () => this._reportAcks();
  }

  get group() {
    return this._native.group;
  }

  get topic() {
    return this._native.topic;
  }

  get clientId() {
    return this._native.clientId;
  }

  assignment() {
    return this._native.assignment();
  }

  async start() {
    await call(this._native.start());
    return this;
  }

  async recv(opts) {
    const o = options(opts, '/options', ['timeoutMs']);
    const timeoutMs = optInt(o.timeoutMs, '/timeoutMs');
    if (this._hasListener) {
      throw new Conflict('this consumer has a listener: its messages go to the listener, not to recv()');
    }
    if (timeoutMs !== undefined && timeoutMs < 0) throw bad('/timeoutMs', 'a non-negative integer', timeoutMs);
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      if (this._closing) return null;
      if (this._buffer.length > 0 && this._outstanding < this._workers) {
        const [data, id] = this._buffer.shift();
        this._outstanding += 1;
        return new Message(data, { kind: 'push', consumer: this, id, settled: false });
      }
      const left = deadline - Date.now();
      if (left <= 0 || !(await this._wait(left))) return null;
    }
  }

  [Symbol.asyncIterator]() {
    return {
      next: async () => {
        const message = await this.recv();
        return message === null ? { value: undefined, done: true } : { value: message, done: false };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /** Resolves true when a message arrives, a slot frees up or the consumer closes; false
   * after `ms`. */
  _wait(ms) {
    return new Promise((resolve) => {
      const waiter = { resolve, timer: null };
      if (ms !== Infinity) {
        waiter.timer = setTimeout(() => {
          const at = this._waiters.indexOf(waiter);
          if (at >= 0) this._waiters.splice(at, 1);
          resolve(false);
        }, ms);
      }
      this._waiters.push(waiter);
    });
  }

  _wake() {
    if (this._waiters.length === 0) return;
    for (const waiter of this._waiters.splice(0)) {
      if (waiter.timer !== null) clearTimeout(waiter.timer);
      waiter.resolve(true);
    }
  }

  /** A batch from the native side (no listener): buffered for `recv()`. */
  _deliver(batch) {
    const first = batch.firstId;
    const messages = unpack(batch);
    if (this._closing) {
      this._reportRun(first, messages.length, NOT_STARTED);
      return;
    }
    for (let i = 0; i < messages.length; i++) this._buffer.push([messages[i], first + i]);
    this._wake();
  }

  /** An iterated message's ack or nack. Acks are reported together once per tick (the
   * loop `for await ... await m.ack()` acks a whole batch in one native call). */
  _settle(settle, verdict, delayMs) {
    if (settle.settled) throw new Conflict('the message was already acknowledged or nacked');
    if (delayMs !== undefined && delayMs < 0) throw new InvalidArgument('delayMs must not be negative', { field: '/delayMs' });
    settle.settled = true;
    this._outstanding -= 1;
    if (verdict === CONSUMED) {
      if (this._acks.push(settle.id) === 1) process.nextTick(this._flush);
    } else {
      this._reportAcks();
      sync(() => this._native.nack(settle.id, delayMs));
    }
    this._wake();
  }

  /** Reports the acks of this tick, one native call per run of consecutive ids. */
  _reportAcks() {
    const acks = this._acks;
    if (acks.length === 0) return;
    this._acks = [];
    acks.sort((a, b) => a - b);
    let start = 0;
    for (let i = 1; i <= acks.length; i++) {
      if (i === acks.length || acks[i] !== acks[i - 1] + 1) {
        this._reportRun(acks[start], i - start, CONSUMED);
        start = i;
      }
    }
  }

  _reportRun(first, count, verdict) {
    try {
      this._native.settleRun(first, count, verdict);
    } catch {
      // The consumer was collected or closed: the message was given back already.
    }
  }

  /** Stops handing out messages: those not handed out go back to the group untouched. */
  _stop() {
    this._closing = true;
    this._reportAcks();
    for (const [, id] of this._buffer.splice(0)) this._reportRun(id, 1, NOT_STARTED);
    if (this._onClose) this._onClose();
    this._wake();
  }

  async close() {
    this._client?._consumers.delete(this);
    // The native close stops the queues first; messages not started yet then go back to
    // the group untouched (reporting them before the queues stop would not matter either:
    // the client leaves them pending until their queue stops).
    const closed = call(this._native.close());
    this._stop();
    return closed;
  }

  async [asyncDispose]() {
    await this.close();
  }
}

class SimpleConsumer {
  constructor(nativeConsumer) {
    this._native = nativeConsumer;
  }

  get group() {
    return this._native.group;
  }

  get topic() {
    return this._native.topic;
  }

  async receive(opts) {
    const o = options(opts, '/options', ['maxMessages', 'waitMs', 'invisibleMs']);
    const max = optInt(o.maxMessages, '/maxMessages') ?? 16;
    const wait = optInt(o.waitMs, '/waitMs') ?? 0;
    const invisible = optInt(o.invisibleMs, '/invisibleMs') ?? 30000;
    const messages = unpack(await call(this._native.receive(max, wait, invisible)));
    const settle = { kind: 'simple', consumer: this };
    return messages.map((m) => new Message(m, settle));
  }

  _receiptOf(message) {
    if (!(message instanceof Message)) throw bad('/message', 'a Message', message);
    if (message.receipt === null) {
      throw new InvalidArgument('the message was not received for a group', { field: '/receipt' });
    }
    return message.receipt;
  }

  async ack(message) {
    return call(this._native.ack(this._receiptOf(message)));
  }

  async nack(message, opts) {
    const o = options(opts, '/options', ['delayMs']);
    return call(this._native.nack(this._receiptOf(message), optInt(o.delayMs, '/delayMs')));
  }

  async changeInvisibleDuration(message, invisibleMs) {
    const receipt = this._receiptOf(message);
    const ms = optInt(invisibleMs, '/invisibleMs');
    if (ms === undefined) throw bad('/invisibleMs', 'an integer', invisibleMs);
    message.receipt = await call(this._native.changeInvisibleDuration(receipt, ms));
  }

  async close() {
    return call(this._native.close());
  }

  async [asyncDispose]() {
    await this.close();
  }
}

// ---------------------------------------------------------------------------------------
// Admin

function topic(t) {
  const result = { name: t.name, queues: t.queues, perm: t.perm };
  if (t.queueOffsets) result.queueOffsets = t.queueOffsets;
  return result;
}

function group(g) {
  return {
    group: g.group,
    maxReconsumeTimes: g.maxReconsumeTimes,
    subscriptions: g.subscriptions.map((s) => ({
      topic: s.topic,
      filter: s.filter ?? null,
      sql: s.sql ?? null,
      mode: s.mode,
    })),
    members: g.members,
    offsets: g.offsets,
  };
}

class Admin {
  constructor(nativeAdmin) {
    this._native = nativeAdmin;
  }

  async createTopic(name, opts) {
    str(name, '/name');
    const o = options(opts, '/options', ['queues', 'perm']);
    const queues = optInt(o.queues, '/queues') ?? 8;
    const perm = optStr(o.perm, '/perm') ?? 'rw';
    return topic(await call(this._native.createTopic(name, queues, perm)));
  }

  async topics() {
    return (await call(this._native.topics())).map(topic);
  }

  async topic(name) {
    return topic(await call(this._native.topic(str(name, '/name'))));
  }

  async deleteTopic(name) {
    return call(this._native.deleteTopic(str(name, '/name')));
  }

  async group(name) {
    return group(await call(this._native.group(str(name, '/name'))));
  }

  async putGroup(name, opts) {
    str(name, '/name');
    const o = options(opts, '/options', ['maxReconsumeTimes']);
    return group(await call(this._native.putGroup(name, optInt(o.maxReconsumeTimes, '/maxReconsumeTimes'))));
  }

  async resetOffsets(groupName, topicName, opts) {
    str(groupName, '/group');
    str(topicName, '/topic');
    const o = options(opts, '/options', ['timestamp', 'to']);
    const timestamp = epochMs(o.timestamp, '/timestamp');
    return call(this._native.resetOffsets(groupName, topicName, timestamp, optStr(o.to, '/to')));
  }

  async dlq(groupName) {
    return (await call(this._native.dlq(str(groupName, '/group')))).map((m) => new Message(m));
  }

  async resendDlq(groupName, msgId) {
    str(groupName, '/group');
    str(msgId, '/msgId');
    return sendResult(await call(this._native.resendDlq(groupName, msgId)));
  }

  async findMessages(topicName, opts) {
    str(topicName, '/topic');
    const o = options(opts, '/options', ['key', 'fromTs', 'toTs', 'limit']);
    const found = await call(
      this._native.findMessages(
        topicName,
        optStr(o.key, '/key'),
        epochMs(o.fromTs, '/fromTs'),
        epochMs(o.toTs, '/toTs'),
        optInt(o.limit, '/limit'),
      ),
    );
    return found.map((m) => new Message(m));
  }

  async message(msgId) {
    return new Message(await call(this._native.message(str(msgId, '/msgId'))));
  }
}

// ---------------------------------------------------------------------------------------
// Client

/** A rebalance hook's throw: the consumer's `'hookError'` event, else a process warning. */
function reportHookError(consumer, hook, error, queues) {
  try {
    if (consumer.listenerCount('hookError') > 0) {
      consumer.emit('hookError', error, { hook, queues });
      return;
    }
  } catch (thrown) {
    error = thrown;
  }
  const reason = error instanceof Error ? error.message : String(error);
  process.emitWarning(`ferrymq: the ${hook} hook of a push consumer of ${consumer.group}/${consumer.topic} threw: ${reason}`, 'FerryMQWarning');
}

const CONNECT_OPTIONS = ['token', 'requestTimeoutMs', 'leaseTtlMs', 'orderlySuspendMs', 'maxReconsumeTimes', 'caFile'];
const PUSH_OPTIONS = [
  'filter',
  'sql',
  'mode',
  'orderly',
  'strategy',
  'listener',
  'start',
  'consumeWorkers',
  'rebalanceIntervalMs',
  'queueRooms',
  'onAssign',
  'onRevoke',
];

function configValue(value, field) {
  if (['string', 'number', 'boolean'].includes(typeof value)) return value;
  if (Array.isArray(value)) return value.map((v, i) => configValue(v, `${field}/${i}`));
  throw bad(field, 'a string, number, boolean or array', value);
}

class Client {
  constructor(nativeClient) {
    this._native = nativeClient;
    /** Push consumers not closed yet: closing the client stops them on the JS side first. */
    this._consumers = new Set();
  }

  static async connect(url, opts) {
    str(url, '/url');
    // `connect(url, token)`, the contract's positional form, or `connect(url, { token, ... })`.
    const o = typeof opts === 'string' ? { token: opts } : options(opts, '/options', CONNECT_OPTIONS);
    const connectOptions = {
      token: optStr(o.token, '/token'),
      requestTimeoutMs: optInt(o.requestTimeoutMs, '/requestTimeoutMs'),
      leaseTtlMs: optInt(o.leaseTtlMs, '/leaseTtlMs'),
      orderlySuspendMs: optInt(o.orderlySuspendMs, '/orderlySuspendMs'),
      maxReconsumeTimes: optInt(o.maxReconsumeTimes, '/maxReconsumeTimes'),
      caFile: optStr(o.caFile, '/caFile'),
    };
    return new Client(await call(native.NativeClient.connect(url, connectOptions)));
  }

  static async embedded(dir, opts) {
    str(dir, '/path');
    const o = options(opts, '/options', ['config']);
    let config;
    if (o.config !== undefined && o.config !== null) {
      if (typeof o.config !== 'object' || Array.isArray(o.config)) throw bad('/config', 'an object', o.config);
      config = {};
      for (const [key, value] of Object.entries(o.config)) config[key] = configValue(value, `/config/${key}`);
    }
    return new Client(await call(native.NativeClient.embedded(dir, config)));
  }

  get transport() {
    return this._native.transport;
  }

  producer(groupName) {
    return new Producer(this._native, optStr(groupName, '/group'));
  }

  async transactionProducer(groupName, checker) {
    str(groupName, '/group');
    if (typeof checker !== 'function') throw bad('/checker', 'a function', checker);
    const check = async (data) => String(await checker(new Message(data)));
    return new TransactionProducer(await call(this._native.transactionProducer(groupName, check)));
  }

  pushConsumer(groupName, topicName, opts) {
    str(groupName, '/group');
    str(topicName, '/topic');
    const o = options(opts, '/options', PUSH_OPTIONS);
    const listener = optFn(o.listener, '/listener');
    const onAssign = optFn(o.onAssign, '/onAssign');
    const onRevoke = optFn(o.onRevoke, '/onRevoke');
    let start;
    let startTimestamp;
    if (typeof o.start === 'number' || o.start instanceof Date) startTimestamp = epochMs(o.start, '/start');
    else start = optStr(o.start, '/start');
    let queueRooms;
    if (o.queueRooms !== undefined && o.queueRooms !== null) {
      queueRooms = {};
      for (const [queue, room] of Object.entries(o.queueRooms)) queueRooms[queue] = str(room, `/queueRooms/${queue}`);
    }
    const nativeOptions = {
      filter: optStr(o.filter, '/filter'),
      sql: optStr(o.sql, '/sql'),
      mode: optStr(o.mode, '/mode'),
      orderly: optBool(o.orderly, '/orderly'),
      strategy: optStr(o.strategy, '/strategy'),
      start,
      startTimestamp,
      consumeWorkers: optInt(o.consumeWorkers, '/consumeWorkers'),
      rebalanceIntervalMs: optInt(o.rebalanceIntervalMs, '/rebalanceIntervalMs'),
      queueRooms,
    };
    const consumer = new PushConsumer(listener !== undefined, nativeOptions.consumeWorkers ?? DEFAULT_WORKERS);
    let onMessages = (batch) => consumer._deliver(batch);
    if (listener) {
      // The native side hands over every message ready at once, numbered from
      // `batch.firstId`. The verdicts go back by number (1 consumed, 0 failed, 2 not
      // started because the consumer closed first, null for one reported later): those of
      // listeners that returned without a promise in one native call after the batch, each
      // later one as its promise settles. At most `consumeWorkers` promises are pending at
      // once; the messages beyond wait in `queued`. Never throws.
      const queued = [];
      let running = 0;
      const settle = (first, verdicts) => {
        try {
          consumer._native.settle(first, verdicts);
        } catch {
          // The consumer was collected or closed: the message was given back already.
        }
      };
      const report = (message, e) => {
        try {
          if (consumer.listenerCount('listenerError') > 0) consumer.emit('listenerError', e, message);
        } catch {
          // A 'listenerError' handler threw: the message is nacked all the same.
        }
      };
      const finished = (id, verdict) => {
        running -= 1;
        settle(id, [verdict]);
        while (queued.length > 0 && running < consumer._workers && !consumer._closing) {
          const [data, queuedId] = queued.shift();
          const now = run(data, queuedId);
          if (now !== null) settle(queuedId, [now]);
        }
      };
      // Runs the listener on one message: its verdict, or null when a promise reports it.
      const run = (data, id) => {
        const message = new Message(data, LISTENER);
        let result;
        try {
          result = listener(message);
        } catch (e) {
          report(message, e);
          return FAILED;
        }
        if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
          running += 1;
          Promise.resolve(result).then(
            () => finished(id, CONSUMED),
            (e) => {
              report(message, e);
              finished(id, FAILED);
            },
          );
          return null;
        }
        return CONSUMED;
      };
      onMessages = (batch) => {
        const first = batch.firstId;
        const messages = unpack(batch);
        const verdicts = new Array(messages.length);
        let consumed = 0;
        for (let i = 0; i < messages.length; i++) {
          if (consumer._closing) verdicts[i] = NOT_STARTED;
          else if (running >= consumer._workers) {
            queued.push([messages[i], first + i]);
            verdicts[i] = null;
          } else verdicts[i] = run(messages[i], first + i);
          if (verdicts[i] === CONSUMED) consumed += 1;
        }
        // Usually every listener returned: one verdict for all.
        if (consumed === messages.length) consumer._reportRun(first, consumed, CONSUMED);
        else settle(first, verdicts);
      };
      consumer._onClose = () => {
        for (const [, id] of queued.splice(0)) settle(id, [NOT_STARTED]);
      };
    }
    let onRebalance;
    if (onAssign || onRevoke) {
      // Revoked first: an application moving per-queue state sees the old share end before
      // the new one begins. Awaited, so a change is reported only after the previous one.
      onRebalance = async (change) => {
        for (const [hook, name, queues] of [
          [onRevoke, 'onRevoke', change.revoked],
          [onAssign, 'onAssign', change.assigned],
        ]) {
          if (!hook || queues.length === 0) continue;
          const copy = queues.map((q) => ({ topic: q.topic, queueId: q.queueId }));
          try {
            await hook(copy);
          } catch (e) {
            reportHookError(consumer, name, e, copy);
          }
        }
      };
    }
    consumer._native = sync(() =>
      this._native.pushConsumer(groupName, topicName, nativeOptions, onMessages, listener === undefined, onRebalance),
    );
    consumer._client = this;
    this._consumers.add(consumer);
    return consumer;
  }

  simpleConsumer(groupName, topicName, opts) {
    str(groupName, '/group');
    str(topicName, '/topic');
    const o = options(opts, '/options', ['filter', 'sql']);
    const filter = optStr(o.filter, '/filter');
    const sql = optStr(o.sql, '/sql');
    return new SimpleConsumer(sync(() => this._native.simpleConsumer(groupName, topicName, filter, sql)));
  }

  admin() {
    return new Admin(this._native.admin());
  }

  async close() {
    for (const consumer of this._consumers) consumer._stop();
    this._consumers.clear();
    return call(this._native.close());
  }

  async [asyncDispose]() {
    await this.close();
  }
}

module.exports = {
  Client,
  Producer,
  TransactionProducer,
  PushConsumer,
  SimpleConsumer,
  Admin,
  Message,
  FerryError,
  InvalidArgument,
  NotFound,
  Conflict,
  Timeout,
  ConnectionError,
  Unauthorized,
  Forbidden,
  Unavailable,
  InsufficientStorage,
};
