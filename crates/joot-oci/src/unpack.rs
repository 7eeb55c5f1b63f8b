//! From OCI layers to store layers, shared by registry pulls, OCI layouts and `docker save`
//! archives. Each layer is verified twice while it streams (the blob against its digest, the
//! uncompressed tar against the config's diff id), extracted by the store's hostile-input-safe
//! extractor into a staging layer, and its whiteouts converted. Layers are published only once
//! every layer of the image has been verified, so a bad layer leaves nothing in the store; a
//! layer already present (same diff id) is reused, not unpacked again.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use joot_store::{Image, LayerBuilder, LayerId, Name, Origin, Replace, Store};

use crate::digest::{Digest, HashingReader, verify};
use crate::error::{Error, Result};
use crate::layer::{convert_whiteouts, decompress};
use crate::pipe::pipe;
use crate::reporter::{Action, Outcome, Reporter, short};
use crate::spec;

/// One layer to bring in.
pub(crate) struct LayerSource {
    /// The config's diff id for this layer.
    pub diff_id: Digest,
    /// The blob digest, verified while reading when known (unknown for `docker save` layers,
    /// which are named by path; their diff id still verifies them).
    pub blob: Option<Digest>,
    /// Blob size when known.
    pub size: Option<u64>,
}

/// An opened layer blob.
pub(crate) struct Opened {
    pub reader: Box<dyn Read + Send>,
    /// The blob was verified against its digest moments ago (a fresh download).
    pub verified: bool,
}

impl Opened {
    pub(crate) fn unverified(reader: Box<dyn Read + Send>) -> Opened {
        Opened {
            reader,
            verified: false,
        }
    }
}

/// Opens the blob of layer `index`.
pub(crate) type OpenBlob<'a> = dyn FnMut(usize) -> Result<Opened> + 'a;

/// Whether layer `i` must be fetched: false when the store has its diff id already.
pub(crate) fn present(store: &Store, diff_id: &Digest) -> Result<Option<LayerId>> {
    store
        .find_layer_by_diff_id(&diff_id.to_string())
        .map_err(Error::store)
}

/// Brings `layers` into the store as image `name` with `config`'s run configuration.
#[allow(clippy::too_many_arguments)]
pub(crate) fn import_image(
    store: &Store,
    name: &Name,
    config: &spec::ImageConfig,
    layers: &[LayerSource],
    open: &mut OpenBlob<'_>,
    origin: &str,
    replace: Replace,
    reporter: &dyn Reporter,
) -> Result<Image> {
    let diff_ids = config.diff_ids()?;
    if diff_ids.len() != layers.len() {
        return Err(Error::invalid(
            "image",
            format!(
                "the config lists {} diff ids but the manifest has {} layers",
                diff_ids.len(),
                layers.len()
            ),
        ));
    }
    let _lease = store.lease().map_err(Error::store)?;
    let mut ids: Vec<LayerId> = Vec::with_capacity(layers.len());
    let mut staged: Vec<LayerBuilder> = Vec::new();
    let mut in_batch: HashMap<Digest, LayerId> = HashMap::new();
    for (i, src) in layers.iter().enumerate() {
        if src.diff_id != diff_ids[i] {
            return Err(Error::invalid(
                "image",
                format!(
                    "layer {i}: diff id {} does not match the config",
                    src.diff_id
                ),
            ));
        }
        let label = short(&src.diff_id.to_string());
        if let Some(id) = present(store, &src.diff_id)? {
            reporter.end(&label, Outcome::AlreadyPresent);
            ids.push(id);
            continue;
        }
        if let Some(id) = in_batch.get(&src.diff_id) {
            ids.push(id.clone());
            continue;
        }
        let mut builder = store.new_layer().map_err(Error::store)?;
        reporter.begin(&label, Action::Unpack, src.size);
        let opened = open(i)?;
        let bytes = unpack_layer(
            opened,
            src,
            &builder,
            store.xattr_ns().opaque_xattr(),
            &format!("{i} ({})", src.diff_id),
        )?;
        reporter.advance(&label, bytes);
        reporter.end(&label, Outcome::Done);
        builder.set_diff_id(src.diff_id.to_string());
        in_batch.insert(src.diff_id.clone(), builder.id().clone());
        ids.push(builder.id().clone());
        staged.push(builder);
    }
    for builder in staged {
        builder
            .publish(Origin::Oci {
                reference: origin.to_string(),
            })
            .map_err(Error::store)?;
    }
    let mut image = Image::new(name.clone(), ids);
    image.config = runtime_to_store(&config.config);
    store.put_image(&image, replace).map_err(Error::store)?;
    Ok(image)
}

/// What the reading thread measured: the blob's digest and size (when checked), the diff id
/// and size of the tar.
type Streamed = (Option<(Digest, u64)>, (Digest, u64));

/// Streams one blob through both digests into the builder's root. Reading, hashing and
/// decompressing run on a second thread, the store's extractor on this one.
fn unpack_layer(
    opened: Opened,
    src: &LayerSource,
    builder: &LayerBuilder,
    opaque_xattr: &str,
    what: &str,
) -> Result<u64> {
    let root = builder.root();
    // A blob this pull has just downloaded and verified is not hashed a second time.
    let want_blob = if opened.verified {
        None
    } else {
        src.blob.clone()
    };
    let failed = AtomicBool::new(false);
    let (produced, extracted) = std::thread::scope(|s| {
        let (mut w, r) = pipe();
        let want_blob = want_blob.is_some();
        let failed = &failed;
        let producer = s.spawn(move || -> Result<Option<Streamed>> {
            let mut raw = HashingReader::new(opened.reader);
            let diff = {
                let mut tar = match decompress(&mut raw) {
                    Ok(d) => HashingReader::new(d),
                    Err(e) => {
                        w.fail(&io::Error::other(e.to_string()));
                        return Err(e);
                    }
                };
                let mut buf = vec![0u8; 256 * 1024];
                let mut consumer_gone = false;
                loop {
                    let n = match tar.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) => {
                            w.fail(&e);
                            return Err(Error::invalid(
                                format!("layer {what}"),
                                format!("cannot read the blob: {e}; it is corrupt or truncated, nothing was stored"),
                            ));
                        }
                    };
                    if !consumer_gone && w.write_all(&buf[..n]).is_err() {
                        // The extractor is done (end-of-archive) or failed; the diff id covers
                        // the whole stream, so keep reading unless it failed.
                        consumer_gone = true;
                    }
                    if failed.load(Ordering::Relaxed) {
                        // The extractor refused the layer: its error is the one to report.
                        return Ok(None);
                    }
                }
                let _ = w.finish();
                tar.finish()?
            };
            let blob = if want_blob {
                Some(raw.finish()?)
            } else {
                None
            };
            Ok(Some((blob, diff)))
        });
        let extracted = joot_store::archive::import_tar(r, &root);
        if extracted.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(Error::invalid("layer", "decompression thread panicked")));
        (produced, extracted)
    });
    let refused = |e: joot_store::Error| Error::UnsafeLayer {
        layer: what.to_string(),
        reason: e.to_string(),
    };
    // A stream that cannot be read (corrupt, truncated) is the cause of whatever the extractor
    // then said; otherwise the extractor's refusal is the error.
    let (blob, (diff, tar_bytes)) = match (produced, extracted) {
        (Err(e), _) => return Err(e),
        (Ok(_), Err(e)) => return Err(refused(e)),
        (Ok(Some(p)), Ok(_)) => p,
        (Ok(None), Ok(_)) => return Err(Error::invalid("layer", "extraction stopped")),
    };
    if let (Some(want), Some((got, n))) = (&want_blob, &blob) {
        if let Some(size) = src.size
            && *n != size
        {
            return Err(Error::Truncated {
                digest: want.to_string(),
                expected: size,
                actual: *n,
            });
        }
        verify(&format!("layer {what} blob"), want, got)?;
    }
    verify(&format!("layer {what} diff id"), &src.diff_id, &diff)?;
    convert_whiteouts(&root, opaque_xattr, what)?;
    Ok(tar_bytes)
}

/// OCI run config -> store image config.
pub(crate) fn runtime_to_store(c: &spec::RuntimeConfig) -> joot_store::ImageConfig {
    joot_store::ImageConfig {
        env: c.env.clone().unwrap_or_default(),
        entrypoint: c.entrypoint.clone().unwrap_or_default(),
        cmd: c.cmd.clone().unwrap_or_default(),
        workdir: c.working_dir.clone().filter(|w| !w.is_empty()),
        user: c.user.clone().filter(|u| !u.is_empty()),
        labels: c.labels.clone().unwrap_or_default(),
    }
}

/// Store image config -> OCI run config.
pub(crate) fn store_to_runtime(c: &joot_store::ImageConfig) -> spec::RuntimeConfig {
    let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    spec::RuntimeConfig {
        user: c.user.clone(),
        env: some(&c.env),
        entrypoint: some(&c.entrypoint),
        cmd: some(&c.cmd),
        working_dir: c.workdir.clone(),
        labels: (!c.labels.is_empty()).then(|| c.labels.clone()),
        stop_signal: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_config_round_trips() {
        let oci = spec::RuntimeConfig {
            user: Some("1000:1000".into()),
            env: Some(vec!["PATH=/bin".into(), "A=b".into()]),
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            cmd: Some(vec!["echo hi".into()]),
            working_dir: Some("/srv".into()),
            labels: Some([("k".to_string(), "v".to_string())].into()),
            stop_signal: None,
        };
        assert_eq!(store_to_runtime(&runtime_to_store(&oci)), oci);
        assert_eq!(
            store_to_runtime(&joot_store::ImageConfig::default()),
            spec::RuntimeConfig::default()
        );
    }
}
