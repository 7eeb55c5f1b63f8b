//! joot-oci
