#!/usr/bin/env bash
# Make the tests/fixtures/core-* fixtures: build the small C program of
# tests/fixtures/core-src/ (static, with debug info), start it, and dump it
# with the reference CRIU 4.1.1 (scripts/reference-tools.sh).
#
#   scripts/make-core-fixtures.sh          (needs root)
#
# Result, for each fixture NAME (today only core-threads):
#   tests/fixtures/NAME/images/     the dump (dump.log removed)
#   tests/fixtures/NAME/root/       the files the process had mapped, at the
#                                   paths the images record (the program
#                                   binary and its data file), for
#                                   `crit core --files-root` and for gdb
#   tests/fixtures/NAME/cmdline     the command line the process ran with
#                                   (NUL-separated, as in /proc/PID/cmdline)
# A fixture is replaced only when its dump succeeded.  The paths the dumped
# process used are under /tmp/crit-core-fixtures (FX_SCRATCH is not
# honoured: the images record these paths and the tests expect them).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
scratch=/tmp/crit-core-fixtures
bin=$scratch/bin
die() { echo "make-core-fixtures: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (CRIU dumps only root's processes here)"
bash "$repo/scripts/reference-tools.sh" >/dev/null || die "reference tools unavailable"
criu=$repo/.reference/bin/criu
command -v gcc >/dev/null || die "gcc not found"

mkdir -p "$bin"

make_one() { # NAME PROGRAM ARGS...
    local name=$1 prog=$2
    shift 2
    local work=$scratch/work-$name out=$repo/tests/fixtures/$name
    local new=$out.new pid
    rm -rf "$work" "$new"
    mkdir -p "$work" "$new/images"
    gcc -g -O0 -fno-omit-frame-pointer -static -pthread -o "$bin/$prog" "$repo/tests/fixtures/core-src/$prog.c"
    pid=$(cd / && env -i PATH=/usr/bin:/bin CRIT_FIXTURE="$name" "$bin/$prog" "$work" "$@")
    [ -n "$pid" ] || die "$name: the program did not start"
    sleep 0.5
    if ! timeout 120 "$criu" dump -D "$new/images" -t "$pid" -v4 -o dump.log; then
        grep -E 'Error|Warn' "$new/images/dump.log" | tail -n 8 >&2 || true
        kill -9 "$pid" 2>/dev/null || true
        die "$name: criu dump failed"
    fi
    rm -f "$new/images/dump.log"
    mkdir -p "$new/root$bin" "$new/root$work"
    cp "$bin/$prog" "$new/root$bin/$prog"
    cp "$work/short.dat" "$new/root$work/short.dat"
    printf '%s\0' "$bin/$prog" "$work" "$@" >"$new/cmdline"
    rm -rf "$out"
    mv "$new" "$out"
    echo "make-core-fixtures: $name: pid $pid dumped into ${out#"$repo"/}"
}

make_one core-threads core-threads hello "two words"
