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
(cd build-asan && ctest --output-on-failure --timeout 300 "$@")

echo "== fuzzing (libFuzzer, ${FUZZ_SECONDS:-30} s per harness)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
