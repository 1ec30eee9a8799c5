// Replay and lookups: resetting a group's offsets to a timestamp (inclusive), to the
// earliest or to the latest message; finding messages by key and by store time.
'use strict';

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { ferrymq, forEachTransport, uniq, drain, sleep } = require('./helpers');

forEachTransport((getClient) => {
  test('a reset to a timestamp replays what was stored since', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    const group = uniq('g');
    await client.admin().createTopic(topic, { queues: 4 });
    const producer = client.producer();
    const old = new Set();
    for (let i = 0; i < 10; i++) old.add((await producer.send(topic, `old${i}`)).msgId);
    await sleep(50);
    const cut = Date.now();
    await sleep(50);
    const fresh = new Set();
    for (let i = 0; i < 10; i++) fresh.add((await producer.send(topic, `new${i}`)).msgId);
    const consumer = client.simpleConsumer(group, topic);
    assert.equal((await drain(consumer, 20)).length, 20);

    const offsets = await client.admin().resetOffsets(group, topic, { timestamp: cut });
    assert.deepEqual(offsets.map((o) => o.queueId).sort(), [0, 1, 2, 3]);
    const replayed = await drain(consumer, 10);
    assert.deepEqual(new Set(replayed.map((m) => m.msgId)), fresh);
    assert.ok(replayed.every((m) => m.storeTs >= cut));
    assert.deepEqual(await consumer.receive({ waitMs: 300 }), []);
  });

  test('a reset to earliest replays everything, to latest skips everything', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    const group = uniq('g');
    const producer = client.producer();
    const sent = new Set();
    for (let i = 0; i < 6; i++) sent.add((await producer.send(topic, `m${i}`)).msgId);
    const consumer = client.simpleConsumer(group, topic);
    await drain(consumer, 6);
    await client.admin().resetOffsets(group, topic, { to: 'earliest' });
    assert.deepEqual(new Set((await drain(consumer, 6)).map((m) => m.msgId)), sent);
    await client.admin().resetOffsets(group, topic, { to: 'earliest' });
    await client.admin().resetOffsets(group, topic, { to: 'latest' });
    assert.deepEqual(await consumer.receive({ waitMs: 300 }), []);
    const lag = (await client.admin().group(group)).offsets
      .filter((o) => o.topic === topic)
      .reduce((sum, o) => sum + o.lag, 0);
    assert.equal(lag, 0);
    await assert.rejects(
      client.admin().resetOffsets(group, topic, { to: 'yesterday' }),
      (e) => e instanceof ferrymq.InvalidArgument && e.field === '/to',
    );
  });

  test('messages are found by key, by store time, and by id', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    const producer = client.producer();
    const first = await producer.send(topic, 'one', { keys: ['order-1'] });
    await sleep(50);
    const cut = Date.now();
    await sleep(50);
    const second = await producer.send(topic, 'two', { keys: ['order-2', 'customer-9'] });
    const third = await producer.send(topic, 'three', { keys: 'order-1' });
    const admin = client.admin();
    const byKey = await admin.findMessages(topic, { key: 'order-1' });
    assert.deepEqual(byKey.map((m) => m.msgId), [first.msgId, third.msgId]);
    assert.ok(byKey.every((m) => m instanceof ferrymq.Message));
    assert.deepEqual((await admin.findMessages(topic, { key: 'customer-9' })).map((m) => m.text), ['two']);
    const since = await admin.findMessages(topic, { fromTs: cut });
    assert.deepEqual(since.map((m) => m.msgId), [second.msgId, third.msgId]);
    const before = await admin.findMessages(topic, { toTs: new Date(cut) });
    assert.deepEqual(before.map((m) => m.msgId), [first.msgId]);
    assert.equal((await admin.findMessages(topic, { limit: 1 })).length, 1);
    const looked = await admin.message(second.msgId);
    assert.equal(looked.text, 'two');
    assert.equal(looked.state, 'stored');
    await assert.rejects(looked.ack(), ferrymq.InvalidArgument);
  });
});
