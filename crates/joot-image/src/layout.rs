//! Partition layout math (pure): where each partition goes on the disk, how big the disk is for
//! `--size auto`, and the `sfdisk` script that writes the table. Every identifier on the disk
//! (disk GUID, partition GUIDs, filesystem UUIDs, the ext4 hash seed) comes from [`Ids`], derived
//! from the image's layer ids, so exporting the same image twice gives the same bytes.
//!
//! Layout rules: partitions are MiB-aligned and start at 1 MiB; the root partition is last so a
//! cloud VM can grow it into a larger disk; a bootable GPT disk is
//! `[BIOS boot 1 MiB][ESP 256 MiB][root]` (the BIOS boot partition at LBA 2048 receives GRUB's
//! core.img). GPT keeps the last MiB free for its backup header.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::format::{DiskSize, MIB};

/// Bytes per sector; joot writes 512-byte-sector disks.
pub const SECTOR: u64 = 512;
/// Size of the BIOS boot partition (holds GRUB's core.img).
pub const BIOS_BOOT_SIZE: u64 = MIB;
/// Size of the EFI system partition. FAT32 needs at least 65525 clusters; with 1 KiB clusters
/// (`mkfs.vfat -s 2`) 256 MiB leaves room for a Debian kernel and initrd in a UKI.
pub const ESP_SIZE: u64 = 256 * MIB;

/// GPT partition type GUIDs (UEFI spec 2.10 table 5.7; the Discoverable Partitions spec for root).
pub const GPT_TYPE_BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
pub const GPT_TYPE_ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
pub const GPT_TYPE_ROOT_X86_64: &str = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";

/// The kind of partition table written into the disk file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionTable {
    /// GUID partition table (the default).
    Gpt,
    /// DOS/MBR.
    Mbr,
    /// No table: the disk is a bare filesystem.
    None,
}

impl PartitionTable {
    /// Parses `gpt`, `mbr` (or `dos`), `none`.
    pub fn parse(s: &str) -> Result<PartitionTable> {
        match s.to_ascii_lowercase().as_str() {
            "gpt" => Ok(PartitionTable::Gpt),
            "mbr" | "dos" | "msdos" => Ok(PartitionTable::Mbr),
            "none" => Ok(PartitionTable::None),
            other => Err(Error::invalid(format!(
                "unknown partition table {other:?}: use gpt, mbr or none"
            ))),
        }
    }
}

/// What a partition is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// GRUB's BIOS boot partition.
    BiosBoot,
    /// EFI system partition (FAT32).
    Esp,
    /// The root filesystem.
    Root,
}

/// One partition, in bytes from the start of the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub kind: PartKind,
    pub start: u64,
    pub size: u64,
    /// GPT partition GUID (unused for MBR).
    pub uuid: String,
}

/// Stable identifiers for one export, derived from a seed (the image's layer ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    seed: [u8; 32],
}

impl Ids {
    /// Identifiers derived from `parts` (layer ids, bottom to top).
    pub fn from_seed<S: AsRef<[u8]>>(parts: &[S]) -> Ids {
        let mut h = Sha256::new();
        h.update(b"joot-image ids v1\0");
        for p in parts {
            h.update(p.as_ref());
            h.update(b"\0");
        }
        Ids {
            seed: h.finalize().into(),
        }
    }

    fn bytes(&self, purpose: &str) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(purpose.as_bytes());
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        b
    }

    /// A version-4-shaped UUID for `purpose` (`"disk"`, `"root-fs"`, ...), lowercase.
    pub fn uuid(&self, purpose: &str) -> String {
        let mut b = self.bytes(purpose);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex::encode(b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// A 32-bit id for `purpose` (MBR disk signature, FAT volume id), never zero.
    pub fn u32(&self, purpose: &str) -> u32 {
        let b = self.bytes(purpose);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]).max(1)
    }
}

/// Where everything goes on the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub table: PartitionTable,
    /// Total disk size in bytes (a whole number of MiB).
    pub disk_size: u64,
    pub partitions: Vec<Partition>,
    /// GPT disk GUID.
    pub disk_guid: String,
    /// MBR disk signature.
    pub mbr_id: u32,
}

/// The root filesystem size `--size auto` picks for `content` bytes of files: content plus a
/// quarter for ext4 metadata and growth, plus 128 MiB (journal and free space), in whole MiB.
pub fn auto_root_size(content: u64) -> u64 {
    (content + content / 4 + 128 * MIB).div_ceil(MIB) * MIB
}

/// The least root filesystem size that can hold `content` bytes (used to refuse a too-small
/// `--size` before running mkfs).
pub fn min_root_size(content: u64) -> u64 {
    content + content / 10 + 32 * MIB
}

impl Layout {
    /// Plans the disk: `content` is the estimated bytes of the tree; `bootable` adds the BIOS
    /// boot partition and the ESP (GPT only).
    pub fn plan(
        table: PartitionTable,
        bootable: bool,
        size: DiskSize,
        content: u64,
        ids: &Ids,
    ) -> Result<Layout> {
        if bootable && table != PartitionTable::Gpt {
            return Err(Error::invalid(
                "a bootable disk needs a GPT partition table (it boots under BIOS and UEFI): drop --partition or use --partition gpt",
            ));
        }
        let mut parts = Vec::new();
        let mut next = if table == PartitionTable::None {
            0
        } else {
            MIB
        };
        if bootable {
            parts.push(Partition {
                kind: PartKind::BiosBoot,
                start: next,
                size: BIOS_BOOT_SIZE,
                uuid: ids.uuid("part-bios"),
            });
            next += BIOS_BOOT_SIZE;
            parts.push(Partition {
                kind: PartKind::Esp,
                start: next,
                size: ESP_SIZE,
                uuid: ids.uuid("part-esp"),
            });
            next += ESP_SIZE;
        }
        let tail = if table == PartitionTable::Gpt { MIB } else { 0 };
        let disk_size = match size {
            DiskSize::Auto => next + auto_root_size(content) + tail,
            DiskSize::Bytes(b) => b,
        };
        let root_size = disk_size.saturating_sub(next + tail);
        let needed = min_root_size(content);
        if root_size < needed {
            return Err(Error::TooSmall {
                needed: needed + next + tail,
                available: disk_size,
            });
        }
        parts.push(Partition {
            kind: PartKind::Root,
            start: next,
            size: root_size,
            uuid: ids.uuid("part-root"),
        });
        Ok(Layout {
            table,
            disk_size,
            partitions: parts,
            disk_guid: ids.uuid("disk"),
            mbr_id: ids.u32("mbr"),
        })
    }

    /// The partition of `kind`.
    pub fn part(&self, kind: PartKind) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.kind == kind)
    }

    /// The root partition (always present, always last).
    pub fn root(&self) -> &Partition {
        self.partitions.last().expect("a layout always has a root")
    }

    /// The 1-based number of the root partition.
    pub fn root_number(&self) -> usize {
        self.partitions.len()
    }

    /// The `sfdisk` script that writes this table (None for a bare filesystem).
    pub fn sfdisk_script(&self) -> Option<String> {
        let mut s = String::new();
        match self.table {
            PartitionTable::None => return None,
            PartitionTable::Gpt => {
                s.push_str("label: gpt\n");
                s.push_str(&format!("label-id: {}\n", self.disk_guid.to_uppercase()));
                s.push_str("unit: sectors\nfirst-lba: 2048\n");
                for p in &self.partitions {
                    let (ty, name) = match p.kind {
                        PartKind::BiosBoot => (GPT_TYPE_BIOS_BOOT, "bios-boot"),
                        PartKind::Esp => (GPT_TYPE_ESP, "esp"),
                        PartKind::Root => (GPT_TYPE_ROOT_X86_64, "root"),
                    };
                    s.push_str(&format!(
                        "start={}, size={}, type={ty}, uuid={}, name=\"{name}\"\n",
                        p.start / SECTOR,
                        p.size / SECTOR,
                        p.uuid.to_uppercase()
                    ));
                }
            }
            PartitionTable::Mbr => {
                s.push_str("label: dos\n");
                s.push_str(&format!("label-id: 0x{:08x}\n", self.mbr_id));
                s.push_str("unit: sectors\n");
                for p in &self.partitions {
                    s.push_str(&format!(
                        "start={}, size={}, type=83\n",
                        p.start / SECTOR,
                        p.size / SECTOR
                    ));
                }
            }
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Ids {
        Ids::from_seed(&["aa", "bb"])
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(ids().uuid("disk"), ids().uuid("disk"));
        assert_ne!(ids().uuid("disk"), ids().uuid("root-fs"));
        assert_ne!(ids().uuid("disk"), Ids::from_seed(&["aa"]).uuid("disk"));
        let u = ids().uuid("x");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn bootable_gpt_puts_root_last_and_aligned() {
        let l = Layout::plan(PartitionTable::Gpt, true, DiskSize::Auto, 100 * MIB, &ids()).unwrap();
        let kinds: Vec<_> = l.partitions.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [PartKind::BiosBoot, PartKind::Esp, PartKind::Root]);
        assert_eq!(l.partitions[0].start, MIB);
        assert_eq!(l.partitions[0].start / SECTOR, 2048);
        for p in &l.partitions {
            assert_eq!(p.start % MIB, 0);
            assert_eq!(p.size % MIB, 0);
        }
        let root = l.root();
        assert_eq!(root.start + root.size + MIB, l.disk_size);
        assert_eq!(l.disk_size % MIB, 0);
        assert!(root.size >= auto_root_size(100 * MIB));
        let script = l.sfdisk_script().unwrap();
        assert!(script.contains("label: gpt"));
        assert!(script.contains(GPT_TYPE_BIOS_BOOT));
        assert!(script.contains("start=2048, size=2048,"));
    }

    #[test]
    fn mbr_and_none() {
        let l = Layout::plan(
            PartitionTable::Mbr,
            false,
            DiskSize::Bytes(64 * MIB),
            MIB,
            &ids(),
        )
        .unwrap();
        assert_eq!(l.root().start, MIB);
        assert_eq!(l.root().size, 63 * MIB);
        assert!(l.sfdisk_script().unwrap().contains("label: dos"));
        let n = Layout::plan(
            PartitionTable::None,
            false,
            DiskSize::Bytes(64 * MIB),
            MIB,
            &ids(),
        )
        .unwrap();
        assert_eq!(n.root().start, 0);
        assert_eq!(n.root().size, 64 * MIB);
        assert!(n.sfdisk_script().is_none());
    }

    #[test]
    fn too_small_and_bootable_mbr_are_refused() {
        let e = Layout::plan(
            PartitionTable::Gpt,
            false,
            DiskSize::Bytes(64 * MIB),
            500 * MIB,
            &ids(),
        );
        assert!(matches!(e, Err(Error::TooSmall { .. })));
        let e = Layout::plan(PartitionTable::Mbr, true, DiskSize::Auto, MIB, &ids());
        assert!(matches!(e, Err(Error::Invalid(_))));
    }
}
