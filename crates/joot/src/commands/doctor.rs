//! `joot doctor`: checks what joot needs from the kernel, the user's permissions and the host's
//! tools, and says how to fix what is missing. Essential checks failing make it exit 1; optional
//! ones (tools for one feature) only warn.

use std::path::Path;

use anyhow::Result;

use super::Ctx;

struct Check {
    name: &'static str,
    ok: bool,
    essential: bool,
    detail: String,
    fix: String,
}

/// External tools: (binary, Debian package, what it is for).
const TOOLS: &[(&str, &str, &str)] = &[
    ("mmdebstrap", "mmdebstrap", "Debian/Ubuntu bootstrap"),
    ("dnf", "dnf", "RPM-family bootstrap"),
    ("rpm", "rpm", "RPM-family bootstrap"),
    ("mkfs.ext4", "e2fsprogs", "disk image export"),
    ("mkfs.vfat", "dosfstools", "bootable export (ESP)"),
    ("mcopy", "mtools", "bootable export (ESP)"),
    ("grub-mkimage", "grub-pc-bin", "bootable export (BIOS)"),
    (
        "qemu-img",
        "qemu-utils",
        "qcow2/vmdk/vhd/vhdx export and import",
    ),
    ("qemu-system-x86_64", "qemu-system-x86", "joot boot"),
];

pub fn run(ctx: &Ctx) -> Result<i32> {
    let root = rustix::process::geteuid().is_root();
    let mut checks = vec![
        kernel_fs("overlay", "overlayfs", true),
        kernel_fs("tmpfs", "tmpfs", true),
        kernel_fs("proc", "procfs", true),
        userns(root),
        store_writable(&ctx.store_root),
    ];
    if !root {
        checks.push(subid("/etc/subuid"));
        checks.push(subid("/etc/subgid"));
        checks.push(uidmap_helpers());
        checks.push(userns_overlay());
    }
    checks.push(kvm());
    for (bin, pkg, why) in TOOLS {
        let found = which(bin);
        checks.push(Check {
            name: bin,
            ok: found.is_some(),
            essential: false,
            detail: found.unwrap_or_else(|| format!("missing (needed for {why})")),
            fix: format!("apt-get install {pkg}"),
        });
    }
    match &ctx.config_path {
        Some(p) => println!("{:>8}  {:<22} {}", "ok", "config", p.display()),
        None => println!(
            "{:>8}  {:<22} none ($JOOT_CONFIG, ~/.joot, /etc/joot.cfg)",
            "ok", "config"
        ),
    }
    let mut essential_missing = false;
    for c in &checks {
        let mark = if c.ok {
            "ok"
        } else if c.essential {
            "MISSING"
        } else {
            "warn"
        };
        println!("{mark:>8}  {:<22} {}", c.name, c.detail);
        if !c.ok {
            println!("{:>8}  {:<22} fix: {}", "", "", c.fix);
            essential_missing |= c.essential;
        }
    }
    Ok(if essential_missing { 1 } else { 0 })
}

fn which(bin: &str) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

fn kernel_fs(fs: &str, name: &'static str, essential: bool) -> Check {
    let list = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let ok = list
        .lines()
        .any(|l| l.split_whitespace().last() == Some(fs));
    Check {
        name,
        ok,
        essential,
        detail: if ok {
            "supported by the kernel".into()
        } else {
            format!("the kernel does not list '{fs}' in /proc/filesystems")
        },
        fix: format!("use a kernel with {fs} built in or loaded (modprobe {fs})"),
    }
}

fn userns(root: bool) -> Check {
    let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let clone = std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
        .map(|s| s.trim() != "0")
        .unwrap_or(true);
    let apparmor =
        std::fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
            .map(|s| s.trim() == "1")
            .unwrap_or(false);
    let ok = max > 0 && (root || (clone && !apparmor));
    let detail = if ok {
        format!("available (max_user_namespaces={max})")
    } else if max == 0 {
        "user.max_user_namespaces is 0".into()
    } else if !clone {
        "kernel.unprivileged_userns_clone is 0".into()
    } else {
        "kernel.apparmor_restrict_unprivileged_userns is 1".into()
    };
    Check {
        name: "user namespaces",
        ok,
        essential: !root,
        detail,
        fix: "sysctl -w user.max_user_namespaces=15000 kernel.unprivileged_userns_clone=1 \
              kernel.apparmor_restrict_unprivileged_userns=0"
            .into(),
    }
}

fn subid(file: &'static str) -> Check {
    let uid = rustix::process::getuid().as_raw();
    let user = joot_sandbox::idmap::user_name(uid)
        .unwrap_or_else(|| std::env::var("USER").unwrap_or_default());
    let uid = uid.to_string();
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let range = text.lines().find_map(|l| {
        let mut f = l.split(':');
        let who = f.next()?;
        let start = f.next()?;
        let count = f.next()?;
        (who == user || who == uid).then(|| format!("{start}+{count}"))
    });
    Check {
        name: if file.ends_with("uid") {
            "subordinate uids"
        } else {
            "subordinate gids"
        },
        ok: range.is_some(),
        essential: false,
        detail: range.map_or_else(
            || format!("no range for {user} in {file}: only your own uid maps inside, files of other owners in images collapse onto it"),
            |r| format!("{file}: {r}"),
        ),
        fix: {
            // A free range: above every range already given out in either file.
            let end = ["/etc/subuid", "/etc/subgid"]
                .iter()
                .flat_map(|f| {
                    let t = std::fs::read_to_string(f).unwrap_or_default();
                    t.lines()
                        .filter_map(|l| {
                            let f: Vec<&str> = l.split(':').collect();
                            Some(f.get(1)?.parse::<u64>().ok()? + f.get(2)?.parse::<u64>().ok()?)
                        })
                        .collect::<Vec<_>>()
                })
                .max()
                .unwrap_or(0)
                .max(100_000);
            format!(
                "as root: usermod --add-subuids {end}-{} --add-subgids {end}-{} {user}",
                end + 65535,
                end + 65535
            )
        },
    }
}

/// Rootless: newuidmap and newgidmap (package uidmap) must exist and be setuid root (or carry
/// file capabilities) to write a map with a subordinate range.
fn uidmap_helpers() -> Check {
    let mut problems = Vec::new();
    for bin in ["newuidmap", "newgidmap"] {
        match which(bin) {
            None => problems.push(format!("{bin} is missing")),
            Some(p) => {
                use std::os::unix::fs::MetadataExt;
                let setuid =
                    std::fs::metadata(&p).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o4000 != 0);
                let mut buf = [0u8; 64];
                let fcaps =
                    rustix::fs::getxattr(p.as_str(), "security.capability", &mut buf).is_ok();
                if !setuid && !fcaps {
                    problems.push(format!(
                        "{p} is neither setuid root nor has file capabilities"
                    ));
                }
            }
        }
    }
    let ok = problems.is_empty();
    Check {
        name: "uid map helpers",
        ok,
        essential: false,
        detail: if ok {
            "newuidmap and newgidmap can map your subordinate ranges".into()
        } else {
            format!(
                "{}: only your own uid maps inside, files of other owners in images collapse onto it",
                problems.join(", ")
            )
        },
        fix: "apt-get install uidmap (as root)".into(),
    }
}

/// Rootless: overlayfs inside a user namespace needs Linux 5.11 (`userxattr`).
fn userns_overlay() -> Check {
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let version = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    let ok = version >= (5, 11);
    Check {
        name: "rootless overlayfs",
        ok,
        essential: true,
        detail: if ok {
            format!("Linux {release} mounts overlayfs in a user namespace (userxattr)")
        } else {
            format!("Linux {release} cannot mount overlayfs in a user namespace (needs 5.11)")
        },
        fix: "use Linux 5.11 or newer, or run joot as root".into(),
    }
}

fn kvm() -> Check {
    let present = Path::new("/dev/kvm").exists();
    Check {
        name: "kvm",
        ok: present,
        essential: false,
        detail: if present {
            "/dev/kvm present (joot boot --accel auto checks that it can really boot)".into()
        } else {
            "no /dev/kvm: joot boot uses TCG emulation (slow)".into()
        },
        fix: "enable virtualisation, or accept TCG".into(),
    }
}

fn store_writable(root: &Path) -> Check {
    let probe = root
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let ok = rustix::fs::access(probe, rustix::fs::Access::WRITE_OK).is_ok();
    Check {
        name: "store",
        ok,
        essential: true,
        detail: format!(
            "{} ({})",
            root.display(),
            if ok { "writable" } else { "not writable" }
        ),
        fix: "choose another store with --root DIR or JOOT_ROOT".into(),
    }
}
