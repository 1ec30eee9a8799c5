// Filters: tag expressions and SQL92 over properties, applied by the broker, for simple
// and push consumers; a filter that does not parse is an InvalidArgument.
'use strict';

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { ferrymq, forEachTransport, uniq, waitFor } = require('./helpers');

async function publishSample(client, topic) {
  const producer = client.producer();
  await producer.send(topic, 'a', { tag: 'TagA', properties: { region: 'eu', amount: 5 } });
  await producer.send(topic, 'b', { tag: 'TagB', properties: { region: 'us', amount: 50 } });
  await producer.send(topic, 'c', { tag: 'TagC', properties: { region: 'eu', amount: 500 } });
  await producer.send(topic, 'd', { properties: { amount: 7 } });
}

/** Receives until nothing more comes within a long poll, acking each. */
async function receiveAll(consumer) {
  const all = [];
  for (;;) {
    const batch = await consumer.receive({ maxMessages: 64, waitMs: 500 });
    if (batch.length === 0) return all;
    for (const m of batch) await m.ack();
    all.push(...batch);
  }
}

forEachTransport((getClient) => {
  test('a tag expression selects by tag', async (t) => {
    const client = await getClient(t);
    const topic = uniq('tags');
    await publishSample(client, topic);
    const consumer = client.simpleConsumer(uniq('g'), topic, { filter: 'TagA || TagC' });
    const texts = (await receiveAll(consumer)).map((m) => m.text).sort();
    assert.deepEqual(texts, ['a', 'c']);
  });

  test('an SQL92 filter selects by properties', async (t) => {
    const client = await getClient(t);
    const topic = uniq('sql');
    await publishSample(client, topic);
    const consumer = client.simpleConsumer(uniq('g'), topic, { sql: "region = 'eu' AND amount > 10" });
    assert.deepEqual((await receiveAll(consumer)).map((m) => m.text), ['c']);
    const missing = client.simpleConsumer(uniq('g'), topic, { sql: 'region IS NULL' });
    assert.deepEqual((await receiveAll(missing)).map((m) => m.text), ['d']);
  });

  test('a push consumer filters too', async (t) => {
    const client = await getClient(t);
    const topic = uniq('pushfilter');
    await publishSample(client, topic);
    const seen = [];
    const consumer = client.pushConsumer(uniq('g'), topic, {
      sql: 'amount BETWEEN 6 AND 100',
      listener: (m) => {
        seen.push(m.text);
      },
    });
    await consumer.start();
    await waitFor(() => seen.length >= 2, 15000, 'two matching messages');
    // The other two never come: publish a marker that matches and wait for it.
    await client.producer().send(topic, 'marker', { properties: { amount: 99 } });
    await waitFor(() => seen.includes('marker'), 15000, 'the marker');
    await consumer.close();
    assert.deepEqual(seen.sort(), ['b', 'd', 'marker']);
  });

  test('a filter that does not parse is an InvalidArgument of kind invalid-filter', async (t) => {
    const client = await getClient(t);
    const topic = uniq('badsql');
    await client.producer().send(topic, 'x');
    let error;
    try {
      const consumer = client.simpleConsumer(uniq('g'), topic, { sql: 'amount >>> 3 AND' });
      await consumer.receive();
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof ferrymq.InvalidArgument, `got ${error}`);
    assert.equal(error.code, 'invalid-filter');
    assert.equal(error.type, 'urn:ferrymq:error:invalid-filter');
    assert.equal(error.retriable, false);
    assert.throws(
      () => client.pushConsumer(uniq('g'), topic, { sql: 'NOT (' }),
      (e) => e instanceof ferrymq.InvalidArgument && e.code === 'invalid-filter',
    );
    assert.throws(
      () => client.simpleConsumer(uniq('g'), topic, { filter: 'TagA', sql: "a = 'b'" }),
      (e) => e instanceof ferrymq.InvalidArgument && e.field === '/sql',
    );
  });
});
