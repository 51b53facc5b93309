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
#     tiny.img) over 1000 runs.  Before each timed run (untimed, for every
#     tool alike) the output of the run before is removed and `sync` runs:
#     see prep_for.
#  4. A Markdown table with the targets: decode >= 100x the reference, nice
#     >= 50x, encode >= 50x, peak RSS <= 64 MiB, start-up <= 2 ms; each row
#     PASS or FAIL.  Also written to $CRIT_BENCH_DIR/results.md.
#  5. With GO_CRIT set, the same for go-crit (the Go crit of go-criu): its
#     decode, decode --pretty, encode (of its own JSON) and info, timed and
#     with peak RSS, in a second table (no targets).  Its JSON is not crit's
#     text, so its output is compared with ours by value (python3): the table
#     says whether it is byte-identical, equal but for how numbers are
#     written, or different where.  These comparisons never fail the run.
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
#   GO_CRIT            path of a go-crit binary (go-criu's crit/cmd, built by
#                      hand as docs/benchmarks.md tells); unset or missing: the
#                      go-crit table is skipped with a message
#   BENCH_GO_RUNS      timed runs of go-crit per operation (default
#                      BENCH_REF_RUNS; each takes 0.2-10 s)
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

# -------------------------------------------------------------- go-crit ----
GO_RUNS=${BENCH_GO_RUNS:-$REF_RUNS}
gocrit=${GO_CRIT:-}
gocrit_version=
if [ -z "$gocrit" ]; then
    say "SKIP: go-crit: GO_CRIT is not set (the path of go-criu's crit binary; see docs/benchmarks.md)"
elif [ ! -x "$gocrit" ]; then
    say "SKIP: go-crit: GO_CRIT=$gocrit is not an executable file"
    gocrit=
elif [[ $("$gocrit" --help 2>&1) != *"Go implementation"* ]]; then
    say "SKIP: go-crit: $gocrit --help does not say it is go-crit"
    gocrit=
else
    # A Go binary records its toolchain and module; `go version -m` reads it.
    if command -v go >/dev/null && gocrit_version=$(go version -m "$gocrit" 2>/dev/null); then
        gocrit_version=$(echo "$gocrit_version" | awk 'NR == 1 { v = $2 } $1 == "mod" { m = $2 " " $3 } END { print m ", " v }')
    else
        gocrit_version="version unknown (no go on PATH to read its build info)"
    fi
    say "go-crit: $gocrit ($gocrit_version)"
fi
# jsoncmp MODE GO OURS: one line saying how go-crit's JSON differs from ours,
# value by value (MODE decode, or info for the entry count).
jsoncmp() {
    if ! command -v python3 >/dev/null; then
        echo "not compared (no python3)"
        return
    fi
    python3 - "$@" <<'PY'
import collections, json, re, sys

mode, gofile, ourfile = sys.argv[1:4]
try:
    with open(gofile, "rb") as f:
        goraw = f.read()
    with open(ourfile, "rb") as f:
        ourraw = f.read()
    go, ours = json.loads(goraw), json.loads(ourraw)
except (OSError, ValueError) as e:
    print("not compared (%s)" % e)
    sys.exit(0)
if mode == "info":
    try:
        n = int(go["entries"][0]["count"])
    except (KeyError, IndexError, TypeError, ValueError):
        print("no entry count found in go-crit's output")
        sys.exit(0)
    same = n == ours.get("count")
    print("%s count (%d); other shape: entries[0].count, as a string" % ("same" if same else "DIFFERENT", n))
    sys.exit(0)
if goraw == ourraw:
    print("byte-identical")
    sys.exit(0)
found = collections.defaultdict(set)
DEC = re.compile(r"-?[0-9]+$")


def walk(g, o, path):
    if isinstance(g, dict) and isinstance(o, dict):
        if set(g) != set(o):
            found["other keys"].add(path or ".")
        elif list(g) != list(o):
            found["key order"].add(path or ".")
        for k in g:
            if k in o:
                walk(g[k], o[k], path + "." + k if path else k)
    elif isinstance(g, list) and isinstance(o, list):
        if len(g) != len(o):
            found["other lengths"].add(path)
        for x, y in zip(g, o):
            walk(x, y, path)
    elif type(g) is type(o) and g == o:
        pass
    elif isinstance(g, str) and DEC.match(g) and type(o) is int and int(g) == o:
        found["64-bit integers as strings"].add(path)
    elif isinstance(g, str) and isinstance(o, str) and "\n" in o and g == o.replace("\n", ""):
        found["base64 without crit's line breaks"].add(path)
    elif isinstance(o, str) and (type(g) is int or (isinstance(g, str) and DEC.match(g))):
        found["numbers where ours has hex or flag names"].add(path)
    else:
        found["DIFFERENT values"].add(path)


walk(go, ours, "")
parts = []
for what, paths in found.items():
    names = sorted(p[len("entries."):] if p.startswith("entries.") else p for p in paths)
    parts.append("%s: %s" % (what, ", ".join(names)))
if b'": ' in ourraw[:65536] and b'": ' not in goraw[:65536]:
    parts.append("compact separators (no space after : and ,)")
print("; ".join(parts) if parts else "same values, other text")
PY
}

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

# median_time NAME RUNS WARMUP CMD...: median wall time in seconds into $T/NAME;
# with PREP set, that command runs (untimed) before each run.
median_time() {
    local name=$1 runs=$2 warm=$3; shift 3
    local prep=()
    [ -n "${PREP:-}" ] && prep=(--prepare "$PREP")
    if [ -n "$HF" ]; then
        "$HF" -N --style none --runs "$runs" --warmup "$warm" "${prep[@]}" --export-csv "$T/$name.csv" "$*" >/dev/null 2>"$T/$name.err" ||
            { say "timing $name failed: $(tail -n 1 "$T/$name.err")"; echo NaN >"$T/$name"; return 1; }
        # command,mean,stddev,median,user,system,min,max
        awk -F, 'NR == 2 { print $4; print $5 + $6 > "/dev/stderr" }' "$T/$name.csv" >"$T/$name" 2>"$T/$name.cpu"
    else
        local i
        for ((i = 0; i < warm; i++)); do "$@" >/dev/null 2>&1; done
        : >"$T/$name.runs"
        for ((i = 0; i < runs; i++)); do
            [ -n "${PREP:-}" ] && eval "$PREP" >/dev/null 2>&1
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

# ------------------------------------------------- go-crit's outputs ----
# Notes only: go-crit is not held to crit's text, and its results never fail
# the run.  One note per table row, in $T/KEY.go.note.
gonote() { # gonote KEY TEXT
    echo "$2" >"$T/$1.go.note"
    say "go-crit $1: $2"
}
if [ -n "$gocrit" ]; then
    for img in "${imgs[@]}"; do
        b=${img%.img}
        if "$gocrit" decode -i "$D/$img" -o "$O/$b.go.raw" 2>"$T/$b.go.err"; then
            gonote "$b-decode-raw" "$(jsoncmp decode "$O/$b.go.raw" "$O/$b.raw")"
        else
            gonote "$b-decode-raw" "go-crit decode failed: $(tail -n 1 "$T/$b.go.err")"
        fi
        if "$gocrit" decode --pretty -i "$D/$img" -o "$O/$b.go.nice" 2>"$T/$b.go.err"; then
            gonote "$b-decode-nice" "$(jsoncmp decode "$O/$b.go.nice" "$O/$b.nice")"
        else
            gonote "$b-decode-nice" "go-crit decode --pretty failed: $(tail -n 1 "$T/$b.go.err")"
        fi
        n=
        if "$gocrit" encode -i "$O/$b.go.raw" -o "$O/$b.go.img" 2>"$T/$b.go.err"; then
            cmp -s "$D/$img" "$O/$b.go.img" && n="encode(its decode) == image" || n="encode(its decode) DIFFERS from the image"
        else
            n="go-crit encode of its own JSON failed: $(tail -n 1 "$T/$b.go.err")"
        fi
        if "$gocrit" encode -i "$O/$b.raw" -o "$O/$b.go-of-ours.img" 2>/dev/null && cmp -s "$D/$img" "$O/$b.go-of-ours.img"; then
            n="$n; it reads our raw JSON to the same image"
        else
            n="$n; it does NOT read our raw JSON to the same image"
        fi
        if "$C" encode -i "$O/$b.go.raw" -o "$O/$b.ours-of-go.img" 2>/dev/null && cmp -s "$D/$img" "$O/$b.ours-of-go.img"; then
            n="$n, we read its JSON to the same image"
        else
            n="$n, we do NOT read its JSON to the same image"
        fi
        gonote "$b-encode" "$n"
        "$C" info "$D/$img" >"$O/$b.info" 2>/dev/null
        if "$gocrit" info "$D/$img" >"$O/$b.go.info" 2>"$T/$b.go.err"; then
            gonote "$b-info" "$(jsoncmp info "$O/$b.go.info" "$O/$b.info")"
        else
            gonote "$b-info" "go-crit info failed: $(tail -n 1 "$T/$b.go.err")"
        fi
    done
fi

# --------------------------------------------------------------- timing ----
# op name | our args | reference args | speed-up target
ops=(
    "decode raw|decode -i @IN -o @OUT.json|decode -i @IN -o @OUT.json|100"
    "decode nice|decode -f nice -i @IN -o @OUT.json|decode --pretty -i @IN -o @OUT.json|50"
    "encode|encode -i @RAW -o @OUT.img|encode -i @REFRAW -o @OUT.img|50"
    "info|info @IN|info @IN|"
)
# go-crit's args for the same operations; its encode reads its own JSON.
declare -A go_ops=(
    ["decode raw"]="decode -i @IN -o @OUT.json"
    ["decode nice"]="decode --pretty -i @IN -o @OUT.json"
    ["encode"]="encode -i @GORAW -o @OUT.img"
    ["info"]="info @IN"
)
subst() { # subst TEMPLATE IMG WHO
    local s=$1 b=${2%.img}
    s=${s//@IN/$D/$2}
    s=${s//@REFRAW/$O/$b.ref.raw}
    s=${s//@GORAW/$O/$b.go.raw}
    s=${s//@RAW/$O/$b.raw}
    s=${s//@OUT/$O/$b.timed-$3}
    echo "$s"
}
# Before each timed run: no output left by the run before it (replacing a
# file makes the file system free the old one's blocks, which on this
# machine's ext4, mounted with `discard`, takes 7 ms for a 37 MB file: the
# file system's work, not the tool's), and no dirty page cache left to
# write back (the reference writes without syncing; the kernel would write
# its outputs back while the next runs, ours or its own, are timed).
prep_for() { # prep_for IMG WHO
    local b=${1%.img}
    echo "sh -c 'rm -f $O/$b.timed-$2.json $O/$b.timed-$2.img; sync'"
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for img in "${imgs[@]}"; do
    for op in "${ops[@]}"; do
        IFS='|' read -r name ours theirs _ <<<"$op"
        key="${img%.img}-${name// /-}"
        say "timing $img $name (ours, $RUNS runs)"
        # shellcheck disable=SC2046
        PREP=$(prep_for "$img" ours) median_time "$key.ours" "$RUNS" 1 "$C" $(subst "$ours" "$img" ours)
        # shellcheck disable=SC2046
        peak_rss "$key.ours" "$C" $(subst "$ours" "$img" ours)
        if [ -n "$ref" ]; then
            say "timing $img $name (reference, $REF_RUNS runs)"
            # shellcheck disable=SC2046
            # shellcheck disable=SC2046,SC2086
            PREP=$(prep_for "$img" ref) median_time "$key.ref" "$REF_RUNS" 0 $ref $(subst "$theirs" "$img" ref)
        fi
        if [ -n "$gocrit" ]; then
            say "timing $img $name (go-crit, $GO_RUNS runs)"
            # shellcheck disable=SC2046
            PREP=$(prep_for "$img" go) median_time "$key.go" "$GO_RUNS" 0 "$gocrit" $(subst "${go_ops[$name]}" "$img" go)
            # shellcheck disable=SC2046
            peak_rss "$key.go" "$gocrit" $(subst "${go_ops[$name]}" "$img" go)
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
if [ -n "$gocrit" ]; then
    # go-crit has no --version; its start-up is timed on info only.
    median_time su-info.go 100 5 "$gocrit" info "$D/tiny.img"
    peak_rss su-info.go "$gocrit" info "$D/tiny.img"
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

# go-crit: a table of its own (no targets; notes from the output comparison).
gorow() { # gorow OPERATION IMAGE KEY UNIT(s|ms)
    local op=$1 img=$2 key=$3 unit=$4 note
    note=$(cat "$T/$key.go.note" 2>/dev/null || echo "—")
    awk -v op="$op" -v img="$img" -v unit="$unit" -v note="${note//|//}" \
        -v o="$(cat "$T/$key.ours")" -v g="$(cat "$T/$key.go" 2>/dev/null)" \
        -v oc="$(cat "$T/$key.ours.cpu" 2>/dev/null)" -v gc="$(cat "$T/$key.go.cpu" 2>/dev/null)" \
        -v orss="$(cat "$T/$key.ours.rss")" -v grss="$(cat "$T/$key.go.rss" 2>/dev/null)" 'BEGIN {
        if (unit == "ms") { os = sprintf("%.2f ms", o * 1000); gs = (g == "") ? "—" : sprintf("%.2f ms", g * 1000) }
        else { os = sprintf("%.3f", o); gs = (g == "") ? "—" : sprintf("%.3f", g) }
        sp = (g == "" || o == 0) ? "—" : sprintf("%.1f×", g / o)
        cs = (gc == "" || oc == 0) ? "—" : sprintf("%.1f×", gc / oc)
        gr = (grss == "") ? "—" : sprintf("%.1f", grss / 1024)
        printf "| %s | %s | %s | %s | %s | %s | %.1f | %s | %s |\n", op, img, os, gs, sp, cs, orss / 1024, gr, note
    }'
}
if [ -n "$gocrit" ]; then
    {
        echo
        echo "go-crit ($gocrit, $gocrit_version): speed-up = go-crit / ours; its encode reads its own JSON"
        echo
        echo "| operation | image | ours (s) | go-crit (s) | speed-up | CPU-time speed-up | ours peak RSS (MiB) | go-crit peak RSS (MiB) | go-crit's output vs ours |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
        for img in "${imgs[@]}"; do
            for op in "${ops[@]}"; do
                IFS='|' read -r name _ _ _ <<<"$op"
                gorow "$name" "$img" "${img%.img}-${name// /-}" s
            done
        done
        gorow "start-up: crit info" "tiny.img" su-info ms
    } >>"$W/results.md"
else
    printf '\ngo-crit: skipped (set GO_CRIT to the path of its binary; see docs/benchmarks.md)\n' >>"$W/results.md"
fi

{
    echo
    echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(free -g | awk '/^Mem:/ { print $2 " GiB" }') memory"
    echo "ours: $("$C" --version); reference: ${ref:-none} ${ref_version:+(crit $ref_version)}"
    echo "images: files.img $NF entries ($(stat -c %s "$D/files.img") bytes), pagemap-1.img $NP entries ($(stat -c %s "$D/pagemap-1.img") bytes)"
    echo "timing: ${HF:-plain loop}, median wall time of $RUNS runs (ours) / $REF_RUNS runs (reference)${gocrit:+ / $GO_RUNS runs (go-crit)}, start-up: $SU_RUNS runs; speed-up = reference / ours (wall; targets apply to it); CPU-time speed-up = same with mean user+sys"
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
