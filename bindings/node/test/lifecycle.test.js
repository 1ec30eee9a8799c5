// Closing a client ends its consumers, releases its callbacks and lets the process exit:
// a child process that closes its client without calling process.exit() terminates. A send
// in flight keeps the process alive until it completes.
'use strict';

const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const { startServer, tempDir } = require('./helpers');

const CHILD = path.join(__dirname, 'fixtures', 'exit_after_close.js');
const SENDER = path.join(__dirname, 'fixtures', 'send_then_close.js');

const DROPPED = path.join(__dirname, 'fixtures', 'send_from_a_dropped_producer.js');

/** Runs the child; rejects if it has not exited by itself within 60 s. */
function run(target, child = CHILD, nodeFlags = []) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...nodeFlags, child, target], { timeout: 60000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
      else resolve(stdout);
    });
  });
}

describe('the process exits after close', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('embedded', async (t) => {
    const stdout = await run(path.join(tempDir(t), 'data'));
    assert.match(stdout, /closed after 2 heard, 2 iterated/);
  });

  test('remote', async () => {
    const stdout = await run(server.url);
    assert.match(stdout, /closed after 2 heard, 2 iterated/);
  });
});

describe('a send in flight keeps the process alive until it completes', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('embedded', async (t) => {
    const stdout = await run(path.join(tempDir(t), 'data'), SENDER);
    assert.match(stdout, /^sent string 0$/m);
  });

  test('remote', async () => {
    const stdout = await run(server.url, SENDER);
    assert.match(stdout, /^sent string 0$/m);
  });
});

describe('a producer nobody keeps is not collected while its sends are in flight', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('embedded', async (t) => {
    const stdout = await run(path.join(tempDir(t), 'data'), DROPPED, ['--expose-gc']);
    assert.match(stdout, /^sent 50$/m);
  });

  test('remote', async () => {
    const stdout = await run(server.url, DROPPED, ['--expose-gc']);
    assert.match(stdout, /^sent 50$/m);
  });
});
