//! The step cache on disk: `ROOT/build-cache/<key>.json` maps a step key to the layer it made
//! ([`joot_recipe::CacheEntry`]); an entry whose layer is gone (removed by `gc`) is a miss.
//! `ROOT/build-cache/explain/<image>.json` keeps the key parts of the last build of each image
//! so `--explain-cache` can say what changed, and `ROOT/build-cache/logs/<image>.log` the
//! output of its last build. Files are written to a temporary name and renamed into place.

use std::path::{Path, PathBuf};

use joot_recipe::{CacheEntry, KeyInputs};
use joot_store::{LayerId, Store};
use serde::{Deserialize, Serialize};

use crate::error::{BuildError, IoAt};

/// The key parts of every step of an image's last build.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LastBuild {
    /// Key parts, by step (index 0 = step 1).
    pub steps: Vec<KeyInputs>,
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), BuildError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).at(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id()
    ));
    joot_store::fsutil::publish_file(&tmp, path, data, true)?;
    Ok(())
}

/// The cache entry for `key` when its layer still exists.
pub fn lookup(store: &Store, key: &str) -> Option<(CacheEntry, LayerId)> {
    let path = store.build_cache_dir().join(format!("{key}.json"));
    let data = std::fs::read(&path).ok()?;
    let entry: CacheEntry = serde_json::from_slice(&data).ok()?;
    let id = LayerId::parse(&entry.layer).ok()?;
    (entry.key == key && store.has_layer(&id)).then_some((entry, id))
}

/// Records `entry`.
pub fn record(store: &Store, entry: &CacheEntry) -> Result<(), BuildError> {
    let path = store.build_cache_dir().join(format!("{}.json", entry.key));
    let data = serde_json::to_vec_pretty(entry).unwrap_or_default();
    write_atomic(&path, &data)
}

fn explain_path(store: &Store, image: &str) -> PathBuf {
    store
        .build_cache_dir()
        .join("explain")
        .join(format!("{image}.json"))
}

/// The key parts of the last build of `image`.
pub fn last_build(store: &Store, image: &str) -> LastBuild {
    std::fs::read(explain_path(store, image))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default()
}

/// Saves the key parts of this build of `image`.
pub fn save_last_build(store: &Store, image: &str, last: &LastBuild) -> Result<(), BuildError> {
    let data = serde_json::to_vec_pretty(last).unwrap_or_default();
    write_atomic(&explain_path(store, image), &data)
}

/// Where the log of the last build of `image` is kept.
pub fn log_path(store: &Store, image: &str) -> PathBuf {
    store
        .build_cache_dir()
        .join("logs")
        .join(format!("{image}.log"))
}
