//! joot-oci: OCI images in and out of a joot store.
//!
//! Store layers map one to one onto OCI layers ([`layer`] writes and reads the tars, with
//! whiteouts converted by [`whiteout`]); images travel as OCI image layouts (export, and
//! [`import`] together with `docker save` archives) and through registries ([`registry`]).
//! The registry client (oci-client) is async; tokio stays inside this crate and every public
//! entry point is a plain blocking function. Progress goes through [`Reporter`].

mod arrival;
pub mod auth;
mod cache;
pub mod digest;
mod error;
mod export;
pub mod import;
pub mod layer;
pub mod media;
mod pipe;
pub mod platform;
pub mod registry;
pub mod reporter;
pub mod spec;
mod unpack;
pub mod whiteout;

use std::path::Path;

use joot_store::{Image, Store};

pub use auth::Credentials;
pub use error::{Error, Result};
pub use export::OciExportOptions;
pub use layer::Compression;
pub use platform::Platform;
pub use registry::{
    PullOptions, PushOptions, PushReport, RegistryOptions, looks_like_reference, parse_reference,
};
pub use reporter::{Action, Outcome, Reporter, Silent};

/// Writes `image` as an OCI image layout archive (or directory with `opts.directory`) at `out`,
/// loadable by `podman load`, `skopeo copy oci-archive:...` and `docker load` (>= 25).
pub fn export_layout(
    store: &Store,
    image: &Image,
    out: &Path,
    opts: &OciExportOptions,
) -> Result<()> {
    export::export_layout(store, image, out, opts, &Silent)
}

/// [`export_layout`] with progress.
pub fn export_layout_with(
    store: &Store,
    image: &Image,
    out: &Path,
    opts: &OciExportOptions,
    reporter: &dyn Reporter,
) -> Result<()> {
    export::export_layout(store, image, out, opts, reporter)
}

/// Pulls `reference` from its registry into the store (as `opts.name`, else a name derived
/// from the reference, replacing an image of that name). Layers already in the store (same
/// diff id) are not downloaded.
pub fn pull(
    store: &Store,
    reference: &str,
    opts: &PullOptions,
    reporter: &dyn Reporter,
) -> Result<Image> {
    registry::pull(store, reference, opts, reporter)
}

/// Pushes store image `image` to `reference` (a tag).
pub fn push(
    store: &Store,
    image: &Image,
    reference: &str,
    opts: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<PushReport> {
    registry::push(store, image, reference, opts, reporter)
}

/// The image for `reference`, pulled on first use: what `run --from REGISTRY/REPO:TAG` uses.
/// It is kept under `opts.name`, else under the whole reference made into a name
/// (`localhost_5000_team_app_1.0`), and later calls return it without touching the network.
pub fn ensure_pulled(store: &Store, reference: &str, opts: &PullOptions) -> Result<Image> {
    ensure_pulled_with(store, reference, opts, &Silent)
}

/// [`ensure_pulled`] with progress.
pub fn ensure_pulled_with(
    store: &Store,
    reference: &str,
    opts: &PullOptions,
    reporter: &dyn Reporter,
) -> Result<Image> {
    let r = parse_reference(reference)?;
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => registry::cache_name(&r)?,
    };
    match store.image(&name) {
        Ok(image) => return Ok(image),
        Err(joot_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(Error::Store(Box::new(e))),
    }
    let mut opts = opts.clone();
    opts.name = Some(name);
    pull(store, reference, &opts, reporter)
}
