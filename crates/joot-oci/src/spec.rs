//! The OCI documents joot reads and writes: descriptors, manifests, indexes, image configs
//! (image-spec `descriptor.md`, `manifest.md`, `image-index.md`, `config.md`). Own serde types
//! rather than oci-spec's: they accept the Docker v2 spellings too, ignore unknown fields as the
//! spec asks, and serialise in a fixed field order (the manifest digest depends on it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// The validated digest.
    pub fn digest(&self) -> Result<Digest> {
        Digest::parse(&self.digest)
    }
}

/// A platform as written in an index (image-spec `image-index.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index / manifest list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The runtime part of an image config (`config` in `config.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// `rootfs` of an image config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

/// One `history` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// An image config (OCI `application/vnd.oci.image.config.v1+json`, same shape as Docker's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: RuntimeConfig,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

impl ImageConfig {
    /// The validated diff ids, bottom to top.
    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        if self.rootfs.kind != "layers" {
            return Err(Error::invalid(
                "image config",
                format!("rootfs.type is {:?}, expected \"layers\"", self.rootfs.kind),
            ));
        }
        self.rootfs
            .diff_ids
            .iter()
            .map(|d| Digest::parse(d))
            .collect()
    }
}

/// Parses JSON with a clear error naming the document.
pub fn parse<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::invalid(what, format!("does not parse: {e}")))
}

/// Serialises a document compactly (the bytes that get a digest).
pub fn to_bytes<T: Serialize>(doc: &T) -> Vec<u8> {
    serde_json::to_vec(doc).expect("OCI documents always serialise")
}

/// What a fetched manifest document turned out to be.
pub enum ManifestOrIndex {
    Manifest(Manifest),
    Index(Index),
}

/// Parses a manifest document, using the media type (header or field) to tell manifest from
/// index and falling back to the shape of the JSON.
pub fn parse_manifest_or_index(media_type: Option<&str>, bytes: &[u8]) -> Result<ManifestOrIndex> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: Option<u32>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = parse("manifest", bytes)?;
    if probe.schema_version != Some(2) {
        return Err(Error::Unsupported {
            what: "manifest schema version (only 2 exists in OCI and Docker v2)",
            value: format!("{:?}", probe.schema_version),
        });
    }
    let mt = probe.media_type.as_deref().or(media_type);
    let is_index = match mt {
        Some(mt) => crate::media::is_index(mt),
        None => probe.manifests.is_some(),
    };
    if is_index {
        Ok(ManifestOrIndex::Index(parse("image index", bytes)?))
    } else {
        let m: Manifest = parse("manifest", bytes)?;
        for l in &m.layers {
            if !crate::media::is_layer(&l.media_type) {
                return Err(Error::Unsupported {
                    what: "layer media type",
                    value: l.media_type.clone(),
                });
            }
        }
        Ok(ManifestOrIndex::Manifest(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_parses_with_unknown_fields() {
        let json = br#"{"architecture":"amd64","os":"linux","container_config":{"Hostname":"x"},
            "config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/root","User":"1000"},
            "rootfs":{"type":"layers","diff_ids":["sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"]},
            "history":[{"created":"2024-01-01T00:00:00Z","created_by":"x","empty_layer":true}]}"#;
        let c: ImageConfig = parse("config", json).unwrap();
        assert_eq!(c.config.cmd.as_deref(), Some(&["/bin/sh".to_string()][..]));
        assert_eq!(c.config.user.as_deref(), Some("1000"));
        assert_eq!(c.diff_ids().unwrap().len(), 1);
        assert!(c.history[0].empty_layer);
    }

    #[test]
    fn bad_documents_are_refused_with_their_name() {
        let err = parse::<ImageConfig>("image config", b"{not json").unwrap_err();
        assert!(err.to_string().starts_with("invalid image config"), "{err}");
        let bad_diff = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:../x"]}}"#;
        let c: ImageConfig = parse("config", bad_diff).unwrap();
        assert!(c.diff_ids().is_err());
        assert!(parse_manifest_or_index(None, br#"{"schemaVersion":1}"#).is_err());
        let foreign = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:00","size":1},
            "layers":[{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"sha256:00","size":1}]}"#;
        assert!(matches!(
            parse_manifest_or_index(None, foreign),
            Err(Error::Unsupported { .. })
        ));
    }

    #[test]
    fn index_is_told_from_manifest() {
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            parse_manifest_or_index(None, idx).unwrap(),
            ManifestOrIndex::Index(_)
        ));
    }
}
