//! Capability sets: dropping the bounding set and setting effective, permitted and inheritable
//! sets (capabilities(7)). Capabilities are numbers (`CAP_CHOWN` = 0, ...) and sets are u64
//! bit masks.

use std::io;

pub const CHOWN: u32 = 0;
pub const DAC_OVERRIDE: u32 = 1;
pub const FOWNER: u32 = 3;
pub const FSETID: u32 = 4;
pub const KILL: u32 = 5;
pub const SETGID: u32 = 6;
pub const SETUID: u32 = 7;
pub const SETPCAP: u32 = 8;
pub const NET_BIND_SERVICE: u32 = 10;
pub const NET_RAW: u32 = 13;
pub const SYS_CHROOT: u32 = 18;
pub const SYS_ADMIN: u32 = 21;
pub const MKNOD: u32 = 27;
pub const AUDIT_WRITE: u32 = 29;
pub const SETFCAP: u32 = 31;

/// Docker's default capability set as a bit mask.
pub fn docker_default() -> u64 {
    [
        CHOWN,
        DAC_OVERRIDE,
        FSETID,
        FOWNER,
        MKNOD,
        NET_RAW,
        SETGID,
        SETUID,
        SETFCAP,
        SETPCAP,
        NET_BIND_SERVICE,
        SYS_CHROOT,
        KILL,
        AUDIT_WRITE,
    ]
    .iter()
    .fold(0u64, |m, c| m | (1u64 << c))
}

/// The highest capability number this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Removes every capability not in `keep` from the bounding set of the calling thread
/// (PR_CAPBSET_DROP; needs CAP_SETPCAP). `last` is from [`last_cap`], read before fork.
pub fn drop_bounding_except(keep: u64, last: u32) -> io::Result<()> {
    for cap in 0..=last.min(63) {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Sets effective, permitted and inheritable sets to `set` and clears the ambient set.
pub fn set_all(set: u64) -> io::Result<()> {
    use rustix::thread::{CapabilitySet, CapabilitySets};
    let s = CapabilitySet::from_bits_retain(set);
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: s,
            permitted: s,
            inheritable: s,
        },
    )?;
    rustix::thread::clear_ambient_capability_set()?;
    Ok(())
}

/// The permitted set of the calling thread.
pub fn permitted() -> io::Result<u64> {
    Ok(rustix::thread::capabilities(None)?.permitted.bits())
}
