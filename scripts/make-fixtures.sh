#!/usr/bin/env bash
# Make the criu41-* image fixtures: build the small C programs of
# tests/fixtures/src/, start each one, wait until it has set up its state,
# and dump it with the reference CRIU 4.1.1 (scripts/reference-tools.sh) into
# tests/fixtures/criu41-NAME/.
#
#   scripts/make-fixtures.sh [--list] [NAME...]      (default: all; needs root)
#
# NAME is the part after "criu41-".  A fixture directory is replaced only when
# its dump succeeded; dump.log and any socket file are removed from it.  The
# section of tests/fixtures/README.md between the "criu41 begin/end" markers
# is rewritten from the table below (the exact criu command lines included).
# Scratch files live in ${FX_SCRATCH:-/tmp/crit-fixtures}; the paths the
# dumped processes used (and so the paths inside the images) are under it.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=$repo/tests/fixtures/src
fixtures=$repo/tests/fixtures
scratch=${FX_SCRATCH:-/tmp/crit-fixtures}
bin=$scratch/bin

# ---------------------------------------------------------------- fixtures -
# name | program [args] | extra criu dump options | what was dumped | notes
# (the fields are separated by " | "; an empty field is "-")
FIXTURES=(
    "pipes | pipes | - | one task holding 4 pipes (3 with queued data, one with only its read end, one dup()ed) and a fifo opened twice holding 14 bytes | -"
    "unix | unix | - | one task with unix sockets: stream, dgram and seqpacket socketpairs with queued data, a named listener with an accepted connection, an abstract-name dgram socket with 2 queued datagrams, a socket bound to an odd name (space, '=', '.', tab, UTF-8), a listener whose name was unlinked | -"
    "netsk | netsk | - | one task with a raw packet socket bound to lo (PACKET_AUXDATA, TPACKET_V2), an unbound dgram packet socket, a bound NETLINK_ROUTE socket with groups and an unbound NETLINK_KOBJECT_UEVENT socket | -"
)

# ----------------------------------------------------------------- helpers -
die() { echo "make-fixtures: $*" >&2; exit 1; }
field() { # field N LINE
    local f
    f=$(echo "$2" | awk -F ' [|] ' -v n="$1" '{ print $n }')
    [ "$f" = "-" ] && f=
    printf '%s' "$f"
}

[ "$(id -u)" = 0 ] || die "needs root (CRIU dumps only root's processes here)"

list=0
want=()
for a in "$@"; do
    case $a in
    --list) list=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) want+=("${a#criu41-}") ;;
    esac
done
if [ "$list" = 1 ]; then
    for l in "${FIXTURES[@]}"; do echo "criu41-$(field 1 "$l")"; done
    exit 0
fi

ref=$("$repo/scripts/reference-tools.sh") || exit 1
refdir=${CRIT_REFERENCE_DIR:-$repo/.reference}
criu=$refdir/bin/criu
criu_version=$("$criu" --version | sed -n 's/^Version: //p')

# ------------------------------------------------------------------- build -
mkdir -p "$bin"
build() { # build PROG
    local p=$1 out=$bin/$1 extra=()
    case $p in threads) extra=(-pthread) ;; esac
    if [ "$out" -nt "$src/$p.c" ] && [ "$out" -nt "$src/fx.h" ]; then return 0; fi
    if ! gcc -static -O1 -Wall -o "$out" "$src/$p.c" "${extra[@]}" 2>"$bin/$p.build.log"; then
        echo "make-fixtures: static build of $p failed, trying a dynamic one" >&2
        gcc -O1 -Wall -o "$out" "$src/$p.c" "${extra[@]}" 2>>"$bin/$p.build.log" ||
            { cat "$bin/$p.build.log" >&2; die "cannot build $p"; }
    fi
}

# kill_session SID: end what is left of a fixture's processes (its session)
kill_session() {
    local p
    for p in $(ps -e -o pid=,sid= | awk -v s="$1" '$2 == s { print $1 }'); do
        kill -9 "$p" 2>/dev/null || true
    done
}

readme_rows=()
failed=()
make_one() { # make_one LINE
    local line=$1 name prog opts what notes
    name=criu41-$(field 1 "$line")
    prog=$(field 2 "$line")
    opts=$(field 3 "$line")
    what=$(field 4 "$line")
    notes=$(field 5 "$line")
    local work=$scratch/$name out=$fixtures/$name
    local new=$out.new pid rc
    build "${prog%% *}"
    rm -rf "$work" "$new"
    mkdir -p "$work" "$new"
    # shellcheck disable=SC2086
    if ! (cd "$work" && FX_WORK=$work FX_READY=$work/ready "$bin/"$prog); then
        failed+=("$name (program failed to start)")
        rm -rf "$new"
        return 0
    fi
    pid=$(cat "$work/ready")
    sleep 0.2
    local cmd="criu dump -D $name -t PID -v4 -o dump.log${opts:+ $opts}"
    # shellcheck disable=SC2086
    if "$criu" dump -D "$new" -t "$pid" -v4 -o dump.log $opts; then
        rc=0
    else
        rc=$?
    fi
    if [ "$rc" != 0 ]; then
        echo "make-fixtures: $name: criu dump failed (rc=$rc):" >&2
        grep -E 'Error|Warn' "$new/dump.log" | tail -n 8 >&2 || true
        cp "$new/dump.log" "$scratch/$name.dump.log" 2>/dev/null || true
        kill_session "$pid"
        failed+=("$name (criu dump rc=$rc; log in $scratch/$name.dump.log)")
        rm -rf "$new"
        return 0
    fi
    kill_session "$pid"
    cp "$new/dump.log" "$scratch/$name.dump.log"
    rm -f "$new/dump.log"
    find "$new" -type s -delete
    rm -rf "$out"
    mv "$new" "$out"
    echo "made $name ($(du -sh "$out" | cut -f1))"
}

for l in "${FIXTURES[@]}"; do
    n=$(field 1 "$l")
    if [ "${#want[@]}" -gt 0 ]; then
        hit=0
        for w in "${want[@]}"; do [ "$w" = "$n" ] && hit=1; done
        [ "$hit" = 1 ] || continue
    fi
    make_one "$l"
done

if [ "${#failed[@]}" -gt 0 ]; then
    printf 'make-fixtures: failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
