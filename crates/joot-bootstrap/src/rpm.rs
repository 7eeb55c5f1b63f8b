//! The RPM family: `dnf --installroot` (Debian packages dnf 4 and rpm 4.18).
//!
//! dnf reads only what joot gives it: a `dnf.conf` and a repo directory in a staging dir, so the
//! host's configuration never leaks in. Debian's rpm keeps its database in `~/.rpmdb`; joot runs
//! dnf with `HOME` pointing at a staging dir whose `.rpmmacros` sets `%_dbpath /var/lib/rpm`, so
//! the result is laid out like a real Fedora/RHEL root and `rpm -qa` works inside it. Packages
//! are kept in the store's cache (`keepcache`), so a second bootstrap downloads nothing.
//! Before dnf starts, a prelude mounts `/proc` and a minimal `/dev` (tmpfs with null, zero,
//! full, random, urandom, tty bound in) into the target for the scriptlets, in the installer's
//! private mount namespace, so the mounts disappear with it.

use std::path::Path;

use crate::report::Phase;
use crate::spec::{Options, RpmPlan};
use crate::tool::Tool;

pub const DNF: Tool = Tool {
    name: "dnf",
    package: "dnf",
    reason: "to bootstrap RPM-family images",
};

/// Mounts for scriptlets, then execs the installer (`$1` is the target, the rest its argv).
pub const PRELUDE: &str = r#"set -e
r=$1; shift
mkdir -p "$r/proc" "$r/dev"
mount -t proc proc "$r/proc"
mount -t tmpfs -o mode=0755,nosuid joot-dev "$r/dev"
for d in null zero full random urandom tty; do : > "$r/dev/$d"; mount --bind "/dev/$d" "$r/dev/$d"; done
ln -s /proc/self/fd "$r/dev/fd"
exec "$@""#;

/// `[main]` of the dnf.conf joot writes.
pub fn dnf_conf(plan: &RpmPlan) -> String {
    let gpg = plan.repos.iter().any(|r| r.gpgkey.is_some());
    format!(
        "[main]\ngpgcheck={}\ninstall_weak_deps=False\nkeepcache=True\nbest=True\nskip_if_unavailable=False\n",
        u8::from(gpg)
    )
}

/// The repo file, for dnf at bootstrap time (`for_image == false`) or for `/etc/yum.repos.d`
/// in the result (where an unreachable repo must not break later installs).
pub fn repo_file(plan: &RpmPlan, for_image: bool) -> String {
    let mut s = String::new();
    for r in &plan.repos {
        s.push_str(&format!(
            "[{}]\nname=joot bootstrap {}\nbaseurl={}\nenabled=1\n",
            r.id, r.id, r.baseurl
        ));
        match &r.gpgkey {
            Some(k) => s.push_str(&format!("gpgcheck=1\ngpgkey={k}\n")),
            None => s.push_str("gpgcheck=0\n"),
        }
        if for_image {
            s.push_str("skip_if_unavailable=True\n");
        }
        s.push('\n');
    }
    s
}

/// The `.rpmmacros` that puts the database where Fedora and RHEL have it.
pub const RPMMACROS: &str = "%_dbpath /var/lib/rpm\n";

/// The dnf command line (run through `sh -c PRELUDE joot-dnf TARGET ...`).
pub fn dnf_argv(
    o: &Options,
    p: &RpmPlan,
    target: &Path,
    conf_dir: &Path,
    cache: &Path,
) -> Vec<String> {
    let mut v = vec![
        "sh".to_string(),
        "-c".into(),
        PRELUDE.into(),
        "joot-dnf".into(),
        target.display().to_string(),
        "dnf".into(),
        "-y".into(),
        format!("--installroot={}", target.display()),
        format!("--releasever={}", p.releasever),
        format!("--config={}", conf_dir.join("dnf.conf").display()),
        format!("--setopt=reposdir={}", conf_dir.join("repos.d").display()),
        format!("--setopt=cachedir={}", cache.display()),
        "--noplugins".into(),
    ];
    if o.arch != crate::spec::Arch::host() {
        v.push(format!("--forcearch={}", o.arch.rpm));
    }
    v.push("install".into());
    v.extend(o.packages.iter().cloned());
    v
}

/// Interprets one line of dnf output.
pub fn parse_line(line: &str) -> Option<crate::debian::Event> {
    use crate::debian::Event;
    let t = line.trim_start();
    if t.starts_with("Downloading Packages") {
        return Some(Event::Phase(Phase::Download));
    }
    if t.starts_with("Running transaction") && !t.contains("check") && !t.contains("test") {
        return Some(Event::Phase(Phase::Install));
    }
    // "Install  3 Packages" in the transaction summary.
    if let Some(rest) = t.strip_prefix("Install ")
        && let Some(n) = rest.split_whitespace().next()
        && let Ok(n) = n.parse()
    {
        return Some(Event::Planned(n));
    }
    if let Some(rest) = t.strip_prefix("Installing") {
        let rest = rest.trim_start().strip_prefix(':')?;
        let nevra = rest.split_whitespace().next()?;
        return Some(Event::Package(nevra.to_string()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debian::Event;
    use crate::spec::{Defaults, Installer, Request, Spec};

    fn plan(spec: &str, req: Request) -> (Options, RpmPlan) {
        let o = Options::new(Spec::parse(spec).unwrap(), &req, &Defaults::default()).unwrap();
        let Installer::Rpm(p) = o.installer.clone() else {
            panic!()
        };
        (o, p)
    }

    #[test]
    fn dnf_command_line() {
        let (o, p) = plan(
            "rpm",
            Request {
                repos: vec!["file:///srv/repo".into()],
                include: vec!["hello".into()],
                ..Default::default()
            },
        );
        let v = dnf_argv(
            &o,
            &p,
            Path::new("/t"),
            Path::new("/s"),
            Path::new("/c/dnf"),
        );
        assert_eq!(&v[3..7], ["joot-dnf", "/t", "dnf", "-y"]);
        for want in [
            "--installroot=/t",
            "--releasever=0",
            "--config=/s/dnf.conf",
            "--setopt=reposdir=/s/repos.d",
            "--setopt=cachedir=/c/dnf",
            "--noplugins",
        ] {
            assert!(v.contains(&want.to_string()), "{want} in {v:?}");
        }
        assert_eq!(&v[v.len() - 2..], ["install", "hello"]);
        assert!(dnf_conf(&p).contains("gpgcheck=0"));
        let repo = repo_file(&p, false);
        assert!(
            repo.contains("[joot-0]\n")
                && repo.contains("baseurl=file:///srv/repo\n")
                && repo.contains("gpgcheck=0")
        );
        assert!(repo_file(&p, true).contains("skip_if_unavailable=True"));
    }

    #[test]
    fn named_distro_checks_signatures() {
        let (o, p) = plan(
            "alma:9",
            Request {
                arch: Some("aarch64".into()),
                ..Default::default()
            },
        );
        assert!(dnf_conf(&p).contains("gpgcheck=1"));
        assert!(repo_file(&p, false).contains(
            "gpgkey=https://repo.almalinux.org/almalinux/RPM-GPG-KEY-AlmaLinux-$releasever"
        ));
        let v = dnf_argv(&o, &p, Path::new("/t"), Path::new("/s"), Path::new("/c"));
        if std::env::consts::ARCH != "aarch64" {
            assert!(v.contains(&"--forcearch=aarch64".to_string()));
        }
        assert!(v.contains(&"almalinux-release".to_string()));
    }

    #[test]
    fn prelude_is_valid_shell() {
        assert!(
            std::process::Command::new("sh")
                .args(["-n", "-c", PRELUDE])
                .status()
                .unwrap()
                .success()
        );
    }

    #[test]
    fn parses_dnf_lines() {
        assert_eq!(
            parse_line("Downloading Packages:"),
            Some(Event::Phase(Phase::Download))
        );
        assert_eq!(
            parse_line("Running transaction"),
            Some(Event::Phase(Phase::Install))
        );
        assert_eq!(parse_line("Running transaction check"), None);
        assert_eq!(
            parse_line("  Installing       : joot-hello-1.0-1.x86_64                       1/1 "),
            Some(Event::Package("joot-hello-1.0-1.x86_64".into()))
        );
        assert_eq!(parse_line("Installing:"), None);
        assert_eq!(parse_line("Install  3 Packages"), Some(Event::Planned(3)));
        assert_eq!(parse_line("Install  1 Package"), Some(Event::Planned(1)));
    }
}
