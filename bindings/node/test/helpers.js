// Shared setup of the Node SDK suite: an embedded broker per test in a temporary directory,
// one `ferrymq serve` per test file on a free port, both with fast settings (millisecond
// delay levels, short leases and transaction checks) so that delay, retry and check-back
// behaviour shows within seconds.
//
// `forEachTransport(fn)` runs a group of tests against both; the server binary is
// $FERRYMQ_BIN, else target/debug/ferrymq (test.sh builds it).
'use strict';

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { after, before, describe } = require('node:test');

const ferrymq = require('..');

const ROOT = path.resolve(__dirname, '..', '..', '..');

// 18 levels as in production, but fast: levels 3+ (the retry delays) are 300 ms.
const DELAY_LEVELS = ['100ms', '200ms', ...Array(16).fill('300ms')].join(' ');
const LEASE_TTL_MS = 3000;
const ORDERLY_SUSPEND_MS = 100;

const FAST = {
  delay_levels: DELAY_LEVELS,
  timer_precision: '100ms',
  lease_ttl: `${LEASE_TTL_MS}ms`,
  orderly_suspend: `${ORDERLY_SUSPEND_MS}ms`,
  transaction_timeout: '1s',
  transaction_check_interval: '1s',
  transaction_check_max: 5,
  segment_bytes: '8MiB',
  // The suite is not about a full disk, and a shared development disk may well be past the
  // default 95 %: refuse writes only when it is really full.
  disk_max_used_ratio: 1,
};

/** A fresh temporary directory, removed after test `t`. */
function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrymq-node-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A unique topic or group name (one server serves a whole file). */
function uniq(prefix) {
  return `${prefix}-${crypto.randomBytes(5).toString('hex')}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` until it returns something truthy; throws after `timeoutMs`. */
async function waitFor(condition, timeoutMs = 15000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(50);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The status of one GET (0 when there is no answer within a second), on a fresh connection:
 * a probe sent while the server is still starting must not wait on it forever. `ca`: the
 * PEM certificate to trust for an `https://` URL. */
function healthStatus(url, ca) {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const request = get(url, { agent: false, timeout: 1000, ca }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(0));
  });
}

/** A `ferrymq serve` child process with the fast settings (plus `extra`). With `tls_cert`
 * and `tls_key` in `extra` it speaks HTTPS, and its `url` is `https://`. */
async function startServer(extra = {}) {
  const binary = process.env.FERRYMQ_BIN || path.join(ROOT, 'target', 'debug', 'ferrymq');
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: run cargo build -p ferrymq-gateway`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrymq-node-server-'));
  const port = await freePort();
  const ca = extra.tls_cert ? fs.readFileSync(extra.tls_cert) : undefined;
  const url = `${ca ? 'https' : 'http'}://127.0.0.1:${port}`;
  const args = ['serve', '--data-dir', path.join(dir, 'data'), '--listen', `127.0.0.1:${port}`];
  for (const [key, value] of Object.entries({ ...FAST, ...extra })) args.push('--set', `${key}=${value}`);
  const log = fs.openSync(path.join(dir, 'server.log'), 'w');
  const child = spawn(binary, args, { stdio: ['ignore', log, log] });
  let exited = null;
  child.on('exit', (code) => {
    exited = code;
  });
  const logText = () => fs.readFileSync(path.join(dir, 'server.log'), 'utf8');
  const deadline = Date.now() + 30000;
  for (;;) {
    if (exited !== null) throw new Error(`ferrymq serve exited with ${exited}:\n${logText()}`);
    if ((await healthStatus(`${url}/healthz`, ca)) === 200) break;
    if (Date.now() > deadline) throw new Error(`ferrymq serve did not become healthy:\n${logText()}`);
    await sleep(100);
  }
  const server = {
    url,
    dir,
    log: logText,
    async stop() {
      if (exited === null) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await gone;
      }
      fs.closeSync(log);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Connects to `server` with the fast settings' timings. */
function connect(server, options = {}) {
  return ferrymq.Client.connect(server.url, {
    leaseTtlMs: LEASE_TTL_MS,
    orderlySuspendMs: ORDERLY_SUSPEND_MS,
    ...options,
  });
}

/** An embedded client on a fresh directory with the fast settings, closed after test `t`. */
async function embedded(t, extra = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrymq-node-'));
  const client = await ferrymq.Client.embedded(path.join(dir, 'data'), { config: { ...FAST, ...extra } });
  t.after(async () => {
    await client.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return client;
}

/**
 * Declares the tests of `body(getClient)` twice: against an embedded broker and against one
 * `ferrymq serve` for the suite. `getClient(t)` resolves to a client of that transport,
 * closed after test `t`.
 */
function forEachTransport(body) {
  describe('embedded', () => body((t) => embedded(t)));
  describe('remote', () => {
    let running = null;
    before(async () => {
      running = await startServer();
    });
    after(async () => {
      if (running) await running.stop();
    });
    body(async (t) => {
      const client = await connect(running);
      t.after(() => client.close());
      return client;
    });
  });
}

/** Receives and acks until `expected` messages came (or throws after `timeoutMs`). */
async function drain(consumer, expected, timeoutMs = 15000) {
  const received = [];
  const deadline = Date.now() + timeoutMs;
  while (received.length < expected) {
    if (Date.now() > deadline) throw new Error(`received ${received.length} of ${expected} messages`);
    const batch = await consumer.receive({ maxMessages: 64, waitMs: 500 });
    for (const message of batch) await message.ack();
    received.push(...batch);
  }
  return received;
}

module.exports = {
  ferrymq,
  FAST,
  LEASE_TTL_MS,
  ORDERLY_SUSPEND_MS,
  tempDir,
  uniq,
  sleep,
  waitFor,
  startServer,
  connect,
  embedded,
  forEachTransport,
  drain,
};
