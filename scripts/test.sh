#!/usr/bin/env bash
# The project's test command: Rust unit, property, integration and crash tests, then the
# Python SDK suite and the end-to-end suites (Python against a live server, OpenAPI-generated
# client, schemathesis, headless Chromium). scripts/install-deps.sh installs their tools.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo test --workspace --lib --bins --tests
cargo test --workspace --doc

# Python SDK: build it with pip (maturin), then pytest (embedded and against `ferrymq serve`),
# mypy --strict and stubtest.
bindings/python/test.sh

# End-to-end against a live server: generated OpenAPI client, schemathesis, headless Chromium.
scripts/e2e.sh
