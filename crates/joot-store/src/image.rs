//! Images: ordered layer lists plus metadata, one JSON file each under `images/`, published
//! by rename (`RENAME_NOREPLACE` unless replacing is asked for).

use std::io;

use crate::error::{Error, IoContext, Result};
use crate::fsutil::publish_file;
use crate::layer::list_names;
use crate::meta::{EnvSource, Image, META_FORMAT, read_json, to_json};
use crate::name::Name;
use crate::store::{Replace, Store};

impl Store {
    /// Publishes an image. Every layer must exist. With `Replace::No` an existing image of the
    /// same name is an "already exists" error.
    pub fn put_image(&self, image: &Image, replace: Replace) -> Result<()> {
        for id in &image.layers {
            if !self.has_layer(id) {
                return Err(Error::NotFound {
                    kind: "layer",
                    name: id.to_string(),
                });
            }
        }
        let mut image = image.clone();
        image.format = META_FORMAT;
        let st = self.stage()?;
        let dest = self.image_path(&image.name);
        match publish_file(
            &st.path().join("image.json"),
            &dest,
            &to_json(&image),
            replace == Replace::Yes,
        ) {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists {
                    kind: "image",
                    name: image.name.to_string(),
                })
            }
            r => r,
        }
    }

    /// Reads an image.
    pub fn image(&self, name: &Name) -> Result<Image> {
        match read_json::<Image>(&self.image_path(name)) {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(Error::NotFound {
                    kind: "image",
                    name: name.to_string(),
                })
            }
            r => r,
        }
    }

    /// All images, sorted by name. Unreadable files are skipped with a warning.
    pub fn images(&self) -> Result<Vec<Image>> {
        let mut out = Vec::new();
        for file in list_names(&self.root().join("images"))? {
            let Some(stem) = file.strip_suffix(".json") else {
                continue;
            };
            let Ok(name) = Name::parse(stem) else {
                continue;
            };
            match self.image(&name) {
                Ok(img) => out.push(img),
                Err(e) => tracing::warn!(image = %name, error = %e, "skipping unreadable image"),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Names of the envs created from image `name`.
    pub fn envs_using_image(&self, name: &Name) -> Result<Vec<Name>> {
        Ok(self
            .envs()?
            .into_iter()
            .filter(|e| matches!(&e.source, EnvSource::Image { name: n, .. } if n == name))
            .map(|e| e.name)
            .collect())
    }

    /// Removes an image. Refused while envs use it unless `force` (the envs keep working:
    /// they hold their own snapshot of the layer list). Layers are left for `gc`.
    pub fn remove_image(&self, name: &Name, force: bool) -> Result<()> {
        let path = self.image_path(name);
        if !path.exists() {
            return Err(Error::NotFound {
                kind: "image",
                name: name.to_string(),
            });
        }
        if !force {
            let users = self.envs_using_image(name)?;
            if !users.is_empty() {
                return Err(Error::ImageInUse {
                    image: name.to_string(),
                    envs: users.iter().map(|n| n.to_string()).collect(),
                });
            }
        }
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound {
                kind: "image",
                name: name.to_string(),
            }),
            r => r.at(&path),
        }
    }
}
