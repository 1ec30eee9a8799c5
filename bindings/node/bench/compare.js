#!/usr/bin/env node
// Interleaved rounds of the Rust client's bench and the Node bench, so that every Node
// figure has a Rust figure measured minutes apart on the same (shared) machine:
//
//   node bench/compare.js --rust target/release/deps/client_throughput-<hash> \
//     [--rounds 3] [--node before=/tmp/ferrymq-before] [--node after=.]
//
// Each round runs the Rust bench (sizes as bench.js: 40 000 single sends, a backlog of
// 500 000 sent 64 per batch and drained twice: each path a second or more for both), then each Node build (`--node label=dir`,
// a directory holding index.js and ferrymq.node; default: this package), in an order that
// alternates from round to round. It prints, per round, the load average before it and each
// path's rate, CPU time per message and ratio Node/Rust, then the median ratio of each path.
'use strict';

const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const SINGLES = 40000;
const BACKLOG = 500000;
const BATCH = 64;

function parseArgs(argv) {
  const args = { rust: null, rounds: 3, node: [] };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--rust') args.rust = value;
    else if (flag === '--rounds') args.rounds = Number(value);
    else if (flag === '--node') {
      const at = value.indexOf('=');
      if (at < 0) throw new Error('--node takes label=dir');
      args.node.push({ label: value.slice(0, at), dir: path.resolve(value.slice(at + 1)) });
    } else throw new Error(`unknown flag ${flag}`);
  }
  if (!args.rust) throw new Error('--rust <client_throughput test binary> is required');
  if (args.node.length === 0) args.node.push({ label: 'node', dir: path.resolve(__dirname, '..') });
  return args;
}

function run(command, args, env) {
  const result = spawnSync(command, args, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (result.status !== 0) throw new Error(`${command} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** Rate (msg/s) and CPU µs per message of each path, by the same keys for both benches. */
const RUST_PATHS = {
  single: /send \(one at a time\):.*?: (\d+) msg\/s.*?([\d.]+) µs CPU/,
  batch: /send_batch \(\d+\/batch\):.*?: (\d+) msg\/s.*?([\d.]+) µs CPU/,
  listener: /push listener \(backlog\):.*?: (\d+) msg\/s.*?([\d.]+) µs CPU/,
  stream: /push recv \+ ack \(backlog\):.*?: (\d+) msg\/s.*?([\d.]+) µs CPU/,
};
const NODE_PATHS = {
  single: /send, one at a time/,
  inFlight: /send, 64 in flight/,
  batch: /sendBatch/,
  listener: /listener, draining/,
  stream: /for await \+ ack/,
  simple: /simpleConsumer/,
};

function parseRust(out) {
  const figures = {};
  for (const [key, re] of Object.entries(RUST_PATHS)) {
    const m = re.exec(out);
    if (!m) throw new Error(`no ${key} figure in the Rust output:\n${out}`);
    figures[key] = { rate: Number(m[1]), cpu: Number(m[2]) };
  }
  return figures;
}

function parseNode(out) {
  const figures = {};
  for (const line of out.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 6) continue;
    for (const [key, re] of Object.entries(NODE_PATHS)) {
      if (re.test(cells[1])) {
        figures[key] = { rate: Number(cells[3].replace(/[^\d]/g, '')), cpu: Number.parseFloat(cells[5]) };
      }
    }
  }
  return figures;
}

/** Each Node path and the Rust path it is compared with. */
const ROWS = [
  ['single', 'single', '`send`, one at a time'],
  ['batch', 'batch', `\`sendBatch\`, ${BATCH} per batch`],
  ['listener', 'listener', 'push listener'],
  ['stream', 'stream', '`for await` + `ack()` vs Rust `recv` + `ack`'],
  ['stream', 'listener', '`for await` + `ack()` vs Rust listener'],
  ['inFlight', 'single', '`send`, 64 in flight vs Rust one at a time'],
];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function main() {
  const args = parseArgs(process.argv.slice(2));
  const bench = path.join(__dirname, 'bench.js');
  const ratios = {};
  for (let round = 1; round <= args.rounds; round++) {
    const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
    const rust = parseRust(
      run(args.rust, ['--nocapture', '--test-threads=1'], {
        FERRYMQ_CLIENT_BENCH_MESSAGES: String(BACKLOG),
        FERRYMQ_CLIENT_BENCH_SINGLES: String(SINGLES),
        FERRYMQ_CLIENT_BENCH_BATCH: String(BATCH),
      }),
    );
    const order = round % 2 ? args.node : [...args.node].reverse();
    const node = {};
    for (const build of order) {
      node[build.label] = parseNode(
        run(process.execPath, [bench], { FERRYMQ_NODE_MODULE: build.dir, FERRYMQ_NODE_BENCH_BATCH: String(BATCH) }),
      );
    }
    console.log(`\nround ${round}, load average ${load} before it; order: rust, ${order.map((b) => b.label).join(', ')}`);
    const fmt = (f) => `${String(f.rate).padStart(7)} msg/s ${f.cpu.toFixed(1).padStart(5)} µs CPU`;
    console.log(`  rust: ${Object.entries(rust).map(([k, f]) => `${k} ${fmt(f)}`).join(' | ')}`);
    for (const build of args.node) {
      console.log(`  ${build.label}:`);
      for (const [nodeKey, rustKey, name] of ROWS) {
        const f = node[build.label][nodeKey];
        const ratio = f.rate / rust[rustKey].rate;
        (ratios[`${build.label}\u0000${name}`] ??= []).push(ratio);
        console.log(`    ${name.padEnd(46)} ${fmt(f)}  ratio ${ratio.toFixed(2)}`);
      }
      const s = node[build.label].simple;
      console.log(`    ${'simple consumer, receive 64 + ack'.padEnd(46)} ${fmt(s)}`);
    }
  }
  console.log('\nmedian Node/Rust ratio (all rounds):');
  for (const [key, values] of Object.entries(ratios)) {
    const [label, name] = key.split('\u0000');
    console.log(`  ${label.padEnd(8)} ${name.padEnd(46)} ${median(values).toFixed(2)}  (${values.map((v) => v.toFixed(2)).join(' / ')})`);
  }
}

main();
