#!/usr/bin/env node
// Builds the native module from source with cargo and copies it next to index.js as
// `ferrymq.node`. Run by `npm install` (the package's `install` script) and by test.sh.
//
// The profile is `release` unless FERRYMQ_NODE_PROFILE says otherwise (test.sh builds
// `debug`, sharing the workspace's target directory). Cargo is found on PATH or in
// ~/.cargo/bin.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const here = path.resolve(__dirname, '..');
const profile = process.env.FERRYMQ_NODE_PROFILE || 'release';
if (!['release', 'debug'].includes(profile)) {
  console.error(`ferrymq: FERRYMQ_NODE_PROFILE must be release or debug, not ${JSON.stringify(profile)}`);
  process.exit(2);
}

function cargo() {
  const home = path.join(os.homedir(), '.cargo', 'bin', process.platform === 'win32' ? 'cargo.exe' : 'cargo');
  const probe = spawnSync('cargo', ['--version'], { stdio: 'ignore' });
  if (!probe.error && probe.status === 0) return 'cargo';
  if (fs.existsSync(home)) return home;
  console.error('ferrymq: building the native module needs Rust (cargo): see https://rustup.rs');
  process.exit(1);
}

const args = ['build', '-p', 'ferrymq-node', '--message-format=json-render-diagnostics'];
if (profile === 'release') args.push('--release');
const build = spawnSync(cargo(), args, { cwd: here, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 });
if (build.error) throw build.error;
if (build.status !== 0) process.exit(build.status ?? 1);

// The cdylib's path, from cargo's own report (whatever the target directory).
let library = null;
for (const line of build.stdout.toString().split('\n')) {
  if (!line.startsWith('{')) continue;
  const event = JSON.parse(line);
  if (event.reason === 'compiler-artifact' && event.target && event.target.name === 'ferrymq_node') {
    library = event.filenames.find((f) => /\.(so|dylib|dll)$/.test(f)) ?? library;
  }
}
if (!library) {
  console.error('ferrymq: cargo built no ferrymq_node library');
  process.exit(1);
}
const destination = path.join(here, 'ferrymq.node');
// Copy to a temporary name and rename: a process that has the old module loaded keeps it.
const temporary = `${destination}.${process.pid}.tmp`;
fs.copyFileSync(library, temporary);
fs.renameSync(temporary, destination);
console.error(`ferrymq: built ${path.relative(process.cwd(), destination) || destination} (${profile})`);
