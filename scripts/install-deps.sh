#!/usr/bin/env bash
# Installs what the end-to-end tests need; safe to run again (each step skips what is there).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  apt-get update
  apt-get install -y chromium
fi

python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

# npm ci only when node_modules does not match the committed lock file.
lock_hash=$(sha256sum tests/browser/package-lock.json | cut -d' ' -f1)
if [ "$(cat tests/browser/node_modules/.ferrymq-lock 2>/dev/null)" != "$lock_hash" ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
  echo "$lock_hash" > tests/browser/node_modules/.ferrymq-lock
fi
