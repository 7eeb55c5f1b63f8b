//! Rootfs tarballs: hostile-input-safe import ([`import_tar`]) and reproducible export
//! ([`write_tar`] of one tree, [`write_merged_tar`] of a layer stack without mounting).
//! Plain rootfs tarballs only: OCI whiteout names (`.wh.*`) are joot-oci's business.

mod export;
mod import;

pub use export::{TarOptions, write_merged_tar, write_tar};
pub use import::{ImportOptions, ImportStats, import_tar, import_tar_with};
