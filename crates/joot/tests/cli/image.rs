//! CLI tests: disk images. `joot export` to every container format against `qemu-img compare`,
//! export then `joot import` giving the same tree, hostile disk images refused with nothing
//! stored, EC2 output, and three real boots under TCG (slow: BIOS and UEFI boots of the shared
//! Debian image to a login prompt, and an EC2-style direct kernel boot to a marker).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use joot_test_support::{TestStore, fixture, require_root, require_tool, shared_debian};

fn tools(name: &str, list: &[&str]) -> bool {
    list.iter().all(|t| require_tool(name, t))
}

/// Firmware and boot-loader files the real boots need (skips, or fails in CI, when missing).
fn files(name: &str, list: &[&str]) -> bool {
    list.iter()
        .all(|f| Path::new(f).is_file() || joot_test_support::skip(name, &format!("needs {f}")))
}

const EFI_STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
const GRUB_BOOT_IMG: &str = "/usr/lib/grub/i386-pc/boot.img";
const OVMF: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";

/// A store with the busybox fixture imported as image `bb`.
fn busybox_store(name: &str) -> TestStore {
    let ts = TestStore::new(name);
    let tarball = ts.scratch().join("busybox.tar");
    fixture::busybox_tarball(&tarball).unwrap();
    ts.cmd()
        .args(["import"])
        .arg(&tarball)
        .args(["--name", "bb"])
        .assert()
        .success();
    ts
}

/// The layer roots of image `name` in store `root`, bottom to top.
fn layer_roots(root: &Path, name: &str) -> Vec<PathBuf> {
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("images").join(format!("{name}.json"))).unwrap(),
    )
    .unwrap();
    json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| root.join("layers").join(l.as_str().unwrap()).join("root"))
        .collect()
}

/// path -> kind, mode, owner and content hash (or link target).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    use fnv::hash;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if rel == Path::new("lost+found") {
                continue;
            }
            let md = p.symlink_metadata().unwrap();
            let what = if md.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else if md.is_dir() {
                stack.push(p.clone());
                "dir".into()
            } else if md.is_file() {
                format!("file {:016x}", hash(&std::fs::read(&p).unwrap()))
            } else {
                format!("special {}", md.rdev())
            };
            let mode = if md.file_type().is_symlink() {
                0
            } else {
                md.mode() & 0o7777
            };
            out.insert(rel, format!("{what} {mode:o} {}:{}", md.uid(), md.gid()));
        }
    }
    out
}

/// A content hash without extra dependencies (FNV-1a 64; collisions are not a concern for
/// comparing a tree with its own round trip).
mod fnv {
    pub fn hash(data: &[u8]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in data {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        h
    }
}

fn qemu_img(args: &[&str], files: &[&Path]) -> std::process::Output {
    Command::new("qemu-img")
        .args(args)
        .args(files)
        .output()
        .unwrap()
}

#[test]
fn export_formats_match_raw_and_vhd_is_whole_mib() {
    let name = "export_formats_match_raw_and_vhd_is_whole_mib";
    if !require_root(name) || !tools(name, &["qemu-img", "mkfs.ext4", "sfdisk"]) {
        return;
    }
    let ts = busybox_store(name);
    let out = ts.scratch();
    let raw = out.join("bb.raw");
    ts.cmd()
        .args(["export", "bb", "-o"])
        .arg(&raw)
        .args(["--size", "64M"])
        .assert()
        .success();
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), 64 << 20);
    for (file, fmt, extra) in [
        ("bb.qcow2", "qcow2", vec![]),
        ("bbz.qcow2", "qcow2", vec!["--compress"]),
        ("bb.vmdk", "vmdk", vec![]),
        (
            "bbs.vmdk",
            "vmdk",
            vec!["--vmdk-subformat", "streamOptimized"],
        ),
        ("bb.vhd", "vpc", vec![]),
        ("bb.vhdx", "vhdx", vec![]),
    ] {
        let p = out.join(file);
        ts.cmd()
            .args(["export", "bb", "-o"])
            .arg(&p)
            .args(["--size", "64M"])
            .args(&extra)
            .assert()
            .success();
        let cmp = qemu_img(&["compare", "-f", fmt, "-F", "raw"], &[&p, &raw]);
        assert!(cmp.status.success(), "{file} differs from the raw export");
        if file == "bbs.vmdk" {
            let check = qemu_img(&["check", "-f", "vmdk"], &[&p]);
            assert!(
                check.status.success(),
                "streamOptimized vmdk fails qemu-img check"
            );
        }
        if fmt == "vpc" {
            let info = qemu_img(&["info", "--output=json", "-f", "vpc"], &[&p]);
            let js: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
            let size = js["virtual-size"].as_u64().unwrap();
            assert_eq!(
                size % (1 << 20),
                0,
                "VHD virtual size {size} is not whole MiB"
            );
        }
    }
    // Reproducible: the same image exported twice is byte-identical.
    let again = out.join("again.raw");
    ts.cmd()
        .args(["export", "bb", "-o"])
        .arg(&again)
        .args(["--size", "64M"])
        .assert()
        .success();
    assert!(std::fs::read(&raw).unwrap() == std::fs::read(&again).unwrap());
}

#[test]
fn export_then_import_gives_the_same_tree() {
    let name = "export_then_import_gives_the_same_tree";
    if !require_root(name) || !tools(name, &["qemu-img", "mkfs.ext4", "sfdisk"]) {
        return;
    }
    let ts = busybox_store(name);
    let disk = ts.scratch().join("bb.qcow2");
    ts.cmd()
        .args(["export", "bb", "-o"])
        .arg(&disk)
        .assert()
        .success();
    ts.cmd()
        .arg("import")
        .arg(&disk)
        .args(["--name", "back"])
        .assert()
        .success();
    let before = snapshot(&layer_roots(&ts.root(), "bb")[0]);
    let after = snapshot(&layer_roots(&ts.root(), "back")[0]);
    assert_eq!(before, after);
    assert!(
        before
            .get(Path::new("home/alice"))
            .unwrap()
            .ends_with("1000:1000"),
        "fixture owner lost: {:?}",
        before.get(Path::new("home/alice"))
    );
}

#[test]
fn hostile_disk_images_are_refused_and_nothing_is_stored() {
    let name = "hostile_disk_images_are_refused_and_nothing_is_stored";
    if !require_root(name) || !tools(name, &["qemu-img"]) {
        return;
    }
    let ts = TestStore::new(name);
    let dir = ts.scratch();
    let secret = dir.join("secret");
    let marker = "JOOT-CLI-HOST-SECRET-42";
    std::fs::write(&secret, marker.repeat(50_000)).unwrap();
    let backing = dir.join("backing.qcow2");
    assert!(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(&secret)
            .arg(&backing)
            .status()
            .unwrap()
            .success()
    );
    let flat = dir.join("flat.vmdk");
    std::fs::write(
        &flat,
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/passwd\" 0\nRW 2048 FLAT \"{}\" 0\n",
            secret.display()
        ),
    )
    .unwrap();
    let mut gpt = vec![0u8; 2 << 20];
    gpt[510] = 0x55;
    gpt[511] = 0xAA;
    gpt[446 + 4] = 0x83;
    gpt[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    gpt[446 + 12..446 + 16].copy_from_slice(&100_000u32.to_le_bytes());
    let past = dir.join("past-end.raw");
    std::fs::write(&past, &gpt).unwrap();
    let unknown = dir.join("unknown-fs.raw");
    gpt[446 + 12..446 + 16].copy_from_slice(&2048u32.to_le_bytes());
    gpt.resize(4 << 20, 0);
    std::fs::write(&unknown, &gpt).unwrap();
    let truncated = dir.join("truncated.qcow2");
    std::fs::write(&truncated, b"QFI\xfb\0\0\0\x03").unwrap();
    for (img, why) in [
        (&backing, "backing file"),
        (&flat, "refusing"),
        (&past, "past the end"),
        (&unknown, "unknown filesystem"),
        (&truncated, "refusing"),
    ] {
        let out = ts
            .cmd()
            .arg("import")
            .arg(img)
            .args(["--name", "evil"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} was imported", img.display());
        assert!(err.contains(why), "{}: {err}", img.display());
    }
    assert!(!ts.root().join("images/evil.json").exists());
    let layers = ts.root().join("layers");
    if layers.exists() {
        for e in std::fs::read_dir(&layers).unwrap() {
            let p = e.unwrap().path();
            assert!(
                !p.join("layer.json").exists(),
                "a layer was stored: {}",
                p.display()
            );
        }
    }
    let out = Command::new("grep")
        .args(["-r", "-l", marker])
        .arg(ts.root())
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "host content in the store: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn export_refuses_bad_requests_before_writing() {
    let name = "export_refuses_bad_requests_before_writing";
    if !require_root(name) {
        return;
    }
    let ts = busybox_store(name);
    let out = ts.scratch().join("out");
    std::fs::create_dir(&out).unwrap();
    for (args, why) in [
        (vec!["-o", "x.tar", "--bootable"], "--bootable"),
        (
            vec!["-o", "x.raw", "--partition", "mbr", "--bootable"],
            "GPT",
        ),
        (vec!["-o", "x.vmdk", "--compress"], "qcow2"),
        (vec!["-o", "x.unknown"], "--format"),
        (vec!["-o", "x.raw", "--size", "4X"], "bad size"),
        (
            vec!["-o", "x.raw", "--fs", "btrfs"],
            "ext4 (the default) or xfs",
        ),
        (
            vec!["-o", "x.raw", "--fs", "xfs", "--bootable"],
            "not bootable",
        ),
        (vec!["-o", "x.tar", "--fs", "xfs"], "not to a tar archive"),
        (vec!["-o", "x.raw", "--bootable"], "linux-image-amd64"),
        (vec!["-o", "missing/x.raw"], "does not exist"),
    ] {
        let o = ts
            .cmd()
            .current_dir(&out)
            .args(["export", "bb"])
            .args(&args)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

/// Exports the shared Debian image, and removes the output at the end.
fn debian_export(test: &str, args: &[&str], file: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let deb = shared_debian(test)?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("joot-{test}-"))
        .tempdir()
        .unwrap();
    let out = dir.path().join(file);
    deb.cmd()
        .args(["export", &deb.image, "-o"])
        .arg(&out)
        .args(args)
        .assert()
        .success();
    Some((dir, out))
}

fn boot_until(args: &[&str], disk: &Path, expect: &str) {
    let out = Command::new(joot_test_support::joot_bin())
        .arg("boot")
        .arg(disk)
        .args(args)
        .args(["--expect", expect, "--timeout", "400"])
        .env("JOOT_CONFIG", "/nonexistent/joot-test-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "boot failed: {}\n--- console tail ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout[out.stdout.len().saturating_sub(3000)..])
    );
}

#[test]
fn boot_bootable_debian_under_bios() {
    let name = "boot_bootable_debian_under_bios";
    if !tools(
        name,
        &["qemu-system-x86_64", "grub-mkimage", "mkfs.vfat", "mcopy"],
    ) || !files(name, &[EFI_STUB, GRUB_BOOT_IMG])
    {
        return;
    }
    let Some((_dir, disk)) = debian_export(name, &["--bootable"], "deb.qcow2") else {
        return;
    };
    boot_until(&["--accel", "auto"], &disk, "login:");
}

#[test]
fn boot_bootable_debian_under_uefi() {
    let name = "boot_bootable_debian_under_uefi";
    if !tools(
        name,
        &["qemu-system-x86_64", "objcopy", "mkfs.vfat", "mcopy"],
    ) || !files(name, &[EFI_STUB, GRUB_BOOT_IMG, OVMF])
    {
        return;
    }
    let Some((_dir, disk)) = debian_export(name, &["--bootable"], "deb.raw") else {
        return;
    };
    boot_until(&["--uefi"], &disk, "login:");
}

#[test]
fn ec2_export_boots_with_direct_kernel() {
    let name = "ec2_export_boots_with_direct_kernel";
    if !tools(name, &["qemu-system-x86_64", "debugfs"]) {
        return;
    }
    let Some((_dir, out)) = debian_export(name, &["--format", "ec2"], "ec2") else {
        return;
    };
    for f in ["root.img", "vmlinuz", "initrd.img"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let img = std::fs::read(out.join("root.img"))
        .map(|b| b[1080..1082].to_vec())
        .unwrap();
    assert_eq!(img, [0x53, 0xEF], "root.img is not a bare ext4");
    let kernel = out.join("vmlinuz");
    let initrd = out.join("initrd.img");
    boot_until(
        &[
            "--format",
            "raw",
            "--kernel",
            kernel.to_str().unwrap(),
            "--initrd",
            initrd.to_str().unwrap(),
            "--append",
            r#"root=/dev/vda ro console=ttyS0 init=/bin/sh -- -c "printf JOOT-%s\\n BOOTED; sleep 30""#,
        ],
        &out.join("root.img"),
        "JOOT-BOOTED",
    );
}

/// qemu processes whose command line mentions `needle`.
fn qemu_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains("qemu-system") && cmd.contains(needle) {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn boot_expect_timeout_fails_and_kills_qemu() {
    let name = "boot_expect_timeout_fails_and_kills_qemu";
    if !tools(name, &["qemu-system-x86_64"]) {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix(&format!("joot-{name}-"))
        .tempdir()
        .unwrap();
    // A blank disk never prints anything on the serial console.
    let disk = dir.path().join("blank.raw");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let out = Command::new(joot_test_support::joot_bin())
        .arg("boot")
        .arg(&disk)
        .args([
            "--memory",
            "256M",
            "--expect",
            "never-printed",
            "--timeout",
            "3",
        ])
        .env("JOOT_CONFIG", "/nonexistent/joot-test-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("timed out"), "{err}");
    // `--accel auto` on a kvm_pvm host (this machine and CI) must say it fell back to TCG.
    if std::path::Path::new("/sys/module/kvm_pvm").exists() {
        assert!(err.contains("kvm_pvm") && err.contains("TCG"), "{err}");
    }
    let left = qemu_with(&disk.display().to_string());
    assert!(left.is_empty(), "qemu left running: {left:?}");

    // joot killed with SIGKILL mid-boot: qemu dies with it (parent death signal).
    let mut child = Command::new(joot_test_support::joot_bin())
        .arg("boot")
        .arg(&disk)
        .args([
            "--memory",
            "256M",
            "--expect",
            "never-printed",
            "--timeout",
            "300",
        ])
        .env("JOOT_CONFIG", "/nonexistent/joot-test-config")
        // A killed joot cannot remove its scratch dir: keep it inside this test's dir.
        .env("TMPDIR", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let needle = disk.display().to_string();
    let mut started = false;
    for _ in 0..100 {
        if !qemu_with(&needle).is_empty() {
            started = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(started, "qemu never started");
    let mut gone = false;
    for _ in 0..100 {
        if qemu_with(&needle).is_empty() {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        gone,
        "qemu outlived a killed joot: {:?}",
        qemu_with(&needle)
    );
}

#[test]
fn export_env_writes_its_current_state() {
    let name = "export_env_writes_its_current_state";
    if !require_root(name) || !tools(name, &["mkfs.ext4", "debugfs"]) {
        return;
    }
    let ts = busybox_store(name);
    ts.cmd()
        .args(["create", "work", "--from", "bb"])
        .assert()
        .success();
    ts.cmd()
        .args(["run", "work", "--", "sh", "-c"])
        .arg("echo changed-in-env > /root/marker && rm /etc/os-release")
        .assert()
        .success();
    let disk = ts.scratch().join("env.img");
    ts.cmd()
        .args(["export", "work", "-o"])
        .arg(&disk)
        .args(["--partition", "none"])
        .assert()
        .success();
    let cat = |path: &str| {
        let out = Command::new("debugfs")
            .args(["-R", &format!("cat {path}")])
            .arg(&disk)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(cat("/root/marker").0, "changed-in-env\n");
    // The deletion in the env's upper (a whiteout) is applied, not exported as a device.
    let (out, err) = cat("/etc/os-release");
    assert!(out.is_empty() && err.contains("not found"), "{out} {err}");
    assert!(cat("/etc/passwd").0.contains("alice"));
}

#[test]
fn tar_exports_import_back_to_the_same_tree() {
    let name = "tar_exports_import_back_to_the_same_tree";
    if !require_root(name) {
        return;
    }
    let ts = busybox_store(name);
    let before = snapshot(&layer_roots(&ts.root(), "bb")[0]);
    for (i, file) in ["bb.tar", "bb.tar.gz", "bb.tar.zst"].iter().enumerate() {
        let out = ts.scratch().join(file);
        ts.cmd()
            .args(["export", "bb", "-o"])
            .arg(&out)
            .assert()
            .success();
        let back = format!("back{i}");
        ts.cmd()
            .arg("import")
            .arg(&out)
            .args(["--name", &back])
            .assert()
            .success();
        let after = snapshot(&layer_roots(&ts.root(), &back)[0]);
        assert_eq!(before, after, "{file}");
    }
}
