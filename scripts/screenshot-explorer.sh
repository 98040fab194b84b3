#!/usr/bin/env bash
# Regenerates docs/explorer.png: starts `attention serve`, has headless Chromium load the page (the model
# explorer included when the model is installed) and take a screenshot. Needs the chromium package.
#   MODEL_DIR=shakespeare-gpt OUT=docs/explorer-gpt.png scripts/screenshot-explorer.sh
# explains a GPT-2 folder (what `attention train gpt` writes) instead, into another file;
#   MODEL=~/.cache/swift-attention/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf OUT=docs/explorer-gguf.png scripts/screenshot-explorer.sh
# a decoder from a GGUF file;
#   MODEL=~/.cache/swift-attention/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf CHAT="What is attention?" OUT=docs/chat-explorer.png scripts/screenshot-explorer.sh
# the chat explorer, after asking CHAT and opening the answer's third token from the end.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PORT:-8765}"
out="${OUT:-docs/explorer.png}"
model=()
[ -n "${MODEL_DIR:-}" ] && model=(--model-dir "$MODEL_DIR")
[ -n "${MODEL:-}" ] && model=(--model "$MODEL")
swift build -c release --product attention
.build/release/attention serve --port "$port" "${model[@]}" > /tmp/attention-serve.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    grep -q "Attention explorer at" /tmp/attention-serve.log && break
    sleep 0.1
done
url="http://127.0.0.1:$port/" budget=15000 size=1400,1250
if [ -n "${CHAT:-}" ]; then
    url="http://127.0.0.1:$port/chat?ask=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$CHAT")&token=-3"
    budget=100000000 size=1400,760     # the page's timer holds virtual time until the answer is in
fi
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=$size \
    --virtual-time-budget=$budget --screenshot="$PWD/$out" "$url"
echo "wrote $out"
