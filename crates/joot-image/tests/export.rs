//! Disk images written then read back, from a busybox fixture directory: reproducibility, the
//! container formats against `qemu-img compare`, a bootable layout (with a stand-in kernel; the
//! real boots are CLI tests), EC2 output, import fidelity and hostile images.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use joot_image::import::{ImportDiskOptions, ReadMethod, import_disk};
use joot_image::{ExportOptions, ExportRequest, Ids, Quiet, Tree, export_tree};
use joot_test_support::{fixture, require_root, require_tool};
use sha2::{Digest, Sha256};

fn opts(out: &Path, extra: impl FnOnce(&mut ExportRequest)) -> ExportOptions {
    let mut req = ExportRequest {
        output: out.to_path_buf(),
        size: "auto".into(),
        fs: "ext4".into(),
        ..Default::default()
    };
    extra(&mut req);
    ExportOptions::new(&req).expect("valid options")
}

fn tools(name: &str, list: &[&str]) -> bool {
    list.iter().all(|t| require_tool(name, t))
}

/// The busybox fixture plus what fidelity tests look for: a file owned by 1000, a setuid
/// binary, a hard link, a fifo, a device node and a user xattr (the last four as root).
fn rich_rootfs(dir: &Path) {
    fixture::busybox_rootfs(dir).unwrap();
    std::fs::write(dir.join("home/alice/notes"), b"alice's notes\n").unwrap();
    std::fs::write(dir.join("bin/suid"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        dir.join("bin/suid"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    if rustix::process::geteuid().is_root() {
        for p in ["home/alice", "home/alice/notes"] {
            std::os::unix::fs::chown(dir.join(p), Some(1000), Some(1000)).unwrap();
        }
        std::fs::hard_link(dir.join("bin/busybox"), dir.join("bin/busybox-hardlink")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("dev/null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("run/fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        rustix::fs::setxattr(
            dir.join("etc/hostname"),
            "user.joot-test",
            b"kept",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
    }
}

/// path -> (kind, mode, uid, gid, content hash / link target / device)
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).follow_links(false) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
        if rel.as_os_str().is_empty() || rel == Path::new("lost+found") {
            continue;
        }
        let md = e.path().symlink_metadata().unwrap();
        let ft = md.file_type();
        let what = if ft.is_symlink() {
            format!("link {}", std::fs::read_link(e.path()).unwrap().display())
        } else if ft.is_file() {
            format!(
                "file {}",
                hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()))
            )
        } else if ft.is_dir() {
            "dir".to_string()
        } else {
            format!("special {:o} {}", md.mode() & 0o170000, md.rdev())
        };
        let mode = if ft.is_symlink() {
            0
        } else {
            md.mode() & 0o7777
        };
        out.insert(rel, format!("{what} {mode:o} {}:{}", md.uid(), md.gid()));
    }
    out
}

#[test]
fn raw_gpt_export_is_reproducible_and_readable() {
    let name = "raw_gpt_export_is_reproducible_and_readable";
    if !tools(name, &["mkfs.ext4", "sfdisk", "debugfs"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture::busybox_rootfs(&root).unwrap();
    let tree = Tree::Dir(root);
    let ids = Ids::from_seed(&["layer-a"]);
    let a = t.path().join("a.raw");
    let b = t.path().join("b.raw");
    let ra = export_tree(&tree, &ids, &opts(&a, |_| {}), &Quiet).unwrap();
    export_tree(&tree, &ids, &opts(&b, |_| {}), &Quiet).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(ra.disk_size % (1 << 20), 0);
    let sf = Command::new("sfdisk")
        .arg("--json")
        .arg(&a)
        .output()
        .unwrap();
    let js: serde_json::Value = serde_json::from_slice(&sf.stdout).unwrap();
    assert_eq!(js["partitiontable"]["label"], "gpt");
    assert_eq!(js["partitiontable"]["partitions"][0]["start"], 2048);
    let out = Command::new("debugfs")
        .args(["-R", "stat /etc/passwd"])
        .arg(format!("{}?offset={}", a.display(), 1 << 20))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Type: regular"));
    // No scratch directories are left beside the output.
    let left: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".joot-export-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn container_formats_match_the_raw_disk() {
    let name = "container_formats_match_the_raw_disk";
    if !tools(name, &["mkfs.ext4", "sfdisk", "qemu-img"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture::busybox_rootfs(&root).unwrap();
    let tree = Tree::Dir(root);
    let ids = Ids::from_seed(&["layer-b"]);
    let raw = t.path().join("disk.raw");
    export_tree(&tree, &ids, &opts(&raw, |r| r.size = "100M".into()), &Quiet).unwrap();
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), 100 << 20);
    for (file, fmt, extra) in [
        ("disk.qcow2", "qcow2", None),
        ("disk-z.qcow2", "qcow2", Some("compress")),
        ("disk.vmdk", "vmdk", None),
        ("disk-s.vmdk", "vmdk", Some("stream")),
        ("disk.vhd", "vpc", None),
        ("disk.vhdx", "vhdx", None),
    ] {
        let out = t.path().join(file);
        export_tree(
            &tree,
            &ids,
            &opts(&out, |r| {
                r.size = "100M".into();
                r.compress = extra == Some("compress");
                if extra == Some("stream") {
                    r.vmdk_subformat = Some("streamOptimized".into());
                }
            }),
            &Quiet,
        )
        .unwrap();
        let cmp = Command::new("qemu-img")
            .args(["compare", "-f", fmt, "-F", "raw"])
            .arg(&out)
            .arg(&raw)
            .output()
            .unwrap();
        assert!(
            cmp.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&cmp.stdout)
        );
        let check = Command::new("qemu-img")
            .args(["check", "-f", fmt])
            .arg(&out)
            .output()
            .unwrap();
        // vpc and raw do not support checks (exit 63); everything else must be clean.
        assert!(
            check.status.success() || check.status.code() == Some(63),
            "{file}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        if fmt == "vpc" {
            let info = Command::new("qemu-img")
                .args(["info", "--output=json", "-f", "vpc"])
                .arg(&out)
                .output()
                .unwrap();
            let js: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
            let size = js["virtual-size"].as_u64().unwrap();
            assert_eq!(size % (1 << 20), 0, "VHD size {size} is not whole MiB");
            assert_eq!(size, 100 << 20);
        }
    }
}

#[test]
fn bootable_layout_has_esp_uki_and_bios_grub() {
    let name = "bootable_layout_has_esp_uki_and_bios_grub";
    if !tools(
        name,
        &[
            "mkfs.ext4",
            "sfdisk",
            "mkfs.vfat",
            "mdir",
            "grub-mkimage",
            "objcopy",
            "debugfs",
        ],
    ) {
        return;
    }
    for f in [
        "/usr/lib/systemd/boot/efi/linuxx64.efi.stub",
        "/usr/lib/grub/i386-pc/boot.img",
    ] {
        if !Path::new(f).is_file() {
            joot_test_support::skip(name, &format!("needs {f} (systemd-boot-efi, grub-pc-bin)"));
            return;
        }
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture::busybox_rootfs(&root).unwrap();
    let tree = Tree::Dir(root.clone());
    let ids = Ids::from_seed(&["layer-c"]);
    let out = t.path().join("boot.raw");
    // Without a kernel: a clear error naming the package to add.
    let err = export_tree(&tree, &ids, &opts(&out, |r| r.bootable = true), &Quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("linux-image-amd64"), "{err}");
    assert!(!out.exists());
    // A kernel that is a symlink would be read on the host, outside the image: not a kernel.
    std::fs::create_dir_all(root.join("boot")).unwrap();
    let vmlinuz = root.join("boot/vmlinuz-6.1.0-9-amd64");
    std::os::unix::fs::symlink("/etc/hostname", &vmlinuz).unwrap();
    let err = export_tree(&tree, &ids, &opts(&out, |r| r.bootable = true), &Quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("linux-image-amd64"), "{err}");
    std::fs::remove_file(&vmlinuz).unwrap();
    // A stand-in kernel is enough to check the layout (the CLI tests boot a real one). Old
    // times, so that a read which moved the access time would show (relatime updates it when
    // atime <= mtime) and land in the next export's filesystem.
    std::fs::write(&vmlinuz, vec![0x90u8; 4096]).unwrap();
    std::fs::write(root.join("boot/initrd.img-6.1.0-9-amd64"), b"initrd").unwrap();
    let old = Command::new("touch")
        .args(["-h", "-d", "@1000000"])
        .arg(&vmlinuz)
        .arg(root.join("boot/initrd.img-6.1.0-9-amd64"))
        .status()
        .unwrap();
    assert!(old.success());
    let r = export_tree(&tree, &ids, &opts(&out, |r| r.bootable = true), &Quiet).unwrap();
    for f in [
        "boot/vmlinuz-6.1.0-9-amd64",
        "boot/initrd.img-6.1.0-9-amd64",
    ] {
        let md = std::fs::metadata(root.join(f)).unwrap();
        assert_eq!(
            md.atime(),
            1_000_000,
            "export changed the access time of {f}"
        );
    }
    assert_eq!(r.kernel.as_deref(), Some("6.1.0-9-amd64"));
    let sf = Command::new("sfdisk")
        .arg("--json")
        .arg(&out)
        .output()
        .unwrap();
    let js: serde_json::Value = serde_json::from_slice(&sf.stdout).unwrap();
    let parts = js["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0]["type"], "21686148-6449-6E6F-744E-656564454649");
    assert_eq!(parts[1]["type"], "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    let bytes = std::fs::read(&out).unwrap();
    // boot.img in sector 0 with the core.img location patched; protective MBR kept.
    assert_eq!(&bytes[510..512], &[0x55, 0xAA]);
    assert_eq!(
        u64::from_le_bytes(bytes[0x5c..0x64].try_into().unwrap()),
        2048
    );
    let core = 2048 * 512;
    assert_eq!(
        u64::from_le_bytes(bytes[core + 0x1f4..core + 0x1fc].try_into().unwrap()),
        2049
    );
    assert_eq!(bytes[446 + 4], 0xEE);
    // The ESP holds the UKI, read back with mtools (no mount).
    let esp = parts[1]["start"].as_u64().unwrap() * 512;
    let dir = Command::new("mdir")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(format!("{}@@{esp}", out.display()))
        .arg("::/EFI/BOOT")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&dir.stdout).contains("BOOTX64"),
        "{}",
        String::from_utf8_lossy(&dir.stdout)
    );
    // fstab names the root by UUID, written into the built filesystem only.
    let rootp = parts[2]["start"].as_u64().unwrap() * 512;
    let fstab = Command::new("debugfs")
        .args(["-R", "cat /etc/fstab"])
        .arg(format!("{}?offset={rootp}", out.display()))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&fstab.stdout).contains(&format!("UUID={} /", r.root_uuid)),
        "{}",
        String::from_utf8_lossy(&fstab.stdout)
    );
    assert!(
        !root.join("etc/fstab").exists(),
        "the source tree was modified"
    );
    // Reproducible, bootable parts included.
    let again = t.path().join("boot2.raw");
    export_tree(&tree, &ids, &opts(&again, |r| r.bootable = true), &Quiet).unwrap();
    assert!(
        std::fs::read(&again).unwrap() == bytes,
        "bootable export differs"
    );
}

#[test]
fn ec2_directory_has_bare_root_kernel_and_initrd() {
    let name = "ec2_directory_has_bare_root_kernel_and_initrd";
    if !tools(name, &["mkfs.ext4", "debugfs"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture::busybox_rootfs(&root).unwrap();
    std::fs::create_dir_all(root.join("boot")).unwrap();
    std::fs::write(root.join("boot/vmlinuz-6.1.0-9-amd64"), b"kernel").unwrap();
    std::fs::write(root.join("boot/initrd.img-6.1.0-9-amd64"), b"initrd").unwrap();
    let out = t.path().join("ec2");
    export_tree(
        &Tree::Dir(root.clone()),
        &Ids::from_seed(&["layer-d"]),
        &opts(&out, |r| r.format = Some("ec2".into())),
        &Quiet,
    )
    .unwrap();
    assert_eq!(std::fs::read(out.join("vmlinuz")).unwrap(), b"kernel");
    assert_eq!(std::fs::read(out.join("initrd.img")).unwrap(), b"initrd");
    let img = std::fs::read(out.join("root.img")).unwrap();
    assert_eq!(
        &img[1080..1082],
        &[0x53, 0xEF],
        "root.img is not a bare ext4"
    );
    let ls = Command::new("debugfs")
        .args(["-R", "cat /etc/fstab"])
        .arg(out.join("root.img"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&ls.stdout).contains("LABEL=root /"));
    // The image's own tree is in it: the fixture's passwd, its busybox, the kernel in /boot.
    let debugfs = |req: &str| {
        let o = Command::new("debugfs")
            .args(["-R", req])
            .arg(out.join("root.img"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(
        debugfs("cat /etc/passwd"),
        std::fs::read_to_string(root.join("etc/passwd")).unwrap()
    );
    assert!(debugfs("ls -l /bin").contains("busybox"));
    assert_eq!(debugfs("cat /boot/vmlinuz-6.1.0-9-amd64"), "kernel");
    let names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

fn roundtrip(name: &str, method: ReadMethod, container: &str, fs: &str) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    rich_rootfs(&root);
    let disk = t.path().join(format!("disk.{container}"));
    export_tree(
        &Tree::Dir(root.clone()),
        &Ids::from_seed(&[name]),
        &opts(&disk, |r| r.fs = fs.into()),
        &Quiet,
    )
    .unwrap();
    let store = joot_store::Store::open(t.path().join("store")).unwrap();
    let mut o = ImportDiskOptions::new("back").unwrap();
    o.method = Some(method);
    let report = import_disk(&store, &disk, &o).unwrap();
    assert_eq!(report.partition, 1);
    assert_eq!(report.filesystem, fs);
    let image = store
        .image(&joot_store::Name::parse("back").unwrap())
        .unwrap();
    assert_eq!(image.layers.len(), 1);
    assert_eq!(
        image.distro.as_ref().map(|d| d.id.as_str()),
        Some("joot-fixture")
    );
    let got = snapshot(&store.layer_root(&image.layers[0]));
    let mut want = snapshot(&root);
    if method == ReadMethod::Userspace {
        // ext4-view exposes neither device numbers nor xattrs: device nodes are skipped.
        want.retain(|_, v| !v.starts_with("special 20000"));
    }
    let diff: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .map(|(k, v)| format!("{}: want {v}, got {:?}", k.display(), got.get(k)))
        .chain(
            got.keys()
                .filter(|k| !want.contains_key(*k))
                .map(|k| format!("{}: unexpected", k.display())),
        )
        .collect();
    assert!(diff.is_empty(), "trees differ:\n{}", diff.join("\n"));
    let layer = store.layer_root(&image.layers[0]);
    if method == ReadMethod::KernelReadOnly {
        let a = std::fs::metadata(layer.join("bin/busybox")).unwrap();
        let b = std::fs::metadata(layer.join("bin/busybox-hardlink")).unwrap();
        assert_eq!(a.ino(), b.ino(), "hard link lost");
        let mut buf = [0u8; 16];
        let n = rustix::fs::getxattr(layer.join("etc/hostname"), "user.joot-test", &mut buf)
            .expect("xattr kept");
        assert_eq!(&buf[..n], b"kept");
    }
}

#[test]
fn export_then_import_with_the_kernel_keeps_the_tree() {
    let name = "export_then_import_with_the_kernel_keeps_the_tree";
    if !require_root(name) || !tools(name, &["mkfs.ext4", "sfdisk", "unshare", "tar"]) {
        return;
    }
    roundtrip(name, ReadMethod::KernelReadOnly, "raw", "ext4");
}

#[test]
fn xfs_export_then_import_keeps_the_tree() {
    let name = "xfs_export_then_import_keeps_the_tree";
    if !require_root(name) || !tools(name, &["mkfs.xfs", "sfdisk", "unshare", "qemu-img"]) {
        return;
    }
    roundtrip(name, ReadMethod::KernelReadOnly, "vmdk", "xfs");
}

#[test]
fn export_then_import_in_userspace_keeps_the_tree() {
    let name = "export_then_import_in_userspace_keeps_the_tree";
    if !tools(name, &["mkfs.ext4", "sfdisk", "qemu-img"]) {
        return;
    }
    roundtrip(name, ReadMethod::Userspace, "qcow2", "ext4");
}

fn assert_nothing_stored(store: &joot_store::Store) {
    assert!(store.images().unwrap().is_empty(), "an image was stored");
    assert!(store.layers().unwrap().is_empty(), "a layer was stored");
}

/// No file in the store contains `needle` (host file content must never leak in).
fn assert_no_content(dir: &Path, needle: &[u8]) {
    for e in walkdir::WalkDir::new(dir).follow_links(false) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let data = std::fs::read(e.path()).unwrap();
            assert!(
                !data.windows(needle.len()).any(|w| w == needle),
                "{} holds host content",
                e.path().display()
            );
        }
    }
}

#[test]
fn hostile_images_are_refused_with_nothing_stored() {
    let name = "hostile_images_are_refused_with_nothing_stored";
    if !tools(name, &["qemu-img", "mkfs.ext4", "sfdisk"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let secret = t.path().join("host-secret");
    let marker = b"JOOT-HOST-SECRET-0123456789";
    let mut content = marker.to_vec();
    content.resize(1 << 20, b'x');
    std::fs::write(&secret, &content).unwrap();
    let store = joot_store::Store::open(t.path().join("store")).unwrap();
    let import = |p: &Path| {
        import_disk(&store, p, &ImportDiskOptions::new("evil").unwrap())
            .unwrap_err()
            .to_string()
    };

    // qcow2 whose backing file is a host file.
    let q = t.path().join("backing.qcow2");
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(&secret)
        .arg(&q)
        .status()
        .unwrap();
    assert!(st.success());
    let e = import(&q);
    assert!(e.contains("backing file"), "{e}");
    // The same qcow2 named as a raw disk (what a guest can write into a raw disk's first
    // sector): the name and the content disagree, refused before qemu-img opens it.
    let disguised = t.path().join("disguised.raw");
    std::fs::copy(&q, &disguised).unwrap();
    let e = import(&disguised);
    assert!(
        e.contains("its name says raw but its content is qcow2"),
        "{e}"
    );

    // vmdk descriptor with a flat extent pointing at a host file.
    let v = t.path().join("flat.vmdk");
    std::fs::write(
        &v,
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\nRW 2048 FLAT \"{}\" 0\n\nddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"2\"\nddb.geometry.heads = \"16\"\nddb.geometry.sectors = \"63\"\nddb.adapterType = \"ide\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let e = import(&v);
    assert!(e.contains("refusing"), "{e}");
    // A split descriptor (several sparse extent files), one of them outside.
    let split = t.path().join("split.vmdk");
    std::fs::write(
        &split,
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n\nRW 4192256 SPARSE \"split-s001.vmdk\"\nRW 2048 FLAT \"{}\" 0\n",
            secret.display()
        ),
    )
    .unwrap();
    let e = import(&split);
    assert!(e.contains("flat or split extents"), "{e}");

    // A good disk, then truncated.
    let root = t.path().join("rootfs");
    fixture::busybox_rootfs(&root).unwrap();
    let good = t.path().join("good.raw");
    export_tree(
        &Tree::Dir(root),
        &Ids::from_seed(&["x"]),
        &opts(&good, |_| {}),
        &Quiet,
    )
    .unwrap();
    let trunc = t.path().join("trunc.raw");
    std::fs::copy(&good, &trunc).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&trunc)
        .unwrap();
    f.set_len(8 << 20).unwrap();
    let e = import(&trunc);
    assert!(e.contains("past the end"), "{e}");

    // A partition entry pointing past the end of an otherwise valid GPT.
    let past = t.path().join("past.raw");
    std::fs::write(&past, vec![0u8; 4 << 20]).unwrap();
    let mut sf = Command::new("sfdisk")
        .args(["--no-reread", "--no-tell-kernel", "-q"])
        .arg(&past)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    sf.stdin
        .take()
        .unwrap()
        .write_all(b"label: gpt\nstart=2048, size=4096\n")
        .unwrap();
    sf.wait().unwrap();
    let grown = t.path().join("past2.raw");
    // Cut the disk so the partition (and the backup GPT) lie past its end.
    let mut bytes = std::fs::read(&past).unwrap();
    bytes.truncate(2 << 20);
    std::fs::write(&grown, bytes).unwrap();
    let e = import(&grown);
    assert!(e.contains("past the end"), "{e}");

    // A partition with an unknown filesystem.
    let unknown = t.path().join("unknown.raw");
    let mut data = std::fs::read(&past).unwrap();
    data[(1 << 20)..(1 << 20) + 4096].fill(0xAB);
    std::fs::write(&unknown, data).unwrap();
    let e = import(&unknown);
    assert!(e.contains("unknown filesystem"), "{e}");

    // Not a disk image at all.
    let e = import(&secret);
    assert!(e.contains("not a disk image"), "{e}");

    assert_nothing_stored(&store);
    assert_no_content(store.root(), marker);
}

#[test]
fn every_container_format_is_detected_and_imported() {
    let name = "every_container_format_is_detected_and_imported";
    if !tools(name, &["mkfs.ext4", "sfdisk", "qemu-img"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture::busybox_rootfs(&root).unwrap();
    let store = joot_store::Store::open(t.path().join("store")).unwrap();
    for (file, fmt, extra) in [
        ("d.raw", joot_image::DiskFormat::Raw, None),
        ("d.qcow2", joot_image::DiskFormat::Qcow2, None),
        ("d.vmdk", joot_image::DiskFormat::Vmdk, None),
        (
            "ds.vmdk",
            joot_image::DiskFormat::Vmdk,
            Some("streamOptimized"),
        ),
        ("d.vhd", joot_image::DiskFormat::Vhd, None),
        ("d.vhdx", joot_image::DiskFormat::Vhdx, None),
    ] {
        let disk = t.path().join(file);
        export_tree(
            &Tree::Dir(root.clone()),
            &Ids::from_seed(&[file]),
            &opts(&disk, |r| {
                r.partition = Some("mbr".into());
                r.vmdk_subformat = extra.map(str::to_string);
            }),
            &Quiet,
        )
        .unwrap();
        assert_eq!(joot_image::import::detect(&disk), Some(fmt), "{file}");
        let image = format!("i-{}", file.replace('.', "-"));
        let mut o = ImportDiskOptions::new(&image).unwrap();
        o.method = Some(ReadMethod::Userspace);
        let r = import_disk(&store, &disk, &o).unwrap();
        assert_eq!(r.format, fmt, "{file}");
        let img = store
            .image(&joot_store::Name::parse(&image).unwrap())
            .unwrap();
        let passwd =
            std::fs::read_to_string(store.layer_root(&img.layers[0]).join("etc/passwd")).unwrap();
        assert!(passwd.contains("alice"), "{file}");
    }
    // The partition option picks a partition that does not exist: a clear error.
    let mut o = ImportDiskOptions::new("nope").unwrap();
    o.partition = Some(7);
    let e = import_disk(&store, &t.path().join("d.raw"), &o)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no partition 7"), "{e}");
}
