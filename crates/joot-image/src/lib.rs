//! Disk images from joot images and environments, and back: `export` builds filesystems from the
//! merged tree with `mkfs.ext4 -d` straight into a partition of a sparse disk file, writes the
//! partition table and boot loaders as bytes (no loop devices, no mounts, no nbd), then converts
//! with `qemu-img`; `import` reads a disk image's partition table and root filesystem without
//! mounting it read-write; `boot` runs qemu with the serial console on the terminal.
//!
//! Everything that can be pure is (formats, sizes, partition layout, identifiers); host tools
//! run through [`tool::Tool`] so a missing one names its package.

pub mod boot;
pub mod disk;
pub mod error;
pub mod export;
pub mod format;
pub mod import;
pub mod layout;
pub mod parttable;
pub mod qemu_img;
pub mod rootwriter;
pub mod tool;
pub mod tree;

pub use error::{Error, Result};
pub use export::{ExportOptions, ExportReport, ExportRequest, Quiet, Reporter, export_tree};
pub use format::{DiskFormat, DiskSize, ExportFormat, TarCompression};
pub use layout::{Ids, Layout, PartKind, PartitionTable};
pub use tree::{Kernel, Tree};
