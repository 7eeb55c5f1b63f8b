#!/usr/bin/env python3
"""Environment start-up benchmark: joot against the floor and its peers, in one run.

Measures, with the same harness for every contender (fork+exec from Python, wall clock):
  floor   unshare --mount --pid --uts --ipc --fork true
  joot    run --rm --from IMAGE -- true
  joot    create + run -- true + rm (three invocations)
  bwrap   read-only bind of the same rootfs as / with /proc, /dev, /tmp (no copy-on-write)
  podman  run --rm --runtime runc (when podman and runc are installed)
and prints median and p95 in milliseconds with ratios to the floor. Then creates 1,000 envs and
reports the create time at the start and at the end and the disk bytes per env.

Usage: sudo bench/envs.py [--joot PATH] [--runs N] [--envs N]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time


def busybox_rootfs(dest):
    bb = shutil.which("busybox") or "/bin/busybox"
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "usr/bin"]:
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    shutil.copy(bb, os.path.join(dest, "bin/busybox"))
    out = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout
    for applet in out.split():
        p = os.path.join(dest, "bin", applet)
        if not os.path.lexists(p):
            os.symlink("busybox", p)
    with open(os.path.join(dest, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(dest, "etc/group"), "w") as f:
        f.write("root:x:0:\n")


def measure(argv, runs, warmup=5, env=None):
    for _ in range(warmup):
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append((time.perf_counter() - t) * 1000)
    return times


def measure_seq(argvs, runs, warmup=3):
    def once(i):
        for a in argvs:
            subprocess.run([x.replace("{i}", str(i)) for x in a], check=True, stdout=subprocess.DEVNULL)

    for i in range(warmup):
        once(f"w{i}")
    times = []
    for i in range(runs):
        t = time.perf_counter()
        once(i)
        times.append((time.perf_counter() - t) * 1000)
    return times


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def du_bytes(path):
    out = subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--joot", default=shutil.which("joot") or "target/release/joot")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--envs", type=int, default=1000)
    ap.add_argument("--json", action="store_true", help="print results as JSON too")
    args = ap.parse_args()
    joot = os.path.abspath(args.joot)

    work = tempfile.mkdtemp(prefix="joot-bench-")
    store = os.path.join(work, "store")
    rootfs = os.path.join(work, "rootfs")
    busybox_rootfs(rootfs)
    tarball = os.path.join(work, "rootfs.tar")
    with tarfile.open(tarball, "w") as t:
        t.add(rootfs, arcname=".")
    J = [joot, "--root", store]
    env = dict(os.environ, JOOT_CONFIG="/nonexistent")
    subprocess.run(J + ["import", tarball, "--name", "bench"], check=True, env=env)

    results = {}
    results["floor: unshare -m -p -u -i -f true"] = measure(
        ["unshare", "--mount", "--pid", "--uts", "--ipc", "--fork", "true"], args.runs)
    results["joot run --rm --from IMAGE -- true"] = measure(
        J + ["run", "--rm", "--from", "bench", "--", "true"], args.runs, env=env)
    results["joot create + run -- true + rm"] = measure_seq(
        [J + ["create", "b{i}", "--from", "bench"], J + ["run", "b{i}", "--", "true"], J + ["rm", "b{i}"]],
        max(20, args.runs // 2))
    if shutil.which("bwrap"):
        results["bwrap --ro-bind ROOTFS / (no CoW)"] = measure(
            ["bwrap", "--ro-bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
             "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--", "/bin/true"], args.runs)
    if shutil.which("podman") and shutil.which("runc"):
        subprocess.run(["podman", "import", tarball, "joot-bench:latest"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        results["podman run --rm --runtime runc"] = measure(
            ["podman", "run", "--rm", "--runtime", "runc", "--network=host",
             "--ulimit", "nofile=1024:4096", "--ulimit", "nproc=1024:4096",
             "joot-bench:latest", "/bin/true"], max(10, args.runs // 10), warmup=2)
        subprocess.run(["podman", "rmi", "-f", "joot-bench:latest"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    floor = statistics.median(results["floor: unshare -m -p -u -i -f true"])
    print(f"{'case':45} {'median ms':>10} {'p95 ms':>8} {'x floor':>8}")
    summary = {}
    for name, xs in results.items():
        med = statistics.median(xs)
        summary[name] = {"median_ms": round(med, 2), "p95_ms": round(p95(xs), 2),
                         "ratio": round(med / floor, 2), "runs": len(xs)}
        print(f"{name:45} {med:10.2f} {p95(xs):8.2f} {med / floor:8.2f}")

    if args.envs < 40:
        shutil.rmtree(work, ignore_errors=True)
        return 0
    # 1,000 envs: create time at the start and at the end, disk per env.
    before = du_bytes(os.path.join(store, "envs"))
    times = []
    for i in range(args.envs):
        t = time.perf_counter()
        subprocess.run(J + ["create", f"many{i}", "--from", "bench"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - t) * 1000)
    after = du_bytes(os.path.join(store, "envs"))
    first = statistics.median(times[:20])
    last = statistics.median(times[-20:])
    per_env = (after - before) / args.envs
    t = time.perf_counter()
    subprocess.run(J + ["run", "--rm", "--from", "bench", "--", "true"], check=True, env=env)
    run_with_many = (time.perf_counter() - t) * 1000
    print(f"create, first 20 envs (median ms)         {first:8.2f}")
    print(f"create, last 20 of {args.envs} envs (median ms)   {last:8.2f}")
    print(f"disk per empty env (du -sb, bytes)        {per_env:8.0f}")
    print(f"run --rm with {args.envs} envs present (ms)      {run_with_many:8.2f}")
    summary["many_envs"] = {"count": args.envs, "create_first_ms": round(first, 2),
                            "create_last_ms": round(last, 2), "bytes_per_env": int(per_env)}
    if args.json:
        print(json.dumps(summary, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
