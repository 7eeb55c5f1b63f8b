//! The distributions joot knows, as data: one [`DistroDef`] per distribution with its releases,
//! default mirror or repository templates, keyring and package set. Adding a distribution or a
//! release is an edit to [`DISTROS`], not to code; `joot bootstrap --list` prints this table.
//!
//! Only Debian (and the generic `rpm` path) can be exercised from the machines joot is tested on;
//! the Ubuntu and named RPM entries are the published defaults of those projects (mirror URLs,
//! keyrings, release names) and go through the same code paths.

use serde::{Deserialize, Serialize};

/// How a distribution is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// dpkg + apt, installed with mmdebstrap (debootstrap as a fallback).
    Debian,
    /// rpm + dnf, installed with `dnf --installroot`.
    Rpm,
}

impl Family {
    /// The package manager inside the result.
    pub fn package_manager(self) -> &'static str {
        match self {
            Family::Debian => "apt",
            Family::Rpm => "dnf",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Debian => "debian",
            Family::Rpm => "rpm",
        }
    }
}

/// One release of a distribution.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseDef {
    /// The canonical name: a Debian/Ubuntu codename or an RPM `releasever`.
    pub name: &'static str,
    /// Other accepted spellings (version numbers, `stable`-style names are not aliases because
    /// they move).
    pub aliases: &'static [&'static str],
    /// The Debian family adds `SUITE-updates` from the same mirror.
    pub updates: bool,
    /// The Debian family adds `SUITE-security` from [`DistroDef::security_mirror`].
    pub security: bool,
}

/// A distribution: everything needed to turn `id:release` into an installer invocation.
#[derive(Debug, Clone, Copy)]
pub struct DistroDef {
    /// What users type: `debian`, `rocky`, `rpm`.
    pub id: &'static str,
    /// Human name for listings.
    pub title: &'static str,
    pub family: Family,
    /// Known releases, oldest first. Empty means any release string is accepted (`rpm`).
    pub releases: &'static [ReleaseDef],
    /// The release used when the spec names none.
    pub default_release: &'static str,
    /// Debian family: the archive mirror.
    pub mirror: &'static str,
    /// Debian family: where `SUITE-security` lives when the default mirror is used.
    pub security_mirror: &'static str,
    /// Debian family: archive components.
    pub components: &'static [&'static str],
    /// Keyring the installer verifies the archive with (a host path) and the Debian package
    /// that provides it; empty when the host's default keyring applies.
    pub keyring: &'static str,
    pub keyring_package: &'static str,
    /// RPM family: repository base URLs; `$releasever` and `$basearch` are dnf variables.
    pub repos: &'static [&'static str],
    /// RPM family: the signing key URL (dnf variables allowed); empty for none.
    pub gpgkey: &'static str,
    /// RPM family: packages installed by the default variant.
    pub packages: &'static [&'static str],
    /// The variant used when none is given.
    pub default_variant: &'static str,
    /// Accepted variants.
    pub variants: &'static [&'static str],
}

const DEBIAN_VARIANTS: &[&str] = &[
    "minbase",
    "buildd",
    "required",
    "important",
    "standard",
    "essential",
    "apt",
];
const RPM_VARIANTS: &[&str] = &["minimal", "none"];

const fn deb(name: &'static str, aliases: &'static [&'static str]) -> ReleaseDef {
    ReleaseDef {
        name,
        aliases,
        updates: true,
        security: true,
    }
}

const fn rel(name: &'static str) -> ReleaseDef {
    ReleaseDef {
        name,
        aliases: &[],
        updates: false,
        security: false,
    }
}

const RPM_BASE: DistroDef = DistroDef {
    id: "",
    title: "",
    family: Family::Rpm,
    releases: &[],
    default_release: "",
    mirror: "",
    security_mirror: "",
    components: &[],
    keyring: "",
    keyring_package: "",
    repos: &[],
    gpgkey: "",
    packages: &[],
    default_variant: "minimal",
    variants: RPM_VARIANTS,
};

/// The table.
pub const DISTROS: &[DistroDef] = &[
    DistroDef {
        id: "debian",
        title: "Debian",
        family: Family::Debian,
        releases: &[
            deb("bullseye", &["11"]),
            deb("bookworm", &["12"]),
            deb("trixie", &["13"]),
            ReleaseDef {
                name: "sid",
                aliases: &["unstable"],
                updates: false,
                security: false,
            },
        ],
        default_release: "bookworm",
        mirror: "http://deb.debian.org/debian",
        security_mirror: "http://deb.debian.org/debian-security",
        components: &["main"],
        keyring: "/usr/share/keyrings/debian-archive-keyring.gpg",
        keyring_package: "debian-archive-keyring",
        repos: &[],
        gpgkey: "",
        packages: &[],
        default_variant: "minbase",
        variants: DEBIAN_VARIANTS,
    },
    DistroDef {
        id: "ubuntu",
        title: "Ubuntu",
        family: Family::Debian,
        releases: &[deb("jammy", &["22.04"]), deb("noble", &["24.04"])],
        default_release: "noble",
        mirror: "http://archive.ubuntu.com/ubuntu",
        security_mirror: "http://security.ubuntu.com/ubuntu",
        components: &["main", "universe"],
        keyring: "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
        keyring_package: "ubuntu-keyring",
        repos: &[],
        gpgkey: "",
        packages: &[],
        default_variant: "minbase",
        variants: DEBIAN_VARIANTS,
    },
    DistroDef {
        id: "fedora",
        title: "Fedora",
        releases: &[rel("41"), rel("42"), rel("43")],
        default_release: "43",
        repos: &[
            "https://dl.fedoraproject.org/pub/fedora/linux/releases/$releasever/Everything/$basearch/os/",
            "https://dl.fedoraproject.org/pub/fedora/linux/updates/$releasever/Everything/$basearch/",
        ],
        gpgkey: "https://fedoraproject.org/fedora.gpg",
        packages: &[
            "fedora-release",
            "filesystem",
            "setup",
            "bash",
            "coreutils",
            "rpm",
            "dnf",
        ],
        ..RPM_BASE
    },
    DistroDef {
        id: "rocky",
        title: "Rocky Linux",
        releases: &[rel("8"), rel("9"), rel("10")],
        default_release: "9",
        repos: &[
            "https://dl.rockylinux.org/pub/rocky/$releasever/BaseOS/$basearch/os/",
            "https://dl.rockylinux.org/pub/rocky/$releasever/AppStream/$basearch/os/",
        ],
        gpgkey: "https://dl.rockylinux.org/pub/rocky/RPM-GPG-KEY-Rocky-$releasever",
        packages: &[
            "rocky-release",
            "filesystem",
            "setup",
            "bash",
            "coreutils",
            "rpm",
            "dnf",
        ],
        ..RPM_BASE
    },
    DistroDef {
        id: "alma",
        title: "AlmaLinux",
        releases: &[rel("8"), rel("9"), rel("10")],
        default_release: "9",
        repos: &[
            "https://repo.almalinux.org/almalinux/$releasever/BaseOS/$basearch/os/",
            "https://repo.almalinux.org/almalinux/$releasever/AppStream/$basearch/os/",
        ],
        gpgkey: "https://repo.almalinux.org/almalinux/RPM-GPG-KEY-AlmaLinux-$releasever",
        packages: &[
            "almalinux-release",
            "filesystem",
            "setup",
            "bash",
            "coreutils",
            "rpm",
            "dnf",
        ],
        ..RPM_BASE
    },
    DistroDef {
        id: "centos-stream",
        title: "CentOS Stream",
        releases: &[rel("9"), rel("10")],
        default_release: "10",
        repos: &[
            "https://mirror.stream.centos.org/$releasever-stream/BaseOS/$basearch/os/",
            "https://mirror.stream.centos.org/$releasever-stream/AppStream/$basearch/os/",
        ],
        gpgkey: "https://www.centos.org/keys/RPM-GPG-KEY-CentOS-Official-SHA256",
        packages: &[
            "centos-stream-release",
            "filesystem",
            "setup",
            "bash",
            "coreutils",
            "rpm",
            "dnf",
        ],
        ..RPM_BASE
    },
    DistroDef {
        id: "rpm",
        title: "any RPM repository (needs --repo and --include)",
        releases: &[],
        default_release: "",
        default_variant: "none",
        ..RPM_BASE
    },
];

/// Looks a distribution up by id.
pub fn find(id: &str) -> Option<&'static DistroDef> {
    DISTROS.iter().find(|d| d.id == id)
}

/// The ids of all known distributions, for error messages.
pub fn known_ids() -> String {
    DISTROS.iter().map(|d| d.id).collect::<Vec<_>>().join(", ")
}

impl DistroDef {
    /// Resolves a release name or alias to its canonical name.
    pub fn release(&self, name: &str) -> Option<&'static ReleaseDef> {
        self.releases
            .iter()
            .find(|r| r.name == name || r.aliases.contains(&name))
    }

    /// The canonical release names, for error messages and `--list`.
    pub fn release_names(&self) -> Vec<&'static str> {
        self.releases.iter().map(|r| r.name).collect()
    }
}

/// One row of `joot bootstrap --list`.
#[derive(Debug, Clone, Serialize)]
pub struct DistroSummary {
    pub id: &'static str,
    pub title: &'static str,
    pub family: Family,
    pub package_manager: &'static str,
    pub releases: Vec<&'static str>,
    pub default_release: &'static str,
    pub default_variant: &'static str,
    /// The mirror (Debian family) or repository templates (RPM family).
    pub sources: Vec<&'static str>,
}

/// The table as plain rows.
pub fn list() -> Vec<DistroSummary> {
    DISTROS
        .iter()
        .map(|d| DistroSummary {
            id: d.id,
            title: d.title,
            family: d.family,
            package_manager: d.family.package_manager(),
            releases: d.release_names(),
            default_release: d.default_release,
            default_variant: d.default_variant,
            sources: match d.family {
                Family::Debian => vec![d.mirror],
                Family::Rpm => d.repos.to_vec(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for d in DISTROS {
            assert!(d.variants.contains(&d.default_variant), "{}", d.id);
            if !d.releases.is_empty() {
                assert!(d.release(d.default_release).is_some(), "{}", d.id);
            }
            match d.family {
                Family::Debian => {
                    assert!(d.mirror.starts_with("http"), "{}", d.id);
                    assert!(!d.components.is_empty(), "{}", d.id);
                }
                Family::Rpm if d.id != "rpm" => {
                    assert!(!d.repos.is_empty(), "{}", d.id);
                    assert!(d.packages.iter().any(|p| p.ends_with("-release")));
                }
                Family::Rpm => {}
            }
        }
        let mut ids: Vec<_> = DISTROS.iter().map(|d| d.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), DISTROS.len());
    }

    #[test]
    fn aliases_resolve() {
        let d = find("debian").unwrap();
        assert_eq!(d.release("12").unwrap().name, "bookworm");
        assert_eq!(d.release("unstable").unwrap().name, "sid");
        assert!(d.release("buster").is_none());
        assert_eq!(
            find("ubuntu").unwrap().release("24.04").unwrap().name,
            "noble"
        );
    }

    #[test]
    fn list_has_every_distro() {
        let rows = list();
        assert_eq!(rows.len(), DISTROS.len());
        let rocky = rows.iter().find(|r| r.id == "rocky").unwrap();
        assert_eq!(rocky.package_manager, "dnf");
        assert!(rocky.sources[0].contains("$releasever"));
    }
}
