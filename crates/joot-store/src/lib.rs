//! joot-store: layers, images, envs, locks, atomic publish, gc, and rootfs tar import/export.
//!
//! Layout under the store root (see `docs/architecture.md`): `version`, `store.json`,
//! `layers/<id>/{layer.json,root/}`, `images/<name>.json`, `envs/<name>/{env.json,upper/,work/,lock}`,
//! `tmp/<token>/` (staging, each with a flocked `.lock`), `cache/`, `build-cache/`, `mnt/`,
//! `run/<name>/`. Every change is staged in `tmp/` and published by rename, so nothing under
//! `layers/`, `images/` or `envs/` is ever half-made, whatever moment a process is killed.
//!
//! Public API (other crates code against these names):
//! ```text
//! Store::open(root: impl AsRef<Path>) -> Result<Store>
//! Store::root(&self) -> &Path;  Store::xattr_ns(&self) -> XattrNs
//! Store::layer_dir(&LayerId) / layer_root(&LayerId) / image_path(&Name) -> PathBuf
//! Store::env_paths(&Name) -> EnvPaths { dir, upper, work, lock, json, mounted, commit }
//! Store::mount_point() -> PathBuf (ROOT/mnt);  Store::run_dir(&Name) -> PathBuf (ROOT/run/<name>)
//! Store::cache_dir() / build_cache_dir() / tmp_dir() -> PathBuf
//! Store::stage() -> Result<Staging>                      // Staging::path(); Drop removes it
//! Store::lease() -> Result<Lease>                        // keeps gc from sweeping unreferenced layers
//! Store::new_layer() -> Result<LayerBuilder>             // .root(), .id(), .set_diff_id(s), .publish(Origin) -> Result<LayerId>
//! Store::layer(&LayerId) -> Result<LayerMeta>;  Store::layers() -> Result<Vec<LayerMeta>>
//! Store::has_layer(&LayerId) -> bool
//! Store::layer_roots(&[LayerId]) -> Vec<PathBuf>;  Store::layers_size(&[LayerId]) -> u64
//! Store::env_upper_size(&Name) -> Result<u64>
//! Store::find_layer_by_diff_id(&str) -> Result<Option<LayerId>>
//! Store::put_image(&Image, Replace) -> Result<()>;  Store::image(&Name) -> Result<Image>
//! Store::images() -> Result<Vec<Image>>;  Store::remove_image(&Name, force: bool) -> Result<()>
//! Store::envs_using_image(&Name) -> Result<Vec<Name>>
//! Store::create_env(&Name, EnvSource, EnvConfig) -> Result<Env>
//! Store::env(&Name) -> Result<Env>;  Store::envs() -> Result<Vec<Env>>
//! Store::remove_env(&Name, force: bool) -> Result<()>
//! Store::lock_env(&Name) -> Result<EnvLock>              // non-blocking; "env 'x' is busy (running or mounted)"
//! Store::lock_env_allow_mounted(&Name) -> Result<EnvLock> // for umount / rm --force
//! Store::mark_mounted(&EnvLock, &Path) / clear_mounted(&EnvLock) -> Result<()>
//! Store::mounted(&Name) -> Result<Option<PathBuf>>
//! Store::set_env_config(&EnvLock, EnvConfig) -> Result<Env>
//! Store::commit_env(&Name, new_image: &Name, Origin) -> Result<Image>
//! Store::commit_locked(&EnvLock, new_image: &Name, Origin) -> Result<Image>
//! Store::import_image<R: Read>(R, &Name, source: &str, Replace) -> Result<(Image, ImportStats)>  // any compression
//! Store::gc() -> Result<GcReport>                        // GcReport: Display lists what was removed
//! Name::parse(&str) -> Result<Name>;  LayerId::parse(&str) / LayerId::random()
//! EnvSource::from_image(&Image);  Image::new(Name, Vec<LayerId>)
//! fsutil::{publish_file, rename_noreplace, fsync_dir}
//! archive::import_tar<R: Read>(R, dest: &Path) -> Result<ImportStats>   // dest absent or empty
//! archive::import_tar_with<R: Read>(R, &Path, &ImportOptions { same_owner }) -> Result<ImportStats>
//! archive::write_tar<W: Write>(root: &Path, W, &TarOptions { mtime_clamp, xattrs }) -> Result<()>
//! archive::write_merged_tar<W: Write>(layer_roots: &[PathBuf] /* bottom->top */, W, &TarOptions) -> Result<()>
//! TarOptions::default()                                  // clamps to SOURCE_DATE_EPOCH when set
//! compress::open_decompressed<'a, R: Read + 'a>(R) -> io::Result<Box<dyn Read + 'a>>  // gz, xz, zst, plain
//! compress::detect(&[u8]) -> Compression
//! merge::MergedTree::new(&[PathBuf] /* bottom->top */).entries() -> Result<Vec<MergedEntry { path, source }>>
//! merge::{is_whiteout(&Metadata), is_opaque(&Path)}
//! ```
//! Metadata types (all JSON with a `format: u32` field): [`LayerMeta`], [`Origin`], [`Image`],
//! [`ImageConfig`], [`Distro`], [`Env`], [`EnvSource`], [`EnvConfig`], [`BindSpec`], [`NetMode`].
//!
//! Concurrency: env names are claimed with `RENAME_NOREPLACE` (one winner), env use is guarded
//! by a non-blocking flock, `gc` only removes staging dirs whose lock it can take and sweeps
//! layers only while no [`Lease`] is held ([`LayerBuilder`], `create_env` from an image,
//! `commit_*` and `import_image` hold one). A caller that publishes layers and names them in
//! an image later (`new_layer` ... `put_image`) holds its own `Store::lease()` across both.
//!
//! Crash guarantees: after `kill -9` at any point, listings show only complete layers, images
//! and envs; `gc` removes the leftovers (unlocked staging dirs, unfinished layer dirs) and rolls
//! interrupted commits forward (so an env never loses its changes). Layer trees, layer and image
//! metadata, commits and config changes are fsynced before they are published; env creation is
//! not (it is a hot path): after a power loss a just-created env may be missing or unreadable,
//! and is then skipped by listings.

pub mod archive;
pub mod compress;
pub mod env;
pub mod error;
pub mod fsutil;
pub mod gc;
pub mod image;
mod import;
pub mod layer;
pub mod merge;
pub mod meta;
pub mod name;
pub mod staging;
pub mod store;

pub use env::EnvLock;
pub use error::{Error, Result};
pub use gc::GcReport;
pub use layer::LayerBuilder;
pub use meta::{
    BindSpec, Distro, Env, EnvConfig, EnvSource, Image, ImageConfig, LayerId, LayerMeta,
    META_FORMAT, NetMode, Origin,
};
pub use name::Name;
pub use staging::Staging;
pub use store::{EnvPaths, Lease, Replace, STORE_FORMAT, Store, XattrNs};
