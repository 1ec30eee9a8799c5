#!/usr/bin/env bash
# The project's test command: Rust unit, property, integration and crash tests, then the
# Python, Node and Kotlin SDK suites and the end-to-end suites (Python against a live server,
# OpenAPI-generated client, schemathesis, headless Chromium). It installs what those need first
# (scripts/install-deps.sh, idempotent), so on a fresh machine this one command is enough.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
# An embedded-only user of ferrymq-core links no HTTP or WebSocket client.
cargo check -p ferrymq-core --no-default-features --lib
if cargo tree -p ferrymq-core --no-default-features -e normal | grep -E '^[^a-z]*(reqwest|hyper|tokio-tungstenite|tungstenite) '; then
  echo "ferrymq-core without default features must not depend on an HTTP or WebSocket client" >&2
  exit 1
fi
cargo test --workspace --lib --bins --tests
# The disk-fault tests (EIO, ENOSPC, short writes, power loss) inject faults through the
# store's real I/O paths, which only the `failpoints` feature compiles in.
cargo test -p ferrymq-core --features failpoints --test store_faults
cargo test --workspace --doc

# Python SDK: build it with pip (maturin), then pytest (embedded and against `ferrymq serve`),
# mypy --strict and stubtest.
bindings/python/test.sh

# Node SDK: build the native module, node --test (embedded and against `ferrymq serve`),
# tsc --strict over the type declarations, examples and a typed test file.
bindings/node/test.sh

# Kotlin/JVM SDK: Maven builds the library, generates the uniffi bindings, packages the
# native library in the jar and runs JUnit 5 (embedded and against `ferrymq serve`, Kotlin
# and plain Java).
bindings/kotlin/test.sh

# End-to-end against a live server: generated OpenAPI client, schemathesis, headless Chromium.
scripts/e2e.sh
