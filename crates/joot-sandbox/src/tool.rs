//! External tools (mmdebstrap, dnf, mkfs.ext4, qemu-img, ...) run through one runner: presence
//! checked up front with the reason joot needs the tool and the Debian package that provides
//! it; argv logged at debug level; a failure carries argv, exit status or signal name, and the
//! tail of stderr, so the user sees the tool's own error.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// How many bytes of a failed tool's stderr an error keeps.
const STDERR_TAIL: usize = 4000;

/// A host program joot calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// Program name looked up on PATH ("mkfs.ext4").
    pub name: &'static str,
    /// Debian package that provides it ("e2fsprogs").
    pub package: &'static str,
    /// Why joot needs it ("to build ext4 filesystems for disk images").
    pub reason: &'static str,
}

/// Errors of [`Tool::check`] and [`run`].
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(
        "`{name}` is needed {reason} but was not found on PATH: install it with `apt-get install {package}`"
    )]
    Missing {
        name: &'static str,
        package: &'static str,
        reason: &'static str,
    },
    #[error("cannot start `{argv}`: {source}")]
    Spawn {
        argv: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{argv}` failed ({status}){}", tail_suffix(.stderr_tail))]
    Failed {
        argv: String,
        /// "exit status 2" or "killed by SIGKILL".
        status: String,
        /// Exit code, when the tool exited.
        code: Option<i32>,
        stderr_tail: String,
    },
}

fn tail_suffix(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!(":\n{}", tail.trim_end())
    }
}

impl Tool {
    /// The full path of the tool, or a [`ToolError::Missing`] naming the package to install.
    pub fn check(&self) -> Result<PathBuf, ToolError> {
        find_on_path(self.name).ok_or(ToolError::Missing {
            name: self.name,
            package: self.package,
            reason: self.reason,
        })
    }

    /// True when the tool is installed.
    pub fn is_present(&self) -> bool {
        find_on_path(self.name).is_some()
    }

    /// A `Command` for the tool, after checking that it is present.
    pub fn command(&self) -> Result<Command, ToolError> {
        Ok(Command::new(self.check()?))
    }

    /// The first line the tool prints for `version_arg` (e.g. `--version`), for logs, `joot
    /// doctor` and version checks.
    pub fn version(&self, version_arg: &str) -> Result<String, ToolError> {
        let mut cmd = Command::new(self.check()?);
        cmd.arg(version_arg);
        let out = run(cmd)?;
        let text = if out.stdout.is_empty() {
            out.stderr
        } else {
            out.stdout
        };
        Ok(String::from_utf8_lossy(&text)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string())
    }

    /// Checks presence, then runs `cmd` with [`run`].
    pub fn run(&self, cmd: Command) -> Result<Output, ToolError> {
        self.check()?;
        run(cmd)
    }
}

/// Looks `name` up in PATH (or takes it as a path when it contains a slash).
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| {
        OsString::from("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    });
    // Tools like mkfs.ext4 live in /sbin, which a plain user's PATH may lack.
    let extra = OsString::from("/usr/sbin:/sbin");
    std::env::split_paths(&path)
        .chain(std::env::split_paths(&extra))
        .map(|d| d.join(name))
        .find(|p| is_exec(p))
}

/// The command line of `cmd` as one shell-like string, for logs and errors.
pub fn argv_string(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let s = a.to_string_lossy();
            if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
                format!("'{}'", s.replace('\'', "'\\''"))
            } else {
                s.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` to completion, capturing stdout and stderr unless the caller configured them.
/// Success means exit status 0; anything else is a [`ToolError::Failed`] with the tail of
/// stderr.
pub fn run(mut cmd: Command) -> Result<Output, ToolError> {
    let argv = argv_string(&cmd);
    tracing::debug!(argv = %argv, "running tool");
    cmd.stdin(Stdio::null());
    let out = cmd.output().map_err(|source| ToolError::Spawn {
        argv: argv.clone(),
        source,
    })?;
    if out.status.success() {
        return Ok(out);
    }
    Err(failure(argv, &out))
}

/// Builds the error for a finished, failed tool run.
pub fn failure(argv: String, out: &Output) -> ToolError {
    use std::os::unix::process::ExitStatusExt;
    let status = match (out.status.code(), out.status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by {}", joot_sys::signal::name(s)),
        _ => "unknown status".to_string(),
    };
    let err = String::from_utf8_lossy(&out.stderr);
    let start = err.len().saturating_sub(STDERR_TAIL);
    let start = (start..err.len())
        .find(|&i| err.is_char_boundary(i))
        .unwrap_or(err.len());
    ToolError::Failed {
        argv,
        status,
        code: out.status.code(),
        stderr_tail: err[start..].to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_names_the_package() {
        let t = Tool {
            name: "joot-no-such-tool",
            package: "joot-pkg",
            reason: "for a test",
        };
        let e = t.check().unwrap_err().to_string();
        assert!(e.contains("apt-get install joot-pkg"), "{e}");
        assert!(e.contains("for a test"), "{e}");
    }

    #[test]
    fn failure_carries_argv_status_and_stderr_tail() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo boom >&2; exit 3"]);
        let e = run(cmd).unwrap_err();
        match &e {
            ToolError::Failed {
                argv,
                status,
                code,
                stderr_tail,
            } => {
                assert_eq!(argv, "/bin/sh -c 'echo boom >&2; exit 3'");
                assert_eq!(status, "exit status 3");
                assert_eq!(*code, Some(3));
                assert_eq!(stderr_tail.trim(), "boom");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(e.to_string().contains("boom"));
    }

    #[test]
    fn failure_by_signal_is_named() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "kill -9 $$"]);
        let e = run(cmd).unwrap_err().to_string();
        assert!(e.contains("killed by SIGKILL"), "{e}");
    }

    #[test]
    fn version_is_the_first_line() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("joot-tool-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fake-tool");
        std::fs::write(
            &path,
            "#!/bin/sh\necho \"fake-tool 1.2.3 ($1)\"\necho more\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = Tool {
            name: Box::leak(path.to_string_lossy().into_owned().into_boxed_str()),
            package: "fake",
            reason: "for a test",
        };
        let v = t.version("--version");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(v.unwrap(), "fake-tool 1.2.3 (--version)");
    }

    #[test]
    fn success_returns_output() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo hi"]);
        let out = run(cmd).unwrap();
        assert_eq!(out.stdout, b"hi\n");
    }
}
