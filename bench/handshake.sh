#!/bin/sh
# What a TLS handshake costs the server, with a client that costs little
# (`make bench-handshake`):
#
#   bench/handshake.sh
#
# gwbench's TLS client is mbedtls, which spends more CPU per full
# handshake than the server it measures (it verifies the server's
# signature), so on two cores `make bench-tls` is bound by the generator.
# Here the client is OpenSSL's `openssl s_time`, PROCS processes at once,
# each for SECONDS s: with -new every connection runs a full handshake,
# with -reuse each resumes the session of the process's first one. Each
# run is against a fresh server of its own, and reads the server's CPU
# (user + system, /proc/PID/stat) before and after:
#
#   gatewayd   gatewayd's own wss:// (tls.port, mbedtls 2.28), no broker
#   haproxy    HAProxy terminating TLS (OpenSSL 3) with deploy/haproxy.cfg,
#              in front of the same gatewayd serving ws://; s_time sends
#              no request, so the handshake is all HAProxy does (its CPU
#              is counted; gatewayd's stays idle)
#
# with an ECDSA P-256 and an RSA-2048 certificate made by openssl. The
# table gives connections per second, the server's CPU per connection and
# what that CPU makes of one core (1 s / CPU per connection): the server's
# own capacity, whatever the client costs. s_time closes its socket without
# close_notify; a resumed handshake that the close overtakes is counted
# by s_time and by the server's CPU alike, as a failed handshake by
# gatewayd (/metrics, tls_handshake_failures).
#
# Loopback only; every run is bounded by SECONDS and a timeout, and holds
# $GW_MEASURE_LOCK. Run from a checkout's root (copies of ./gatewayd are
# used). Exit status 0 when every run counted connections. About 1 minute.
#
# Environment: OUT (build/bench/handshake), PROCS (2), SECONDS_PER_RUN (5),
# SERVERS ("gatewayd haproxy"), GW_MEASURE_LOCK (/tmp/gw-measure.lock),
# LOCK_WAIT (600 s).
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-build/bench/handshake}
PROCS=${PROCS:-2}
SECS=${SECONDS_PER_RUN:-5}
SERVERS=${SERVERS:-gatewayd haproxy}
GW_MEASURE_LOCK=${GW_MEASURE_LOCK:-/tmp/gw-measure.lock}
LOCK_WAIT=${LOCK_WAIT:-600}
PIDS=""
TMP=""
FAILED=0
# shellcheck source=bench/common.sh
. bench/common.sh

die() {
    echo "bench/handshake.sh: $*" >&2
    exit 1
}

# cpu_ticks PID: the process's user + system CPU in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# gatewayd_conf CERT KEY: a configuration with wss:// on TPORT, ws:// on
# WPORT and the HTTP API on HPORT, no broker.
gatewayd_conf() {
    cat <<EOF
[server]
bind = "127.0.0.1"
ws_port = $WPORT
http_port = $HPORT
workers = 2
[auth]
jwt_secret = "bench-handshake-secret-0123456789abcdef"
[redis]
enabled = false
[amqp]
enabled = false
[presence]
enabled = false
[tls]
enabled = $([ -n "$1" ] && echo true || echo false)
port = $TPORT
cert_file = "$1"
key_file = "$2"
[log]
level = "warn"
EOF
}

# start_gatewayd CERT KEY: GPID, answering on HPORT.
start_gatewayd() {
    gatewayd_conf "$1" "$2" >"$TMP/gw.toml"
    "$TMP/gatewayd" -c "$TMP/gw.toml" >>"$OUT/gatewayd.log" 2>&1 </dev/null &
    GPID=$!
    PIDS="$PIDS $GPID"
    wait_for "$GPID" 10 curl -sf -m 1 "http://127.0.0.1:$HPORT/health" ||
        die "gatewayd did not start (see $OUT/gatewayd.log)"
}

# start_haproxy PEM: HPID, terminating TLS on PPORT in front of gatewayd.
start_haproxy() {
    GW_TLS_LISTEN=127.0.0.1:$PPORT GW_TLS_CERT=$1 \
        GW1_ADDR=127.0.0.1:$WPORT GW1_HEALTH=$HPORT \
        GW2_ADDR=127.0.0.1:$WPORT GW2_HEALTH=$HPORT GW_MAXCONN=8000 \
        GW_CONN_RATE_PER_IP=100000000 GW_CONN_PER_IP=100000 \
        haproxy -db -f deploy/haproxy.cfg >>"$OUT/haproxy.log" 2>&1 \
        </dev/null &
    HPID=$!
    PIDS="$PIDS $HPID"
    wait_for "$HPID" 10 sh -c "ss -Hltn 'sport = :$PPORT' | grep -q ." ||
        die "haproxy did not listen (see $OUT/haproxy.log)"
}

# s_time PORT MODE: PROCS clients for SECS s; prints the connections made.
s_time() {
    i=0 clients=""
    while [ $i -lt "$PROCS" ]; do
        timeout $((SECS + 30)) openssl s_time -connect "127.0.0.1:$1" \
            -tls1_2 "-$2" -time "$SECS" >"$TMP/s_time.$i" 2>&1 &
        clients="$clients $!"
        i=$((i + 1))
    done
    for p in $clients; do wait "$p"; done
    # s_time marks each connection: 'r' resumed, '*' a full handshake.
    cat "$TMP"/s_time.* | awk '/connections in .* real seconds/ {n += $1}
        /^[r*]+$/ {r += gsub(/r/, "")} END {print n + 0, r + 0}'
    rm -f "$TMP"/s_time.*
}

# run SERVER KIND MODE: one measured run; appends a row to $TMP/rows.
run() {
    exec 9>>"$GW_MEASURE_LOCK"
    flock -w "$LOCK_WAIT" 9 || die "$GW_MEASURE_LOCK held for ${LOCK_WAIT}s"
    if [ "$1" = gatewayd ]; then
        start_gatewayd "$TMP/$2.crt" "$TMP/$2.key"
        port=$TPORT pid=$GPID
    else
        start_gatewayd "" ""
        start_haproxy "$TMP/$2.pem"
        port=$PPORT pid=$HPID
    fi
    c0=$(cpu_ticks "$pid") t0=$(date +%s.%N)
    set -- "$1" "$2" "$3" $(s_time "$port" "$3")
    n=$4 resumed=$5
    c1=$(cpu_ticks "$pid") t1=$(date +%s.%N)
    fails=$(curl -sf -m 2 "http://127.0.0.1:$HPORT/metrics" |
        awk '/^gatewayd_tls_handshake_failures_total/ {n += $2} END {print n + 0}')
    for p in $PIDS; do stop_pid "$p" 5; done
    exec 9>&-
    [ "$n" -gt 0 ] || FAILED=1
    echo "$1 $2 $3 $n $c0 $c1 $t0 $t1 $fails $resumed" >>"$TMP/rows"
    echo "   $1 $2 -$3: $n connections"
}

command -v openssl >/dev/null || die "openssl missing"
command -v haproxy >/dev/null || die "haproxy missing (apt-get install haproxy)"
mkdir -p "$OUT" || exit 1
rm -f "$OUT"/*.log "$OUT/table.txt"
TMP=$(mktemp -d /tmp/gwhs.XXXXXX) || exit 1
[ -x ./gatewayd ] || die "./gatewayd missing: make gatewayd"
cp ./gatewayd "$TMP/" || exit 1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMP/ecdsa.key" -out "$TMP/ecdsa.crt" -days 2 \
    -subj /CN=localhost 2>/dev/null &&
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/rsa.key" \
        -out "$TMP/rsa.crt" -days 2 -subj /CN=localhost 2>/dev/null ||
    die "openssl could not make the certificates"
for k in ecdsa rsa; do cat "$TMP/$k.crt" "$TMP/$k.key" >"$TMP/$k.pem"; done
free_port && WPORT=$PORT && free_port && HPORT=$PORT && free_port &&
    TPORT=$PORT && free_port && PPORT=$PORT || die "no free loopback port"

echo "== bench/handshake.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): nproc $(nproc)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg);" \
    "commit $(git describe --always --dirty 2>/dev/null || echo '?');" \
    "$PROCS x openssl s_time for $SECS s per run"
for s in $SERVERS; do
    for k in ecdsa rsa; do
        for m in new reuse; do run "$s" "$k" "$m"; done
    done
done

HZ=$(getconf CLK_TCK)
awk -v hz="$HZ" -v date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" '
BEGIN {
    printf "== handshakes %s: server CPU per connection (openssl s_time)\n\n", date
    printf "%-9s %-6s %-8s %9s %9s %9s %12s %14s %9s\n", "server", "cert",
        "kind", "conns", "resumed", "conns/s", "srv us/conn", "per core /s",
        "failed"
}
{
    secs = $8 - $7; cpu = ($6 - $5) / hz
    us = $4 > 0 ? cpu / $4 * 1e6 : 0
    printf "%-9s %-6s %-8s %9d %9d %9.0f %12.0f %14.0f %9s\n", $1, $2,
        ($3 == "new" ? "full" : "resumed"), $4, $10, $4 / secs, us,
        (us > 0 ? 1e6 / us : 0), ($1 == "gatewayd" ? $9 : "-")
}' "$TMP/rows" | tee "$OUT/table.txt"
echo "(table in $OUT/table.txt; server logs beside it)"
exit $FAILED
