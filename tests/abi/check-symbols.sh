#!/bin/sh
# The shared library must export only connscope_* (C) and connscope:: (C++)
# symbols, as lib/libconnscope.map says; anything else leaked past visibility.
# usage: check-symbols.sh LIBCONNSCOPE_SO CONNSCOPE_H
set -u
lib=$1
syms=$(nm -D --defined-only -C "$lib" | awk '{ $1 = ""; $2 = ""; sub(/^  /, ""); print }' | sed 's/@@*[A-Za-z0-9_.]*$//')
[ -n "$syms" ] || { echo "no dynamic symbols in $lib"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -Ev '^(connscope_[a-z0-9_]+|CONNSCOPE_[0-9.]+|((typeinfo|typeinfo name|vtable|VTT|construction vtable for .* in) for )?connscope::.*)$')
c_count=$(printf '%s\n' "$syms" | grep -c '^connscope_')
echo "$lib: $(printf '%s\n' "$syms" | wc -l) symbols, $c_count of the C API"
if [ -n "$bad" ]; then
    echo "symbols exported that are neither connscope_* nor connscope::*:"
    printf '%s\n' "$bad"
    exit 1
fi
# Private parts of the C++ API (pimpl bodies, detail namespaces) stay hidden
# even though the version map's connscope::* pattern would let them out.
internal=$(printf '%s\n' "$syms" | grep -E '::(Impl|detail)::' || true)
if [ -n "$internal" ]; then
    echo "internal C++ symbols exported (give them hidden visibility in lib/):"
    printf '%s\n' "$internal"
    exit 1
fi
# Every function the C header declares is exported.
missing=0
for f in $(grep -o 'connscope_[a-z_]*(' "$2" | tr -d '(' | sort -u); do
    case $f in connscope_connect_fn|connscope_tcp_connect_fn) continue ;; esac
    printf '%s\n' "$syms" | grep -qx "$f" || { echo "not exported: $f"; missing=1; }
done
exit $missing
