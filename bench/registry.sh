#!/bin/bash
# Registry benchmark: push and pull throughput of joot against a distribution registry on
# loopback (Debian's docker-registry), next to skopeo copying the same image to and from the
# same registry, one run, one after another.
#
# The image is a rootfs tarball of the host's /usr/bin and /usr/lib/x86_64-linux-gnu (about
# 1 GB, real binaries: compresses like a distro image), imported with `joot import`.
#   joot push (cold)     compress every layer (gzip) + upload
#   skopeo push (cold)   skopeo copy --dest-compress oci:<uncompressed layout> docker://...
#                        (the same work: compress + upload)
#   joot push (warm)     to a new repository: blobs come from joot's blob cache, upload only
#   skopeo push (warm)   skopeo copy oci:<joot-exported gzip layout> docker://... (upload only)
#   joot pull            download + verify + unpack into a fresh store
#   skopeo pull          skopeo copy docker://... oci:<dir> (download + verify, no unpack)
#   podman pull          download + verify + unpack into containers-storage (vfs driver)
#
# Usage (as root): bench/registry.sh [WORKDIR]
#   JOOT=path/to/joot   (default: target/release/joot, else target/debug/joot)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/joot-bench-registry}
joot=${JOOT:-}
if [ -z "$joot" ]; then
  for c in "$here/target/release/joot" "$here/target/debug/joot"; do
    [ -x "$c" ] && { joot=$c; break; }
  done
fi
[ -x "$joot" ] || { echo "joot binary not found: build it or set JOOT" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in docker-registry skopeo podman bc python3; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done

rm -rf "$work"
mkdir -p "$work"
export JOOT_CONFIG=/nonexistent
now() { date +%s.%N; }
reg_pid=
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null; true; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $addr
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

store=$work/store
tar -C / -cf "$work/rootfs.tar" usr/bin usr/lib/x86_64-linux-gnu
"$joot" --root "$store" --progress none import "$work/rootfs.tar" --name bench >/dev/null
raw_mb=$(( $(stat -c %s "$work/rootfs.tar") / 1048576 ))
rm -f "$work/rootfs.tar"

results=()
run() { # name command...
  local name=$1; shift
  sync
  local t0 t1
  t0=$(now)
  "$@" >"$work/$name.log" 2>&1 || { echo "$name failed:"; cat "$work/$name.log"; exit 1; }
  t1=$(now)
  results+=("$name|$(echo "$t1 - $t0" | bc)")
}
secs() { for r in "${results[@]}"; do [ "${r%%|*}" = "$1" ] && echo "${r#*|}"; done; }

run "joot push (cold)" "$joot" --root "$store" --progress none push bench "$addr/joot/cold:1" --insecure
run "joot push (warm)" "$joot" --root "$store" --progress none push bench "$addr/joot/warm:1" --insecure
"$joot" --root "$store" --progress none export bench --format oci-dir -o "$work/layout" >/dev/null
"$joot" --root "$store" --progress none export bench --format oci-dir --compression none -o "$work/layout-raw" >/dev/null
blob_mb=$(( $(du -sb "$work/layout/blobs" | cut -f1) / 1048576 ))
run "skopeo push (cold)" skopeo copy --dest-compress --dest-tls-verify=false "oci:$work/layout-raw:latest" "docker://$addr/skopeo/cold:1"
run "skopeo push (warm)" skopeo copy --dest-tls-verify=false "oci:$work/layout:latest" "docker://$addr/skopeo/warm:1"
run "joot pull" "$joot" --root "$work/store2" --progress none pull "$addr/joot/cold:1" --insecure --name pulled
run "skopeo pull" skopeo copy --src-tls-verify=false "docker://$addr/joot/cold:1" "oci:$work/skopeo-pulled:latest"
pod=(podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver vfs)
run "podman pull" "${pod[@]}" pull -q --tls-verify=false "docker://$addr/joot/cold:1"
"${pod[@]}" rmi -a -f >/dev/null 2>&1 || true

echo "image: ${raw_mb} MB of files, ${blob_mb} MB of gzip blobs; registry on $addr; joot: $joot"
printf '%-20s %9s %10s\n' what seconds "blob MB/s"
for r in "${results[@]}"; do
  name=${r%%|*}; s=${r#*|}
  printf '%-20s %9.2f %10.1f\n' "$name" "$s" "$(echo "$blob_mb / $s" | bc -l)"
done
ratio() { echo "scale=2; $(secs "$1") / $(secs "$2")" | bc; }
echo "ratios (joot / peer, lower is better):"
echo "  push cold / skopeo push cold: $(ratio 'joot push (cold)' 'skopeo push (cold)')"
echo "  push warm / skopeo push warm: $(ratio 'joot push (warm)' 'skopeo push (warm)')"
echo "  pull / skopeo pull (no unpack): $(ratio 'joot pull' 'skopeo pull')"
echo "  pull / podman pull (unpack):    $(ratio 'joot pull' 'podman pull')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
