#!/bin/sh
# The default benchmark suite (`make bench`): each scenario against a fresh
# release ./gatewayd started by gwbench on free loopback ports, a private
# redis-server for fanout and a private RabbitMQ node for relay. Writes one
# JSON report per run and a fanout plot to $OUT (build/bench), then prints
# one line of headline figures per run. Takes about two minutes; every run
# is bounded by gwbench's --timeout.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-build/bench}
GWBENCH=./bench/gwbench
mkdir -p "$OUT"
rm -f "$OUT"/*.json

echo "== gwbench suite $(date -u +%Y-%m-%dT%H:%M:%SZ): nproc $(nproc)," \
     "$(free -g | awk '/^Mem:/ {print $2}') GiB," \
     "load $(cut -d' ' -f1-3 /proc/loadavg)"

failed=0
# run NAME SCENARIO [FLAGS...]: one gwbench run, its summary on stderr.
run() {
    name=$1; shift
    echo "== $name: gwbench $*"
    "$GWBENCH" "$@" --timeout 120 --json "$OUT/$name.json" || failed=1
}

# The machine's raw loopback fan-out ceiling first: every fan-out figure
# below is also read as a share of it (bench/README.md).
echo "== ceiling: bench/ceiling"
mkdir -p "$OUT/ceiling"
./bench/ceiling -o "$OUT/ceiling/ceiling.json" || failed=1

run connect-19k   connect -n 19000
run idle-5k       idle -n 5000 --duration 10 --heartbeat-ms 5000
run idle-19k      idle -n 19000 --duration 10 --heartbeat-ms 5000
run fanout-5k     fanout --guilds 50 --members 100 --event-rate 1000 \
                  --duration 20 --via redis --plot "$OUT/fanout-5k.png"
run typing-1k     typing --guilds 10 --members 100 --typing-rate 150 \
                  --duration 10
run reconnect-5k  reconnect -n 5000 --churn 5 --duration 10
run relay-5k      relay -n 5000 --rate 2000 --duration 10

echo "== summary (JSON and plot in $OUT)"
"$GWBENCH" summary "$OUT"/*.json || failed=1
exit $failed
