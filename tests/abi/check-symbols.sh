#!/bin/sh
# The shared library exports exactly the symbols lib/libconnscope.map names,
# each in its version node, and every function the C header declares.
# usage: check-symbols.sh LIBCONNSCOPE_SO CONNSCOPE_H LIBCONNSCOPE_MAP
set -u
lib=$1 header=$2 map=$3
# "symbol node" for each exported symbol (mangled), and for each map entry.
exported=$(nm -D --defined-only "$lib" | awk '$3 !~ /^CONNSCOPE_[0-9.]+$/ { split($3, a, "@@"); print a[1], a[2] }' | sort)
[ -n "$exported" ] || { echo "no dynamic symbols in $lib"; exit 1; }
listed=$(awk '
    /^CONNSCOPE_[0-9.]+ *\{/ { node = $1; next }
    /^ *(global|local):/ { next }
    /^ *[A-Za-z_][A-Za-z0-9_]* *;/ { sub(/;.*/, ""); gsub(/ /, ""); if ($0 != "*") print $0, node }
' "$map" | sort)
echo "$lib: $(printf '%s\n' "$exported" | wc -l) symbols exported, $(printf '%s\n' "$listed" | wc -l) named in $map"
if [ "$exported" != "$listed" ]; then
    echo "exported (+) and named in the version map (-) differ:"
    printf '%s\n' "$listed" >/tmp/connscope-map.$$
    printf '%s\n' "$exported" | diff /tmp/connscope-map.$$ - | grep '^[<>]' |
        sed 's/^</-/; s/^>/+/' | while read -r sign sym node; do
            echo "$sign $sym ($(echo "$sym" | c++filt)) ${node:-no node}"
        done
    rm -f /tmp/connscope-map.$$
    echo "a new symbol goes into the node of the release that adds it (lib/libconnscope.map)"
    exit 1
fi
# Every function the C header declares is exported.
missing=0
for f in $(grep -o 'connscope_[a-z_]*(' "$header" | tr -d '(' | sort -u); do
    case $f in connscope_connect_fn|connscope_tcp_connect_fn|connscope_log_fn) continue ;; esac
    printf '%s\n' "$exported" | grep -q "^$f " || { echo "not exported: $f"; missing=1; }
done
exit $missing
