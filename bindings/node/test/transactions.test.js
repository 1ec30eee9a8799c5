// Transactions: a half message is invisible until the local transaction commits; rollback
// discards it; 'unknown' (or a local transaction that throws) leaves it to the checker at a
// check-back (the suite's broker checks after 1 s, every 1 s). Both callbacks may be async.
'use strict';

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { ferrymq, forEachTransport, uniq, drain } = require('./helpers');

forEachTransport((getClient) => {
  test('an async local transaction that commits makes the message visible', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    await client.admin().createTopic(topic, { queues: 2 });
    const consumer = client.simpleConsumer(uniq('g'), topic);
    const halves = [];
    const producer = await client.transactionProducer(uniq('pg'), () => 'unknown');
    const sent = await producer.sendInTransaction(
      topic,
      'paid',
      async (half) => {
        halves.push(half);
        assert.deepEqual(await consumer.receive({ waitMs: 0 }), [], 'a half message is invisible');
        return 'commit';
      },
      { tag: 'order', keys: ['o-1'] },
    );
    producer.close();
    assert.equal(typeof sent.transactionId, 'string');
    assert.equal(sent.queueId, null);
    assert.equal(halves[0].msgId, sent.msgId);
    assert.equal(halves[0].state, 'half');
    assert.equal(halves[0].text, 'paid');
    const [message] = await drain(consumer, 1);
    assert.equal(message.msgId, sent.msgId);
    assert.equal(message.tag, 'order');
  });

  test('rollback discards the message', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    await client.admin().createTopic(topic, { queues: 2 });
    const producer = await client.transactionProducer(uniq('pg'), () => 'commit');
    const rolled = await producer.sendInTransaction(topic, 'cancelled', () => 'rollback');
    const visible = await client.producer().send(topic, 'after');
    const consumer = client.simpleConsumer(uniq('g'), topic);
    const [message] = await drain(consumer, 1);
    assert.equal(message.msgId, visible.msgId);
    // Past the check-back time the rolled-back message still never shows.
    assert.deepEqual(await consumer.receive({ waitMs: 2500 }), []);
    await assert.rejects(producer.endTransaction(rolled.transactionId, 'commit'), ferrymq.FerryError);
    producer.close();
  });

  test('unknown is decided by an async checker at the check-back', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    await client.admin().createTopic(topic, { queues: 2 });
    const checked = [];
    const producer = await client.transactionProducer(uniq('pg'), async (half) => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      checked.push(half.msgId);
      return 'commit';
    });
    const sent = await producer.sendInTransaction(topic, 'maybe', async () => 'unknown');
    const consumer = client.simpleConsumer(uniq('g'), topic);
    const [message] = await drain(consumer, 1);
    assert.equal(message.msgId, sent.msgId);
    assert.ok(checked.includes(sent.msgId), 'the broker checked back');
    producer.close();
  });

  test('a local transaction that throws rejects with its error; a throwing checker counts as unknown', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    await client.admin().createTopic(topic, { queues: 2 });
    let checks = 0;
    const producer = await client.transactionProducer(uniq('pg'), async () => {
      checks += 1;
      if (checks === 1) throw new Error('the database is down');
      return 'commit';
    });
    const failure = new RangeError('local transaction failed');
    await assert.rejects(
      producer.sendInTransaction(topic, 'risky', async () => {
        throw failure;
      }),
      (e) => e === failure,
    );
    const [message] = await drain(client.simpleConsumer(uniq('g'), topic), 1);
    assert.equal(message.text, 'risky');
    assert.ok(checks >= 2, 'the first check failed, a later one committed');
    await assert.rejects(
      producer.sendInTransaction(topic, 'x', () => 'maybe'),
      (e) => e instanceof ferrymq.InvalidArgument && e.field === '/status',
    );
    producer.close();
  });

  test('endTransaction ends a transaction explicitly', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    await client.admin().createTopic(topic, { queues: 2 });
    const producer = await client.transactionProducer(uniq('pg'), () => 'unknown');
    const sent = await producer.sendInTransaction(topic, 'later', () => 'unknown');
    await producer.endTransaction(sent.transactionId, 'commit');
    const [message] = await drain(client.simpleConsumer(uniq('g'), topic), 1);
    assert.equal(message.msgId, sent.msgId);
    await assert.rejects(producer.endTransaction(sent.transactionId, 'rollback'), ferrymq.Conflict);
    await assert.rejects(producer.endTransaction('no-such-transaction', 'commit'), ferrymq.FerryError);
    producer.close();
  });
});
