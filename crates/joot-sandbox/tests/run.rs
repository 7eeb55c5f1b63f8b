//! Runs real sandboxes as root on a busybox fixture: exit codes, PID 1, isolation of /proc,
//! /sys and /dev, capabilities, fd hygiene, binds resolved in the root, networking, cleanup.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Fixture, assert_nothing_mounted_under};
use joot_sandbox::{Bind, CapMode, Error, Net, Upper, run};

fn root(name: &str) -> bool {
    joot_test_support::require_root(name) && common::have_busybox(name)
}

#[test]
fn exit_codes_are_the_commands() {
    if !root("exit_codes_are_the_commands") {
        return;
    }
    let f = Fixture::new("exit");
    assert_eq!(run(&f.sh("true")).unwrap(), 0);
    assert_eq!(run(&f.sh("exit 3")).unwrap(), 3);
    assert_eq!(run(&f.sh("kill -9 $$")).unwrap(), 128 + 9);
    assert_nothing_mounted_under(f.path());
}

#[test]
fn exec_failures_are_127_and_126_with_a_clear_message() {
    if !root("exec_failures_are_127_and_126_with_a_clear_message") {
        return;
    }
    let f = Fixture::new("execfail");
    let mut spec = f.sh("");
    spec.argv = vec!["no-such-command".into()];
    let err = run(&spec).unwrap_err();
    assert_eq!(err.exit_status(), 127, "{err}");
    assert!(err.to_string().contains("no-such-command"), "{err}");

    std::fs::write(f.rootfs().join("bin/notexec"), "#!/bin/sh\ntrue\n").unwrap();
    std::fs::set_permissions(
        f.rootfs().join("bin/notexec"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    spec.argv = vec!["/bin/notexec".into()];
    let err = run(&spec).unwrap_err();
    assert!(matches!(err, Error::Exec { status: 126, .. }), "{err:?}");
    assert!(err.to_string().contains("cannot execute"), "{err}");
    assert_nothing_mounted_under(f.path());
}

#[test]
fn init_is_pid_1_and_the_command_pid_2() {
    if !root("init_is_pid_1_and_the_command_pid_2") {
        return;
    }
    let f = Fixture::new("pid");
    let code = run(&f.sh(
        "echo $$ > /out/pid; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' ' > /out/pids",
    ))
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(f.read("pid").trim(), "2");
    assert!(f.read("pids").starts_with("1 2 "), "{}", f.read("pids"));
}

#[test]
fn hostname_hosts_and_resolv_conf_copy() {
    if !root("hostname_hosts_and_resolv_conf_copy") {
        return;
    }
    let f = Fixture::new("hostname");
    let before = std::fs::read("/etc/resolv.conf").ok();
    let mut spec = f.sh(
        "hostname > /out/h; cat /etc/hostname > /out/eh; cat /etc/hosts > /out/hosts; \
         echo '# joot test' >> /etc/resolv.conf; echo $HOSTNAME $container > /out/env",
    );
    spec.hostname = "box1".into();
    assert_eq!(run(&spec).unwrap(), 0);
    assert_eq!(f.read("h").trim(), "box1");
    assert_eq!(f.read("eh").trim(), "box1");
    assert!(f.read("hosts").contains("box1"));
    assert_eq!(f.read("env").trim(), "box1 joot");
    // The run wrote to its copy, never to the host's file.
    assert_eq!(std::fs::read("/etc/resolv.conf").ok(), before);
}

#[test]
fn proc_is_masked_and_sys_read_only() {
    if !root("proc_is_masked_and_sys_read_only") {
        return;
    }
    let f = Fixture::new("proc");
    let code = run(&f.sh(
        "wc -c < /proc/keys > /out/keys; wc -c < /proc/timer_list > /out/timer_list; ls /proc/acpi | wc -l > /out/acpi; \
         (echo h > /proc/sysrq-trigger) 2>/dev/null && echo writable > /out/sysrq || echo denied > /out/sysrq; \
         (touch /sys/joot) 2>/dev/null && echo writable > /out/sys || echo denied > /out/sys; \
         (echo x > /proc/sys/kernel/hostname) 2>/dev/null && echo writable > /out/procsys || echo denied > /out/procsys; \
         (cat /proc/1/exe > /dev/null) 2>/dev/null && echo readable > /out/exe || echo denied > /out/exe; \
         ls /dev | tr '\\n' ' ' > /out/dev",
    ))
    .unwrap();
    assert_eq!(code, 0);
    // Masked files read as empty (/dev/null), masked directories as empty.
    assert_eq!(f.read("keys").trim(), "0");
    assert_eq!(f.read("timer_list").trim(), "0");
    assert_eq!(f.read("acpi").trim(), "0");
    assert_eq!(f.read("sysrq").trim(), "denied");
    assert_eq!(f.read("sys").trim(), "denied");
    assert_eq!(f.read("procsys").trim(), "denied");
    // Non-dumpable init: the joot binary is not reachable through /proc/1/exe.
    assert_eq!(f.read("exe").trim(), "denied");
    let dev = f.read("dev");
    for d in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm",
    ] {
        assert!(dev.split(' ').any(|x| x == d), "/dev lacks {d}: {dev}");
    }
    assert!(!dev.contains("sda") && !dev.contains("kmsg"), "{dev}");
}

#[test]
fn mount_fails_with_default_caps_and_works_privileged() {
    if !root("mount_fails_with_default_caps_and_works_privileged") {
        return;
    }
    let f = Fixture::new("caps");
    let script = "mkdir -p /m && mount -t tmpfs none /m";
    assert_ne!(run(&f.sh(script)).unwrap(), 0);
    let mut spec = f.sh(script);
    spec.caps = CapMode::All;
    assert_eq!(run(&spec).unwrap(), 0);
    // no_new_privs is off by default and on when asked.
    let nnp = "grep -q '^NoNewPrivs:[[:space:]]*1' /proc/self/status";
    assert_eq!(run(&f.sh(nnp)).unwrap(), 1);
    let mut spec = f.sh(nnp);
    spec.no_new_privs = true;
    assert_eq!(run(&spec).unwrap(), 0);
    assert_nothing_mounted_under(f.path());
}

#[test]
fn no_fd_leaks_into_the_sandbox() {
    if !root("no_fd_leaks_into_the_sandbox") {
        return;
    }
    let f = Fixture::new("fds");
    // Descriptors without close-on-exec, numbered above 3.
    let mut leaked = Vec::new();
    while leaked.last().is_none_or(|fd: &std::os::fd::OwnedFd| {
        use std::os::fd::AsRawFd;
        fd.as_raw_fd() < 20
    }) {
        leaked.push(rustix::io::dup(rustix::stdio::stdin()).unwrap());
    }
    let code = run(&f.sh("exec ls /proc/self/fd > /out/fds")).unwrap();
    assert_eq!(code, 0);
    let fds: Vec<u32> = f
        .read("fds")
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    // 0, 1, 2 and the directory ls is reading.
    assert!(fds.iter().all(|&fd| fd <= 3), "leaked fds: {fds:?}");
    drop(leaked);
}

#[test]
fn bind_targets_resolve_inside_the_root() {
    if !root("bind_targets_resolve_inside_the_root") {
        return;
    }
    let f = Fixture::new("bindroot");
    // The image has /data -> /etc (absolute) and /data2 -> ../../../../etc (relative escape).
    std::os::unix::fs::symlink("/etc", f.rootfs().join("data")).unwrap();
    std::os::unix::fs::symlink("../../../../etc", f.rootfs().join("data2")).unwrap();
    let src = f.path().join("bindsrc");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("marker"), "from-host-dir\n").unwrap();
    for dst in ["/data", "/data2"] {
        let mut spec = f.sh("cat /etc/marker > /out/marker; test -e /etc/passwd && echo has-passwd > /out/passwd || echo covered > /out/passwd");
        spec.binds.push(Bind {
            src: src.clone(),
            dst: dst.into(),
            ro: true,
            recursive: false,
        });
        assert_eq!(run(&spec).unwrap(), 0, "{dst}");
        // The bind covered the IMAGE's /etc, nothing of the host.
        assert_eq!(f.read("marker").trim(), "from-host-dir");
        assert_eq!(f.read("passwd").trim(), "covered");
        assert!(!std::path::Path::new("/etc/marker").exists());
    }
    assert_nothing_mounted_under(f.path());
}

#[test]
fn missing_bind_source_is_an_error_before_anything_starts() {
    if !common::have_busybox("missing_bind_source_is_an_error_before_anything_starts") {
        return;
    }
    let f = Fixture::new("bindmissing");
    let mut spec = f.sh("true");
    spec.binds.push(Bind {
        src: f.path().join("nope"),
        dst: "/nope".into(),
        ro: false,
        recursive: false,
    });
    let err = run(&spec).unwrap_err();
    assert!(matches!(err, Error::BindSource { .. }), "{err:?}");
    assert!(err.to_string().contains("nope"));
}

#[test]
fn net_none_has_only_loopback_up() {
    if !root("net_none_has_only_loopback_up") {
        return;
    }
    let f = Fixture::new("netnone");
    let mut spec = f.sh("ip -o link > /out/links; ls /sys/class/net > /out/sysnet");
    spec.net = Net::None;
    assert_eq!(run(&spec).unwrap(), 0);
    let links = f.read("links");
    let lines: Vec<&str> = links.lines().collect();
    assert_eq!(lines.len(), 1, "{links}");
    assert!(
        lines[0].contains(": lo:") && lines[0].contains("UP"),
        "{links}"
    );
    assert_eq!(f.read("sysnet").trim(), "lo");
}

#[test]
fn user_workdir_and_env() {
    if !root("user_workdir_and_env") {
        return;
    }
    let f = Fixture::new("user");
    let mut spec = f.sh("id -u > /out/uid; id -G > /out/groups; pwd > /out/pwd; echo $HOME $FOO > /out/env; grep ^CapEff /proc/self/status > /out/caps");
    std::fs::set_permissions(f.out(), std::fs::Permissions::from_mode(0o777)).unwrap();
    spec.user = Some("alice".into());
    spec.cwd = Some("/home/alice/work".into());
    spec.env.push(("FOO".into(), "bar".into()));
    assert_eq!(run(&spec).unwrap(), 0);
    assert_eq!(f.read("uid").trim(), "1000");
    assert_eq!(f.read("groups").trim(), "1000 100");
    assert_eq!(f.read("pwd").trim(), "/home/alice/work");
    assert_eq!(f.read("env").trim(), "/home/alice bar");
    assert!(
        f.read("caps").trim().ends_with("0000000000000000"),
        "{}",
        f.read("caps")
    );
}

#[test]
fn env_upper_persists_and_image_is_untouched() {
    if !root("env_upper_persists_and_image_is_untouched") {
        return;
    }
    let f = Fixture::new("upper");
    let upper = f.path().join("upper");
    let work = f.path().join("work");
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let with_upper = |script: &str| {
        let mut s = f.sh(script);
        s.rootfs.upper = Upper::Dir {
            upper: upper.clone(),
            work: work.clone(),
            volatile: false,
        };
        s
    };
    assert_eq!(
        run(&with_upper("echo kept > /root/state; rm /etc/os-release")).unwrap(),
        0
    );
    assert_eq!(
        run(&with_upper(
            "cat /root/state > /out/state; test ! -e /etc/os-release"
        ))
        .unwrap(),
        0
    );
    assert_eq!(f.read("state").trim(), "kept");
    assert!(f.rootfs().join("etc/os-release").exists());
    assert!(!f.rootfs().join("root/state").exists());
    // A --rm run (tmpfs upper) leaves nothing.
    assert_eq!(run(&f.sh("echo gone > /root/tmp-state")).unwrap(), 0);
    assert!(!f.rootfs().join("root/tmp-state").exists());
    assert_nothing_mounted_under(f.path());
}

/// Finds host pids whose command line is exactly `argv`.
fn pids_with_cmdline(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[test]
fn sigkill_of_joot_kills_everything_inside() {
    if !root("sigkill_of_joot_kills_everything_inside") {
        return;
    }
    let f = Fixture::new("sigkill");
    // A unique argv to find the contained processes from the host.
    let marker = ["sleep", "86313"];
    let spec = f.sh("sleep 86313 & sleep 86313; wait");
    // The "joot" process: a plain child of the test that runs the sandbox.
    let joot =
        joot_sys::process::spawn_in_namespaces(0, move || run(&spec).unwrap_or(125)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pids_with_cmdline(&marker).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "sandbox did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let joot_pid = rustix::process::Pid::from_raw(joot).unwrap();
    rustix::process::kill_process(joot_pid, rustix::process::Signal::KILL).unwrap();
    rustix::process::waitpid(Some(joot_pid), rustix::process::WaitOptions::empty()).unwrap();
    while !pids_with_cmdline(&marker).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "contained processes survived the SIGKILL of joot"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_nothing_mounted_under(f.path());
}

#[test]
fn with_rootfs_runs_a_host_tool_over_the_merged_tree() {
    if !root("with_rootfs_runs_a_host_tool_over_the_merged_tree") {
        return;
    }
    let f = Fixture::new("withrootfs");
    let top = f.path().join("top");
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::write(top.join("etc/os-release"), "ID=top\n").unwrap();
    let out = joot_sandbox::with_rootfs(&[f.rootfs(), top.clone()], |merged| {
        let mut c = std::process::Command::new("/bin/sh");
        c.arg("-c").arg(format!(
            "cat {m}/etc/os-release; test -x {m}/bin/busybox && echo busybox; touch {m}/x 2>/dev/null || echo read-only",
            m = merged.display()
        ));
        c
    })
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "ID=top\nbusybox\nread-only\n");
    // A failing tool carries its argv, status and stderr.
    let err = joot_sandbox::with_rootfs(&[f.rootfs()], |merged| {
        let mut c = std::process::Command::new("/bin/sh");
        c.arg("-c").arg(format!("ls {}/nope", merged.display()));
        c
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("exit status") && err.contains("nope"), "{err}");
    assert_nothing_mounted_under(f.path());
    assert_nothing_mounted_under(&std::env::temp_dir().join("joot-rootfs-"));
}

#[test]
fn tty_runs_get_a_controlling_terminal_in_a_new_session() {
    if !root("tty_runs_get_a_controlling_terminal_in_a_new_session") {
        return;
    }
    let f = Fixture::new("tty");
    // Field 6 of /proc/self/stat is the session id, field 7 the controlling tty.
    let mut spec = f.sh("test -t 0 && test -t 1 && echo tty > /out/t; \
         read -r _ _ _ _ _ sid ttynr _ < /proc/self/stat; echo $$ $sid $ttynr > /out/stat; \
         test -e /dev/console && echo console > /out/c");
    spec.tty = true;
    assert_eq!(run(&spec).unwrap(), 0);
    assert_eq!(f.read("t").trim(), "tty");
    let stat = f.read("stat");
    let v: Vec<&str> = stat.split_whitespace().collect();
    // The command leads its own session and has a controlling terminal.
    assert_eq!(v[0], v[1], "{stat}");
    assert_ne!(v[2], "0", "{stat}");
    assert_eq!(f.read("c").trim(), "console");
}

#[test]
fn rootless_run_maps_root_to_the_user() {
    if !root("rootless_run_maps_root_to_the_user") {
        return;
    }
    let f = Fixture::new("rootless");
    // The fixture and dirs belong to the unprivileged user, as in a rootless store.
    let nobody = 65534;
    let status = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(f.path())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = f.out();
    let rootfs = f.rootfs();
    let mnt = f.path().join("mnt");
    let child = joot_sys::process::spawn_in_namespaces(0, move || {
        if joot_sys::ids::switch_ids(nobody, nobody, Some(&[])).is_err() {
            return 90;
        }
        // Changing uid made this process non-dumpable; a fresh `joot` exec would be dumpable
        // (its /proc files must be the user's for the uid_map write).
        if rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
            .is_err()
        {
            return 91;
        }
        let mut spec = joot_sandbox::RunSpec::new(
            vec![rootfs],
            mnt,
            vec![
                "/bin/sh".into(),
                "-c".into(),
                "id -u > /out/uid; cat /proc/self/uid_map > /out/map; echo hi > /out/file; \
                 touch /etc/new-file && echo writable > /out/etc; hostname > /out/h"
                    .into(),
            ],
        );
        spec.idmap = Some(joot_sandbox::IdMap::build(nobody, nobody, None));
        spec.binds.push(Bind {
            src: out,
            dst: "/out".into(),
            ro: false,
            recursive: false,
        });
        run(&spec).unwrap_or_else(|e| 100 + e.exit_status() % 100)
    })
    .unwrap();
    let (_, st) = rustix::process::waitpid(
        rustix::process::Pid::from_raw(child),
        rustix::process::WaitOptions::empty(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(st.exit_status(), Some(0), "rootless run failed");
    assert_eq!(f.read("uid").trim(), "0");
    let map: Vec<String> = f.read("map").split_whitespace().map(String::from).collect();
    assert_eq!(map, ["0", "65534", "1"]);
    assert_eq!(f.read("etc").trim(), "writable");
    assert_eq!(f.read("h").trim(), "joot");
    // Files the contained root creates belong to the user on the host.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(f.out().join("file")).unwrap().uid(),
        nobody
    );
    assert_nothing_mounted_under(f.path());
}

#[test]
fn init_reaps_orphaned_zombies() {
    if !root("init_reaps_orphaned_zombies") {
        return;
    }
    let f = Fixture::new("zombies");
    // `sh -c 'true &'` exits at once and leaves `true` to init, which must reap it.
    let code = run(&f.sh("for i in 1 2 3 4 5; do sh -c 'true &'; done; \
         for i in $(seq 200); do \
           z=$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$3 == \"Z\"' | wc -l); \
           [ \"$z\" = 0 ] && { echo none > /out/z; break; }; sleep 0.05; \
         done"))
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(f.read("z").trim(), "none");
}

#[test]
fn sigterm_to_joot_reaches_the_command() {
    if !root("sigterm_to_joot_reaches_the_command") {
        return;
    }
    let f = Fixture::new("sigterm");
    let spec = f.sh(
        "trap 'echo got-term > /out/sig; exit 7' TERM; echo ready > /out/ready; \
         while :; do sleep 0.05; done",
    );
    let joot =
        joot_sys::process::spawn_in_namespaces(0, move || run(&spec).unwrap_or(125)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !f.out().join("ready").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "sandbox did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let pid = rustix::process::Pid::from_raw(joot).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let (_, st) = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
        .unwrap()
        .unwrap();
    // joot exits with the command's status, after the command handled the signal.
    assert_eq!(st.exit_status(), Some(7));
    assert_eq!(f.read("sig").trim(), "got-term");
}

#[test]
fn many_layers_stack_in_order() {
    if !root("many_layers_stack_in_order") {
        return;
    }
    let f = Fixture::new("layers");
    let mut lowers = vec![f.rootfs()];
    for i in 0..40 {
        let l = f.path().join(format!("layer{i}"));
        std::fs::create_dir_all(l.join("layers")).unwrap();
        std::fs::write(l.join(format!("layers/{i}")), "").unwrap();
        // The topmost layer that has `top` wins.
        std::fs::write(l.join("layers/top"), format!("{i}\n")).unwrap();
        lowers.push(l);
    }
    let mut spec = f.sh("ls /layers | wc -l > /out/n; cat /layers/top > /out/top");
    spec.rootfs.lowers = lowers;
    assert_eq!(run(&spec).unwrap(), 0);
    assert_eq!(f.read("n").trim(), "41");
    assert_eq!(f.read("top").trim(), "39");
}

#[test]
fn rootless_with_rootfs_needs_no_privilege() {
    if !root("rootless_with_rootfs_needs_no_privilege") {
        return;
    }
    let f = Fixture::new("rootlesstool");
    let nobody = 65534;
    let status = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(f.path())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let rootfs = f.rootfs();
    let out = f.out().join("listing");
    let child = joot_sys::process::spawn_in_namespaces(0, move || {
        if joot_sys::ids::switch_ids(nobody, nobody, Some(&[])).is_err()
            || rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
                .is_err()
        {
            return 90;
        }
        match joot_sandbox::with_rootfs(&[rootfs], |merged| {
            let mut c = std::process::Command::new("/bin/sh");
            c.arg("-c")
                .arg(format!("ls {}/etc > {}", merged.display(), out.display()));
            c
        }) {
            Ok(_) => 0,
            Err(_) => 1,
        }
    })
    .unwrap();
    let (_, st) = rustix::process::waitpid(
        rustix::process::Pid::from_raw(child),
        rustix::process::WaitOptions::empty(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(st.exit_status(), Some(0));
    assert!(
        f.read("listing").contains("passwd"),
        "{}",
        f.read("listing")
    );
    assert_nothing_mounted_under(f.path());
}

#[test]
fn binds_read_only_files_and_missing_targets() {
    if !root("binds_read_only_files_and_missing_targets") {
        return;
    }
    let f = Fixture::new("binds");
    let ro_dir = f.path().join("ro");
    std::fs::create_dir(&ro_dir).unwrap();
    std::fs::write(ro_dir.join("data"), "ro\n").unwrap();
    let file = f.path().join("single.conf");
    std::fs::write(&file, "single\n").unwrap();
    let mut spec = f.sh(
        "cat /srv/ro/data > /out/ro; (echo x > /srv/ro/data) 2>/dev/null && echo writable > /out/rw || echo denied > /out/rw; \
         cat /etc/app/single.conf > /out/file; echo y >> /etc/app/single.conf",
    );
    // Both targets are missing in the image: a directory and a file (with its parent) are
    // created in the root.
    spec.binds.push(Bind {
        src: ro_dir,
        dst: "/srv/ro".into(),
        ro: true,
        recursive: true,
    });
    spec.binds.push(Bind {
        src: file.clone(),
        dst: "/etc/app/single.conf".into(),
        ro: false,
        recursive: false,
    });
    assert_eq!(run(&spec).unwrap(), 0);
    assert_eq!(f.read("ro").trim(), "ro");
    assert_eq!(f.read("rw").trim(), "denied");
    assert_eq!(f.read("file").trim(), "single");
    // The writable file bind wrote through to the host file.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "single\ny\n");
    // The image itself did not get the created targets (the --rm upper is gone).
    assert!(!f.rootfs().join("srv/ro").exists());
    assert_nothing_mounted_under(f.path());
}

#[test]
fn device_nodes_made_or_shipped_in_the_root_cannot_be_opened() {
    if !root("device_nodes_made_or_shipped_in_the_root_cannot_be_opened") {
        return;
    }
    let f = Fixture::new("nodev");
    // /dev/null of the run's own /dev works; a node for the same device elsewhere does not.
    let code = run(&f.sh(
        "echo ok > /dev/null || exit 3; mknod /x c 1 3 || exit 4; if echo x > /x; then exit 5; fi; exit 0",
    ))
    .unwrap();
    assert_eq!(
        code, 0,
        "3: /dev/null broken, 4: mknod refused, 5: a node in the root opened"
    );
    assert_nothing_mounted_under(f.path());
}

#[test]
fn leave_teardown_reports_statuses_errors_and_still_kills_leftovers() {
    if !root("leave_teardown_reports_statuses_errors_and_still_kills_leftovers") {
        return;
    }
    let f = Fixture::new("leave-teardown");
    let early = |script: &str| {
        let mut spec = f.sh(script);
        spec.leave_teardown = true;
        spec
    };
    assert_eq!(run(&early("true")).unwrap(), 0);
    assert_eq!(run(&early("exit 3")).unwrap(), 3);
    assert_eq!(run(&early("kill -9 $$")).unwrap(), 128 + 9);

    let mut spec = early("");
    spec.argv = vec!["no-such-command".into()];
    let err = run(&spec).unwrap_err();
    assert_eq!(err.exit_status(), 127, "{err}");

    // A setup failure (no status from init) is still reported as one.
    std::os::unix::fs::symlink("/nowhere/at/all", f.rootfs().join("dangling")).unwrap();
    let mut spec = early("true");
    spec.binds.push(Bind {
        src: f.out(),
        dst: "/dangling/x".into(),
        ro: false,
        recursive: false,
    });
    let err = run(&spec).unwrap_err();
    assert!(matches!(err, Error::Setup(_)), "{err:?}");

    // A process left running by the command is already dead when run() returns: none of the
    // image's processes may outlive the joot process (once nothing executes the joot binary,
    // it could be written through a /proc/PID/exe opened earlier).
    let code = run(&early(
        "(while :; do echo x >> /out/tick; sleep 0.02; done) & sleep 0.2; echo started > /out/bg",
    ))
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(f.read("bg").trim(), "started");
    let ticks = f.read("tick").len();
    assert!(ticks > 0);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        f.read("tick").len(),
        ticks,
        "a leftover process survived the run"
    );
    // The returned runs' inits are our zombies now: reap them before checking mounts.
    while let Ok(Some(_)) = rustix::process::wait(rustix::process::WaitOptions::NOHANG) {}
    assert_nothing_mounted_under(f.path());
}
