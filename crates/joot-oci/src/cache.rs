//! The blob cache under `ROOT/cache/blobs/sha256/`: verified blobs kept after a pull (so an
//! interrupted pull resumes without refetching finished layers, and `.partial` files resume
//! mid-blob with an HTTP range request) and compressed layer blobs made for a push or export
//! (so a second push of the same layer does not compress it again). Every blob is re-hashed
//! when read into the store, so a corrupted cache entry is detected, dropped and refetched.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use fs_err as fs;

use crate::digest::Digest;
use crate::error::Result;
use crate::layer::{Compression, LayerBlob};

/// The cache of one store.
#[derive(Clone, Debug)]
pub struct BlobCache {
    blobs: PathBuf,
    layers: PathBuf,
}

impl BlobCache {
    /// Opens (creating) the cache of the store rooted at `store_root`.
    pub fn open(store_root: &Path) -> Result<BlobCache> {
        let blobs = store_root.join("cache/blobs/sha256");
        let layers = store_root.join("cache/oci/layers");
        fs::create_dir_all(&blobs)?;
        fs::create_dir_all(&layers)?;
        Ok(BlobCache { blobs, layers })
    }

    /// Where a verified blob lives.
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    /// Where a download in progress lives.
    pub fn partial(&self, d: &Digest) -> PathBuf {
        self.blobs.join(format!("{}.partial", d.hex()))
    }

    /// The lock file held by the one process downloading blob `d`.
    pub fn lock_path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(format!("{}.lock", d.hex()))
    }

    /// True when a finished blob is cached.
    pub fn has(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// A fresh temporary file name in the cache directory (same filesystem as the blobs).
    pub fn temp(&self) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.blobs
            .join(format!(".tmp-{}-{nanos}-{n}", std::process::id()))
    }

    /// Moves a finished file into place as blob `d`.
    pub fn commit(&self, tmp: &Path, d: &Digest) -> Result<PathBuf> {
        let dest = self.path(d);
        fs::rename(tmp, &dest)?;
        Ok(dest)
    }

    /// Drops a blob found corrupt, so the next attempt fetches it again.
    pub fn evict(&self, d: &Digest) {
        let _ = std::fs::remove_file(self.path(d));
        let _ = std::fs::remove_file(self.partial(d));
    }

    fn layer_key(&self, layer: &str, c: Compression, epoch: Option<u64>) -> PathBuf {
        let c = match c {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        };
        match epoch {
            Some(e) => self.layers.join(format!("{layer}-{c}-sde{e}.json")),
            None => self.layers.join(format!("{layer}-{c}.json")),
        }
    }

    /// The blob made earlier for store layer `layer` with this compression, if its file is
    /// still cached.
    pub fn layer_blob(&self, layer: &str, c: Compression, epoch: Option<u64>) -> Option<LayerBlob> {
        let bytes = std::fs::read(self.layer_key(layer, c, epoch)).ok()?;
        let blob: LayerBlob = serde_json::from_slice(&bytes).ok()?;
        let d = Digest::parse(&blob.digest).ok()?;
        let meta = std::fs::metadata(self.path(&d)).ok()?;
        (meta.len() == blob.size).then_some(blob)
    }

    /// Records that store layer `layer` is represented by `blob`.
    pub fn record_layer_blob(
        &self,
        layer: &str,
        blob: &LayerBlob,
        epoch: Option<u64>,
    ) -> Result<()> {
        let dest = self.layer_key(layer, blob.compression, epoch);
        let tmp = self.temp();
        fs::write(&tmp, serde_json::to_vec(blob).expect("serialisable"))?;
        fs::rename(&tmp, &dest)?;
        Ok(())
    }
}
