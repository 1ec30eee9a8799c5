// Delayed delivery: delay levels (the suite's levels are 100 ms, 200 ms, then 300 ms),
// delayMs and deliverAt. A delayed message is invisible at first, looked up as scheduled,
// and keeps its msgId when it arrives.
'use strict';

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { forEachTransport, uniq, drain } = require('./helpers');

forEachTransport((getClient) => {
  test('a delay level holds the message back, then delivers it with its id', async (t) => {
    const client = await getClient(t);
    const topic = uniq('delay');
    await client.admin().createTopic(topic, { queues: 2 });
    const consumer = client.simpleConsumer(uniq('g'), topic);
    // Level 18 is 300 ms in the suite's settings (too short to look it up while scheduled
    // on a busy machine: the next test does that with a longer delay).
    const sent = await client.producer().send(topic, 'later', { delayLevel: 18 });
    assert.equal(sent.queueId, null);
    assert.equal(sent.queueOffset, null);
    const [message] = await drain(consumer, 1);
    assert.equal(message.msgId, sent.msgId);
    assert.equal(message.text, 'later');
    assert.equal((await client.admin().message(sent.msgId)).state, 'stored');
  });

  test('delayMs and deliverAt (a number or a Date) deliver later; a past deliverAt at once', async (t) => {
    const client = await getClient(t);
    const topic = uniq('delayms');
    await client.admin().createTopic(topic, { queues: 2 });
    const consumer = client.simpleConsumer(uniq('g'), topic);
    const producer = client.producer();
    const a = await producer.send(topic, 'a', { delayMs: 3000 });
    const b = await producer.send(topic, 'b', { deliverAt: Date.now() + 3000 });
    const c = await producer.send(topic, 'c', { deliverAt: new Date(Date.now() + 3000) });
    for (const sent of [a, b, c]) {
      const scheduled = await client.admin().message(sent.msgId);
      assert.equal(scheduled.state, 'scheduled');
      assert.equal(scheduled.commitOffset, null);
    }
    const past = await producer.send(topic, 'now', { deliverAt: 1 });
    const [first] = await drain(consumer, 1);
    assert.equal(first.msgId, past.msgId);
    const later = await drain(consumer, 3);
    assert.deepEqual(later.map((m) => m.msgId).sort(), [a.msgId, b.msgId, c.msgId].sort());
  });
});
