// The README's quickstart and the examples run as written, from a project that has the
// package in its node_modules, with `import` and with `require`.
'use strict';

const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const { tempDir } = require('./helpers');

const PACKAGE = path.resolve(__dirname, '..');

/** A project directory whose node_modules/ferrymq is this package. */
function project(t) {
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(PACKAGE, path.join(dir, 'node_modules', 'ferrymq'), 'dir');
  return dir;
}

function node(args, cwd) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd, timeout: 60000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
      else resolve(stdout);
    });
  });
}

test("the README's quickstart runs", async (t) => {
  const readme = fs.readFileSync(path.join(PACKAGE, 'README.md'), 'utf8');
  const code = readme.match(/```js\n([\s\S]*?)```/)[1];
  const dir = project(t);
  fs.writeFileSync(path.join(dir, 'quickstart.mjs'), code);
  assert.equal(await node(['quickstart.mjs'], dir), 'hello true\n');
});

test('examples/getting-started.mjs runs', async (t) => {
  const dir = project(t);
  fs.copyFileSync(path.join(PACKAGE, 'examples', 'getting-started.mjs'), path.join(dir, 'getting-started.mjs'));
  const out = await node(['getting-started.mjs'], dir);
  assert.match(out, /received hello tag new\nfound true\nerror not-found\n$/);
});

test('the package loads with require and with import, as one module', async (t) => {
  const dir = project(t);
  const script = [
    "const cjs = require('ferrymq');",
    "import('ferrymq').then((esm) => {",
    '  const same = esm.Client === cjs.Client && esm.default === cjs && esm.NotFound === cjs.NotFound;',
    "  console.log(same, typeof cjs.Client.embedded, new esm.NotFound('x').code);",
    '});',
  ].join('\n');
  assert.equal(await node(['-e', script], dir), 'true function not-found\n');
});
