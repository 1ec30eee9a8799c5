#!/usr/bin/env bash
# The project's test command: Rust unit, property, integration and crash tests, then the
# end-to-end suites (Python against a live server, OpenAPI-generated client, schemathesis,
# headless Chromium) when their tools are installed (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo test --workspace --all-targets
cargo test --workspace --doc

if [ -x scripts/e2e.sh ]; then
  scripts/e2e.sh
fi
