#!/usr/bin/env bash
# Benchmark `crit core` and `crit mem --search` on a dump of a process with
# a large heap (not a test: it prints figures for docs/mem-and-core.md).
#
#   scripts/bench-core.sh            (needs root, gcc and the reference CRIU)
#
# Environment:
#   HEAP_MB       heap size in MiB (default 1024)
#   BENCH_DIR     scratch directory (default /tmp/crit-bench-core; needs
#                 about 3 x HEAP_MB free)
#   COLD=1        also time with the page cache dropped before each run
#   CRIU_COREDUMP the `coredump` script of a CRIU source tree, to time
#                 criu-coredump too (default: /opt/criu42-src/coredump/coredump
#                 when it is there); it runs with the reference pycriu's
#                 python3-protobuf, for at most CD_TIMEOUT seconds (600).
#
# What is timed (wall clock, best of 3, with /usr/bin/time's max RSS):
#   cp        cp of the pages files (coreutils uses copy_file_range)
#   cat       cat of the pages files into one file (a userspace copy)
#   core      crit core --no-files (sparse, copy_file_range, fsync)
#   core+fs   crit core, reading mapped files from / (the binary's text)
#   coredump  criu-coredump, once
#   search    crit mem --search for a string at the end of the heap, and a
#             regex that matches nothing, against grep -c on the pages file
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
heap_mb=${HEAP_MB:-1024}
dir=${BENCH_DIR:-/tmp/crit-bench-core}
die() { echo "bench-core: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (CRIU dumps the benchmark process)"
command -v gcc >/dev/null || die "gcc not found"
bash "$repo/scripts/reference-tools.sh" >/dev/null || die "reference tools unavailable"
criu=$repo/.reference/bin/criu

(cd "$repo" && cargo build --release --quiet)
crit=$repo/target/release/crit

rm -rf "$dir"
mkdir -p "$dir/bin" "$dir/work" "$dir/dump"
cat >"$dir/bigheap.c" <<'EOF'
/* A process with a HEAP_MB MiB brk heap of pseudo-random lowercase text,
 * with a marker string in its last page; daemonizes and waits. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t size = (size_t)atol(argv[1]) << 20;
	int p[2];
	char buf[32];

	if (pipe(p))
		return 1;
	if (fork()) {
		int n = read(p[0], buf, sizeof(buf) - 1);
		if (n <= 0)
			return 1;
		buf[n] = 0;
		fputs(buf, stdout);
		return 0;
	}
	setsid();
	int fd = open("/dev/null", O_RDWR);
	dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
	unsigned char *h = sbrk(size);
	if (h == (void *)-1)
		return 1;
	unsigned long x = 88172645463325252UL;
	for (size_t i = 0; i < size; i += 8) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		for (int k = 0; k < 8; k++)
			h[i + k] = 'a' + ((x >> (8 * k)) & 0xff) % 26;
	}
	strcpy((char *)h + size - 4096 + 123, "crit-bench-marker-at-the-end");
	int n = snprintf(buf, sizeof(buf), "%d\n", getpid());
	if (write(p[1], buf, n) != n)
		return 1;
	close(p[1]);
	for (;;)
		pause();
}
EOF
gcc -O2 -o "$dir/bin/bigheap" "$dir/bigheap.c"
pid=$(cd "$dir/work" && "$dir/bin/bigheap" "$heap_mb")
sleep 0.5
"$criu" dump -D "$dir/dump" -t "$pid" -o dump.log || die "criu dump failed (see $dir/dump/dump.log)"
pages=$(ls "$dir"/dump/pages-*.img)
pages_bytes=$(cat $pages | wc -c)
echo "bench-core: heap ${heap_mb} MiB, pages files $((pages_bytes >> 20)) MiB, pid $pid"
echo "bench-core: $(nproc) cores, $(uname -r), $(df -T "$dir" | awk 'NR==2 {print $2}') file system"

drop() { [ "${COLD:-0}" = 1 ] && sync && echo 3 >/proc/sys/vm/drop_caches || true; }
# best TIMES CMD...: the best wall time of 3 runs, and that run's max RSS.
best() {
    local t rss bt=999999 brss=0
    for _ in 1 2 3; do
        "$@" >/dev/null 2>&1 || true # warm-up and clean-up runs are the same command
        drop
        /usr/bin/time -f '%e %M' -o "$dir/time" "$@" >/dev/null 2>&1 || true
        read -r t rss < <(tail -n 1 "$dir/time")
        if awk -v a="$t" -v b="$bt" 'BEGIN { exit !(a < b) }'; then bt=$t brss=$rss; fi
    done
    echo "$bt $brss"
}
report() { printf '  %-34s %7.2f s  %6.0f MiB/s  max RSS %6d KiB\n' "$1" "$2" "$(awk -v b="$pages_bytes" -v t="$2" 'BEGIN { print (t > 0 ? b / 1048576 / t : 0) }')" "$3"; }

rm -rf "$dir/cp" && mkdir -p "$dir/cp" "$dir/core"
cpy() { rm -f "$dir"/cp/*; cp $pages "$dir/cp/"; }
cpy_sync() { cpy; sync -f "$dir/cp"; }
catc() { cat $pages >"$dir/cp/all"; }
core() { rm -f "$dir"/core/*; "$crit" core "$dir/dump" -o "$dir/core" --no-files; }
core_fs() { rm -f "$dir"/core/*; "$crit" core "$dir/dump" -o "$dir/core"; }
export -f cpy cpy_sync catc core core_fs
export dir pages crit

echo "copies and cores (wall time, best of 3${COLD:+, cold cache}):"
read -r t m < <(best bash -c cpy); report "cp pages-*.img" "$t" "$m"; t_cp=$t
read -r t m < <(best bash -c cpy_sync); report "cp pages-*.img + sync" "$t" "$m"; t_cps=$t
read -r t m < <(best bash -c catc); report "cat pages-*.img > file" "$t" "$m"
read -r t m < <(best "$crit" core "$dir/dump" -o "$dir/core" --no-files); report "crit core --no-files" "$t" "$m"; t_core=$t
read -r t m < <(best "$crit" core "$dir/dump" -o "$dir/core"); report "crit core (files from /)" "$t" "$m"
awk -v a="$t_core" -v b="$t_cp" -v c="$t_cps" 'BEGIN { printf "  crit core / cp = %.2f, crit core / (cp + sync) = %.2f\n", a / b, a / c }'
core_file=$dir/core/core.$pid
echo "  core.$pid: $(stat -c %s "$core_file") bytes, $(($(stat -c %b "$core_file") * $(stat -c %B "$core_file"))) on disk"

cd_script=${CRIU_COREDUMP:-/opt/criu42-src/coredump/coredump}
if [ -f "$cd_script" ]; then
    ref=$repo/.reference
    src=$(cd "$(dirname "$cd_script")/.." && pwd)
    mkdir -p "$dir/cd"
    drop
    start=$(date +%s.%N)
    if PYTHONPATH=$src/lib:$(dirname "$cd_script"):$ref/host-root/usr/lib/python3/dist-packages \
        LD_LIBRARY_PATH=$ref/host-root/usr/lib/x86_64-linux-gnu \
        timeout "${CD_TIMEOUT:-600}" /usr/bin/time -f '%e %M' -o "$dir/cd.time" python3 "$cd_script" -i "$dir/dump" -o "$dir/cd" >"$dir/cd.log" 2>&1; then
        read -r t m < <(tail -n 1 "$dir/cd.time")
        report "criu-coredump (once)" "$t" "$m"
    else
        echo "  criu-coredump: failed or not done after $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f", e - s }') s (CD_TIMEOUT=${CD_TIMEOUT:-600}): $(tail -n 1 "$dir/cd.log")"
    fi
else
    echo "  criu-coredump: not found (set CRIU_COREDUMP)"
fi

echo "search of the dumped memory:"
read -r t m < <(best "$crit" mem "$dir/dump" "$pid" --search crit-bench-marker-at-the-end); report "crit mem --search (1 match)" "$t" "$m"
read -r t m < <(best "$crit" mem "$dir/dump" "$pid" --regex '[0-9]{8}'); report "crit mem --regex [0-9]{8} (none)" "$t" "$m"
read -r t m < <(best grep -c crit-bench-marker-at-the-end $pages); report "grep -c on the pages files" "$t" "$m"
read -r t m < <(best bash -c 'cat $pages >/dev/null'); report "cat pages-*.img > /dev/null" "$t" "$m"
"$crit" mem "$dir/dump" "$pid" --search crit-bench-marker-at-the-end

rm -rf "$dir"
