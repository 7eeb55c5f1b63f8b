//! CLI tests of `joot build`: validation errors with line numbers (no root), a build on the
//! busybox fixture (no network: run, files, users, hostname, a custom module, the cache, a
//! failing step leaving the store unchanged, a deletion kept), and one build on the shared
//! Debian image exercising the modules that need a real distribution (packages, services,
//! ansible, users with groups and sudo, a Python custom module).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use joot_test_support::{SharedDebian, TestStore, fixture, require_root, require_tool};

fn write(path: &Path, content: &str, mode: u32) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("mkdir");
    }
    fs::write(path, content).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Runs a command and returns (success, stdout, stderr).
fn run(cmd: &mut assert_cmd::Command) -> (bool, String, String) {
    let out = cmd.output().expect("run joot");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(cmd: &mut assert_cmd::Command) -> String {
    let (success, stdout, stderr) = run(cmd);
    assert!(success, "joot failed:\n{stdout}\n{stderr}");
    stdout
}

/// The JSON progress events on stderr.
fn events(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Step indexes of the events of `kind`.
fn steps_of(events: &[serde_json::Value], kind: &str) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e["event"] == kind)
        .filter_map(|e| e["index"].as_u64())
        .collect()
}

/// Names under `dir` (sorted), for "store unchanged" checks.
fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn build_validation_errors_have_line_numbers() {
    let ts = TestStore::new("build_validation_errors_have_line_numbers");
    let dir = ts.scratch();
    let recipe = dir.join("recipe.yaml");
    write(
        &recipe,
        r#"version: 1
name: broken
from: base
steps:
  - pakages: [nginx]
  - files:
      - {src: missing.conf, dst: /etc/a}
      - {content: x, dst: /etc/b, mode: 644}
  - users:
      - {name: Bob, frobs: 1}
  - module: nosuch
"#,
        0o644,
    );
    let (success, stdout, stderr) = run(ts.cmd().arg("build").arg(&recipe));
    assert!(!success);
    assert!(stdout.is_empty(), "{stdout}");
    let file = recipe.display().to_string();
    for needle in [
        format!("{file}:5:5: step 1: unknown module `pakages` (did you mean `packages`?)"),
        format!("{file}:7:15: source `missing.conf` not found"),
        format!("{file}:8:41: bad mode 644: write the mode in quotes"),
        format!("{file}:10:21: unknown field `frobs`"),
        format!("{file}:11:13: custom module `nosuch` not found"),
    ] {
        assert!(stderr.contains(&needle), "missing {needle:?} in:\n{stderr}");
    }
    assert!(stderr.contains("5 errors in recipe"), "{stderr}");
    // Validation comes before any side effect: the store was not even created.
    assert!(!ts.root().exists(), "store created by an invalid build");

    // A recipe without a name needs --name.
    let nameless = dir.join("nameless.yaml");
    write(&nameless, "version: 1\nfrom: base\nsteps: []\n", 0o644);
    let (success, _, stderr) = run(ts.cmd().arg("build").arg(&nameless));
    assert!(!success);
    assert!(
        stderr.contains("give the image a name with --name"),
        "{stderr}"
    );
}

/// A store with the busybox fixture imported as `bb`.
fn busybox_store(name: &str) -> Option<TestStore> {
    if !require_root(name) || !require_tool(name, "busybox") {
        return None;
    }
    let ts = TestStore::new(name);
    let tar = ts.scratch().join("rootfs.tar");
    fixture::busybox_tarball(&tar).expect("fixture tarball");
    ok(ts.cmd().arg("import").arg(&tar).args(["--name", "bb"]));
    Some(ts)
}

const STAMP_MODULE: &str = r#"#!/bin/sh
# joot custom module: NAME ROOT CONFIG.json
set -e
level=$(sed -n 's/.*"level": *\([0-9]*\).*/\1/p' "$3" | head -n 1)
mkdir -p "$2/etc/stamp"
echo "$1 level=$level" > "$2/etc/stamp/$1"
"#;

fn busybox_recipe(dir: &Path, motd: &str) -> PathBuf {
    write(&dir.join("motd"), motd, 0o644);
    write(&dir.join("modules/stamp"), STAMP_MODULE, 0o755);
    let recipe = dir.join("recipe.yaml");
    write(
        &recipe,
        r#"version: 1
name: bbapp
from: bb
steps:
  - run: |
      echo built > /etc/built
      rm /etc/os-release
  - files:
      - {src: motd, dst: /etc/motd, mode: "0640", owner: "alice"}
      - {content: "a=1\n", dst: /opt/app/app.conf}
  - users:
      - {name: bob, uid: 1500, shell: /bin/sh}
  - hostname: bbhost
  - module: stamp
    with: {level: 3}
  - run: {script: 'id -un > /home/bob/whoami', user: bob}
"#,
        0o644,
    );
    recipe
}

#[test]
fn build_busybox_modules_cache_and_failure() {
    let Some(ts) = busybox_store("build_busybox_modules_cache_and_failure") else {
        return;
    };
    let dir = ts.scratch().join("recipe");
    let recipe = busybox_recipe(&dir, "hello v1\n");

    // First build: every step runs.
    let mut cmd = ts.cmd();
    cmd.args(["--progress", "json", "build"]).arg(&recipe);
    let (success, stdout, stderr) = run(&mut cmd);
    assert!(success, "{stderr}");
    assert_eq!(stdout.trim(), "bbapp");
    let ev = events(&stderr);
    assert_eq!(
        steps_of(&ev, "step_started"),
        [1, 2, 3, 4, 5, 6],
        "{stderr}"
    );
    assert_eq!(steps_of(&ev, "step_finished"), [1, 2, 3, 4, 5, 6]);
    assert!(steps_of(&ev, "step_cached").is_empty());
    let finished = ev.iter().find(|e| e["event"] == "step_finished").unwrap();
    assert!(finished["duration_s"].is_number() && finished["layer"].is_string());
    assert!(
        ev.iter()
            .any(|e| e["event"] == "build_finished" && e["image"] == "bbapp")
    );

    // What the steps did, seen from inside the image.
    let check = ok(ts
        .cmd()
        .args(["run", "--rm", "--from", "bbapp", "--", "sh", "-c"])
        .arg(
            "cat /etc/built /etc/motd /opt/app/app.conf /etc/stamp/stamp /home/bob/whoami; \
         stat -c '%a %U' /etc/motd; grep '^bob:x:1500:' /etc/passwd; \
         test ! -e /etc/os-release && echo deleted",
        ));
    assert_eq!(
        check,
        "built\nhello v1\na=1\nstamp level=3\nbob\n640 alice\nbob:x:1500:1500::/home/bob:/bin/sh\ndeleted\n",
        "image content"
    );
    // The hostname is in the layer (inside `joot run` the run's own /etc/hostname is bound
    // over it).
    assert_eq!(
        layer_file(&ts.root(), "bbapp", "etc/hostname").as_deref(),
        Some("bbhost\n")
    );

    // Unchanged recipe: every step cached, said in plain text.
    let (success, _, stderr) = run(ts.cmd().args(["--progress", "plain", "build"]).arg(&recipe));
    assert!(success, "{stderr}");
    assert!(
        stderr.contains("every step was cached (6 of 6)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[1/6] run echo built > /etc/built (+1 lines) ... cached"),
        "{stderr}"
    );

    // Changing the source of step 2 re-runs exactly steps 2..6, and --explain-cache says why.
    write(&dir.join("motd"), "hello v2\n", 0o644);
    let (success, _, stderr) = run(ts
        .cmd()
        .args(["--progress", "json", "build", "--explain-cache"])
        .arg(&recipe));
    assert!(success, "{stderr}");
    let ev = events(&stderr);
    assert_eq!(steps_of(&ev, "step_cached"), [1]);
    assert_eq!(steps_of(&ev, "step_started"), [2, 3, 4, 5, 6]);
    let why: Vec<String> = ev
        .iter()
        .filter(|e| e["event"] == "step_cache_explained" && e["index"] == 2)
        .flat_map(|e| e["reasons"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r.as_str().map(String::from))
        .collect();
    assert!(
        why.iter()
            .any(|w| w.contains("input files[0].src motd changed")),
        "{why:?}"
    );

    // --no-cache runs everything again.
    let (success, _, stderr) = run(ts
        .cmd()
        .args(["--progress", "json", "build", "--no-cache"])
        .arg(&recipe));
    assert!(success, "{stderr}");
    assert_eq!(
        steps_of(&events(&stderr), "step_started"),
        [1, 2, 3, 4, 5, 6]
    );

    // A failing last step: error names it with the tail of its output; images, layers and
    // envs are exactly as before.
    let failing = dir.join("failing.yaml");
    let text = fs::read_to_string(&recipe).unwrap()
        + "  - run: |\n      echo preparing\n      echo something broke >&2\n      exit 3\n";
    write(&failing, &text, 0o644);
    let root = ts.root();
    let before = (
        names(&root.join("images")),
        names(&root.join("layers")),
        names(&root.join("envs")),
    );
    let images_before = ok(ts.cmd().args(["images", "--json"]));
    let (success, stdout, stderr) = run(ts.cmd().arg("build").arg(&failing));
    assert!(!success);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("step 7/7 (run) failed: exit status 3"),
        "{stderr}"
    );
    assert!(stderr.contains("something broke"), "{stderr}");
    assert!(
        stderr.contains("no image was created or changed"),
        "{stderr}"
    );
    let after = (
        names(&root.join("images")),
        names(&root.join("layers")),
        names(&root.join("envs")),
    );
    assert_eq!(before, after, "store changed by a failed build");
    assert_eq!(images_before, ok(ts.cmd().args(["images", "--json"])));

    // --keep-failed keeps the env and prints its name.
    let (success, _, stderr) = run(ts
        .cmd()
        .args(["build", "--keep-failed", "--name", "kept"])
        .arg(&failing));
    assert!(!success);
    let kept = stderr
        .split("`joot shell ")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .unwrap_or_else(|| panic!("no kept env in:\n{stderr}"))
        .to_string();
    assert!(names(&root.join("envs")).contains(&kept), "{stderr}");
    ok(ts.cmd().args(["rm", "--force", &kept]));
}

/// The content of `rel` in the merged layers of `image`, read from the store directly.
fn layer_file(store_root: &Path, image: &str, rel: &str) -> Option<String> {
    let store = joot_store::Store::open(store_root).unwrap();
    let image = store
        .image(&joot_store::Name::parse(image).unwrap())
        .unwrap();
    let layers: Vec<PathBuf> = image.layers.iter().map(|l| store.layer_root(l)).collect();
    joot_build::tree::lookup(&layers, Path::new(rel)).map(|p| fs::read_to_string(p).unwrap())
}

const MOTD_MODULE: &str = r#"#!/usr/bin/env python3
import json, os, sys
name, root, config = sys.argv[1:4]
cfg = json.load(open(config))
with open(os.path.join(root, "etc", "motd"), "w") as f:
    f.write("%s: %s (%d steps)\n" % (name, cfg["with"]["text"], len(cfg["recipe"]["steps"])))
"#;

const PLAYBOOK: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.raw: "mkdir -p /etc/app && echo 'port={{ port }}' > /etc/app/ansible.conf"
"#;

/// Removes the test's image from the shared store, even when the test fails.
struct RemoveImage<'a>(&'a SharedDebian, &'a str);

impl Drop for RemoveImage<'_> {
    fn drop(&mut self) {
        let _ = self.0.cmd().args(["rmi", self.1]).output();
    }
}

#[test]
fn build_debian_every_module() {
    let test = "build_debian_every_module";
    if !require_root(test)
        || !require_tool(test, "ansible-playbook")
        || !require_tool(test, "python3")
    {
        return;
    }
    let Some(deb) = joot_test_support::shared_debian(test) else {
        return;
    };
    let image = format!("build-deb-{}", std::process::id());
    let _cleanup = RemoveImage(&deb, &image);
    let ts = TestStore::new(test);
    let dir = ts.scratch();
    write(&dir.join("modules/motd"), MOTD_MODULE, 0o755);
    write(&dir.join("site.yml"), PLAYBOOK, 0o644);
    write(&dir.join("conf/app.ini"), "[app]\nname=demo\n", 0o644);
    let recipe = dir.join("recipe.yaml");
    write(
        &recipe,
        &format!(
            r#"version: 1
from: {base}
steps:
  - packages: [hello]
  - users:
      - {{name: alice, groups: [sudo, adm], sudo: true, shell: /bin/bash, ssh_authorized_keys: ["ssh-ed25519 AAAAtest alice@ci"], password: "$6$saltsalt$abc"}}
  - files:
      - {{src: conf/, dst: /etc/demo, owner: "alice:alice"}}
  - run: rm /etc/issue && hello > /etc/greeting
  - services: {{enable: [systemd-networkd], disable: [apt-daily.timer], mask: [e2scrub_reap]}}
  - hostname: debhost
  - ansible: {{playbook: site.yml, extra_vars: {{port: 8080}}}}
  - module: motd
    with: {{text: hi, run: {run}}}
"#,
            base = deb.image,
            run = std::process::id()
        ),
        0o644,
    );
    let mut cmd = deb.cmd();
    cmd.args(["--progress", "json", "build", "--name", &image])
        .arg(&recipe);
    let (success, stdout, stderr) = run(&mut cmd);
    assert!(success, "{stderr}");
    assert_eq!(stdout.trim(), image);
    // The shared store keeps its step cache between test runs: earlier steps may come from a
    // previous run, the last one (its `with:` names this run) always runs.
    let ev = events(&stderr);
    let mut done = steps_of(&ev, "step_finished");
    done.extend(steps_of(&ev, "step_cached"));
    done.sort();
    assert_eq!(done, [1, 2, 3, 4, 5, 6, 7, 8], "{stderr}");
    assert!(steps_of(&ev, "step_finished").contains(&8), "{stderr}");

    let script = "set -e; /usr/bin/hello; cat /etc/greeting; test ! -e /etc/issue && echo issue-deleted; \
        id alice; getent shadow alice | cut -d: -f2; cat /etc/sudoers.d/90-joot-alice; \
        cat /home/alice/.ssh/authorized_keys; stat -c '%a %U' /home/alice/.ssh/authorized_keys /etc/demo/app.ini; \
        cat /etc/demo/app.ini; \
        test -L /etc/systemd/system/multi-user.target.wants/systemd-networkd.service && echo networkd-enabled; \
        test ! -e /etc/systemd/system/timers.target.wants/apt-daily.timer && echo timer-disabled; \
        readlink /etc/systemd/system/e2scrub_reap.service; \
        cat /etc/app/ansible.conf /etc/motd; grep -c 127.0.1.1 /etc/hosts || true";
    let out = ok(deb
        .cmd()
        .args(["run", "--rm", "--from", &image, "--", "sh", "-c", script]));
    for needle in [
        "Hello, world!\nHello, world!\n",
        "issue-deleted",
        "groups=1000(alice),4(adm),27(sudo)",
        "$6$saltsalt$abc",
        "alice ALL=(ALL:ALL) NOPASSWD: ALL",
        "ssh-ed25519 AAAAtest alice@ci",
        "600 alice\n644 alice",
        "[app]\nname=demo",
        "networkd-enabled",
        "timer-disabled",
        "/dev/null",
        "port=8080",
        "motd: hi (8 steps)",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert_eq!(
        layer_file(&deb.store_root, &image, "etc/hostname").as_deref(),
        Some("debhost\n")
    );

    // Unchanged: every step cached.
    let (success, _, stderr) = run(deb
        .cmd()
        .args(["--progress", "plain", "build", "--name", &image])
        .arg(&recipe));
    assert!(success, "{stderr}");
    assert!(
        stderr.contains("every step was cached (8 of 8)"),
        "{stderr}"
    );
}
