//! Platforms (`os/arch[/variant]`) and the choice of one manifest from a multi-arch index: the
//! host's by default, `--platform` when given.

use std::fmt;

use crate::error::{Error, Result};
use crate::spec::{Descriptor, Index};

/// A wanted platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`, e.g. `linux/arm64/v8`.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || {
            Error::invalid(
                "platform",
                format!("{s:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64"),
            )
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform {
                os: os.to_string(),
                architecture: normalize_arch(arch).to_string(),
                variant: None,
            }),
            [os, arch, variant] => Ok(Platform {
                os: os.to_string(),
                architecture: normalize_arch(arch).to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(bad()),
        }
    }

    /// The platform of this machine in OCI (GOARCH) spelling.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(String::from),
        }
    }

    fn matches(&self, p: &crate::spec::Platform, strict_variant: bool) -> bool {
        if p.os != self.os || normalize_arch(&p.architecture) != self.architecture {
            return false;
        }
        match (&self.variant, &p.variant) {
            (Some(want), Some(have)) => want == have,
            (Some(_), None) => !strict_variant,
            (None, _) => true,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Picks the manifest for `want` from `index` (exact variant first, then a manifest that names
/// no variant). Attestation manifests (`unknown/unknown`) are never chosen.
pub fn select<'a>(index: &'a Index, want: &Platform, reference: &str) -> Result<&'a Descriptor> {
    let candidates = || {
        index
            .manifests
            .iter()
            .filter(|d| !crate::media::is_index(&d.media_type))
    };
    let found = candidates()
        .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p, true)))
        .or_else(|| {
            candidates().find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p, false)))
        });
    found.ok_or_else(|| Error::NoPlatform {
        reference: reference.to_string(),
        platform: want.to_string(),
        available: index
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .map(|p| match &p.variant {
                Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                None => format!("{}/{}", p.os, p.architecture),
            })
            .collect::<Vec<_>>()
            .join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;

    fn desc(arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            media_type: crate::media::MANIFEST.into(),
            digest: format!("sha256:{}", hex::encode([n; 32])),
            size: 1,
            platform: Some(spec::Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(String::from),
            }),
            annotations: Default::default(),
        }
    }

    #[test]
    fn parses_platforms() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.architecture, "arm64");
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().architecture,
            "amd64"
        );
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selects_host_or_override() {
        let index = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![
                desc("amd64", None, 1),
                desc("arm64", Some("v8"), 2),
                desc("arm", Some("v6"), 3),
                desc("arm", Some("v7"), 4),
            ],
            annotations: Default::default(),
        };
        let amd = select(&index, &Platform::parse("linux/amd64").unwrap(), "r").unwrap();
        assert_eq!(amd.digest, index.manifests[0].digest);
        let v7 = select(&index, &Platform::parse("linux/arm/v7").unwrap(), "r").unwrap();
        assert_eq!(v7.digest, index.manifests[3].digest);
        let arm64 = select(&index, &Platform::parse("linux/arm64").unwrap(), "r").unwrap();
        assert_eq!(arm64.digest, index.manifests[1].digest);
        let err = select(&index, &Platform::parse("linux/s390x").unwrap(), "r").unwrap_err();
        assert!(err.to_string().contains("linux/arm/v7"), "{err}");
        let host = select(&index, &Platform::host(), "r");
        if Platform::host().architecture == "amd64" {
            assert_eq!(host.unwrap().digest, index.manifests[0].digest);
        }
    }
}
