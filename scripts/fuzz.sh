#!/usr/bin/env bash
# Fuzz crit: every target of fuzz/ (a cargo-fuzz project) under libFuzzer.
#
#   scripts/fuzz.sh                 every target for 600 s, 2 at a time
#   scripts/fuzz.sh --time 60 json  one target for 60 s
#   scripts/fuzz.sh --smoke         every target for 12 s (CI): fails on a crash
#   scripts/fuzz.sh --seed          rebuild fuzz/corpus/ from the fixtures (minimised)
#   scripts/fuzz.sh --list          the targets
#
# Options: --time SECS (per target), --jobs N (targets at once), --sanitizer
# address (needs cargo-fuzz and a nightly toolchain; the default, none,
# works on stable and needs neither: it is the same build cargo-fuzz makes
# with --sanitizer none).
#
# Limits of every run: -rss_limit_mb=512 -malloc_limit_mb=512 -timeout=10
# and, in every build, fuzz/src/lib.rs's allocator: one allocation over
# 64 MiB or 448 MiB live is a crash (libFuzzer's malloc limit needs a
# sanitizer's hooks; this one does not).  Runs start from fuzz/corpus/<t>
# and grow a scratch copy in fuzz/target/corpus/<t>; crashes land in
# fuzz/artifacts/<t>/.  A crash becomes a file in tests/regressions/ named
# <target>-<what>.bin, replayed by `cargo test` (tests/integration/malformed.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ=$ROOT/fuzz
TARGETS_ALL=(decode encode message json x)
# Targets over other engineers' modules, added when those exist.
for t in archive stream views; do
    [[ -f $FUZZ/fuzz_targets/$t.rs ]] && TARGETS_ALL+=("$t")
done

time_per=600
jobs=2
sanitizer=none
mode=run
targets=()
while (($#)); do
    case $1 in
        --time) time_per=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --sanitizer) sanitizer=$2; shift 2 ;;
        --smoke) mode=smoke; time_per=12; shift ;;
        --seed) mode=seed; shift ;;
        --list) printf '%s\n' "${TARGETS_ALL[@]}"; exit 0 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
((${#targets[@]})) || targets=("${TARGETS_ALL[@]}")

host=$(rustc -vV | sed -n 's/^host: //p')
BIN=$FUZZ/target/$host/release

build() {
    if [[ $sanitizer != none ]]; then
        command -v cargo-fuzz >/dev/null || { echo "fuzz.sh: --sanitizer $sanitizer needs cargo-fuzz (cargo install cargo-fuzz)" >&2; exit 2; }
        (cd "$FUZZ" && cargo +nightly fuzz build -s "$sanitizer")
        return
    fi
    # The flags cargo-fuzz passes for --sanitizer none (coverage counters,
    # compare tracing, debug assertions and overflow checks).
    local flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
    flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
    flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth"
    flags+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0 --cfg fuzzing -Cdebug-assertions -Ccodegen-units=1"
    local bins=()
    for t in "${targets[@]}"; do bins+=(--bin "$t"); done
    (cd "$FUZZ" && RUSTFLAGS="$flags" cargo build --release --target "$host" "${bins[@]}")
}

# A dictionary of the words crit's JSON is made of: field and enum value
# names from our schema, image names, and JSON punctuation.
make_dict() {
    local d=$FUZZ/target/json.dict
    mkdir -p "$FUZZ/target"
    {
        grep -ohE '^\s*(required|optional|repeated)\s+[A-Za-z0-9_.]+\s+[a-z0-9_]+' schema/*.proto | awk '{print $3}'
        grep -ohE '^\s*[A-Z][A-Z0-9_]*\s*=\s*-?[0-9]+\s*;' schema/*.proto | sed -E 's/[[:space:]]*=.*//; s/^[[:space:]]+//'
        grep -ohE '^\s*"[A-Z0-9_]+"\s+0x' src/magic.rs | grep -oE '[A-Z0-9_]+'
        printf '%s\n' magic entries extra inq outq __unknown field varint fixed64 fixed32 len
    } | sort -u | sed 's/.*/"\\"&\\""/' >"$d"
    printf '%s\n' '"\": "' '", "' '"0x"' '"\\udc80"' '"1e400"' '"-0"' '"null"' '"true"' '"[{"' '"}]"' >>"$d"
    echo "$d"
}

run_one() {
    local t=$1 secs=$2 log=$3
    local work=$FUZZ/target/corpus/$t
    mkdir -p "$work" "$FUZZ/artifacts/$t"
    [[ -d $FUZZ/corpus/$t ]] && cp -n "$FUZZ/corpus/$t"/* "$work"/ 2>/dev/null || true
    local extra=()
    case $t in encode|json) extra+=("-dict=$DICT") ;; esac
    local rc=0
    "$BIN/$t" "$work" -max_total_time="$secs" -rss_limit_mb=512 -malloc_limit_mb=512 -timeout=10 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$FUZZ/artifacts/$t/" "${extra[@]}" >"$log" 2>&1 || rc=$?
    echo "$rc" >"$log.rc"
}

figures() {
    local t=$1 log=$2 secs=$3
    local rc execs eps rss cov ft corp result
    rc=$(cat "$log.rc" 2>/dev/null || echo '?')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    local last
    last=$(grep -aE '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$last")
    if [[ $rc == 0 ]]; then result=ok; else result="FAILED (exit $rc, see $log)"; fi
    printf '%-8s %6ss %12s %8s %7s %7s %14s %6sMB  %s\n' "$t" "$secs" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$result"
    [[ $rc == 0 ]]
}

if [[ $mode == seed ]]; then
    targets=("${TARGETS_ALL[@]}")
    build
    raw=$(mktemp -d)
    (cd "$FUZZ" && cargo run --release --example seed -- "$raw")
    for t in "${targets[@]}"; do
        [[ -d $raw/$t ]] || continue
        rm -rf "$FUZZ/corpus/$t"
        mkdir -p "$FUZZ/corpus/$t"
        "$BIN/$t" -merge=1 -rss_limit_mb=512 -timeout=10 -max_len=65536 "$FUZZ/corpus/$t" "$raw/$t" >"$raw/$t.log" 2>&1
        echo "$t: $(ls "$FUZZ/corpus/$t" | wc -l) files, $(du -sh "$FUZZ/corpus/$t" | cut -f1) (from $(ls "$raw/$t" | wc -l))"
    done
    rm -rf "$raw"
    exit 0
fi

build
DICT=$(make_dict)
# One log folder per run, so that runs at the same time do not mix.
logs=$FUZZ/target/logs/$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$logs"
start=$(date +%s)
running=0
for t in "${targets[@]}"; do
    run_one "$t" "$time_per" "$logs/$t.log" &
    running=$((running + 1))
    if ((running >= jobs)); then
        wait -n || true
        running=$((running - 1))
    fi
done
wait
rm -rf /dev/shm/crit-fuzz-x-* 2>/dev/null || true
echo
echo "crit fuzz: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $((($(date +%s) - start))) s wall, sanitizer $sanitizer, $(rustc --version)"
printf '%-8s %7s %12s %8s %7s %7s %14s %8s  %s\n' target time execs exec/s cov ft corpus peak-rss result
fail=0
for t in "${targets[@]}"; do
    figures "$t" "$logs/$t.log" "$time_per" || fail=1
done
if ((fail)); then
    for t in "${targets[@]}"; do
        if [[ $(cat "$logs/$t.log.rc") != 0 ]]; then
            echo "--- $t ---"
            grep -aE 'panicked|ERROR|==crit-fuzz==|Test unit written|SUMMARY' "$logs/$t.log" | head -20
        fi
    done
    exit 1
fi
