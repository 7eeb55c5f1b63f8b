//! CLI tests: core.
