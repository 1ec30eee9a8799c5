// Bad input and failures surface as FerryError subclasses with the contract's kind as
// `code`: wrong argument types, unknown options and values, missing topics, conflicts, an
// unreachable server, and tokens the server refuses.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const { ferrymq, forEachTransport, uniq, startServer, tempDir } = require('./helpers');

const { FerryError, InvalidArgument, NotFound, Conflict, ConnectionError, Unauthorized, Forbidden } = ferrymq;

/** A predicate for assert.throws/rejects: an error of `cls` with this code (and field). */
function is(cls, code, field) {
  return (e) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e && e.stack}`);
    assert.ok(e instanceof FerryError && e instanceof Error);
    assert.equal(e.code, code);
    assert.equal(e.type, `urn:ferrymq:error:${code}`);
    if (field !== undefined) assert.equal(e.field, field);
    return true;
  };
}

forEachTransport((getClient) => {
  test('a closed client refuses every call with ConnectionError', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    const admin = client.admin();
    await admin.createTopic(topic, { queues: 1 });
    const producer = client.producer();
    await producer.send(topic, 'kept');
    const consumer = client.simpleConsumer(uniq('g'), topic);
    await client.close();
    const closed = (e) => is(ConnectionError, 'connection')(e) && /closed/.test(e.message);
    await assert.rejects(producer.send(topic, 'late'), closed, 'send');
    await assert.rejects(producer.sendBatch(topic, ['late']), closed, 'sendBatch');
    await assert.rejects(consumer.receive({ maxMessages: 16 }), closed, 'receive');
    await assert.rejects(admin.topics(), closed, 'topics');
    await assert.rejects(admin.createTopic(uniq('t')), closed, 'createTopic');
    await assert.rejects(admin.findMessages(topic), closed, 'findMessages');
    await assert.rejects(client.admin().topics(), closed, 'a new admin');
    await client.close();
  });

  test('arguments of the wrong type are InvalidArgument naming the field', async (t) => {
    const client = await getClient(t);
    const producer = client.producer();
    await assert.rejects(producer.send(42, 'x'), is(InvalidArgument, 'invalid-argument', '/topic'));
    await assert.rejects(producer.send('t', 42), is(InvalidArgument, 'invalid-argument', '/body'));
    await assert.rejects(producer.send('t', 'x', { delayLevel: '1' }), is(InvalidArgument, 'invalid-argument', '/delayLevel'));
    await assert.rejects(producer.send('t', 'x', { colour: 'red' }), is(InvalidArgument, 'invalid-argument', '/colour'));
    await assert.rejects(producer.send('t', 'x', { keys: [1] }), is(InvalidArgument, 'invalid-argument', '/keys/0'));
    await assert.rejects(
      producer.sendBatch('t', ['ok', { tag: 'no body' }]),
      is(InvalidArgument, 'invalid-argument', '/messages/1/body'),
    );
    await assert.rejects(
      producer.send('t', 'x', { delayMs: 100, deliverAt: Date.now() }),
      is(InvalidArgument, 'invalid-argument'),
    );
    assert.throws(() => producer.sendOneway('t', null), is(InvalidArgument, 'invalid-argument', '/body'));
    assert.throws(() => client.pushConsumer('g', 't', { mode: 'bogus' }), is(InvalidArgument, 'invalid-argument', '/mode'));
    assert.throws(() => client.pushConsumer('g', 't', { strategy: 'random' }), is(InvalidArgument, 'invalid-argument'));
    assert.throws(() => client.pushConsumer('g', 't', { listener: 'no' }), is(InvalidArgument, 'invalid-argument', '/listener'));
    assert.throws(() => client.pushConsumer('g', 't', { start: 'yesterday' }), is(InvalidArgument, 'invalid-argument', '/start'));
    const simple = client.simpleConsumer(uniq('g'), uniq('t'));
    await assert.rejects(simple.receive({ maxMessages: 0 }), is(InvalidArgument, 'invalid-argument', '/maxMessages'));
    await assert.rejects(simple.receive({ waitMs: 1.5 }), is(InvalidArgument, 'invalid-argument', '/waitMs'));
    await assert.rejects(client.transactionProducer('pg', 'commit'), is(InvalidArgument, 'invalid-argument', '/checker'));
  });

  test('bad names and a reserved topic are InvalidArgument; an existing topic is a Conflict', async (t) => {
    const client = await getClient(t);
    const admin = client.admin();
    await assert.rejects(admin.createTopic('no spaces'), is(InvalidArgument, 'invalid-argument'));
    await assert.rejects(admin.createTopic('RMQ_SYS_MINE'), is(InvalidArgument, 'invalid-argument'));
    await assert.rejects(admin.createTopic('t', { perm: 'x' }), is(InvalidArgument, 'invalid-argument'));
    const topic = uniq('t');
    await admin.createTopic(topic, { queues: 2 });
    const conflict = await admin.createTopic(topic).catch((e) => e);
    is(Conflict, 'conflict')(conflict);
    assert.equal(conflict.retriable, false);
  });

  test('an unknown topic, group or message is NotFound', async (t) => {
    const client = await getClient(t);
    const admin = client.admin();
    await assert.rejects(admin.topic(uniq('missing')), is(NotFound, 'not-found'));
    await assert.rejects(admin.group(uniq('never-seen')), is(NotFound, 'not-found'));
    await assert.rejects(admin.message('0123456789ABCDEF0123456789ABCDEF'), is(NotFound, 'not-found'));
    const consumer = client.pushConsumer(uniq('g'), uniq('missing'));
    await assert.rejects(consumer.start(), is(NotFound, 'not-found'));
    await assert.rejects(client.simpleConsumer(uniq('g'), uniq('missing')).receive(), is(NotFound, 'not-found'));
  });

  test('a push consumer started twice is a Conflict; one with a listener cannot be iterated', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    await client.admin().createTopic(topic, { queues: 1 });
    const consumer = await client.pushConsumer(uniq('g'), topic).start();
    await assert.rejects(consumer.start(), is(Conflict, 'conflict'));
    await consumer.close();
    const listening = client.pushConsumer(uniq('g'), topic, { listener: () => {} });
    await assert.rejects(listening.recv(), is(Conflict, 'conflict'));
  });
});

describe('connections', () => {
  test('a server that is not there is a retriable ConnectionError', async () => {
    const error = await ferrymq.Client.connect('http://127.0.0.1:9').catch((e) => e);
    is(ConnectionError, 'connection')(error);
    assert.equal(error.retriable, true);
  });

  test('a bad embedded config key is an InvalidArgument naming it', async (t) => {
    const dir = tempDir(t);
    await assert.rejects(
      ferrymq.Client.embedded(path.join(dir, 'a'), { config: { delay_levelz: '1s' } }),
      is(InvalidArgument, 'invalid-argument', '/config/delay_levelz'),
    );
    await assert.rejects(
      ferrymq.Client.embedded(path.join(dir, 'b'), { config: { auth_file: 'auth.toml' } }),
      is(InvalidArgument, 'invalid-argument', '/config/auth_file'),
    );
    await assert.rejects(
      ferrymq.Client.embedded(path.join(dir, 'c'), { config: { lease_ttl: 5 } }),
      is(InvalidArgument, 'invalid-argument', '/config/lease_ttl'),
    );
    await assert.rejects(
      ferrymq.Client.embedded(path.join(dir, 'd'), { config: { lease_ttl: { s: 5 } } }),
      is(InvalidArgument, 'invalid-argument', '/config/lease_ttl'),
    );
  });
});

const AUTH = `
[[tokens]]
token = "admin-secret"
topics = ["*"]
groups = ["*"]
actions = ["publish", "consume", "admin"]

[[tokens]]
token = "reader-secret"
topics = ["public-*"]
groups = ["*"]
actions = ["consume"]
`;

describe('a server with an auth_file', () => {
  let server;
  let authDir;
  before(async () => {
    authDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'ferrymq-node-auth-'));
    fs.writeFileSync(path.join(authDir, 'auth.toml'), AUTH);
    server = await startServer({ auth_file: path.join(authDir, 'auth.toml') });
  });
  after(async () => {
    await server.stop();
    fs.rmSync(authDir, { recursive: true, force: true });
  });

  test('no or a wrong token is Unauthorized; a token outside its grant is Forbidden', async () => {
    const anonymous = await ferrymq.Client.connect(server.url).then(
      (client) => client.producer().send('public-news', 'x').finally(() => client.close()),
    ).catch((e) => e);
    is(Unauthorized, 'unauthorized')(anonymous);
    const wrong = await ferrymq.Client.connect(server.url, { token: 'wrong' })
      .then((client) => client.admin().topics().finally(() => client.close()))
      .catch((e) => e);
    is(Unauthorized, 'unauthorized')(wrong);

    const admin = await ferrymq.Client.connect(server.url, { token: 'admin-secret' });
    await admin.producer().send('public-news', 'hello');
    await admin.close();

    // The contract's positional form, `connect(url, token)`, too.
    const reader = await ferrymq.Client.connect(server.url, 'reader-secret');
    try {
      const [message] = await reader.simpleConsumer('readers', 'public-news').receive({ waitMs: 2000 });
      assert.equal(message.text, 'hello');
      await assert.rejects(reader.producer().send('public-news', 'not allowed'), is(Forbidden, 'forbidden'));
    } finally {
      await reader.close();
    }
  });
});
