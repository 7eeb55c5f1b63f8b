//! Tar import/export: hostile archives generated in code, a faithful round trip (as root), and
//! a merged export of a layer stack.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use joot_store::archive::{TarOptions, import_tar, write_merged_tar, write_tar};
use joot_store::compress::open_decompressed;
use tar::{EntryType, Header};

struct Case {
    _dir: tempfile::TempDir,
    base: PathBuf,
    dest: PathBuf,
}

/// `base/a/b/dest`: two levels of room so a `../../x` escape would land inside `base`.
fn case(test: &str) -> Case {
    let dir = tempfile::Builder::new()
        .prefix(&format!("joot-archive-{test}-"))
        .tempdir()
        .unwrap();
    let base = dir.path().to_path_buf();
    let dest = base.join("a/b/dest");
    Case {
        _dir: dir,
        base,
        dest,
    }
}

fn set_bytes(field: &mut [u8], v: &[u8]) {
    field.fill(0);
    field[..v.len()].copy_from_slice(v);
}

/// Appends an entry with a raw name (the tar crate's path setters refuse hostile names).
fn raw(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: EntryType,
    link: Option<&str>,
    data: &[u8],
) {
    let mut h = Header::new_gnu();
    set_bytes(&mut h.as_old_mut().name, name.as_bytes());
    if let Some(l) = link {
        set_bytes(&mut h.as_old_mut().linkname, l.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(1_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn tar_of(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    f(&mut b);
    b.into_inner().unwrap()
}

fn is_empty_or_absent(p: &Path) -> bool {
    match std::fs::read_dir(p) {
        Ok(mut rd) => rd.next().is_none(),
        Err(_) => true,
    }
}

/// Imports `bytes` and expects an error that names `entry`; dest must be left empty.
fn expect_refused(c: &Case, bytes: &[u8], entry: &str) -> String {
    let err = import_tar(bytes, &c.dest)
        .expect_err("hostile archive was accepted")
        .to_string();
    assert!(
        err.contains(&format!("'{entry}'")),
        "error does not name '{entry}': {err}"
    );
    assert!(is_empty_or_absent(&c.dest), "dest not emptied after: {err}");
    err
}

#[test]
fn refuses_dotdot_escape() {
    let c = case("dotdot");
    let bytes = tar_of(|b| raw(b, "../../etc/x", EntryType::Regular, None, b"pwned"));
    let err = expect_refused(&c, &bytes, "../../etc/x");
    assert!(err.contains(".."), "{err}");
    assert!(!c.base.join("a/etc/x").exists());
    assert!(!c.base.join("etc").exists());
}

#[test]
fn refuses_write_through_absolute_symlink() {
    let c = case("symlink_abs");
    let before = std::fs::read("/etc/passwd").unwrap();
    let bytes = tar_of(|b| {
        raw(b, "evil", EntryType::Symlink, Some("/etc"), b"");
        raw(
            b,
            "evil/passwd",
            EntryType::Regular,
            None,
            b"root::0:0::/:/bin/sh\n",
        );
    });
    let err = expect_refused(&c, &bytes, "evil/passwd");
    assert!(err.contains("outside the destination"), "{err}");
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), before);
}

#[test]
fn refuses_write_through_relative_symlink_leaving_root() {
    let c = case("symlink_rel");
    std::fs::create_dir_all(c.base.join("a/victim")).unwrap();
    let bytes = tar_of(|b| {
        raw(b, "up", EntryType::Symlink, Some("../victim"), b"");
        raw(b, "up/planted", EntryType::Regular, None, b"x");
    });
    expect_refused(&c, &bytes, "up/planted");
    assert!(is_empty_or_absent(&c.base.join("a/victim")));
}

#[test]
fn refuses_hardlink_to_host_file() {
    let c = case("hardlink_out");
    let bytes = tar_of(|b| raw(b, "link", EntryType::Link, Some("/etc/passwd"), b""));
    let err = expect_refused(&c, &bytes, "link");
    assert!(err.contains("/etc/passwd"), "{err}");
    let bytes = tar_of(|b| {
        raw(
            b,
            "link2",
            EntryType::Link,
            Some("../../../etc/passwd"),
            b"",
        )
    });
    expect_refused(&c, &bytes, "link2");
    let bytes = tar_of(|b| raw(b, "link3", EntryType::Link, Some("missing"), b""));
    let err = expect_refused(&c, &bytes, "link3");
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn refuses_symlink_loop() {
    let c = case("loop");
    let bytes = tar_of(|b| {
        raw(b, "a", EntryType::Symlink, Some("b"), b"");
        raw(b, "b", EntryType::Symlink, Some("a"), b"");
        raw(b, "a/x", EntryType::Regular, None, b"x");
    });
    let err = expect_refused(&c, &bytes, "a/x");
    assert!(err.contains("symbolic links"), "{err}");
}

#[test]
fn refuses_truncated_gzip() {
    let c = case("truncated_gz");
    let data: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let bytes = tar_of(|b| {
        raw(b, "dir", EntryType::Directory, None, b"");
        raw(b, "dir/big", EntryType::Regular, None, &data);
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    let mut gz = gz.finish().unwrap();
    gz.truncate(gz.len() * 2 / 3);
    let err = import_tar(open_decompressed(&gz[..]).unwrap(), &c.dest)
        .unwrap_err()
        .to_string();
    assert!(err.contains("'dir/big'"), "{err}");
    assert!(is_empty_or_absent(&c.dest));
}

#[test]
fn refuses_truncated_plain_tar() {
    let c = case("truncated_tar");
    let mut bytes = tar_of(|b| raw(b, "f", EntryType::Regular, None, &[1u8; 5000]));
    bytes.truncate(512 + 2000);
    let err = expect_refused(&c, &bytes, "f");
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn refuses_random_bytes_and_empty_input() {
    let c = case("garbage");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2246822519) >> 7) as u8)
        .collect();
    let err = import_tar(&garbage[..], &c.dest).unwrap_err().to_string();
    assert!(err.contains("not a valid tar archive"), "{err}");
    assert!(is_empty_or_absent(&c.dest));
    let err = import_tar(&b""[..], &c.dest).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn refuses_non_empty_destination() {
    let c = case("non_empty");
    std::fs::create_dir_all(&c.dest).unwrap();
    std::fs::write(c.dest.join("keep"), "mine").unwrap();
    let bytes = tar_of(|b| raw(b, "f", EntryType::Regular, None, b"x"));
    assert!(
        import_tar(&bytes[..], &c.dest)
            .unwrap_err()
            .to_string()
            .contains("not empty")
    );
    assert_eq!(
        std::fs::read_to_string(c.dest.join("keep")).unwrap(),
        "mine"
    );
}

#[test]
fn accepts_absolute_symlinks_and_normalises_absolute_paths() {
    let c = case("legit");
    let bytes = tar_of(|b| {
        raw(b, "./", EntryType::Directory, None, b"");
        raw(b, "/run/", EntryType::Directory, None, b"");
        raw(b, "var/run", EntryType::Symlink, Some("/run"), b"");
        raw(b, "/etc/hostname", EntryType::Regular, None, b"box\n");
        raw(b, "usr/lib/x", EntryType::Regular, None, b"1");
        raw(b, "lib", EntryType::Symlink, Some("usr/lib"), b"");
        raw(b, "lib/y", EntryType::Regular, None, b"2");
        raw(b, "etc/hostname", EntryType::Regular, None, b"again\n");
    });
    let stats = import_tar(&bytes[..], &c.dest).unwrap();
    assert_eq!(stats.entries, 8);
    assert_eq!(
        std::fs::read_link(c.dest.join("var/run")).unwrap(),
        Path::new("/run")
    );
    assert_eq!(
        std::fs::read_to_string(c.dest.join("etc/hostname")).unwrap(),
        "again\n"
    );
    assert_eq!(
        std::fs::read_to_string(c.dest.join("usr/lib/y")).unwrap(),
        "2"
    );
    // Implicit parent dirs are created 0755.
    let md = std::fs::metadata(c.dest.join("usr")).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o755);
}

fn set_owner_time(p: &Path, uid: u32, gid: u32, mtime: i64) {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps};
    rustix::fs::chownat(
        CWD,
        p,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        CWD,
        p,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    rustix::fs::lgetxattr(p, name, &mut buf[..])
        .ok()
        .map(|n| buf[..n].to_vec())
}

fn list(tar_bytes: &[u8]) -> Vec<(String, u64)> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                e.header().mtime().unwrap(),
            )
        })
        .collect()
}

/// A VFS_CAP_REVISION_2 security.capability value granting cap_net_raw (capability.h).
fn cap_net_raw() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0x0200_0000u32.to_le_bytes());
    v.extend_from_slice(&(1u32 << 13).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

#[test]
fn round_trip_is_faithful_and_reproducible() {
    if !joot_test_support::require_root("round_trip_is_faithful_and_reproducible") {
        return;
    }
    let c = case("round_trip");
    let src = c.base.join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/f"), "data").unwrap();
    chmod(&src.join("d/f"), 0o640);
    std::fs::hard_link(src.join("d/f"), src.join("f_link")).unwrap();
    std::fs::write(src.join("suid"), "#!/bin/sh\n").unwrap();
    std::fs::write(src.join("cap"), "bin").unwrap();
    std::fs::create_dir(src.join("tmp")).unwrap();
    std::fs::create_dir(src.join("sgid")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", src.join("abs")).unwrap();
    use rustix::fs::{CWD, FileType, Mode, XattrFlags};
    rustix::fs::mknodat(
        CWD,
        src.join("null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    rustix::fs::mknodat(
        CWD,
        src.join("blk"),
        FileType::BlockDevice,
        Mode::from_raw_mode(0o660),
        rustix::fs::makedev(7, 200),
    )
    .unwrap();
    rustix::fs::mknodat(
        CWD,
        src.join("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    set_owner_time(&src.join("d/f"), 1234, 5678, 1_000_000);
    set_owner_time(&src.join("suid"), 0, 0, 1_000_001);
    chmod(&src.join("suid"), 0o4755);
    chmod(&src.join("tmp"), 0o1777);
    chmod(&src.join("sgid"), 0o2775);
    rustix::fs::setxattr(src.join("cap"), "user.note", b"hello", XattrFlags::empty()).unwrap();
    rustix::fs::setxattr(
        src.join("d"),
        "trusted.overlay.opaque",
        b"y",
        XattrFlags::empty(),
    )
    .unwrap();
    set_owner_time(&src.join("abs"), 42, 43, 1_000_002);
    for p in ["null", "blk", "fifo", "cap", "tmp", "sgid"] {
        set_owner_time(&src.join(p), 7, 8, 1_000_003);
    }
    // After chown: chown clears security.capability (capabilities(7)). Setting an xattr does
    // not change the mtime.
    rustix::fs::setxattr(
        src.join("cap"),
        "security.capability",
        &cap_net_raw(),
        XattrFlags::empty(),
    )
    .unwrap();
    set_owner_time(&src.join("d"), 1234, 5678, 1_000_004);
    chmod(&src.join("d"), 0o750);
    set_owner_time(&src, 0, 0, 1_000_005);

    let opts = TarOptions {
        mtime_clamp: None,
        xattrs: true,
    };
    let mut first = Vec::new();
    write_tar(&src, &mut first, &opts).unwrap();
    let dest = c.base.join("dest");
    let stats = import_tar(&first[..], &dest).unwrap();
    assert_eq!(stats.hardlinks, 1);
    assert_eq!(stats.devices, 3);
    assert!(stats.xattrs >= 3, "{stats:?}");

    for rel in [
        "", "d", "d/f", "f_link", "suid", "cap", "tmp", "sgid", "abs", "null", "blk", "fifo",
    ] {
        let a = std::fs::symlink_metadata(src.join(rel)).unwrap();
        let b = std::fs::symlink_metadata(dest.join(rel)).unwrap();
        assert_eq!(a.mode(), b.mode(), "mode of '{rel}'");
        assert_eq!((a.uid(), a.gid()), (b.uid(), b.gid()), "owner of '{rel}'");
        assert_eq!(a.mtime(), b.mtime(), "mtime of '{rel}'");
        assert_eq!(a.rdev(), b.rdev(), "rdev of '{rel}'");
        assert_eq!(a.len(), b.len(), "size of '{rel}'");
    }
    assert_eq!(
        std::fs::metadata(dest.join("suid")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert!(
        std::fs::symlink_metadata(dest.join("null"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert!(
        std::fs::symlink_metadata(dest.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let (f, l) = (
        std::fs::metadata(dest.join("d/f")).unwrap(),
        std::fs::metadata(dest.join("f_link")).unwrap(),
    );
    assert_eq!(f.ino(), l.ino(), "hard link kept");
    assert_eq!(
        std::fs::read_link(dest.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        xattr(&dest.join("cap"), "security.capability"),
        Some(cap_net_raw())
    );
    assert_eq!(
        xattr(&dest.join("cap"), "user.note"),
        Some(b"hello".to_vec())
    );
    assert_eq!(
        xattr(&dest.join("d"), "trusted.overlay.opaque"),
        Some(b"y".to_vec())
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("f_link")).unwrap(),
        "data"
    );

    // Exporting the import gives the same bytes: nothing was lost or reordered.
    let mut second = Vec::new();
    write_tar(&dest, &mut second, &opts).unwrap();
    assert!(
        first == second,
        "re-export differs: {:?} vs {:?}",
        list(&first),
        list(&second)
    );

    // SOURCE_DATE_EPOCH-style clamp.
    let mut clamped = Vec::new();
    write_tar(
        &src,
        &mut clamped,
        &TarOptions {
            mtime_clamp: Some(1_000_001),
            xattrs: true,
        },
    )
    .unwrap();
    for (name, mtime) in list(&clamped) {
        assert!(mtime <= 1_000_001, "{name} has mtime {mtime}");
    }
}

#[test]
fn merged_export_applies_whiteouts_and_opaque_dirs() {
    if !joot_test_support::require_root("merged_export_applies_whiteouts_and_opaque_dirs") {
        return;
    }
    let c = case("merged");
    let (lo, up) = (c.base.join("lo"), c.base.join("up"));
    std::fs::create_dir_all(lo.join("d")).unwrap();
    std::fs::create_dir_all(lo.join("o")).unwrap();
    std::fs::write(lo.join("gone"), "x").unwrap();
    std::fs::write(lo.join("d/x"), "x").unwrap();
    std::fs::write(lo.join("o/hidden"), "x").unwrap();
    std::fs::create_dir_all(up.join("o")).unwrap();
    std::fs::create_dir_all(up.join("d")).unwrap();
    std::fs::write(up.join("o/z"), "z").unwrap();
    std::fs::write(up.join("b"), "b").unwrap();
    use rustix::fs::{CWD, FileType, Mode, XattrFlags};
    rustix::fs::mknodat(
        CWD,
        up.join("gone"),
        FileType::CharacterDevice,
        Mode::empty(),
        0,
    )
    .unwrap();
    rustix::fs::setxattr(
        up.join("o"),
        "trusted.overlay.opaque",
        b"y",
        XattrFlags::empty(),
    )
    .unwrap();
    let mut out = Vec::new();
    write_merged_tar(
        &[lo, up],
        &mut out,
        &TarOptions {
            mtime_clamp: None,
            xattrs: true,
        },
    )
    .unwrap();
    let names: Vec<String> = list(&out).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["./", "b", "d", "d/x", "o", "o/z"]);
    let text = String::from_utf8_lossy(&out);
    assert!(
        !text.contains("overlay.opaque"),
        "overlay markers leaked into the export"
    );
    let dest = c.base.join("dest");
    import_tar(&out[..], &dest).unwrap();
    assert!(!dest.join("gone").exists() && !dest.join("o/hidden").exists());
    let mut s = String::new();
    std::fs::File::open(dest.join("o/z"))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "z");
}

#[test]
fn import_image_publishes_one_layer_or_nothing() {
    let c = case("import_image");
    let store = joot_store::Store::open(c.base.join("store")).unwrap();
    let name = joot_store::Name::parse("deb").unwrap();
    let bytes = tar_of(|b| {
        raw(b, "./", EntryType::Directory, None, b"");
        raw(b, "etc/os-release", EntryType::Regular, None, b"ID=test\n");
    });
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&bytes).unwrap();
    let xz = xz.finish().unwrap();
    let (image, stats) = store
        .import_image(&xz[..], &name, "rootfs.tar.xz", joot_store::Replace::No)
        .unwrap();
    assert_eq!(stats.files, 1);
    assert_eq!(image.layers.len(), 1);
    let root = store.layer_root(&image.layers[0]);
    assert_eq!(
        std::fs::read(root.join("etc/os-release")).unwrap(),
        b"ID=test\n"
    );
    let meta = store.layer(&image.layers[0]).unwrap();
    assert_eq!(
        meta.origin,
        joot_store::Origin::Import {
            source: "rootfs.tar.xz".into()
        }
    );
    // A hostile archive publishes nothing and leaves no staging behind.
    let evil = tar_of(|b| raw(b, "../x", EntryType::Regular, None, b"x"));
    let other = joot_store::Name::parse("evil").unwrap();
    let err = store
        .import_image(&evil[..], &other, "-", joot_store::Replace::No)
        .unwrap_err();
    assert!(err.to_string().contains("'../x'"), "{err}");
    assert!(store.image(&other).is_err());
    assert_eq!(store.layers().unwrap().len(), 1);
    assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    assert!(matches!(
        store.import_image(&xz[..], &name, "again", joot_store::Replace::No),
        Err(joot_store::Error::AlreadyExists { .. })
    ));
}

#[test]
fn import_without_same_owner_skips_devices_and_chown() {
    let c = case("not_same_owner");
    let bytes = tar_of(|b| {
        let mut h = Header::new_gnu();
        set_bytes(&mut h.as_old_mut().name, b"dev/null");
        h.set_entry_type(EntryType::Char);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_mode(0o666);
        h.set_uid(4242);
        h.set_gid(4242);
        h.set_mtime(0);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
        let mut h = Header::new_gnu();
        set_bytes(&mut h.as_old_mut().name, b"f");
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(4242);
        h.set_gid(4242);
        h.set_mtime(0);
        h.set_size(1);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
    });
    let opts = joot_store::archive::ImportOptions { same_owner: false };
    let stats = joot_store::archive::import_tar_with(&bytes[..], &c.dest, &opts).unwrap();
    assert_eq!(stats.skipped_devices, 1);
    assert!(!c.dest.join("dev/null").exists());
    let md = std::fs::metadata(c.dest.join("f")).unwrap();
    assert_eq!(md.uid(), rustix::process::geteuid().as_raw());
}

#[test]
fn rootless_layer_round_trip_keeps_whiteouts_and_user_opaque_dirs() {
    // Runs as any user: whiteouts (char 0:0) need no CAP_MKNOD since Linux 5.8, and
    // user.overlay.opaque is a user xattr.
    let c = case("rootless_layer");
    let (lo, up) = (c.base.join("lo"), c.base.join("up"));
    std::fs::create_dir_all(lo.join("o")).unwrap();
    std::fs::write(lo.join("gone"), "x").unwrap();
    std::fs::write(lo.join("o/hidden"), "x").unwrap();
    std::fs::create_dir_all(up.join("o")).unwrap();
    std::fs::write(up.join("o/z"), "z").unwrap();
    use rustix::fs::{CWD, FileType, Mode, XattrFlags};
    rustix::fs::mknodat(
        CWD,
        up.join("gone"),
        FileType::CharacterDevice,
        Mode::empty(),
        0,
    )
    .unwrap();
    rustix::fs::setxattr(
        up.join("o"),
        "user.overlay.opaque",
        b"y",
        XattrFlags::empty(),
    )
    .unwrap();
    let opts = TarOptions {
        mtime_clamp: None,
        xattrs: true,
    };

    // The raw layer keeps its markers through export and a non-root-style import.
    let mut raw_tar = Vec::new();
    write_tar(&up, &mut raw_tar, &opts).unwrap();
    let copy = c.base.join("copy");
    let stats = joot_store::archive::import_tar_with(
        &raw_tar[..],
        &copy,
        &joot_store::archive::ImportOptions { same_owner: false },
    )
    .unwrap();
    assert_eq!(stats.skipped_devices, 0);
    let wh = std::fs::symlink_metadata(copy.join("gone")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(
        xattr(&copy.join("o"), "user.overlay.opaque"),
        Some(b"y".to_vec())
    );

    // The merged view of lower + copied upper applies them.
    let mut merged = Vec::new();
    write_merged_tar(&[lo, copy], &mut merged, &opts).unwrap();
    let names: Vec<String> = list(&merged).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["./", "o", "o/z"]);
}
