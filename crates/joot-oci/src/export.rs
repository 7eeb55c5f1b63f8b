//! From a store image to OCI documents and blobs: one compressed blob per store layer (cached,
//! see [`crate::cache`]), an image config carrying the run configuration, a manifest; written
//! as an OCI image layout (directory or tar archive) for `skopeo`, `podman load` and friends,
//! or handed to the registry push.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use fs_err as fs;
use joot_store::{Image, LayerId, Store};

use crate::cache::BlobCache;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::{Compression, LayerBlob, TarWriteOptions, write_layer_blob};
use crate::media;
use crate::platform::Platform;
use crate::reporter::{Action, Outcome, Reporter, short};
use crate::spec;

/// Options of [`crate::export_layout`].
#[derive(Clone, Debug, Default)]
pub struct OciExportOptions {
    /// Layer compression (gzip by default).
    pub compression: Compression,
    /// Tag recorded as `org.opencontainers.image.ref.name` (default `latest`).
    pub tag: Option<String>,
    /// Write a layout directory instead of a tar archive.
    pub directory: bool,
    /// Overwrite an existing output.
    pub force: bool,
}

/// Returns the cached blob for a store layer, making (and caching) it when missing.
pub(crate) fn layer_blob(
    store: &Store,
    cache: &BlobCache,
    id: &LayerId,
    compression: Compression,
    reporter: &dyn Reporter,
) -> Result<LayerBlob> {
    let opts = TarWriteOptions::from_env();
    if let Some(b) = cache.layer_blob(id.as_str(), compression, opts.source_date_epoch) {
        reporter.end(&short(id.as_str()), Outcome::Cached);
        return Ok(b);
    }
    let label = short(id.as_str());
    let meta = store.layer(id).map_err(Error::store)?;
    reporter.begin(&label, Action::Compress, Some(meta.size));
    let tmp = cache.temp();
    let result = (|| {
        let out = BufWriter::with_capacity(1 << 20, fs::File::create(&tmp)?);
        let blob = write_layer_blob(&store.layer_root(id), out, compression, &opts)?;
        if let Some(known) = &meta.diff_id
            && *known != blob.diff_id
        {
            tracing::debug!(layer = %id, known, made = blob.diff_id, "layer tar differs from the one it was imported from (mtime clamp or xattrs)");
        }
        cache.commit(&tmp, &Digest::parse(&blob.digest)?)?;
        cache.record_layer_blob(id.as_str(), &blob, opts.source_date_epoch)?;
        Ok(blob)
    })();
    match &result {
        Ok(blob) => reporter.advance(&label, blob.size),
        Err(_) => {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    reporter.end(&label, Outcome::Done);
    result
}

/// The image config and its bytes for `image` whose layers became `blobs`.
pub(crate) fn image_config(image: &Image, blobs: &[LayerBlob]) -> (spec::ImageConfig, Vec<u8>) {
    let host = Platform::host();
    let arch = image
        .distro
        .as_ref()
        .map(|d| match d.arch.as_str() {
            "x86_64" => "amd64".to_string(),
            "aarch64" => "arm64".to_string(),
            "" => host.architecture.clone(),
            other => other.to_string(),
        })
        .unwrap_or(host.architecture);
    let created = joot_store::meta::rfc3339(clamp_epoch(image.created));
    let config = spec::ImageConfig {
        created: Some(created.clone()),
        architecture: arch,
        os: "linux".into(),
        variant: None,
        config: crate::unpack::store_to_runtime(&image.config),
        rootfs: spec::RootFs {
            kind: "layers".into(),
            diff_ids: blobs.iter().map(|b| b.diff_id.clone()).collect(),
        },
        history: blobs
            .iter()
            .map(|_| spec::History {
                created: Some(created.clone()),
                created_by: Some("joot".into()),
                ..Default::default()
            })
            .collect(),
    };
    let bytes = spec::to_bytes(&config);
    (config, bytes)
}

fn clamp_epoch(t: u64) -> u64 {
    match TarWriteOptions::from_env().source_date_epoch {
        Some(e) => t.min(e),
        None => t,
    }
}

/// The manifest (and its bytes) for a config and layer blobs.
pub(crate) fn manifest(config: &[u8], blobs: &[LayerBlob]) -> (spec::Manifest, Vec<u8>) {
    let m = spec::Manifest {
        schema_version: 2,
        media_type: Some(media::MANIFEST.into()),
        config: spec::Descriptor {
            media_type: media::CONFIG.into(),
            digest: Digest::of(config).to_string(),
            size: config.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        },
        layers: blobs
            .iter()
            .map(|b| spec::Descriptor {
                media_type: b.compression.media_type().into(),
                digest: b.digest.clone(),
                size: b.size,
                platform: None,
                annotations: BTreeMap::new(),
            })
            .collect(),
        annotations: BTreeMap::new(),
    };
    let bytes = spec::to_bytes(&m);
    (m, bytes)
}

/// Writes `image` as an OCI image layout at `out`.
pub(crate) fn export_layout(
    store: &Store,
    image: &Image,
    out: &Path,
    opts: &OciExportOptions,
    reporter: &dyn Reporter,
) -> Result<()> {
    if out.symlink_metadata().is_ok() && !opts.force {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists; pass --force to overwrite it", out.display()),
        )));
    }
    let tag = opts.tag.clone().unwrap_or_else(|| "latest".into());
    if tag.is_empty()
        || tag.len() > 128
        || !tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(Error::invalid(
            "tag",
            format!("{tag:?}: use [A-Za-z0-9_.-]{{1,128}}"),
        ));
    }
    let cache = BlobCache::open(store.root())?;
    let blobs: Vec<LayerBlob> = image
        .layers
        .iter()
        .map(|id| layer_blob(store, &cache, id, opts.compression, reporter))
        .collect::<Result<_>>()?;
    let (_, config) = image_config(image, &blobs);
    let (_, manifest) = manifest(&config, &blobs);
    let mut annotations = BTreeMap::new();
    annotations.insert("org.opencontainers.image.ref.name".to_string(), tag.clone());
    annotations.insert(
        "io.containerd.image.name".to_string(),
        format!(
            "localhost/{}:{tag}",
            image.name.as_str().to_ascii_lowercase()
        ),
    );
    let index = spec::Index {
        schema_version: 2,
        media_type: Some(media::INDEX.into()),
        manifests: vec![spec::Descriptor {
            media_type: media::MANIFEST.into(),
            digest: Digest::of(&manifest).to_string(),
            size: manifest.len() as u64,
            platform: None,
            annotations,
        }],
        annotations: BTreeMap::new(),
    };
    let index = spec::to_bytes(&index);
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;

    // Write next to the output and rename, so a failed export leaves no half file.
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".joot-oci-")
        .tempdir_in(parent)?;
    let staged = tmp.path().join("out");
    if opts.directory {
        let blobs_dir = staged.join("blobs/sha256");
        fs::create_dir_all(&blobs_dir)?;
        fs::write(staged.join("oci-layout"), layout)?;
        fs::write(staged.join("index.json"), &index)?;
        for doc in [&config, &manifest] {
            fs::write(blobs_dir.join(Digest::of(doc).hex()), doc)?;
        }
        for b in &blobs {
            let d = Digest::parse(&b.digest)?;
            let dest = blobs_dir.join(d.hex());
            if dest.exists() {
                continue;
            }
            if std::fs::hard_link(cache.path(&d), &dest).is_err() {
                fs::copy(cache.path(&d), &dest)?;
            }
        }
    } else {
        let file = BufWriter::with_capacity(1 << 20, fs::File::create(&staged)?);
        let mut tar = tar::Builder::new(file);
        let dir = |tar: &mut tar::Builder<_>, name: &str| -> io::Result<()> {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(0);
            tar.append_data(&mut h, name, io::empty())
        };
        let file_entry = |tar: &mut tar::Builder<_>,
                          name: &str,
                          size: u64,
                          data: &mut dyn io::Read|
         -> io::Result<()> {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(size);
            h.set_mtime(0);
            tar.append_data(&mut h, name, data)
        };
        file_entry(
            &mut tar,
            "oci-layout",
            layout.len() as u64,
            &mut &layout[..],
        )?;
        file_entry(&mut tar, "index.json", index.len() as u64, &mut &index[..])?;
        dir(&mut tar, "blobs/")?;
        dir(&mut tar, "blobs/sha256/")?;
        for doc in [&config, &manifest] {
            let name = format!("blobs/sha256/{}", Digest::of(doc).hex());
            file_entry(&mut tar, &name, doc.len() as u64, &mut &doc[..])?;
        }
        let mut seen = std::collections::HashSet::new();
        for b in &blobs {
            if !seen.insert(b.digest.clone()) {
                continue;
            }
            let d = Digest::parse(&b.digest)?;
            let f = fs::File::open(cache.path(&d))?;
            let name = format!("blobs/sha256/{}", d.hex());
            file_entry(&mut tar, &name, b.size, &mut io::Read::take(f, b.size))?;
        }
        let mut file = tar.into_inner()?;
        file.flush()?;
        file.get_ref().sync_all()?;
    }
    if opts.force && out.symlink_metadata().is_ok() {
        if out.is_dir() {
            fs::remove_dir_all(out)?;
        } else {
            fs::remove_file(out)?;
        }
    }
    fs::rename(&staged, out)?;
    Ok(())
}
