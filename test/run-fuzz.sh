#!/bin/sh
# Builds every libFuzzer driver in fuzz/ and runs each for SECONDS (default
# 20) on its seed corpus; a crash, leak or sanitizer report fails the run.
set -u
cd "$(dirname "$0")/.."
secs=${1:-20}
passed=0; failed=0
make -s fuzz || { echo "0 passed, 1 failed"; exit 1; }
for bin in build/fuzz/fuzz_*; do
    name=${bin#build/fuzz/fuzz_}
    work=$(mktemp -d)
    [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/"
    if "$bin" -max_total_time="$secs" -rss_limit_mb=2048 \
            -artifact_prefix="$work.art-" "$work" > "$work.log" 2>&1; then
        echo "ok   fuzz_$name ($(grep -o 'cov: [0-9]*' "$work.log" | tail -1))"
        passed=$((passed + 1))
    else
        tail -n 30 "$work.log"
        # The input itself, so a failure in CI can be replayed from its log.
        for art in "$work".art-*; do
            [ -f "$art" ] && echo "input ($art):" && od -A d -c "$art" | head -n 40
        done
        echo "FAIL fuzz_$name"
        failed=$((failed + 1))
    fi
    rm -rf "$work" "$work.log" "$work".art-*
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
