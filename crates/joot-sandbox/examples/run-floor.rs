//! Micro benchmark helper: `run-floor ROOTFS MOUNT_POINT [CMD...]` runs CMD (default `true`)
//! in a `--rm` style sandbox (tmpfs upper over ROOTFS) and exits with its status. Compare with
//! `hyperfine 'unshare --mount --pid --uts --ipc --fork true' 'run-floor ROOTFS MNT'`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: run-floor ROOTFS MOUNT_POINT [CMD...]");
        std::process::exit(2);
    }
    let mut argv: Vec<String> = args[2..].to_vec();
    if argv.is_empty() {
        argv.push("true".into());
    }
    let spec =
        joot_sandbox::RunSpec::new(vec![args[0].clone().into()], args[1].clone().into(), argv);
    match joot_sandbox::run(&spec) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("run-floor: {e}");
            std::process::exit(e.exit_status());
        }
    }
}
