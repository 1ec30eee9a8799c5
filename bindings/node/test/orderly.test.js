// Ordered consumption: messages with one sharding key land in one queue, and an orderly push
// consumer hands them over one at a time in queue order, even when one fails and is retried
// in place.
'use strict';

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { forEachTransport, uniq, waitFor } = require('./helpers');

const KEYS = ['alice', 'bob', 'carol', 'dave', 'erin'];
const PER_KEY = 20;

async function publish(client, topic) {
  const producer = client.producer();
  for (let seq = 0; seq < PER_KEY; seq++) {
    for (const key of KEYS) await producer.send(topic, `${key}:${seq}`, { shardingKey: key });
  }
}

forEachTransport((getClient) => {
  test('one sharding key, one queue', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    const producer = client.producer();
    const queues = new Set();
    for (let i = 0; i < 10; i++) queues.add((await producer.send(topic, 'x', { shardingKey: 'same' })).queueId);
    assert.equal(queues.size, 1);
  });

  test('an orderly async listener sees each key in order, one message per queue at a time', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    await publish(client, topic);
    const seen = new Map();
    const inFlight = new Map();
    const overlaps = [];
    let failedOnce = false;
    const consumer = client.pushConsumer(uniq('g'), topic, {
      orderly: true,
      listener: async (message) => {
        const [key, seq] = message.text.split(':');
        const queue = `${message.topic}/${message.queueId}`;
        inFlight.set(queue, (inFlight.get(queue) ?? 0) + 1);
        if (inFlight.get(queue) !== 1) overlaps.push(queue);
        try {
          await new Promise((resolve) => setTimeout(resolve, 1));
          if (key === 'carol' && seq === '5' && !failedOnce) {
            failedOnce = true;
            throw new Error('fail once: retried in place, nothing skipped');
          }
          seen.set(key, [...(seen.get(key) ?? []), Number(seq)]);
        } finally {
          inFlight.set(queue, inFlight.get(queue) - 1);
        }
      },
    });
    await consumer.start();
    const total = () => [...seen.values()].reduce((n, v) => n + v.length, 0);
    await waitFor(() => total() >= PER_KEY * KEYS.length, 30000, 'every message');
    await consumer.close();
    assert.ok(failedOnce);
    assert.deepEqual(overlaps, [], 'one message at a time per queue');
    const expected = Array.from({ length: PER_KEY }, (_, i) => i);
    for (const key of KEYS) assert.deepEqual(seen.get(key), expected, key);
  });

  test('an orderly consumer iterated with for await sees each key in order', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    await publish(client, topic);
    const seen = new Map();
    let count = 0;
    const consumer = await client.pushConsumer(uniq('g'), topic, { orderly: true }).start();
    for await (const message of consumer) {
      const [key, seq] = message.text.split(':');
      seen.set(key, [...(seen.get(key) ?? []), Number(seq)]);
      await message.ack();
      if (++count === PER_KEY * KEYS.length) break;
    }
    await consumer.close();
    const expected = Array.from({ length: PER_KEY }, (_, i) => i);
    for (const key of KEYS) assert.deepEqual(seen.get(key), expected, key);
  });
});
