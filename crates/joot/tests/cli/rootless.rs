//! Rootless CLI tests (issue 7): the test runs as root (CI) and executes every joot step as a
//! plain user through `runuser -u USER -- joot ...`. Two users are created once, under a file
//! lock: `joot-rl` with a subordinate id range (uid 1000 of an image lands on
//! `range_start + 999` on disk and shows as 1000 inside) and `joot-rl-nosub` without one (the
//! single-uid fallback, which must say what it loses). Each test has its own store in a temp
//! dir owned by the user.

use crate::registry;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use joot_test_support::{TestStore, fixture, joot_bin, require_root, require_tool, shared_debian};

const USER: &str = "joot-rl";
const NOSUB: &str = "joot-rl-nosub";
/// The range the tests give `joot-rl` (the first range listed for a user is the one used).
const RANGE: &str = "200000-265535";

fn sh(argv: &[&str]) -> Output {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {argv:?}: {e}"))
}

fn sh_ok(argv: &[&str]) {
    let out = sh(argv);
    assert!(
        out.status.success(),
        "{argv:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first subordinate range of `user` in `file`: (start, count).
fn first_range(file: &str, user: &str) -> Option<(u32, u32)> {
    fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() == 3 && f[0] == user).then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?)))?
    })
}

fn uid_of(user: &str) -> Option<u32> {
    let out = sh(&["id", "-u", user]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().parse().ok())?
}

fn gid_of(user: &str) -> u32 {
    let out = sh(&["id", "-g", user]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("gid")
}

/// Creates the two test users (idempotent; serialised by a file lock across test processes).
fn ensure_users() {
    let lock = fs::File::create(std::env::temp_dir().join("joot-rootless-users.lock"))
        .expect("users lock file");
    lock.lock().expect("lock users");
    if uid_of(USER).is_none() {
        sh_ok(&[
            "useradd",
            "-m",
            "-s",
            "/bin/sh",
            "-K",
            "SUB_UID_COUNT=0",
            "-K",
            "SUB_GID_COUNT=0",
            USER,
        ]);
    }
    let want = "200000:65536";
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = fs::read_to_string(file).unwrap_or_default();
        if !text.lines().any(|l| l == format!("{USER}:{want}")) {
            let flag = if file.ends_with("uid") {
                "--add-subuids"
            } else {
                "--add-subgids"
            };
            sh_ok(&["usermod", flag, RANGE, USER]);
        }
    }
    if uid_of(NOSUB).is_none() {
        sh_ok(&[
            "useradd",
            "-m",
            "-s",
            "/bin/sh",
            "-K",
            "SUB_UID_COUNT=0",
            "-K",
            "SUB_GID_COUNT=0",
            NOSUB,
        ]);
    }
    for (file, flag) in [
        ("/etc/subuid", "--del-subuids"),
        ("/etc/subgid", "--del-subgids"),
    ] {
        while let Some((start, count)) = first_range(file, NOSUB) {
            sh_ok(&[
                "usermod",
                flag,
                &format!("{start}-{}", start + count - 1),
                NOSUB,
            ]);
        }
    }
}

/// The joot binary as the users can run it: the build's own if they can reach it, else a copy
/// in the temp dir (a checkout under /root is not reachable for them).
fn user_bin() -> PathBuf {
    let bin = joot_bin();
    let reachable = Command::new("runuser")
        .args(["-u", NOSUB, "--", "test", "-x"])
        .arg(&bin)
        .status()
        .is_ok_and(|s| s.success());
    if reachable {
        return bin;
    }
    let dir = std::env::temp_dir().join("joot-rootless-bin");
    fs::create_dir_all(&dir).expect("bin dir");
    let lock = fs::File::create(dir.join("lock")).expect("bin lock");
    lock.lock().expect("lock bin");
    let dest = dir.join("joot");
    let src_md = fs::metadata(&bin).expect("joot binary");
    let stale = fs::metadata(&dest).map_or(true, |d| {
        d.len() != src_md.len() || d.modified().ok() < src_md.modified().ok()
    });
    if stale {
        let tmp = dir.join("joot.tmp");
        fs::copy(&bin, &tmp).expect("copy joot");
        fs::rename(&tmp, &dest).expect("publish joot copy");
    }
    sh_ok(&[
        "chmod",
        "0755",
        dir.to_str().unwrap(),
        dest.to_str().unwrap(),
    ]);
    dest
}

/// A store owned by a plain user, and joot run as that user.
struct Rootless {
    ts: TestStore,
    user: &'static str,
    uid: u32,
    bin: PathBuf,
}

impl Rootless {
    fn new(name: &str, user: &'static str) -> Option<Rootless> {
        if !require_root(name)
            || !require_tool(name, "runuser")
            || !require_tool(name, "useradd")
            || !require_tool(name, "newuidmap")
            || !require_tool(name, "busybox")
        {
            return None;
        }
        ensure_users();
        let ts = TestStore::new(name);
        let scratch = ts.scratch();
        let top = scratch.parent().unwrap().to_path_buf();
        sh_ok(&["chown", "-R", &format!("{user}:"), top.to_str().unwrap()]);
        let uid = uid_of(user).expect("test user");
        let bin = user_bin();
        Some(Rootless { ts, user, uid, bin })
    }

    fn root(&self) -> PathBuf {
        self.ts.root()
    }

    fn scratch(&self) -> PathBuf {
        self.ts.scratch()
    }

    /// `runuser -u USER -- joot --root STORE` in the scratch dir.
    fn cmd(&self) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", self.user, "--"])
            .arg(&self.bin)
            .arg("--root")
            .arg(self.root())
            .current_dir(self.scratch())
            .env("JOOT_CONFIG", "/nonexistent/joot-test-config")
            .env_remove("JOOT_ROOT")
            .env_remove("XDG_DATA_HOME")
            .env_remove("SUDO_UID");
        cmd
    }

    fn out(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run joot")
    }

    /// Runs joot and returns stdout; panics with stderr on failure.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.out(args);
        assert!(
            out.status.success(),
            "joot {args:?} as {} failed ({}):\n{}",
            self.user,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Imports the busybox fixture (alice's home owned by uid 1000) as image `bb`.
    fn import_busybox(&self) -> Output {
        let tar = self.scratch().join("rootfs.tar");
        fixture::busybox_tarball(&tar).expect("fixture tarball");
        sh_ok(&["chown", &format!("{}:", self.user), tar.to_str().unwrap()]);
        let out = self.out(&["import", "rootfs.tar", "--name", "bb"]);
        assert!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// Ends the user's shared user namespace holder (`joot-userns`, which would otherwise live a
/// minute after the last run): a run in progress keeps its namespace alive by itself, and the
/// next run starts a new holder.
impl Drop for Rootless {
    fn drop(&mut self) {
        for dir in [
            std::env::temp_dir().join(format!("joot-{}", self.uid)),
            PathBuf::from(format!("/run/user/{}/joot", self.uid)),
        ] {
            let Some(pid) = fs::read_to_string(dir.join("userns.pid"))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            else {
                continue;
            };
            let ours = fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "joot-userns")
                && fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == self.uid);
            if ours {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// The host owner of `rel` in the (single) layer of the store that has it.
fn layer_owner(store: &Path, rel: &str) -> u32 {
    for e in fs::read_dir(store.join("layers"))
        .expect("layers dir")
        .flatten()
    {
        if let Ok(md) = fs::symlink_metadata(e.path().join("root").join(rel)) {
            return md.uid();
        }
    }
    panic!("no layer has {rel}");
}

/// Every owner uid found under `dir`.
fn owners(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = p.symlink_metadata() else {
                continue;
            };
            out.push((p.clone(), md.uid()));
            if md.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[test]
fn rootless_import_run_keeps_owners_and_exit_codes() {
    let Some(rl) = Rootless::new("rootless_import_run_keeps_owners_and_exit_codes", USER) else {
        return;
    };
    let (start, _) = first_range("/etc/subuid", USER).expect("subuid range");
    let out = rl.import_busybox();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("no subordinate id range"),
        "a user with a range must not get the fallback warning"
    );

    // Exit codes of the command come through.
    let code = |args: &[&str]| rl.out(args).status.code();
    assert_eq!(
        code(&["run", "--rm", "--from", "bb", "--", "sh", "-c", "exit 7"]),
        Some(7)
    );
    assert_eq!(
        code(&["run", "--rm", "--from", "bb", "--", "/no/such"]),
        Some(127)
    );
    assert_eq!(
        code(&["run", "--rm", "--from", "bb", "--", "true"]),
        Some(0)
    );

    // Inside: root is the user, uid 1000 keeps its files, the map has the range.
    let inside = rl.ok(&[
        "run",
        "--rm",
        "--from",
        "bb",
        "--",
        "sh",
        "-c",
        "id -u; stat -c %u:%g /home/alice; cat /proc/self/uid_map",
    ]);
    let lines: Vec<Vec<&str>> = inside
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0"], "{inside}");
    assert_eq!(lines[1], ["1000:1000"], "{inside}");
    // Nested in the user's shared namespace (whose own map is the one below), the run's map
    // is the identity of it.
    assert_eq!(lines[2], ["0", "0", "1"], "{inside}");
    assert_eq!(lines[3], ["1", "1", "65536"], "{inside}");
    // Without the shared namespace the run's own map is written by the helpers.
    let direct = rl
        .cmd()
        .env("JOOT_NO_SHARED_USERNS", "1")
        .args([
            "run",
            "--rm",
            "--from",
            "bb",
            "--",
            "cat",
            "/proc/self/uid_map",
        ])
        .output()
        .unwrap();
    let direct: Vec<Vec<String>> = String::from_utf8_lossy(&direct.stdout)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(
        direct,
        [
            vec!["0".to_string(), rl.uid.to_string(), "1".into()],
            vec!["1".to_string(), start.to_string(), "65536".into()],
        ]
    );

    // On disk: uid 1000 is range_start + 999; nothing in the store belongs to root.
    assert_eq!(layer_owner(&rl.root(), "home/alice"), start + 999);
    assert_eq!(layer_owner(&rl.root(), "bin/busybox"), rl.uid);
    for (path, uid) in owners(&rl.root()) {
        assert!(
            uid == rl.uid || (start..start + 65536).contains(&uid),
            "{} belongs to uid {uid}, neither the user nor its range",
            path.display()
        );
    }
}

#[test]
fn rootless_env_persists_commits_and_setuid_stays_inside() {
    let Some(rl) = Rootless::new(
        "rootless_env_persists_commits_and_setuid_stays_inside",
        USER,
    ) else {
        return;
    };
    let (start, _) = first_range("/etc/subuid", USER).expect("subuid range");
    rl.import_busybox();
    rl.ok(&["create", "--from", "bb", "dev"]);
    rl.ok(&[
        "run",
        "dev",
        "--",
        "sh",
        "-c",
        "echo kept > /root/note && mkdir -p /srv/data && chown 1000:1000 /srv/data && \
         cp /bin/busybox /bin/suid-bb && chmod 4755 /bin/suid-bb",
    ]);
    assert_eq!(rl.ok(&["run", "dev", "--", "cat", "/root/note"]), "kept\n");
    // A directory only uid 1000 may read still counts in the env's size.
    rl.ok(&[
        "run",
        "dev",
        "--",
        "sh",
        "-c",
        "mkdir -p /srv/private && echo 0123456789 > /srv/private/f && \
         chown -R 1000:1000 /srv/private && chmod 700 /srv/private",
    ]);
    let inspect = rl.ok(&["inspect", "dev"]);
    let size: u64 = inspect
        .lines()
        .find_map(|l| l.trim().strip_prefix("upper_size:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no upper_size in {inspect}"));
    assert!(
        size >= 11,
        "upper_size {size} misses range-owned files: {inspect}"
    );

    // The setuid file belongs to the user on disk: setuid there gains nothing but the user.
    let upper = rl.root().join("envs/dev/upper");
    let md = fs::symlink_metadata(upper.join("bin/suid-bb")).expect("suid file in upper");
    assert_ne!(md.mode() & 0o4000, 0, "setuid bit kept");
    assert_eq!(
        md.uid(),
        rl.uid,
        "a setuid-root file of the image is the user's on disk"
    );
    assert_ne!(md.uid(), 0);
    assert_eq!(
        fs::symlink_metadata(upper.join("srv/data")).unwrap().uid(),
        start + 999
    );

    rl.ok(&["commit", "dev", "bb2"]);
    let seen = rl.ok(&[
        "run",
        "--rm",
        "--from",
        "bb2",
        "--",
        "sh",
        "-c",
        "cat /root/note; stat -c %u /srv/data; stat -c %a /bin/suid-bb",
    ]);
    assert_eq!(seen, "kept\n1000\n4755\n");

    // Removing range-owned trees works as the user (re-run inside its user namespace).
    rl.ok(&["rm", "dev"]);
    rl.ok(&["rmi", "bb2"]);
    rl.ok(&["gc"]);
    assert!(!rl.root().join("envs/dev").exists());
    let layers = fs::read_dir(rl.root().join("layers")).unwrap().count();
    assert_eq!(layers, 1, "only bb's layer is left after rmi + gc");
}

#[test]
fn rootless_build_runs_a_recipe() {
    let Some(rl) = Rootless::new("rootless_build_runs_a_recipe", USER) else {
        return;
    };
    rl.import_busybox();
    let recipe = rl.scratch().join("recipe.yaml");
    fs::write(
        &recipe,
        "version: 1\nname: bbapp\nfrom: bb\nsteps:\n  - run: |\n      echo built > /etc/built\n      mkdir -p /srv/data && chown 1000:1000 /srv/data\n",
    )
    .unwrap();
    sh_ok(&["chown", &format!("{}:", rl.user), recipe.to_str().unwrap()]);
    assert_eq!(rl.ok(&["build", "recipe.yaml"]).trim(), "bbapp");
    let seen = rl.ok(&[
        "run",
        "--rm",
        "--from",
        "bbapp",
        "--",
        "sh",
        "-c",
        "cat /etc/built; stat -c %u /srv/data",
    ]);
    assert_eq!(seen, "built\n1000\n");
    // The second build is cached.
    let out = rl.out(&["--progress", "plain", "build", "recipe.yaml"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cached"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Start (bytes) of the first GPT partition of a disk image file.
fn first_partition_offset(disk: &Path) -> u64 {
    let bytes = fs::read(disk).expect("read disk");
    assert_eq!(&bytes[512..520], b"EFI PART", "GPT header");
    let entries_lba = u64::from_le_bytes(bytes[512 + 72..512 + 80].try_into().unwrap());
    let entry = (entries_lba * 512) as usize;
    let first_lba = u64::from_le_bytes(bytes[entry + 32..entry + 40].try_into().unwrap());
    first_lba * 512
}

#[test]
fn rootless_export_tar_raw_qcow2_keep_owners() {
    let name = "rootless_export_tar_raw_qcow2_keep_owners";
    let Some(rl) = Rootless::new(name, USER) else {
        return;
    };
    if !require_tool(name, "mkfs.ext4")
        || !require_tool(name, "qemu-img")
        || !require_tool(name, "debugfs")
    {
        return;
    }
    rl.import_busybox();
    rl.ok(&["create", "--from", "bb", "dev"]);
    rl.ok(&[
        "run",
        "dev",
        "--",
        "sh",
        "-c",
        "cp /bin/busybox /bin/suid-bb && chmod 4755 /bin/suid-bb",
    ]);
    rl.ok(&["commit", "dev", "bb2"]);

    // tar: owners and modes as inside.
    rl.ok(&["export", "bb2", "-o", "out.tar"]);
    let mut seen = std::collections::BTreeMap::new();
    let file = fs::File::open(rl.scratch().join("out.tar")).expect("tar written");
    for e in tar::Archive::new(file).entries().unwrap() {
        let e = e.unwrap();
        let path = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let h = e.header();
        seen.insert(path, (h.uid().unwrap(), h.mode().unwrap()));
    }
    assert_eq!(seen["home/alice"].0, 1000, "{seen:?}");
    assert_eq!(seen["bin/busybox"].0, 0);
    assert_eq!(seen["bin/suid-bb"], (0, 0o4755));

    // raw: a GPT disk whose ext4 root keeps uid 1000 and the setuid bit (read back with
    // debugfs, no mount, no loop device).
    rl.ok(&["export", "bb2", "-o", "out.raw", "--size", "64M"]);
    let raw = rl.scratch().join("out.raw");
    assert_eq!(
        fs::metadata(&raw).unwrap().uid(),
        rl.uid,
        "output is the user's"
    );
    let offset = first_partition_offset(&raw);
    let stat = |p: &str| {
        let out = sh(&[
            "debugfs",
            "-R",
            &format!("stat {p}"),
            &format!("{}?offset={offset}", raw.display()),
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let alice = stat("/home/alice");
    assert!(alice.contains("User:  1000"), "{alice}");
    let suid = stat("/bin/suid-bb");
    assert!(
        suid.contains("Mode:  04755") && suid.contains("User:     0"),
        "{suid}"
    );

    // qcow2 through qemu-img.
    rl.ok(&["export", "bb2", "-o", "out.qcow2", "--size", "64M"]);
    let info = sh(&[
        "qemu-img",
        "info",
        "--output=json",
        rl.scratch().join("out.qcow2").to_str().unwrap(),
    ]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("qemu-img json");
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], 64 * 1024 * 1024);

    // A single-layer image (a read-only bind, not an overlay), read back by joot's own
    // disk-image import without a mount.
    rl.ok(&["export", "bb", "-o", "single.vmdk", "--size", "64M"]);
    rl.ok(&["export", "bb", "-o", "single.raw", "--size", "64M"]);
    rl.ok(&["import", "single.raw", "--name", "back"]);
    assert_eq!(
        rl.ok(&[
            "run",
            "--rm",
            "--from",
            "back",
            "--",
            "stat",
            "-c",
            "%u",
            "/home/alice"
        ]),
        "1000\n"
    );
    rl.ok(&["rm", "dev"]);
}

#[test]
fn rootless_without_range_maps_one_uid_and_says_so() {
    let Some(rl) = Rootless::new("rootless_without_range_maps_one_uid_and_says_so", NOSUB) else {
        return;
    };
    let out = rl.import_busybox();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no subordinate id range") && err.contains("become yours"),
        "{err}"
    );
    // Ownership is lost at import: alice's home is the user's (root inside).
    assert_eq!(layer_owner(&rl.root(), "home/alice"), rl.uid);
    let out = rl.out(&[
        "run",
        "--rm",
        "--from",
        "bb",
        "--",
        "sh",
        "-c",
        "cat /proc/self/uid_map; stat -c %u /home/alice; chown 1000 /tmp && echo chowned",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", &rl.uid.to_string(), "1"], "{stdout}");
    assert_eq!(lines[1], ["0"], "{stdout}");
    assert_eq!(
        lines.len(),
        2,
        "chown to an unmapped uid must fail: {stdout}"
    );
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chown to other users fails"), "{err}");
}

#[test]
fn rootless_bind_user_is_the_user_inside() {
    let Some(rl) = Rootless::new("rootless_bind_user_is_the_user_inside", USER) else {
        return;
    };
    rl.import_busybox();
    let home = PathBuf::from(format!("/home/{USER}"));
    let probe = format!("joot-bind-user-{}", std::process::id());
    let seen = rl.ok(&[
        "run",
        "--rm",
        "--bind-user",
        "--from",
        "bb",
        "--",
        "sh",
        "-c",
        &format!(
            "id -un; id -u; id -g; id -gn; echo $HOME; pwd; stat -c %u /home/alice; \
             touch \"$HOME/{probe}\"; grep '^{USER}:' /etc/passwd | cut -d: -f3,6"
        ),
    ]);
    let host_probe = home.join(&probe);
    let probe_md = fs::symlink_metadata(&host_probe);
    let _ = fs::remove_file(&host_probe);
    let lines: Vec<&str> = seen.lines().collect();
    let gid = gid_of(USER);
    assert_eq!(
        lines,
        [
            USER,
            &rl.uid.to_string(),
            &gid.to_string(),
            USER,
            home.to_str().unwrap(),
            home.to_str().unwrap(),
            "1000",
            &format!("{}:{}", rl.uid, home.display()),
        ],
        "{seen}"
    );
    let md = probe_md.expect("file created in the bound home exists on the host");
    assert_eq!((md.uid(), md.gid()), (rl.uid, gid));

    // A persistent env keeps its own /etc/passwd: the entry is generated per run.
    rl.ok(&["create", "--from", "bb", "--bind-user", "dev"]);
    assert_eq!(rl.ok(&["run", "dev", "--", "id", "-un"]).trim(), USER);
    assert!(!rl.root().join("envs/dev/upper/etc/passwd").exists());
    rl.ok(&["rm", "dev"]);
}

#[test]
fn rootless_from_host_is_copy_on_write() {
    let Some(rl) = Rootless::new("rootless_from_host_is_copy_on_write", USER) else {
        return;
    };
    let probe = format!("joot-rl-host-{}", std::process::id());
    let seen = rl.ok(&[
        "run",
        "--rm",
        "--from",
        "host",
        "--",
        "sh",
        "-c",
        &format!(
            "echo written > /etc/{probe} && cat /etc/{probe} && test -x /usr/bin/env && echo usr"
        ),
    ]);
    assert_eq!(seen, "written\nusr\n");
    assert!(
        !Path::new("/etc").join(&probe).exists(),
        "the host is untouched"
    );

    rl.ok(&["create", "--from", "host", "hostenv"]);
    rl.ok(&[
        "run",
        "hostenv",
        "--",
        "sh",
        "-c",
        &format!("echo kept > /etc/{probe}"),
    ]);
    assert_eq!(
        rl.ok(&["run", "hostenv", "--", "cat", &format!("/etc/{probe}")]),
        "kept\n"
    );
    assert!(
        !Path::new("/etc").join(&probe).exists(),
        "the host is untouched"
    );
    let upper_file = rl.root().join("envs/hostenv/upper/etc").join(&probe);
    assert_eq!(fs::symlink_metadata(upper_file).unwrap().uid(), rl.uid);
    rl.ok(&["rm", "hostenv"]);
}

#[test]
fn rootless_doctor_says_what_is_missing() {
    let Some(nosub) = Rootless::new("rootless_doctor_says_what_is_missing", NOSUB) else {
        return;
    };
    let out = nosub.out(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("no range for {NOSUB} in /etc/subuid")),
        "{text}"
    );
    assert!(text.contains("usermod --add-subuids"), "{text}");
    assert!(text.contains("rootless overlayfs"), "{text}");
    let rl = Rootless::new("rootless_doctor_says_what_is_missing_rl", USER).unwrap();
    let text = rl.ok(&["doctor"]);
    assert!(text.contains("/etc/subuid: "), "{text}");
    assert!(text.contains("newuidmap and newgidmap can map"), "{text}");
}

/// Copies the `debs` directories of the shared Debian store's cache into `store` (same relative
/// paths), so the rootless bootstrap downloads nothing the shared one already has.
fn seed_debs(from: &Path, store: &Path) {
    let cache = from.join("cache");
    let mut stack = vec![cache.clone()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if !p.is_dir() {
                continue;
            }
            if p.file_name().is_some_and(|n| n == "debs") {
                let dest = store.join("cache").join(p.strip_prefix(&cache).unwrap());
                fs::create_dir_all(dest.parent().unwrap()).unwrap();
                sh_ok(&["cp", "-a", p.to_str().unwrap(), dest.to_str().unwrap()]);
            } else {
                stack.push(p);
            }
        }
    }
}

#[test]
fn rootless_bootstrap_debian() {
    let name = "rootless_bootstrap_debian";
    let Some(rl) = Rootless::new(name, USER) else {
        return;
    };
    if !require_tool(name, "mmdebstrap") {
        return;
    }
    rl.ok(&["images"]);
    if let Some(shared) = shared_debian(name) {
        seed_debs(&shared.store_root, &rl.root());
        sh_ok(&[
            "chown",
            "-R",
            &format!("{}:", rl.user),
            rl.root().to_str().unwrap(),
        ]);
    }
    rl.ok(&["bootstrap", "debian:bookworm", "--name", "deb"]);
    let seen = rl.ok(&[
        "run",
        "--rm",
        "--from",
        "deb",
        "--",
        "sh",
        "-c",
        "cat /etc/debian_version; stat -c %G /etc/shadow; stat -c %a /usr/bin/passwd",
    ]);
    let lines: Vec<&str> = seen.lines().collect();
    assert!(lines[0].starts_with("12."), "{seen}");
    assert_eq!(lines[1], "shadow", "group ownership kept: {seen}");
    assert_eq!(lines[2], "4755", "{seen}");
    // On disk the shadow group (42) is in the range.
    let gid = fs::symlink_metadata(
        fs::read_dir(rl.root().join("layers"))
            .unwrap()
            .flatten()
            .map(|e| e.path().join("root/etc/shadow"))
            .find(|p| p.exists())
            .expect("a layer with /etc/shadow"),
    )
    .unwrap()
    .gid();
    let (gstart, _) = first_range("/etc/subgid", USER).expect("subgid range");
    assert_eq!(gid, gstart + 41);
}

#[test]
fn rootless_push_pull_keeps_owners() {
    let name = "rootless_push_pull_keeps_owners";
    let Some(a) = Rootless::new(name, USER) else {
        return;
    };
    if !require_tool(name, "docker-registry") {
        return;
    }
    let (start, _) = first_range("/etc/subuid", USER).expect("subuid range");
    a.import_busybox();
    let reg = registry::Registry::start(&a.scratch().join("registry"), None);
    let reference = format!("{}/rootless/bb:1", reg.addr);
    let digest = a.ok(&["push", "bb", &reference, "--insecure"]);
    assert!(digest.trim().starts_with("sha256:"), "{digest}");
    let b = Rootless::new(&format!("{name}-b"), USER).unwrap();
    assert_eq!(
        b.ok(&["pull", &reference, "--insecure", "--name", "pulled"])
            .trim(),
        "pulled"
    );
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--from",
            "pulled",
            "--",
            "stat",
            "-c",
            "%u",
            "/home/alice"
        ]),
        "1000\n"
    );
    assert_eq!(layer_owner(&b.root(), "home/alice"), start + 999);
    assert_eq!(layer_owner(&b.root(), "bin/busybox"), b.uid);

    // `run --from REF` pulls on first use, with the owners too.
    let c = Rootless::new(&format!("{name}-c"), USER).unwrap();
    let config = c.scratch().join("joot.toml");
    fs::write(
        &config,
        format!("[registry]\ninsecure = [\"{}\"]\n", reg.addr),
    )
    .unwrap();
    sh_ok(&["chown", &format!("{USER}:"), config.to_str().unwrap()]);
    let out = c
        .cmd()
        .env("JOOT_CONFIG", &config)
        .args([
            "run", "--rm", "--from", &reference, "--", "stat", "-c", "%u",
        ])
        .arg("/home/alice")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1000\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(layer_owner(&c.root(), "home/alice"), start + 999);
}

#[test]
fn rootless_bootable_export_boots() {
    let name = "rootless_bootable_export_boots";
    let Some(rl) = Rootless::new(name, USER) else {
        return;
    };
    for tool in ["qemu-system-x86_64", "grub-mkimage", "mkfs.vfat", "mcopy"] {
        if !require_tool(name, tool) {
            return;
        }
    }
    let Some(deb) = shared_debian(name) else {
        return;
    };
    // The shared Debian image (with a kernel) reaches the user's store as a tarball, exported
    // by root and imported by the user (owners kept through the user namespace).
    let tar = rl.scratch().join("deb.tar");
    deb.cmd()
        .args(["export", &deb.image, "-o"])
        .arg(&tar)
        .assert()
        .success();
    sh_ok(&["chown", &format!("{USER}:"), tar.to_str().unwrap()]);
    rl.ok(&["import", "deb.tar", "--name", "deb"]);
    fs::remove_file(&tar).unwrap();
    assert_eq!(
        rl.ok(&[
            "run",
            "--rm",
            "--from",
            "deb",
            "--",
            "stat",
            "-c",
            "%G",
            "/etc/shadow"
        ]),
        "shadow\n"
    );
    rl.ok(&["export", "deb", "-o", "deb.qcow2", "--bootable"]);
    let out = rl.out(&[
        "boot",
        "deb.qcow2",
        "--expect",
        "login:",
        "--timeout",
        "400",
    ]);
    assert!(
        out.status.success(),
        "rootless boot failed: {}\n--- console tail ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout[out.stdout.len().saturating_sub(3000)..])
    );
}
