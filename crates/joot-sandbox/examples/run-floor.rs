//! Micro benchmark helper: `run-floor ROOTFS MOUNT_POINT [CMD...]` runs CMD (default `true`)
//! in a `--rm` style sandbox (tmpfs upper over ROOTFS) and exits with its status. Compare with
//! `hyperfine -N 'unshare --mount --pid --uts --ipc --fork true' 'run-floor ROOTFS MNT'`.
//! With `RUN_FLOOR_TTY=1` and no CMD it starts an interactive shell on a new pty.
//! With `RUN_FLOOR_UPPER=staging:DIR` the upper is instead a fresh `volatile` overlay
//! upper+work under DIR, removed after the run (the alternative `--rm` design).

use joot_sandbox::{RunSpec, Upper};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: run-floor ROOTFS MOUNT_POINT [CMD...]");
        std::process::exit(2);
    }
    let tty = std::env::var("RUN_FLOOR_TTY").is_ok_and(|v| v == "1");
    let mut argv: Vec<String> = args[2..].to_vec();
    if argv.is_empty() && !tty {
        argv.push("true".into());
    }
    let mut spec = RunSpec::new(vec![args[0].clone().into()], args[1].clone().into(), argv);
    spec.tty = tty;
    let mut staging = None;
    if let Ok(mode) = std::env::var("RUN_FLOOR_UPPER")
        && let Some(dir) = mode.strip_prefix("staging:")
    {
        let d = std::path::Path::new(dir).join(format!("run-{}", std::process::id()));
        for sub in ["upper", "work"] {
            std::fs::create_dir_all(d.join(sub)).expect("create staging dir");
        }
        spec.rootfs.upper = Upper::Dir {
            upper: d.join("upper"),
            work: d.join("work"),
            volatile: true,
        };
        staging = Some(d);
    }
    let result = joot_sandbox::run(&spec);
    if let Some(d) = staging {
        let _ = std::fs::remove_dir_all(d);
    }
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("run-floor: {e}");
            std::process::exit(e.exit_status());
        }
    }
}
