//! Opening a possibly compressed stream by its magic bytes (never by file name): gzip
//! (`1f 8b`, multi-member), xz (`fd 37 7a 58 5a 00`), zstd (`28 b5 2f fd`), else plain.

use std::io::{self, Read};

/// The compression a stream starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

/// Detects the compression from the first bytes of a stream.
pub fn detect(prefix: &[u8]) -> Compression {
    if prefix.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if prefix.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps `reader` in the decoder its magic bytes call for.
pub fn open_decompressed<'a, R: Read + 'a>(mut reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut prefix = [0u8; 6];
    let mut n = 0;
    while n < prefix.len() {
        match reader.read(&mut prefix[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let whole = io::Cursor::new(prefix[..n].to_vec()).chain(reader);
    Ok(match detect(&prefix[..n]) {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(whole)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(whole)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn round_trip(data: &[u8], compressed: Vec<u8>, want: Compression) {
        assert_eq!(detect(&compressed), want);
        let mut out = Vec::new();
        open_decompressed(&compressed[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn detects_and_decodes_each_format() {
        let data = b"hello tar world".repeat(100);
        round_trip(&data, data.clone(), Compression::None);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        round_trip(&data, gz.finish().unwrap(), Compression::Gzip);
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&data).unwrap();
        round_trip(&data, xz.finish().unwrap(), Compression::Xz);
        round_trip(
            &data,
            zstd::encode_all(&data[..], 1).unwrap(),
            Compression::Zstd,
        );
        round_trip(b"ab", b"ab".to_vec(), Compression::None);
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![7u8; 100_000]).unwrap();
        let mut bytes = gz.finish().unwrap();
        bytes.truncate(bytes.len() / 2);
        let mut out = Vec::new();
        assert!(
            open_decompressed(&bytes[..])
                .unwrap()
                .read_to_end(&mut out)
                .is_err()
        );
    }
}
