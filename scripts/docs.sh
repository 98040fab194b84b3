#!/usr/bin/env bash
# Builds the DocC documentation of every library target in one run of the plugin, failing on any
# DocC warning (a broken link, a parameter documented that does not exist or left out), after
# checking that every public declaration has a documentation comment (scripts/doc-coverage.py).
#
#   scripts/docs.sh            # all library targets
#   scripts/docs.sh Attention  # one
#
# The symbol graphs come from a debug build of each target (DocC's own; `swift run` shares it).
# The archives land in .build/plugins/Swift-DocC/outputs/TARGET.doccarchive; preview one with
#   swift package --disable-sandbox preview-documentation --target Attention   (on a machine with a browser)
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(Attention AttentionModels AttentionDistributed AttentionRendering AttentionExperiments AttentionExplorer AttentionServing AttentionServer AttentionCLI)
fi
python3 scripts/doc-coverage.py "${targets[@]}"
arguments=()
for target in "${targets[@]}"; do arguments+=(--target "$target"); done
mkdir -p .build
# The plugin writes into .build (hence no sandbox); docc gets --warnings-as-errors.
swift package --disable-sandbox generate-documentation "${arguments[@]}" --warnings-as-errors > .build/docs.log 2>&1 || {
    grep -E -A6 "^(warning|error)" .build/docs.log | grep -v "distributed-tracing" | head -60
    echo "DocC failed (full log: .build/docs.log)" >&2
    exit 1
}
echo "documentation built without warnings: ${targets[*]}"
