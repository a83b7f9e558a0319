#!/bin/bash
# test.sh -- the README's test command: install dependencies, build with warnings as
# errors and with ASan+UBSan, run every test (unit and integration) under the
# sanitizers, then each fuzz harness for FUZZ_SECONDS (30). Needs root: PostgreSQL runs
# as the postgres user, the lab uses network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

echo "== build (gcc, -Werror, optimised)"
BUILD_DIR=build bash scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo

echo "== build (clang, -Werror, ASan+UBSan)"
CC=clang BUILD_DIR=build-asan bash scripts/build.sh -DCMAKE_BUILD_TYPE=Debug -DPGVIP_SANITIZE=ON

echo "== tests (under ASan+UBSan)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
set +e
(cd build-asan && ctest --output-on-failure --timeout 300 "$@") | tee /tmp/pgvip-ctest.log
ctest_rc=${PIPESTATUS[0]}

echo "== fuzzing (libFuzzer, ${FUZZ_SECONDS:-30} s per harness)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}" | tee /tmp/pgvip-fuzz.log
fuzz_rc=${PIPESTATUS[0]}
set -e

total=$(grep -oE 'tests failed out of [0-9]+' /tmp/pgvip-ctest.log | awk '{print $NF}')
failed=$(grep -oE '[0-9]+ tests failed out of' /tmp/pgvip-ctest.log | awk '{print $1}')
fuzz_ok=$(grep -c '^fuzz .* ok ' /tmp/pgvip-fuzz.log || true)
fuzz_bad=$(grep -c '^fuzz .* FAILED' /tmp/pgvip-fuzz.log || true)
if [ "${failed:-0}" != 0 ]; then
    # Each failed test's own reason, once (lib.sh prints it before and after its logs),
    # at the end where a shortened copy of this output still shows it.
    echo "== why the failed tests failed"
    { grep -oE '\[[A-Za-z0-9_.-]+\] FAIL.*' /tmp/pgvip-ctest.log || true; } | sed 's/ (repeated below the logs)//' |
        awk '!seen[$0]++' | cut -c1-400
fi
echo "ci: $(( ${total:-0} - ${failed:-0} + fuzz_ok )) passed, $(( ${failed:-0} + fuzz_bad )) failed"
[ "$ctest_rc" -eq 0 ] && [ "$fuzz_rc" -eq 0 ] && [ -n "$total" ]
