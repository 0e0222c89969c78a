#!/bin/sh
# Instructions per delivery of the fan-out path, with callgrind (counts
# repeat for the same work, whatever else the machine does):
#
#   bench/fanoutcost.sh [GATEWAYD [FUNC...]]
#
# Run from a checkout's root; uses its ./bench/gwbench. Starts a private
# redis-server and GATEWAYD (default ./gatewayd) under `valgrind
# --tool=callgrind` on free loopback ports, with a config like the one
# gwbench writes for the daemons it starts, then drives it with
# `gwbench fanout --guilds 10 --members 100 --event-rate 200 --events 1000
# --target ... --redis ...` (100,000 deliveries, the workload of the
# callgrind runs in bench/README.md), stops it with SIGTERM so that
# callgrind writes its profile, and prints the daemon's total instructions
# (Ir, start-up, connects and shutdown included), the deliveries gwbench
# counted, Ir per delivery, and for each FUNC (default: gw_session_dispatch
# gw_transport_flush; or $FUNCS) its inclusive Ir, calls, Ir per call and per
# delivery (callgrind_annotate --inclusive=yes --tree=caller). Before the
# layering (0f84fd0) the two were gw_conn_dispatch and gw_conn_flush.
#
# Every wait is bounded, everything started here is stopped on exit (also
# on ^C or an error), and the run holds $GW_MEASURE_LOCK like the other
# scripts: the daemon under valgrind keeps a core busy (about 10 s here).
# Binaries are copied first, so a rebuild meanwhile changes nothing. The
# profile, gwbench's report and the logs stay in $OUT. Exit status 0 when
# gwbench's run was ok and the profile was written, 1 otherwise.
#
# Environment: FUNCS, IO_URING (the daemon's server.io_uring: auto, on or
# off; default auto), OUT (build/bench/fanoutcost), WORKERS (2), GUILDS
# (10), MEMBERS (100), EVENT_RATE (200), EVENTS (1000), START_WAIT (60 s),
# STOP_WAIT (120 s), GW_MEASURE_LOCK (/tmp/gw-measure.lock), LOCK_WAIT
# (600 s).
set -u
GATEWAYD=${1:-./gatewayd}
[ $# -gt 0 ] && shift
FUNCS=${*:-${FUNCS:-gw_session_dispatch gw_transport_flush}}
OUT=${OUT:-build/bench/fanoutcost}
WORKERS=${WORKERS:-2}
IO_URING=${IO_URING:-auto}
GUILDS=${GUILDS:-10}
MEMBERS=${MEMBERS:-100}
EVENT_RATE=${EVENT_RATE:-200}
EVENTS=${EVENTS:-1000}
START_WAIT=${START_WAIT:-60}
STOP_WAIT=${STOP_WAIT:-120}
GW_MEASURE_LOCK=${GW_MEASURE_LOCK:-/tmp/gw-measure.lock}
LOCK_WAIT=${LOCK_WAIT:-600}
PY=/usr/bin/python3
SECRET=gwbench-secret # gwbench's default --jwt-secret

PIDS="" # started here and not stopped yet
TMP=""
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"

die() {
    echo "fanoutcost: $*" >&2
    exit 1
}


for t in valgrind callgrind_annotate redis-server redis-cli curl ss flock; do
    command -v $t >/dev/null || die "$t missing (Debian: valgrind redis-server curl iproute2 util-linux)"
done
for f in "$GATEWAYD" ./bench/gwbench; do
    [ -x "$f" ] || die "$f missing: run from a checkout's root after make gatewayd bench/gwbench"
done
mkdir -p "$OUT" || exit 1
rm -f "$OUT"/callgrind.out "$OUT"/*.json "$OUT"/*.log "$OUT"/*.txt
TMP=$(mktemp -d /tmp/gwfanoutcost.XXXXXX) || exit 1
cp "$GATEWAYD" "$TMP/gatewayd" && cp ./bench/gwbench "$TMP/gwbench" || exit 1

exec 9>>"$GW_MEASURE_LOCK" || exit 1
if ! flock -n 9; then
    echo "   (waiting for $GW_MEASURE_LOCK)"
    flock -w "$LOCK_WAIT" 9 || die "$GW_MEASURE_LOCK still held after ${LOCK_WAIT}s"
fi

echo "== fanoutcost $(date -u +%Y-%m-%dT%H:%M:%SZ): $GATEWAYD" \
    "(commit $(git describe --always --dirty 2>/dev/null || echo '?')), nproc" \
    "$(nproc), kernel $(uname -r), load $(cut -d' ' -f1 /proc/loadavg)"

free_port || die "no free loopback port"
RPORT=$PORT
redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no \
    --dir "$TMP" --daemonize no --client-output-buffer-limit \
    "pubsub 256mb 128mb 60" >"$OUT/redis.log" 2>&1 </dev/null 9>&- &
RPID=$!
PIDS="$PIDS $RPID"
wait_for "$RPID" 10 redis_up "$RPORT" || die "redis-server did not answer on $RPORT (see $OUT/redis.log)"

free_port || die "no free loopback port"
WPORT=$PORT
free_port || die "no free loopback port"
HPORT=$PORT
cat >"$TMP/gateway.toml" <<EOF
[server]
bind = "127.0.0.1"
ws_port = $WPORT
http_port = $HPORT
workers = $WORKERS
io_uring = "$IO_URING"

[auth]
jwt_secret = "$SECRET"

[broker]
instance_id = "fanoutcost"

[redis]
enabled = true
host = "127.0.0.1"
port = $RPORT

[amqp]
enabled = false

# Fan-out alone: presence would add its announcements to the deliveries.
[presence]
enabled = false

[log]
level = "warn"
EOF
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
    "$TMP/gatewayd" -c "$TMP/gateway.toml" >"$OUT/gatewayd.log" 2>&1 \
    </dev/null 9>&- &
GPID=$!
PIDS="$PIDS $GPID"
wait_for "$GPID" "$START_WAIT" gw_redis_up "$HPORT" ||
    die "gatewayd under callgrind not healthy with Redis after ${START_WAIT}s (see $OUT/gatewayd.log)"

echo "== gwbench fanout --guilds $GUILDS --members $MEMBERS --event-rate" \
    "$EVENT_RATE --events $EVENTS --target ws://127.0.0.1:$WPORT"
"$TMP/gwbench" fanout --guilds "$GUILDS" --members "$MEMBERS" \
    --event-rate "$EVENT_RATE" --events "$EVENTS" --via redis \
    --target "ws://127.0.0.1:$WPORT" --pid "$GPID" \
    --redis "127.0.0.1:$RPORT" --drain 30 --timeout 240 --quiet \
    --json "$OUT/fanout.json" 2>"$OUT/gwbench.log" 9>&-
rc=$?
[ $rc -eq 0 ] || { tail -n 5 "$OUT/gwbench.log" | sed 's/^/   | /'; }
stop_pid "$GPID" "$STOP_WAIT" || die "gatewayd did not stop on SIGTERM: no profile"
stop_pid "$RPID" 5
[ -s "$OUT/callgrind.out" ] || die "no profile in $OUT/callgrind.out (see $OUT/gatewayd.log)"

callgrind_annotate --inclusive=yes --tree=caller --threshold=100 \
    "$OUT/callgrind.out" >"$OUT/annotate.txt" 2>&1 || die "callgrind_annotate failed"
DELIV=$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]
print(int(r["deliveries"]), int(r["expected"]))' "$OUT/fanout.json") ||
    die "no deliveries in $OUT/fanout.json (see $OUT/gwbench.log)"
# shellcheck disable=SC2086 # one field each
set -- $DELIV
awk -v deliv="$1" -v expect="$2" -v funcs="$FUNCS" '
# Blocks of --tree=caller: "N (P%)  < caller (Kx) [obj]" lines, then
# "N (P%)  *  file:function [obj]"; a function is counted once per block
# that has callers (callgrind_annotate prints it again without them).
function flush() {
    if (fn in want && calls > 0) { ir[fn] += self; ncall[fn] += calls }
    fn = ""; calls = 0
}
BEGIN { n = split(funcs, f, " "); for (i = 1; i <= n; i++) want[f[i]] = 1 }
/PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
/^$/ { flush(); next }
{ n1 = $1; gsub(",", "", n1); s = $0; sub(/^ *[0-9,]+ +\([^)]*\) +/, "", s) }
s ~ /^< / && match(s, /\([0-9,]+x\)/) {
    c = substr(s, RSTART + 1, RLENGTH - 3); gsub(",", "", c); calls += c }
s ~ /^\* / { sub(/^\* +/, "", s); sub(/ \[.*/, "", s); sub(/.*:/, "", s)
             fn = s; self = n1 }
END {
    flush()
    printf "gatewayd Ir total        %.0f\n", total
    printf "deliveries (gwbench)     %.0f of %.0f expected\n", deliv, expect
    printf "Ir per delivery          %.1f\n", deliv ? total / deliv : 0
    for (i = 1; i <= n; i++) {
        k = f[i]
        if (!(k in ir)) { printf "%-24s not in the profile\n", k; continue }
        printf "%-24s inclusive Ir %.0f, calls %.0f, %.1f per call, %.1f per delivery\n",
            k, ir[k], ncall[k], ir[k] / ncall[k], deliv ? ir[k] / deliv : 0
    }
}' "$OUT/annotate.txt" | tee "$OUT/summary.txt"
echo "(profile, report and logs in $OUT)"
[ $rc -eq 0 ] || die "gwbench exit $rc (see $OUT/gwbench.log)"
exit 0
