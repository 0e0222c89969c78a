#!/bin/sh
# The layers of a connection call only downward: worker -> proto -> session
# -> ws -> transport (tcp beside it, as one of its implementations) ->
# proxyproto (the PROXY header the transport reads first); so do those of
# the Redis Cluster link: broker -> route -> rcluster -> shard -> resp. Reads
# the undefined symbols of each layer's object (nm -u) and fails when one
# takes a symbol that a layer above it defines, or when any two of the
# daemon's modules call each other in a loop.
#   test/check-layers.sh [BUILD_DIR]      default build/release
set -u
dir=${1:-build/release}
layers="proxyproto transport tcp ws session proto worker resp shard rcluster"
passed=0; failed=0

# defined NAME: the global symbols that object NAME.o defines.
defined() { nm --defined-only -g "$dir/$1.o" | awk '{print $3}' | sort -u; }

# above NAME: the layers over NAME (tcp sits on transport, under ws).
above() {
    case $1 in
    proxyproto) echo "transport tcp ws session proto worker" ;;
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
# And no loop at all among the daemon's objects: every pair "a b" where a
# takes a symbol b defines, through tsort, which names any loop it finds.
for o in "$dir"/*.o; do
    nm --defined-only -g "$o" | awk -v o="$(basename "$o" .o)" '{print $3, o}'
done | sort > "$dir/.defs"
edges=$(for o in "$dir"/*.o; do
    a=$(basename "$o" .o)
    [ "$a" = main ] && continue
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
