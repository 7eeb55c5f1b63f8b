//! Whatever the importer accepts, the exporter writes back and the importer accepts again
//! (export and import agree on every entry type they support).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = dir.path().join("first");
    if joot_store::archive::import_tar(data, &first).is_err() {
        return;
    }
    let opts = joot_store::archive::TarOptions {
        mtime_clamp: None,
        xattrs: true,
    };
    let mut out = Vec::new();
    joot_store::archive::write_merged_tar(&[first.clone()], &mut out, &opts).expect("export");
    let second = dir.path().join("second");
    joot_store::archive::import_tar(&out[..], &second).expect("re-import of an export");
});
