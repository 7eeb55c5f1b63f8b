//! `joot import` of images made by other tools: `docker save` archives (`manifest.json` plus
//! layer tars named by path) and OCI image layouts (`oci-layout`, `index.json`, `blobs/`), as a
//! directory or a tar (plain, gzip or zstd), told apart by content, not by file name.
//!
//! A tar is indexed once (entry name -> data offset and size) and its members are then read in
//! place, so a multi-gigabyte archive is never copied; a compressed archive is first
//! decompressed into the store's staging area.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use fs_err as fs;
use joot_store::{Image, Name, Replace, Store};
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::platform::{self, Platform};
use crate::reporter::Reporter;
use crate::spec::{self, ManifestOrIndex};
use crate::unpack::{LayerSource, Opened, import_image};

/// True when `path` is a `docker save` archive or an OCI image layout (directory or tar,
/// possibly compressed).
pub fn detect(path: &Path) -> bool {
    kind(path).is_ok_and(|k| k.is_some())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    LayoutDir,
    LayoutTar,
    DockerTar,
}

fn kind(path: &Path) -> Result<Option<Kind>> {
    let meta = fs::metadata(path)?;
    if meta.is_dir() {
        let is_layout = path.join("oci-layout").is_file() && path.join("index.json").is_file();
        return Ok(is_layout.then_some(Kind::LayoutDir));
    }
    let mut file = fs::File::open(path)?;
    let mut head = [0u8; 4];
    let n = file.read(&mut head)?;
    file.seek(SeekFrom::Start(0))?;
    let (mut docker, mut layout) = (false, false);
    let mut note = |p: &Path| -> bool {
        match normalize(p).as_deref() {
            Some("manifest.json") => docker = true,
            Some("oci-layout") | Some("index.json") => layout = true,
            _ => {}
        }
        layout
    };
    // A plain tar is scanned by seeking over member data; a compressed one has to be read.
    if Compression::sniff(&head[..n]) == Compression::None {
        let mut archive = tar::Archive::new(file);
        let Ok(entries) = archive.entries_with_seek() else {
            return Ok(None);
        };
        for entry in entries {
            let Ok(entry) = entry else { return Ok(None) };
            if let Ok(p) = entry.path()
                && note(&p)
            {
                break;
            }
        }
    } else {
        let mut archive = tar::Archive::new(crate::layer::decompress(file)?);
        let Ok(entries) = archive.entries() else {
            return Ok(None);
        };
        for entry in entries {
            let Ok(entry) = entry else { return Ok(None) };
            if let Ok(p) = entry.path()
                && note(&p)
            {
                break;
            }
        }
    }
    // docker >= 25 writes both; the layout part is the richer description.
    Ok(if layout {
        Some(Kind::LayoutTar)
    } else if docker {
        Some(Kind::DockerTar)
    } else {
        None
    })
}

/// Normalises an archive member name: strips `./`, refuses `..` and absolute names.
fn normalize(p: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_str()?.to_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Where the members of an image archive are.
enum Members {
    Dir(PathBuf),
    Tar {
        file: PathBuf,
        index: HashMap<String, (u64, u64)>,
    },
}

impl Members {
    fn index_tar(file: PathBuf) -> Result<Members> {
        let f = fs::File::open(&file)?;
        let mut archive = tar::Archive::new(f);
        let mut index = HashMap::new();
        let mut links = Vec::new();
        for entry in archive.entries_with_seek()? {
            let entry = entry?;
            let Some(name) = normalize(&entry.path()?) else {
                continue;
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    index.insert(name, (entry.raw_file_position(), entry.size()));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Some(target) = entry.link_name()? {
                        let is_sym = entry.header().entry_type() == tar::EntryType::Symlink;
                        let base = if is_sym {
                            Path::new(&name)
                                .parent()
                                .unwrap_or(Path::new(""))
                                .join(target)
                        } else {
                            target.into_owned()
                        };
                        if let Some(t) = normalize(&base) {
                            links.push((name, t));
                        }
                    }
                }
                _ => {}
            }
        }
        // Older `docker save` links identical layers to each other (`a/layer.tar ->
        // ../b/layer.tar`); resolve a few hops.
        for _ in 0..8 {
            for (name, target) in &links {
                if let Some(v) = index.get(target).copied() {
                    index.entry(name.clone()).or_insert(v);
                }
            }
        }
        Ok(Members::Tar { file, index })
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        match self {
            Members::Dir(dir) => {
                let Some(n) = normalize(Path::new(name)) else {
                    return Err(Error::invalid("archive", format!("member name {name:?}")));
                };
                Ok(Box::new(io::BufReader::new(fs::File::open(dir.join(n))?)))
            }
            Members::Tar { file, index } => {
                let Some(&(offset, size)) = normalize(Path::new(name)).and_then(|n| index.get(&n))
                else {
                    return Err(Error::invalid(
                        "archive",
                        format!("{} has no member {name:?}", file.display()),
                    ));
                };
                let mut f = fs::File::open(file)?;
                f.seek(SeekFrom::Start(offset))?;
                Ok(Box::new(io::BufReader::new(f.take(size))))
            }
        }
    }

    fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open(name)?.take(limit).read_to_end(&mut out)?;
        Ok(out)
    }

    fn blob_name(d: &Digest) -> String {
        format!("blobs/sha256/{}", d.hex())
    }
}

/// Documents are small; anything bigger than this is not a manifest or config.
const DOC_LIMIT: u64 = 16 << 20;

/// Imports a `docker save` archive or OCI layout at `path` as image `name`.
pub fn import_archive(
    store: &Store,
    path: &Path,
    name: &Name,
    reporter: &dyn Reporter,
) -> Result<Image> {
    import_archive_with(store, path, name, &ImportOptions::default(), reporter)
}

/// Options for [`import_archive_with`].
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Platform to pick from a multi-platform layout (default: the host's).
    pub platform: Option<Platform>,
    /// Replace an existing image of the same name.
    pub replace: bool,
}

/// [`import_archive`] with options.
pub fn import_archive_with(
    store: &Store,
    path: &Path,
    name: &Name,
    opts: &ImportOptions,
    reporter: &dyn Reporter,
) -> Result<Image> {
    let kind = kind(path)?.ok_or_else(|| Error::UnknownArchive {
        path: path.to_path_buf(),
    })?;
    // A compressed archive is decompressed into staging once, so members can be read in place.
    let staging;
    let members = match kind {
        Kind::LayoutDir => Members::Dir(path.to_path_buf()),
        Kind::LayoutTar | Kind::DockerTar => {
            let mut head = [0u8; 4];
            let n = fs::File::open(path)?.read(&mut head)?;
            if Compression::sniff(&head[..n]) == Compression::None {
                Members::index_tar(path.to_path_buf())?
            } else {
                staging = store.stage().map_err(Error::store)?;
                let plain = staging.path().join("archive.tar");
                let mut out = fs::File::create(&plain)?;
                io::copy(
                    &mut crate::layer::decompress(fs::File::open(path)?)?,
                    &mut out,
                )?;
                Members::index_tar(plain)?
            }
        }
    };
    let origin = path.display().to_string();
    let replace = if opts.replace {
        Replace::Yes
    } else {
        Replace::No
    };
    match kind {
        Kind::DockerTar => import_docker(store, &members, name, &origin, replace, reporter),
        Kind::LayoutDir | Kind::LayoutTar => {
            let want = opts.platform.clone().unwrap_or_else(Platform::host);
            import_layout(store, &members, name, &origin, &want, replace, reporter)
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn import_docker(
    store: &Store,
    members: &Members,
    name: &Name,
    origin: &str,
    replace: Replace,
    reporter: &dyn Reporter,
) -> Result<Image> {
    let entries: Vec<DockerManifestEntry> = spec::parse(
        "docker manifest.json",
        &members.read("manifest.json", DOC_LIMIT)?,
    )?;
    let entry = match entries.as_slice() {
        [one] => one,
        [] => return Err(Error::invalid("docker manifest.json", "it lists no image")),
        many => {
            let tags: Vec<String> = many
                .iter()
                .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
                .collect();
            reporter.note(&format!(
                "archive holds {} images ({}); importing the first",
                many.len(),
                tags.join(", ")
            ));
            &many[0]
        }
    };
    let config_bytes = members.read(&entry.config, DOC_LIMIT)?;
    // Newer docker names the config `blobs/sha256/<hex>`: check it when it does.
    if let Some(hex) = entry.config.strip_prefix("blobs/sha256/")
        && let Ok(want) = Digest::parse(&format!("sha256:{hex}"))
    {
        crate::digest::verify("image config", &want, &Digest::of(&config_bytes))?;
    }
    let config: spec::ImageConfig = spec::parse("image config", &config_bytes)?;
    let diff_ids = config.diff_ids()?;
    if diff_ids.len() != entry.layers.len() {
        return Err(Error::invalid(
            "docker manifest.json",
            format!(
                "{} layers but the config lists {} diff ids",
                entry.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let layers: Vec<LayerSource> = diff_ids
        .into_iter()
        .map(|diff_id| LayerSource {
            diff_id,
            blob: None,
            size: None,
        })
        .collect();
    let mut open = |i: usize| members.open(&entry.layers[i]).map(Opened::unverified);
    import_image(
        store, name, &config, &layers, &mut open, origin, replace, reporter,
    )
}

fn import_layout(
    store: &Store,
    members: &Members,
    name: &Name,
    origin: &str,
    want: &Platform,
    replace: Replace,
    reporter: &dyn Reporter,
) -> Result<Image> {
    let index: spec::Index = spec::parse("index.json", &members.read("index.json", DOC_LIMIT)?)?;
    let mut desc = match index.manifests.as_slice() {
        [] => return Err(Error::invalid("index.json", "it lists no manifest")),
        [one] => one.clone(),
        _ => platform::select(&index, want, origin)?.clone(),
    };
    // Follow nested indexes (a layout whose index points at a multi-arch index).
    let manifest = loop {
        let bytes = read_verified(members, &desc)?;
        match spec::parse_manifest_or_index(Some(&desc.media_type), &bytes)? {
            ManifestOrIndex::Manifest(m) => break m,
            ManifestOrIndex::Index(i) => desc = platform::select(&i, want, origin)?.clone(),
        }
    };
    let config_bytes = read_verified(members, &manifest.config)?;
    let config: spec::ImageConfig = spec::parse("image config", &config_bytes)?;
    let diff_ids = config.diff_ids()?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(Error::invalid(
            "manifest",
            format!(
                "{} layers but the config lists {} diff ids",
                manifest.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let layers: Vec<LayerSource> = manifest
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| {
            Ok(LayerSource {
                diff_id,
                blob: Some(d.digest()?),
                size: Some(d.size),
            })
        })
        .collect::<Result<_>>()?;
    let mut open = |i: usize| {
        let d = layers[i].blob.as_ref().expect("layout layers have digests");
        members.open(&Members::blob_name(d)).map(Opened::unverified)
    };
    import_image(
        store, name, &config, &layers, &mut open, origin, replace, reporter,
    )
}

fn read_verified(members: &Members, desc: &spec::Descriptor) -> Result<Vec<u8>> {
    let d = desc.digest()?;
    if desc.size > DOC_LIMIT {
        return Err(Error::invalid(
            "descriptor",
            format!("{} claims {} bytes for a JSON document", d, desc.size),
        ));
    }
    let bytes = members.read(&Members::blob_name(&d), DOC_LIMIT)?;
    crate::digest::verify(&format!("blob {d}"), &d, &Digest::of(&bytes))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_normalised() {
        assert_eq!(
            normalize(Path::new("./manifest.json")).as_deref(),
            Some("manifest.json")
        );
        assert_eq!(
            normalize(Path::new("a/../b/layer.tar")).as_deref(),
            Some("b/layer.tar")
        );
        assert_eq!(normalize(Path::new("../x")), None);
        assert_eq!(normalize(Path::new("/etc/passwd")), None);
        assert_eq!(normalize(Path::new(".")), None);
    }

    fn tar_with(members: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut b = tar::Builder::new(f.reopen().unwrap());
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap();
        f
    }

    #[test]
    fn detects_by_content() {
        let docker = tar_with(&[("abc/layer.tar", b"x"), ("manifest.json", b"[]")]);
        assert_eq!(kind(docker.path()).unwrap(), Some(Kind::DockerTar));
        let layout = tar_with(&[("oci-layout", b"{}"), ("index.json", b"{}")]);
        assert_eq!(kind(layout.path()).unwrap(), Some(Kind::LayoutTar));
        let rootfs = tar_with(&[("etc/passwd", b"root")]);
        assert_eq!(kind(rootfs.path()).unwrap(), None);
        let mut junk = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut junk, b"not a tar at all, just text").unwrap();
        assert!(!detect(junk.path()));
    }

    #[test]
    fn tar_members_are_read_in_place_and_links_resolved() {
        let f = tempfile::NamedTempFile::new().unwrap();
        {
            let mut b = tar::Builder::new(f.reopen().unwrap());
            let mut h = tar::Header::new_gnu();
            h.set_size(5);
            h.set_mode(0o644);
            b.append_data(&mut h, "b/layer.tar", &b"hello"[..]).unwrap();
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::Symlink);
            l.set_size(0);
            b.append_link(&mut l, "a/layer.tar", "../b/layer.tar")
                .unwrap();
            b.into_inner().unwrap();
        }
        let m = Members::index_tar(f.path().to_path_buf()).unwrap();
        assert_eq!(m.read("a/layer.tar", 100).unwrap(), b"hello");
        assert_eq!(m.read("./b/layer.tar", 100).unwrap(), b"hello");
        assert!(m.read("c", 100).is_err());
    }
}
