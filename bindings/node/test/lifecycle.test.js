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

/** Runs `child` (with `nodeFlags`) against an embedded broker and against a server; each run
 * must exit by itself and print a line matching `expected`. */
function inBothModes(title, child, expected, nodeFlags = []) {
  describe(title, () => {
    let server;
    before(async () => {
      server = await startServer();
    });
    after(() => server.stop());

    test('embedded', async (t) => {
      assert.match(await run(path.join(tempDir(t), 'data'), child, nodeFlags), expected);
    });

    test('remote', async () => {
      assert.match(await run(server.url, child, nodeFlags), expected);
    });
  });
}

inBothModes('the process exits after close', CHILD, /closed after 2 heard, 2 iterated/);

inBothModes('a send in flight keeps the process alive until it completes', SENDER, /^sent string 0$/m);

inBothModes('a producer nobody keeps is not collected while its sends are in flight', DROPPED, /^sent 50$/m, [
  '--expose-gc',
]);
