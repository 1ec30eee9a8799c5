#!/usr/bin/env bash
# Builds the Node SDK and runs its checks: `npm ci` of the pinned dev tools (typescript,
# @types/node), the native module (cargo, debug profile, the workspace's target/), the
# `ferrymq` server binary the remote tests start, then the `node --test` suite (embedded and
# against `ferrymq serve`) and `tsc --strict` over index.d.ts, examples/ and test/typed.ts.
#
# Idempotent: node_modules is reinstalled only when package-lock.json changed. Extra
# arguments name test files, e.g. `bindings/node/test.sh test/orderly.test.js`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

export CARGO_TARGET_DIR="$root/target"
export CARGO_TERM_COLOR=never

cd "$here"
stamp="node_modules/.ferrymq-package-lock.json"
if ! cmp -s package-lock.json "$stamp" 2>/dev/null; then
  # The package's own install script builds the module; it is built below instead.
  npm ci --ignore-scripts --no-audit --no-fund
  cp package-lock.json "$stamp"
fi

FERRYMQ_NODE_PROFILE=debug node scripts/build.js
(cd "$root" && cargo build -p ferrymq-gateway --bin ferrymq)

export FERRYMQ_BIN="$CARGO_TARGET_DIR/debug/ferrymq"
if [ "$#" -gt 0 ]; then
  node --test "$@"
else
  node --test test/*.test.js
fi
npx --no-install tsc -p tsconfig.json
