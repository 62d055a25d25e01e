#!/usr/bin/env bash
# Builds llama.cpp's own llama-server against the very llama.cpp source that the
# llama-cpp-sys-2 crate vendors (same ggml kernels, same llama library as slmgate), with the CPU
# flags of slmgate's default build (x86-64-v3). Used by bench/vs_llama_server.py.
#
# The crate ships llama.cpp without the server's sources, so tools/server, tools/mtmd (the
# multimodal helper the server links), common (the tools' helper library) and tools/ui (the web UI target, built here with
# placeholder assets) come from the llama-cpp-python sdist on PyPI; ggml and llama, where
# every kernel lives, are the crate's.
#   bench/build-llama-server.sh          -> prints the path of llama-server
#   CPU=v4 bench/build-llama-server.sh   -> with the AVX-512/VNNI flags of `make run CPU=v4`
set -euo pipefail
cd "$(dirname "$0")/.."
ver=$(grep -A1 'name = "llama-cpp-sys-2"' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')
reg="${CARGO_HOME:-$HOME/.cargo}/registry/src"
src=$(ls -d "$reg"/*/llama-cpp-sys-2-"$ver"/llama.cpp 2>/dev/null | head -n1 || true)
[ -n "$src" ] || { cargo fetch >/dev/null; src=$(ls -d "$reg"/*/llama-cpp-sys-2-"$ver"/llama.cpp | head -n1); }
out="bench/out/llama-server${CPU:+-$CPU}"
tree="bench/out/llama.cpp-server-src"
if [ ! -f "$tree/tools/server/server.cpp" ]; then
  rm -rf "$tree" && mkdir -p bench/out/sdist
  cp -rp "$src" "$tree" && chmod -R u+w "$tree"   # -p: keep mtimes, so a rebuild reuses objects
  ls bench/out/sdist/llama_cpp_python-*.tar.gz >/dev/null 2>&1 || \
    python3 -m pip download -q --no-deps --no-binary :all: --disable-pip-version-check -d bench/out/sdist llama-cpp-python==0.3.36
  [ -d bench/out/sdist/llama_cpp_python-0.3.36 ] || tar -xzf bench/out/sdist/llama_cpp_python-*.tar.gz -C bench/out/sdist
  up=$(ls -d bench/out/sdist/llama_cpp_python-*/vendor/llama.cpp | head -n1)
  # The server's multimodal helper library comes along: the server calls its newer API.
  rm -rf "$tree/tools/server" "$tree/tools/ui" "$tree/tools/mtmd" "$tree/common"
  cp -r "$up/tools/server" "$up/tools/ui" "$up/tools/mtmd" "$tree/tools/"
  # And its helper library (argument parsing, chat formats, file helpers), for the same reason.
  cp -r "$up/common" "$tree/common"
  mkdir -p "$tree/scripts" && cp "$up/scripts/ui-assets.cmake" "$tree/scripts/"
  # A placeholder web UI (its npm build needs the internet): the benchmark talks to the API only.
  d="$tree/tools/ui/dist" && mkdir -p "$d"
  printf '<!doctype html><title>llama-server</title>\n' > "$d/index.html"
  printf '{}\n' > "$d/manifest.webmanifest"; printf '{}\n' > "$d/build.json"; printf '{}\n' > "$d/version.json"
  for f in sw.js bundle0.js workbox0.js; do printf '\n' > "$d/$f"; done; printf '\n' > "$d/bundle0.css"
  printf 'add_subdirectory(ui)\nadd_subdirectory(mtmd)\nadd_subdirectory(server)\n' > "$tree/tools/CMakeLists.txt"
fi
flags=(-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON)
if [ "${CPU:-}" = v4 ]; then
  flags+=(-DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON)
fi
cmake -S "$tree" -B "$out" -DCMAKE_BUILD_TYPE=Release "${flags[@]}" -DGGML_OPENMP=ON \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_APP=OFF -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF >/dev/null
cmake --build "$out" --target llama-server -j"$(nproc)" >/dev/null
echo "$out/bin/llama-server"
