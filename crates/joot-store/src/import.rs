//! `joot import` as one call: a (possibly compressed) rootfs tarball becomes a one-layer image.

use std::io::Read;

use crate::archive::{ImportOptions, ImportStats, import_tar_with};
use crate::compress::open_decompressed;
use crate::error::{Error, Result};
use crate::meta::{Image, Origin};
use crate::name::Name;
use crate::store::{Replace, Store};

impl Store {
    /// Decompresses `reader` (gzip, xz, zstd or plain, by magic bytes), imports it as a new
    /// layer and publishes image `name` made of that layer. `source` is recorded in the
    /// layer's origin (a path, or `-` for stdin). Nothing is published if any entry fails.
    pub fn import_image<R: Read>(
        &self,
        reader: R,
        name: &Name,
        source: &str,
        replace: Replace,
    ) -> Result<(Image, ImportStats)> {
        if replace == Replace::No && self.image_path(name).exists() {
            return Err(Error::AlreadyExists {
                kind: "image",
                name: name.to_string(),
            });
        }
        let lease = self.lease()?;
        let builder = self.new_layer()?;
        let reader = open_decompressed(reader).map_err(|e| Error::NotArchive(e.to_string()))?;
        let stats = import_tar_with(reader, &builder.root(), &ImportOptions::default())?;
        let id = builder.publish(Origin::Import {
            source: source.to_string(),
        })?;
        let image = Image::new(name.clone(), vec![id]);
        self.put_image(&image, replace)?;
        drop(lease);
        Ok((image, stats))
    }
}
