#!/bin/sh
# A reconnect storm against a presence cluster (`make bench-presence`):
#
#   bench/presence.sh [GATEWAYD]
#
# Run from a checkout's root; uses its ./bench/gwbench. Starts a private
# redis-server (no persistence, in a directory of its own) and INSTANCES
# gatewayd (default ./gatewayd) on free loopback ports, each with its own
# broker.instance_id, RabbitMQ off and presence on, all sharing that Redis;
# then `gwbench presence` against them (SESSIONS users in GUILDS guilds,
# user i on instance i % INSTANCES, then every session reset at once and
# each user back on the next instance: bench/README.md, "Presence: a
# reconnect storm"), then stops everything, also on ^C or an error (trap).
# The open-file limit is raised to NOFILE (or the hard limit) for all of
# them.
#
# The script takes no lock itself: run it under the measurement lock,
# `flock -w 600 /tmp/gw-measure.lock bench/presence.sh`, as
# `make bench-presence` does, so that no two measurements overlap.
#
# Binaries are copied first, so a rebuild meanwhile changes nothing. The
# report (presence-<UTC time>.json), gwbench's summary (.log) and the
# servers' logs stay in OUT. Exit status: gwbench's (0 when every step
# ended in time and the view was right), 1 when a server did not start.
#
# Environment: OUT (build/bench/presence), INSTANCES (3), SESSIONS (5000),
# GUILDS (50), DURATION (10 s watched after the storm settled: longer than
# the grace), GRACE_MS (5000, presence.offline_grace_ms), TTL_MS (15000,
# presence.instance_ttl_ms), WORKERS (0 = one per core, each instance),
# SETTLE_TIMEOUT (30 s a step), NOFILE (20000), START_WAIT (15 s).
set -u
cd "$(dirname "$0")/.." || exit 1
GATEWAYD=${1:-./gatewayd}
OUT=${OUT:-build/bench/presence}
INSTANCES=${INSTANCES:-3}
SESSIONS=${SESSIONS:-5000}
GUILDS=${GUILDS:-50}
DURATION=${DURATION:-10}
GRACE_MS=${GRACE_MS:-5000}
TTL_MS=${TTL_MS:-15000}
WORKERS=${WORKERS:-0}
SETTLE_TIMEOUT=${SETTLE_TIMEOUT:-30}
NOFILE=${NOFILE:-20000}
START_WAIT=${START_WAIT:-15}
SECRET=gwbench-secret # gwbench's default --jwt-secret
API_KEY=gwbench-key   # gwbench's default --api-key

PIDS="" # started here and not stopped yet
TMP=""
# shellcheck source=bench/common.sh
. bench/common.sh

die() {
    echo "presence: $*" >&2
    exit 1
}


# gw_config N WPORT HPORT: instance N's config on stdout.
gw_config() {
    cat <<EOF
[server]
bind = "127.0.0.1"
ws_port = $2
http_port = $3
workers = $WORKERS

[auth]
jwt_secret = "$SECRET"

[http]
publish_api_key = "$API_KEY"

[broker]
instance_id = "presence-$1"

[redis]
enabled = true
host = "127.0.0.1"
port = $RPORT

[amqp]
enabled = false

[presence]
enabled = true
offline_grace_ms = $GRACE_MS
instance_ttl_ms = $TTL_MS
key_prefix = "presence:"

[log]
level = "warn"
EOF
}

# start_gw N: instance N on free ports; appends its gwbench flags to ARGS.
# shellcheck disable=SC2153 # PORT is set by free_port
start_gw() {
    free_port || die "no free loopback port"
    wport=$PORT
    free_port || die "no free loopback port"
    hport=$PORT
    gw_config "$1" "$wport" "$hport" >"$TMP/gw$1.toml"
    "$TMP/gatewayd" -c "$TMP/gw$1.toml" >"$OUT/gatewayd-$1.log" 2>&1 \
        </dev/null &
    gpid=$!
    PIDS="$PIDS $gpid"
    wait_for "$gpid" "$START_WAIT" gw_redis_up "$hport" ||
        die "gatewayd $1 not healthy with Redis after ${START_WAIT}s (see $OUT/gatewayd-$1.log)"
    ARGS="$ARGS --target ws://127.0.0.1:$wport/"
    ARGS="$ARGS --http-url http://127.0.0.1:$hport --pid $gpid"
}

for t in redis-server redis-cli curl ss; do
    command -v $t >/dev/null ||
        die "$t missing (Debian: redis-server redis-tools curl iproute2)"
done
for f in "$GATEWAYD" ./bench/gwbench; do
    [ -x "$f" ] || die "$f missing: run from a checkout's root after make gatewayd bench/gwbench"
done
[ "$((DURATION * 1000))" -gt "$GRACE_MS" ] ||
    echo "presence: DURATION ${DURATION}s is not past the ${GRACE_MS} ms grace: late offlines would go unseen" >&2

# Sockets: gwbench holds SESSIONS, the instances as many between them.
# The limit is the shell's, so that every process started here has it.
# shellcheck disable=SC3045 # dash and bash both take ulimit -n and -Hn
raise_nofile() {
    ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
    NOFILE_NOW=$(ulimit -n)
}
raise_nofile
[ "$NOFILE_NOW" -ge $((SESSIONS + 1024)) ] ||
    die "open-file limit $NOFILE_NOW is too low for $SESSIONS sessions"

mkdir -p "$OUT" || exit 1
TMP=$(mktemp -d /tmp/gwpresence.XXXXXX) || exit 1
cp "$GATEWAYD" "$TMP/gatewayd" && cp ./bench/gwbench "$TMP/gwbench" || exit 1
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

echo "== presence $(date -u +%Y-%m-%dT%H:%M:%SZ): $GATEWAYD" \
    "(tree $(git describe --always --dirty 2>/dev/null || echo '?')) x" \
    "$INSTANCES, nproc $(nproc), kernel $(uname -r), nofile $NOFILE_NOW," \
    "load $(cut -d' ' -f1 /proc/loadavg)"

free_port || die "no free loopback port"
RPORT=$PORT
mkdir "$TMP/redis" || exit 1
redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no \
    --dir "$TMP/redis" --daemonize no >"$OUT/redis.log" 2>&1 </dev/null &
RPID=$!
PIDS="$PIDS $RPID"
wait_for "$RPID" 10 redis_up "$RPORT" ||
    die "redis-server did not answer on $RPORT (see $OUT/redis.log)"

ARGS=""
n=0
while [ $n -lt "$INSTANCES" ]; do
    start_gw "$n"
    n=$((n + 1))
done

JSON=$OUT/presence-$STAMP.json
echo "== gwbench presence -n $SESSIONS --guilds $GUILDS --duration" \
    "$DURATION --redis-pid $RPID$ARGS"
# shellcheck disable=SC2086 # one word per flag
"$TMP/gwbench" presence -n "$SESSIONS" --guilds "$GUILDS" \
    --duration "$DURATION" --settle-timeout "$SETTLE_TIMEOUT" \
    --presence-ttl-ms "$TTL_MS" --redis-pid "$RPID" --timeout 280 --quiet \
    $ARGS \
    --json "$JSON" 2>"$OUT/presence-$STAMP.log"
rc=$?
[ $rc -eq 0 ] || sed 's/^/   | /' "$OUT/presence-$STAMP.log" | grep -i 'gwbench:' >&2
for p in $PIDS; do
    alive "$p" || { echo "presence: pid $p exited during the run" >&2; rc=1; }
done
"$TMP/gwbench" summary "$JSON"
echo "(report, gwbench's summary and the servers' logs in $OUT)"
exit $rc
