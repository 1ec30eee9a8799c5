// Rebalance across processes: three members of one group, each a Node process connected to
// the server, share a topic's eight queues. At steady state the shares partition the queues
// and every message is consumed exactly once; when a member leaves, the others take its
// queues and nothing is lost.
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const { LEASE_TTL_MS, connect, startServer, tempDir, uniq, waitFor, sleep } = require('./helpers');

const QUEUES = 8;
const MEMBER = path.join(__dirname, 'fixtures', 'group_member.js');


function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function consumed(files) {
  const counts = new Map();
  for (const file of files) {
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      if (line) counts.set(line, (counts.get(line) ?? 0) + 1);
    }
  }
  return counts;
}

describe('a group of three processes', () => {
  let server;
  before(async () => {
    server = await startServer();
  }, { timeout: 60000 });
  after(() => server.stop(), { timeout: 60000 });

  test('three member processes share a topic: nothing lost or doubled at steady state', { timeout: 180000 }, async (t) => {
    // Registered first, so that it runs first: no member outlives the test.
    let members = [];
    t.after(async () => {
      const running = (m) => m.exitCode === null && m.signalCode === null;
      const exits = members.map((m) => new Promise((resolve) => (running(m) ? m.once('exit', resolve) : resolve())));
      for (const m of members) m.kill('SIGKILL');
      await Promise.all(exits);
    });
    const dir = tempDir(t);
    const client = await connect(server);
    t.after(() => client.close());
    const topic = uniq('t');
    const group = uniq('g');
    await client.admin().createTopic(topic, { queues: QUEUES });
    const outs = [0, 1, 2].map((i) => path.join(dir, `member${i}.out`));
    const assignments = [0, 1, 2].map((i) => path.join(dir, `member${i}.json`));
    members = [0, 1, 2].map((i) =>
      spawn(process.execPath, [MEMBER, server.url, group, topic, outs[i], assignments[i], String(LEASE_TTL_MS)], {
        // A member exits when its stdin closes: with this test, however it ends.
        stdio: ['pipe', 'inherit', 'inherit'],
      }),
    );
    const exited = members.map((m) => new Promise((resolve) => m.once('exit', resolve)));
    const alive = (i) => {
      const { exitCode, signalCode } = members[i];
      if (exitCode !== null || signalCode !== null) throw new Error(`member ${i} exited (${exitCode ?? signalCode})`);
    };

    const partitioned = (running) => {
      running.forEach(alive);
      const shares = running.map((i) => readJson(assignments[i]));
      if (shares.some((s) => !s || s.length === 0)) return null;
      const owned = shares.flat().sort((a, b) => a - b);
      return JSON.stringify(owned) === JSON.stringify([...Array(QUEUES).keys()]) ? shares : null;
    };

    // Steady state: the three shares partition the queues, 3 + 3 + 2.
    const shares = await waitFor(() => partitioned([0, 1, 2]), 30000, 'three shares of the queues');
    assert.deepEqual(shares.map((s) => s.length).sort(), [2, 3, 3]);

    const producer = client.producer();
    const first = Array.from({ length: 240 }, (_, i) => `one-${i}`);
    await producer.sendBatch(topic, first);
    await waitFor(() => first.every((body) => consumed(outs).has(body)), 30000, 'every message consumed');
    await sleep(1500);
    const counts = consumed(outs);
    const doubled = first.filter((body) => counts.get(body) !== 1);
    assert.deepEqual(doubled, [], 'each message exactly once');
    // Each member consumed from its own share.
    assert.ok(outs.every((file) => fs.existsSync(file)), 'every member consumed');

    // A member that leaves: the other two take its queues and nothing is lost.
    members[2].kill('SIGTERM');
    await exited[2];
    await waitFor(() => partitioned([0, 1]), 30000, 'two shares of the queues');
    const second = Array.from({ length: 120 }, (_, i) => `two-${i}`);
    await producer.sendBatch(topic, second);
    await waitFor(() => second.every((body) => consumed(outs.slice(0, 2)).has(body)), 30000, 'the rest consumed');
  });
});
