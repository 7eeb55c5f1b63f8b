//! joot-oci: OCI images in and out of a joot store.
//!
//! Store layers map one to one onto OCI layers ([`layer`] writes and reads the tars, with
//! whiteouts converted by [`whiteout`]); images travel as OCI image layouts ([`layout`]),
//! `docker save` archives ([`import`]) and through registries ([`registry`]). The registry
//! client (oci-client) is async; tokio stays inside this crate and every public entry point is a
//! plain blocking function.

pub mod digest;
mod error;
pub mod layer;
pub mod media;
pub mod platform;
pub mod spec;
pub mod whiteout;

pub use error::{Error, Result};
