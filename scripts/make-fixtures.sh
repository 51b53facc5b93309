#!/usr/bin/env bash
# Make the criu41-* image fixtures: build the small C programs of
# tests/fixtures/src/, start each one, wait until it has set up its state,
# and dump it with the reference CRIU 4.1.1 (scripts/reference-tools.sh) into
# tests/fixtures/criu41-NAME/.
#
#   scripts/make-fixtures.sh [--list] [--no-golden] [--readme-only] [NAME...]
#
# (default: all fixtures; needs root).  NAME is the part after "criu41-".
# A fixture directory is replaced only when its dump succeeded; dump.log and
# any socket file are removed from it.  Then, unless --no-golden is given,
# tests/golden/criu41-NAME/ is made anew with scripts/gen-golden.sh and the
# reference crit (run from the repo root with relative paths, as the goldens
# record some paths in error messages).  The
# section of tests/fixtures/README.md between the "criu41 begin/end" markers
# is rewritten from the table below (the exact criu command lines included);
# --readme-only does only that.
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
# (fields separated by " | ", "-" for an empty one; a "|" inside a field must
# not have spaces on both sides).  The names get the prefix "criu41-".
FIXTURES=(
    "pipes | pipes | - | one task holding 4 pipes (3 with queued data: 11 bytes, 3000 bytes in a 16 KiB pipe, 13 bytes in a pipe whose write end is closed; one empty; one read end dup()ed and O_NONBLOCK) and a fifo opened twice (O_RDWR, O_RDONLY/O_NONBLOCK) holding 14 bytes | CRIU 4.x writes the PIPE and FIFO file entries into files.img: there is no pipes.img or fifo.img. The data is in pipes-data.img (3 entries) and fifo-data.img (1 entry)."
    "unix | unix | - | one task with unix sockets: stream, dgram and seqpacket socketpairs with queued data (seqpacket shut down for writing on one side), a named listener with an accepted connection (data both ways), an abstract-name dgram socket with 2 queued datagrams (one binary), a dgram socket bound to the name 'odd name=1.<TAB><U+00E9>', a listener whose file was unlinked | The UNIXSK entries are in files.img (no unixsk.img); sk-queues.img holds the queued data. The names exercise crit's quoted-printable unix_name."
    "netlink | netsk netlink | - | one task with a bound NETLINK_ROUTE socket subscribed to groups RTMGRP_LINK and RTMGRP_IPV4_IFADDR and an unbound NETLINK_KOBJECT_UEVENT socket | NETLINK entries are in files.img (no netlinksk.img). Packet sockets were left out: CRIU 4.1.1 fails on them on this kernel (see below)."
    "ghost | ghost | - | one task holding unlinked files: a small one (125 bytes, opened twice, one fd at offset 10), a sparse 64 KiB one with 2 data extents, one that is only mmap()ed shared (8 KiB), and an unlinked directory | 4 ghost-file-*.img (raw for the small file, the mmapped one and the directory; chunked, 2 chunks, for the 64 KiB one) and remap-fpath.img."
    "files | files | --file-locks | one task whose cwd is a directory named 'cwd dir =<U+00FC><U+20AC>' (UTF-8), with a file mapped shared and one mapped private (a page modified), flock/POSIX (2 ranges)/OFD locks, a sealed memfd (F_SEAL_SHRINK, F_SEAL_GROW) that is also mapped, an O_APPEND file | filelocks.img has 4 entries; memfd.img and pagemap-shmem-*.img for the memfd; fs-*.img points at the unusual cwd."
    "fdtypes | fdtypes | - | one task with 2 eventfds (one EFD_SEMAPHORE), an epoll watching 3 targets (the eventfd and both ends of a pipe), a signalfd for SIGUSR1/SIGUSR2/SIGRTMIN+1 (blocked), 2 armed timerfds (monotonic with an interval; realtime, absolute), an inotify with 2 watches, pending signals (SIGUSR1 on the thread, SIGUSR2 and 2x SIGRTMIN+1 on the process) | All these fds are in files.img (EVENTFD, EVENTPOLL with its tfd list inline, SIGNALFD, TIMERFD, INOTIFY with its wd list inline): no eventfd.img, eventpoll*.img, signalfd.img, timerfd.img or inotify*.img. The pending signals are in core-*.img (signals_s, signals_p)."
    "fanotify | fanotify | - | one task with a fanotify group: inode marks on a directory and on a file (with an ignored mask), and a mount mark | The FANOTIFY entry with its marks inline is in files.img (no fanotify*.img). CRIU warns that queued fanotify events are dropped."
    "ipc | ipc | - | one task in its own IPC namespace (unshare(CLONE_NEWIPC)) with msgmax 4096, shm key 0x1234 (8 KiB, attached, 2 pages written) and a private 100-byte shm (detached), 3 semaphores (1, 7, 32767), a message queue with 3 messages (13, 47 and 0 bytes) | ipcns-var/shm/sem/msg-*.img. CRIU found the IPC namespace without extra flags. The shm contents are in pagemap-shmem-*.img and pages (in_pagemaps: true), so crit 4.1.1 misdecodes ipcns-shm: the second segment is swallowed into the first one's extra."
    "timers | timers | - | one task with 4 armed POSIX timers (realtime/SIGALRM, monotonic/SIGEV_NONE, boottime/SIGRTMIN+2, monotonic/SIGEV_THREAD_ID), the 3 itimers armed, and handlers for 5 signals with various sa_flags | The timers are in core-*.img (tc.timers: real, virt, prof, posix), not in itimers-*.img or posix-timers-*.img."
    "tty | tty | - | one task (session leader) with a pty whose slave is its controlling terminal (termios and window size changed, foreground group set) and a second pty pair that is not a controlling terminal | tty-info.img (4 entries) plus TTY entries in files.img (no tty.img; no tty-data.img, no data was queued). CRIU 4.1.1 fills termios.c_cc (19 u32) with 4 cc bytes per word and stack garbage past them, so those values differ between dumps."
    "threads | threads | - | one process with 5 threads: 4 named workers with different blocked masks (one waiting on a condvar, one in nanosleep, one at nice 5 with SCHED_BATCH, one with a pending thread-directed SIGRTMIN+3) | One core-TID.img per thread."
    "tree | tree | - | a process tree of 6: root fx-root (session leader), fx-a (own process group) with grandchild fx-a-g, fx-b (own session) with grandchild fx-b-g (own process group), and the zombie fx-z (exit status 7, not reaped) | The zombie has only a core-*.img (task_state 2, exit_code 1792). Its pstree entry's threads list holds a garbage number (not its pid), as CRIU 4.1.1 writes it."
    "seccomp | seccomp | - | a process with 2 stacked seccomp filters (no_new_privs) whose thread adds a third filter of its own, and a child fx-strict in SECCOMP_MODE_STRICT blocked in read() on a pipe | seccomp.img holds 5 filters: a chain of 2 for the main thread (seccomp_filter 1) and one of 3 for the worker (seccomp_filter 4), which repeats the 2 inherited filters instead of sharing them; the child's core has seccomp_mode strict."
    "namespaces | namespaces | --external mnt[/bin]:fxbin | fx-init, pid 1 of new pid, uts (hostname crit-fixture, domainname fixtures.example), ipc, mount (a tmpfs root after pivot_root, with /dev/null, a tmpfs at /data holding a file, the fixture binaries bind-mounted read-only at /bin, proc), net (lo up) and time (monotonic +86400 s, boottime +3600 s) namespaces, with one child | The task re-executes itself from the new root so that its mappings lie in the new mount namespace, and /bin is dumped as the external mount fxbin (without that CRIU fails: 'doesn't have a proper root mount'). utsns, ipcns-var, mountpoints, netns, netdev, timens images; the raw ifaddr/route/route6/rule/nftables images; iptables-/ip6tables-*.img are empty (0 bytes); tmpfs-dev-*.tar.gz.img for /data (the root tmpfs is not archived). No pidns-*.img. pstree pids are the namespace's (1, 2)."
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

list=0 golden=1 readme_only=0
want=()
for a in "$@"; do
    case $a in
    --list) list=1 ;;
    --no-golden) golden=0 ;;
    --readme-only) readme_only=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $a" ;;
    *) want+=("${a#criu41-}") ;;
    esac
done
for w in "${want[@]}"; do
    printf '%s\n' "${FIXTURES[@]}" | cut -d'|' -f1 | grep -qx "$w " || die "no fixture named $w (see --list)"
done
if [ "$list" = 1 ]; then
    for l in "${FIXTURES[@]}"; do echo "criu41-$(field 1 "$l")"; done
    exit 0
fi

ref=$("$repo/scripts/reference-tools.sh") || exit 1
refdir=${CRIT_REFERENCE_DIR:-$repo/.reference}
criu=$refdir/bin/criu
# The goldens are the output of the reference crit: CRIU 4.2's (the version
# whose JSON we match) when CRIT_GOLDEN names one, else the 4.1.1 one.
crit=${CRIT_GOLDEN:-$refdir/bin/crit}
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
    # shellcheck disable=SC2086
    if timeout 120 "$criu" dump -D "$new" -t "$pid" -v4 -o dump.log $opts; then
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
    local g=
    if [ "$golden" = 1 ]; then
        rm -rf "$repo/tests/golden/$name"
        (cd "$repo" && scripts/gen-golden.sh "$crit" "tests/fixtures/$name" "tests/golden/$name") ||
            failed+=("$name (gen-golden.sh failed)")
        g=", goldens $(du -sh --apparent-size "$repo/tests/golden/$name" | cut -f1)"
    fi
    echo "made $name ($(du -sh --apparent-size "$out" | cut -f1) of images$g)"
}

for l in "${FIXTURES[@]}"; do
    [ "$readme_only" = 1 ] && break
    n=$(field 1 "$l")
    if [ "${#want[@]}" -gt 0 ]; then
        hit=0
        for w in "${want[@]}"; do [ "$w" = "$n" ] && hit=1; done
        [ "$hit" = 1 ] || continue
    fi
    make_one "$l"
done

# ------------------------------------------------------------------ README -
readme=$fixtures/README.md
section=$(mktemp)
{
    echo "<!-- criu41 begin: written by scripts/make-fixtures.sh from its FIXTURES table; edit it there -->"
    echo "## criu41-* fixtures (CRIU $criu_version)"
    echo
    echo "Made by \`scripts/make-fixtures.sh\` with the criu of Debian 13's \`criu\` package (\`criu --version\`: \`Version: $criu_version\`),"
    echo "installed by \`scripts/reference-tools.sh\` into \`.reference/\` and run through trixie's own ld-linux and libraries,"
    echo "on Debian 12, kernel $(uname -r | cut -d. -f1-2), x86_64, as root."
    echo "The processes are our own small C programs, \`tests/fixtures/src/PROGRAM.c\` (\`gcc -static -O1\`, binaries in \`$bin/\`)."
    echo "Each is started in the scratch directory \`$scratch/criu41-NAME\` (\`FX_WORK\`); it forks, and the child, the dumped task,"
    echo "becomes a session leader with fds 0-2 on \`/dev/null\` and no other inherited fd, sets up its state, reports, and sleeps in \`pause()\`."
    echo "So there is no tty and no \`--shell-job\`. Paths inside the images are under \`$scratch/\`."
    echo "Each dump is \`criu dump -D tests/fixtures/criu41-NAME -t PID -v4 -o dump.log\` plus the options shown"
    echo "(the script dumps into \`criu41-NAME.new\` and renames it when the dump succeeded); the dump killed the tasks."
    echo "\`dump.log\` was removed afterwards; \`pages-*.img\` and \`stats-dump\` are kept."
    echo "The golden outputs in \`tests/golden/criu41-*/\` come from \`CRIT_GOLDEN=... scripts/make-fixtures.sh\`, i.e. \`scripts/gen-golden.sh \$CRIT_GOLDEN ...\`"
    echo "with the crit of CRIU 4.2 (v4.2-22, built from source on the developer's machine; CI cannot rebuild it, so the goldens are committed)"
    echo "on \`/usr/bin/python3\` 3.11 with Debian 12's \`python3-protobuf\` (protobuf 4.21.12, cpp backend). The live tests compare with crit $criu_version as well."
    echo
    for l in "${FIXTURES[@]}"; do
        n=$(field 1 "$l") p=$(field 2 "$l") o=$(field 3 "$l")
        echo "- **criu41-$n**: \`${p%% *}.c\`${p#"${p%% *}"}, $(field 4 "$l")."
        echo "  Command: \`criu dump -D tests/fixtures/criu41-$n -t PID -v4 -o dump.log${o:+ $o}\`."
        nt=$(field 5 "$l")
        [ -n "$nt" ] && echo "  $nt"
    done
    cat <<'NOTES'

Families that CRIU 4.1.1 could not dump here (so there is no criu41 fixture for them):
- **inet sockets** (TCP, UDP; `inetsk`, `tcp-stream-*.img`): CRIU 4.1.1 cannot dump them on this kernel. See `criu42-tcp`, `criu42-udp`, `criu42-netns`.
- **packet sockets**: the dump fails with `Error (criu/sockets.c:628): sockets: Can't get 1:16 opt: Operation not supported`
  (and `1:34`): CRIU 4.1.1 reads SO_PASSCRED and SO_PASSSEC of every socket, and this kernel refuses them on AF_PACKET. See `criu42-packet`.
- **cgroup.img**: not written ("All tasks in criu's cgroups. Nothing to dump."). Getting one needs the task moved into a cgroup of
  its own, and the image then records this machine's cgroup paths, so it was left out.

Notes that hold for all criu41 dumps:
- CRIU 4.x (`fdinfo_per_id`) writes every file entry into `files.img` (types REG, PIPE, FIFO, UNIXSK, NETLINKSK, EVENTFD, EVENTPOLL,
  SIGNALFD, TIMERFD, INOTIFY, FANOTIFY, TTY, ...), so the per-type images of older CRIU (`pipes.img`, `fifo.img`, `unixsk.img`,
  `eventfd.img`, `tty.img`, ...) do not appear; only the data images (`pipes-data`, `fifo-data`, `sk-queues`, `tty-info`, ...) do.
- Every `dump.log` has `Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted`; the dumps still succeed.
- The pids in the file names (`core-PID.img`, ...) are the pids of that run; a re-run changes them.
<!-- criu41 end -->
NOTES
} >"$section"
if [ -f "$readme" ] && grep -q '^<!-- criu41 begin' "$readme"; then
    awk -v sec="$section" '
        /^<!-- criu41 begin/ { while ((getline l < sec) > 0) print l; skip = 1; next }
        /^<!-- criu41 end/ { skip = 0; next }
        !skip { print }' "$readme" >"$readme.new"
else
    {
        if [ -f "$readme" ]; then
            cat "$readme"
            echo
        else
            echo "# Image fixtures"
            echo
            echo "Real CRIU image sets for the tests. The \`criu42-*\` sets are described in \`README-criu42.md\`;"
            echo "the \`criu41-*\` sets below. \`src/\` holds the criu41 programs; \`criu42-src/\` the criu42 ones."
            echo
        fi
        cat "$section"
    } >"$readme.new"
fi
mv "$readme.new" "$readme"
rm -f "$section"

if [ "${#failed[@]}" -gt 0 ]; then
    printf 'make-fixtures: failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
