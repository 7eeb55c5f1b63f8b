//! Arbitrary bytes as a plain tar stream: the importer must never panic, never write outside
//! its destination (each run gets a fresh `dest` inside a fresh sandbox dir, and the sandbox
//! must hold nothing but `dest` afterwards), and leave `dest` empty when it fails.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let dest = dir.path().join("a/b/dest");
    let result = joot_store::archive::import_tar(data, &dest);
    let outside: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| !p.starts_with(&dest) && !dest.starts_with(p))
        .collect();
    assert!(outside.is_empty(), "wrote outside dest: {outside:?}");
    if result.is_err() {
        assert_eq!(std::fs::read_dir(&dest).map(|d| d.count()).unwrap_or(0), 0);
    }
});

fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}
