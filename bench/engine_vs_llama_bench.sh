#!/usr/bin/env bash
# Engine throughput of slmgate against llama.cpp's own llama-bench, same source, same flags,
# same thread count. Prints both tables.
#   bench/engine_vs_llama_bench.sh            (THREADS=2 REPS=3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-2}"
REPS="${REPS:-3}"
MODELS_DIR="${MODELS_DIR:-$HOME/.cache/slmgate/models}"
bench_bin=$(bench/build-llama-bench.sh | tail -n1)
echo "## llama-bench (llama.cpp reference), -t $THREADS, pp512 / tg128, $REPS reps"
for m in smollm2-135m-instruct-q4_1.gguf gemma3-270m-q4_k_m.gguf; do
  "$bench_bin" -m "$MODELS_DIR/$m" -t "$THREADS" -p 512 -n 128 -r "$REPS" -o md 2>/dev/null | grep -E '^\|' | grep -v -- '---' | tail -n +2
done
echo
echo "## slmgate engine (cargo bench -p slmgate-engine --bench engine)"
BENCH_THREADS="$THREADS" BENCH_REPS="$REPS" MODELS_DIR="$MODELS_DIR" cargo bench -q -p slmgate-engine --bench engine 2>/dev/null
