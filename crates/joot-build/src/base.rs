//! Rootfs tarballs as build bases (`from: ./rootfs.tar.zst`): imported once into a layer with
//! the store's hostile-input-safe importer, and found again by the tarball's sha256 through the
//! step cache (`build-cache/<key>.json`), so an unchanged tarball is never imported twice.

use std::path::Path;

use joot_recipe::{CACHE_FORMAT, CacheEntry, KeyInputs, digest_path};
use joot_store::{Image, Name, Origin, Store};

use crate::cache;
use crate::error::{BuildError, IoAt};

/// The image (unpublished: a name and one layer) for the rootfs tarball at `path`.
pub fn import_tarball(store: &Store, path: &Path) -> Result<Image, BuildError> {
    let digest = digest_path(path).at(path)?;
    let inputs = KeyInputs {
        format: CACHE_FORMAT,
        parent: "tarball".into(),
        step: "{\"import\":\"rootfs tarball\"}".into(),
        files: vec![("tarball".into(), digest.clone())],
    };
    let key = inputs.key();
    let name = Name::parse(&format!("tarball-{}", &digest[..12]))?;
    if let Some((_, layer)) = cache::lookup(store, &key) {
        return Ok(Image::new(name, vec![layer]));
    }
    let _lease = store.lease()?;
    let file = std::fs::File::open(path).at(path)?;
    let reader = joot_store::compress::open_decompressed(file).at(path)?;
    let builder = store.new_layer()?;
    joot_store::archive::import_tar(reader, &builder.root())?;
    let layer = builder.publish(Origin::Import {
        source: path.display().to_string(),
    })?;
    cache::record(
        store,
        &CacheEntry {
            format: CACHE_FORMAT,
            key,
            layer: layer.to_string(),
            inputs,
            summary: format!("import {}", path.display()),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        },
    )?;
    Ok(Image::new(name, vec![layer]))
}
