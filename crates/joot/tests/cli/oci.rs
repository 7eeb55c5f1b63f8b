//! CLI tests: oci.
