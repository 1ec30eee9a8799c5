// Closing a client ends its consumers, releases its callbacks and lets the process exit:
// a child process that closes its client without calling process.exit() terminates.
'use strict';

const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const { startServer, tempDir } = require('./helpers');

const CHILD = path.join(__dirname, 'fixtures', 'exit_after_close.js');

/** Runs the child; rejects if it has not exited by itself within 60 s. */
function run(target) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CHILD, target], { timeout: 60000 }, (error, stdout, stderr) => {
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
