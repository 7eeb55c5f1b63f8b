//! The metadata types the store keeps as JSON: layers, images, envs. Every file carries a
//! `format` version so a later release can migrate it; a file with a newer format than this
//! build knows is refused instead of being misread.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::name::Name;

/// Format version of `layer.json`, `images/*.json` and `env.json` written by this build.
pub const META_FORMAT: u32 = 1;

/// Seconds since the Unix epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`), for metadata that
/// other tools read (OCI configs) and for listings.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since the epoch (Howard Hinnant's algorithm, proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A layer id: 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct LayerId(String);

impl LayerId {
    /// Validates a layer id.
    pub fn parse(s: &str) -> Result<LayerId> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(LayerId(s.to_string()))
        } else {
            Err(Error::InvalidLayerId(s.to_string()))
        }
    }

    /// A fresh random id: sha256 of random bytes, the time and the pid.
    pub fn random() -> LayerId {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(crate::fsutil::random_bytes());
        h.update(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                .to_le_bytes(),
        );
        h.update(std::process::id().to_le_bytes());
        LayerId(hex::encode(h.finalize()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LayerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<LayerId, D::Error> {
        let s = String::deserialize(d)?;
        LayerId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where a layer came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// `joot import`: a rootfs tarball (path, `-` for stdin).
    Import { source: String },
    /// A distro bootstrap (mmdebstrap, dnf), with a human-readable spec.
    Bootstrap { spec: String },
    /// `commit_env`: the upper dir of an env.
    Commit {
        env: String,
        #[serde(default)]
        command: Option<String>,
    },
    /// One step of a recipe.
    Recipe {
        recipe: String,
        step_index: usize,
        module: String,
    },
    /// An OCI image layer.
    Oci { reference: String },
    /// Read back from a disk image.
    DiskImage { source: String },
    /// Anything else, described in words.
    Other { description: String },
}

/// `layers/<id>/layer.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    pub format: u32,
    pub id: LayerId,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub origin: Origin,
    /// Bytes of file data in the layer (apparent sizes of regular files and symlinks).
    pub size: u64,
    /// The OCI diff id (`sha256:...` of the uncompressed layer tar) when known.
    #[serde(default)]
    pub diff_id: Option<String>,
}

/// The run configuration an image carries (OCI-like).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// What distribution an image holds, when known (for package installs and disk images).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Distro {
    /// `debian`, `fedora`, ... (the os-release `ID_LIKE` family or the id itself).
    pub family: String,
    /// os-release `ID`.
    pub id: String,
    /// os-release `VERSION_ID` or codename.
    pub release: String,
    /// `amd64`, `x86_64`, ...
    pub arch: String,
    /// `apt`, `dnf`, ...
    pub package_manager: String,
}

/// `images/<name>.json`: an ordered list of layers plus metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub format: u32,
    pub name: Name,
    /// Bottom to top.
    pub layers: Vec<LayerId>,
    #[serde(default)]
    pub config: ImageConfig,
    #[serde(default)]
    pub distro: Option<Distro>,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The image this one was derived from, if any.
    #[serde(default)]
    pub parent: Option<String>,
}

impl Image {
    /// A new image of `layers` (bottom to top) created now, with default config.
    pub fn new(name: Name, layers: Vec<LayerId>) -> Image {
        Image {
            format: META_FORMAT,
            name,
            layers,
            config: ImageConfig::default(),
            distro: None,
            created: now(),
            parent: None,
        }
    }
}

/// What an env's root is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EnvSource {
    /// The layers of an image, snapshotted at creation (bottom to top), so removing or
    /// replacing the image later does not change the env.
    Image { name: Name, layers: Vec<LayerId> },
    /// The host's own root, read-only underneath the env's upper dir.
    Host,
}

impl EnvSource {
    /// An env source snapshotting `image`'s layers.
    pub fn from_image(image: &Image) -> EnvSource {
        EnvSource::Image {
            name: image.name.clone(),
            layers: image.layers.clone(),
        }
    }

    /// The layers bottom to top (empty for the host).
    pub fn layers(&self) -> &[LayerId] {
        match self {
            EnvSource::Image { layers, .. } => layers,
            EnvSource::Host => &[],
        }
    }
}

/// A bind mount from the host into the env.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindSpec {
    pub src: PathBuf,
    pub dst: PathBuf,
    #[serde(default)]
    pub readonly: bool,
}

/// Network mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetMode {
    /// Share the host's network namespace.
    #[default]
    Host,
    /// A new network namespace with only loopback, up.
    None,
}

/// The stored run configuration of an env.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvConfig {
    pub binds: Vec<BindSpec>,
    pub net: NetMode,
    /// `K=V` entries added to the clean environment.
    pub env: Vec<String>,
    /// Defaults to the env's name.
    pub hostname: Option<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// Named commands (`start`, `stop`, ...): name -> shell command run inside the env.
    pub commands: BTreeMap<String, String>,
    /// A host-side shell command run before entering the env.
    pub hook: Option<String>,
    pub privileged: bool,
    /// Bind the calling user's identity (rootless use).
    pub bind_user: bool,
}

/// `envs/<name>/env.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Env {
    pub format: u32,
    pub name: Name,
    pub source: EnvSource,
    #[serde(default)]
    pub config: EnvConfig,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

/// Reads a JSON metadata file, refusing a newer `format` with a clear message.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let data = std::fs::read(path).at(path)?;
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        format: u32,
    }
    let probe: Probe = serde_json::from_slice(&data).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    if probe.format > META_FORMAT {
        return Err(Error::NewerFormat {
            path: path.to_path_buf(),
            found: probe.format,
            supported: META_FORMAT,
        });
    }
    serde_json::from_slice(&data).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Serializes metadata as pretty JSON with a trailing newline.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(value).expect("metadata serializes");
    v.push(b'\n');
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_305_600 + 3661), "2026-11-22T01:01:01Z");
    }

    #[test]
    fn layer_ids_are_validated_and_random() {
        let a = LayerId::random();
        let b = LayerId::random();
        assert_ne!(a, b);
        assert_eq!(LayerId::parse(a.as_str()).unwrap(), a);
        assert!(LayerId::parse("abc").is_err());
        assert!(LayerId::parse(&"A".repeat(64)).is_err());
        assert!(LayerId::parse(&"../".repeat(21)).is_err());
    }

    #[test]
    fn env_json_round_trips_with_defaults() {
        let env = Env {
            format: META_FORMAT,
            name: Name::parse("web").unwrap(),
            source: EnvSource::Image {
                name: Name::parse("deb").unwrap(),
                layers: vec![LayerId::random()],
            },
            config: EnvConfig {
                net: NetMode::None,
                commands: [("start".to_string(), "nginx".to_string())].into(),
                ..EnvConfig::default()
            },
            created: 1,
        };
        let json = to_json(&env);
        let back: Env = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, env);
        let minimal: Env =
            serde_json::from_str(r#"{"format":1,"name":"h","source":{"kind":"host"},"created":0}"#)
                .unwrap();
        assert_eq!(minimal.config, EnvConfig::default());
    }

    #[test]
    fn origin_is_tagged() {
        let o = Origin::Recipe {
            recipe: "r.yaml".into(),
            step_index: 3,
            module: "apt".into(),
        };
        let s = serde_json::to_string(&o).unwrap();
        assert!(s.contains(r#""kind":"recipe""#), "{s}");
        assert_eq!(serde_json::from_str::<Origin>(&s).unwrap(), o);
    }
}
