#!/usr/bin/env bash
# What `make test` needs beyond the build: Debian's Chromium for the dashboard test, Node.js to
# drive it, and playwright-core (pinned in tests/browser/package-lock.json; no bundled browser).
# Idempotent and quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "[install-test-deps] installing: ${need[*]}" >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -f tests/browser/node_modules/playwright-core/package.json ] \
   || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  echo "[install-test-deps] npm ci (playwright-core)" >&2
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi

# The official Node SDKs for tests/test_node_sdks.py (pinned in tests/node/package-lock.json).
if [ ! -f tests/node/node_modules/openai/package.json ] \
   || [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; then
  echo "[install-test-deps] npm ci (openai, @anthropic-ai/sdk)" >&2
  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
fi
