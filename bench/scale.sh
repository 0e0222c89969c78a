#!/bin/sh
# Scale-out from 1 to 8 instances, the old design against the targeted one
# (`make bench-scale`):
#
#   bench/scale.sh
#
# 1. RUNS rounds; in each, for every K of KS and both designs in turn,
#    `gwbench fanout --instances K --workers 1`: a private redis-server, K
#    gatewayd of one worker each, GUILDS x MEMBERS sessions with each guild
#    and all its members on one instance, EVENT_RATE events/s for DURATION
#    s published as a backend does (to the guild's channel when targeted;
#    to the plain channel with redis.targeted=false, the old design).
#    Figures (bench/README.md, "Scale-out"): broker-thread CPU per published
#    event summed over the instances, the same less what the idle instances
#    cost, the daemons' and Redis's CPU per event, events each instance
#    received, Redis deliveries per event, delivery p50 / p99, whether all
#    were delivered.
#    In each round also two controls on one instance, targeted: at
#    EVENT_RATE / 8 events/s (what each of K = 8's instances sees; / the
#    last of KS), and at
#    each rate of LOAD_RATES with one member a guild (the per-event cost
#    once events come close together, which the projection uses).
# 2. REDIS_RUNS x bench/rediscost.py REDIS_N: what a subscription costs a
#    private Redis in memory and CPU (new channel, second subscriber,
#    unsubscribe, dropped with its connection), and a PUBLISH and each
#    copy to a subscriber at load.
#
# The sessions and the rate are kept small on purpose: at K = 8 the eight
# instances, Redis and gwbench share this machine's cores, and the figure
# compared is CPU per event, not the most events the cluster can take.
#
# Run from a checkout's root; uses copies of its ./bench/gwbench and
# ./gatewayd (a rebuild meanwhile changes nothing). Each run starts
# everything afresh and holds $GW_MEASURE_LOCK (flock) while it runs, so
# that no two measurements on the machine overlap: do not run the script
# under that lock, it would wait for itself. Prints a table, per design
# and K the median and min-max of each figure over the rounds, its ratio
# to K = 1, and whether the target holds (targeted: summed broker CPU per
# event at K = 8 within 1.5x of K = 1); also $OUT/table.txt. The reports
# (.json) and gwbench's summaries (.log) stay in OUT. Exit status 0 when
# every run was ok (each instance received what it owes, all delivered).
#
# Environment: OUT (build/bench/scale), RUNS (3), KS ("1 2 4 8"), GUILDS
# (80), MEMBERS (25), EVENT_RATE (200), DURATION (15), LOAD_RATES ("2000
# 5000"), REDIS_N (100000), REDIS_RUNS (3), GW_MEASURE_LOCK
# (/tmp/gw-measure.lock), LOCK_WAIT (600 s).
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-build/bench/scale}
RUNS=${RUNS:-3}
KS=${KS:-"1 2 4 8"}
GUILDS=${GUILDS:-80}
MEMBERS=${MEMBERS:-25}
EVENT_RATE=${EVENT_RATE:-200}
DURATION=${DURATION:-15}
LOAD_RATES=${LOAD_RATES:-"2000 5000"}
REDIS_N=${REDIS_N:-100000}
REDIS_RUNS=${REDIS_RUNS:-3}
for k in $KS; do KMAX=$k; done
CONTROL_RATE=$((EVENT_RATE / KMAX)) # what each of KMAX instances sees
GW_MEASURE_LOCK=${GW_MEASURE_LOCK:-/tmp/gw-measure.lock}
LOCK_WAIT=${LOCK_WAIT:-600}
PY=/usr/bin/python3
PIDS="" # common.sh's cleanup stops these: gwbench, which stops its servers
TMP=""
FAILED=0
# shellcheck source=bench/common.sh
. bench/common.sh

# The table of the runs ("table OUT"): per design and K, median [min-max].
PYPROG=$(
    cat <<'EOF'
import glob, os, statistics, sys

from benchtab import get, load, num, table

FIGURES = [
    ("broker us/event (sum)", "broker_us_per_event", 1),
    ("x K=1", None, 2),
    ("idle ms/s", "broker_idle_ms_per_s", 2),
    ("daemons us/event", "daemon_us_per_event", 0),
    ("redis us/event", "redis_us_per_event", 1),
    ("received/instance", None, 0),
    ("redis deliveries/event", "events.receivers_per_event", 0),
    ("p50 ms", "latency.p50_ms", 2),
    ("p99 ms", "latency.p99_ms", 1),
    ("other CPU s", "machine_other_cpu_s", 1),
]


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def spread(v, digits):
    v = [x for x in v if x is not None]
    if not v:
        return "-"
    m = num(statistics.median(v), digits)
    return m if len(v) == 1 else \
        f"{m} [{num(min(v), digits)}-{num(max(v), digits)}]"


def received(r):
    per = get(r, "results.per_instance") or []
    v = [i.get("events_redis") for i in per]
    return sum(v) / len(v) if v else None


def row(reps, base, design, k):
    ok = sum(1 for r in reps if r and r.get("ok"))
    out = [design, str(k), f"{ok}/{len(reps)}"]
    for label, key, digits in FIGURES:
        if label == "x K=1":
            m = med([get(r, "results.broker_us_per_event") for r in reps])
            out.append("-" if m is None or not base else f"{m / base:.2f}")
        elif key is None:
            out.append(spread([received(r) for r in reps], digits))
        else:
            out.append(spread([get(r, "results." + key) for r in reps],
                              digits))
    return out


def redis(out):
    reps = [load(p) for p in sorted(glob.glob(os.path.join(
        out, "redis-*.json")))]
    reps = [r for r in reps if r]
    if not reps:
        return []
    lines = [f"Redis (bench/rediscost.py, {reps[0]['channels']:,} channels "
             f"of {reps[0]['name_bytes_mean']:.1f} B names, "
             f"{reps[0]['batch']} a command; {len(reps)} runs):"]
    for step in ("first_subscriber", "second_subscriber", "unsubscribe",
                 "dropped_with_connection"):
        b = [r[step]["bytes_per_channel"] for r in reps]
        c = [r[step]["redis_us_per_channel"] for r in reps]
        lines.append(f"  {step:26s} {spread(b, 0):>18s} B  "
                     f"{spread(c, 2):>18s} us CPU per channel")
    p = reps[0]["publish"]
    lines.append(f"  publish at load ({p['messages']:,} of {p['payload']} B, "
                 f"{p['pipeline']} a write): "
                 f"{spread([r['publish']['redis_us_per_publish_1_subscriber'] for r in reps], 2)}"
                 f" us per PUBLISH to one subscriber, "
                 f"{spread([r['publish']['redis_us_per_extra_copy'] for r in reps], 2)}"
                 f" us per further copy")
    return lines


def controls(out, e):
    head = ["one instance, targeted", "events/s", "members", "ok",
            "broker us/event", "daemon us/event", "redis us/event",
            "p99 ms"]
    body = []
    ks = e["KS"].split()
    runs = [("control", f"as each of K={ks[-1]}'s", e["CONTROL_RATE"],
             e["MEMBERS"])] + \
        [("load", "events close together", r, "1")
         for r in e["LOAD_RATES"].split()]
    for kind, label, rate, members in runs:
        reps = [load(p) for p in sorted(glob.glob(os.path.join(
            out, f"{kind}-r{rate}-*.json")))]
        ok = sum(1 for r in reps if r and r.get("ok"))
        body.append([label, rate, members, f"{ok}/{len(reps)}"] +
                    [spread([get(r, "results." + k) for r in reps], d)
                     for k, d in (("broker_us_per_event", 1),
                                  ("daemon_us_per_event", 1),
                                  ("redis_us_per_event", 1),
                                  ("latency.p99_ms", 1))])
    return table(head, body, 0)


def main(out):
    e = os.environ
    ks = [int(k) for k in e["KS"].split()]
    head = ["design", "K", "ok"] + [f[0] for f in FIGURES]
    body, base = [], {}
    for design in ("plain", "targeted"):
        for k in ks:
            reps = [load(p) for p in sorted(glob.glob(
                os.path.join(out, f"scale-{design}-k{k}-*.json")))]
            if k == ks[0]:
                base[design] = med([get(r, "results.broker_us_per_event")
                                    for r in reps])
            body.append(row(reps, base[design], design, k))
    lines = [f"== scale {e['DATE']}: {e['GUILDS']} guilds x {e['MEMBERS']} "
             f"sessions, {e['EVENT_RATE']} events/s for {e['DURATION']} s, "
             f"one worker per instance; median [min-max] of "
             f"{e['RUNS']} rounds; load {e['LOAD0']} before, "
             f"{e['LOAD1']} after", ""]
    lines += table(head, body, 0) + [""]
    for design in ("plain", "targeted"):
        rows = [r for r in body if r[0] == design]
        if len(rows) > 1 and rows[-1][4] != "-":
            lines.append(f"{design}: broker CPU per event at K={rows[-1][1]} "
                         f"is {rows[-1][4]}x K={rows[0][1]}'s")
    t = [r for r in body if r[0] == "targeted"]
    if ks[0] == 1 and ks[-1] == 8 and t and t[-1][4] != "-":
        ratio = float(t[-1][4])
        lines.append(f"target (targeted, K=8 within 1.5x of K=1): "
                     f"{'met' if ratio <= 1.5 else 'NOT met'} ({ratio:.2f}x)")
    sub = [get(load(p), "results.subscriptions") for p in sorted(glob.glob(
        os.path.join(out, f"scale-targeted-k{ks[0]}-*.json")))]
    sub = [s for s in sub if s and s.get("channels")]
    if sub:
        lines += ["", f"Subscribing at K={ks[0]} (targeted, "
                  f"{sub[0]['channels']:,.0f} channels): Redis "
                  f"{spread([s.get('redis_bytes_per_channel') for s in sub], 0)}"
                  f" B and "
                  f"{spread([s.get('redis_us_per_channel') for s in sub], 2)}"
                  f" us per channel, brokers "
                  f"{spread([s.get('broker_us_per_channel') for s in sub], 2)}"
                  f" us per channel"]
    lines += ["", "Per-event cost by the rate one instance sees:", ""]
    lines += controls(out, e)
    lines += [""] + redis(out) + [""]
    text = "\n".join(lines)
    sys.stdout.write(text)
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(text)


main(sys.argv[1])
EOF
)

# measure_redis NAME: bench/rediscost.py REDIS_N holding the lock, its
# JSON to $OUT/NAME.json.
measure_redis() {
    echo "== $1 (load $(cut -d' ' -f1 /proc/loadavg)): rediscost.py $REDIS_N"
    exec 9>>"$GW_MEASURE_LOCK"
    if ! flock -w "$LOCK_WAIT" 9; then
        exec 9>&-
        echo "   $GW_MEASURE_LOCK still held after ${LOCK_WAIT}s"
        FAILED=1
        return
    fi
    "$PY" bench/rediscost.py "$REDIS_N" "$OUT/$1.json" >/dev/null \
        2>"$OUT/$1.log" 9>&- &
    rp=$!
    PIDS="$PIDS $rp"
    wait "$rp" || {
        FAILED=1
        tail -n 3 "$OUT/$1.log" | sed 's/^/   | /'
    }
    PIDS=$(echo "$PIDS" | sed "s/ $rp\$//")
    exec 9>&-
}

mkdir -p "$OUT" || exit 1
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT/table.txt"
TMP=$(mktemp -d /tmp/gwscale.XXXXXX) || exit 1
copy_binaries

start=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== bench/scale.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): nproc $(nproc)," \
    "load $LOAD0; commit $(git describe --always --dirty 2>/dev/null || echo '?')"
i=1
while [ "$i" -le "$RUNS" ]; do
    for k in $KS; do
        for design in plain targeted; do
            t=true
            [ "$design" = plain ] && t=false
            measure "scale-$design-k$k-$i" fanout --instances "$k" \
                --workers 1 --guilds "$GUILDS" --members "$MEMBERS" \
                --event-rate "$EVENT_RATE" --duration "$DURATION" \
                --gw-set "redis.targeted=$t" --gatewayd "$GATEWAYD"
        done
    done
    measure "control-r$CONTROL_RATE-$i" fanout --instances 1 --workers 1 \
        --guilds "$GUILDS" --members "$MEMBERS" --event-rate "$CONTROL_RATE" \
        --duration "$DURATION" --gatewayd "$GATEWAYD"
    for r in $LOAD_RATES; do
        measure "load-r$r-$i" fanout --instances 1 --workers 1 \
            --guilds "$GUILDS" --members 1 --event-rate "$r" \
            --duration "$DURATION" --gatewayd "$GATEWAYD"
    done
    i=$((i + 1))
done
i=1
while [ "$i" -le "$REDIS_RUNS" ]; do
    measure_redis "redis-$i"
    i=$((i + 1))
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) GUILDS=$GUILDS MEMBERS=$MEMBERS \
    EVENT_RATE=$EVENT_RATE DURATION=$DURATION RUNS=$RUNS KS=$KS \
    CONTROL_RATE=$CONTROL_RATE LOAD_RATES=$LOAD_RATES LOAD0=$LOAD0 \
    LOAD1=$LOAD1 \
    PYTHONPATH=bench "$PY" -c "$PYPROG" "$OUT" || FAILED=1
echo "(reports and this table in $OUT; $(($(date +%s) - start)) s in all)"
exit $FAILED
