#!/usr/bin/env bash
# Benchmark our crit against the reference (Python) crit on large synthetic
# images, and check on the way that both give the same bytes:
#
#   scripts/bench.sh
#
# Steps:
#  1. `cargo build --release`; build benches/gen_images.rs with plain rustc and
#     generate, under $CRIT_BENCH_DIR, a files.img of 200,000 REG file_entry
#     records (~24 MB), a pagemap-1.img with a pagemap_head and 500,000
#     pagemap_entry records (~8.5 MB), and a one-entry tiny.img.  The images
#     are written byte by byte by the generator, not by our encoder.
#  2. Correctness: our `decode` (raw and `-f nice`) must equal the reference's
#     `decode` (and `decode --pretty`) byte for byte, and our
#     encode(decode(x)) must equal x (from raw and from nice JSON).
#  3. Timing (hyperfine: median wall time; mean user+sys CPU time, shown
#     as well since it suffers less when other work shares the machine) of
#     decode raw, decode nice, encode and info,
#     ours and the reference's, on both images; our peak RSS for each
#     (/usr/bin/time %M); our start-up time (`crit --version`, `crit info` on
#     tiny.img) over 1000 runs.
#  4. A Markdown table with the targets: decode >= 100x the reference, nice
#     >= 50x, encode >= 50x, peak RSS <= 64 MiB, start-up <= 2 ms; each row
#     PASS or FAIL.  Also written to $CRIT_BENCH_DIR/results.md.
#
# Exit status: 0 when every check and target passes; 1 when a correctness
# check fails; 2 when only performance targets fail.
#
# Environment:
#   CRIT_REFERENCE     reference crit command (default: <repo>/.reference/bin/crit
#                      from scripts/reference-tools.sh if present, else
#                      /opt/criu42/bin/crit if present, else the comparison is
#                      skipped with a message)
#   CRIT_REFERENCE_42  a crit of CRIU >= 4.2, used only for the pagemap output
#                      comparison when CRIT_REFERENCE is older: CRIU 4.1's
#                      pagemap_entry has no field 5 (nr_pages) and calls field 2
#                      nr_pages, so its output differs by schema, not by bug
#                      (default /opt/criu42/bin/crit if present)
#   CRIT_BENCH_DIR     scratch folder (default ${TMPDIR:-/tmp}/crit-bench)
#   BENCH_FILES        file_entry count (default 200000)
#   BENCH_PAGEMAP      pagemap_entry count (default 500000)
#   BENCH_RUNS         timed runs of ours per operation (default 10)
#   BENCH_REF_RUNS     timed runs of the reference per operation (default 3;
#                      each takes 5-40 s)
#   BENCH_STARTUP_RUNS runs for the start-up timings (default 1000)
#   BENCH_NO_HYPERFINE set to time with a plain loop even if hyperfine exists
#                      (otherwise, as root, the script installs it with apt-get)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
W=${CRIT_BENCH_DIR:-${TMPDIR:-/tmp}/crit-bench}
NF=${BENCH_FILES:-200000}
NP=${BENCH_PAGEMAP:-500000}
RUNS=${BENCH_RUNS:-10}
REF_RUNS=${BENCH_REF_RUNS:-3}
SU_RUNS=${BENCH_STARTUP_RUNS:-1000}
RSS_TARGET_KIB=$((64 * 1024))
STARTUP_TARGET_MS=2

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

case $W in "$repo" | "$repo"/*) die "CRIT_BENCH_DIR must be outside the repository" ;; esac

# ---------------------------------------------------------------- build ----
say "cargo build --release"
(cd "$repo" && cargo build --release --quiet) || die "cargo build failed"
C=$repo/target/release/crit
[ -x "$C" ] || die "no $C"

rm -rf "$W/out" "$W/times"
mkdir -p "$W/data" "$W/out" "$W/times"
D=$W/data O=$W/out T=$W/times
rustc -O --edition 2021 "$repo/benches/gen_images.rs" -o "$W/gen_images" || die "cannot build the generator"
say "generating images in $D"
"$W/gen_images" "$D" "$NF" "$NP" >&2 || die "generator failed"

# ------------------------------------------------------------ reference ----
ref=${CRIT_REFERENCE:-}
if [ -z "$ref" ]; then
    if [ -x "$repo/.reference/bin/crit" ]; then
        ref=$repo/.reference/bin/crit
    elif [ -x /opt/criu42/bin/crit ]; then
        ref=/opt/criu42/bin/crit
    fi
fi
ref_version=
if [ -n "$ref" ]; then
    if ref_version=$($ref --version 2>&1); then
        say "reference: $ref (crit $ref_version)"
    else
        say "reference $ref does not run ($ref_version); comparison skipped"
        ref='' ref_version=''
    fi
else
    say "no reference crit (set CRIT_REFERENCE, or run scripts/reference-tools.sh); comparison skipped"
fi
# The crit whose schema matches ours for pagemap (>= 4.2).
ver_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }
ref42=
if [ -n "$ref" ] && ver_ge "$ref_version" 4.2; then
    ref42=$ref
else
    cand=${CRIT_REFERENCE_42:-/opt/criu42/bin/crit}
    if [ -x "${cand%% *}" ] && v=$($cand --version 2>/dev/null) && ver_ge "$v" 4.2; then
        ref42=$cand
    fi
fi

# --------------------------------------------------------------- timing ----
HF=
if [ -n "${BENCH_NO_HYPERFINE:-}" ]; then
    :
elif command -v hyperfine >/dev/null; then
    HF=hyperfine
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing hyperfine (apt-get install -y hyperfine)"
    if apt-get install -y -qq hyperfine >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq hyperfine >/dev/null 2>&1; }; then
        HF=hyperfine
    fi
fi
[ -n "$HF" ] || say "no hyperfine: timing with a plain loop (/usr/bin/time, 10 ms resolution; start-up includes bash's fork)"

# median_time NAME RUNS WARMUP CMD...: median wall time in seconds into $T/NAME
median_time() {
    local name=$1 runs=$2 warm=$3; shift 3
    if [ -n "$HF" ]; then
        "$HF" -N --style none --runs "$runs" --warmup "$warm" --export-csv "$T/$name.csv" "$*" >/dev/null 2>"$T/$name.err" ||
            { say "timing $name failed: $(tail -n 1 "$T/$name.err")"; echo NaN >"$T/$name"; return 1; }
        # command,mean,stddev,median,user,system,min,max
        awk -F, 'NR == 2 { print $4; print $5 + $6 > "/dev/stderr" }' "$T/$name.csv" >"$T/$name" 2>"$T/$name.cpu"
    else
        local i
        for ((i = 0; i < warm; i++)); do "$@" >/dev/null 2>&1; done
        : >"$T/$name.runs"
        for ((i = 0; i < runs; i++)); do
            /usr/bin/time -f '%e %U %S' -a -o "$T/$name.runs" "$@" >/dev/null 2>&1 || { echo NaN >"$T/$name"; return 1; }
        done
        sort -n "$T/$name.runs" | awk '{ a[NR] = $1; c += $2 + $3 }
            END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.6f\n", m; printf "%.6f\n", c / NR > "/dev/stderr" }' \
            >"$T/$name" 2>"$T/$name.cpu"
    fi
}

# loop_time NAME RUNS CMD...: start-up time, RUNS runs; hyperfine median, or total/RUNS
loop_time() {
    local name=$1 runs=$2; shift 2
    if [ -n "$HF" ]; then
        median_time "$name" "$runs" 50 "$@"
    else
        local i t0 t1
        t0=$(date +%s%N)
        for ((i = 0; i < runs; i++)); do "$@" >/dev/null 2>&1; done
        t1=$(date +%s%N)
        awk -v ns=$((t1 - t0)) -v n="$runs" 'BEGIN { printf "%.6f\n", ns / n / 1e9 }' >"$T/$name"
    fi
}

# peak_rss NAME CMD...: max RSS in KiB of one run into $T/NAME.rss
peak_rss() {
    local name=$1; shift
    /usr/bin/time -f '%M' -o "$T/$name.rss" "$@" >/dev/null 2>&1 || echo NaN >"$T/$name.rss"
}

# ---------------------------------------------------------- correctness ----
fail=0
check() { # check DESCRIPTION FILE1 FILE2
    if cmp -s "$2" "$3"; then
        say "check OK:   $1"
    else
        say "check FAIL: $1 ($(cmp "$2" "$3" 2>&1 | head -n 1))"
        fail=1
    fi
}
imgs=(files.img pagemap-1.img)
for img in "${imgs[@]}"; do
    b=${img%.img}
    "$C" decode -i "$D/$img" -o "$O/$b.raw" || { say "our decode failed on $img"; fail=1; }
    "$C" decode -f nice -i "$D/$img" -o "$O/$b.nice" || { say "our decode -f nice failed on $img"; fail=1; }
    "$C" encode -i "$O/$b.raw" -o "$O/$b.from-raw.img" || { say "our encode failed on $b.raw"; fail=1; }
    "$C" encode -i "$O/$b.nice" -o "$O/$b.from-nice.img" || { say "our encode failed on $b.nice"; fail=1; }
    check "$img: encode(decode raw) == image" "$D/$img" "$O/$b.from-raw.img"
    check "$img: encode(decode nice) == image" "$D/$img" "$O/$b.from-nice.img"
    cmpref=${ref:-$ref42}
    case $img in pagemap*) cmpref=$ref42 ;; esac
    if [ -n "$cmpref" ]; then
        # shellcheck disable=SC2086 # a command line, split on purpose
        if ! $cmpref decode -i "$D/$img" -o "$O/$b.cmp.raw" ||
            ! $cmpref decode --pretty -i "$D/$img" -o "$O/$b.cmp.nice"; then
            say "reference decode failed on $img"
            fail=1
        fi
        check "$img: decode raw == reference ($cmpref)" "$O/$b.cmp.raw" "$O/$b.raw"
        check "$img: decode nice == reference --pretty ($cmpref)" "$O/$b.cmp.nice" "$O/$b.nice"
    elif [ -n "$ref" ]; then
        say "check SKIP: $img output vs reference: crit $ref_version predates pagemap_entry.nr_pages; set CRIT_REFERENCE_42 to a crit >= 4.2"
    fi
    if [ -n "$ref" ]; then
        # The reference's own JSON, for timing its encode.
        if [ "$cmpref" = "$ref" ]; then
            cp "$O/$b.cmp.raw" "$O/$b.ref.raw"
        else
            $ref decode -i "$D/$img" -o "$O/$b.ref.raw" || { say "reference decode failed on $img"; fail=1; }
        fi
        $ref encode -i "$O/$b.ref.raw" -o "$O/$b.ref.img" || { say "reference encode failed on $img"; fail=1; }
        if [ "$cmpref" = "$ref" ]; then
            check "$img: reference encode(decode) == image (generator sanity)" "$D/$img" "$O/$b.ref.img"
        fi
    fi
done

# --------------------------------------------------------------- timing ----
# op name | our args | reference args | speed-up target
ops=(
    "decode raw|decode -i @IN -o @OUT.json|decode -i @IN -o @OUT.json|100"
    "decode nice|decode -f nice -i @IN -o @OUT.json|decode --pretty -i @IN -o @OUT.json|50"
    "encode|encode -i @RAW -o @OUT.img|encode -i @REFRAW -o @OUT.img|50"
    "info|info @IN|info @IN|"
)
subst() { # subst TEMPLATE IMG WHO
    local s=$1 b=${2%.img}
    s=${s//@IN/$D/$2}
    s=${s//@REFRAW/$O/$b.ref.raw}
    s=${s//@RAW/$O/$b.raw}
    s=${s//@OUT/$O/$b.timed-$3}
    echo "$s"
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for img in "${imgs[@]}"; do
    for op in "${ops[@]}"; do
        IFS='|' read -r name ours theirs _ <<<"$op"
        key="${img%.img}-${name// /-}"
        say "timing $img $name (ours, $RUNS runs)"
        # shellcheck disable=SC2046
        median_time "$key.ours" "$RUNS" 1 "$C" $(subst "$ours" "$img" ours)
        # shellcheck disable=SC2046
        peak_rss "$key.ours" "$C" $(subst "$ours" "$img" ours)
        if [ -n "$ref" ]; then
            say "timing $img $name (reference, $REF_RUNS runs)"
            # shellcheck disable=SC2046
            # shellcheck disable=SC2046,SC2086
            median_time "$key.ref" "$REF_RUNS" 0 $ref $(subst "$theirs" "$img" ref)
        fi
    done
done
say "timing start-up ($SU_RUNS runs each)"
loop_time su-version.ours "$SU_RUNS" "$C" --version
peak_rss su-version.ours "$C" --version
loop_time su-info.ours "$SU_RUNS" "$C" info "$D/tiny.img"
peak_rss su-info.ours "$C" info "$D/tiny.img"
if [ -n "$ref" ]; then
    # shellcheck disable=SC2086
    median_time su-version.ref 10 1 $ref --version
    # shellcheck disable=SC2086
    median_time su-info.ref 10 1 $ref info "$D/tiny.img"
fi

# ---------------------------------------------------------------- table ----
perf_fail=0
row() { # row OPERATION IMAGE KEY TARGET_SPEEDUP UNIT(s|ms)
    local op=$1 img=$2 key=$3 tgt=$4 unit=$5
    local ours refv rss oc rc
    ours=$(cat "$T/$key.ours")
    refv=$(cat "$T/$key.ref" 2>/dev/null || echo)
    oc=$(cat "$T/$key.ours.cpu" 2>/dev/null || echo)
    rc=$(cat "$T/$key.ref.cpu" 2>/dev/null || echo)
    rss=$(cat "$T/$key.ours.rss")
    awk -v op="$op" -v img="$img" -v o="$ours" -v r="$refv" -v oc="$oc" -v rc="$rc" -v rss="$rss" -v tgt="$tgt" -v unit="$unit" \
        -v rsst="$RSS_TARGET_KIB" -v sut="$STARTUP_TARGET_MS" 'BEGIN {
        ok = 1; why = ""
        if (unit == "ms") {
            os = sprintf("%.2f ms", o * 1000); rs = (r == "") ? "—" : sprintf("%.1f ms", r * 1000)
            t = sprintf("≤ %d ms", sut)
            if (o * 1000 > sut) { ok = 0; why = sprintf("%.2f× over", o * 1000 / sut) }
            sp = (r == "" || o == 0) ? "—" : sprintf("%.0f×", r / o)
            cs = (rc == "" || oc == 0) ? "—" : sprintf("%.0f×", rc / oc)
        } else {
            os = sprintf("%.3f", o); rs = (r == "") ? "—" : sprintf("%.2f", r)
            sp = (r == "" || o == 0) ? "—" : sprintf("%.1f×", r / o)
            cs = (rc == "" || oc == 0) ? "—" : sprintf("%.1f×", rc / oc)
            t = (tgt == "") ? "—" : sprintf("≥ %d×", tgt)
            if (tgt != "" && r != "" && r / o < tgt) { ok = 0; why = sprintf("%.0f%% of target", 100 * r / o / tgt) }
            if (tgt != "" && r == "") skip = 1
        }
        rm = sprintf("%.1f", rss / 1024)
        if (rss + 0 > rsst) { ok = 0; why = why (why == "" ? "" : ", ") "RSS over 64 MiB" }
        res = ok ? (skip ? "SKIP (no reference)" : "PASS") : "FAIL (" why ")"
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", op, img, os, rs, sp, cs, t, rm, res
    }'
}
{
    echo "| operation | image | ours (s) | reference (s) | speed-up | CPU-time speed-up | target | ours peak RSS (MiB) | result |"
    echo "|---|---|---:|---:|---:|---:|---|---:|---|"
    for img in "${imgs[@]}"; do
        for op in "${ops[@]}"; do
            IFS='|' read -r name _ _ tgt <<<"$op"
            row "$name" "$img" "${img%.img}-${name// /-}" "$tgt" s
        done
    done
    row "start-up: crit --version" "—" su-version ms ms
    row "start-up: crit info" "tiny.img" su-info ms ms
} >"$W/results.md"
grep -q 'FAIL' "$W/results.md" && perf_fail=1

{
    echo
    echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(free -g | awk '/^Mem:/ { print $2 " GiB" }') memory"
    echo "ours: $("$C" --version); reference: ${ref:-none} ${ref_version:+(crit $ref_version)}"
    echo "images: files.img $NF entries ($(stat -c %s "$D/files.img") bytes), pagemap-1.img $NP entries ($(stat -c %s "$D/pagemap-1.img") bytes)"
    echo "timing: ${HF:-plain loop}, median wall time of $RUNS runs (ours) / $REF_RUNS runs (reference), start-up: $SU_RUNS runs; speed-up = reference / ours (wall; targets apply to it); CPU-time speed-up = same with mean user+sys"
    echo "load average: $load_before before timing, $(cut -d' ' -f1-3 /proc/loadavg) after"
    echo
    cat "$W/results.md"
}
if [ "$fail" = 1 ]; then
    say "correctness check(s) failed"
    exit 1
fi
[ "$perf_fail" = 0 ] || { say "performance target(s) missed"; exit 2; }
exit 0
