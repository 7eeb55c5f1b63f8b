//! Output and input formats, chosen from `--format` or the file extension, and sizes (`4G`,
//! `512M`, `auto`). Pure code.

use std::path::Path;

use crate::error::{Error, Result};

/// A virtual disk container that `qemu-img` reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    /// A plain sparse disk file.
    Raw,
    /// QEMU copy-on-write v2.
    Qcow2,
    /// VMware.
    Vmdk,
    /// Microsoft VHD (qemu calls it `vpc`); written fixed-size for Azure.
    Vhd,
    /// Microsoft VHDX.
    Vhdx,
}

impl DiskFormat {
    /// The name `qemu-img -f/-O` takes.
    pub fn qemu_name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Vmdk => "vmdk",
            DiskFormat::Vhd => "vpc",
            DiskFormat::Vhdx => "vhdx",
        }
    }

    /// The user-facing name.
    pub fn name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Vmdk => "vmdk",
            DiskFormat::Vhd => "vhd",
            DiskFormat::Vhdx => "vhdx",
        }
    }

    /// The format for a qemu-img format name.
    pub fn from_qemu_name(name: &str) -> Option<DiskFormat> {
        Some(match name {
            "raw" => DiskFormat::Raw,
            "qcow2" => DiskFormat::Qcow2,
            "vmdk" => DiskFormat::Vmdk,
            "vpc" => DiskFormat::Vhd,
            "vhdx" => DiskFormat::Vhdx,
            _ => return None,
        })
    }
}

/// Compression of a rootfs tar archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarCompression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// What `joot export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A rootfs archive.
    Tar(TarCompression),
    /// A disk image.
    Disk(DiskFormat),
    /// A directory with `root.img` (bare ext4), `vmlinuz` and `initrd.img`.
    Ec2,
}

impl ExportFormat {
    /// Parses a `--format` value.
    pub fn parse(s: &str) -> Result<ExportFormat> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "tar" => ExportFormat::Tar(TarCompression::None),
            "tar.gz" | "tgz" => ExportFormat::Tar(TarCompression::Gzip),
            "tar.zst" | "tzst" => ExportFormat::Tar(TarCompression::Zstd),
            "raw" | "img" => ExportFormat::Disk(DiskFormat::Raw),
            "qcow2" => ExportFormat::Disk(DiskFormat::Qcow2),
            "vmdk" => ExportFormat::Disk(DiskFormat::Vmdk),
            "vhd" | "vpc" => ExportFormat::Disk(DiskFormat::Vhd),
            "vhdx" => ExportFormat::Disk(DiskFormat::Vhdx),
            "ec2" => ExportFormat::Ec2,
            other => {
                return Err(Error::invalid(format!(
                    "unknown export format {other:?}: use one of tar, tar.gz, tar.zst, raw, qcow2, vmdk, vhd, vhdx, ec2"
                )));
            }
        })
    }

    /// The format implied by the output path's extension.
    pub fn from_path(path: &Path) -> Result<ExportFormat> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        for (ext, fmt) in [
            (".tar.gz", "tar.gz"),
            (".tgz", "tar.gz"),
            (".tar.zst", "tar.zst"),
            (".tzst", "tar.zst"),
            (".tar", "tar"),
            (".raw", "raw"),
            (".img", "raw"),
            (".qcow2", "qcow2"),
            (".vmdk", "vmdk"),
            (".vhd", "vhd"),
            (".vhdx", "vhdx"),
        ] {
            if name.ends_with(ext) {
                return ExportFormat::parse(fmt);
            }
        }
        Err(Error::invalid(format!(
            "cannot tell the format of {} from its extension: pass --format (tar, tar.gz, tar.zst, raw, qcow2, vmdk, vhd, vhdx, ec2)",
            path.display()
        )))
    }
}

/// The size of the disk to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskSize {
    /// Content plus headroom.
    Auto,
    /// Exactly this many bytes (a whole number of MiB).
    Bytes(u64),
}

pub const MIB: u64 = 1 << 20;

impl DiskSize {
    /// Parses `auto`, `4G`, `512M`, `1T`, `2GiB`, `1048576` (bytes). Sizes are rounded up to a
    /// whole MiB: VHD needs it and partitions are MiB-aligned anyway.
    pub fn parse(s: &str) -> Result<DiskSize> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("auto") {
            return Ok(DiskSize::Auto);
        }
        let bad = || {
            Error::invalid(format!(
                "bad size {s:?}: use a number with a unit such as 512M, 4G or 1T, or `auto`"
            ))
        };
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let num: u64 = num.parse().map_err(|_| bad())?;
        let mult: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            _ => return Err(bad()),
        };
        let bytes = num.checked_mul(mult).ok_or_else(bad)?;
        if bytes < 16 * MIB {
            return Err(Error::invalid(format!(
                "size {s:?} is too small: a disk image needs at least 16M"
            )));
        }
        Ok(DiskSize::Bytes(bytes.div_ceil(MIB) * MIB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension() {
        let f = |p: &str| ExportFormat::from_path(Path::new(p)).unwrap();
        assert_eq!(f("a.qcow2"), ExportFormat::Disk(DiskFormat::Qcow2));
        assert_eq!(f("a.VHD"), ExportFormat::Disk(DiskFormat::Vhd));
        assert_eq!(f("x/a.vhdx"), ExportFormat::Disk(DiskFormat::Vhdx));
        assert_eq!(f("a.img"), ExportFormat::Disk(DiskFormat::Raw));
        assert_eq!(f("a.tar.zst"), ExportFormat::Tar(TarCompression::Zstd));
        assert_eq!(f("a.tgz"), ExportFormat::Tar(TarCompression::Gzip));
        assert_eq!(f("a.tar"), ExportFormat::Tar(TarCompression::None));
        assert!(ExportFormat::from_path(Path::new("out/")).is_err());
        assert_eq!(ExportFormat::parse("ec2").unwrap(), ExportFormat::Ec2);
    }

    #[test]
    fn sizes_round_up_to_mib() {
        assert_eq!(DiskSize::parse("auto").unwrap(), DiskSize::Auto);
        assert_eq!(DiskSize::parse("4G").unwrap(), DiskSize::Bytes(4 << 30));
        assert_eq!(
            DiskSize::parse("512MiB").unwrap(),
            DiskSize::Bytes(512 << 20)
        );
        assert_eq!(
            DiskSize::parse("20000001").unwrap(),
            DiskSize::Bytes(20 * MIB)
        );
        assert!(DiskSize::parse("4X").is_err());
        assert!(DiskSize::parse("1M").is_err());
        assert!(DiskSize::parse("").is_err());
    }
}
