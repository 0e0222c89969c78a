#!/bin/sh
# Builds every libFuzzer driver in fuzz/ and runs each for SECONDS (default
# 20) on its seed corpus; a crash, leak or sanitizer report fails the run.
# JOBS drivers (default: the number of cores) run at a time: each is one
# CPU-bound process, so this divides the stage's time by the cores.
set -u
cd "$(dirname "$0")/.."
secs=${1:-20}
jobs=${JOBS:-$(nproc)}
passed=0; failed=0
make -s fuzz || { echo "0 passed, 1 failed"; exit 1; }
out=$(mktemp -d)

# one BIN: runs a driver; its report goes to $out/NAME.log, its verdict
# to $out/NAME.ok or $out/NAME.fail.
one() {
    name=${1#build/fuzz/fuzz_}
    work=$(mktemp -d)
    [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/"
    if "$1" -max_total_time="$secs" -rss_limit_mb=2048 \
            -artifact_prefix="$work.art-" "$work" > "$work.log" 2>&1; then
        echo "ok   fuzz_$name ($(grep -o 'cov: [0-9]*' "$work.log" | tail -1))" \
            > "$out/$name.ok"
    else
        {
            tail -n 30 "$work.log"
            # The input itself, so a failure in CI can be replayed from its
            # log.
            for art in "$work".art-*; do
                [ -f "$art" ] && echo "input ($art):" &&
                    od -A d -c "$art" | head -n 40
            done
            echo "FAIL fuzz_$name"
        } > "$out/$name.fail"
    fi
    rm -rf "$work" "$work.log" "$work".art-*
}

running=0
for bin in build/fuzz/fuzz_*; do
    one "$bin" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait
        running=0
    fi
done
wait
for f in "$out"/*.ok "$out"/*.fail; do
    [ -f "$f" ] || continue
    cat "$f"
    case $f in *.ok) passed=$((passed + 1)) ;; *) failed=$((failed + 1)) ;; esac
done
rm -rf "$out"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
