#!/bin/sh
# The shared library against the committed ABI of the last release
# (libabigail): every function, variable and type the public headers reach
# must be as it was; additions are allowed.
# usage: check-abi.sh LIBCONNSCOPE_SO BASELINE.abi.gz
set -u
lib=$1 baseline=$2
command -v abidiff >/dev/null || { echo "SKIP: abidiff not found (Debian package abigail-tools)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gzip -dc "$baseline" > "$tmp/baseline.abi"
# The baseline holds only what the public headers reach (abidw
# --drop-private-types); the library is read whole, so every one of those
# types is compared. (With --headers-dir2 this abidiff would drop them all.)
abidiff --no-added-syms "$tmp/baseline.abi" "$lib" > "$tmp/report" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
    echo "ABI of $lib matches $(basename "$baseline") (additions aside)"
    exit 0
fi
cat "$tmp/report"
cat <<MSG

abidiff exit $rc: the library's ABI differs from $(basename "$baseline")
(bit 4: a change, bit 8: an incompatible change). A released ABI only grows:
append fields to sz-first structs, add functions to a new version node. When
a new release's ABI is final, commit its baseline:

    abidw --headers-dir include/connscope --headers-dir BUILD/include/connscope \\
        --drop-private-types --no-show-locs --no-corpus-path \\
        BUILD/lib/libconnscope.so.X.Y.Z | gzip -9 > tests/abi/libconnscope-X.Y.Z.abi.gz
MSG
exit 1
