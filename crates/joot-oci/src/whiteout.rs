//! Whiteouts, the two spellings: OCI layer tars mark a deleted entry with an empty file
//! `.wh.NAME` and an opaque directory with `DIR/.wh..wh..opq` (image-spec `layer.md`,
//! "Whiteouts"); overlayfs marks a deleted entry with a character device 0:0 and an opaque
//! directory with the xattr `trusted.overlay.opaque=y` (`user.` in a rootless store;
//! Documentation/filesystems/overlayfs.rst). This module is the pure name mapping both ways.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Prefix of an OCI whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the OCI opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The overlayfs opaque xattrs (root store, rootless store).
pub const OVERLAY_OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// What one directory entry of an OCI layer tar means for overlayfs.
#[derive(Debug, PartialEq, Eq)]
pub enum TarName {
    /// An ordinary entry.
    Plain,
    /// `.wh.NAME`: NAME is deleted in this layer.
    Whiteout(OsString),
    /// `.wh..wh..opq`: the containing directory hides everything below it.
    Opaque,
    /// Another `.wh..wh.` name (aufs hard-link and metadata dirs): dropped.
    AufsMeta,
    /// `.wh.` followed by an empty name, `.` or `..`, or a slash: refused.
    Invalid,
}

/// Classifies the last component of a tar entry's path.
pub fn classify(name: &OsStr) -> TarName {
    let bytes = name.as_bytes();
    if bytes == OPAQUE_MARKER.as_bytes() {
        return TarName::Opaque;
    }
    let Some(target) = bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) else {
        return TarName::Plain;
    };
    if target.starts_with(WHITEOUT_PREFIX.as_bytes()) {
        return TarName::AufsMeta;
    }
    if target.is_empty() || target == b"." || target == b".." || target.contains(&b'/') {
        return TarName::Invalid;
    }
    TarName::Whiteout(OsString::from_vec(target.to_vec()))
}

/// The OCI name for a whiteout of `name` (an overlay char device 0:0 called `name`).
pub fn whiteout_name(name: &OsStr) -> OsString {
    let mut out = OsString::from(WHITEOUT_PREFIX);
    out.push(name);
    out
}

/// True for the overlay xattrs that encode whiteouts and must never travel in a tar as xattrs
/// (`trusted.overlay.*`, `user.overlay.*`).
pub fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// True when an xattr value marks a directory opaque.
pub fn is_opaque_value(value: &[u8]) -> bool {
    value == b"y"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_oci_names() {
        assert_eq!(classify(OsStr::new("passwd")), TarName::Plain);
        assert_eq!(classify(OsStr::new(".wh")), TarName::Plain);
        assert_eq!(classify(OsStr::new(".whx")), TarName::Plain);
        assert_eq!(
            classify(OsStr::new(".wh.passwd")),
            TarName::Whiteout("passwd".into())
        );
        assert_eq!(
            classify(OsStr::new(".wh..hidden")),
            TarName::Whiteout(".hidden".into())
        );
        assert_eq!(classify(OsStr::new(".wh..wh..opq")), TarName::Opaque);
        assert_eq!(classify(OsStr::new(".wh..wh.plnk")), TarName::AufsMeta);
        assert_eq!(classify(OsStr::new(".wh.")), TarName::Invalid);
        assert_eq!(classify(OsStr::new(".wh..")), TarName::Invalid);
        assert_eq!(classify(OsStr::new(".wh...")), TarName::Invalid);
    }

    #[test]
    fn whiteout_name_round_trips() {
        for n in ["a", ".hidden", "with space", "ünïcode"] {
            let wh = whiteout_name(OsStr::new(n));
            assert_eq!(classify(&wh), TarName::Whiteout(n.into()));
        }
    }

    #[test]
    fn overlay_xattrs_are_recognised() {
        assert!(is_overlay_xattr(b"trusted.overlay.opaque"));
        assert!(is_overlay_xattr(b"user.overlay.origin"));
        assert!(!is_overlay_xattr(b"security.capability"));
        assert!(!is_overlay_xattr(b"user.mime_type"));
        assert!(is_opaque_value(b"y"));
        assert!(!is_opaque_value(b"n"));
    }
}
