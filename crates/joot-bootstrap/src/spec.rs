//! From what the user typed to a validated [`Options`]: `Spec::parse("debian:bookworm")`, then
//! the command-line [`Request`] merged over the config-file [`Defaults`] and checked against the
//! distribution table. Everything here is pure (it only looks at whether a keyring file exists),
//! so every mistake is reported before a directory is created or a byte downloaded.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use joot_store::{Distro, Name};
use serde::{Deserialize, Serialize};

use crate::distro::{self, DistroDef, Family};
use crate::error::{Error, Result, invalid};

/// `id[:release]`, resolved against the distribution table.
#[derive(Debug, Clone)]
pub struct Spec {
    pub distro: &'static DistroDef,
    /// The canonical release (`bookworm` for `debian:12`); empty only for a bare `rpm`.
    pub release: String,
}

impl Spec {
    /// Parses `debian`, `debian:bookworm`, `debian:12`, `rocky:9`, `rpm`, `rpm:9`.
    pub fn parse(s: &str) -> Result<Spec> {
        let (id, release) = match s.split_once(':') {
            Some((id, rel)) => (id, Some(rel)),
            None => (s, None),
        };
        let distro = distro::find(id).ok_or_else(|| Error::UnknownDistro {
            given: id.to_string(),
            known: distro::known_ids(),
        })?;
        let release = match release {
            None => distro.default_release.to_string(),
            Some(r) if distro.releases.is_empty() => {
                if r.is_empty() || !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
                    return Err(invalid("release", r, "expected letters, digits and dots"));
                }
                r.to_string()
            }
            Some(r) => distro
                .release(r)
                .ok_or_else(|| Error::UnknownRelease {
                    distro: distro.id.to_string(),
                    release: r.to_string(),
                    known: distro.release_names().join(", "),
                })?
                .name
                .to_string(),
        };
        Ok(Spec { distro, release })
    }

    /// Whether `s` names a known distribution (`debian`, `rocky:9`), as opposed to an image
    /// name. Used by `run --from` to decide whether a missing image can be bootstrapped.
    pub fn is_spec(s: &str) -> bool {
        let id = s.split_once(':').map_or(s, |(id, _)| id);
        distro::find(id).is_some() && (s.contains(':') || s == id)
    }

    /// `debian-bookworm`, `rocky-9`, `rpm`.
    pub fn default_image_name(&self) -> String {
        if self.release.is_empty() {
            self.distro.id.to_string()
        } else {
            format!("{}-{}", self.distro.id, self.release)
        }
    }

    pub fn family(&self) -> Family {
        self.distro.family
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.release.is_empty() {
            write!(f, "{}", self.distro.id)
        } else {
            write!(f, "{}:{}", self.distro.id, self.release)
        }
    }
}

/// What the user asked on the command line; every field optional.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub name: Option<String>,
    pub variant: Option<String>,
    pub arch: Option<String>,
    /// Extra packages (added to the config file's).
    pub include: Vec<String>,
    pub mirror: Option<String>,
    pub components: Vec<String>,
    pub keyring: Option<PathBuf>,
    pub repos: Vec<String>,
    /// Replace an existing image of the same name.
    pub replace: bool,
    /// Do not reuse an earlier identical bootstrap (the package cache is still used).
    pub fresh: bool,
    /// Debian family: the apt suite to install from instead of the release's codename
    /// (`stable`, `bookworm-backports`-style names are the user's responsibility).
    pub suite: Option<String>,
}

/// Defaults from the configuration file (`[bootstrap]`); the CLI converts its config into this.
/// Scalars are overridden by the command line, lists are added to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// Mirror per distribution id.
    pub mirrors: BTreeMap<String, String>,
    /// Variant for the Debian family.
    pub variant: Option<String>,
    pub arch: Option<String>,
    /// Components for the Debian family.
    pub components: Vec<String>,
    pub include: Vec<String>,
    /// Repositories per RPM distribution id.
    pub repos: BTreeMap<String, Vec<String>>,
}

/// A CPU architecture under both of its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arch {
    /// dpkg's name (`amd64`).
    pub deb: &'static str,
    /// rpm's `basearch` (`x86_64`).
    pub rpm: &'static str,
}

const ARCHES: &[Arch] = &[
    Arch {
        deb: "amd64",
        rpm: "x86_64",
    },
    Arch {
        deb: "arm64",
        rpm: "aarch64",
    },
    Arch {
        deb: "i386",
        rpm: "i686",
    },
    Arch {
        deb: "armhf",
        rpm: "armv7hl",
    },
    Arch {
        deb: "ppc64el",
        rpm: "ppc64le",
    },
    Arch {
        deb: "s390x",
        rpm: "s390x",
    },
    Arch {
        deb: "riscv64",
        rpm: "riscv64",
    },
];

impl Arch {
    /// Accepts either name.
    pub fn parse(s: &str) -> Result<Arch> {
        ARCHES
            .iter()
            .copied()
            .find(|a| a.deb == s || a.rpm == s)
            .ok_or_else(|| {
                let known: Vec<_> = ARCHES.iter().map(|a| a.deb).collect();
                invalid("architecture", s, format!("known: {}", known.join(", ")))
            })
    }

    /// The architecture joot runs on.
    pub fn host() -> Arch {
        let rpm = match std::env::consts::ARCH {
            "x86" => "i686",
            "arm" => "armv7hl",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Arch::parse(rpm).unwrap_or(ARCHES[0])
    }

    /// The name the family's tools use.
    pub fn name(&self, family: Family) -> &'static str {
        match family {
            Family::Debian => self.deb,
            Family::Rpm => self.rpm,
        }
    }
}

/// The Debian-family part of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianPlan {
    pub suite: String,
    pub mirror: String,
    pub components: Vec<String>,
    /// Full one-line apt sources (`deb URL SUITE COMP...`), written to the result.
    pub sources: Vec<String>,
    /// The keyring passed to the installer (None: the host's apt trusted keys).
    pub keyring: Option<PathBuf>,
}

/// One RPM repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub id: String,
    pub baseurl: String,
    /// Signing key URL; None disables signature checks for this repo.
    pub gpgkey: Option<String>,
}

/// The RPM-family part of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmPlan {
    pub releasever: String,
    pub repos: Vec<Repo>,
}

/// Installer-specific settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installer {
    Debian(DebianPlan),
    Rpm(RpmPlan),
}

/// A validated bootstrap: nothing left to check but the network and the tools.
#[derive(Debug, Clone)]
pub struct Options {
    pub spec: Spec,
    /// The image to create.
    pub name: Name,
    pub arch: Arch,
    pub variant: String,
    /// Packages beyond the variant (for the RPM family: every package to install).
    pub packages: Vec<String>,
    pub installer: Installer,
    pub replace: bool,
    pub fresh: bool,
}

fn check_package(p: &str) -> Result<()> {
    let ok = !p.is_empty()
        && !p.starts_with('-')
        && p.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '_' | '-' | ':' | '=' | '~')
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "package",
            p,
            "expected a package name (letters, digits, + . _ - : = ~)",
        ))
    }
}

fn check_url(what: &'static str, url: &str) -> Result<()> {
    let ok = ["http://", "https://", "file:///", "ftp://"]
        .iter()
        .any(|s| url.starts_with(s))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            what,
            url,
            "expected an http://, https://, ftp:// or file:/// URL",
        ))
    }
}

fn check_word(what: &'static str, w: &str) -> Result<()> {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    {
        Ok(())
    } else {
        Err(invalid(
            what,
            w,
            "expected letters, digits, '-', '_', '.', '/'",
        ))
    }
}

impl Options {
    /// Merges `req` over `defaults` for `spec` and validates the result.
    pub fn new(spec: Spec, req: &Request, defaults: &Defaults) -> Result<Options> {
        let d = spec.distro;
        let name = req
            .name
            .clone()
            .unwrap_or_else(|| spec.default_image_name());
        let name = Name::parse(&name)?;
        let arch = match req.arch.as_deref().or(defaults.arch.as_deref()) {
            Some(a) => Arch::parse(a)?,
            None => Arch::host(),
        };
        let config_variant = match d.family {
            Family::Debian => defaults.variant.as_deref(),
            Family::Rpm => None,
        };
        let variant = req
            .variant
            .as_deref()
            .or(config_variant)
            .unwrap_or(d.default_variant)
            .to_string();
        if !d.variants.contains(&variant.as_str()) {
            return Err(invalid(
                "variant",
                variant,
                format!("{} knows: {}", d.id, d.variants.join(", ")),
            ));
        }
        let mut packages: Vec<String> = Vec::new();
        for p in defaults.include.iter().chain(&req.include) {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            check_package(p)?;
            if !packages.iter().any(|q| q == p) {
                packages.push(p.to_string());
            }
        }
        let installer = match d.family {
            Family::Debian => {
                if !req.repos.is_empty() {
                    return Err(invalid(
                        "option",
                        "--repo",
                        format!("{} takes --mirror, not --repo", d.id),
                    ));
                }
                Installer::Debian(debian_plan(&spec, req, defaults)?)
            }
            Family::Rpm => {
                if req.suite.is_some() {
                    return Err(invalid(
                        "option",
                        "--suite",
                        format!("{} has releases, not suites: use {}:RELEASE", d.id, d.id),
                    ));
                }
                if req.mirror.is_some() || !req.components.is_empty() {
                    return Err(invalid(
                        "option",
                        if req.mirror.is_some() {
                            "--mirror"
                        } else {
                            "--components"
                        },
                        format!("{} takes --repo URL (repeatable)", d.id),
                    ));
                }
                if variant == "minimal" {
                    let mut all: Vec<String> = d.packages.iter().map(|p| p.to_string()).collect();
                    all.extend(
                        packages
                            .into_iter()
                            .filter(|p| !d.packages.contains(&p.as_str())),
                    );
                    packages = all;
                }
                if packages.is_empty() {
                    return Err(invalid(
                        "package list",
                        "",
                        "nothing to install: pass --include PKG[,PKG...]",
                    ));
                }
                Installer::Rpm(rpm_plan(&spec, req, defaults)?)
            }
        };
        Ok(Options {
            spec,
            name,
            arch,
            variant,
            packages,
            installer,
            replace: req.replace,
            fresh: req.fresh,
        })
    }

    /// The distribution record stored in the image.
    pub fn distro(&self) -> Distro {
        let f = self.spec.family();
        Distro {
            family: f.as_str().to_string(),
            id: self.spec.distro.id.to_string(),
            release: self.spec.release.clone(),
            arch: self.arch.name(f).to_string(),
            package_manager: f.package_manager().to_string(),
        }
    }
}

fn debian_plan(spec: &Spec, req: &Request, defaults: &Defaults) -> Result<DebianPlan> {
    let d = spec.distro;
    let rel = d.release(&spec.release).expect("spec release is resolved");
    let custom = req
        .mirror
        .clone()
        .or_else(|| defaults.mirrors.get(d.id).cloned());
    if let Some(m) = &custom {
        check_url("mirror", m)?;
    }
    let mirror = custom
        .clone()
        .unwrap_or_else(|| d.mirror.to_string())
        .trim_end_matches('/')
        .to_string();
    let components: Vec<String> = if !req.components.is_empty() {
        req.components.clone()
    } else if !defaults.components.is_empty() {
        defaults.components.clone()
    } else {
        d.components.iter().map(|c| c.to_string()).collect()
    };
    for c in &components {
        check_word("component", c)?;
    }
    let comps = components.join(" ");
    let suite = match &req.suite {
        Some(s) => {
            check_word("suite", s)?;
            s.clone()
        }
        None => rel.name.to_string(),
    };
    let mut sources = vec![format!("deb {mirror} {suite} {comps}")];
    // A custom mirror gets only the suite itself: local and partial mirrors often carry no
    // -updates, and the security archive is never on a plain mirror.
    if custom.is_none() {
        if rel.updates {
            sources.push(format!("deb {mirror} {suite}-updates {comps}"));
        }
        if rel.security {
            sources.push(format!(
                "deb {} {suite}-security {comps}",
                d.security_mirror
            ));
        }
    }
    let keyring = match &req.keyring {
        Some(k) => {
            if !k.is_file() {
                return Err(invalid("keyring", k.display().to_string(), "no such file"));
            }
            Some(k.clone())
        }
        None => {
            let k = Path::new(d.keyring);
            if !k.is_file() {
                return Err(Error::MissingKeyring {
                    path: k.to_path_buf(),
                    package: d.keyring_package.to_string(),
                });
            }
            // Debian's keyring is already trusted by the host's apt; another distribution's
            // has to be named.
            (d.id != "debian").then(|| k.to_path_buf())
        }
    };
    Ok(DebianPlan {
        suite,
        mirror,
        components,
        sources,
        keyring,
    })
}

fn rpm_plan(spec: &Spec, req: &Request, defaults: &Defaults) -> Result<RpmPlan> {
    let d = spec.distro;
    let user: Vec<String> = if !req.repos.is_empty() {
        req.repos.clone()
    } else {
        defaults.repos.get(d.id).cloned().unwrap_or_default()
    };
    for r in &user {
        check_url("repository", r)?;
    }
    let gpgkey = (!d.gpgkey.is_empty()).then(|| d.gpgkey.to_string());
    let urls: Vec<String> = if user.is_empty() {
        d.repos.iter().map(|r| r.to_string()).collect()
    } else {
        user
    };
    if urls.is_empty() {
        return Err(invalid(
            "repository list",
            "",
            format!("{} needs at least one --repo URL", d.id),
        ));
    }
    let repos = urls
        .into_iter()
        .enumerate()
        .map(|(i, baseurl)| Repo {
            id: format!("joot-{i}"),
            baseurl,
            gpgkey: gpgkey.clone(),
        })
        .collect();
    let releasever = if spec.release.is_empty() {
        "0".to_string()
    } else {
        spec.release.clone()
    };
    Ok(RpmPlan { releasever, repos })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(spec: &str, req: Request) -> Result<Options> {
        Options::new(Spec::parse(spec)?, &req, &Defaults::default())
    }

    #[test]
    fn parses_specs() {
        let s = Spec::parse("debian:bookworm").unwrap();
        assert_eq!((s.distro.id, s.release.as_str()), ("debian", "bookworm"));
        assert_eq!(Spec::parse("debian:12").unwrap().release, "bookworm");
        assert_eq!(Spec::parse("debian").unwrap().release, "bookworm");
        assert_eq!(Spec::parse("rocky:9").unwrap().to_string(), "rocky:9");
        let r = Spec::parse("rpm").unwrap();
        assert_eq!(
            (r.release.as_str(), r.default_image_name()),
            ("", "rpm".into())
        );
        assert_eq!(Spec::parse("rpm:9").unwrap().default_image_name(), "rpm-9");
        assert_eq!(
            Spec::parse("ubuntu:24.04").unwrap().default_image_name(),
            "ubuntu-noble"
        );
    }

    #[test]
    fn unknown_distro_lists_known() {
        let e = Spec::parse("gentoo:latest").unwrap_err().to_string();
        assert!(
            e.contains("gentoo") && e.contains("debian") && e.contains("rocky"),
            "{e}"
        );
        let e = Spec::parse("debian:potato").unwrap_err().to_string();
        assert!(
            e.contains("potato") && e.contains("bookworm, trixie"),
            "{e}"
        );
        assert!(Spec::parse("rpm:9;rm").is_err());
    }

    #[test]
    fn is_spec_recognises_distros_only() {
        assert!(Spec::is_spec("debian:bookworm"));
        assert!(Spec::is_spec("rocky"));
        assert!(!Spec::is_spec("myimage"));
        assert!(!Spec::is_spec("debian-bookworm"));
    }

    #[test]
    fn debian_defaults_add_updates_and_security() {
        let o = opts("debian:bookworm", Request::default()).unwrap();
        assert_eq!(o.name.as_str(), "debian-bookworm");
        assert_eq!(o.variant, "minbase");
        let Installer::Debian(p) = &o.installer else {
            panic!()
        };
        assert_eq!(
            p.sources,
            [
                "deb http://deb.debian.org/debian bookworm main",
                "deb http://deb.debian.org/debian bookworm-updates main",
                "deb http://deb.debian.org/debian-security bookworm-security main",
            ]
        );
        assert_eq!(p.keyring, None);
        assert_eq!(o.distro().package_manager, "apt");
    }

    #[test]
    fn custom_mirror_and_components() {
        let req = Request {
            mirror: Some("http://m.example/debian/".into()),
            components: vec!["main".into(), "contrib".into()],
            include: vec!["curl".into(), "ca-certificates".into(), "curl".into()],
            ..Default::default()
        };
        let o = opts("debian:sid", req).unwrap();
        let Installer::Debian(p) = &o.installer else {
            panic!()
        };
        assert_eq!(p.sources, ["deb http://m.example/debian sid main contrib"]);
        assert_eq!(o.packages, ["curl", "ca-certificates"]);
    }

    #[test]
    fn suite_overrides_the_codename() {
        let o = opts(
            "debian:bookworm",
            Request {
                suite: Some("stable".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let Installer::Debian(p) = &o.installer else {
            panic!()
        };
        assert_eq!(p.suite, "stable");
        assert_eq!(
            p.sources[1],
            "deb http://deb.debian.org/debian stable-updates main"
        );
        assert_eq!(o.distro().release, "bookworm");
        let bad = Request {
            suite: Some("a b".into()),
            ..Default::default()
        };
        assert!(opts("debian", bad).is_err());
        let rpm = Request {
            suite: Some("x".into()),
            ..Default::default()
        };
        assert!(
            opts("rocky:9", rpm)
                .unwrap_err()
                .to_string()
                .contains("--suite")
        );
    }

    #[test]
    fn config_defaults_merge_under_the_command_line() {
        let defaults = Defaults {
            mirrors: [("debian".to_string(), "http://cfg/debian".to_string())].into(),
            variant: Some("buildd".into()),
            include: vec!["vim".into()],
            ..Default::default()
        };
        let req = Request {
            include: vec!["curl".into()],
            ..Default::default()
        };
        let o = Options::new(Spec::parse("debian").unwrap(), &req, &defaults).unwrap();
        assert_eq!(o.variant, "buildd");
        assert_eq!(o.packages, ["vim", "curl"]);
        let Installer::Debian(p) = &o.installer else {
            panic!()
        };
        assert_eq!(p.mirror, "http://cfg/debian");
        let req = Request {
            variant: Some("standard".into()),
            ..Default::default()
        };
        let o = Options::new(Spec::parse("debian").unwrap(), &req, &defaults).unwrap();
        assert_eq!(o.variant, "standard");
    }

    #[test]
    fn rejects_bad_input() {
        let bad = |req: Request| opts("debian:bookworm", req).unwrap_err().to_string();
        assert!(
            bad(Request {
                variant: Some("huge".into()),
                ..Default::default()
            })
            .contains("minbase")
        );
        assert!(
            bad(Request {
                name: Some("../x".into()),
                ..Default::default()
            })
            .contains("invalid name")
        );
        assert!(
            bad(Request {
                include: vec!["a b".into()],
                ..Default::default()
            })
            .contains("package")
        );
        assert!(
            bad(Request {
                mirror: Some("m.example".into()),
                ..Default::default()
            })
            .contains("URL")
        );
        assert!(
            bad(Request {
                arch: Some("vax".into()),
                ..Default::default()
            })
            .contains("amd64")
        );
        assert!(
            bad(Request {
                repos: vec!["file:///r".into()],
                ..Default::default()
            })
            .contains("--mirror")
        );
        assert!(
            bad(Request {
                keyring: Some("/nonexistent/k.gpg".into()),
                ..Default::default()
            })
            .contains("no such file")
        );
    }

    #[test]
    fn rpm_generic_needs_repo_and_packages() {
        let e = opts(
            "rpm",
            Request {
                include: vec!["bash".into()],
                ..Default::default()
            },
        );
        assert!(e.unwrap_err().to_string().contains("--repo"));
        let e = opts(
            "rpm",
            Request {
                repos: vec!["file:///srv/r".into()],
                ..Default::default()
            },
        );
        assert!(e.unwrap_err().to_string().contains("--include"));
        let o = opts(
            "rpm",
            Request {
                repos: vec!["file:///srv/r".into()],
                include: vec!["hello".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(o.packages, ["hello"]);
        let Installer::Rpm(p) = &o.installer else {
            panic!()
        };
        assert_eq!(p.repos[0].baseurl, "file:///srv/r");
        assert_eq!(p.repos[0].gpgkey, None);
        assert_eq!(o.distro().family, "rpm");
    }

    #[test]
    fn named_rpm_distro_uses_templates_and_key() {
        let o = opts(
            "rocky:9",
            Request {
                arch: Some("amd64".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(o.arch.name(Family::Rpm), "x86_64");
        assert_eq!(o.variant, "minimal");
        assert!(o.packages.contains(&"rocky-release".to_string()));
        let Installer::Rpm(p) = &o.installer else {
            panic!()
        };
        assert_eq!(p.releasever, "9");
        assert!(p.repos[0].baseurl.contains("BaseOS"));
        assert!(p.repos[0].gpgkey.as_deref().unwrap().contains("Rocky"));
        let e = opts(
            "rocky:9",
            Request {
                mirror: Some("http://x/".into()),
                ..Default::default()
            },
        );
        assert!(e.unwrap_err().to_string().contains("--repo"));
    }
}
