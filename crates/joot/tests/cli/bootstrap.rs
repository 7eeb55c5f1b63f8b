//! CLI tests: bootstrap.
