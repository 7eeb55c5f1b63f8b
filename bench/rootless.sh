#!/bin/bash
# Rootless benchmark: `joot run --rm --from IMAGE -- true` as a plain user (user namespace with
# the subordinate range, written by newuidmap/newgidmap) against the same command as root, in
# one run, and the ratio (target: rootless within 1.5x of root). Also times `--from host`, and
# `--bind-user`, rootless and as root, for the record.
#
# Usage (as root): bench/rootless.sh [WORKDIR]
#   JOOT=path/to/joot   (default: target/release/joot, else target/debug/joot)
#   BENCH_USER=joot-rl  (a user with ranges in /etc/subuid and /etc/subgid)
#   RUNS=200            (hyperfine runs per command, after 10 warm-up runs)
# The image is the busybox-static fixture (the run itself, not the tree, is measured). Each
# side's hyperfine runs as that side's user, so `runuser` (PAM) is not part of the timing.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/joot-bench-rootless}
user=${BENCH_USER:-joot-rl}
runs=${RUNS:-200}
joot=${JOOT:-}
if [ -z "$joot" ]; then
  for c in "$here/target/release/joot" "$here/target/debug/joot"; do
    [ -x "$c" ] && { joot=$c; break; }
  done
fi
[ -x "$joot" ] || { echo "joot binary not found: build it or set JOOT" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root (it runs one side as $user)" >&2; exit 1; }
for t in hyperfine runuser python3 busybox newuidmap; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done
id "$user" >/dev/null 2>&1 || { echo "no user $user (see docs/rootless.md)" >&2; exit 1; }
grep -q "^$user:" /etc/subuid || echo "warning: $user has no subuid range: single-uid mapping" >&2

rm -rf "$work"
mkdir -p "$work/rootfs"/{bin,etc,proc,sys,dev,tmp,root}
chmod 755 "$work"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for a in sh true; do ln -s busybox "$work/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/rootfs/etc/passwd"
printf 'root:x:0:\n' >"$work/rootfs/etc/group"
tar -C "$work/rootfs" --numeric-owner -cf "$work/rootfs.tar" .
mkdir -p "$work/user"
chown -R "$user:" "$work/user" "$work/rootfs.tar"

# The binary must be reachable by the user (a checkout under /root is not).
if ! runuser -u "$user" -- test -x "$joot"; then
  cp "$joot" "$work/joot" && chmod 755 "$work/joot" && joot=$work/joot
fi
"$joot" --root "$work/root-store" import "$work/rootfs.tar" --name bb >/dev/null 2>&1
runuser -u "$user" -- "$joot" --root "$work/user/store" import "$work/rootfs.tar" --name bb \
  >/dev/null 2>&1

bench() { # json-file run-as command...
  local json=$1 who=$2; shift 2
  local hf=(hyperfine -N --warmup 10 --runs "$runs" --export-json "$json" --style none)
  if [ "$who" = root ]; then
    "${hf[@]}" "$*" >/dev/null
  else
    runuser -u "$who" -- "${hf[@]}" "$*" >/dev/null
  fi
}
chown "$user:" "$work"
r="$joot --root $work/root-store run --rm"
u="$joot --root $work/user/store run --rm"
bench "$work/root-image.json" root "$r --from bb -- /bin/true"
bench "$work/user-image.json" "$user" "$u --from bb -- /bin/true"
bench "$work/root-host.json" root "$r --from host -- /bin/true"
bench "$work/user-host.json" "$user" "$u --from host -- /bin/true"
bench "$work/root-binduser.json" root "$r --bind-user --from bb -- /bin/true"
bench "$work/user-binduser.json" "$user" "$u --bind-user --from bb -- /bin/true"

python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
def stats(name):
    r = json.load(open(f"{work}/{name}.json"))["results"][0]
    return r["median"] * 1000, r["min"] * 1000
print(f"{'run --rm ... -- true':<26}{'root ms':>9}{'rootless':>10}{'ratio':>7}{'min root':>10}{'min rl':>8}{'ratio':>7}")
for what, key in [("--from IMAGE", "image"), ("--from host", "host"), ("--bind-user --from IMAGE", "binduser")]:
    rm, rmin = stats(f"root-{key}")
    um, umin = stats(f"user-{key}")
    print(f"{what:<26}{rm:>9.2f}{um:>10.2f}{um / rm:>7.2f}{rmin:>10.2f}{umin:>8.2f}{umin / rmin:>7.2f}")
rm = stats("root-image")[0]
um = stats("user-image")[0]
print(f"medians of the runs; target (rootless --from IMAGE within 1.5x of root): "
      f"{'met' if um <= 1.5 * rm else 'NOT met'} ({um / rm:.2f}x)")
EOF
