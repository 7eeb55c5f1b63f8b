//! Arbitrary bytes through magic-byte detection and decompression, then import: decoders must
//! fail cleanly on corrupt or truncated gzip, xz and zstd input.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let Ok(reader) = joot_store::compress::open_decompressed(data) else {
        return;
    };
    // Bound the expansion so a decompression bomb does not stall the fuzzer.
    let reader = reader.take(64 << 20);
    let _ = joot_store::archive::import_tar(reader, &dir.path().join("dest"));
});
