#!/usr/bin/env bash
# Record the reference crit's output for every image of one fixture directory.
#
#   scripts/gen-golden.sh CRIT FIXTURE_DIR GOLDEN_DIR
#
# CRIT is the command that runs the reference crit (for example
# ".reference/bin/crit" from scripts/reference-tools.sh, or a crit built from
# CRIU 4.2's source).  For every file F of FIXTURE_DIR it writes, in GOLDEN_DIR:
#   F.raw   stdout of `crit decode -i F`            (raw JSON, trailing newline)
#   F.nice  stdout of `crit decode --pretty -i F`   (indented JSON)
#   F.nopl  stdout of `crit show --nopl F`
#   F.info  stdout of `crit info F`
# and, for every x view, x-ps x-fds x-mems x-rss.
# When the reference fails, the output file is not written; instead OUT.err
# holds "rc=N" and the last line of its stderr (the Python exception text).
# The images themselves are never modified.
set -euo pipefail
crit=$1
fixture=$2
golden=$3
mkdir -p "$golden"

run() { # run OUT CMD...
    local out=$1; shift
    local err
    err=$(mktemp)
    rm -f "$out" "$out.err"
    if "$@" >"$out.tmp" 2>"$err"; then
        mv "$out.tmp" "$out"
    else
        local rc=$?
        rm -f "$out.tmp"
        { echo "rc=$rc"; tail -n 1 "$err"; } >"$out.err"
    fi
    rm -f "$err"
}

for f in "$fixture"/*; do
    [ -f "$f" ] || continue
    b=$(basename "$f")
    case "$b" in *.md|*.sock|*.log) continue ;; esac
    run "$golden/$b.raw" $crit decode -i "$f"
    run "$golden/$b.nice" $crit decode --pretty -i "$f"
    run "$golden/$b.nopl" $crit show --nopl "$f"
    run "$golden/$b.info" $crit info "$f"
done
for v in ps fds mems rss; do
    run "$golden/x-$v" $crit x "$fixture" "$v"
done
