#!/bin/bash
# Export benchmark: the hand pipeline (mkfs.ext4 -d into a sparse file + qemu-img convert to
# qcow2) against `joot export` of the same tree, in one run, plus joot's other formats and the
# cost of --bootable. The tree is a Debian bookworm rootfs with a kernel (mmdebstrap, made once
# and imported into a scratch store as a one-layer image), or a directory you pass.
#
# Usage (as root): bench/export.sh [ROOTFS_DIR] [WORKDIR]
#   JOOT=path/to/joot   (default: target/release/joot, else target/debug/joot)
#   RUNS=3              (each timing is the median of RUNS runs)
# Prints a table: what, median seconds, output bytes on disk.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
rootfs=${1:-}
work=${2:-/var/tmp/joot-bench-export}
runs=${RUNS:-3}
joot=${JOOT:-}
if [ -z "$joot" ]; then
  for c in "$here/target/release/joot" "$here/target/debug/joot"; do
    [ -x "$c" ] && { joot=$c; break; }
  done
fi
[ -x "$joot" ] || { echo "joot binary not found: build it or set JOOT" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in mkfs.ext4 qemu-img tar bc; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done

mkdir -p "$work"
if [ -z "$rootfs" ]; then
  rootfs=$work/rootfs
  if [ ! -e "$work/rootfs.done" ]; then
    rm -rf "$rootfs"
    mmdebstrap --variant=minbase --include=linux-image-amd64,systemd-sysv,udev \
      bookworm "$rootfs" >"$work/mmdebstrap.log" 2>&1
    touch "$work/rootfs.done"
  fi
fi
store=$work/store
rm -rf "$store" "$work/out"
mkdir -p "$work/out"
tar -C "$rootfs" --numeric-owner --xattrs --xattrs-include='*' -cf "$work/rootfs.tar" .
"$joot" --root "$store" import "$work/rootfs.tar" --name bench >/dev/null

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
used() { du -B1 "$1" | cut -f1; }

# Size the hand pipeline like joot's --size auto so both write the same amount.
content=$(du -sB1 "$rootfs" | cut -f1)
size_mib=$(( (content + content / 4 + 128 * 1048576) / 1048576 ))

time_it() { # name output command...
  local name=$1 out=$2; shift 2
  local ts=()
  for _ in $(seq "$runs"); do
    rm -rf "$out"
    sync
    local t0 t1
    t0=$(now)
    "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }
    t1=$(now)
    ts+=("$(echo "$t1 - $t0" | bc)")
  done
  printf '%s|%s|%s\n' "$name" "$(printf '%s\n' "${ts[@]}" | median)" "$(used "$out")"
}

hand() {
  truncate -s "${size_mib}M" "$work/out/hand.raw"
  mkfs.ext4 -q -F -d "$rootfs" "$work/out/hand.raw" >/dev/null
  qemu-img convert -f raw -O qcow2 "$work/out/hand.raw" "$work/out/hand.qcow2"
  rm -f "$work/out/hand.raw"
}

{
  echo "what|median s|bytes used"
  time_it "hand: mkfs.ext4 -d + qemu-img qcow2" "$work/out/hand.qcow2" hand
  for f in raw qcow2 vmdk vhd vhdx; do
    time_it "joot export $f" "$work/out/j.$f" "$joot" --root "$store" export bench -o "$work/out/j.$f"
  done
  time_it "joot export qcow2 --compress" "$work/out/jz.qcow2" \
    "$joot" --root "$store" export bench -o "$work/out/jz.qcow2" --compress
  time_it "joot export qcow2 --bootable" "$work/out/jb.qcow2" \
    "$joot" --root "$store" export bench -o "$work/out/jb.qcow2" --bootable
  time_it "joot export raw --bootable" "$work/out/jb.raw" \
    "$joot" --root "$store" export bench -o "$work/out/jb.raw" --bootable
  time_it "joot export ec2" "$work/out/ec2" \
    "$joot" --root "$store" export bench -o "$work/out/ec2" --format ec2
  time_it "joot export tar.zst" "$work/out/j.tar.zst" \
    "$joot" --root "$store" export bench -o "$work/out/j.tar.zst"
} | column -t -s '|'
rm -rf "$work/out" "$work/rootfs.tar"
