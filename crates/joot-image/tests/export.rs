//! Disk images written then read back, from a busybox fixture directory (no store needed).

use std::path::Path;
use std::process::Command;

use joot_image::{ExportOptions, ExportRequest, Ids, Quiet, Tree, export_tree};
use joot_test_support::{fixture, require_tool};

fn request(out: &Path, extra: impl FnOnce(&mut ExportRequest)) -> ExportOptions {
    let mut req = ExportRequest {
        output: out.to_path_buf(),
        size: "auto".into(),
        fs: "ext4".into(),
        ..Default::default()
    };
    extra(&mut req);
    ExportOptions::new(&req).expect("valid options")
}

fn fsck_at(disk: &Path, offset: u64) {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg("stat /etc/passwd")
        .arg(format!("{}?offset={offset}", disk.display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Type: regular"), "{text}");
}

#[test]
fn raw_gpt_export_is_reproducible_and_readable() {
    let name = "raw_gpt_export_is_reproducible_and_readable";
    if !require_tool(name, "mkfs.ext4") || !require_tool(name, "sfdisk") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture::busybox_rootfs(&root).unwrap();
    let tree = Tree::Dir(root);
    let ids = Ids::from_seed(&["layer-a"]);
    let a = t.path().join("a.raw");
    let b = t.path().join("b.raw");
    let ra = export_tree(&tree, &ids, &request(&a, |_| {}), &Quiet).unwrap();
    export_tree(&tree, &ids, &request(&b, |_| {}), &Quiet).unwrap();
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
    fsck_at(&a, 1 << 20);
}
