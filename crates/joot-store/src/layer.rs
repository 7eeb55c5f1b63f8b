//! Layers: directories used directly as overlayfs lower dirs. A layer is built in a staging
//! dir by its producer (import, bootstrap, recipe step) and published by one rename; a layer
//! dir without both `layer.json` and `root/` is never reported and `gc` removes it.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{fsync_dir, publish_file, rename_noreplace, tree_size};
use crate::meta::{LayerId, LayerMeta, META_FORMAT, Origin, now, read_json, to_json};
use crate::staging::Staging;
use crate::store::{Lease, Store};

/// A layer being built: fill [`LayerBuilder::root`], then [`LayerBuilder::publish`]. Dropping
/// it unpublished removes everything. It holds a store lease while alive.
#[derive(Debug)]
pub struct LayerBuilder {
    store: Store,
    staging: Staging,
    id: LayerId,
    diff_id: Option<String>,
    _lease: Lease,
}

impl LayerBuilder {
    /// The directory to fill: becomes `layers/<id>/root/`.
    pub fn root(&self) -> PathBuf {
        self.staging.path().join("layer").join("root")
    }

    /// The id the layer will have.
    pub fn id(&self) -> &LayerId {
        &self.id
    }

    /// Records the OCI diff id (`sha256:...`) so an identical layer can be found and reused.
    pub fn set_diff_id(&mut self, diff_id: impl Into<String>) {
        self.diff_id = Some(diff_id.into());
    }

    /// Computes the size, flushes the tree to disk, writes `layer.json` and renames the layer
    /// into `layers/<id>`. The layer is unreferenced until an image names it: hold a
    /// [`Store::lease`] across publish and `put_image` if `gc` may run concurrently.
    pub fn publish(self, origin: Origin) -> Result<LayerId> {
        let dir = self.staging.path().join("layer");
        let root = self.root();
        let size = tree_size(&root).at(&root)?;
        let meta = LayerMeta {
            format: META_FORMAT,
            id: self.id.clone(),
            created: now(),
            origin,
            size,
            diff_id: self.diff_id.clone(),
        };
        // The tree's data must be on disk before the name appears: one syncfs instead of an
        // fsync per file.
        let f = std::fs::File::open(&root).at(&root)?;
        rustix::fs::syncfs(&f).at(&root)?;
        publish_file(
            &self.staging.path().join("layer.json.tmp"),
            &dir.join("layer.json"),
            &to_json(&meta),
            true,
        )?;
        let dest = self.store.layer_dir(&self.id);
        rename_noreplace(&dir, &dest).at(&dest)?;
        let layers = self.store.root().join("layers");
        fsync_dir(&layers).at(&layers)?;
        Ok(self.id)
    }
}

impl Store {
    /// Starts a new layer in a staging dir.
    pub fn new_layer(&self) -> Result<LayerBuilder> {
        let lease = self.lease()?;
        let staging = self.stage()?;
        let root = staging.path().join("layer").join("root");
        std::fs::create_dir_all(&root).at(&root)?;
        Ok(LayerBuilder {
            store: self.clone(),
            staging,
            id: LayerId::random(),
            diff_id: None,
            _lease: lease,
        })
    }

    /// The metadata of a published layer.
    pub fn layer(&self, id: &LayerId) -> Result<LayerMeta> {
        let not_found = || Error::NotFound {
            kind: "layer",
            name: id.to_string(),
        };
        let json = self.layer_dir(id).join("layer.json");
        if !self.layer_root(id).is_dir() {
            return Err(not_found());
        }
        match read_json::<LayerMeta>(&json) {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(not_found())
            }
            r => r,
        }
    }

    /// True when the layer is published (has `layer.json` and `root/`).
    pub fn has_layer(&self, id: &LayerId) -> bool {
        self.layer_root(id).is_dir() && self.layer_dir(id).join("layer.json").is_file()
    }

    /// All published layers, sorted by id.
    pub fn layers(&self) -> Result<Vec<LayerMeta>> {
        let mut out = Vec::new();
        for id in self.layer_ids()? {
            if let Ok(meta) = self.layer(&id) {
                out.push(meta);
            }
        }
        Ok(out)
    }

    /// Ids of every directory under `layers/` with a valid id name, complete or not.
    pub(crate) fn layer_ids(&self) -> Result<Vec<LayerId>> {
        let dir = self.root().join("layers");
        let mut ids: Vec<LayerId> = list_names(&dir)?
            .into_iter()
            .filter_map(|n| LayerId::parse(&n).ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The root dirs of `layers`, in the same order (bottom to top for an image or env).
    pub fn layer_roots(&self, layers: &[LayerId]) -> Vec<PathBuf> {
        layers.iter().map(|l| self.layer_root(l)).collect()
    }

    /// Bytes of file data in `layers` (from their metadata; a missing layer counts 0).
    pub fn layers_size(&self, layers: &[LayerId]) -> u64 {
        layers
            .iter()
            .filter_map(|l| self.layer(l).ok())
            .map(|m| m.size)
            .sum()
    }

    /// Finds a published layer by its OCI diff id.
    pub fn find_layer_by_diff_id(&self, diff_id: &str) -> Result<Option<LayerId>> {
        Ok(self
            .layers()?
            .into_iter()
            .find(|m| m.diff_id.as_deref() == Some(diff_id))
            .map(|m| m.id))
    }
}

/// File names in `dir` (not starting with '.'), as strings.
pub(crate) fn list_names(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        if let Some(name) = entry.file_name().to_str()
            && !name.starts_with('.')
        {
            out.push(name.to_string());
        }
    }
    Ok(out)
}
