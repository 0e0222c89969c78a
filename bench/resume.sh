#!/bin/sh
# Resume under churn, and what a parked session costs (`make bench-resume`):
#
#   bench/resume.sh
#
# 1. RUNS x `gwbench resume`: SESSIONS sessions in GUILDS guilds,
#    EVENT_RATE events/s through a private Redis for DURATION s, and CHURN %
#    of the sessions a second reset (TCP RST) and resumed at once with the
#    last seq each received: lost, duplicated, seq gaps, out of order,
#    invalid_session, resumes/s, resume latency (cut to `resumed`), server
#    CPU (bench/README.md, "Resume under churn").
# 2. PARK_RUNS x `gwbench park --fill 0` and `--fill FILL`: server RSS per
#    parked session with an empty replay buffer and after FILL dispatches
#    each (256 = session.replay_size: full), over rounds of SESSIONS.
#
# Run from a checkout's root; uses copies of its ./bench/gwbench and
# ./gatewayd (a rebuild meanwhile changes nothing). Each run starts a fresh
# gatewayd and redis-server and holds $GW_MEASURE_LOCK (flock), so that no
# two measurements on the machine overlap: do not run the script under
# that lock, it would wait for itself. Prints a table, min / median / max of
# each figure over the runs (also $OUT/table.txt); the reports (.json) and
# gwbench's summaries (.log) stay in OUT. Exit status 0 when every run was
# ok (resume: nothing lost, duplicated, out of order or invalid).
#
# Environment: OUT (build/bench/resume), RUNS (3), PARK_RUNS (3), SESSIONS
# (5000), GUILDS (50), EVENT_RATE (1000), CHURN (5), DURATION (20), FILL
# (256), GW_MEASURE_LOCK (/tmp/gw-measure.lock), LOCK_WAIT (600 s).
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-build/bench/resume}
RUNS=${RUNS:-3}
PARK_RUNS=${PARK_RUNS:-3}
SESSIONS=${SESSIONS:-5000}
GUILDS=${GUILDS:-50}
EVENT_RATE=${EVENT_RATE:-1000}
CHURN=${CHURN:-5}
DURATION=${DURATION:-20}
FILL=${FILL:-256}
GW_MEASURE_LOCK=${GW_MEASURE_LOCK:-/tmp/gw-measure.lock}
LOCK_WAIT=${LOCK_WAIT:-600}
PY=/usr/bin/python3
PIDS="" # common.sh's cleanup stops these; gwbench stops its own servers
TMP=""
FAILED=0
# shellcheck source=bench/common.sh
. bench/common.sh

# The table of the runs ("table OUT"): min / median / max of each figure.
PYPROG=$(
    cat <<'EOF'
import glob, os, statistics, sys

from benchtab import get, load, num, table


def spread(values, digits):
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    lo, med, hi = min(v), statistics.median(v), max(v)
    return " / ".join(num(x, digits) for x in (lo, med, hi))


def rows(reps, figures):
    return [[label, spread([get(r, "results." + k) for r in reps], d)]
            for label, k, d in figures]


RESUME = [
    ("ok (runs)", None, 0),
    ("cuts", "cuts", 0),
    ("resumed", "resumed", 0),
    ("resumes/s", "resumes_per_s", 1),
    ("invalid_session", "invalid_session", 0),
    ("lost", "lost", 0),
    ("lost at invalid_session", "lost_at_invalid", 0),
    ("duplicated", "duplicated", 0),
    ("seq gaps", "seq_gaps", 0),
    ("seq repeats", "seq_repeats", 0),
    ("out of order", "out_of_order", 0),
    ("deliveries", "deliveries", 0),
    ("expected", "expected", 0),
    ("replayed (server)", "gatewayd.replayed", 0),
    ("resume overflows (server)", "gatewayd.resume_overflows", 0),
    ("handed to another worker", "gatewayd.resume_handed_over", 0),
    ("resume p50 ms", "resume_latency.p50_ms", 2),
    ("resume p99 ms", "resume_latency.p99_ms", 2),
    ("resume p999 ms", "resume_latency.p999_ms", 2),
    ("resume max ms", "resume_latency.max_ms", 2),
    ("delivery p50 ms", "delivery_latency.p50_ms", 2),
    ("delivery p99 ms", "delivery_latency.p99_ms", 2),
    ("server CPU s", "server_cpu_s", 2),
    ("server CPU %", "server_cpu_pct", 1),
    ("gwbench CPU s", "gwbench_cpu_s", 2),
    ("redis CPU s", "redis_cpu_s", 2),
    ("other CPU s (machine)", "machine_other_cpu_s", 2),
    ("steal s", "machine_steal_s", 2),
]

PARK = [
    ("B per parked session (rounds 2-3)", "bytes_per_parked_session", 0),
    ("  lowest round", "bytes_per_parked_session_min", 0),
    ("  highest round", "bytes_per_parked_session_max", 0),
    ("B per session, round 1 (with freed conns)",
     "first_round_bytes_per_session", 0),
    ("bodies' payload in the logs, per session",
     "log_payload_bytes_per_session",
     0),
    ("RSS before any client, kB", "rss_before_kb", 0),
]


def section(title, reps, figures):
    out = [title, ""]
    body = []
    for label, k, d in figures:
        if k is None:
            ok = sum(1 for r in reps if r and r.get("ok"))
            body.append([label, f"{ok} of {len(reps)} ok"])
        else:
            body += rows(reps, [(label, k, d)])
    return out + table(["figure", "min / median / max"], body, 0) + [""]


def main(out):
    e = os.environ
    res = [load(p) for p in sorted(glob.glob(os.path.join(out, "resume-*.json")))]
    lines = [f"== resume {e['DATE']}: {e['SESSIONS']} sessions in "
             f"{e['GUILDS']} guilds, {e['EVENT_RATE']} events/s via Redis, "
             f"{e['CHURN']} % reset and resumed a second, {e['DURATION']} s; "
             f"{len(res)} runs", ""]
    lines += section("resume under churn", res, RESUME)
    for fill in ("0", e["FILL"]):
        reps = [load(p) for p in sorted(glob.glob(
            os.path.join(out, f"park-fill{fill}-*.json")))]
        lines += section(f"parked sessions, --fill {fill} ({len(reps)} runs)",
                         reps, PARK)
    text = "\n".join(lines)
    sys.stdout.write(text)
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(text)


main(sys.argv[1])
EOF
)


mkdir -p "$OUT" || exit 1
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT/table.txt"
TMP=$(mktemp -d /tmp/gwresume.XXXXXX) || exit 1
copy_binaries

start=$(date +%s)
echo "== bench/resume.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): nproc $(nproc)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg);" \
    "commit $(git describe --always --dirty 2>/dev/null || echo '?')"
i=1
while [ "$i" -le "$RUNS" ]; do
    measure "resume-$i" resume -n "$SESSIONS" --guilds "$GUILDS" \
        --event-rate "$EVENT_RATE" --churn "$CHURN" --duration "$DURATION" \
        --gatewayd "$GATEWAYD"
    i=$((i + 1))
done
i=1
while [ "$i" -le "$PARK_RUNS" ]; do
    for fill in 0 "$FILL"; do
        measure "park-fill$fill-$i" park -n "$SESSIONS" --guilds "$GUILDS" \
            --fill "$fill" --event-rate "$EVENT_RATE" --gatewayd "$GATEWAYD"
    done
    i=$((i + 1))
done

DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) SESSIONS=$SESSIONS GUILDS=$GUILDS \
    EVENT_RATE=$EVENT_RATE CHURN=$CHURN DURATION=$DURATION FILL=$FILL \
    PYTHONPATH=bench "$PY" -c "$PYPROG" "$OUT" || FAILED=1
echo "(reports and this table in $OUT; $(($(date +%s) - start)) s in all)"
exit $FAILED
