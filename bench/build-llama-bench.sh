#!/usr/bin/env bash
# Builds llama.cpp's own llama-bench against the very llama.cpp source that the llama-cpp-sys-2
# crate vendors (so the reference and slmgate share every kernel), with the CPU flags of
# slmgate's default build (x86-64-v3: AVX2, FMA, F16C, BMI2).
#
# The crate ships llama.cpp without the llama-bench tool, so its two source files come from the
# llama-cpp-python sdist on PyPI; everything they link (ggml, llama, common) is the crate's.
#   bench/build-llama-bench.sh          -> prints the path of llama-bench
#   CPU=v4 bench/build-llama-bench.sh   -> with the AVX-512/VNNI flags of `make run CPU=v4`
set -euo pipefail
cd "$(dirname "$0")/.."
ver=$(grep -A1 'name = "llama-cpp-sys-2"' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')
reg="${CARGO_HOME:-$HOME/.cargo}/registry/src"
src=$(ls -d "$reg"/*/llama-cpp-sys-2-"$ver"/llama.cpp 2>/dev/null | head -n1 || true)
[ -n "$src" ] || { cargo fetch >/dev/null; src=$(ls -d "$reg"/*/llama-cpp-sys-2-"$ver"/llama.cpp | head -n1); }
out="bench/out/llama.cpp${CPU:+-$CPU}"
tree="bench/out/llama.cpp-src"
if [ ! -f "$tree/tools/llama-bench/llama-bench.cpp" ]; then
  rm -rf "$tree" bench/out/sdist && mkdir -p bench/out/sdist
  cp -r "$src" "$tree" && chmod -R u+w "$tree"
  python3 -m pip download -q --no-deps --no-binary :all: --disable-pip-version-check -d bench/out/sdist llama-cpp-python==0.3.36
  tar -xzf bench/out/sdist/llama_cpp_python-*.tar.gz -C bench/out/sdist
  cp bench/out/sdist/llama_cpp_python-*/vendor/llama.cpp/tools/llama-bench/{CMakeLists.txt,llama-bench.cpp} "$tree/tools/llama-bench/"
  [ -f bench/out/sdist/llama_cpp_python-*/vendor/llama.cpp/tools/llama-bench/main.cpp ] && \
    cp bench/out/sdist/llama_cpp_python-*/vendor/llama.cpp/tools/llama-bench/main.cpp "$tree/tools/llama-bench/"
  printf 'add_subdirectory(llama-bench)\n' > "$tree/tools/CMakeLists.txt"
fi
flags=(-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON)
if [ "${CPU:-}" = v4 ]; then
  flags+=(-DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON)
fi
cmake -S "$tree" -B "$out" -DCMAKE_BUILD_TYPE=Release "${flags[@]}" -DGGML_OPENMP=ON \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_APP=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
cmake --build "$out" --target llama-bench -j"$(nproc)" >/dev/null
echo "$out/bin/llama-bench"
