#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for SECS seconds each, starting from its
# kept corpus (fuzz/corpus/<target>) and the fixed crashes (fuzz/regressions/<target>).
#
#   scripts/fuzz.sh 10          # the short run in `make test`: new inputs go to a scratch dir
#   scripts/fuzz.sh 300 --keep  # `make fuzz`: new inputs are added to fuzz/corpus (minimise
#                               # with `cargo +nightly fuzz cmin TARGET` before committing)
#
# A crash stops the run with its input in fuzz/artifacts/<target>/; fix it, then copy the
# input to fuzz/regressions/<target>/ (replayed by `cargo test` on stable).
set -euo pipefail
secs=${1:-300}
keep=${2:-}
cd "$(dirname "$0")/../fuzz"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz: no nightly toolchain, so no fuzzing (rustup toolchain install nightly); the kept inputs still ran in cargo test" >&2
    exit 0
fi
if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked --quiet
fi
# No sanitizer: the targets are safe Rust plus llama.cpp's grammar converter behind FFI (a C++
# throw that escapes aborts, which libFuzzer reports as a crash). `-s address` works too.
cargo +nightly fuzz build -s none 2>&1 | tail -n 3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
total=0
for t in $(cargo +nightly fuzz list); do
    mkdir -p "corpus/$t" "regressions/$t"
    if [ -n "$keep" ]; then out="corpus/$t"; else out="$scratch/$t"; mkdir -p "$out"; fi
    log="$scratch/$t.log"
    if ! cargo +nightly fuzz run -s none "$t" "$out" "corpus/$t" "regressions/$t" -- \
            -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz: $t CRASHED (input in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    total=$((total + runs))
    printf 'fuzz: %-20s %9s execs in %ss, no crash\n' "$t" "$runs" "$secs"
done
echo "fuzz: $total execs in all, no crash"
