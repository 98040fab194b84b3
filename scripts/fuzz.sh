#!/usr/bin/env bash
# Fuzz one input path of the library with libFuzzer and AddressSanitizer.
#
#   scripts/fuzz.sh TARGET [SECONDS] [libFuzzer flags...]
#   TARGET: npy, safetensors, gguf, wordpiece, bpe, explorer, heatmap, openai (or "all": SECONDS each, as
#           many at once as there are processors)
#
# Builds the attention-fuzz product with -sanitize=fuzzer,address, linked by lld (gold fails on it),
# in .build-fuzz (apart from the normal build); then runs TARGET for SECONDS (default 60) on a
# scratch copy of its committed seeds
# (Fuzz/corpus/TARGET) with its dictionary (Fuzz/TARGET.dict) if there is one. New inputs that
# found coverage stay in .build-fuzz/corpus/TARGET; a crashing input is written to
# .build-fuzz/crashes/ and the script fails: make it a seed (Fuzz/corpus/TARGET/) and a test.
#
# Fuzz/corpus/TARGET holds the hand-written seeds (scripts/fuzz-seeds.py) and found-* inputs that a
# 10-minute run reached, kept to a covering set; to refresh them after a long run:
#   ATTENTION_FUZZ_TARGET=T .build-fuzz/release/attention-fuzz -set_cover_merge=1 NEW Fuzz/corpus/T .build-fuzz/corpus/T
# and move NEW's files into Fuzz/corpus/T as found-*.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:?usage: scripts/fuzz.sh TARGET [SECONDS] [libFuzzer flags...]}"
seconds="${2:-60}"
shift $(( $# >= 2 ? 2 : 1 ))

swift build -c release --product attention-fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld -Xcc -DATTENTION_FUZZING=1 2>&1 | grep -vE "^warning: 'swift-distributed-tracing'" >&2
binary=".build-fuzz/release/attention-fuzz"

# fuzz_one TARGET: runs TARGET for SECONDS; a crash fails it.
fuzz_one() {
    local t="$1" corpus=".build-fuzz/corpus/$1"
    mkdir -p "$corpus" .build-fuzz/crashes
    [ -d "Fuzz/corpus/$t" ] && cp -n Fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
    local dict=()
    [ -f "Fuzz/$t.dict" ] && dict=(-dict="Fuzz/$t.dict")
    echo "fuzzing $t for ${seconds} s" >&2
    # Swift's backtracer would catch a trap before libFuzzer saves the input; Foundation's Data
    # reading keeps a small cache that LeakSanitizer reports, so leaks are not checked.
    ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no "$binary" "$t" "$corpus" "${dict[@]}" -max_total_time="$seconds" \
        -detect_leaks=0 -max_len=65536 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix=".build-fuzz/crashes/$t-" "${extra[@]}"
}
extra=("$@")

if [ "$target" != all ]; then
    fuzz_one "$target"
    exit
fi
# All targets, as many at once as there are processors (each fuzzer is one process of one thread);
# each one's output goes to .build-fuzz/logs/TARGET.log, printed in full if it fails.
mkdir -p .build-fuzz/logs
failed=()
pids=() names=()
finish() {  # finish INDEX: waits for job INDEX and reports it
    local code=0
    wait "${pids[$1]}" || code=$?
    local name="${names[$1]}"
    if [ "$code" -ne 0 ]; then
        failed+=("$name")
        echo "FAIL: fuzz target $name (exit $code):" >&2
        tail -40 ".build-fuzz/logs/$name.log" >&2
    else
        echo "ok   $name: $(grep -E '^Done [0-9]+ runs' ".build-fuzz/logs/$name.log" | tail -1)"
    fi
}
parallel="$(nproc 2>/dev/null || echo 1)"
next=0
for t in npy safetensors gguf wordpiece bpe explorer heatmap openai; do
    fuzz_one "$t" > ".build-fuzz/logs/$t.log" 2>&1 &
    pids+=($!) names+=("$t")
    if [ $(( ${#pids[@]} - next )) -ge "$parallel" ]; then finish "$next"; next=$((next + 1)); fi
done
while [ "$next" -lt ${#pids[@]} ]; do finish "$next"; next=$((next + 1)); done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz targets that failed: ${failed[*]} (inputs in .build-fuzz/crashes/)" >&2
    exit 1
fi
