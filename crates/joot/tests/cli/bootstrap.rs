//! CLI tests of `joot bootstrap`: the distro table, bad specs, an offline RPM bootstrap from a
//! repository built in the test, a failing installer, kill -9 mid-bootstrap plus `joot gc`, and
//! Debian bookworm for real through the shared image (run, apt-get install, cache reuse).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use joot_test_support::{TestStore, require_root, require_tool, shared_debian};
use predicates::prelude::*;

fn json_stdout(cmd: &mut assert_cmd::Command) -> serde_json::Value {
    let out = cmd.output().expect("run joot");
    assert!(
        out.status.success(),
        "joot failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.display().to_string();
    info.lines()
        .filter(|l| l.contains(&d))
        .map(str::to_string)
        .collect()
}

/// Processes whose command line mentions `needle` (left-over installers).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let s = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if s.contains(needle) {
            out.push(s);
        }
    }
    out
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn bootstrap_list_shows_distros_and_defaults() {
    let ts = TestStore::new("bootstrap_list_shows_distros_and_defaults");
    ts.cmd()
        .args(["bootstrap", "--list"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("debian")
                .and(predicate::str::contains("bookworm*"))
                .and(predicate::str::contains("ubuntu"))
                .and(predicate::str::contains("rocky"))
                .and(predicate::str::contains("centos-stream"))
                .and(predicate::str::contains("--repo URL")),
        );
    let v = json_stdout(ts.cmd().args(["bootstrap", "--list", "--json"]));
    let rows = v.as_array().expect("array");
    let fedora = rows.iter().find(|r| r["id"] == "fedora").expect("fedora");
    assert_eq!(fedora["package_manager"], "dnf");
    assert_eq!(fedora["family"], "rpm");
}

#[test]
fn bootstrap_bad_spec_lists_the_known_ones() {
    let ts = TestStore::new("bootstrap_bad_spec_lists_the_known_ones");
    ts.cmd()
        .args(["bootstrap", "gentoo:latest"])
        .assert()
        .code(125)
        .stderr(
            predicate::str::contains("unknown distribution")
                .and(predicate::str::contains("debian, ubuntu")),
        );
    ts.cmd()
        .args(["bootstrap", "debian:potato"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("bullseye, bookworm, trixie, sid"));
    ts.cmd()
        .args(["bootstrap", "rpm", "--include", "bash"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("--repo"));
    ts.cmd()
        .args(["bootstrap", "debian", "--variant", "huge"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("minbase"));
    assert!(entries(&ts.root().join("images")).is_empty());
    assert!(entries(&ts.root().join("tmp")).is_empty());
}

#[test]
fn bootstrap_config_file_defaults_are_validated_too() {
    let ts = TestStore::new("bootstrap_config_file_defaults_are_validated_too");
    let cfg = ts.scratch().join("joot.toml");
    std::fs::write(&cfg, "[bootstrap]\nvariant = \"huge\"\n").unwrap();
    ts.cmd()
        .env("JOOT_CONFIG", &cfg)
        .args(["bootstrap", "debian:bookworm"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("huge").and(predicate::str::contains("minbase")));
    // The command line overrides the config's scalar; the config's mirror is still checked.
    std::fs::write(
        &cfg,
        "[bootstrap]\nvariant = \"huge\"\nmirrors = { debian = \"deb.example\" }\n",
    )
    .unwrap();
    ts.cmd()
        .env("JOOT_CONFIG", &cfg)
        .args(["bootstrap", "debian:bookworm", "--variant", "minbase"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("deb.example").and(predicate::str::contains("URL")));
    assert!(entries(&ts.root().join("images")).is_empty());
}

#[test]
fn bootstrap_rpm_offline_and_run_the_installed_program() {
    let name = "bootstrap_rpm_offline_and_run_the_installed_program";
    if !require_root(name) {
        return;
    }
    for tool in ["rpmbuild", "createrepo_c", "dnf", "busybox"] {
        if !require_tool(name, tool) {
            return;
        }
    }
    let ts = TestStore::new(name);
    let repo = joot_test_support::fixture::rpm_repo(&ts.scratch());
    let v = json_stdout(
        ts.cmd()
            .args([
                "bootstrap",
                "rpm",
                "--name",
                "hello",
                "--include",
                "joot-hello",
            ])
            .arg("--repo")
            .arg(format!("file://{}", repo.display()))
            .arg("--json"),
    );
    assert_eq!(v["image"], "hello");
    assert_eq!(v["tool"], "dnf");
    assert_eq!(v["reused"], false);
    assert_eq!(v["distro"]["package_manager"], "dnf");
    ts.cmd()
        .args([
            "run",
            "--rm",
            "--from",
            "hello",
            "--",
            "/usr/bin/joot-hello",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("hello from rpm"));
    // The rpm database is at /var/lib/rpm inside the image, as on Fedora/RHEL.
    let layer_root = ts
        .root()
        .join("layers")
        .join(v["layer"].as_str().unwrap())
        .join("root");
    ts.cmd()
        .args([
            "run",
            "--rm",
            "--from",
            "hello",
            "--",
            "/bin/sh",
            "-c",
            "test -d /var/lib/rpm && ls /var/lib/rpm",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("rpmdb"));
    let qa = Command::new("rpm")
        .arg(format!("--root={}", layer_root.display()))
        .args(["--dbpath=/var/lib/rpm", "-qa"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&qa.stdout).contains("joot-hello-1.0-1"),
        "rpm -qa: {qa:?}"
    );
    // And from inside the env: the host's rpm (bound read-only at /host, run through the
    // host's dynamic loader) reads the env's own /var/lib/rpm.
    if cfg!(target_arch = "x86_64") {
        let ld = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap();
        let host = |p: &str| format!("/host{p}");
        ts.cmd()
            .args([
                "run",
                "--rm",
                "--from",
                "hello",
                "--bind",
                "/:/host:ro",
                "--",
            ])
            .arg(host(ld.to_str().unwrap()))
            .arg("--library-path")
            .arg(format!(
                "{}:{}",
                host("/lib/x86_64-linux-gnu"),
                host("/usr/lib/x86_64-linux-gnu")
            ))
            .arg(host("/usr/bin/rpm"))
            .args(["--rcfile", &host("/usr/lib/rpm/rpmrc")])
            .args(["--macros", &host("/usr/lib/rpm/macros")])
            .args(["--dbpath", "/var/lib/rpm", "-qa"])
            .assert()
            .success()
            .stdout(predicate::str::contains("joot-hello-1.0-1"));
    }
    // An identical second bootstrap reuses the layer.
    let v2 = json_stdout(
        ts.cmd()
            .args([
                "bootstrap",
                "rpm",
                "--name",
                "hello2",
                "--include",
                "joot-hello",
            ])
            .arg("--repo")
            .arg(format!("file://{}", repo.display()))
            .arg("--json"),
    );
    assert_eq!(v2["reused"], true);
    assert_eq!(v2["layer"], v["layer"]);
    assert!(mounts_under(&ts.root()).is_empty());
}

#[test]
fn bootstrap_tool_failure_shows_its_error_and_leaves_nothing() {
    let name = "bootstrap_tool_failure_shows_its_error_and_leaves_nothing";
    if !require_root(name) || !require_tool(name, "dnf") {
        return;
    }
    let ts = TestStore::new(name);
    let empty = ts.scratch().join("not-a-repo");
    std::fs::create_dir_all(&empty).unwrap();
    ts.cmd()
        .args(["bootstrap", "rpm", "--include", "bash"])
        .arg("--repo")
        .arg(format!("file://{}", empty.display()))
        .assert()
        .code(125)
        .stderr(predicate::str::contains("dnf").and(predicate::str::contains("failed")));
    assert!(entries(&ts.root().join("images")).is_empty());
    assert!(entries(&ts.root().join("layers")).is_empty());
    assert!(entries(&ts.root().join("tmp")).is_empty());
    assert!(mounts_under(&ts.root()).is_empty());
}

#[test]
fn bootstrap_killed_mid_install_is_cleaned_by_gc() {
    let name = "bootstrap_killed_mid_install_is_cleaned_by_gc";
    if !require_root(name) || !require_tool(name, "mmdebstrap") {
        return;
    }
    let ts = TestStore::new(name);
    let mut child = ts
        .std_cmd()
        .args([
            "--progress",
            "json",
            "bootstrap",
            "debian:bookworm",
            "--name",
            "k",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("\"bootstrap_phase\"") && line.contains("\"install\"") {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("\"install\"")),
        "never reached the install phase:\n{}",
        seen.join("\n")
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The installer dies with joot (pdeathsig, PID namespace); give the kernel a moment to
    // reap the namespace.
    let store = ts.root().display().to_string();
    let mut left = processes_mentioning(&store);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = processes_mentioning(&store);
    }
    assert!(left.is_empty(), "installer processes left: {left:?}");
    assert!(mounts_under(&ts.root()).is_empty(), "mounts left");
    assert!(
        !entries(&ts.root().join("tmp")).is_empty(),
        "a staging dir is left for gc"
    );
    assert!(entries(&ts.root().join("images")).is_empty());
    ts.cmd().arg("gc").assert().success();
    assert!(
        entries(&ts.root().join("tmp")).is_empty(),
        "gc removed the staging dir"
    );
}

#[test]
fn debian_bookworm_runs_and_installs_packages() {
    let name = "debian_bookworm_runs_and_installs_packages";
    let Some(sd) = shared_debian(name) else {
        return;
    };
    sd.cmd()
        .args([
            "run",
            "--rm",
            "--from",
            &sd.image,
            "--",
            "cat",
            "/etc/os-release",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("VERSION_CODENAME=bookworm"));
    // Chroot conventions are part of the image.
    sd.cmd()
        .args([
            "run",
            "--rm",
            "--from",
            &sd.image,
            "--",
            "sh",
            "-c",
            "test ! -s /etc/machine-id && /usr/sbin/policy-rc.d; echo policy=$?; cat /etc/apt/sources.list; grep -c UNCONFIGURED /etc/fstab; true",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("policy=101")
                .and(predicate::str::contains("deb http://deb.debian.org/debian bookworm main"))
                .and(predicate::str::ends_with("\n0\n")),
        );
    let env = format!("bt-apt-{}", std::process::id());
    sd.cmd()
        .args(["create", &env, "--from", &sd.image])
        .assert()
        .success();
    let installed = sd
        .cmd()
        .args([
            "run",
            &env,
            "--",
            "sh",
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hello && hello",
        ])
        .output()
        .unwrap();
    sd.cmd().args(["rm", "--force", &env]).assert().success();
    assert!(
        installed.status.success(),
        "apt-get install in the env failed:\n{}\n{}",
        String::from_utf8_lossy(&installed.stdout),
        String::from_utf8_lossy(&installed.stderr)
    );
    assert!(String::from_utf8_lossy(&installed.stdout).contains("Hello, world!"));
}

#[test]
fn debian_second_bootstrap_downloads_nothing() {
    let name = "debian_second_bootstrap_downloads_nothing";
    let Some(sd) = shared_debian(name) else {
        return;
    };
    // The shared image's bootstrap filled the package cache with a superset of minbase.
    let tag = std::process::id();
    let (a, b) = (format!("bt-minbase-a-{tag}"), format!("bt-minbase-b-{tag}"));
    let boot = |image: &str, extra: &[&str]| {
        json_stdout(
            sd.cmd()
                .args([
                    "bootstrap",
                    "debian:bookworm",
                    "--variant",
                    "minbase",
                    "--json",
                ])
                .args(["--name", image])
                .args(extra),
        )
    };
    // A real install (--fresh) takes every package from the cache.
    let fresh = boot(&a, &["--fresh"]);
    // Identical inputs and mirror index: the layer just made is reused.
    let again = boot(&b, &[]);
    // `--from debian:bookworm` bootstraps the missing image `debian-bookworm` on first use,
    // with the same defaults, so it reuses that layer too.
    let from = sd
        .cmd()
        .args([
            "run",
            "--rm",
            "--from",
            "debian:bookworm",
            "--",
            "cat",
            "/etc/os-release",
        ])
        .output()
        .unwrap();
    let inspect = sd
        .cmd()
        .args(["inspect", "--json", "debian-bookworm"])
        .output()
        .unwrap();
    for n in [a.as_str(), b.as_str(), "debian-bookworm"] {
        sd.cmd().args(["rmi", n]).assert().success();
    }
    assert_eq!(fresh["reused"], false, "{fresh}");
    assert_eq!(fresh["downloaded_bytes"], 0, "{fresh}");
    assert!(fresh["packages"].as_u64().unwrap() > 50, "{fresh}");
    assert_eq!(fresh["distro"]["release"], "bookworm");
    assert_eq!(again["reused"], true, "{again}");
    assert_eq!(again["layer"], fresh["layer"]);
    assert_eq!(again["downloaded_bytes"], 0);
    assert!(
        from.status.success() && String::from_utf8_lossy(&from.stdout).contains("bookworm"),
        "run --from debian:bookworm: {from:?}"
    );
    let layer = fresh["layer"].as_str().unwrap();
    assert!(
        String::from_utf8_lossy(&inspect.stdout).contains(layer),
        "debian-bookworm reuses layer {layer}: {inspect:?}"
    );
}
