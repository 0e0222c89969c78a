#!/bin/sh
# The drain handoff under load (`make bench-drain`):
#
#   bench/drain.sh
#
# RUNS x `gwbench drain` at each margin of MARGINS (session.handoff_margin_ms;
# 1000 is gatewayd's default, 0 is exact for events through Redis, as here),
# the margins taking turns within a run number: a private redis-server, two
# gatewayd and HAProxy with deploy/haproxy.cfg in front; SESSIONS sessions
# through the proxy in GUILDS guilds, EVENT_RATE events/s through Redis; the
# instance holding about half of them gets SIGTERM and closes them 4011 over
# DRAIN_MS, and each resumes through the proxy on the other. Figures: the
# sessions moved, the time from SIGTERM until all are resumed and until the
# drained process exited, resume latency (4011 to `resumed`), lost,
# duplicated, out of order, seq gaps, invalid_session (all must be 0), the
# survivor's handoff counters (bench/README.md, "Drain handoff").
#
# Run from a checkout's root; uses copies of its ./bench/gwbench, ./gatewayd
# and deploy/haproxy.cfg (a rebuild meanwhile changes nothing). Each run
# starts everything afresh and holds $GW_MEASURE_LOCK (flock) while it runs,
# so that no two measurements on the machine overlap: do not run the script
# under that lock, it would wait for itself. The script takes the lock on a
# descriptor of its own and runs gwbench in the background without it, so
# that a signal to the script stops gwbench (SIGTERM: it stops its servers
# in order) and releases the lock. Prints a table, min / median / max of each
# figure over the runs at each margin (also $OUT/table.txt); the reports
# (.json) and gwbench's summaries (.log, with any line naming a client whose
# events went wrong) stay in OUT. Exit status 0 when every run was ok.
#
# Environment: OUT (build/bench/drain), RUNS (3), MARGINS ("1000 0"),
# SESSIONS (2000), GUILDS (20), EVENT_RATE (500), DRAIN_MS (5000),
# GW_MEASURE_LOCK (/tmp/gw-measure.lock), LOCK_WAIT (600 s).
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-build/bench/drain}
RUNS=${RUNS:-3}
MARGINS=${MARGINS:-"1000 0"}
SESSIONS=${SESSIONS:-2000}
GUILDS=${GUILDS:-20}
EVENT_RATE=${EVENT_RATE:-500}
DRAIN_MS=${DRAIN_MS:-5000}
GW_MEASURE_LOCK=${GW_MEASURE_LOCK:-/tmp/gw-measure.lock}
LOCK_WAIT=${LOCK_WAIT:-600}
PY=/usr/bin/python3
PIDS="" # common.sh's cleanup stops these: gwbench, which stops its servers
TMP=""
FAILED=0
# shellcheck source=bench/common.sh
. bench/common.sh

# The table of the runs ("table OUT"): min / median / max of each figure,
# a column per margin.
PYPROG=$(
    cat <<'EOF'
import glob, os, statistics, sys

from benchtab import get, load, num, table

FIGURES = [
    ("ok (runs)", None, 0),
    ("sessions on the drained instance", "on_drained", 0),
    ("moved (closed 4011 while live)", "moved", 0),
    ("resumed", "resumed", 0),
    ("retried connections", "retries", 0),
    ("gave up", "gave_up", 0),
    ("invalid_session", "invalid_session", 0),
    ("lost", "lost", 0),
    ("lost, not back / at invalid_session", None, 0),
    ("duplicated", "duplicated", 0),
    ("out of order", "out_of_order", 0),
    ("seq gaps", "seq_gaps", 0),
    ("seq repeats", "seq_repeats", 0),
    ("replays not as resumed said", "replay_mismatch", 0),
    ("deliveries (distinct)", "received_distinct", 0),
    ("expected", "expected", 0),
    ("SIGTERM to first 4011, s", "first_4011_s", 3),
    ("SIGTERM to last 4011, s", "last_4011_s", 3),
    ("SIGTERM to all resumed, s", "all_resumed_s", 3),
    ("SIGTERM to drained exit, s", "drained_exit_s", 3),
    ("resume p50 ms (4011 to resumed)", "resume_latency.p50_ms", 1),
    ("resume p99 ms", "resume_latency.p99_ms", 1),
    ("resume max ms", "resume_latency.max_ms", 1),
    ("replayed (clients)", "replayed", 0),
    ("survivor handoffs_restored", "survivor.handoffs_restored", 0),
    ("survivor handoffs_failed", "survivor.handoffs_failed", 0),
    ("survivor handoff_overlap", "survivor.handoff_overlap", 0),
    ("window s (events on, tail in)", "window_s", 1),
    ("drained instance CPU s (to its exit)", "drained_cpu_s", 2),
    ("survivor CPU s", "survivor_cpu_s", 2),
    ("haproxy CPU s", "haproxy_cpu_s", 2),
    ("redis CPU s", "redis_cpu_s", 2),
    ("gwbench CPU s", "gwbench_cpu_s", 2),
    ("other CPU s (machine)", "machine_other_cpu_s", 2),
    ("steal s", "machine_steal_s", 2),
]


def spread(values, digits):
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    lo, med, hi = min(v), statistics.median(v), max(v)
    return " / ".join(num(x, digits) for x in (lo, med, hi))


def cell(reps, label, key, digits):
    if label == "ok (runs)":
        ok = sum(1 for r in reps if r and r.get("ok"))
        return f"{ok} of {len(reps)} ok"
    if key is None:
        a = [get(r, "results.lost_not_back") for r in reps]
        b = [get(r, "results.lost_at_invalid") for r in reps]
        return spread(a, 0) + " | " + spread(b, 0)
    return spread([get(r, "results." + key) for r in reps], digits)


def main(out):
    e = os.environ
    margins = e["MARGINS"].split()
    reps = {m: [load(p) for p in sorted(glob.glob(
        os.path.join(out, f"drain-m{m}-*.json")))] for m in margins}
    n = max(len(v) for v in reps.values())
    lines = [f"== drain {e['DATE']}: {e['SESSIONS']} sessions in "
             f"{e['GUILDS']} guilds through HAProxy, {e['EVENT_RATE']} "
             f"events/s via Redis, drain_ms {e['DRAIN_MS']}; {n} runs at "
             f"each handoff_margin_ms", ""]
    head = ["figure"] + [f"margin {m} ms: min / median / max" for m in margins]
    body = [[label] + [cell(reps[m], label, k, d) for m in margins]
            for label, k, d in FIGURES]
    lines += table(head, body, 0) + [""]
    text = "\n".join(lines)
    sys.stdout.write(text)
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(text)


main(sys.argv[1])
EOF
)

mkdir -p "$OUT" || exit 1
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT/table.txt"
TMP=$(mktemp -d /tmp/gwdrain.XXXXXX) || exit 1
copy_binaries
command -v haproxy >/dev/null || {
    echo "haproxy missing (apt-get install haproxy)" >&2
    exit 1
}
cp deploy/haproxy.cfg "$TMP/haproxy.cfg" || exit 1

start=$(date +%s)
echo "== bench/drain.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): nproc $(nproc)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg);" \
    "commit $(git describe --always --dirty 2>/dev/null || echo '?')"
i=1
while [ "$i" -le "$RUNS" ]; do
    for m in $MARGINS; do
        measure "drain-m$m-$i" drain --margin "$m" -n "$SESSIONS" \
            --guilds "$GUILDS" --event-rate "$EVENT_RATE" \
            --drain-ms "$DRAIN_MS" --gatewayd "$GATEWAYD" \
            --haproxy-cfg "$TMP/haproxy.cfg"
    done
    i=$((i + 1))
done

DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) SESSIONS=$SESSIONS GUILDS=$GUILDS \
    EVENT_RATE=$EVENT_RATE DRAIN_MS=$DRAIN_MS MARGINS=$MARGINS \
    PYTHONPATH=bench "$PY" -c "$PYPROG" "$OUT" || FAILED=1
echo "(reports and this table in $OUT; $(($(date +%s) - start)) s in all)"
exit $FAILED
