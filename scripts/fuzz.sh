#!/bin/bash
# fuzz.sh [SECONDS] -- build the libFuzzer harnesses (clang, ASan+UBSan) and run each for
# SECONDS (default 60) from the seed corpus in tests/fuzz/corpus. A crash fails the run
# and its input is kept under results/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
CC=clang BUILD_DIR=build-fuzz bash scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGVIP_FUZZ=ON >/dev/null
mkdir -p results/fuzz
failed=0
for t in pgwire_first pgwire_stream pgwire_check vrrp_packet config; do
    work=$(mktemp -d /tmp/pgvip-fuzz-$t.XXXXXX)
    cp -r "tests/fuzz/corpus/$t/." "$work/"
    opts=(-max_total_time="$SECS" -print_final_stats=1 -artifact_prefix="results/fuzz/$t-")
    [ $t = config ] && opts+=(-max_len=4096 -only_ascii=1)
    # In a network namespace of its own (no interfaces): host names the config fuzzer
    # invents fail to resolve at once, and no query leaves the machine.
    if unshare --net build-fuzz/tests/fuzz/fuzz_$t "${opts[@]}" "$work" >"results/fuzz/$t.log" 2>&1; then
        printf 'fuzz %-14s ok   %s\n' "$t" "$(grep -oE 'stat::number_of_executed_units: [0-9]+' "results/fuzz/$t.log" | awk '{print $2}') runs, $(ls "$work" | wc -l) corpus entries"
    else
        failed=1
        printf 'fuzz %-14s FAILED (see results/fuzz/%s.log)\n' "$t" "$t"
        grep -E "ERROR|SUMMARY|Test unit written" "results/fuzz/$t.log" | head -5
    fi
    rm -rf "$work"
done
exit $failed
