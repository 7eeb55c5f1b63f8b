//! joot-sys: the only crate of joot allowed to use `unsafe`.
//!
//! It holds thin, safe wrappers over the Linux interfaces that `rustix` does not cover (clone3
//! with namespace flags, `mount_setattr`, `close_range`, signal forwarding handlers, the loopback
//! ioctl, the capability bounding set) and a few conveniences over `rustix` that the sandbox uses
//! between fork and exec. Every function returns `io::Result` and takes fds or paths; every
//! `unsafe` block says why it is sound. Callers cut by concept (namespaces, mounts, ids, caps)
//! live in `joot-sandbox`.
#![allow(unsafe_code)]

pub mod caps;
pub mod fd;
pub mod ids;
pub mod mount;
pub mod net;
pub mod process;
pub mod signal;
pub mod tty;
