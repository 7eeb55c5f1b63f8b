//! The host tools disk images need (mkfs.ext4, sfdisk, qemu-img, grub-mkimage, ...), each named
//! with why it is needed and which Debian package has it, so a missing one fails up front with an
//! actionable message, and a failing one reports its argv, exit status and the tail of stderr.
//!
//! The runner is joot-sandbox's (`joot_sandbox::Tool`, `joot_sandbox::tool::run`); this module
//! names the tools disk images need and adapts the runner to joot-image's error type.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::error::Result;

pub use joot_sandbox::Tool;

pub const MKFS_EXT4: Tool = Tool {
    name: "mkfs.ext4",
    package: "e2fsprogs",
    reason: "to build the ext4 root filesystem",
};
pub const MKFS_XFS: Tool = Tool {
    name: "mkfs.xfs",
    package: "xfsprogs",
    reason: "to build an xfs root filesystem (--fs xfs)",
};

pub const DEBUGFS: Tool = Tool {
    name: "debugfs",
    package: "e2fsprogs",
    reason: "to write /etc/fstab into the built filesystem",
};
pub const SFDISK: Tool = Tool {
    name: "sfdisk",
    package: "fdisk",
    reason: "to write the partition table",
};
pub const QEMU_IMG: Tool = Tool {
    name: "qemu-img",
    package: "qemu-utils",
    reason: "to convert between raw, qcow2, vmdk, vhd and vhdx",
};
pub const MKFS_VFAT: Tool = Tool {
    name: "mkfs.vfat",
    package: "dosfstools",
    reason: "to build the EFI system partition of a bootable disk",
};
pub const MCOPY: Tool = Tool {
    name: "mcopy",
    package: "mtools",
    reason: "to copy the UEFI boot files into the EFI system partition without mounting it",
};
pub const MMD: Tool = Tool {
    name: "mmd",
    package: "mtools",
    reason: "to create directories in the EFI system partition without mounting it",
};
pub const GRUB_MKIMAGE: Tool = Tool {
    name: "grub-mkimage",
    package: "grub-pc-bin",
    reason: "to build the BIOS boot loader of a bootable disk",
};
pub const OBJCOPY: Tool = Tool {
    name: "objcopy",
    package: "binutils",
    reason: "to assemble the unified kernel image (UKI) for UEFI boot",
};
pub const QEMU_SYSTEM: Tool = Tool {
    name: "qemu-system-x86_64",
    package: "qemu-system-x86",
    reason: "to boot disk images",
};
pub const UNSHARE: Tool = Tool {
    name: "unshare",
    package: "util-linux",
    reason: "to mount an imported filesystem read-only in a private mount namespace",
};
pub const TAR: Tool = Tool {
    name: "tar",
    package: "tar",
    reason: "to stream an imported filesystem with its owners, modes and xattrs",
};

/// A `Command` for `tool` (checked to exist), with a clean locale so output can be parsed.
pub fn command(tool: &Tool) -> Result<Command> {
    let mut cmd = tool.command()?;
    cmd.env("LC_ALL", "C");
    Ok(cmd)
}

/// Finds an executable on PATH plus the sbin directories (a plain user's PATH may lack them).
pub fn which(tool: &str) -> Option<PathBuf> {
    joot_sandbox::tool::find_on_path(tool)
}

/// Runs `cmd` to completion with stdin closed, capturing its output; a non-zero exit is an
/// error carrying the argv, status and stderr tail.
pub fn run(cmd: Command) -> Result<Output> {
    Ok(joot_sandbox::tool::run(cmd)?)
}

/// Turns a finished command's output into an error when it failed.
pub fn check_output(argv: &str, out: &Output) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    Err(joot_sandbox::tool::failure(argv.to_string(), out).into())
}

/// "exit status 1" or "killed by SIGKILL".
pub fn status_string(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exit status {code}")
    } else if let Some(sig) = status.signal() {
        let name = rustix::process::Signal::from_named_raw(sig)
            .map(|s| format!("{s:?}"))
            .unwrap_or_else(|| sig.to_string());
        format!("killed by signal {name}")
    } else {
        status.to_string()
    }
}

/// The last lines of a tool's stderr, trimmed, for error messages.
pub fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(8);
    let joined = lines[start..].join("\n");
    if joined.is_empty() {
        "(no output)".into()
    } else {
        joined
    }
}

/// The command line as a copy-pasteable string.
pub fn argv_string(cmd: &Command) -> String {
    joot_sandbox::tool::argv_string(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_tool_reports_status_and_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom >&2; exit 3"]);
        let err = run(cmd).unwrap_err().to_string();
        assert!(err.contains("exit status 3"), "{err}");
        assert!(err.contains("boom"), "{err}");
    }

    #[test]
    fn missing_tool_names_the_package() {
        let t = Tool {
            name: "joot-no-such-tool",
            package: "joot-pkg",
            reason: "for a test",
        };
        let err = command(&t).unwrap_err().to_string();
        assert!(err.contains("joot-pkg"), "{err}");
    }
}
