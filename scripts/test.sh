#!/usr/bin/env bash
# Runs every test: the Swift test suite (unit tests, and integration tests that start the
# real lossd binary on free ports), the Python client's pytest suite in a fresh virtual
# environment (scripts/client-test.sh), the linters for openapi.yaml, the Dockerfile and the
# deployment files, a schemathesis run of every operation against the live binary, and a
# short libFuzzer run of every fuzz target. Installs missing Debian packages first when run as root.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test || exit 1

# A crashing test prints its fatal error; skip the interactive backtracer, which can hang CI.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}

log=$(mktemp)
pg_dir=""
cleanup() {
  rm -f "$log"
  if [ -n "$pg_dir" ]; then bash scripts/postgres-test-server.sh stop "$pg_dir"; fi
}
trap cleanup EXIT

echo "== swift build --build-tests"
swift build --build-tests 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Write|Emitting|Linking|Applying)' || true
if [ "${PIPESTATUS[0]}" -ne 0 ]; then echo "build failed"; exit 1; fi

# A throwaway PostgreSQL 15 on loopback for the PostgreSQL-store integration tests
# (scripts/postgres-test-server.sh; removed on exit). It exports LOSSD_TEST_POSTGRES_URL
# and LOSSD_TEST_PGCTL, without which those tests are skipped.
echo "== postgresql test server"
pg_dir=$(mktemp -d /tmp/lossd-pg.XXXXXX)
if ! pg_env=$(bash scripts/postgres-test-server.sh start "$pg_dir"); then
  echo "the PostgreSQL test server did not start"
  exit 1
fi
eval "$pg_env"
echo "postgresql: ${LOSSD_TEST_POSTGRES_URL%%:*}://...@127.0.0.1 in $pg_dir"

echo "== swift test"
# The full log goes to a file; the console shows suites, failures and the totals.
swift test --skip-build 2>&1 | tee "$log" | grep -E '^(✘|✔ Suite|✔ Test run|Test Suite .All tests|Executed)|error:|Fatal error'
swift_status=${PIPESTATUS[0]}

# The C row kernels run at the best instruction-set level the CPU has; run the kernel
# suite again at every lower level this machine supports (LOSSD_SIMD forces one).
level_failed=0
lower_levels=""
if [ "$(uname -m)" = x86_64 ]; then
  if grep -qw avx512f /proc/cpuinfo; then lower_levels="sse2 avx2"; elif grep -qw avx2 /proc/cpuinfo; then lower_levels="sse2"; fi
fi
for level in $lower_levels; do
  echo "== swift test LossdKernelsTests with LOSSD_SIMD=$level"
  level_log=$(mktemp)
  LOSSD_SIMD=$level swift test --skip-build --filter LossdKernelsTests >"$level_log" 2>&1
  level_status=$?
  grep -E '^(✘|✔ Test run)|error:|Fatal error' "$level_log"
  if [ $level_status -ne 0 ]; then level_failed=$(( level_failed + 1 )); swift_status=$level_status; fi
  rm -f "$level_log"
done

echo "== lint"
bash scripts/lint.sh
lint_status=$?

echo "== python client (pytest against the live binary)"
client_log=$(mktemp)
bash scripts/client-test.sh 2>&1 | tee "$client_log" | tail -n 25
client_status=${PIPESTATUS[0]}
client_passed=$(grep -oE '^[0-9]+ passed' "$client_log" | grep -oE '[0-9]+' | tail -1)
client_failed=$(grep -oE '[0-9]+ failed' "$client_log" | grep -oE '[0-9]+' | tail -1)
rm -f "$client_log"

echo "== api-check (schemathesis against the live binary)"
bash scripts/api-check.sh
api_status=$?

# A short libFuzzer run of every target (make fuzz runs them longer); FUZZ_SECONDS=0 skips it.
fuzz_seconds=${FUZZ_SECONDS:-5}
fuzz_status=0
if [ "$fuzz_seconds" != "0" ]; then
  echo "== fuzz ($fuzz_seconds s per target)"
  bash scripts/fuzz.sh all "$fuzz_seconds" 2>&1 | grep -E '^(fuzz|==|  )|FINDING|finding|executions' | tail -40
  fuzz_status=${PIPESTATUS[0]}
fi

# One closing line that counts the Swift tests (Swift Testing prints them as a "Test run" line).
passed=$(grep -oE 'Test run with [0-9]+ tests?' "$log" | grep -oE '[0-9]+' | tail -1)
failed=$(grep -cE '^✘ Test .*\) failed' "$log" || true)
echo
passed=$(( ${passed:-0} + ${client_passed:-0} ))
if [ "$swift_status" -eq 0 ] && [ "$lint_status" -eq 0 ] && [ "$api_status" -eq 0 ] && [ "$fuzz_status" -eq 0 ] \
  && [ "$client_status" -eq 0 ]; then
  echo "tests: ${passed} passed, 0 failed"
  exit 0
fi
failed=$(( failed + ${client_failed:-0} + level_failed ))
echo "tests: $(( passed - failed )) passed, $failed failed (swift test exit $swift_status, python client exit $client_status, lint exit $lint_status, api-check exit $api_status, fuzz exit $fuzz_status)"
exit 1
