#!/usr/bin/env bash
# The whole test suite: unit, crate integration and CLI tests, as root (real namespaces, mounts,
# bootstraps and boots). Extra arguments go to nextest (e.g. a test filter).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E env "PATH=$PATH" "$0" "$@"
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
exec cargo nextest run --workspace --locked --profile ci "$@"
