//! The Debian family: mmdebstrap, or debootstrap when mmdebstrap is missing.
//!
//! Package cache: mmdebstrap runs with `--skip=essential/unlink` and two hooks. The setup hook
//! hard-links every cached `.deb` into the target's `/var/cache/apt/archives/` and every cached
//! list into `/var/lib/apt/lists/` (apt then only revalidates the `InRelease` files and skips
//! any package whose file and hash are already there); the customize hook links what apt
//! fetched back into the cache before mmdebstrap's cleanup deletes it from the tree. Paths reach
//! the hooks through environment variables, never spliced into shell text. debootstrap has
//! `--cache-dir` for the same purpose.

use std::path::Path;

use crate::report::Phase;
use crate::spec::{DebianPlan, Options};
use crate::tool::Tool;

pub const MMDEBSTRAP: Tool = Tool {
    name: "mmdebstrap",
    package: "mmdebstrap",
    reason: "to bootstrap Debian-family images",
};
pub const DEBOOTSTRAP: Tool = Tool {
    name: "debootstrap",
    package: "debootstrap",
    reason: "to bootstrap Debian-family images (mmdebstrap is preferred)",
};

/// Environment variable naming the `.deb` cache for the hooks.
pub const ENV_DEBS: &str = "JOOT_DEB_CACHE";
/// Environment variable naming the apt lists cache for the hooks.
pub const ENV_LISTS: &str = "JOOT_LISTS_CACHE";

const SETUP_HOOK: &str = r#"set -e
mkdir -p "$1/var/cache/apt/archives/partial" "$1/var/lib/apt/lists/partial"
find "$JOOT_DEB_CACHE" -maxdepth 1 -type f -name '*.deb' -exec sh -c 'ln -f -t "$0" "$@" 2>/dev/null || cp -p -t "$0" "$@"' "$1/var/cache/apt/archives/" {} +
find "$JOOT_LISTS_CACHE" -maxdepth 1 -type f ! -name lock -exec sh -c 'ln -f -t "$0" "$@" 2>/dev/null || cp -p -t "$0" "$@"' "$1/var/lib/apt/lists/" {} +"#;

const CUSTOMIZE_HOOK: &str = r#"set -e
for f in "$1"/var/cache/apt/archives/*.deb; do
  [ -f "$f" ] || continue
  b=${f##*/}
  [ -e "$JOOT_DEB_CACHE/$b" ] || ln "$f" "$JOOT_DEB_CACHE/$b" 2>/dev/null || cp -p "$f" "$JOOT_DEB_CACHE/$b"
done
for f in "$1"/var/lib/apt/lists/*; do
  [ -f "$f" ] || continue
  [ "${f##*/}" = lock ] && continue
  ln -f "$f" "$JOOT_LISTS_CACHE/" 2>/dev/null || cp -p "$f" "$JOOT_LISTS_CACHE/"
done"#;

/// The mmdebstrap command line (without the isolation wrapper).
pub fn mmdebstrap_argv(o: &Options, p: &DebianPlan, target: &Path) -> Vec<String> {
    let mut v = vec![
        "mmdebstrap".to_string(),
        "--mode=root".into(),
        "--format=directory".into(),
        "--verbose".into(),
        format!("--variant={}", o.variant),
        format!("--architectures={}", o.arch.deb),
        "--skip=essential/unlink".into(),
        format!("--setup-hook={SETUP_HOOK}"),
        format!("--customize-hook={CUSTOMIZE_HOOK}"),
    ];
    if !o.packages.is_empty() {
        v.push(format!("--include={}", o.packages.join(",")));
    }
    if let Some(k) = &p.keyring {
        v.push(format!("--keyring={}", k.display()));
    }
    v.push(p.suite.clone());
    v.push(target.display().to_string());
    v.extend(p.sources.iter().cloned());
    v
}

/// debootstrap's name for a variant, or None when debootstrap cannot make it.
fn debootstrap_variant(variant: &str) -> Option<Option<&'static str>> {
    match variant {
        "minbase" => Some(Some("minbase")),
        "buildd" => Some(Some("buildd")),
        "important" => Some(None),
        _ => None,
    }
}

/// The debootstrap command line, or None if the variant has no debootstrap equivalent.
pub fn debootstrap_argv(
    o: &Options,
    p: &DebianPlan,
    target: &Path,
    deb_cache: &Path,
) -> Option<Vec<String>> {
    let variant = debootstrap_variant(&o.variant)?;
    let mut v = vec!["debootstrap".to_string()];
    if let Some(var) = variant {
        v.push(format!("--variant={var}"));
    }
    v.push(format!("--arch={}", o.arch.deb));
    v.push(format!("--components={}", p.components.join(",")));
    if !o.packages.is_empty() {
        v.push(format!("--include={}", o.packages.join(",")));
    }
    if let Some(k) = &p.keyring {
        v.push(format!("--keyring={}", k.display()));
    }
    v.push(format!("--cache-dir={}", deb_cache.display()));
    v.push(p.suite.clone());
    v.push(target.display().to_string());
    v.push(p.mirror.clone());
    Some(v)
}

/// What one line of installer output means for progress.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Phase(Phase),
    /// A package was configured.
    Package(String),
    /// A download of this many bytes was announced.
    Bytes(u64),
    /// The installer planned this many more packages.
    Planned(u64),
}

/// Interprets one line of mmdebstrap (verbose) or debootstrap output.
pub fn parse_line(line: &str) -> Option<Event> {
    if let Some(rest) = line.strip_prefix("I: ") {
        let phase = if rest.starts_with("running apt-get update")
            || rest.starts_with("Retrieving InRelease")
        {
            Phase::Update
        } else if rest.starts_with("downloading packages")
            || rest.starts_with("Retrieving Packages")
        {
            Phase::Download
        } else if rest.starts_with("extracting archives") || rest.starts_with("Extracting ") {
            Phase::Extract
        } else if rest.starts_with("installing ")
            || rest.starts_with("Installing core packages")
            || rest.starts_with("Unpacking required")
        {
            Phase::Install
        } else if rest.starts_with("running --customize-hook")
            || rest.starts_with("Base system installed")
        {
            Phase::Finish
        } else if let Some(pkg) = rest.strip_prefix("Configuring ") {
            return Some(Event::Package(pkg.trim_end_matches("...").to_string()));
        } else {
            return None;
        };
        return Some(Event::Phase(phase));
    }
    if let Some(rest) = line.strip_prefix("Setting up ") {
        let name = rest.split_whitespace().next()?;
        return Some(Event::Package(name.split(':').next()?.to_string()));
    }
    // apt: "0 upgraded, 77 newly installed, 0 to remove and 0 not upgraded."
    if let Some(head) = line.split(" newly installed").next()
        && head.len() < line.len()
        && let Some(n) = head.rsplit(", ").next()
    {
        return n.trim().parse().ok().map(Event::Planned);
    }
    if line.starts_with("Get:") {
        let open = line.rfind('[')?;
        let size = line[open + 1..].trim_end_matches(']');
        return parse_apt_size(size).map(Event::Bytes);
    }
    None
}

/// apt's human sizes: `123 B`, `45.6 kB`, `7,890 kB`, `1.2 MB` (SI units).
fn parse_apt_size(s: &str) -> Option<u64> {
    let (num, unit) = s.trim().split_once(' ')?;
    let num: f64 = num.replace(',', "").parse().ok()?;
    let mult = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => return None,
    };
    Some((num * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Defaults, Installer, Request, Spec};

    fn plan(req: Request) -> (Options, DebianPlan) {
        let o = Options::new(
            Spec::parse("debian:bookworm").unwrap(),
            &req,
            &Defaults::default(),
        )
        .unwrap();
        let Installer::Debian(p) = o.installer.clone() else {
            panic!()
        };
        (o, p)
    }

    #[test]
    fn mmdebstrap_command_line() {
        let (o, p) = plan(Request {
            include: vec!["curl".into(), "ca-certificates".into()],
            arch: Some("x86_64".into()),
            ..Default::default()
        });
        let v = mmdebstrap_argv(&o, &p, Path::new("/s/tmp/x/layer/root"));
        assert_eq!(
            &v[..6],
            [
                "mmdebstrap",
                "--mode=root",
                "--format=directory",
                "--verbose",
                "--variant=minbase",
                "--architectures=amd64"
            ]
        );
        assert!(v.contains(&"--include=curl,ca-certificates".to_string()));
        assert!(v.contains(&"--skip=essential/unlink".to_string()));
        let i = v.iter().position(|a| a == "bookworm").unwrap();
        assert_eq!(v[i + 1], "/s/tmp/x/layer/root");
        assert_eq!(v[i + 2], "deb http://deb.debian.org/debian bookworm main");
        assert_eq!(v.len(), i + 5);
        // Cache paths come from the environment, not from the command line.
        assert!(v.iter().all(|a| !a.contains("/s/cache")));
        assert!(
            v.iter()
                .any(|a| a.starts_with("--setup-hook=") && a.contains("$JOOT_DEB_CACHE"))
        );
        assert!(!v.iter().any(|a| a.starts_with("--keyring")));
    }

    #[test]
    fn debootstrap_command_line() {
        let (o, p) = plan(Request {
            components: vec!["main".into(), "contrib".into()],
            ..Default::default()
        });
        let v = debootstrap_argv(&o, &p, Path::new("/t"), Path::new("/c/debs")).unwrap();
        assert_eq!(
            v,
            [
                "debootstrap",
                "--variant=minbase",
                &format!("--arch={}", o.arch.deb),
                "--components=main,contrib",
                "--cache-dir=/c/debs",
                "bookworm",
                "/t",
                "http://deb.debian.org/debian"
            ]
        );
        let (o, p) = plan(Request {
            variant: Some("standard".into()),
            ..Default::default()
        });
        assert!(debootstrap_argv(&o, &p, Path::new("/t"), Path::new("/c")).is_none());
    }

    #[test]
    fn hooks_are_valid_shell() {
        for hook in [SETUP_HOOK, CUSTOMIZE_HOOK] {
            let st = std::process::Command::new("sh")
                .args(["-n", "-c", hook])
                .status()
                .unwrap();
            assert!(st.success(), "{hook}");
        }
    }

    #[test]
    fn hooks_move_packages_through_the_cache() {
        let t = tempfile::tempdir().unwrap();
        let (root, debs, lists) = (
            t.path().join("root"),
            t.path().join("debs"),
            t.path().join("lists"),
        );
        for d in [&root, &debs, &lists] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(debs.join("a_1_amd64.deb"), "A").unwrap();
        std::fs::write(lists.join("m_dists_bookworm_InRelease"), "R").unwrap();
        let run = |hook: &str| {
            let st = std::process::Command::new("sh")
                .args(["-c", hook, "hook"])
                .arg(&root)
                .env(ENV_DEBS, &debs)
                .env(ENV_LISTS, &lists)
                .status()
                .unwrap();
            assert!(st.success());
        };
        run(SETUP_HOOK);
        assert_eq!(
            std::fs::read(root.join("var/cache/apt/archives/a_1_amd64.deb")).unwrap(),
            b"A"
        );
        assert!(
            root.join("var/lib/apt/lists/m_dists_bookworm_InRelease")
                .is_file()
        );
        std::fs::write(root.join("var/cache/apt/archives/b_2_amd64.deb"), "B").unwrap();
        std::fs::write(root.join("var/lib/apt/lists/lock"), "").unwrap();
        run(CUSTOMIZE_HOOK);
        assert_eq!(std::fs::read(debs.join("b_2_amd64.deb")).unwrap(), b"B");
        assert!(!lists.join("lock").exists());
    }

    #[test]
    fn parses_progress_lines() {
        assert_eq!(
            parse_line("I: running apt-get update..."),
            Some(Event::Phase(Phase::Update))
        );
        assert_eq!(
            parse_line("I: installing remaining packages inside the chroot..."),
            Some(Event::Phase(Phase::Install))
        );
        assert_eq!(
            parse_line("Setting up libc6:amd64 (2.36-9) ..."),
            Some(Event::Package("libc6".into()))
        );
        assert_eq!(
            parse_line("I: Configuring tzdata..."),
            Some(Event::Package("tzdata".into()))
        );
        assert_eq!(
            parse_line(
                "Get:1 http://deb.debian.org/debian bookworm/main amd64 libc6 amd64 2.36-9 [2,757 kB]"
            ),
            Some(Event::Bytes(2_757_000))
        );
        assert_eq!(
            parse_line("0 upgraded, 77 newly installed, 0 to remove and 0 not upgraded."),
            Some(Event::Planned(77))
        );
        assert_eq!(parse_line("random noise"), None);
    }
}
