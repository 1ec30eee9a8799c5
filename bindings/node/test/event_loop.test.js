// The event loop stays free while the SDK waits: a timer keeps firing during a long-poll
// receive, while a push consumer's iterator waits for messages, and while a listener
// consumer idles. Each wait is on Rust's runtime, never on the JS thread.
'use strict';

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { forEachTransport, uniq, waitFor } = require('./helpers');

/** Counts timer ticks (every 10 ms) while `wait` is pending; the count once it settles. */
async function ticksDuring(wait) {
  let ticks = 0;
  const timer = setInterval(() => {
    ticks += 1;
  }, 10);
  try {
    await wait;
    return ticks;
  } finally {
    clearInterval(timer);
  }
}

forEachTransport((getClient) => {
  test('a timer keeps ticking during a long-poll receive, which then gets the message', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    await client.admin().createTopic(topic, { queues: 1 });
    const consumer = client.simpleConsumer(uniq('g'), topic);
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 10);
    const receiving = consumer.receive({ waitMs: 20000 });
    // The send happens on a timer callback: if the receive held the JS thread, it never would
    // and the receive would come back empty after its 20 s wait.
    await waitFor(() => ticks >= 20, 15000, 'twenty ticks');
    await client.producer().send(topic, 'wake up');
    const messages = await receiving;
    clearInterval(timer);
    assert.equal(messages.length, 1);
    assert.equal(messages[0].text, 'wake up');
    await messages[0].ack();
  });

  test('a timer keeps ticking while an empty receive long-polls to its end', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    await client.admin().createTopic(topic, { queues: 1 });
    const consumer = client.simpleConsumer(uniq('g'), topic);
    const ticks = await ticksDuring(consumer.receive({ waitMs: 1000 }));
    assert.ok(ticks >= 3, `only ${ticks} ticks during a 1 s long poll`);
  });

  test('a timer keeps ticking while a push consumer waits for messages', async (t) => {
    const client = await getClient(t);
    const topic = uniq('t');
    await client.admin().createTopic(topic, { queues: 2 });
    const consumer = await client.pushConsumer(uniq('g'), topic).start();
    const iterator = consumer[Symbol.asyncIterator]();
    const next = iterator.next();
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 10);
    await waitFor(() => ticks >= 20, 15000, 'twenty ticks');
    await client.producer().send(topic, 'arrives');
    const { value } = await next;
    clearInterval(timer);
    assert.equal(value.text, 'arrives');
    await value.ack();
    await consumer.close();
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
  });
});
