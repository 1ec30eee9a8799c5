#!/usr/bin/env bash
# Builds the Python SDK's wheel (abi3, manylinux) and installs it into the repo's .venv, then
# runs its pytest suite (against an embedded broker and a `ferrymq serve` started by a
# fixture), mypy --strict over the package and examples, stubtest over the native module's
# stubs, and finally installs the same wheel into a fresh venv with no Rust toolchain on PATH
# and runs examples/quickstart.py there.
#
# Idempotent: the venv and its pinned tools are reused; the smoke venv is made anew each run.
# Builds share the workspace's target/ (debug profile; PYTHON_SDK_PROFILE=release for an
# optimized build). Extra arguments go to pytest, e.g. `bindings/python/test.sh -k delay`
# (a run with arguments skips the wheel smoke test); `--build-only` stops after the install.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

export CARGO_TARGET_DIR="$root/target"
export CARGO_TERM_COLOR=never
profile="${PYTHON_SDK_PROFILE:-dev}"

venv="$root/.venv"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
# The maturin backend runs the `maturin` of the venv.
export PATH="$venv/bin:$PATH"
stamp="$venv/.ferrymq-dev-requirements"
if ! cmp -s "$here/requirements-dev.txt" "$stamp" 2>/dev/null; then
  "$py" -m pip install --quiet --upgrade pip
  "$py" -m pip install --quiet -r "$here/requirements-dev.txt"
  cp "$here/requirements-dev.txt" "$stamp"
fi

# The server binary the remote tests start.
cargo build -p ferrymq-gateway --bin ferrymq

# One wheel, built once: installed here for the tests, and in a fresh venv for the smoke test.
# abi3 (one wheel for CPython 3.9+); maturin checks the extension's glibc symbols and tags it
# with the oldest manylinux they allow (manylinux_2_34 on a glibc 2.36 host; the README says
# how to build for older systems). No network needed.
wheels="$CARGO_TARGET_DIR/wheels/ferrymq-python"
rm -rf "$wheels"
maturin build --quiet --manifest-path "$here/Cargo.toml" --profile "$profile" --interpreter "$py" --out "$wheels"
wheel="$(ls "$wheels"/ferrymq-*-abi3-manylinux*.whl)"
"$py" -m pip install --quiet --force-reinstall --no-deps "$wheel"

if [ "${1:-}" = "--build-only" ]; then
  exit 0
fi

cd "$here"
export FERRYMQ_BIN="$CARGO_TARGET_DIR/debug/ferrymq"
"$py" -m pytest "$@"
"$py" -m mypy --strict examples tests python/ferrymq
# The hand-written stubs of the native module must match what it exports.
"$py" -m mypy.stubtest ferrymq._native

if [ "$#" -eq 0 ]; then
  # The wheel installs and runs where there is no Rust toolchain: a fresh venv, offline, and
  # a PATH without cargo or rustc.
  smoke="$CARGO_TARGET_DIR/wheel-smoke-venv"
  rm -rf "$smoke"
  "$python" -m venv "$smoke"
  bare_path="/usr/local/bin:/usr/bin:/bin"
  env -i HOME="$HOME" PATH="$smoke/bin:$bare_path" sh -c '
    set -e
    if command -v cargo || command -v rustc; then echo "a Rust toolchain is on PATH" >&2; exit 1; fi
    python -m pip install --quiet --no-index --no-deps "$1"
    cd "$2" && python examples/quickstart.py >/dev/null
  ' smoke "$wheel" "$here"
  echo "wheel smoke test passed: $(basename "$wheel") in a venv without Rust"
fi
