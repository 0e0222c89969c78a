#!/bin/sh
# The connect storm, A against B (`make bench-storm`, or by hand):
#
#   bench/storm.sh [GATEWAYD_B]
#
# RUNS rounds of `gwbench connect -n SESSIONS` (unpaced: as fast as the
# handshakes in flight allow) against a copy of ./gatewayd (A) and, given
# GATEWAYD_B, against a copy of that binary (B) in the same round, A and B
# alternating which goes first, PAUSE s apart, so that the machine's other
# load falls on both alike. Each run starts a fresh gatewayd (gwbench's
# own, --workers GW_WORKERS) and holds $GW_MEASURE_LOCK (flock): do not run
# the script under that lock, it would wait for itself.
#
# Prints, per binary, min / median / max over the runs of identified
# sessions per second, the storm's span, server CPU per identified session
# (user + system, and the system part), connect-to-identified p99, gwbench
# CPU and the CPU other processes took meanwhile (a shared machine); also
# in $OUT/table.txt, with the reports (.json) and summaries (.log). Exit
# status 0 when every run was ok (all identified, no failure).
#
# Environment: OUT (build/bench/storm), RUNS (5), SESSIONS (19000: one
# client process holds at most ~19,900 sockets), GW_WORKERS (0 = one per
# core), PAUSE (3 s), GW_MEASURE_LOCK (/tmp/gw-measure.lock), LOCK_WAIT
# (600 s).
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-build/bench/storm}
RUNS=${RUNS:-5}
SESSIONS=${SESSIONS:-19000}
GW_WORKERS=${GW_WORKERS:-0}
PAUSE=${PAUSE:-3}
GW_MEASURE_LOCK=${GW_MEASURE_LOCK:-/tmp/gw-measure.lock}
LOCK_WAIT=${LOCK_WAIT:-600}
PY=/usr/bin/python3
PIDS="" # common.sh's cleanup stops these; gwbench stops its own servers
TMP=""
FAILED=0
# shellcheck source=bench/common.sh
. bench/common.sh

mkdir -p "$OUT" || exit 1
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT/table.txt"
TMP=$(mktemp -d /tmp/gwstorm.XXXXXX) || exit 1
copy_binaries
SIDES="A"
if [ $# -ge 1 ]; then
    [ -x "$1" ] || { echo "$1: not an executable" >&2; exit 2; }
    cp "$1" "$TMP/gatewayd-b" || exit 1
    SIDES="A B"
fi

echo "== gwbench storm $(date -u +%Y-%m-%dT%H:%M:%SZ): nproc $(nproc)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg); A = ./gatewayd" \
    "($(git describe --always --dirty 2>/dev/null || echo '?'))${1:+, B = $1}"
i=1
while [ $i -le "$RUNS" ]; do
    order=$SIDES
    [ $((i % 2)) -eq 0 ] && [ "$SIDES" = "A B" ] && order="B A"
    for side in $order; do
        bin=$GATEWAYD
        [ "$side" = B ] && bin=$TMP/gatewayd-b
        measure "$side-$i" connect -n "$SESSIONS" --gatewayd "$bin" \
            --workers "$GW_WORKERS" --timeout 120
        sleep "$PAUSE"
    done
    i=$((i + 1))
done

PYTHONPATH=bench "$PY" - "$OUT" "$SIDES" <<'EOF' || FAILED=1
# min / median / max of each figure per side.
import glob, os, statistics, sys

from benchtab import get, load, num, table

out, sides = sys.argv[1], sys.argv[2].split()


def spread(values, digits=0):
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    return " / ".join(num(x, digits) for x in
                      (min(v), statistics.median(v), max(v)))


def per_session(res, key):
    cpu, n = get(res, key), get(res, "identified")
    return None if cpu is None or not n else 1e6 * cpu / n


rows, bad = [], []
for side in sides:
    reps = []
    for path in sorted(glob.glob(os.path.join(out, f"{side}-*.json"))):
        rep = load(path)
        res = get(rep, "results") or {}
        fails = sum((get(res, "failures") or {}).values())
        if rep is None or rep.get("ok") is False or fails:
            bad.append(f"{os.path.basename(path)}: not ok ({fails} failures)")
        reps.append(res)
    rows.append([
        side, str(len(reps)),
        spread([get(r, "identified_per_s") for r in reps]),
        spread([get(r, "storm_s") for r in reps], 3),
        spread([per_session(r, "server_cpu_s") for r in reps], 1),
        spread([per_session(r, "server_sys_s") for r in reps], 1),
        spread([get(r, "connect_to_identified.p99_ms") for r in reps], 1),
        spread([get(r, "gwbench_cpu_s") for r in reps], 2),
        spread([get(r, "machine_other_cpu_s") for r in reps], 2),
    ])
lines = ["min / median / max over the runs:"] + table(
    ["side", "runs", "identified/s", "storm s", "server CPU us/session",
     "of it system", "p99 ms", "gwbench CPU s", "others' CPU s"], rows, 0)
if bad:
    lines += ["", "not ok:"] + ["  " + b for b in bad]
text = "\n".join(lines) + "\n"
sys.stdout.write(text)
with open(os.path.join(out, "table.txt"), "w") as f:
    f.write(text)
EOF
echo "(reports and this table in $OUT)"
exit $FAILED
