#!/usr/bin/env node
// Throughput of the Node SDK with 1 KiB bodies, against a broker embedded on a temporary
// directory (async flush, 64 MiB segments) and, with `--url`, a running `ferrymq serve`.
//
//   node bench/bench.js                                  # embedded only
//   node bench/bench.js --url http://127.0.0.1:8080      # and a server
//
// Prints one line per path: messages, rate, and the process's CPU time per message (every
// thread: the JS thread and the client's runtime). BENCHMARKS.md ("Node SDK") records the
// figures. Each path uses a fresh topic of 8 queues and a fresh group. Sizes are those of the
// Rust client's `client_throughput` run as BENCHMARKS.md says, so that each ratio compares
// like with like and each path lasts about a second or more: 40 000 single sends, a backlog
// of 500 000 sent `FERRYMQ_NODE_BENCH_BATCH` (default 64) per `sendBatch`, drained by a
// listener and by `for await`; all scaled by FERRYMQ_NODE_BENCH_SCALE (default 1).
// FERRYMQ_NODE_MODULE names another build of the package to load (for before/after runs).
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { Client } = require(process.env.FERRYMQ_NODE_MODULE ? path.resolve(process.env.FERRYMQ_NODE_MODULE) : '..');

const BODY = Buffer.alloc(1024, 'x');
const SCALE = Number(process.env.FERRYMQ_NODE_BENCH_SCALE ?? '1');
const BATCH = Number(process.env.FERRYMQ_NODE_BENCH_BATCH ?? '64');
const n = (count) => Math.max(1, Math.floor(count * SCALE));
const uniq = (prefix) => `${prefix}-${crypto.randomBytes(4).toString('hex')}`;

function report(where, what, count, span) {
  const rate = count / span.seconds;
  const mib = (rate * BODY.length) / 2 ** 20;
  const cpu = span.cpuMicros / count;
  console.log(
    `${where.padEnd(8)} | ${what.padEnd(52)} | ${String(count).padStart(6)} | ${Math.round(rate).toLocaleString('en-US').padStart(9)} msg/s | ${mib.toFixed(1).padStart(6)} MiB/s | ${cpu.toFixed(1).padStart(5)} µs CPU/msg`,
  );
}

async function fresh(client) {
  const topic = uniq('bench');
  await client.admin().createTopic(topic, { queues: 8 });
  return topic;
}

/** Wall time (s) and the process's CPU time (µs, all threads) of `action`. */
async function timed(action) {
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  await action();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  return { seconds, cpuMicros: used.user + used.system };
}

async function benchSend(where, client, count) {
  const producer = client.producer();
  const topic = await fresh(client);
  const span = await timed(async () => {
    for (let i = 0; i < count; i++) await producer.send(topic, BODY);
  });
  report(where, 'send, one at a time', count, span);
}

async function benchInFlight(where, client, count, inFlight) {
  const producer = client.producer();
  const topic = await fresh(client);
  const share = Math.floor(count / inFlight);
  const span = await timed(async () => {
    const worker = async () => {
      for (let i = 0; i < share; i++) await producer.send(topic, BODY);
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
  });
  report(where, `send, ${inFlight} in flight`, share * inFlight, span);
}

async function benchBatch(where, client, count, size) {
  const producer = client.producer();
  const topic = await fresh(client);
  const batch = Array(size).fill(BODY);
  const batches = Math.floor(count / size);
  const span = await timed(async () => {
    for (let i = 0; i < batches; i++) await producer.sendBatch(topic, batch);
  });
  report(where, `sendBatch, ${size} per batch`, batches * size, span);
  return { topic, count: batches * size };
}

async function benchListener(where, client, topic, count) {
  let seen = 0;
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  const consumer = client.pushConsumer(uniq('g'), topic, {
    listener: () => {
      seen += 1;
      if (seen === count) done();
    },
  });
  const span = await timed(async () => {
    await consumer.start();
    await finished;
  });
  await consumer.close();
  report(where, 'pushConsumer, listener, draining the backlog', count, span);
}

async function benchIterator(where, client, topic, count) {
  const consumer = client.pushConsumer(uniq('g'), topic);
  const span = await timed(async () => {
    await consumer.start();
    let got = 0;
    for await (const message of consumer) {
      await message.ack();
      if (++got >= count) break;
    }
  });
  await consumer.close();
  report(where, 'pushConsumer, for await + ack, draining the backlog', count, span);
}

async function benchSimple(where, client, topic, count) {
  const consumer = client.simpleConsumer(uniq('g'), topic);
  const span = await timed(async () => {
    let got = 0;
    while (got < count) {
      const batch = await consumer.receive({ maxMessages: 64, waitMs: 1000 });
      await Promise.all(batch.map((m) => consumer.ack(m)));
      got += batch.length;
    }
  });
  await consumer.close();
  report(where, 'simpleConsumer, receive 64 + ack each', count, span);
}

async function runAll(where, client) {
  await benchSend(where, client, n(where === 'embedded' ? 40000 : 5000));
  await benchInFlight(where, client, n(64000), 64);
  const backlog = await benchBatch(where, client, n(where === 'embedded' ? 500000 : 50000), BATCH);
  await benchListener(where, client, backlog.topic, backlog.count);
  await benchIterator(where, client, backlog.topic, backlog.count);
  await benchSimple(where, client, backlog.topic, n(20000));
}

async function main() {
  const args = process.argv.slice(2);
  const urlAt = args.indexOf('--url');
  const url = urlAt >= 0 ? args[urlAt + 1] : undefined;
  if (urlAt >= 0 && !url) throw new Error('--url needs a value');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrymq-node-bench-'));
  try {
    const client = await Client.embedded(path.join(dir, 'data'), {
      config: { flush: 'async', segment_bytes: '64MiB', disk_max_used_ratio: 1 },
    });
    try {
      await runAll('embedded', client);
    } finally {
      await client.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (url) {
    const client = await Client.connect(url);
    try {
      await runAll('remote', client);
    } finally {
      await client.close();
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
