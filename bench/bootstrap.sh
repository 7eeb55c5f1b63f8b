#!/bin/bash
# Bootstrap benchmark: a Debian bookworm minbase made by plain mmdebstrap, by plain
# debootstrap, and by `joot bootstrap` three times -- first (empty store, nothing cached),
# again (identical inputs: the earlier layer is reused after checking the mirror's InRelease
# files), and again with --fresh (a real install with every package from joot's cache).
# All in one run, against the same mirror, one after another.
#
# Usage (as root): bench/bootstrap.sh [WORKDIR]
#   JOOT=path/to/joot   (default: target/release/joot, else target/debug/joot)
#   REPEAT=N            alternating plain-mmdebstrap / joot --fresh pairs (default 2)
# Prints a table: what, seconds, size of the tree, bytes of packages downloaded.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/joot-bench-bootstrap}
joot=${JOOT:-}
if [ -z "$joot" ]; then
  for c in "$here/target/release/joot" "$here/target/debug/joot"; do
    [ -x "$c" ] && { joot=$c; break; }
  done
fi
[ -x "$joot" ] || { echo "joot binary not found: build it or set JOOT" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in mmdebstrap debootstrap du; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done

rm -rf "$work"
mkdir -p "$work"
results=()

now() { date +%s.%N; }
mb() { du -sxm "$1" | cut -f1; }

# plain mmdebstrap (its defaults add bookworm-updates and bookworm-security, as joot does)
mkdir "$work/mmdebstrap"
t0=$(now)
mmdebstrap --variant=minbase bookworm "$work/mmdebstrap" >"$work/mmdebstrap.log" 2>&1
t1=$(now)
results+=("mmdebstrap|$(echo "$t1 - $t0" | bc)|$(mb "$work/mmdebstrap")|-")

# plain debootstrap
t0=$(now)
debootstrap --variant=minbase bookworm "$work/debootstrap" http://deb.debian.org/debian \
  >"$work/debootstrap.log" 2>&1
t1=$(now)
results+=("debootstrap|$(echo "$t1 - $t0" | bc)|$(mb "$work/debootstrap")|-")

jb() { # NAME EXTRA... -> "seconds|MB|downloaded|reused"
  local name=$1; shift
  local t0 t1 out layer
  t0=$(now)
  out=$("$joot" --root "$work/store" --progress none bootstrap debian:bookworm \
    --variant minbase --name "$name" --json "$@" 2>"$work/$name.log")
  t1=$(now)
  layer=$(printf '%s' "$out" | sed -n 's/.*"layer": "\([0-9a-f]*\)".*/\1/p')
  local dl reused
  dl=$(printf '%s' "$out" | sed -n 's/.*"downloaded_bytes": \([0-9]*\).*/\1/p')
  reused=$(printf '%s' "$out" | sed -n 's/.*"reused": \([a-z]*\).*/\1/p')
  echo "$(echo "$t1 - $t0" | bc)|$(mb "$work/store/layers/$layer/root")|$dl|$reused"
}

results+=("joot first (empty cache)|$(jb first)")
results+=("joot again (identical, reused)|$(jb again)")

# The machine's load moves a lot on shared runners: plain mmdebstrap and joot --fresh
# alternate REPEAT times so both see the same conditions; each run is listed.
for i in $(seq 1 "${REPEAT:-2}"); do
  rm -rf "$work/mmdebstrap"
  mkdir "$work/mmdebstrap"
  t0=$(now)
  mmdebstrap --variant=minbase bookworm "$work/mmdebstrap" >"$work/mmdebstrap-$i.log" 2>&1
  t1=$(now)
  results+=("mmdebstrap (#$i)|$(echo "$t1 - $t0" | bc)|$(mb "$work/mmdebstrap")|-")
  results+=("joot --fresh (#$i, package cache)|$(jb "fresh$i" --fresh)")
done

printf '%-32s %9s %8s %14s %s\n' "bookworm minbase" "seconds" "MB" "downloaded B" "reused"
for r in "${results[@]}"; do
  IFS='|' read -r what s m d u <<<"$r"
  printf '%-32s %9.2f %8s %14s %s\n' "$what" "$s" "$m" "$d" "${u:-}"
done
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg); logs in $work)"
rm -rf "$work/mmdebstrap" "$work/debootstrap" "$work/store"
