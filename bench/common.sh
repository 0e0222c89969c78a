# shellcheck shell=sh
# Shell helpers of the bench scripts (compare.sh, fanoutcost.sh), sourced:
# processes they start, and the loopback ports they take. Each script keeps
# the pids it started in PIDS, so that its cleanup stops what is left.

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
