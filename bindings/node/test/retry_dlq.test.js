// Failures: a listener that throws (or rejects) nacks, the message comes back with
// reconsumeTimes + 1, and after the group's maxReconsumeTimes it goes to the dead-letter
// queue, where it can be listed and re-sent.
'use strict';

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { ferrymq, forEachTransport, uniq, waitFor, drain } = require('./helpers');

forEachTransport((getClient) => {
  test('a listener that throws retries, then dead-letters; resend brings it back', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    const group = uniq('g');
    const admin = client.admin();
    await admin.putGroup(group, { maxReconsumeTimes: 2 });
    const producer = client.producer();
    const good = await producer.send(topic, 'good');
    const bad = await producer.send(topic, 'bad');
    const attempts = new Map();
    const failures = [];
    const consumer = client.pushConsumer(group, topic, {
      listener: async (message) => {
        attempts.set(message.msgId, [...(attempts.get(message.msgId) ?? []), message.reconsumeTimes]);
        if (message.text === 'bad') {
          // A rejection, the first times; a synchronous-style throw after.
          if (message.reconsumeTimes === 0) return Promise.reject(new Error('cannot handle this one'));
          throw new TypeError('still cannot');
        }
      },
    });
    consumer.on('listenerError', (error, message) => failures.push([error.message, message.msgId]));
    await consumer.start();
    const [dead] = await waitFor(async () => {
      const dlq = await admin.dlq(group);
      return dlq.length ? dlq : null;
    });
    await consumer.close();
    assert.equal(dead.msgId, bad.msgId);
    assert.equal(dead.topic, topic);
    assert.equal(dead.text, 'bad');
    assert.deepEqual(attempts.get(bad.msgId), [0, 1, 2]);
    assert.deepEqual(attempts.get(good.msgId), [0]);
    assert.deepEqual(failures, [
      ['cannot handle this one', bad.msgId],
      ['still cannot', bad.msgId],
      ['still cannot', bad.msgId],
    ]);

    const resent = await admin.resendDlq(group, bad.msgId);
    assert.equal(resent.msgId, bad.msgId);
    const simple = client.simpleConsumer(group, topic);
    const [back] = await drain(simple, 1);
    assert.equal(back.msgId, bad.msgId);
    assert.equal(back.reconsumeTimes, 0);
    assert.deepEqual(await admin.dlq(group), []);
    await assert.rejects(admin.resendDlq(group, bad.msgId), ferrymq.NotFound);
  });

  test('an iterated message that is nacked comes back counted', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    const sent = await client.producer().send(topic, 'again');
    const consumer = await client.pushConsumer(uniq('g'), topic).start();
    const first = await consumer.recv();
    await first.nack();
    await assert.rejects(first.ack(), ferrymq.Conflict);
    const second = await consumer.recv();
    await second.ack();
    await consumer.close();
    assert.equal(first.msgId, sent.msgId);
    assert.equal(second.msgId, sent.msgId);
    assert.equal(second.reconsumeTimes, 1);
  });

  test('a simple consumer nacks into the DLQ', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    const group = uniq('g');
    const admin = client.admin();
    await admin.putGroup(group, { maxReconsumeTimes: 1 });
    const sent = await client.producer().send(topic, 'poison');
    const consumer = client.simpleConsumer(group, topic);
    const counts = [];
    for (let i = 0; i < 2; i++) {
      const [message] = await waitFor(async () => {
        const batch = await consumer.receive({ waitMs: 200 });
        return batch.length ? batch : null;
      });
      counts.push(message.reconsumeTimes);
      await message.nack();
    }
    assert.deepEqual(counts, [0, 1]);
    const [dead] = await waitFor(async () => {
      const dlq = await admin.dlq(group);
      return dlq.length ? dlq : null;
    });
    assert.equal(dead.msgId, sent.msgId);
  });
});
