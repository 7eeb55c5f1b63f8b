//! A deterministic, CI-sized stand-in for the fuzz targets: a valid archive with every entry
//! kind, mutated (byte flips, header field swaps, truncation) a few hundred times. Each import
//! must not panic, must write nothing outside its destination, and must leave the destination
//! empty when it fails.

use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

fn seed_archive() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: EntryType, link: Option<&str>, data: &[u8]| {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000);
        if kind == EntryType::Fifo {
            h.set_device_major(0).unwrap();
            h.set_device_minor(0).unwrap();
        }
        match link {
            Some(l) => b.append_link(&mut h, name, l).unwrap(),
            None => b.append_data(&mut h, name, data).unwrap(),
        }
    };
    add("etc", EntryType::Directory, None, b"");
    add(
        "etc/passwd",
        EntryType::Regular,
        None,
        b"root:x:0:0::/root:/bin/sh\n",
    );
    add("etc/link", EntryType::Link, Some("etc/passwd"), b"");
    add("run", EntryType::Directory, None, b"");
    add("var/run", EntryType::Symlink, Some("/run"), b"");
    add("lib", EntryType::Symlink, Some("usr/lib"), b"");
    add("usr/lib/libc.so", EntryType::Regular, None, &[0x7f; 700]);
    add("fifo", EntryType::Fifo, None, b"");
    add("up", EntryType::Symlink, Some("../.."), b"");
    b.into_inner().unwrap()
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    // Names an attacker would pick, written over some block's name or link name field.
    const HOSTILE: &[&[u8]] = &[
        b"../../escape",
        b"/abs/path",
        b"up/x",
        b"var/run/x",
        b"lib/../../x",
        b"etc/passwd/x",
        b"..",
        b".",
    ];
    for _ in 0..1 + rng.below(4) {
        match rng.below(3) {
            0 => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if v.len() >= 512 => {
                let block = rng.below(v.len() / 512) * 512;
                let field = if rng.below(2) == 0 { 0 } else { 157 };
                let name = HOSTILE[rng.below(HOSTILE.len())];
                v[block + field..block + field + 100].fill(0);
                v[block + field..block + field + name.len()].copy_from_slice(name);
                // Recompute the checksum so the header is decoded, not rejected outright.
                let mut h = Header::from_byte_slice(&v[block..block + 512]).clone();
                h.set_cksum();
                v[block..block + 512].copy_from_slice(h.as_bytes());
            }
            _ => {
                let cut = rng.below(v.len());
                v.truncate(cut);
            }
        }
        if v.is_empty() {
            break;
        }
    }
    v
}

fn walk(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&p, out);
        }
        out.push(p);
    }
}

#[test]
fn mutated_archives_never_escape_and_fail_clean() {
    let seed = seed_archive();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let dir = tempfile::Builder::new()
        .prefix("joot-archive-mutations-")
        .tempdir()
        .unwrap();
    let (mut ok, mut refused) = (0, 0);
    for i in 0..400 {
        let bytes = mutate(&seed, &mut rng);
        let sandbox = dir.path().join(format!("case{i}"));
        let dest = sandbox.join("a/b/dest");
        let result = joot_store::archive::import_tar(&bytes[..], &dest);
        let mut all = Vec::new();
        walk(&sandbox, &mut all);
        let outside: Vec<_> = all
            .iter()
            .filter(|p| !p.starts_with(&dest) && !dest.starts_with(p))
            .collect();
        assert!(
            outside.is_empty(),
            "case {i} wrote outside dest: {outside:?}"
        );
        match result {
            Ok(_) => ok += 1,
            Err(e) => {
                refused += 1;
                let left = std::fs::read_dir(&dest).map(|d| d.count()).unwrap_or(0);
                assert_eq!(left, 0, "case {i} failed ({e}) but left {left} entries");
            }
        }
        std::fs::remove_dir_all(&sandbox).unwrap();
    }
    // Both outcomes must have been exercised for the test to mean anything.
    assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
}
