#!/usr/bin/env bash
# Builds the DocC documentation of every library target, failing on any DocC warning (a broken
# link, a parameter documented that does not exist or left out), after checking that every public
# declaration has a documentation comment (scripts/doc-coverage.py).
#
#   scripts/docs.sh            # all library targets
#   scripts/docs.sh Attention  # one
#
# The archives land in .build/plugins/Swift-DocC/outputs/TARGET.doccarchive; preview one with
#   swift package --disable-sandbox preview-documentation --target Attention   (on a machine with a browser)
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(Attention AttentionModels AttentionDistributed AttentionRendering AttentionExperiments AttentionServer AttentionCLI)
fi
python3 scripts/doc-coverage.py "${targets[@]}"
for target in "${targets[@]}"; do
    echo "== $target"
    # The plugin writes into .build (hence no sandbox); docc gets --warnings-as-errors.
    swift package --disable-sandbox generate-documentation --target "$target" --warnings-as-errors > ".build/docs-$target.log" 2>&1 || {
        grep -E -A6 "^(warning|error)" ".build/docs-$target.log" | grep -v "distributed-tracing" | head -60
        echo "DocC failed for $target (full log: .build/docs-$target.log)" >&2
        exit 1
    }
done
echo "documentation built without warnings: ${targets[*]}"
