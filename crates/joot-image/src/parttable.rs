//! Reading the partition table of an untrusted raw disk: GPT (header CRC checked, entry array
//! bounded), MBR (primary partitions), or none (a bare filesystem). Every partition is checked
//! to lie inside the file. Pure code over a byte source, so it is tested without disks.

use std::path::Path;

use crate::error::{Error, Result};

/// A partition found on the disk, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPartition {
    /// 1-based number as Linux would name it (0 for a bare filesystem).
    pub number: u32,
    pub start: u64,
    pub size: u64,
}

/// Which table the disk has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Gpt,
    Mbr,
    None,
}

/// Reads `len` bytes at `off` of a disk.
pub trait ReadAt {
    fn read_bytes(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl ReadAt for std::fs::File {
    fn read_bytes(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, off)
    }
}

impl ReadAt for Vec<u8> {
    fn read_bytes(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let off = usize::try_from(off).map_err(std::io::Error::other)?;
        let end = off
            .checked_add(buf.len())
            .filter(|e| *e <= self.len())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(&self[off..end]);
        Ok(())
    }
}

/// CRC-32 (IEEE, as GPT uses).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// True when the bytes at 1080 are the ext2/3/4 superblock magic.
pub fn has_ext_magic(disk: &dyn ReadAt, start: u64) -> bool {
    let mut m = [0u8; 2];
    disk.read_bytes(start + 1024 + 56, &mut m).is_ok() && m == [0x53, 0xEF]
}

/// True when an XFS superblock starts at `start`.
pub fn has_xfs_magic(disk: &dyn ReadAt, start: u64) -> bool {
    let mut m = [0u8; 4];
    disk.read_bytes(start, &mut m).is_ok() && &m == b"XFSB"
}

/// Reads the table of a disk of `len` bytes.
pub fn read_table(
    disk: &dyn ReadAt,
    len: u64,
    path: &Path,
) -> Result<(TableKind, Vec<FoundPartition>)> {
    let bad = |reason: String| Error::PartitionTable {
        path: path.to_path_buf(),
        reason,
    };
    if len < 2048 {
        return Err(bad(format!(
            "the image is only {len} bytes: truncated or not a disk image"
        )));
    }
    let mut sig = [0u8; 8];
    disk.read_bytes(512, &mut sig)?;
    if &sig == b"EFI PART" {
        return Ok((TableKind::Gpt, read_gpt(disk, len, &bad)?));
    }
    if has_ext_magic(disk, 0) || has_xfs_magic(disk, 0) {
        return Ok((
            TableKind::None,
            vec![FoundPartition {
                number: 0,
                start: 0,
                size: len,
            }],
        ));
    }
    let mut mbr = [0u8; 512];
    disk.read_bytes(0, &mut mbr)?;
    if mbr[510] == 0x55 && mbr[511] == 0xAA {
        let mut parts = Vec::new();
        for i in 0..4 {
            let e = &mbr[446 + i * 16..446 + (i + 1) * 16];
            let ty = e[4];
            let start = le32(e, 8) as u64 * 512;
            let size = le32(e, 12) as u64 * 512;
            if ty == 0 || size == 0 {
                continue;
            }
            if ty == 0xEE {
                return Err(bad(
                    "a protective MBR without a valid GPT header (corrupt GPT)".into(),
                ));
            }
            if matches!(ty, 0x05 | 0x0F | 0x85) {
                // Extended partitions: logical partitions are not read (pass --partition for a
                // primary one).
                continue;
            }
            if start + size > len {
                return Err(bad(format!(
                    "partition {} ends at byte {}, past the end of the image ({len} bytes): truncated or corrupt",
                    i + 1,
                    start + size
                )));
            }
            parts.push(FoundPartition {
                number: i as u32 + 1,
                start,
                size,
            });
        }
        return Ok((TableKind::Mbr, parts));
    }
    Err(bad(
        "no GPT, no MBR and no known filesystem at the start: not a disk image joot can read"
            .into(),
    ))
}

fn read_gpt(
    disk: &dyn ReadAt,
    len: u64,
    bad: &dyn Fn(String) -> Error,
) -> Result<Vec<FoundPartition>> {
    let mut hdr = [0u8; 512];
    disk.read_bytes(512, &mut hdr)?;
    let hsize = le32(&hdr, 12) as usize;
    if !(92..=512).contains(&hsize) {
        return Err(bad(format!("GPT header size {hsize} is invalid")));
    }
    let mut h = hdr[..hsize].to_vec();
    let crc = le32(&h, 16);
    h[16..20].fill(0);
    if crc32(&h) != crc {
        return Err(bad("GPT header checksum mismatch (corrupt)".into()));
    }
    let entries_lba = le64(&hdr, 72);
    let count = le32(&hdr, 80) as u64;
    let esize = le32(&hdr, 84) as u64;
    let entries_crc = le32(&hdr, 88);
    if !(128..=4096).contains(&esize) || !esize.is_multiple_of(8) || count > 1024 {
        return Err(bad(format!(
            "GPT entry array of {count} entries of {esize} bytes is invalid"
        )));
    }
    let array_len = count * esize;
    let array_off = entries_lba
        .checked_mul(512)
        .filter(|o| o.checked_add(array_len).is_some_and(|e| e <= len))
        .ok_or_else(|| bad("GPT entry array lies past the end of the image".into()))?;
    let mut array = vec![0u8; array_len as usize];
    disk.read_bytes(array_off, &mut array)?;
    if crc32(&array) != entries_crc {
        return Err(bad("GPT entry array checksum mismatch (corrupt)".into()));
    }
    let mut parts = Vec::new();
    for i in 0..count as usize {
        let e = &array[i * esize as usize..(i + 1) * esize as usize];
        if e[..16].iter().all(|b| *b == 0) {
            continue;
        }
        let first = le64(e, 32);
        let last = le64(e, 40);
        if last < first {
            return Err(bad(format!("partition {} ends before it starts", i + 1)));
        }
        let start = first
            .checked_mul(512)
            .ok_or_else(|| bad(format!("partition {} start overflows", i + 1)))?;
        let end = last
            .checked_add(1)
            .and_then(|l| l.checked_mul(512))
            .ok_or_else(|| bad(format!("partition {} end overflows", i + 1)))?;
        if end > len {
            return Err(bad(format!(
                "partition {} ends at byte {end}, past the end of the image ({len} bytes): truncated or corrupt",
                i + 1
            )));
        }
        parts.push(FoundPartition {
            number: i as u32 + 1,
            start,
            size: end - start,
        });
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    fn mbr_disk(len: usize, start: u32, sectors: u32) -> Vec<u8> {
        let mut d = vec![0u8; len];
        d[510] = 0x55;
        d[511] = 0xAA;
        let e = &mut d[446..462];
        e[4] = 0x83;
        e[8..12].copy_from_slice(&start.to_le_bytes());
        e[12..16].copy_from_slice(&sectors.to_le_bytes());
        d
    }

    #[test]
    fn mbr_partition_inside_and_past_the_end() {
        let p = Path::new("x.raw");
        let d = mbr_disk(8 * 512, 2, 4);
        let (k, parts) = read_table(&d, d.len() as u64, p).unwrap();
        assert_eq!(k, TableKind::Mbr);
        assert_eq!(
            parts,
            [FoundPartition {
                number: 1,
                start: 1024,
                size: 2048
            }]
        );
        let d = mbr_disk(8 * 512, 2, 400);
        let err = read_table(&d, d.len() as u64, p).unwrap_err().to_string();
        assert!(err.contains("past the end"), "{err}");
    }

    #[test]
    fn garbage_and_tiny_inputs_are_refused() {
        let p = Path::new("x.raw");
        let d = vec![7u8; 4096];
        assert!(read_table(&d, 4096, p).is_err());
        let d = vec![0u8; 100];
        assert!(read_table(&d, 100, p).is_err());
        let mut d = vec![0u8; 4096];
        d[512..520].copy_from_slice(b"EFI PART");
        d[524] = 92;
        let err = read_table(&d, 4096, p).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
    }
}
