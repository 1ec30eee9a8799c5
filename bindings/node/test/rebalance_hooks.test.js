// Rebalance hooks: `onAssign` / `onRevoke` follow a push consumer's share of the group's
// queues as members join and leave, run on the JS thread, and a hook that throws is reported
// (the `'hookError'` event, else a process warning) without stopping the consumer.
'use strict';

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { embedded, uniq, waitFor } = require('./helpers');

const QUEUES = 4;
const ALL = [...Array(QUEUES).keys()];

/** Hooks that replay the changes into `held` (queue ids of `topic`), recording problems. */
function tracker(topic) {
  const state = { held: new Set(), revoked: [], assigns: 0, problems: [] };
  const ids = (queues) => {
    for (const q of queues) {
      if (typeof q.topic !== 'string' || !Number.isInteger(q.queueId)) state.problems.push(`bad queue ${JSON.stringify(q)}`);
    }
    return queues.filter((q) => q.topic === topic).map((q) => q.queueId);
  };
  state.onAssign = (queues) => {
    state.assigns += 1;
    for (const id of ids(queues)) {
      if (state.held.has(id)) state.problems.push(`queue ${id} assigned twice`);
      state.held.add(id);
    }
  };
  state.onRevoke = (queues) => {
    for (const id of ids(queues)) {
      if (!state.held.delete(id)) state.problems.push(`queue ${id} revoked but not held`);
      state.revoked.push(id);
    }
  };
  state.sorted = () => [...state.held].sort((a, b) => a - b);
  return state;
}

/** The queue ids of `topic` in a consumer's own view of its assignment. */
function assigned(consumer, topic) {
  return consumer
    .assignment()
    .filter((q) => q.topic === topic)
    .map((q) => q.queueId)
    .sort((a, b) => a - b);
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

test('onAssign and onRevoke follow the share as a second member joins and leaves', { timeout: 60000 }, async (t) => {
  const client = await embedded(t);
  const topic = uniq('t');
  const group = uniq('g');
  await client.admin().createTopic(topic, { queues: QUEUES });

  const a = tracker(topic);
  const first = client.pushConsumer(group, topic, { onAssign: a.onAssign, onRevoke: a.onRevoke, rebalanceIntervalMs: 300 });
  await first.start();
  await waitFor(() => same(a.sorted(), ALL), 15000, 'the first member assigned every queue');
  assert.deepEqual(assigned(first, topic), ALL);
  assert.deepEqual(a.revoked, []);

  const b = tracker(topic);
  const second = client.pushConsumer(group, topic, { onAssign: b.onAssign, onRevoke: b.onRevoke, rebalanceIntervalMs: 300 });
  await second.start();
  const split = () => {
    const [ours, theirs] = [a.sorted(), b.sorted()];
    if (ours.length === 0 || theirs.length === 0) return false;
    const disjoint = ours.every((id) => !theirs.includes(id));
    const cover = same([...ours, ...theirs].sort((x, y) => x - y), ALL);
    // Settled: each member's hooks agree with its own view of its assignment.
    return disjoint && cover && same(ours, assigned(first, topic)) && same(theirs, assigned(second, topic));
  };
  await waitFor(split, 15000, 'two disjoint shares covering every queue');
  // What the first member gave up is exactly what the second one holds.
  assert.deepEqual([...a.revoked].sort((x, y) => x - y), b.sorted());

  await second.close();
  // close() resolves after the second member's last onRevoke: it holds nothing.
  assert.deepEqual(b.sorted(), []);
  await waitFor(() => same(a.sorted(), ALL), 15000, 'the first member assigned every queue again');
  assert.deepEqual(assigned(first, topic), ALL);

  await first.close();
  assert.deepEqual(a.sorted(), [], 'close revokes every queue before it resolves');
  assert.deepEqual([...a.problems, ...b.problems], []);
});

test('a hook that throws is reported as hookError and the consumer keeps consuming', { timeout: 60000 }, async (t) => {
  const client = await embedded(t);
  const topic = uniq('t');
  const group = uniq('g');
  await client.admin().createTopic(topic, { queues: 2 });
  let revoked = 0;
  const consumer = client.pushConsumer(group, topic, {
    onAssign: () => {
      throw new Error('assign hook failed');
    },
    onRevoke: async () => {
      revoked += 1;
      throw new Error('revoke hook failed');
    },
  });
  const reported = [];
  consumer.on('hookError', (error, info) => reported.push([info.hook, error.message, info.queues.length > 0]));
  await consumer.start();
  await waitFor(() => reported.length > 0, 15000, 'the hookError event');
  assert.deepEqual(reported[0], ['onAssign', 'assign hook failed', true]);

  const sent = await client.producer().send(topic, 'still consuming');
  const message = await consumer.recv({ timeoutMs: 15000 });
  assert.ok(message, 'a message after the failed hook');
  assert.equal(message.msgId, sent.msgId);
  await message.ack();

  await consumer.close();
  assert.equal(revoked, 1);
  assert.deepEqual(reported.at(-1), ['onRevoke', 'revoke hook failed', true]);
});

test('without a hookError listener a throwing hook is a process warning', { timeout: 60000 }, async (t) => {
  const client = await embedded(t);
  const topic = uniq('t');
  await client.admin().createTopic(topic, { queues: 1 });
  const warnings = [];
  const onWarning = (w) => {
    if (w.name === 'FerryMQWarning') warnings.push(w.message);
  };
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const consumer = client.pushConsumer(uniq('g'), topic, {
    onAssign: () => {
      throw new Error('boom');
    },
  });
  await consumer.start();
  await waitFor(() => warnings.length > 0, 15000, 'a FerryMQWarning');
  assert.match(warnings[0], /onAssign hook .* threw: boom/);
  await consumer.close();
});

test('hooks must be functions', async (t) => {
  const client = await embedded(t);
  const { InvalidArgument } = require('..');
  assert.throws(() => client.pushConsumer('g', 't', { onAssign: 'no' }), (e) => e instanceof InvalidArgument && e.field === '/onAssign');
  assert.throws(() => client.pushConsumer('g', 't', { onRevoke: 1 }), (e) => e instanceof InvalidArgument && e.field === '/onRevoke');
});
