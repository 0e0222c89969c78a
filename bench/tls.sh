#!/bin/sh
# wss:// beside ws:// (`make bench-tls`):
#
#   bench/tls.sh
#
# Makes an ECDSA P-256 and an RSA-2048 certificate with openssl in a
# scratch directory, then runs, each against a fresh gatewayd started by
# gwbench (plain ws:// and wss:// on ports of its own):
#
# 1. connect: CONNECT_N sessions plain, then over TLS with each
#    certificate (--tls-resume): the full handshakes per second, then every
#    session reset and connected again resuming its session (its ticket):
#    the resumed handshakes per second; server CPU per session.
# 2. idle: IDLE_N identified sessions held HOLD s, plain and over TLS
#    (ECDSA): server RSS per session.
# 3. fanout: GUILDS x MEMBERS sessions, EVENT_RATE events/s via Redis for
#    DURATION s, plain and over TLS (ECDSA): deliveries per server
#    CPU-second.
# 4. storm: one worker, STORM_RATE events/s to GUILDS x MEMBERS plain
#    sessions for STORM_DURATION s; STORM_AT s into it STORM_N more clients
#    connect over TLS at once (ECDSA), in client processes of their own.
#    Three runs: no storm, the storm with tls.handshake_us_per_turn=0 (no
#    cap), and with the default budget: the deliveries' latency while the
#    storm lasts, as the clients see it and as the server's workers do
#    (events over 10 and 100 ms from the broker to their last write).
#
# Run from a checkout's root; uses copies of its ./bench/gwbench and
# ./gatewayd (a rebuild meanwhile changes nothing). Every run holds
# $GW_MEASURE_LOCK (flock; do not run the script under it, it would wait
# for itself), is bounded by gwbench's --timeout, and uses loopback
# addresses only. Prints one table beside the targets of issue 11 (also
# $OUT/table.txt); the reports (.json) and gwbench's summaries (.log) stay
# in OUT. Exit status 0 when every run was ok. About 5 minutes.
#
# Environment: OUT (build/bench/tls), CONNECT_N (5000), IDLE_N (5000),
# HOLD (10), GUILDS (50), MEMBERS (100), EVENT_RATE (1000), DURATION (10),
# STORM_N (2000), STORM_RATE (500), STORM_DURATION (12), STORM_AT (2),
# GW_MEASURE_LOCK (/tmp/gw-measure.lock), LOCK_WAIT (600 s).
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-build/bench/tls}
CONNECT_N=${CONNECT_N:-5000}
IDLE_N=${IDLE_N:-5000}
HOLD=${HOLD:-10}
GUILDS=${GUILDS:-50}
MEMBERS=${MEMBERS:-100}
EVENT_RATE=${EVENT_RATE:-1000}
DURATION=${DURATION:-10}
STORM_N=${STORM_N:-2000}
STORM_RATE=${STORM_RATE:-500}
STORM_DURATION=${STORM_DURATION:-12}
STORM_AT=${STORM_AT:-2}
GW_MEASURE_LOCK=${GW_MEASURE_LOCK:-/tmp/gw-measure.lock}
LOCK_WAIT=${LOCK_WAIT:-600}
PY=/usr/bin/python3
PIDS="" # common.sh's cleanup stops these: gwbench, which stops its servers
TMP=""
FAILED=0
# shellcheck source=bench/common.sh
. bench/common.sh

# The table, from the reports in OUT.
PYPROG=$(
    cat <<'EOF'
import os, sys

from benchtab import get, load, ms, num, ratio, table

out = sys.argv[1]
e = os.environ


def rep(name):
    return get(load(os.path.join(out, name + ".json")), "results") or {}


def verdict(value, target, above=True):
    if value is None:
        return "-"
    return "met" if (value >= target if above else value <= target) else "NOT met"


lines = [f"== tls {e['DATE']}: {e['COMMIT']}", ""]

# connect
rows = []
full = {}
for name, label in (("connect-plain", "ws://"),
                    ("connect-ecdsa", "wss:// ECDSA P-256"),
                    ("connect-rsa", "wss:// RSA-2048")):
    r = rep(name)
    rs = get(r, "resumed_storm") or {}
    full[name] = get(r, "tls.handshakes_per_s")
    rows.append([label, num(get(r, "identified")),
                 num(get(r, "identified_per_s")),
                 num(get(r, "tls.handshakes_per_s")),
                 num(get(r, "tls.server_cpu_us_per_session")),
                 ms(get(r, "connect_to_identified.p99_ms")),
                 num(get(rs, "tls.resumed")),
                 num(get(rs, "tls.handshakes_per_s")),
                 num(get(rs, "tls.server_cpu_us_per_session")),
                 ms(get(rs, "connect_to_identified.p99_ms")),
                 f"{num(get(r, 'server_cpu_s'), 2)} / {num(get(r, 'gwbench_cpu_s'), 2)}"])
lines += [f"connect: {e['CONNECT_N']} sessions; over TLS all reset, then "
          "connected again resuming (tickets)", ""]
lines += table(["", "identified", "identified/s", "full hs/s",
                "srv us/session", "p99 ms", "resumed", "resumed hs/s",
                "srv us/session", "p99 ms", "srv / gwbench CPU s (full)"],
               rows, 0)
res_ecdsa = get(rep("connect-ecdsa"), "resumed_storm.tls.handshakes_per_s")
lines += ["", f"  target >= 3,000 full ECDSA handshakes/s: "
          f"{num(full['connect-ecdsa'])} ({verdict(full['connect-ecdsa'], 3000)}); "
          f">= 15,000 resumed/s: {num(res_ecdsa)} ({verdict(res_ecdsa, 15000)})",
          "  (both sides are mbedtls on the same two cores: the server's "
          "CPU per session says what the server alone would take)", ""]

# idle
ip, it = rep("idle-plain"), rep("idle-tls")
lines += [f"idle: {e['IDLE_N']} sessions held {e['HOLD']} s (RSS per session: "
          "connected, and after the hold)", ""]
lines += table(["", "B/session", "(after hold)", "identified"],
               [["ws://", num(get(ip, "rss_per_session_bytes")),
                 num(get(ip, "rss_per_session_end_bytes")),
                 num(get(ip, "identified"))],
                ["wss:// ECDSA", num(get(it, "rss_per_session_bytes")),
                 num(get(it, "rss_per_session_end_bytes")),
                 num(get(it, "identified"))]], 0)
lines += ["", "  target: at most nginx+nchan's over TLS (make bench-compare, "
          "SERVERS=\"gatewayd-tls nchan-tls\")", ""]

# fanout
fp, ft = rep("fanout-plain"), rep("fanout-tls")
dp, dt = (get(fp, "deliveries_per_server_cpu_s"),
          get(ft, "deliveries_per_server_cpu_s"))
rows = []
for label, r in (("ws://", fp), ("wss:// ECDSA", ft)):
    rows.append([label, num(get(r, "deliveries_per_s")),
                 ms(get(r, "latency.p50_ms")), ms(get(r, "latency.p99_ms")),
                 num(get(r, "deliveries_per_server_cpu_s")),
                 f"{num(get(r, 'server_user_s'), 2)} + {num(get(r, 'server_sys_s'), 2)}",
                 num(get(r, "gwbench_cpu_s"), 2),
                 num(get(r, "machine_steal_s"), 2)])
lines += [f"fanout: {e['GUILDS']} x {e['MEMBERS']} sessions, "
          f"{e['EVENT_RATE']} events/s via Redis for {e['DURATION']} s", ""]
lines += table(["", "deliveries/s", "p50 ms", "p99 ms", "deliv/srv CPU-s",
                "srv user + sys s", "gwbench CPU s", "steal s"], rows, 0)
share = dt / dp if dt and dp else None
lines += ["", f"  target: TLS >= 70 % of plain deliveries per server "
          f"CPU-second: {ratio(dt, dp)} ({verdict(share, 0.70)})", ""]

# storm
rows = []
for name, label in (("storm-none", "no storm"),
                    ("storm-uncapped", "storm, handshake_us_per_turn=0"),
                    ("storm-capped", "storm, default budget")):
    r = rep(name)
    s = get(r, "storm") or {}
    lat = get(s, "delivery_latency_in_storm") if s else get(r, "latency")
    rows.append([label, num(get(r, "deliveries_per_s")),
                 ms(get(lat, "p50_ms")), ms(get(lat, "p99_ms")),
                 ms(get(lat, "max_ms")),
                 num(get(s, "server_fanout.over_10ms")),
                 num(get(s, "server_fanout.over_100ms")),
                 num(get(s, "server_fanout.events")),
                 f"{num(get(s, 'identified'))} / {num(get(s, 'identified_per_s'))}",
                 num(get(s, "server_fanout.tls_handshakes_deferred"))])
lines += [f"storm: 1 worker, {e['STORM_RATE']} events/s to {e['GUILDS']} x "
          f"{e['MEMBERS']} plain sessions for {e['STORM_DURATION']} s; "
          f"{e['STORM_N']} clients connect over TLS at once "
          f"{e['STORM_AT']} s in", "  (latency while the storm lasted: the "
          "whole window without one; server: events fanned out slower than "
          "10 / 100 ms)", ""]
lines += table(["", "deliveries/s", "p50 ms", "p99 ms", "max ms",
                "srv > 10 ms", "srv > 100 ms", "events", "storm ident / per s",
                "deferred"], rows, 0)
text = "\n".join(lines) + "\n"
sys.stdout.write(text)
with open(os.path.join(out, "table.txt"), "w") as f:
    f.write(text)
EOF
)

command -v openssl >/dev/null || { echo "openssl missing" >&2; exit 1; }
mkdir -p "$OUT" || exit 1
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT/table.txt"
TMP=$(mktemp -d /tmp/gwtls.XXXXXX) || exit 1
copy_binaries
EC="--tls-cert $TMP/ec.crt --tls-key $TMP/ec.key"
RSA="--tls-cert $TMP/rsa.crt --tls-key $TMP/rsa.key"
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMP/ec.key" -out "$TMP/ec.crt" -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost 2>/dev/null ||
    ! openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/rsa.key" \
        -out "$TMP/rsa.crt" -days 2 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost 2>/dev/null; then
    echo "openssl could not make the certificates" >&2
    exit 1
fi
# gwbench's own limit per run: the slowest (a TLS fanout's connects, then
# its publishing) takes about a minute here.
LIMIT="--timeout 240"

start=$(date +%s)
echo "== bench/tls.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): nproc $(nproc)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg);" \
    "commit $(git describe --always --dirty 2>/dev/null || echo '?')"
# shellcheck disable=SC2086 # $EC, $RSA and $LIMIT are split into flags
{
    measure connect-plain connect -n "$CONNECT_N" --gatewayd "$GATEWAYD" $LIMIT
    measure connect-ecdsa connect -n "$CONNECT_N" --tls all $EC --tls-resume \
        --gatewayd "$GATEWAYD" $LIMIT
    measure connect-rsa connect -n "$CONNECT_N" --tls all $RSA --tls-resume \
        --gatewayd "$GATEWAYD" $LIMIT
    for v in plain tls; do
        tls=""
        [ $v = tls ] && tls="--tls all $EC"
        measure "idle-$v" idle -n "$IDLE_N" --duration "$HOLD" \
            --heartbeat-ms 5000 $tls --gatewayd "$GATEWAYD" $LIMIT
    done
    for v in plain tls; do
        tls=""
        [ $v = tls ] && tls="--tls all $EC"
        measure "fanout-$v" fanout --guilds "$GUILDS" --members "$MEMBERS" \
            --event-rate "$EVENT_RATE" --duration "$DURATION" --via redis \
            $tls --gatewayd "$GATEWAYD" $LIMIT
    done
    storm="--workers 1 --guilds $GUILDS --members $MEMBERS"
    storm="$storm --event-rate $STORM_RATE --duration $STORM_DURATION"
    measure storm-none fanout $storm --via redis --gatewayd "$GATEWAYD" $LIMIT
    storm="$storm --storm $STORM_N --storm-at $STORM_AT --tls storm $EC"
    measure storm-uncapped fanout $storm --via redis \
        --gw-set tls.handshake_us_per_turn=0 --gatewayd "$GATEWAYD" $LIMIT
    measure storm-capped fanout $storm --via redis --gatewayd "$GATEWAYD" \
        $LIMIT
}

DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) \
    COMMIT=$(git describe --always --dirty 2>/dev/null || echo '?') \
    CONNECT_N=$CONNECT_N IDLE_N=$IDLE_N HOLD=$HOLD GUILDS=$GUILDS \
    MEMBERS=$MEMBERS EVENT_RATE=$EVENT_RATE DURATION=$DURATION \
    STORM_N=$STORM_N STORM_RATE=$STORM_RATE STORM_DURATION=$STORM_DURATION \
    STORM_AT=$STORM_AT PYTHONPATH=bench "$PY" -c "$PYPROG" "$OUT" || FAILED=1
echo "(reports and this table in $OUT; $(($(date +%s) - start)) s in all)"
exit $FAILED
