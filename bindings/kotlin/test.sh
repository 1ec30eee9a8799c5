#!/usr/bin/env bash
# Builds the Kotlin/JVM SDK with Maven and runs its JUnit 5 suite (Kotlin against an embedded
# broker and a `ferrymq serve` the tests start, and a plain Java test of the blocking API).
#
# Idempotent: installs a JDK and Maven from Debian only when `mvn` is missing; Maven's
# downloads stay in ~/.m2. The cargo builds share the workspace's target/ (debug profile).
# Extra arguments go to Maven, e.g. `bindings/kotlin/test.sh -Dtest=ConsumptionTest`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

if ! command -v mvn >/dev/null || ! command -v javac >/dev/null; then
  apt-get update
  apt-get install -y --no-install-recommends openjdk-17-jdk-headless maven
fi

export CARGO_TARGET_DIR="$root/target"
export CARGO_TERM_COLOR=never
# The server binary the remote tests start (the pom builds it too; this keeps FERRYMQ_BIN
# pointing at a fresh one when the caller did not choose another).
cargo build -p ferrymq-gateway --bin ferrymq
export FERRYMQ_BIN="${FERRYMQ_BIN:-$CARGO_TARGET_DIR/debug/ferrymq}"

mvn -B -q -f "$here/pom.xml" verify "$@"

# Maven is quiet (-q) when everything passes: print the suite's tally from Surefire's reports.
python3 - "$here/target/surefire-reports" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
tests = failed = skipped = 0
for path in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    suite = ET.parse(path).getroot()
    tests += int(suite.get("tests", 0))
    failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped += int(suite.get("skipped", 0))
print(f"kotlin: {tests - failed - skipped} passed, {failed} failed, {skipped} skipped")
PY
