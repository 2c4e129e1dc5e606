#!/usr/bin/env bash
# Fuzzes one of lossd's parsers with libFuzzer for a fixed time and prints what it found.
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   scripts/fuzz.sh all SECONDS       every target in turn, SECONDS each
#
# Targets (see Sources/lossd-fuzz/main.swift): http, json, decimal, service, npy, multipart, gzip.
# Builds lossd-fuzz with -sanitize=fuzzer,address in its own scratch path (.build-fuzz, so the
# normal .build is untouched), then runs it on the committed seeds in fuzz/corpus/TARGET.
# New interesting inputs go to .build-fuzz/corpus/TARGET (kept between runs, never committed);
# crashing inputs go to .build-fuzz/findings/TARGET/. Exits 1 when a target found something.
# Links with lld: gold dies with an internal error on the sanitizer-instrumented objects.
set -uo pipefail
cd "$(dirname "$0")/.."

targets="http json decimal service npy multipart gzip"
target=${1:-}
seconds=${2:-60}
shift 2 2>/dev/null || shift $#
if [ -z "$target" ] || { [ "$target" != all ] && ! grep -qw -- "$target" <<<"$targets"; }; then
    echo "usage: scripts/fuzz.sh {$(tr ' ' '|' <<<"$targets")|all} SECONDS [libFuzzer options...]" >&2
    exit 2
fi

scratch=.build-fuzz
echo "== building lossd-fuzz (release, -sanitize=fuzzer,address) in $scratch"
build_start=$(date +%s)
swift build -c release --scratch-path "$scratch" --product lossd-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -D -Xswiftc LOSSD_FUZZING -Xswiftc -use-ld=lld 2>&1 |
    grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Write|Emitting|Linking|Applying)'
if [ "${PIPESTATUS[0]}" -ne 0 ]; then echo "build failed"; exit 1; fi
echo "   built in $(( $(date +%s) - build_start )) s"
binary="$scratch/release/lossd-fuzz"

# A crash prints ASan's report; the Swift backtracer would only slow it down (and can hang).
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}

run_target() {
    local name=$1 log corpus findings
    shift
    corpus="$scratch/corpus/$name"
    findings="$scratch/findings/$name"
    mkdir -p "$corpus" "$findings"
    log="$scratch/fuzz-$name.log"
    echo "== fuzzing $name for $seconds s (seeds: fuzz/corpus/$name, log: $log)"
    "$binary" "$name" -max_total_time="$seconds" -timeout=10 -max_len=8192 -print_final_stats=1 \
        -artifact_prefix="$findings/" "$@" "$corpus" "fuzz/corpus/$name" >"$log" 2>&1
    local status=$?
    local runs rate features
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$')
    features=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    echo "   executions: ${runs:-?}  exec/s: ${rate:-?}  coverage features: ${features:-?}  corpus: $(ls "$corpus" | wc -l) inputs"
    if [ "$status" -ne 0 ]; then
        echo "   FINDING (exit $status):"
        grep -E 'FINDING|Fatal error|ERROR: AddressSanitizer|ERROR: libFuzzer|SUMMARY|Test unit written|^0x|#[0-9]+ 0x' "$log" | head -30 | sed 's/^/     /'
        echo "   reproduce: SWIFT_BACKTRACE=enable=no $binary $name <input from $findings/>"
        return 1
    fi
    echo "   no findings"
}

found=0
if [ "$target" = all ]; then
    for name in $targets; do run_target "$name" "$@" || found=1; done
else
    run_target "$target" "$@" || found=1
fi
exit $found
