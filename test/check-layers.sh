#!/bin/sh
# The layers of a connection call only downward: worker -> proto -> session
# -> ws -> transport (tcp beside it, as one of its implementations) ->
# proxyproto (the PROXY header the transport reads first) and uring (the
# loop's io_uring, which reaches the transport through the completion
# callback the transport installs); so do those of
# the Redis Cluster link: broker -> route -> rcluster -> shard -> resp. Reads
# the undefined symbols of each layer's object (nm -u) and fails when one
# takes a symbol that a layer above it defines, or when any two of the
# daemon's modules call each other in a loop. The same for gwctl's
# connection layers, which the daemon's modules never call.
#   test/check-layers.sh [BUILD_DIR]      default build/release
set -u
dir=${1:-build/release}
layers="proxyproto uring transport tcp ws session proto worker resp shard rcluster"
passed=0; failed=0

# defined NAME: the global symbols that object NAME.o defines.
defined() { nm --defined-only -g "$dir/$1.o" | awk '{print $3}' | sort -u; }

# above NAME: the layers over NAME (tcp sits on transport, under ws).
above() {
    case $1 in
    proxyproto) echo "transport tcp ws session proto worker" ;;
    uring) echo "transport tcp ws session proto worker" ;;
    transport) echo "tcp ws session proto worker" ;;
    tcp) echo "ws session proto worker" ;;
    ws) echo "session proto worker" ;;
    session) echo "proto worker" ;;
    proto) echo "worker" ;;
    worker) echo "" ;;
    resp) echo "shard rcluster route broker" ;;
    shard) echo "rcluster route broker" ;;
    rcluster) echo "route broker" ;;
    esac
}

for l in $layers; do
    if [ ! -f "$dir/$l.o" ]; then
        echo "FAIL $l: $dir/$l.o is missing (make first)"
        failed=$((failed + 1))
        continue
    fi
    bad=""
    for a in $(above "$l"); do
        hits=$(nm -u "$dir/$l.o" | awk '{print $2}' | sort -u |
               comm -12 - "$(defined "$a" > "$dir/.defs.$a"; echo "$dir/.defs.$a")" |
               tr '\n' ' ')
        rm -f "$dir/.defs.$a"
        [ -n "$hits" ] && bad="$bad $a:(${hits% })"
    done
    if [ -n "$bad" ]; then
        echo "FAIL $l calls upward:$bad"
        failed=$((failed + 1))
    else
        echo "ok   $l takes nothing from $(above "$l" | sed 's/^$/-/')"
        passed=$((passed + 1))
    fi
done
# gwctl (src/gwctl/, objects in $dir/gwctl) stands on the daemon's
# modules, never beneath them, and its own connection layers call only
# downward: tlsc -> net -> httpc -> wsc -> the commands.
gwctl_above() {
    case $1 in
    tlsc) echo "net httpc wsc" ;;
    net) echo "httpc wsc" ;;
    httpc) echo "wsc" ;;
    esac
}
gwctl_commands="call tail tokens backend ops gwctl"
if [ ! -f "$dir/gwctl/gwctl.o" ]; then
    echo "FAIL gwctl: $dir/gwctl/gwctl.o is missing (make gwctl first)"
    failed=$((failed + 1))
else
    for o in "$dir"/gwctl/*.o; do defined "gwctl/$(basename "$o" .o)"; done |
        sort -u > "$dir/.defs.gwctl"
    hits=$(for o in "$dir"/*.o; do nm -u "$o" | awk '{print $2}'; done |
           sort -u | comm -12 - "$dir/.defs.gwctl" | tr '\n' ' ')
    rm -f "$dir/.defs.gwctl"
    if [ -n "$hits" ]; then
        echo "FAIL the daemon takes symbols of gwctl: ${hits% }"
        failed=$((failed + 1))
    else
        echo "ok   the daemon takes nothing from gwctl"
        passed=$((passed + 1))
    fi
    for l in tlsc net httpc wsc; do
        bad=""
        for a in $(gwctl_above "$l") $gwctl_commands; do
            defined "gwctl/$a" > "$dir/.defs.$a"
            hits=$(nm -u "$dir/gwctl/$l.o" | awk '{print $2}' | sort -u |
                   comm -12 - "$dir/.defs.$a" | tr '\n' ' ')
            rm -f "$dir/.defs.$a"
            [ -n "$hits" ] && bad="$bad $a:(${hits% })"
        done
        if [ -n "$bad" ]; then
            echo "FAIL gwctl's $l calls upward:$bad"
            failed=$((failed + 1))
        else
            echo "ok   gwctl's $l takes nothing from" $(gwctl_above "$l") \
                "$gwctl_commands"
            passed=$((passed + 1))
        fi
    done
fi
# And no loop at all among the daemon's objects and gwctl's: every pair
# "a b" where a takes a symbol b defines, through tsort, which names any
# loop it finds.
for o in "$dir"/*.o "$dir"/gwctl/*.o; do
    [ -f "$o" ] || continue
    nm --defined-only -g "$o" | awk -v o="${o#"$dir"/}" '{print $3, o}'
done | sort > "$dir/.defs"
edges=$(for o in "$dir"/*.o "$dir"/gwctl/*.o; do
    [ -f "$o" ] || continue
    a=${o#"$dir"/}
    [ "$a" = main.o ] && continue
    nm -u "$o" | awk '{print $2}' | sort -u | join - "$dir/.defs" |
        awk -v a="$a" '$2 != a {print a, $2}' | sort -u
done)
rm -f "$dir/.defs"
if loops=$(printf '%s\n' "$edges" | tsort 2>&1 >/dev/null) && [ -z "$loops" ]; then
    echo "ok   no module calls another in a loop"
    passed=$((passed + 1))
else
    echo "FAIL modules call each other in a loop:"
    printf '%s\n' "$loops"
    failed=$((failed + 1))
fi
echo "layers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
