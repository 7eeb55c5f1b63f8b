//! CLI tests: build.
