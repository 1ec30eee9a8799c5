#!/usr/bin/env bash
# Builds and installs the Python SDK into the repo's .venv, then runs its pytest suite (against
# an embedded broker and a `ferrymq serve` started by a fixture), mypy --strict over the
# package and examples, and stubtest over the native module's stubs.
#
# Idempotent: the venv and its pinned tools are reused. Builds share the workspace's target/
# (debug profile; PYTHON_SDK_PROFILE=release for an optimized build). Extra arguments go to
# pytest, e.g. `bindings/python/test.sh -k delay`; `--build-only` stops after the install.
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

# `pip install ./bindings/python`, with the build tools of the venv and the debug profile.
MATURIN_PEP517_ARGS="--profile $profile" \
  "$py" -m pip install --quiet --no-build-isolation --force-reinstall --no-deps "$here"

if [ "${1:-}" = "--build-only" ]; then
  exit 0
fi

cd "$here"
export FERRYMQ_BIN="$CARGO_TARGET_DIR/debug/ferrymq"
"$py" -m pytest "$@"
"$py" -m mypy --strict examples tests python/ferrymq
# The hand-written stubs of the native module must match what it exports.
"$py" -m mypy.stubtest ferrymq._native
