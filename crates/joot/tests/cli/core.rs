//! CLI tests of the core: import, envs, the sandboxed run, isolation, bad input, concurrency,
//! kill -9 and gc. Each test has its own store with the busybox fixture image.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use joot_test_support::{TestStore, fixture, require_root};
use predicates::prelude::*;

/// A store with the busybox fixture imported as image `bb`.
fn store_with_image(name: &str) -> Option<TestStore> {
    if !require_root(name) {
        return None;
    }
    let ts = TestStore::new(name);
    let tar = ts.scratch().join("rootfs.tar");
    fixture::busybox_tarball(&tar).expect("fixture tarball");
    ts.cmd()
        .args(["import"])
        .arg(&tar)
        .args(["--name", "bb"])
        .assert()
        .success();
    Some(ts)
}

fn stdout_of(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().expect("run joot");
    assert!(
        out.status.success(),
        "joot failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8 stdout")
}

/// Every file under `dir` with its size and mode, for "store unchanged" comparisons.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = p.symlink_metadata() else {
                continue;
            };
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            // Lock files and the empty mount point are touched by every command.
            if !rel.ends_with("lock") {
                out.push((rel, if m.is_dir() { 0 } else { m.size() }, m.mode()));
            }
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn import_then_images_lists_it() {
    let Some(ts) = store_with_image("import_then_images_lists_it") else {
        return;
    };
    let out = stdout_of(ts.cmd().args(["images", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["name"], "bb");
    assert_eq!(v[0]["layers"].as_array().unwrap().len(), 1);
    ts.cmd()
        .args(["images"])
        .assert()
        .success()
        .stdout(predicate::str::contains("bb"));
}

#[test]
fn import_from_stdin_compressed() {
    if !require_root("import_from_stdin_compressed") {
        return;
    }
    let ts = TestStore::new("import_from_stdin_compressed");
    let tar = ts.scratch().join("rootfs.tar");
    fixture::busybox_tarball(&tar).unwrap();
    let status = std::process::Command::new("zstd")
        .args(["-q", "-f"])
        .arg(&tar)
        .arg("-o")
        .arg(ts.scratch().join("rootfs.weird-extension"))
        .status()
        .expect("zstd");
    assert!(status.success());
    let data = fs::read(ts.scratch().join("rootfs.weird-extension")).unwrap();
    ts.cmd()
        .args(["import", "-", "--name", "zz"])
        .write_stdin(data)
        .assert()
        .success();
    let out = stdout_of(ts.cmd().args([
        "run",
        "--rm",
        "--from",
        "zz",
        "--",
        "cat",
        "/etc/os-release",
    ]));
    assert!(out.contains("joot-fixture"), "{out}");
}

#[test]
fn run_returns_exit_status_and_signals() {
    let Some(ts) = store_with_image("run_returns_exit_status_and_signals") else {
        return;
    };
    let run = |args: &[&str]| {
        let mut c = ts.cmd();
        c.args(["run", "--rm", "--from", "bb", "--"]).args(args);
        c.output().unwrap().status.code()
    };
    assert_eq!(run(&["true"]), Some(0));
    assert_eq!(run(&["sh", "-c", "exit 3"]), Some(3));
    assert_eq!(run(&["sh", "-c", "kill -9 $$"]), Some(128 + 9));
    assert_eq!(run(&["/no/such/command"]), Some(127));
    assert_eq!(run(&["/etc/passwd"]), Some(126));
    // joot's own error: unknown image.
    let out = ts
        .cmd()
        .args(["run", "--rm", "--from", "nope", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("joot: error:"));
}

#[test]
fn env_lifecycle_and_isolation() {
    let Some(ts) = store_with_image("env_lifecycle_and_isolation") else {
        return;
    };
    ts.cmd()
        .args(["create", "a", "--from", "bb"])
        .assert()
        .success();
    ts.cmd()
        .args(["create", "b", "--from", "bb"])
        .assert()
        .success();
    ts.cmd()
        .args([
            "run",
            "a",
            "--",
            "sh",
            "-c",
            "echo secret > /root/file && rm /etc/os-release",
        ])
        .assert()
        .success();
    // Persisted in a, invisible in b and in the image.
    let out = stdout_of(ts.cmd().args(["run", "a", "--", "cat", "/root/file"]));
    assert_eq!(out.trim(), "secret");
    ts.cmd()
        .args(["run", "b", "--", "test", "-e", "/root/file"])
        .assert()
        .code(1);
    ts.cmd()
        .args([
            "run",
            "--rm",
            "--from",
            "bb",
            "--",
            "test",
            "-e",
            "/root/file",
        ])
        .assert()
        .code(1);
    // The image's own files are untouched.
    let ls = stdout_of(ts.cmd().args(["ls", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&ls).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    ts.cmd()
        .args(["inspect", "a", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"kind\": \"env\""));
    ts.cmd().args(["rm", "a", "b"]).assert().success();
    let ls = stdout_of(ts.cmd().args(["ls", "--json"]));
    assert_eq!(ls.trim(), "[]");
}

#[test]
fn run_from_with_name_creates_and_keeps_env() {
    let Some(ts) = store_with_image("run_from_with_name_creates_and_keeps_env") else {
        return;
    };
    ts.cmd()
        .args([
            "run",
            "--from",
            "bb",
            "--name",
            "l1",
            "--",
            "sh",
            "-c",
            "echo 1 > /kept",
        ])
        .assert()
        .success();
    let out = stdout_of(
        ts.cmd()
            .args(["run", "--from", "bb", "--name", "l1", "--", "cat", "/kept"]),
    );
    assert_eq!(out.trim(), "1");
}

#[test]
fn sandbox_namespaces_and_filesystems() {
    let Some(ts) = store_with_image("sandbox_namespaces_and_filesystems") else {
        return;
    };
    let script = r#"
        echo "pid=$$"
        echo "host=$(hostname)"
        echo "hostsfile=$(grep -c myhost /etc/hosts)"
        (echo x > /proc/sys/kernel/hostname) 2>/dev/null && echo procsys=rw || echo procsys=ro
        touch /sys/x 2>/dev/null && echo sys=rw || echo sys=ro
        cat /proc/kcore >/dev/null 2>&1 && echo kcore=readable || echo kcore=masked
        ls /dev | tr '\n' ' '; echo
        touch /tmp/t && echo tmp=ok
        mount -t tmpfs none /tmp 2>/dev/null && echo mount=allowed || echo mount=denied
        echo "fds=$(ls /proc/self/fd | tr '\n' ' ')"
        echo "path=$PATH"
    "#;
    let out = stdout_of(ts.cmd().args([
        "run",
        "--rm",
        "--from",
        "bb",
        "--hostname",
        "myhost",
        "--",
        "sh",
        "-c",
        script,
    ]));
    assert!(out.contains("pid=2\n") || out.contains("pid=1\n"), "{out}");
    assert!(out.contains("host=myhost"), "{out}");
    assert!(
        out.contains("hostsfile=1") || out.contains("hostsfile=2"),
        "{out}"
    );
    assert!(out.contains("procsys=ro"), "{out}");
    assert!(out.contains("sys=ro"), "{out}");
    assert!(out.contains("kcore=masked"), "{out}");
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm",
    ] {
        assert!(out.contains(dev), "missing /dev/{dev}: {out}");
    }
    assert!(!out.contains("sda") && !out.contains("vda"), "{out}");
    assert!(out.contains("tmp=ok"), "{out}");
    assert!(out.contains("mount=denied"), "{out}");
    // Only stdin, stdout, stderr, plus the fd `ls` itself opens for the directory.
    let fds = out.lines().find(|l| l.starts_with("fds=")).unwrap();
    let n = fds.trim_start_matches("fds=").split_whitespace().count();
    assert!(n <= 4, "unexpected fds inside: {fds}");
    assert!(out.contains("path=/usr/local/sbin"), "{out}");

    let out = stdout_of(ts.cmd().args([
        "run",
        "--rm",
        "--from",
        "bb",
        "--privileged",
        "--",
        "sh",
        "-c",
        "mount -t tmpfs none /tmp && echo mount=allowed",
    ]));
    assert!(out.contains("mount=allowed"), "{out}");
}

#[test]
fn resolv_conf_is_a_copy() {
    let Some(ts) = store_with_image("resolv_conf_is_a_copy") else {
        return;
    };
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let out = stdout_of(ts.cmd().args([
        "run",
        "--rm",
        "--from",
        "bb",
        "--",
        "sh",
        "-c",
        "cat /etc/resolv.conf; echo 'nameserver 203.0.113.9' >> /etc/resolv.conf 2>/dev/null; true",
    ]));
    assert_eq!(out, host);
    assert_eq!(
        fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        host
    );
}

#[test]
fn net_none_has_only_loopback() {
    let Some(ts) = store_with_image("net_none_has_only_loopback") else {
        return;
    };
    let out = stdout_of(ts.cmd().args([
        "run",
        "--rm",
        "--from",
        "bb",
        "--net",
        "none",
        "--",
        "sh",
        "-c",
        "ls /sys/class/net; ip link show lo",
    ]));
    let ifaces: Vec<&str> = out.lines().take_while(|l| !l.contains(':')).collect();
    assert_eq!(ifaces, vec!["lo"], "{out}");
    assert!(out.contains("UP"), "{out}");
}

#[test]
fn bind_mounts_and_their_targets_stay_inside() {
    let Some(ts) = store_with_image("bind_mounts_and_their_targets_stay_inside") else {
        return;
    };
    let src = ts.scratch().join("data");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("hello"), "from host\n").unwrap();
    let bind = format!("{}:/data:ro", src.display());
    let out = stdout_of(ts.cmd().args([
        "run",
        "--rm",
        "--from",
        "bb",
        "--bind",
        &bind,
        "--",
        "sh",
        "-c",
        "cat /data/hello; touch /data/x 2>/dev/null && echo writable || echo readonly",
    ]));
    assert!(
        out.contains("from host") && out.contains("readonly"),
        "{out}"
    );

    // An env whose /evil is a symlink to /etc: binding onto /evil/x must land inside the env.
    ts.cmd()
        .args(["create", "sym", "--from", "bb"])
        .assert()
        .success();
    ts.cmd()
        .args(["run", "sym", "--", "ln", "-s", "/etc", "/evil"])
        .assert()
        .success();
    let victim = ts.scratch().join("victim");
    fs::create_dir_all(&victim).unwrap();
    let marker = PathBuf::from("/etc/joot-bind-escape-test");
    let _ = fs::remove_file(&marker);
    let bind = format!("{}:/evil/joot-bind-escape-test", victim.display());
    let _ = ts
        .cmd()
        .args(["run", "sym", "--bind", &bind, "--", "true"])
        .output()
        .unwrap();
    assert!(!marker.exists(), "bind target escaped onto the host");

    // A missing source is a clear error before anything starts.
    ts.cmd()
        .args([
            "run",
            "--rm",
            "--from",
            "bb",
            "--bind",
            "/nonexistent-joot:/x",
            "--",
            "true",
        ])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("does not exist"));
}

#[test]
fn bad_names_and_inputs_are_refused_and_store_unchanged() {
    let Some(ts) = store_with_image("bad_names_and_inputs_are_refused_and_store_unchanged") else {
        return;
    };
    let before = snapshot(&ts.root());
    for bad in ["../x", "-x", "a/b", "", &"x".repeat(65), "a b", ".hidden"] {
        ts.cmd()
            .args(["create", "--from", "bb", "--", bad])
            .assert()
            .code(125)
            .stderr(predicate::str::contains("name"));
    }
    // Not an archive; truncated archive; an empty file.
    let junk = ts.scratch().join("junk");
    fs::write(
        &junk,
        b"this is not a tarball at all, just text\n".repeat(40),
    )
    .unwrap();
    ts.cmd()
        .args(["import"])
        .arg(&junk)
        .args(["--name", "junk"])
        .assert()
        .code(125);
    let tar = ts.scratch().join("full.tar");
    fixture::busybox_tarball(&tar).unwrap();
    let data = fs::read(&tar).unwrap();
    let cut = ts.scratch().join("cut.tar");
    fs::write(&cut, &data[..data.len() / 2 + 100]).unwrap();
    ts.cmd()
        .args(["import"])
        .arg(&cut)
        .args(["--name", "cut"])
        .assert()
        .code(125);
    ts.cmd()
        .args(["import", "/nonexistent/x.tar", "--name", "x"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("/nonexistent/x.tar"));
    // Hostile archive: an entry escaping with ../
    let evil = ts.scratch().join("evil.tar");
    {
        let f = fs::File::create(&evil).unwrap();
        let mut b = tar::Builder::new(f);
        let mut h = tar::Header::new_gnu();
        let payload = b"pwned\n";
        h.set_size(payload.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        let name = b"../../../../tmp/joot-escape-test";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, &payload[..]).unwrap();
        b.finish().unwrap();
    }
    ts.cmd()
        .args(["import"])
        .arg(&evil)
        .args(["--name", "evil"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("joot-escape-test"));
    assert!(!Path::new("/tmp/joot-escape-test").exists());
    // Duplicate names.
    ts.cmd()
        .args(["import"])
        .arg(&tar)
        .args(["--name", "bb"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("already exists"));
    ts.cmd().args(["rmi", "nope"]).assert().code(125);
    assert_eq!(
        before,
        snapshot(&ts.root()),
        "a refused command changed the store"
    );
}

#[test]
fn concurrent_creates_of_one_name_give_one_winner() {
    let Some(ts) = store_with_image("concurrent_creates_of_one_name_give_one_winner") else {
        return;
    };
    let children: Vec<_> = (0..6)
        .map(|_| {
            ts.std_cmd()
                .args(["create", "same", "--from", "bb"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "exactly one create must win");
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("already exists"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn parallel_ephemeral_runs_all_succeed() {
    let Some(ts) = store_with_image("parallel_ephemeral_runs_all_succeed") else {
        return;
    };
    let children: Vec<_> = (0..8)
        .map(|i| {
            ts.std_cmd()
                .args(["run", "--rm", "--from", "bb", "--", "sh", "-c"])
                .arg(format!("echo {i} > /tmp/x && cat /tmp/x"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), i.to_string());
    }
}

#[test]
fn rmi_refuses_image_in_use_unless_forced() {
    let Some(ts) = store_with_image("rmi_refuses_image_in_use_unless_forced") else {
        return;
    };
    ts.cmd()
        .args(["create", "user", "--from", "bb"])
        .assert()
        .success();
    ts.cmd()
        .args(["rmi", "bb"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("user"));
    ts.cmd().args(["rmi", "--force", "bb"]).assert().success();
    // The env keeps its layers and still runs.
    ts.cmd()
        .args(["run", "user", "--", "true"])
        .assert()
        .success();
    ts.cmd().args(["gc"]).assert().success();
    ts.cmd()
        .args(["run", "user", "--", "true"])
        .assert()
        .success();
}

#[test]
fn commit_keeps_a_deletion_and_stacks() {
    let Some(ts) = store_with_image("commit_keeps_a_deletion_and_stacks") else {
        return;
    };
    ts.cmd()
        .args(["create", "w", "--from", "bb"])
        .assert()
        .success();
    ts.cmd()
        .args([
            "run",
            "w",
            "--",
            "sh",
            "-c",
            "rm /etc/os-release && echo v1 > /etc/version",
        ])
        .assert()
        .success();
    ts.cmd().args(["commit", "w", "w-v1"]).assert().success();
    let out = stdout_of(ts.cmd().args([
        "run",
        "--rm",
        "--from",
        "w-v1",
        "--",
        "sh",
        "-c",
        "cat /etc/version; test -e /etc/os-release && echo present || echo deleted",
    ]));
    assert!(out.contains("v1") && out.contains("deleted"), "{out}");
    // Stack a second layer on top.
    ts.cmd()
        .args([
            "run",
            "--from",
            "w-v1",
            "--name",
            "l2",
            "--",
            "sh",
            "-c",
            "echo v2 > /etc/version",
        ])
        .assert()
        .success();
    ts.cmd().args(["commit", "l2", "w-v2"]).assert().success();
    let hist = stdout_of(ts.cmd().args(["history", "w-v2", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&hist).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    let imgs: serde_json::Value =
        serde_json::from_str(&stdout_of(ts.cmd().args(["images", "--json"]))).unwrap();
    // Layers are shared, not copied: w-v2's first two layers are w-v1's.
    let layers = |n: &str| {
        imgs.as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == n)
            .unwrap()["layers"]
            .clone()
    };
    assert_eq!(layers("w-v2")[0], layers("w-v1")[0]);
    assert_eq!(layers("w-v2")[1], layers("w-v1")[1]);
}

#[test]
fn from_host_leaves_host_untouched() {
    if !require_root("from_host_leaves_host_untouched") {
        return;
    }
    let ts = TestStore::new("from_host_leaves_host_untouched");
    let marker = "/usr/local/joot-from-host-marker";
    let _ = fs::remove_file(marker);
    let out = stdout_of(ts.cmd().args([
        "run",
        "--rm",
        "--from",
        "host",
        "--",
        "sh",
        "-c",
        &format!("echo inside > {marker} && cat {marker} && rm -f /etc/os-release && echo ok"),
    ]));
    assert!(out.contains("inside") && out.contains("ok"), "{out}");
    assert!(!Path::new(marker).exists(), "--from host wrote to the host");
    assert!(
        Path::new("/etc/os-release").exists(),
        "--from host deleted a host file"
    );
}

#[test]
fn kill_9_leaves_nothing_running_and_gc_cleans() {
    let Some(ts) = store_with_image("kill_9_leaves_nothing_running_and_gc_cleans") else {
        return;
    };
    let token = format!("joot-kill-test-{}", std::process::id());
    let mut child = ts
        .std_cmd()
        .args(["run", "--rm", "--from", "bb", "--", "sh", "-c"])
        .arg(format!("exec sleep 1000 # {token}"))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let found = |t: &str| {
        fs::read_dir("/proc").unwrap().flatten().any(|e| {
            fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(t))
                .unwrap_or(false)
        })
    };
    while !found("sleep\u{0}1000") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(found("sleep\u{0}1000"), "the command never started");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while found("sleep\u{0}1000") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !found("sleep\u{0}1000"),
        "a process of the killed run survived"
    );
    ts.cmd().args(["gc"]).assert().success();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(ts.root().to_str().unwrap()),
        "mounts left under the store"
    );
    ts.cmd().args(["images"]).assert().success();
}

#[test]
fn idle_env_holds_no_host_mount() {
    let Some(ts) = store_with_image("idle_env_holds_no_host_mount") else {
        return;
    };
    ts.cmd()
        .args(["create", "idle", "--from", "bb"])
        .assert()
        .success();
    ts.cmd()
        .args(["run", "idle", "--", "true"])
        .assert()
        .success();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(ts.root().to_str().unwrap()), "{mounts}");
}

#[test]
fn mount_and_umount_run_stop_command() {
    let Some(ts) = store_with_image("mount_and_umount_run_stop_command") else {
        return;
    };
    ts.cmd()
        .args([
            "create",
            "m",
            "--from",
            "bb",
            "--command",
            "stop=echo stopped > /stop-ran",
        ])
        .assert()
        .success();
    let root = stdout_of(ts.cmd().args(["mount", "m"]));
    let root = PathBuf::from(root.trim());
    assert!(root.join("etc/os-release").exists());
    assert!(
        root.join("proc/self").exists(),
        "/proc not mounted in the mounted env"
    );
    // A mounted env is busy for runs.
    ts.cmd()
        .args(["run", "m", "--", "true"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("busy"));
    ts.cmd().args(["umount", "m"]).assert().success();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(root.to_str().unwrap()), "still mounted");
    let out = stdout_of(ts.cmd().args(["run", "m", "--", "cat", "/stop-ran"]));
    assert_eq!(out.trim(), "stopped");
}

#[test]
fn stored_commands_are_called() {
    let Some(ts) = store_with_image("stored_commands_are_called") else {
        return;
    };
    ts.cmd()
        .args([
            "create",
            "c",
            "--from",
            "bb",
            "--command",
            "greet=echo hello \"$@\"",
        ])
        .assert()
        .success();
    let out = stdout_of(ts.cmd().args(["call", "c", "greet", "--", "world"]));
    assert_eq!(out.trim(), "hello world");
    ts.cmd()
        .args(["call", "c", "nope"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("greet"));
}

#[test]
fn user_and_workdir_and_env() {
    let Some(ts) = store_with_image("user_and_workdir_and_env") else {
        return;
    };
    let out = stdout_of(ts.cmd().args([
        "run",
        "--rm",
        "--from",
        "bb",
        "--user",
        "alice",
        "--workdir",
        "/home/alice",
        "-e",
        "FOO=bar",
        "--",
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $FOO; echo $HOME",
    ]));
    assert_eq!(out, "1000\n1000\n/home/alice\nbar\n/home/alice\n");
}

#[test]
fn doctor_reports() {
    let ts = TestStore::new("doctor_reports");
    ts.cmd()
        .args(["doctor"])
        .assert()
        .stdout(predicate::str::contains("overlayfs"));
}
