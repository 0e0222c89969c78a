#!/bin/sh
# The JavaScript client SDK's tests (sdk/js), as `make test` runs them:
#   types    tsc --noEmit over src/index.d.ts and test/types.ts
#   unit     node --test against the scripted fake server (test/fake.js)
#   e2e      node --test against ./gatewayd (or $GATEWAYD_BIN), started
#            by the test itself on free loopback ports (test/gateway.js)
#   browser  the example page and the dashboard in headless Chromium
#            (Debian's chromium through puppeteer-core); screenshots in
#            $SDK_TEST_OUT (default build/sdk-test)
# Needs `make test-deps` (chromium, and npm ci in sdk/js). Prints
# "N passed, M failed".
set -u
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
sdk=$root/sdk/js
export GATEWAYD_BIN=${GATEWAYD_BIN:-$root/gatewayd}
export SDK_TEST_OUT=${SDK_TEST_OUT:-$root/build/sdk-test}
mkdir -p "$SDK_TEST_OUT"
passed=0; failed=0

if [ ! -d "$sdk/node_modules/typescript" ] || [ ! -d "$sdk/node_modules/puppeteer-core" ]; then
    echo "sdk/js/node_modules is missing: run make test-deps"
    echo "0 passed, 1 failed"
    exit 1
fi

if (cd "$sdk" && ./node_modules/.bin/tsc -p tsconfig.json); then
    echo "types: ok"; passed=$((passed + 1))
else
    echo "types: FAILED"; failed=$((failed + 1))
fi

for t in unit e2e browser; do
    out=$(mktemp)
    # Each file alone: the timing tests do not share the two cores.
    (cd "$sdk" && timeout 300 node --test --test-reporter=tap "test/$t.test.js") > "$out" 2>&1
    rc=$?
    p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$out" | tail -1)
    f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$out" | tail -1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ "$f" -ne 0 ]; then
        grep -v '^    ' "$out" | grep -E -A30 '^not ok|^# ' | head -120
    fi
    echo "$t: $p passed, $f failed"
    passed=$((passed + p)); failed=$((failed + f))
    rm -f "$out"
done
echo "screenshots: $SDK_TEST_OUT"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
