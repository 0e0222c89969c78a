#!/bin/sh
# The whole suite, as `make test` and CI run it:
#   0. clang-format check of the C sources, and the layers' calls
#   1. unit tests (release build)            4. unit tests under ASan+UBSan
#   2. end-to-end tests against ./gatewayd   5. end-to-end under ASan+UBSan
#   3. libFuzzer smoke run of every parser   6. end-to-end under TSan
#   (5 and 6 run side by side: both mostly wait on their clients' timers,
#   and their servers, brokers and ports are each run's own)
#   2a. the fan-out, flood, slow-consumer and drain tests again on the
#       sendmsg write path (server.io_uring = off; stage 2 runs auto,
#       which is io_uring where the kernel allows it)
#   2b. the JavaScript SDK (sdk/js): unit, end-to-end, headless Chromium
# Prints one closing line over all stages: "N passed, M failed".
set -u
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
passed=0; failed=0
log=$(mktemp -d)

# count STAGE FILE: adds the pass/fail numbers a stage's closing line gives.
count() {
    line=$(grep -E '[0-9]+ (passed|failed)' "$2" | tail -1)
    p=$(printf '%s' "$line" | grep -oE '[0-9]+ passed' | cut -d' ' -f1)
    f=$(printf '%s' "$line" | grep -oE '[0-9]+ failed' | cut -d' ' -f1)
    p=${p:-0}; f=${f:-0}
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    echo "== $1: $p passed, $f failed"
    passed=$((passed + p)); failed=$((failed + f))
}

stage() {
    name=$1; shift
    echo "== $name"
    "$@" > "$log/$name.out" 2>&1
    rc=$?
    tail -n 40 "$log/$name.out"
    count "$name" "$log/$name.out" $rc
}

# stage_bg NAME CMD...: runs a stage in the background; report NAME prints it.
stage_bg() {
    name=$1; shift
    ( "$@" > "$log/$name.out" 2>&1; echo $? > "$log/$name.rc" ) &
}

report() {
    echo "== $1"
    tail -n 40 "$log/$1.out"
    count "$1" "$log/$1.out" "$(cat "$log/$1.rc")"
}

make -s -j"$JOBS" gatewayd gwctl || { echo "0 passed, 1 failed"; exit 1; }
stage format sh -c 'make -s format-check && echo "format: 1 passed, 0 failed"'
stage layers ./test/check-layers.sh
stage unit make -s -j"$JOBS" unit
stage e2e ./test/run-e2e.sh ./gatewayd
GATEWAYD_IO_URING=off stage e2e-sendmsg ./test/run-e2e.sh ./gatewayd \
    -k "test_fanout or test_flood or test_limits or test_drain"
stage sdk ./test/run-sdk.sh
stage fuzz ./test/run-fuzz.sh 12
make -s -j"$JOBS" asan || { echo "$passed passed, $((failed + 1)) failed"; exit 1; }
make -s -j"$JOBS" tsan || { echo "$passed passed, $((failed + 1)) failed"; exit 1; }
stage unit-asan make -s -j"$JOBS" FLAVOR=asan unit
GATEWAYD_TIMEOUT_SCALE=4 stage_bg e2e-asan ./test/run-e2e.sh ./gatewayd-asan
TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1" GATEWAYD_TIMEOUT_SCALE=5 \
    stage_bg e2e-tsan ./test/run-e2e.sh ./gatewayd-tsan
wait
report e2e-asan
report e2e-tsan
rm -rf "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
