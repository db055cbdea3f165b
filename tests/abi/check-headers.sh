#!/bin/sh
# Every public header compiles on its own: connscope.h as C11 -pedantic and as
# C++17, each .hpp as C++17, all with warnings as errors.
# usage: check-headers.sh SOURCE_DIR BUILD_INCLUDE_DIR c|c++   (CC / CXX name the compilers)
set -eu
src=$1 binc=$2 lang=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/connscope-hdr.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
check() {
    printf '#include <connscope/%s>\n' "$2" >"$tmp/t.$1"
    echo "+ <connscope/$2> as $1"
    shift 2
    "$@"
}
if [ "$lang" = c ]; then
    # shellcheck disable=SC2086
    check c connscope.h ${CC:-cc} -std=c11 -pedantic -Werror -Wall -Wextra -fsyntax-only \
        -I"$src/include" -I"$binc" "$tmp/t.c"
else
    for h in connscope.h $(cd "$src/include/connscope" && ls *.hpp); do
        # shellcheck disable=SC2086
        check cpp "$h" ${CXX:-c++} -std=c++17 -pedantic -Werror -Wall -Wextra -fsyntax-only \
            -I"$src/include" -I"$binc" "$tmp/t.cpp"
    done
fi
echo "headers compile alone ($lang)"
