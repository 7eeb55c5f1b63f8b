//! joot-sandbox: runs commands inside environments.
//!
//! A [`RunSpec`] (root layers, upper dir, argv, env, user, binds, network, capabilities) is
//! turned by pure code into a [`MountPlan`]; a fresh single-threaded child created in new
//! mount, PID, UTS, IPC and cgroup namespaces (plus network for `--net none` and user when not
//! root) applies the plan with the fd-based mount API, pivots into the new root and becomes a
//! small init (PID 1) that runs the command as PID 2. No helper program is executed between
//! joot and the command: that is where the speed comes from. The [`tool`] module runs host
//! programs for the other crates, and [`session`] ties environments of the store to runs.

pub mod tool;

pub use tool::{Tool, ToolError};
