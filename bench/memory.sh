#!/usr/bin/env bash
# RSS of slmgate serving SmolLM2, idle and under PARALLEL concurrent 200-token requests (oha).
# usage: bench/memory.sh CONTEXT PARALLEL KV      e.g. bench/memory.sh 2048 8 q8_0
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
port=18190
cat > "$tmp/mem.toml" <<EOT
[server]
listen = "127.0.0.1:$port"
[models.smollm2]
type = "local"
path = "${MODELS_DIR:-$HOME/.cache/slmgate/models}/smollm2-135m-instruct-q4_1.gguf"
threads = 2
context = $1
parallel = $2
kv_cache = "$3"
EOT
SLMGATE_LOG=warn "${SLMGATE_BIN:-target/release/slmgate}" serve --config "$tmp/mem.toml" & pid=$!
until curl -sf localhost:$port/ready >/dev/null; do sleep 0.2; done
idle=$(grep VmRSS /proc/$pid/status | awk '{print $2}')
oha --no-tui -z 12s -c $2 -m POST -H 'content-type: application/json' -d '{"model":"smollm2","messages":[{"role":"user","content":"Write a long story about a dragon."}],"max_tokens":200}' http://127.0.0.1:$port/v1/chat/completions > "$tmp/oha.txt" 2>&1 & o=$!
peak=0; while kill -0 $o 2>/dev/null; do r=$(grep VmRSS /proc/$pid/status | awk '{print $2}'); [ $r -gt $peak ] && peak=$r; sleep 0.2; done
echo "context=$1 parallel=$2 kv=$3 idle_MB=$((idle/1024)) peak_MB=$((peak/1024)) $(grep -E 'Requests/sec' "$tmp/oha.txt" | xargs)"
kill $pid; wait $pid 2>/dev/null
