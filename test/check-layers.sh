#!/bin/sh
# The layers of a connection call only downward: worker -> proto -> session
# -> ws -> transport (tcp beside it, as one of its implementations). Reads
# the undefined symbols of each layer's object (nm -u) and fails when one
# takes a symbol that a layer above it defines.
#   test/check-layers.sh [BUILD_DIR]      default build/release
set -u
dir=${1:-build/release}
layers="transport tcp ws session proto worker"
passed=0; failed=0

# defined NAME: the global symbols that object NAME.o defines.
defined() { nm --defined-only -g "$dir/$1.o" | awk '{print $3}' | sort -u; }

# above NAME: the layers over NAME (tcp sits on transport, under ws).
above() {
    case $1 in
    transport) echo "tcp ws session proto worker" ;;
    tcp) echo "ws session proto worker" ;;
    ws) echo "session proto worker" ;;
    session) echo "proto worker" ;;
    proto) echo "worker" ;;
    worker) echo "" ;;
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
               comm -12 - "$(defined "$a" > "$dir/.defs.$a"; echo "$dir/.defs.$a")")
        rm -f "$dir/.defs.$a"
        [ -n "$hits" ] && bad="$bad $a:($(echo $hits))"
    done
    if [ -n "$bad" ]; then
        echo "FAIL $l calls upward:$bad"
        failed=$((failed + 1))
    else
        echo "ok   $l takes nothing from $(above "$l" | sed 's/^$/-/')"
        passed=$((passed + 1))
    fi
done
echo "layers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
