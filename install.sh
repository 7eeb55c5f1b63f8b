#!/usr/bin/env bash
# Installs joot and the system packages it uses, then runs a clean-room demo: a one-shot
# environment over the host's own root, where installing software changes nothing on the host.
# As root joot goes to /usr/local/bin; as a plain user to ~/.local/bin (packages via sudo).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/deps.sh
if [ "$(id -u)" -eq 0 ]; then PREFIX=/usr/local; SUDO=""; else PREFIX="$HOME/.local"; SUDO="sudo"; fi
# Packed relative relocations (DT_RELR, glibc 2.36+) shrink the work the dynamic loader does at
# every exec: joot starts on the hot path of every `joot run` (see bench/envs.py).
RUSTFLAGS="${RUSTFLAGS:--C link-arg=-Wl,-z,pack-relative-relocs}" \
  cargo install --locked --path crates/joot --root "$PREFIX"
echo "== installed $PREFIX/bin/joot"
echo "== demo: a clean-room environment over the host's root (nothing on the host changes)"
$SUDO "$PREFIX/bin/joot" run --rm --from host -- sh -c \
  'echo "inside: hostname=$(hostname) pid=$$"; touch /usr/joot-was-here && ls -l /usr/joot-was-here'
test ! -e /usr/joot-was-here && echo "host: /usr/joot-was-here does not exist: the host is untouched"
