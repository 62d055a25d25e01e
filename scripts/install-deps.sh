#!/usr/bin/env bash
# Installs the Debian packages slmgate needs to build and test, if any are missing.
# llama.cpp builds from source through the llama-cpp-2 crate: cmake, a C/C++ compiler and
# libclang (bindgen). Tests use Python 3 with venv. Idempotent and quiet when all is there.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have cmake || need+=(cmake)
have clang || need+=(clang)
have g++ || need+=(g++)
have make || need+=(make)
have curl || need+=(curl)
have pkg-config || need+=(pkg-config)
have python3 || need+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so' || ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)

if [ ${#need[@]} -gt 0 ]; then
  echo "[install-deps] installing: ${need[*]}" >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! have cargo; then
  cat >&2 <<'MSG'
[install-deps] cargo is not installed. slmgate needs Rust >= 1.85 (rustup: https://rustup.rs,
or your distribution's rustc/cargo if recent enough). Install it, then run make again.
MSG
  exit 1
fi
