#!/bin/sh
# Runs the end-to-end suite (test/e2e) against a gatewayd binary.
#   test/run-e2e.sh [BINARY] [pytest args...]     BINARY defaults to ./gatewayd
# Env: GATEWAYD_TIMEOUT_SCALE multiplies every timeout (3 for sanitizer builds).
# Exits with pytest's status.
bin=${1:-./gatewayd}
[ $# -gt 0 ] && shift
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
cd "$(dirname "$0")/.." || exit 2
GATEWAYD_BIN=$bin PYTHONDONTWRITEBYTECODE=1 \
    exec /usr/bin/python3 -m pytest test/e2e -q -p no:cacheprovider "$@"
