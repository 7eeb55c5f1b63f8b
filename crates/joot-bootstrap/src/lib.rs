//! joot-bootstrap
