//! CLI tests: image.
