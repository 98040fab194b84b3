#!/usr/bin/env bash
# What a newcomer does on a fresh checkout, checked: install `attention` (scripts/install.sh into a
# temporary prefix), run the README's commands, and try the mistakes people make. Each command must
# exit with the status given and print what is expected; the first that does not stops the script.
#
#   scripts/newcomer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
scripts/install.sh "$work/prefix" > "$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
attention="$work/prefix/bin/attention"
failures=0

# check STATUS PATTERN -- ARGUMENTS...: runs attention ARGUMENTS, expects exit STATUS and PATTERN
# (a fixed string) somewhere in what it printed (stdout and stderr together).
check() {
    local status="$1" pattern="$2"; shift 3
    local output code=0
    output="$("$attention" "$@" 2>&1)" || code=$?
    if [ "$code" -ne "$status" ] || ! grep -qF -- "$pattern" <<< "$output"; then
        echo "FAIL: attention $* exited $code (expected $status), output:" >&2
        head -20 <<< "$output" >&2
        failures=$((failures + 1))
    else
        echo "ok   attention $*" | cut -c1-110
    fi
}

# The README's commands.
check 0 "The cat sat on the mat" -- demo
check 0 "entropy" -- experiment scaling --svg "$work/scaling.svg"
check 0 "wrote $work/patterns.svg" -- experiment patterns --svg "$work/patterns.svg"
check 0 "heads" -- experiment heads
check 0 "Attention compares" -- experiment retrieval --trials 20
check 0 "chat" -- experiment cross
check 0 "model" -- model fetch
check 0 "0.7" -- similarity "The cat sat on the mat" "A cat was sitting on a rug"
check 0 "[" -- embed --json "The cat sat on the mat"
check 0 "What each token attends to most" -- explain "The cat sat on the mat because it was tired" --layer 6 --head 12
check 0 '"tokens"' -- explain --json "The cat sat on the mat"
check 0 "GFLOP/s on" -- bench --seq 256 --repeat 3
check 0 "The cat" -- generate --model-dir Tests/Fixtures/gpt2 "The cat" --max-tokens 5
check 0 "USAGE: attention <subcommand>" -- --help
check 0 "0.1.0" -- --version
# installed WHAT FILE PATTERN: FILE exists and holds PATTERN.
installed() {
    if grep -qF -- "$3" "$2" 2> /dev/null; then echo "ok   $1 installed"; else echo "FAIL: no $1 at $2" >&2; failures=$((failures + 1)); fi
}
installed "bash completion" "$work/prefix/share/bash-completion/completions/attention" "_attention"
installed "zsh completion" "$work/prefix/share/zsh/site-functions/_attention" "#compdef attention"
installed "fish completion" "$work/prefix/share/fish/vendor_completions.d/attention.fish" "attention"
installed "man page" "$work/prefix/share/man/man1/attention.1" "Exit status"
installed "explorer page" "$work/prefix/bin/swift-attention_AttentionServer.resources/Resources/index.html" "explorer.js"

# The mistakes, with their statuses (attention --help lists them).
echo "not an array" > "$work/text.npy"
check 64 "Did you mean 'attend'?" -- atend
check 64 "Did you mean '--threads'?" -- bench --thread 2
check 64 "the sentence is empty" -- explain ""
check 64 "pass --truncate" -- explain "$(printf 'cat %.0s' $(seq 300))"
check 66 "--weights $work/missing.npy: no such file" -- heatmap --weights "$work/missing.npy"
check 65 "not a .npy file" -- heatmap --weights "$work/text.npy"
check 73 "is a folder; give a file name" -- experiment scaling --svg "$work"
check 66 "run 'attention model fetch'" -- explain --model-dir "$work/nothing" "a"

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "every command behaved as the README says"
