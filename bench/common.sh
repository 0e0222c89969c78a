# shellcheck shell=sh
# Shell helpers of the bench scripts (compare.sh, fanoutcost.sh,
# presence.sh, resume.sh, drain.sh), sourced: processes they start, the loopback ports they
# take, and waiting for servers. Each script keeps the pids it started in
# PIDS and its scratch directory in TMP, so that cleanup, installed for
# exit and the signals, stops what is left and removes TMP.

# alive PID: the process exists and is not a zombie.
alive() {
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    case $st in Z*) return 1 ;; esac
    return 0
}

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL (with its children) after
# SECONDS (5), reap, and forget it in PIDS. Fails when it took the SIGKILL.
stop_pid() {
    sp=$1
    secs=${2:-5}
    kill -TERM "$sp" 2>/dev/null
    i=0
    while alive "$sp" && [ $i -lt $((secs * 10)) ]; do
        sleep 0.1
        i=$((i + 1))
    done
    killed=0
    if alive "$sp"; then
        echo "   pid $sp ignored SIGTERM for $secs s: SIGKILL" >&2
        # shellcheck disable=SC2046 # one word per child pid
        kill -KILL "$sp" $(ps -o pid= --ppid "$sp" 2>/dev/null) 2>/dev/null
        killed=1
    fi
    wait "$sp" 2>/dev/null
    rest=""
    for p in $PIDS; do [ "$p" = "$sp" ] || rest="$rest $p"; done
    PIDS=$rest
    return $killed
}

# free_port: sets PORT to a loopback TCP port below the ephemeral range that
# no socket uses and that this run has not handed out yet.
USED_PORTS=" "
free_port() {
    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    [ "${lo:-0}" -gt 12000 ] 2>/dev/null || lo=32768
    i=0
    while [ $i -lt 100 ]; do
        r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
        PORT=$((10000 + r % (lo - 10000)))
        case $USED_PORTS in *" $PORT "*) ;; *)
            if [ -z "$(ss -Htan "sport = :$PORT" 2>/dev/null)" ]; then
                USED_PORTS="$USED_PORTS$PORT "
                return 0
            fi ;;
        esac
        i=$((i + 1))
    done
    echo "no free loopback port found" >&2
    return 1
}

# shellcheck disable=SC2317 # called by the traps
cleanup() {
    trap - EXIT INT TERM HUP
    for p in $PIDS; do stop_pid "$p" 5; done
    [ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# wait_for PID SECONDS COMMAND...: until COMMAND succeeds; fails when PID
# exits or the time is up.
wait_for() {
    wp=$1
    i=$(($2 * 10))
    shift 2
    while [ $i -gt 0 ]; do
        alive "$wp" || return 1
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        i=$((i - 1))
    done
    return 1
}

# shellcheck disable=SC2317 # called by wait_for
# redis_up PORT: a redis-server on 127.0.0.1:PORT answers PING.
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p "$1" ping)" = PONG ]; }

# shellcheck disable=SC2317 # called by wait_for
# gw_redis_up PORT: the gatewayd whose HTTP API is on PORT has Redis up.
gw_redis_up() {
    curl -sf -m 1 "http://127.0.0.1:$1/health" | grep -q '"redis":"up"'
}

# copy_binaries: copies ./bench/gwbench and ./gatewayd into TMP and points
# GWBENCH and GATEWAYD there, so that a rebuild during the runs changes
# nothing; exits when one is missing.
copy_binaries() {
    for f in ./bench/gwbench ./gatewayd; do
        [ -x "$f" ] || {
            echo "$f missing: make FLAVOR=release gatewayd bench/gwbench" >&2
            exit 1
        }
        cp "$f" "$TMP/" || exit 1
    done
    GWBENCH=$TMP/gwbench
    # shellcheck disable=SC2034 # the sourcing script's
    GATEWAYD=$TMP/gatewayd
}

# measure NAME GWBENCH-ARGS...: one `$GWBENCH GWBENCH-ARGS --quiet --json`
# run holding $GW_MEASURE_LOCK (waiting LOCK_WAIT s at most), a child in
# PIDS so that cleanup stops it; its report goes to $OUT/NAME.json, its
# stderr to $OUT/NAME.log. Prints its summary (or the log's tail) and the
# log's `gwbench:` lines; sets FAILED=1 when it failed.
measure() {
    name=$1
    shift
    echo "== $name (load $(cut -d' ' -f1 /proc/loadavg)): gwbench $*"
    exec 9>>"$GW_MEASURE_LOCK"
    if ! flock -w "$LOCK_WAIT" 9; then
        exec 9>&-
        echo "   $GW_MEASURE_LOCK still held after ${LOCK_WAIT}s"
        FAILED=1
        return
    fi
    "$GWBENCH" "$@" --quiet --json "$OUT/$name.json" 2>"$OUT/$name.log" \
        9>&- &
    gw=$!
    PIDS="$PIDS $gw"
    wait "$gw"
    rc=$?
    PIDS=$(echo "$PIDS" | sed "s/ $gw\$//")
    exec 9>&-
    if [ -s "$OUT/$name.json" ]; then
        printf '   '
        "$GWBENCH" summary "$OUT/$name.json" 2>&1 | sed 's/  *(.*)$//'
    else
        tail -n 5 "$OUT/$name.log" | sed 's/^/   | /'
    fi
    grep '^gwbench: ' "$OUT/$name.log" | head -n 10 | sed 's/^/   | /'
    # shellcheck disable=SC2034 # the sourcing script's verdict
    [ $rc -eq 0 ] || FAILED=1
}
