#!/bin/sh
# Side by side (`make bench-compare`): the same `idle` and `fanout` workloads
# against gatewayd and each peer server of ../shared/peers, in one run:
#
#   gatewayd     ./gatewayd started by gwbench as usual (fanout via a
#                private redis-server that gwbench starts)
#   ref-node-ws  the reference Node.js gateway with its own private
#                redis-server (fanout via Redis, like gatewayd)
#   nchan        nginx + nchan: --proto nchan, fanout published --via http
#   gatewayd-tls gatewayd as above, its clients over wss:// (an ECDSA P-256
#                certificate made here with openssl)
#   nchan-tls    nginx + nchan serving wss:// with the same certificate,
#                TLS 1.2 and the suites and groups gatewayd offers;
#                fanout published over plain HTTP on a second port
#   uws          the uWebSockets peer (C++, uWS's own pub/sub, gatewayd's
#                identify protocol without token checks), built here from
#                the source trees $UWS_DIR and $USOCKETS_DIR with the peer's
#                build.sh; fanout published by HTTP POST /pub/g<guild>.
#                Skipped, with one note, when either is unset or absent.
#
# Then an overload step, fanout at OVERLOAD_RATE events/s, for the servers
# of OVERLOAD_SERVERS that run; and, when bench/ceiling is built (make
# bench), the machine's raw loopback fan-out ceiling, against which each
# deliveries-per-server-CPU-second figure is given as a share.
#
# Each peer is started afresh for each run (RSS never shrinks: a server that
# held sessions before gives a false idle baseline), directly, so that $! is
# the server (the start scripts exec it), on free loopback ports of our own
# below the ephemeral range, and stopped after the run, also on ^C or an
# error (trap). Each run - starting the peer, the gwbench run, stopping the
# peer - holds $GW_MEASURE_LOCK (flock(1) on fd 9), so that no two
# measurements on this machine overlap. Do not run this script itself under
# that lock: it would wait for itself.
#
# Writes each run's JSON report (and gwbench's summary, .log) and the peers'
# logs to $OUT, then prints one table (also in $OUT/table.txt): per server
# the RSS per idle session, deliveries/s, delivered share, p50/p99, deliveries
# per server CPU-second, server and gwbench CPU, stolen time; then the ratios
# of gatewayd to each peer (over TLS: of gatewayd-tls to nchan-tls); then
# deliveries per server CPU-second at both rates beside the ceiling, and
# gatewayd / uWebSockets. Exit status 0 when every server started and
# every run was ok, 1 otherwise (a server that fails to start is reported and
# the others still run; uws without UWS_DIR or USOCKETS_DIR is skipped, not
# failed). About eight minutes; the first start of ref-node-ws also runs
# `npm install`.
#
# Environment: OUT (build/bench/compare), SERVERS ("gatewayd ref-node-ws
# nchan gatewayd-tls nchan-tls uws"), OVERLOAD_SERVERS ("gatewayd uws"),
# OVERLOAD_RATE (2000), UWS_DIR and USOCKETS_DIR (unset: no uws), UWS_BUILD
# (build/uws-peer), UWS_PUBLISHERS (16), CEILING_ARGS ("-f 300000 -b 0,64,1024"), SESSIONS (5000), HOLD (10 s), HEARTBEAT_MS (5000), GUILDS (50),
# MEMBERS (100), EVENT_RATE (1000), DURATION (10 s), GW_WORKERS (0 = one per
# core), NCHAN_WORKERS (1), PEERS (../shared/peers), GW_MEASURE_LOCK
# (/tmp/gw-measure.lock), LOCK_WAIT (600 s).
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-build/bench/compare}
SERVERS=${SERVERS:-gatewayd ref-node-ws nchan gatewayd-tls nchan-tls uws}
OVERLOAD_SERVERS=${OVERLOAD_SERVERS:-gatewayd uws}
OVERLOAD_RATE=${OVERLOAD_RATE:-2000}
UWS_DIR=${UWS_DIR:-}
USOCKETS_DIR=${USOCKETS_DIR:-}
UWS_BUILD=${UWS_BUILD:-build/uws-peer}
# uWS answers a POST on the loop that does the fan-out: with gwbench's
# default 4 connections (one request in flight each) the publisher falls
# behind by seconds at 1,000 events/s; 16 keep it within ~50 ms.
UWS_PUBLISHERS=${UWS_PUBLISHERS:-16}
CEILING_ARGS=${CEILING_ARGS:--f 300000 -b 0,64,1024}
SESSIONS=${SESSIONS:-5000}
HOLD=${HOLD:-10}
HEARTBEAT_MS=${HEARTBEAT_MS:-5000}
GUILDS=${GUILDS:-50}
MEMBERS=${MEMBERS:-100}
EVENT_RATE=${EVENT_RATE:-1000}
DURATION=${DURATION:-10}
GW_WORKERS=${GW_WORKERS:-0}
NCHAN_WORKERS=${NCHAN_WORKERS:-1}
PEERS=${PEERS:-../shared/peers}
GW_MEASURE_LOCK=${GW_MEASURE_LOCK:-/tmp/gw-measure.lock}
LOCK_WAIT=${LOCK_WAIT:-600}
GWBENCH=./bench/gwbench
PY=/usr/bin/python3
JWT_SECRET=gwbench-secret # gwbench's default --jwt-secret

PIDS=""   # servers started here and not stopped yet
# shellcheck source=bench/common.sh
. bench/common.sh
FAILED=0
TMP=""

# --- loopback ports and readiness ----------------------------------------------

# wait_listen PID PORT SECONDS [LOG WORD]: waits until PID listens on PORT
# (and LOG contains WORD); fails when PID exits or the time is up.
wait_listen() {
    i=0
    while [ $i -lt $(($3 * 10)) ]; do
        alive "$1" || return 1
        if ss -Hltnp "sport = :$2" 2>/dev/null | grep -q "pid=$1," &&
            { [ $# -lt 5 ] || grep -q "$5" "$4" 2>/dev/null; }; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# --- the lock ----------------------------------------------------------------

exec 9>>"$GW_MEASURE_LOCK" || exit 1
lock() {
    flock -n 9 && return 0
    t0=$(date +%s)
    echo "   (waiting for $GW_MEASURE_LOCK)"
    flock -w "$LOCK_WAIT" 9 &&
        echo "   (waited $(($(date +%s) - t0)) s)" && return 0
    echo "$GW_MEASURE_LOCK still held after ${LOCK_WAIT}s" >&2
    return 1
}
unlock() { flock -u 9; }

# --- peers ---------------------------------------------------------------------

# note SERVER SCENARIO STATUS...: one line of $OUT/status.txt.
note() {
    echo "$*" >>"$OUT/status.txt"
    case $3 in ok) ;; *) FAILED=1 ;; esac
}

# start_redis NAME: private redis-server on RPORT, pid RPID.
start_redis() {
    free_port || return 1
    RPORT=$PORT
    REDIS_PORT=$RPORT "$PEERS/redis/start.sh" >"$OUT/$1.redis.log" 2>&1 \
        </dev/null 9>&- &
    RPID=$!
    PIDS="$PIDS $RPID"
    wait_listen "$RPID" "$RPORT" 10 && return 0
    WHY="redis-server did not listen on 127.0.0.1:$RPORT (see $OUT/$1.redis.log)"
    return 1
}

# start_ref_node_ws NAME: ref-node-ws on SPORT (pid SPID) with its redis.
start_ref_node_ws() {
    WHY="no free port"
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        WHY="node/npm not installed (Debian: nodejs npm; ioredis wants node >= 20)"
        return 1
    fi
    start_redis "$1" || return 1
    free_port || return 1
    SPORT=$PORT
    # The first start runs npm install: give it time.
    wait_s=30
    [ -d "$PEERS/ref-node-ws/node_modules/ws" ] || wait_s=180
    PORT=$SPORT REDIS_PORT=$RPORT JWT_SECRET=$JWT_SECRET \
        HEARTBEAT_MS=$HEARTBEAT_MS "$PEERS/ref-node-ws/start.sh" \
        >"$OUT/$1.server.log" 2>&1 </dev/null 9>&- &
    SPID=$!
    PIDS="$PIDS $SPID"
    wait_listen "$SPID" "$SPORT" "$wait_s" "$OUT/$1.server.log" subscribed &&
        return 0
    WHY="ref-node-ws not listening and subscribed on 127.0.0.1:$SPORT after ${wait_s}s (see $OUT/$1.server.log)"
    return 1
}

# start_nchan NAME: nginx+nchan on SPORT (master pid SPID).
start_nchan() {
    WHY="no free port"
    if [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
        WHY="nginx-light libnginx-mod-nchan not installed"
        return 1
    fi
    free_port || return 1
    SPORT=$PORT
    prefix=$TMP/$1.nginx
    PORT=$SPORT NCHAN_WORKERS=$NCHAN_WORKERS PREFIX=$prefix \
        "$PEERS/nchan/start.sh" >"$OUT/$1.server.log" 2>&1 </dev/null 9>&- &
    SPID=$!
    PIDS="$PIDS $SPID"
    wait_listen "$SPID" "$SPORT" 10 && return 0
    [ -f "$prefix/error.log" ] && cat "$prefix/error.log" >>"$OUT/$1.server.log"
    WHY="nginx+nchan not listening on 127.0.0.1:$SPORT (see $OUT/$1.server.log)"
    return 1
}

# start_nchan_tls NAME: nginx+nchan serving wss:// on SPORT and plain HTTP
# (the publisher's) on PPORT, master pid SPID. The peer's start.sh serves
# plain HTTP only: its template is rendered here as start.sh renders it,
# with the listen line made a TLS one (TLS 1.2, gatewayd's suites and
# groups in its order, session tickets as nginx has them by default).
start_nchan_tls() {
    WHY="no free port"
    if [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
        WHY="nginx-light libnginx-mod-nchan not installed"
        return 1
    fi
    free_port || return 1
    SPORT=$PORT
    free_port || return 1
    PPORT=$PORT
    prefix=$TMP/$1.nginx
    mkdir -p "$prefix" || return 1
    # shellcheck disable=SC3045 # dash and bash both take ulimit -n and -Hn
    nofile=$(ulimit -Hn)
    [ "$nofile" = unlimited ] && nofile=1048576
    suites=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305
    suites=$suites:ECDHE-ECDSA-AES256-GCM-SHA384
    sed -e "s#@PORT@#$SPORT#g" -e "s#@WORKERS@#$NCHAN_WORKERS#g" \
        -e "s#@PREFIX@#$prefix#g" -e "s#@NOFILE@#$nofile#g" \
        -e "s#@WORKER_CONNS@#$((nofile - 100))#g" \
        -e "s#^\( *\)listen 127.0.0.1:$SPORT \(.*\);#\1listen 127.0.0.1:$SPORT ssl \2;\n\1listen 127.0.0.1:$PPORT;\n\1ssl_certificate $TMP/ec.crt;\n\1ssl_certificate_key $TMP/ec.key;\n\1ssl_protocols TLSv1.2;\n\1ssl_ciphers $suites;\n\1ssl_prefer_server_ciphers on;\n\1ssl_ecdh_curve X25519:prime256v1:secp384r1;#" \
        "$PEERS/nchan/nginx.conf.in" >"$prefix/nginx.conf" || return 1
    if ! grep -q "listen 127.0.0.1:$SPORT ssl" "$prefix/nginx.conf"; then
        WHY="$PEERS/nchan/nginx.conf.in has no listen line of the form this script makes TLS"
        return 1
    fi
    (
        # shellcheck disable=SC3045 # as above
        ulimit -n "$nofile" 2>/dev/null
        exec nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"
    ) >"$OUT/$1.server.log" 2>&1 </dev/null 9>&- &
    SPID=$!
    PIDS="$PIDS $SPID"
    wait_listen "$SPID" "$SPORT" 10 && return 0
    [ -f "$prefix/error.log" ] && cat "$prefix/error.log" >>"$OUT/$1.server.log"
    WHY="nginx+nchan over TLS not listening on 127.0.0.1:$SPORT (see $OUT/$1.server.log)"
    return 1
}

# build_uws: bin/uws-gateway under $UWS_BUILD from $UWS_DIR and
# $USOCKETS_DIR by the peer's build.sh, run on copies of the peer's files
# there (the build writes beside its script: nothing lands in $PEERS). It
# builds again only when a tree's commit or the peer's files changed. Sets
# UWS_BIN, or WHY and fails.
build_uws() {
    if [ -z "$UWS_DIR" ] || [ -z "$USOCKETS_DIR" ]; then
        WHY="UWS_DIR and USOCKETS_DIR (uNetworking/uWebSockets and uSockets source trees) not set"
        return 1
    fi
    if [ ! -d "$UWS_DIR" ] || [ ! -d "$USOCKETS_DIR" ]; then
        WHY="UWS_DIR=$UWS_DIR or USOCKETS_DIR=$USOCKETS_DIR is not a directory"
        return 1
    fi
    if [ ! -f "$PEERS/uws/build.sh" ] || [ ! -f "$PEERS/uws/server.cpp" ]; then
        WHY="$PEERS/uws has no build.sh and server.cpp"
        return 1
    fi
    mkdir -p "$UWS_BUILD" || return 1
    stamp=$({
        git -C "$UWS_DIR" rev-parse HEAD 2>/dev/null ||
            git --git-dir="$UWS_DIR" rev-parse HEAD 2>/dev/null
        git -C "$USOCKETS_DIR" rev-parse HEAD 2>/dev/null ||
            git --git-dir="$USOCKETS_DIR" rev-parse HEAD 2>/dev/null
        cat "$PEERS/uws/build.sh" "$PEERS/uws/server.cpp"
    } | sha256sum | cut -d' ' -f1)
    UWS_BIN=$UWS_BUILD/bin/uws-gateway
    if [ -x "$UWS_BIN" ] && [ "$(cat "$UWS_BUILD/stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    echo "== building the uWebSockets peer in $UWS_BUILD (about 15 s of CPU)"
    cp "$PEERS/uws/build.sh" "$PEERS/uws/server.cpp" "$UWS_BUILD/" || return 1
    if ! timeout 600 nice "$UWS_BUILD/build.sh" "$UWS_DIR" "$USOCKETS_DIR" \
        >"$UWS_BUILD/build.log" 2>&1 </dev/null 9>&-; then
        WHY="the uWebSockets peer did not build (see $UWS_BUILD/build.log)"
        return 1
    fi
    echo "$stamp" >"$UWS_BUILD/stamp"
}

# start_uws NAME: the uWebSockets peer on SPORT (pid SPID); it publishes
# what is POSTed to /pub/<guild> on the same port.
start_uws() {
    WHY="no free port"
    free_port || return 1
    SPORT=$PORT
    PORT=$SPORT "$UWS_BIN" >"$OUT/$1.server.log" 2>&1 </dev/null 9>&- &
    SPID=$!
    PIDS="$PIDS $SPID"
    wait_listen "$SPID" "$SPORT" 10 && return 0
    WHY="the uWebSockets peer not listening on 127.0.0.1:$SPORT (see $OUT/$1.server.log)"
    return 1
}

# run_ceiling: the machine's raw loopback fan-out ceiling under the lock,
# into $OUT/ceiling.json, when bench/ceiling is built (at most 300 s).
run_ceiling() {
    if [ ! -x ./bench/ceiling ]; then
        echo "== ceiling: bench/ceiling not built (make bench/ceiling); no shares of it"
        return
    fi
    lock || { note ceiling run "no measurement: $GW_MEASURE_LOCK busy"; return; }
    echo "== ceiling (load $(cut -d' ' -f1 /proc/loadavg)): bench/ceiling $CEILING_ARGS"
    # shellcheck disable=SC2086 # $CEILING_ARGS is split into flags on purpose
    if timeout 300 ./bench/ceiling $CEILING_ARGS -o "$OUT/ceiling.json" \
        >"$OUT/ceiling.log" 2>&1 9>&-; then
        sed 's/^/   /' "$OUT/ceiling.log"
        note ceiling run ok
    else
        tail -n 5 "$OUT/ceiling.log" | sed 's/^/   | /'
        note ceiling run "bench/ceiling failed (see $OUT/ceiling.log)"
    fi
    unlock
}

stop_peer() {
    for p in $PIDS; do stop_pid "$p"; done
}

# --- runs ----------------------------------------------------------------------

# measure SERVER SCENARIO GWBENCH-ARGS...: one gwbench run; its report goes
# to $OUT/SERVER-SCENARIO.json, its summary to .log.
measure() {
    name=$1-$2
    srv=$1
    scen=$2
    shift 2
    echo "== $name (load $(cut -d' ' -f1 /proc/loadavg)): gwbench $*"
    t0=$(date +%s)
    "$GWBENCH" "$@" --quiet --timeout 120 --json "$OUT/$name.json" \
        2>"$OUT/$name.log" 9>&-
    rc=$?
    if [ -s "$OUT/$name.json" ]; then
        printf '   %ss: ' $(($(date +%s) - t0))
        "$GWBENCH" summary "$OUT/$name.json" 2>&1 | sed 's/  *(.*)$//'
    fi
    if [ $rc -eq 0 ]; then
        note "$srv" "$scen" ok
    else
        tail -n 5 "$OUT/$name.log" | sed 's/^/   | /'
        note "$srv" "$scen" "gwbench exit $rc (see $OUT/$name.log)"
    fi
}

# step SERVER SCENARIO: under the lock, start the server if it is a peer,
# run gwbench against it, stop it.
step() {
    srv=$1
    scen=$2
    name=$1-$2
    lock || { note "$srv" "$scen" "no measurement: $GW_MEASURE_LOCK busy"; return; }
    case $scen in
    idle) load="idle -n $SESSIONS --duration $HOLD" ;;
    fanout) load="fanout --guilds $GUILDS --members $MEMBERS --event-rate $EVENT_RATE --duration $DURATION" ;;
    *) load="fanout --guilds $GUILDS --members $MEMBERS --event-rate $OVERLOAD_RATE --duration $DURATION" ;;
    esac
    # shellcheck disable=SC2086 # $load is split into flags on purpose
    case $srv in
    gatewayd)
        if [ "$scen" = idle ]; then
            measure "$srv" "$scen" $load --heartbeat-ms "$HEARTBEAT_MS" \
                --gatewayd "$GATEWAYD" --workers "$GW_WORKERS"
        else
            measure "$srv" "$scen" $load --via redis \
                --gatewayd "$GATEWAYD" --workers "$GW_WORKERS"
        fi
        ;;
    ref-node-ws)
        if start_ref_node_ws "$name"; then
            if [ "$scen" = idle ]; then
                measure "$srv" "$scen" $load \
                    --target "ws://127.0.0.1:$SPORT" --pid "$SPID"
            else
                measure "$srv" "$scen" $load --via redis \
                    --redis "127.0.0.1:$RPORT" \
                    --target "ws://127.0.0.1:$SPORT" --pid "$SPID"
            fi
        else
            echo "== $name: did not start: $WHY"
            note "$srv" "$scen" "did not start: $WHY"
        fi
        ;;
    gatewayd-tls)
        if [ "$scen" = idle ]; then
            measure "$srv" "$scen" $load --heartbeat-ms "$HEARTBEAT_MS" \
                --tls all $TLS_PAIR --gatewayd "$GATEWAYD" \
                --workers "$GW_WORKERS"
        else
            measure "$srv" "$scen" $load --via redis --tls all $TLS_PAIR \
                --gatewayd "$GATEWAYD" --workers "$GW_WORKERS"
        fi
        ;;
    nchan-tls)
        if start_nchan_tls "$name"; then
            if [ "$scen" = idle ]; then
                measure "$srv" "$scen" $load --proto nchan \
                    --target "wss://127.0.0.1:$SPORT" --pid "$SPID"
            else
                measure "$srv" "$scen" $load --proto nchan --via http \
                    --target "wss://127.0.0.1:$SPORT" \
                    --publish-url "http://127.0.0.1:$PPORT/pub/" --pid "$SPID"
            fi
        else
            echo "== $name: did not start: $WHY"
            note "$srv" "$scen" "did not start: $WHY"
        fi
        ;;
    uws)
        if start_uws "$name"; then
            if [ "$scen" = idle ]; then
                measure "$srv" "$scen" $load \
                    --target "ws://127.0.0.1:$SPORT" --pid "$SPID"
            else
                measure "$srv" "$scen" $load --via http \
                    --publishers "$UWS_PUBLISHERS" \
                    --target "ws://127.0.0.1:$SPORT" \
                    --publish-url "http://127.0.0.1:$SPORT/pub/" --pid "$SPID"
            fi
        else
            echo "== $name: did not start: $WHY"
            note "$srv" "$scen" "did not start: $WHY"
        fi
        ;;
    nchan)
        if start_nchan "$name"; then
            if [ "$scen" = idle ]; then
                measure "$srv" "$scen" $load --proto nchan \
                    --target "ws://127.0.0.1:$SPORT" --pid "$SPID"
            else
                measure "$srv" "$scen" $load --proto nchan --via http \
                    --target "ws://127.0.0.1:$SPORT" --pid "$SPID"
            fi
        else
            echo "== $name: did not start: $WHY"
            note "$srv" "$scen" "did not start: $WHY"
        fi
        ;;
    *)
        note "$srv" "$scen" "unknown server (SERVERS: gatewayd ref-node-ws nchan gatewayd-tls nchan-tls uws)"
        ;;
    esac
    stop_peer
    unlock
}

# --- main ----------------------------------------------------------------------

case " $SERVERS " in *" nchan "* | *" nchan-tls "* | *" ref-node-ws "*)
    ./test/install-deps.sh nginx-light libnginx-mod-nchan redis-server ||
        echo "warning: peer packages missing; those peers will not start" >&2 ;;
esac
mkdir -p "$OUT" || exit 1
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT/status.txt" "$OUT/table.txt"
: >"$OUT/status.txt"
TMP=$(mktemp -d /tmp/gwcompare.XXXXXX) || exit 1
chmod 755 "$TMP" # nginx's workers run as nobody
# Copies of the binaries: a rebuild meanwhile (others work in this tree)
# must not change or break them halfway through the run.
for f in "$GWBENCH" ./gatewayd; do
    [ -x "$f" ] || { echo "$f missing: make FLAVOR=release gatewayd bench/gwbench" >&2; exit 1; }
    cp "$f" "$TMP/" || exit 1
done
GWBENCH=$TMP/gwbench
GATEWAYD=$TMP/gatewayd
# The certificate of the TLS runs, gatewayd's and nginx's alike.
case " $SERVERS " in *"-tls "*)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$TMP/ec.key" -out "$TMP/ec.crt" -days 2 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost 2>/dev/null ||
        { echo "openssl could not make a certificate" >&2; exit 1; } ;;
esac
TLS_PAIR="--tls-cert $TMP/ec.crt --tls-key $TMP/ec.key"
# The uWebSockets peer, or one note why not and the others without it
# (not a failure when UWS_DIR or USOCKETS_DIR is unset).
case " $SERVERS " in *" uws "*)
    if ! build_uws; then
        echo "== uws: skipped: $WHY"
        echo "uws skipped $WHY" >>"$OUT/status.txt"
        # Asked for (both set) and not built: that run failed.
        [ -n "$UWS_DIR" ] && [ -n "$USOCKETS_DIR" ] && FAILED=1
        SERVERS=$(echo " $SERVERS " | sed 's/ uws / /; s/^ *//; s/ *$//')
    fi ;;
esac

echo "== gwbench compare $(date -u +%Y-%m-%dT%H:%M:%SZ): nproc $(nproc)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg); servers: $SERVERS;" \
    "commit $(git describe --always --dirty 2>/dev/null || echo '?')"
run_ceiling
for scen in idle fanout overload; do
    for srv in $SERVERS; do
        case $scen in overload)
            case " $OVERLOAD_SERVERS " in *" $srv "*) ;; *) continue ;; esac ;;
        esac
        step "$srv" "$scen"
    done
done

DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) SESSIONS=$SESSIONS HOLD=$HOLD \
    HEARTBEAT_MS=$HEARTBEAT_MS GUILDS=$GUILDS MEMBERS=$MEMBERS \
    EVENT_RATE=$EVENT_RATE DURATION=$DURATION GW_WORKERS=$GW_WORKERS \
    NCHAN_WORKERS=$NCHAN_WORKERS OVERLOAD_RATE=$OVERLOAD_RATE \
    OVERLOAD_SERVERS=$OVERLOAD_SERVERS \
    PYTHONPATH=bench "$PY" - "$OUT" "$SERVERS" <<'EOF' || FAILED=1
# The comparison table, from the reports and $OUT/status.txt.
import os, sys

from benchtab import get, load, ms, num, ratio, share, table


def share_of(x, ceiling):
    return "-" if x is None or not ceiling else f"{100 * x / ceiling:.0f} %"

out, servers = sys.argv[1], sys.argv[2].split()
env = os.environ
status = {}
with open(os.path.join(out, "status.txt")) as f:
    for line in f:
        srv, scen, st = (line.rstrip("\n").split(" ", 2) + ["", ""])[:3]
        status[(srv, scen)] = st


def load_run(srv, scen):
    return load(os.path.join(out, f"{srv}-{scen}.json"))


nchan_workers = (f"{env['NCHAN_WORKERS']} worker"
                 f"{'' if env['NCHAN_WORKERS'] == '1' else 's'}")
label = {
    "gatewayd": f"gatewayd (workers {env['GW_WORKERS']})",
    "ref-node-ws": "ref-node-ws",
    "nchan": f"nchan ({nchan_workers})",
    "gatewayd-tls": f"gatewayd wss:// (workers {env['GW_WORKERS']})",
    "nchan-tls": f"nchan wss:// ({nchan_workers})",
    "uws": "uWebSockets (uws peer)",
}
overload_servers = env["OVERLOAD_SERVERS"].split()
rows, notes, figures = [], [], {}
# A peer skipped before the runs (its note is in status.txt).
for (srv, scen), st in status.items():
    if scen == "skipped":
        notes.append(f"{srv} skipped: {st}")
# The machine's io_uring ceiling: the writer's frames per CPU-second of the
# best io_uring batch size (batch 0 is one sendmsg per frame).
ceil = load(os.path.join(out, "ceiling.json"))
ceil_runs = [r for r in (get(ceil, "runs") or []) if r.get("complete")]
ceil_uring = max((r["writer_frames_per_cpu_s"] for r in ceil_runs
                  if r["batch"] > 0), default=None)
ceil_send = next((r["writer_frames_per_cpu_s"] for r in ceil_runs
                  if r["batch"] == 0), None)
for srv in servers:
    idle, fan = load_run(srv, "idle"), load_run(srv, "fanout")
    ri, rf = get(idle, "results") or {}, get(fan, "results") or {}
    fig = {
        "rss": get(ri, "rss_per_session_bytes"),
        "dps": get(rf, "deliveries_per_s"),
        "p99": get(rf, "latency.p99_ms"),
        "dpc": get(rf, "deliveries_per_server_cpu_s"),
    }
    figures[srv] = fig
    si, sf = get(ri, "hold.machine_steal_s"), get(rf, "machine_steal_s")
    rows.append([
        label.get(srv, srv),
        num(fig["rss"]),
        num(get(ri, "rss_per_session_end_bytes")),
        num(fig["dps"]),
        share(get(rf, "delivered_share")),
        ms(get(rf, "latency.p50_ms")),
        ms(fig["p99"]),
        num(fig["dpc"]),
        num(get(rf, "server_cpu_pct")),
        num(get(rf, "gwbench_cpu_s"), 2),
        f"{num(si, 2)} / {num(sf, 2)}",
    ])
    over = load_run(srv, "overload")
    ro = get(over, "results") or {}
    fig["odpc"] = get(ro, "deliveries_per_server_cpu_s")
    fig["over"] = ro
    runs = [("idle", idle, ri), ("fanout", fan, rf)]
    if srv in overload_servers:
        runs.append(("overload", over, ro))
    for scen, rep, res in runs:
        st = status.get((srv, scen), "not run")
        if st != "ok":
            notes.append(f"{srv} {scen}: {st}")
        if rep is not None and rep.get("ok") is False:
            notes.append(f"{srv} {scen}: report says ok: false")
        if res and get(res, "identified") != get(res, "sessions"):
            notes.append(f"{srv} {scen}: {num(get(res, 'identified'))} of "
                         f"{num(get(res, 'sessions'))} sessions identified")
        counters = get(res, "hold.counters") or get(res, "window_counters") or {}
        for k in ("closed_by_server", "close_4009", "close_4010", "errors"):
            if counters.get(k):
                notes.append(f"{srv} {scen}: {k} {counters[k]:,.0f}")
        st = get(res, "hold.machine_steal_s" if scen == "idle"
                 else "machine_steal_s")
        oc = get(res, "hold.machine_other_cpu_s" if scen == "idle"
                 else "machine_other_cpu_s")
        if oc is not None and oc >= 2:
            notes.append(f"{srv} {scen}: {oc:.1f} s of CPU went to other "
                         "processes in the window (a shared machine)")
        if st is not None and st >= 1:
            notes.append(f"{srv} {scen}: the hypervisor took {st:.2f} s of "
                         "CPU in the window")
        lag = get(res, "events.max_publish_lag_ms")
        if lag is not None and lag >= 100:
            notes.append(f"{srv} {scen}: the publisher fell {lag:,.0f} ms "
                         "behind its schedule (the server took events late)")
        if get(res, "events.failed"):
            notes.append(f"{srv} {scen}: {get(res, 'events.failed'):,.0f} "
                         "events not accepted by the server")

head = ["server", "idle B/session", "(after hold)", "deliveries/s",
        "delivered", "p50 ms", "p99 ms", "deliv/server CPU-s",
        "server CPU %", "gwbench CPU s", "steal s idle/fanout"]


e = env
offered = int(e["EVENT_RATE"]) * int(e["MEMBERS"])
lines = [
    f"== compare {e['DATE']}: idle = {int(e['SESSIONS']):,} sessions held "
    f"{e['HOLD']} s (heartbeat {e['HEARTBEAT_MS']} ms; nchan pings every 30 s);",
    f"   fanout = {e['GUILDS']} x {e['MEMBERS']} sessions, "
    f"{int(e['EVENT_RATE']):,} events/s = {offered:,} deliveries/s offered "
    f"for {e['DURATION']} s (gatewayd, ref-node-ws via Redis; nchan, uWebSockets "
    "via HTTP)",
    "",
] + table(head, rows, 0)
# Each peer beside gatewayd served the same way: plain, or over TLS.
pairs = [(s, "gatewayd-tls" if s.endswith("-tls") else "gatewayd")
         for s in servers if not s.startswith("gatewayd")]
pairs = [(s, g) for s, g in pairs if g in figures]
if pairs:
    lines += ["", "ratios, > 1 = gatewayd better:"]
    lines += table(
        ["peer", "beside", "memory per idle session (peer / gatewayd)",
         "deliveries per server CPU-s (gatewayd / peer)",
         "fanout p99 (peer / gatewayd)"],
        [[s, g, ratio(figures[s]["rss"], figures[g]["rss"]),
          ratio(figures[g]["dpc"], figures[s]["dpc"]),
          ratio(figures[s]["p99"], figures[g]["p99"])] for s, g in pairs], 0)
# Deliveries per server CPU-second at the two rates, beside the ceiling.
crows = []
for srv in servers:
    f = figures[srv]
    ro = f["over"]
    crows.append([
        label.get(srv, srv), num(f["dpc"]),
        share_of(f["dpc"], ceil_uring),
        num(f["odpc"]) if srv in overload_servers else "",
        share_of(f["odpc"], ceil_uring) if srv in overload_servers else "",
        share(get(ro, "delivered_share")) if srv in overload_servers else "",
        ms(get(ro, "latency.p99_ms")) if srv in overload_servers else "",
    ])
orate = int(e["OVERLOAD_RATE"])
lines += ["", f"deliveries per server CPU-second at {int(e['EVENT_RATE']):,} "
          f"events/s (fanout) and at {orate:,} events/s = "
          f"{orate * int(e['MEMBERS']):,} deliveries/s offered (overload):"]
lines += table(["server", "fanout", "of ceiling", "overload",
                "of ceiling", "delivered", "p99 ms"], crows, 0)
if ceil_uring is not None:
    lines += [f"ceiling: the machine's raw loopback fan-out, bench/ceiling "
              f"{get(ceil, 'conns'):,} connections x {get(ceil, 'frames'):,} "
              f"frames of {get(ceil, 'size')} B: {ceil_uring:,.0f} frames "
              f"per writer CPU-second with io_uring batches "
              f"(one sendmsg per frame: {num(ceil_send)})"]
else:
    lines += ["ceiling: not measured (make bench/ceiling)"]
if "uws" in figures and "gatewayd" in figures:
    g, u = figures["gatewayd"], figures["uws"]
    lines += ["", "gatewayd / uWebSockets, deliveries per server CPU-second: "
              f"fanout {ratio(g['dpc'], u['dpc'])}, overload "
              f"{ratio(g['odpc'], u['odpc'])}; memory per idle session "
              f"uWebSockets / gatewayd {ratio(u['rss'], g['rss'])} "
              "(> 1 = gatewayd better)"]
lines += ["", "RSS: user-space memory of the server and its children (not "
          "redis); CPU: the server's, over the fanout window;",
          "steal: CPU time the hypervisor took from the machine in the idle "
          "hold / the fanout window."]
if notes:
    lines += ["", "notes:"] + ["  " + n for n in notes]
text = "\n".join(lines) + "\n"
sys.stdout.write(text)
with open(os.path.join(out, "table.txt"), "w") as f:
    f.write(text)
EOF
echo "(reports, logs and this table in $OUT)"
exit $FAILED
