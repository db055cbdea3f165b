#!/bin/sh
# Compares the C ABI layout printed by layout.c with the committed layout.txt.
# usage: check-layout.sh LAYOUT_PROGRAM LAYOUT_TXT
set -u
prog=$1 expected=$2
actual=$("$prog")
rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -eq 0 ] || { echo "$prog failed ($rc)"; exit 1; }
if printf '%s\n' "$actual" | diff -u "$expected" -; then
    echo "C ABI layout matches $expected"
    exit 0
fi
cat <<MSG

The layout of <connscope/connscope.h> differs from $expected (diff above).
If the change is intended and keeps the ABI (fields only appended, nothing
moved or resized), regenerate the file and commit it with the change:

    $prog > $expected

If a field moved or changed size, the change breaks the ABI: append instead.
MSG
exit 1
