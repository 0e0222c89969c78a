#!/bin/sh
# Overload sweep and cores (`make bench-sweep`), the open targets of issue 4:
#
# 1. fanout, $GUILDS x $MEMBERS sessions via Redis, at each --event-rate of
#    $RATES in turn ($DURATION s each), stopping after the first rate that
#    fails: a rate passes when every session identified, every event was
#    accepted, 100 % was delivered, no session was closed (no 4010) and the
#    delivery p99 is at most $MAX_P99_MS ms. Names the highest offered rate
#    that passed.
# 2. the same workload at $WORKERS_RATE events/s with --workers 1 and then
#    --workers 2: deliveries/s, deliveries per server CPU-second, server CPU
#    and p99, i.e. what the second core buys.
#
# Every run is gwbench starting a fresh ./gatewayd (and a private
# redis-server) on free loopback ports, under `flock $GW_MEASURE_LOCK`, so
# that no two measurements on this machine overlap. Writes each report (and
# gwbench's summary, .log) to $OUT, prints a table (also in $OUT/table.txt).
# A rate step starts only while the runs so far took less than $BUDGET s
# (time waiting for the lock left out), so with the workers pair the whole
# script stays under about five minutes of measuring. Exit status
# 0 when every run produced a report and both workers runs were ok, 1
# otherwise (a failing rate is a result, not an error).
#
# Environment: OUT (build/bench/sweep), RATES ("500 1000 1500 2000 2500
# 3000 4000 5000 6000 8000"), WORKERS_RATE (1500), GUILDS (50), MEMBERS
# (100), DURATION (10 s), MAX_P99_MS (100), BUDGET (200 s), GW_MEASURE_LOCK
# (/tmp/gw-measure.lock), LOCK_WAIT (600 s).
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-build/bench/sweep}
RATES=${RATES:-500 1000 1500 2000 2500 3000 4000 5000 6000 8000}
WORKERS_RATE=${WORKERS_RATE:-1500}
GUILDS=${GUILDS:-50}
MEMBERS=${MEMBERS:-100}
DURATION=${DURATION:-10}
MAX_P99_MS=${MAX_P99_MS:-100}
BUDGET=${BUDGET:-200}
GW_MEASURE_LOCK=${GW_MEASURE_LOCK:-/tmp/gw-measure.lock}
LOCK_WAIT=${LOCK_WAIT:-600}
PY=/usr/bin/python3
TMP=""
FAILED=0
BUSY=0 # seconds spent in runs, not waiting for the lock

# shellcheck disable=SC2317 # called by the traps
cleanup() {
    trap - EXIT INT TERM HUP
    [ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# The verdict on one report ("check FILE MAX_P99_MS": prints "pass" or
# "FAIL: why", exit 0 or 1) and the final table ("table OUT RATE...").
PYPROG=$(
    cat <<'EOF'
import os, sys

from benchtab import get, load, ms, num, ratio, share, table


def verdict(rep, max_p99):
    """Why a run fails the target (empty: it passes)."""
    if rep is None:
        return ["no report"]
    r, why = rep.get("results") or {}, []
    if rep.get("ok") is False:
        why.append("ok: false")
    if get(r, "identified") != get(r, "sessions"):
        why.append(f"{get(r, 'identified') or 0:,.0f} of "
                   f"{get(r, 'sessions') or 0:,.0f} identified")
    if get(r, "events.failed"):
        why.append(f"{get(r, 'events.failed'):,.0f} events not accepted")
    share = get(r, "delivered_share") or 0
    if share < 1:
        why.append(f"{100 * share:.3f} % delivered")
    wc = get(r, "window_counters") or {}
    for k in ("close_4010", "closed_by_server"):
        if wc.get(k):
            why.append(f"{k} {wc[k]:,.0f}")
            break
    p99 = get(r, "latency.p99_ms")
    if p99 is None or p99 > max_p99:
        why.append(f"p99 {'-' if p99 is None else f'{p99:,.1f}'} ms")
    return why


def row(first, rep, max_p99):
    r = get(rep, "results") or {}
    why = verdict(rep, max_p99)
    wc = get(r, "window_counters") or {}
    return [
        first,
        share(get(r, "delivered_share")),
        num(get(r, "deliveries_per_s")),
        ms(get(r, "latency.p50_ms")),
        ms(get(r, "latency.p99_ms")),
        ms(get(r, "latency.max_ms")),
        f"{num(get(r, 'server_cpu_s'), 1)} ({num(get(r, 'server_cpu_pct'))} %)",
        num(get(r, "deliveries_per_server_cpu_s")),
        num(get(r, "gwbench_cpu_pct")),
        num(get(r, "machine_steal_s"), 2),
        num(wc.get("close_4010", 0)) if r else "-",
        "pass" if not why else "FAIL: " + ", ".join(why),
    ]


def steal_note(name, rep):
    st = get(rep, "results.machine_steal_s")
    if st is None or st < 1:
        return []
    return [f"note: {name}: the hypervisor took {st:.2f} s of CPU in the "
            "window; its tail is not the daemon's alone"]


def main_table(out, rates, max_p99):
    e = os.environ
    members = int(e["MEMBERS"])
    lines = [f"== sweep {e['DATE']}: fanout {e['GUILDS']} x {members} sessions"
             f" via Redis, {e['DURATION']} s per step; pass = 100 % "
             f"delivered, no 4010, p99 <= {max_p99:g} ms", ""]
    rows, best, last, busy, stolen = [], None, None, False, []
    for rate in rates:
        rep = load(os.path.join(out, f"rate-{rate}.json"))
        stolen += steal_note(f"rate {rate}", rep)
        cells = row(f"{int(rate):,}", rep, max_p99)
        rows.append(cells[:1] + [f"{int(rate) * members:,}"] + cells[1:])
        last = cells[-1]
        if last == "pass":
            best = int(rate)
        r = get(rep, "results") or {}
        if (get(r, "server_cpu_pct") or 0) + (get(r, "gwbench_cpu_pct") or 0) \
                >= 180:
            busy = True
    head = ["events/s", "offered deliv/s", "delivered", "deliveries/s",
            "p50 ms", "p99 ms", "max ms", "server CPU s (%)",
            "deliv/server CPU-s", "gwbench CPU %", "steal s", "4010",
            "verdict"]
    lines += table(head, rows, len(head) - 1)
    lines.append("")
    if best is None:
        lines.append("highest rate that passed: none of those tried")
    else:
        top = f"{best:,} events/s = {best * members:,} deliveries/s offered"
        if last == "pass":
            top += " (the last rate tried passed: the limit is higher)"
        lines.append("highest rate that passed (p99 <= "
                     f"{max_p99:g} ms, 100 % delivered): {top}")
    if busy:
        lines.append("note: server + gwbench CPU reached >= 180 % of the 2 "
                     "cores in some step: there the machine, generator "
                     "included, is the limit")
    wrows, figs = [], {}
    for w in ("1", "2"):
        rep = load(os.path.join(out, f"workers-{w}.json"))
        figs[w] = get(rep, "results") or {}
        wrows.append(row(w, rep, max_p99))
        stolen += steal_note(f"workers {w}", rep)
    head = ["workers", "delivered", "deliveries/s", "p50 ms", "p99 ms",
            "max ms", "server CPU s (%)", "deliv/server CPU-s",
            "gwbench CPU %", "steal s", "4010", "verdict"]
    lines += ["", f"workers 1 vs 2 at {int(e['WORKERS_RATE']):,} events/s "
              f"({int(e['WORKERS_RATE']) * members:,} deliveries/s offered):",
              ""] + table(head, wrows, len(head) - 1)

    def w_ratio(k):
        return ratio(get(figs["2"], k), get(figs["1"], k))

    lines += ["", "workers 2 / workers 1: deliveries/s "
              f"{w_ratio('deliveries_per_s')}, server CPU "
              f"{w_ratio('server_cpu_s')}, deliveries per server CPU-s "
              f"{w_ratio('deliveries_per_server_cpu_s')}, p99 "
              f"{w_ratio('latency.p99_ms')}"]
    if stolen:
        lines += [""] + stolen
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(text)


if sys.argv[1] == "check":
    why = verdict(load(sys.argv[2]), float(sys.argv[3]))
    print("pass" if not why else "FAIL: " + ", ".join(why))
    sys.exit(1 if why else 0)
main_table(sys.argv[2], sys.argv[3:], float(os.environ["MAX_P99_MS"]))
EOF
)

# measure NAME GWBENCH-ARGS...: one gwbench run under the lock; its report
# goes to $OUT/NAME.json, its summary to $OUT/NAME.log. Exit status: gwbench's.
measure() {
    name=$1
    shift
    echo "== $name (load $(cut -d' ' -f1 /proc/loadavg)): gwbench $*"
    # Under the lock, sh notes the time and becomes gwbench: the run's time
    # then leaves out the wait for the lock.
    # shellcheck disable=SC2016 # expanded by that sh
    set -- sh -c 'date +%s >"$0" && exec "$@"' "$TMP/t0" "$GWBENCH" "$@" \
        --gatewayd "$GATEWAYD" --quiet --timeout 120 --json "$OUT/$name.json"
    echo 0 >"$TMP/t0"
    flock -n -E 200 "$GW_MEASURE_LOCK" "$@" 2>"$OUT/$name.log"
    rc=$?
    if [ $rc -eq 200 ]; then
        echo "   (waiting for $GW_MEASURE_LOCK)"
        flock -w "$LOCK_WAIT" -E 200 "$GW_MEASURE_LOCK" "$@" 2>"$OUT/$name.log"
        rc=$?
        [ $rc -eq 200 ] && echo "   $GW_MEASURE_LOCK still held after ${LOCK_WAIT}s"
    fi
    t0=$(cat "$TMP/t0")
    [ "$t0" -gt 0 ] && BUSY=$((BUSY + $(date +%s) - t0))
    if [ -s "$OUT/$name.json" ]; then
        printf '   %ss: ' $(($(date +%s) - t0))
        "$GWBENCH" summary "$OUT/$name.json" 2>&1 | sed 's/  *(.*)$//'
    else
        tail -n 5 "$OUT/$name.log" | sed 's/^/   | /'
        FAILED=1
    fi
    return $rc
}

# check NAME: the verdict on NAME's report; exit 0 when it passes.
check() {
    v=$(PYTHONPATH=bench "$PY" -c "$PYPROG" check "$OUT/$1.json" "$MAX_P99_MS")
    rc=$?
    echo "   $v"
    return $rc
}

mkdir -p "$OUT" || exit 1
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT/table.txt"
TMP=$(mktemp -d /tmp/gwsweep.XXXXXX) || exit 1
# Copies of the binaries: a rebuild meanwhile (others work in this tree)
# must not change or break them halfway through the sweep.
for f in ./bench/gwbench ./gatewayd; do
    [ -x "$f" ] || { echo "$f missing: make FLAVOR=release gatewayd bench/gwbench" >&2; exit 1; }
    cp "$f" "$TMP/" || exit 1
done
GWBENCH=$TMP/gwbench
GATEWAYD=$TMP/gatewayd

start=$(date +%s)
echo "== gwbench sweep $(date -u +%Y-%m-%dT%H:%M:%SZ): nproc $(nproc)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg);" \
    "commit $(git describe --always --dirty 2>/dev/null || echo '?')"
load="fanout --guilds $GUILDS --members $MEMBERS --duration $DURATION --via redis"
done_rates=""
for rate in $RATES; do
    if [ "$BUSY" -ge "$BUDGET" ]; then
        echo "== ${BUSY}s of runs, over the budget of ${BUDGET}s: no rate above the last"
        break
    fi
    # shellcheck disable=SC2086 # $load is split into flags on purpose
    measure "rate-$rate" $load --event-rate "$rate"
    done_rates="$done_rates $rate"
    check "rate-$rate" || break
done

for w in 1 2; do
    # shellcheck disable=SC2086 # as above
    measure "workers-$w" $load --event-rate "$WORKERS_RATE" --workers "$w" ||
        FAILED=1
    check "workers-$w"
done

# shellcheck disable=SC2086 # one argument per rate
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) GUILDS=$GUILDS MEMBERS=$MEMBERS \
    DURATION=$DURATION WORKERS_RATE=$WORKERS_RATE MAX_P99_MS=$MAX_P99_MS \
    PYTHONPATH=bench "$PY" -c "$PYPROG" table "$OUT" $done_rates || FAILED=1
echo "(reports and this table in $OUT; ${BUSY} s of runs," \
    "$(($(date +%s) - start)) s in all)"
exit $FAILED
