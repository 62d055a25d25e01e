#!/usr/bin/env bash
# What `make test` needs beyond the build: Debian's Chromium for the dashboard test, Node.js to
# drive it, and playwright-core (pinned in tests/browser/package-lock.json; no bundled browser);
# PostgreSQL with pgvector and Redis for the scale-out tests.
# Idempotent and quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# Scale-out tests (tests/test_scaleout.py): a PostgreSQL server (+ its server headers, to build
# pgvector below), Redis, psql and redis-cli.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
# The TLS test (tests/test_pg_tls.py) makes its CA and server certificate with openssl.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
updated=""
install() {
  echo "[install-test-deps] installing: $*" >&2
  [ -n "$updated" ] || { $sudo apt-get update -qq; updated=1; }
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
[ ${#need[@]} -eq 0 ] || install "${need[@]}"

# pgvector (the `vector` extension) for the newest PostgreSQL here. Debian 12 packages it for
# no PostgreSQL version of its own (Debian 13 has postgresql-17-pgvector): build Debian's
# source of pgvector 0.8.0 (the orig tarball from the Debian archive, checksum pinned)
# against the installed server. ~10 s; skipped once installed.
pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -n "$pgbin" ]; then
  pgver="$(basename "$(dirname "$pgbin")")"
  [ -f "/usr/lib/postgresql/$pgver/lib/pgxs/src/makefiles/pgxs.mk" ] \
    || install "postgresql-server-dev-$pgver"
  pgconfig="$pgbin/pg_config"
  sharedir="$("$pgconfig" --sharedir)"
  if [ ! -f "$sharedir/extension/vector.control" ]; then
    echo "[install-test-deps] building pgvector 0.8.0 for $("$pgconfig" --version)" >&2
    work="$(mktemp -d)"
    curl -fsSL -o "$work/pgvector.tar.gz" \
      https://deb.debian.org/debian/pool/main/p/pgvector/pgvector_0.8.0.orig.tar.gz
    echo "867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0  $work/pgvector.tar.gz" \
      | sha256sum -c --status || { echo "[install-test-deps] pgvector checksum mismatch" >&2; exit 1; }
    tar -xzf "$work/pgvector.tar.gz" -C "$work"
    # OPTFLAGS="": no -march=native, so the build runs on any x86-64 machine.
    make -s -C "$work/pgvector-0.8.0" PG_CONFIG="$pgconfig" OPTFLAGS="" >/dev/null
    $sudo make -s -C "$work/pgvector-0.8.0" PG_CONFIG="$pgconfig" OPTFLAGS="" install >/dev/null
    rm -rf "$work"
  fi
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
