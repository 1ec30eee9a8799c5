// Publish and consume: every body type, attributes, batches, one-way sends, and the three
// ways to consume (simple receive/ack, push `for await`, push listener).
'use strict';

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { ferrymq, forEachTransport, uniq, drain, sleep, waitFor } = require('./helpers');

forEachTransport((getClient) => {
  test('a message sent with attributes comes back with them', async (t) => {
    const client = await getClient(t);
    const topic = uniq('orders');
    const producer = client.producer('p1');
    assert.equal(producer.group, 'p1');
    const sent = await producer.send(topic, 'hello', {
      tag: 'new',
      keys: ['order-1', 'customer-7'],
      properties: { region: 'eu', amount: 12 },
    });
    assert.equal(typeof sent.msgId, 'string');
    assert.equal(sent.queueOffset, 0);
    assert.equal(sent.transactionId, undefined);

    const consumer = client.simpleConsumer(uniq('g'), topic);
    const [message] = await drain(consumer, 1);
    assert.ok(message instanceof ferrymq.Message);
    assert.equal(message.msgId, sent.msgId);
    assert.equal(message.topic, topic);
    assert.equal(message.queueId, sent.queueId);
    assert.ok(Buffer.isBuffer(message.body));
    assert.equal(message.text, 'hello');
    assert.equal(message.tag, 'new');
    assert.deepEqual(message.keys, ['order-1', 'customer-7']);
    assert.deepEqual(message.properties, { region: 'eu', amount: '12' });
    assert.equal(message.reconsumeTimes, 0);
    assert.equal(message.state, 'stored');
    assert.equal(typeof message.receipt, 'string');
    assert.ok(message.storeTs >= message.bornTs - 1000);
  });

  test('bodies may be a Buffer, a Uint8Array or a string', async (t) => {
    const client = await getClient(t);
    const topic = uniq('bodies');
    const producer = client.producer();
    const bytes = Uint8Array.from([0, 1, 2, 255]);
    await producer.send(topic, Buffer.from([7, 8, 9]));
    await producer.send(topic, bytes.subarray(1));
    await producer.send(topic, 'héllo');
    const received = await drain(client.simpleConsumer(uniq('g'), topic), 3);
    const bodies = received.map((m) => m.body.toString('hex')).sort();
    assert.deepEqual(bodies, ['0102ff', '070809', Buffer.from('héllo').toString('hex')].sort());
    // Every field of the contract's message, `bodyBase64` too; `text` is null when the body is
    // not valid UTF-8 (as in Python and Kotlin).
    const byHex = Object.fromEntries(received.map((m) => [m.body.toString('hex'), m]));
    assert.equal(byHex['0102ff'].bodyBase64, 'AQL/');
    assert.equal(byHex['0102ff'].text, null);
    assert.equal(byHex['070809'].bodyBase64, 'BwgJ');
    assert.equal(byHex[Buffer.from('héllo').toString('hex')].text, 'héllo');
    assert.equal(byHex[Buffer.from('héllo').toString('hex')].bodyBase64, Buffer.from('héllo').toString('base64'));
  });

  test('a batch is stored whole, results in order', async (t) => {
    const client = await getClient(t);
    const topic = uniq('batch');
    const results = await client
      .producer()
      .sendBatch(topic, ['a', Buffer.from('b'), { body: 'c', tag: 'T', keys: 'k-c', shardingKey: 's' }]);
    assert.equal(results.length, 3);
    assert.equal(new Set(results.map((r) => r.msgId)).size, 3);
    const received = await drain(client.simpleConsumer(uniq('g'), topic), 3);
    const c = received.find((m) => m.text === 'c');
    assert.equal(c.tag, 'T');
    assert.deepEqual(c.keys, ['k-c']);
    assert.deepEqual(received.map((m) => m.text).sort(), ['a', 'b', 'c']);
  });

  test('concurrent sends each resolve to their own result, and a failing one rejects alone', async (t) => {
    const client = await getClient(t);
    const topic = uniq('many');
    const readonly = await client.admin().createTopic(uniq('ro'), { queues: 1, perm: 'r' });
    const producer = client.producer();
    // Started in one tick: their results come back together, in whatever order they finish.
    const bodies = Array.from({ length: 200 }, (_, i) => `m${i}`);
    const sends = bodies.map((body) => producer.send(topic, body, { keys: body }));
    const refused = producer.send(readonly.name, 'refused');
    const batch = producer.sendBatch(topic, ['b0', 'b1']);
    await assert.rejects(refused, (e) => e instanceof ferrymq.Forbidden && e.code === 'forbidden');
    const results = await Promise.all(sends);
    assert.equal(new Set(results.map((r) => r.msgId)).size, bodies.length);
    for (const i of [0, 57, 199]) {
      const stored = await client.admin().message(results[i].msgId);
      assert.equal(stored.text, bodies[i], `send ${i} resolved to its own message`);
      assert.equal(stored.queueOffset, results[i].queueOffset);
    }
    const [b0, b1] = await batch;
    assert.equal((await client.admin().message(b0.msgId)).text, 'b0');
    assert.equal((await client.admin().message(b1.msgId)).text, 'b1');
  });

  test('a one-way send arrives; its failure reaches the error event', async (t) => {
    const client = await getClient(t);
    const topic = uniq('oneway');
    const producer = client.producer();
    assert.equal(producer.sendOneway(topic, 'fire'), undefined);
    // A one-way send returns before it is stored, and its topic is created on that first
    // publish: wait for the topic before receiving from it.
    const deadline = Date.now() + 15000;
    while (!(await client.admin().topics()).some((info) => info.name === topic)) {
      assert.ok(Date.now() < deadline, `topic ${topic} never appeared`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const [message] = await drain(client.simpleConsumer(uniq('g'), topic), 1);
    assert.equal(message.text, 'fire');

    await client.admin().createTopic(uniq('readonly'), { queues: 1, perm: 'r' }).then(async (readonly) => {
      const failed = new Promise((resolve) => producer.once('error', resolve));
      producer.sendOneway(readonly.name, 'refused');
      const error = await failed;
      assert.ok(error instanceof ferrymq.Forbidden);
      assert.equal(error.code, 'forbidden');
      assert.equal(error.topic, readonly.name);
    });
  });

  test('a push consumer without a listener is an async iterable', async (t) => {
    const client = await getClient(t);
    const topic = uniq('iter');
    const producer = client.producer();
    for (let i = 0; i < 5; i++) await producer.send(topic, `m${i}`);
    const consumer = await client.pushConsumer(uniq('g'), topic).start();
    const seen = [];
    for await (const message of consumer) {
      seen.push(message.text);
      await message.ack();
      if (seen.length === 5) break;
    }
    assert.deepEqual(seen.sort(), ['m0', 'm1', 'm2', 'm3', 'm4']);
    await consumer.close();
    // Iteration ends once the consumer is closed.
    const after = [];
    for await (const message of consumer) after.push(message);
    assert.deepEqual(after, []);
  });

  test('every message iterated and acked is committed, and a second ack or a nack after it is refused', async (t) => {
    const client = await getClient(t);
    const topic = uniq('acks');
    const group = uniq('g');
    await client.admin().createTopic(topic, { queues: 2 });
    // More than one batch's worth, acked as the loop goes (acks of one tick go together).
    const count = 700;
    const producer = client.producer();
    for (let i = 0; i < count; i += 100) {
      await producer.sendBatch(topic, Array.from({ length: 100 }, (_, j) => `m${i + j}`));
    }
    const consumer = await client.pushConsumer(group, topic).start();
    const seen = new Set();
    let last;
    for await (const message of consumer) {
      await message.ack();
      seen.add(message.text);
      last = message;
      if (seen.size === count) break;
    }
    await assert.rejects(last.ack(), (e) => e instanceof ferrymq.Conflict);
    await assert.rejects(last.nack(), (e) => e instanceof ferrymq.Conflict);
    await consumer.close();
    const offsets = (await client.admin().group(group)).offsets.filter((o) => o.topic === topic);
    assert.equal(offsets.length, 2);
    for (const o of offsets) assert.equal(o.lag, 0, `queue ${o.queueId} fully committed`);
  });

  test('messages read ahead but never seen go back to the group untouched when the iterator closes', async (t) => {
    const client = await getClient(t);
    const topic = uniq('ahead');
    const group = uniq('g');
    await client.admin().createTopic(topic, { queues: 1 });
    const bodies = Array.from({ length: 20 }, (_, i) => `m${i}`);
    await client.producer().sendBatch(topic, bodies);
    const first = await client.pushConsumer(group, topic).start();
    // Not an assertion: time for deliveries to queue up, so that recv() reads ahead.
    await waitFor(() => first.assignment().length > 0);
    await sleep(500);
    const seen = await first.recv({ timeoutMs: 15000 });
    assert.ok(seen);
    await seen.ack();
    await first.close();

    // The rest come to the next member, none of them counted as a failed delivery. (The
    // acked one may come again: offsets commit below the lowest message not done.)
    const second = await client.pushConsumer(group, topic).start();
    t.after(() => second.close());
    const expected = bodies.filter((b) => b !== seen.text);
    const rest = new Map();
    while (!expected.every((b) => rest.has(b))) {
      const message = await second.recv({ timeoutMs: 15000 });
      assert.ok(message, `received ${rest.size} of ${expected.length}`);
      await message.ack();
      rest.set(message.text, message);
    }
    for (const body of expected) {
      const message = rest.get(body);
      assert.equal(message.reconsumeTimes, 0, `${body} was not counted as failed`);
      assert.equal(message.topic, topic, `${body} did not come back through the retry topic`);
    }
  });

  test('a push consumer with a listener acks on return, also when async', async (t) => {
    const client = await getClient(t);
    const topic = uniq('listen');
    const group = uniq('g');
    const seen = [];
    const consumer = client.pushConsumer(group, topic, {
      listener: async (message) => {
        await new Promise((resolve) => setImmediate(resolve));
        seen.push(message.text);
      },
    });
    await client.admin().createTopic(topic, { queues: 2 });
    await consumer.start();
    const producer = client.producer();
    for (let i = 0; i < 4; i++) await producer.send(topic, `m${i}`);
    await waitFor(() => seen.length >= 4, 15000, 'four messages');
    await consumer.close();
    assert.deepEqual([...seen].sort(), ['m0', 'm1', 'm2', 'm3']);
    // Acked: the group's committed offsets cover them.
    const offsets = (await client.admin().group(group)).offsets.filter((o) => o.topic === topic);
    assert.equal(offsets.reduce((sum, o) => sum + o.committed, 0), 4);
    assert.ok(offsets.every((o) => o.lag === 0));
  });

  test('an async listener runs at most consumeWorkers calls at once, and every message once', async (t) => {
    const client = await getClient(t);
    const topic = uniq('workers');
    await client.admin().createTopic(topic, { queues: 4 });
    const bodies = Array.from({ length: 30 }, (_, i) => `m${i}`);
    await client.producer().sendBatch(topic, bodies);
    let running = 0;
    let most = 0;
    const seen = [];
    const consumer = client.pushConsumer(uniq('g'), topic, {
      consumeWorkers: 3,
      listener: async (message) => {
        running += 1;
        most = Math.max(most, running);
        await sleep(5);
        seen.push(message.text);
        running -= 1;
      },
    });
    await consumer.start();
    await waitFor(() => seen.length >= bodies.length, 15000, 'every message');
    await consumer.close();
    assert.deepEqual([...seen].sort(), [...bodies].sort());
    assert.ok(most <= 3, `${most} listener calls ran at once`);
  });

  test('messages a listener has not started when its consumer closes go back untouched', async (t) => {
    const client = await getClient(t);
    const topic = uniq('unstarted');
    const group = uniq('g');
    await client.admin().createTopic(topic, { queues: 1 });
    const bodies = Array.from({ length: 20 }, (_, i) => `m${i}`);
    await client.producer().sendBatch(topic, bodies);
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    const started = [];
    const first = client.pushConsumer(group, topic, {
      consumeWorkers: 1,
      listener: async (message) => {
        started.push(message.text);
        await gate;
      },
    });
    await first.start();
    await waitFor(() => started.length === 1, 15000, 'the first call');
    const closed = first.close();
    release();
    await closed;
    assert.equal(started.length, 1, 'no call started after close()');

    // The others come to the next member, none of them counted as a failed delivery.
    const second = await client.pushConsumer(group, topic).start();
    t.after(() => second.close());
    const expected = bodies.filter((b) => b !== started[0]);
    const rest = new Map();
    while (!expected.every((b) => rest.has(b))) {
      const message = await second.recv({ timeoutMs: 15000 });
      assert.ok(message, `received ${rest.size} of ${expected.length}`);
      await message.ack();
      rest.set(message.text, message);
    }
    for (const body of expected) assert.equal(rest.get(body).reconsumeTimes, 0, `${body} was not counted as failed`);
  });

  test('an iterator hands out at most consumeWorkers messages not yet acked', async (t) => {
    const client = await getClient(t);
    const topic = uniq('window');
    await client.producer().sendBatch(topic, ['a', 'b', 'c', 'd']);
    const consumer = await client.pushConsumer(uniq('g'), topic, { consumeWorkers: 2 }).start();
    t.after(() => consumer.close());
    const one = await consumer.recv({ timeoutMs: 15000 });
    const two = await consumer.recv({ timeoutMs: 15000 });
    assert.ok(one && two);
    assert.equal(await consumer.recv({ timeoutMs: 300 }), null, 'a third before an ack');
    await one.ack();
    const three = await consumer.recv({ timeoutMs: 15000 });
    assert.ok(three, 'a third once one was acked');
    await two.nack({ delayMs: 100 });
    const four = await consumer.recv({ timeoutMs: 15000 });
    assert.ok(four, 'another once one was nacked');
    assert.equal(new Set([one, two, three, four].map((m) => m.text)).size, 4);
  });

  test('a listener message is settled by the listener, not by ack()', async (t) => {
    const client = await getClient(t);
    const topic = uniq('settle');
    let conflict = null;
    const consumer = client.pushConsumer(uniq('g'), topic, {
      listener: async (message) => {
        await message.ack().catch((e) => {
          conflict = e;
        });
      },
    });
    await client.producer().send(topic, 'x');
    await consumer.start();
    await waitFor(() => conflict, 15000, 'the ack to be refused');
    assert.ok(conflict instanceof ferrymq.Conflict);
  });

  test('a simple consumer nacks, and the message comes back counted', async (t) => {
    const client = await getClient(t);
    const topic = uniq('nack');
    await client.producer().send(topic, 'again');
    const consumer = client.simpleConsumer(uniq('g'), topic);
    const [first] = await waitFor(async () => {
      const batch = await consumer.receive({ waitMs: 500 });
      return batch.length ? batch : null;
    });
    await consumer.nack(first, { delayMs: 100 });
    const [second] = await drain(consumer, 1);
    assert.equal(second.msgId, first.msgId);
    assert.equal(second.reconsumeTimes, 1);
    await assert.rejects(first.ack(), ferrymq.FerryError);
  });

  test('changeInvisibleDuration gives a new receipt; the old one stops working', async (t) => {
    const client = await getClient(t);
    const topic = uniq('invisible');
    await client.producer().send(topic, 'lease');
    const consumer = client.simpleConsumer(uniq('g'), topic);
    const [message] = await waitFor(async () => {
      const batch = await consumer.receive({ waitMs: 500, invisibleMs: 5000 });
      return batch.length ? batch : null;
    });
    const old = message.receipt;
    await consumer.changeInvisibleDuration(message, 10000);
    assert.notEqual(message.receipt, old);
    await message.ack();
    await assert.rejects(consumer.ack(message), ferrymq.Conflict);
  });
});
