//! Running the installers. Each external program is a [`Tool`]: checked for presence up front
//! with the reason it is needed and the Debian package that provides it. Runs stream the tool's
//! output line by line (for progress) and keep its tail, so a failure reports argv, exit status
//! or signal, and the last lines the tool printed.
//!
//! Installers run wrapped as `setpriv --pdeathsig KILL -- unshare --mount --propagation private
//! --pid --fork --kill-child --mount-proc -- TOOL...`: the mounts they make (proc, sys, dev in
//! the target) live in a private mount namespace and vanish with it, and if joot dies (even by
//! SIGKILL) the kernel kills the installer and every process it started (pdeathsig, then the PID
//! namespace's init dying). So the staging directory left behind is plain files that `joot gc`
//! can remove, never a tree with live mounts in it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::error::{Error, Result};

pub use joot_sandbox::tool::Tool;

pub const SETPRIV: Tool = Tool {
    name: "setpriv",
    package: "util-linux",
    reason: "to stop installers when joot exits",
};
pub const UNSHARE: Tool = Tool {
    name: "unshare",
    package: "util-linux",
    reason: "to run installers in a private mount and PID namespace",
};

/// The argv that runs `argv` isolated as described in the module docs.
pub fn isolated(argv: &[String]) -> Vec<String> {
    let mut v: Vec<String> = WRAPPER.iter().map(|s| s.to_string()).collect();
    v.extend(argv.iter().cloned());
    v
}

const WRAPPER: [&str; 13] = [
    "setpriv",
    "--pdeathsig",
    "KILL",
    "--",
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--pid",
    "--fork",
    "--kill-child",
    "--mount-proc",
    "--",
];

/// The installer's own argv (without the isolation wrapper), multi-line arguments (hook
/// scripts) cut to their first line: what an error message shows. The full argv is logged at
/// debug level.
pub fn short_argv(argv: &[String]) -> String {
    let argv = if argv.len() > WRAPPER.len() && argv[..WRAPPER.len()] == WRAPPER {
        &argv[WRAPPER.len()..]
    } else {
        argv
    };
    let cut: Vec<String> = argv
        .iter()
        .map(|a| match a.split_once('\n') {
            Some((first, _)) => format!("{first} ..."),
            None => a.clone(),
        })
        .collect();
    display_argv(&cut)
}

/// `argv` as a shell would need it typed (for logs and errors).
pub fn display_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

const TAIL_LINES: usize = 40;

/// Runs `argv` with extra environment `env`, calling `on_line` for each line it prints on
/// stdout or stderr. Fails with the argv, the status and the output's tail.
pub fn run_streaming(
    argv: &[String],
    env: &[(String, String)],
    on_line: &mut dyn FnMut(&str),
) -> Result<()> {
    tracing::debug!(argv = %display_argv(argv), "running");
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| Error::ToolFailed {
        argv: short_argv(argv),
        status: format!("cannot start: {e}"),
        tail: String::new(),
    })?;
    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|r| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for chunk in BufReader::new(r).split(b'\n') {
                let Ok(chunk) = chunk else { break };
                for part in chunk.split(|&b| b == b'\r') {
                    let line = String::from_utf8_lossy(part).trim_end().to_string();
                    if !line.is_empty() && tx.send(line).is_err() {
                        return;
                    }
                }
            }
        })
    })
    .collect();
    drop(tx);
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    for line in rx {
        on_line(&line);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait()?;
    if status.success() {
        return Ok(());
    }
    Err(Error::ToolFailed {
        argv: short_argv(argv),
        status: describe_status(status),
        tail: tail.into_iter().collect::<Vec<_>>().join("\n"),
    })
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(9) => "killed by SIGKILL".into(),
        Some(15) => "killed by SIGTERM".into(),
        Some(2) => "killed by SIGINT".into(),
        Some(n) => format!("killed by signal {n}"),
        None => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn quotes_for_display() {
        assert_eq!(
            display_argv(&s(&["sh", "-c", "echo 'a b'", "--x=y"])),
            r#"sh -c 'echo '\''a b'\''' --x=y"#
        );
    }

    #[test]
    fn streams_lines_and_reports_failure_with_tail() {
        let mut seen = Vec::new();
        let err = run_streaming(
            &s(&[
                "sh",
                "-c",
                "echo one; printf 'two\\rthree\\n' >&2; echo four; exit 3",
            ]),
            &[("JOOT_X".into(), "y".into())],
            &mut |l| seen.push(l.to_string()),
        )
        .unwrap_err();
        seen.sort();
        assert_eq!(seen, ["four", "one", "three", "two"]);
        let msg = err.to_string();
        assert!(
            msg.contains("exit status 3") && msg.contains("four"),
            "{msg}"
        );
        assert!(msg.contains("sh -c"), "{msg}");
        run_streaming(
            &s(&["sh", "-c", "test \"$JOOT_X\" = y"]),
            &[("JOOT_X".into(), "y".into())],
            &mut |_| {},
        )
        .unwrap();
    }

    #[test]
    fn missing_tool_names_the_package() {
        let t = Tool {
            name: "joot-no-such-tool",
            package: "joot-pkg",
            reason: "to test",
        };
        let msg = crate::Error::from(t.check().unwrap_err()).to_string();
        assert!(
            msg.contains("joot-pkg") && msg.contains("joot-no-such-tool"),
            "{msg}"
        );
        assert!(SETPRIV.is_present());
    }

    #[test]
    fn errors_show_the_installer_argv_briefly() {
        let v = isolated(&s(&[
            "mmdebstrap",
            "--setup-hook=set -e\nmkdir x",
            "bookworm",
        ]));
        assert_eq!(
            short_argv(&v),
            "mmdebstrap '--setup-hook=set -e ...' bookworm"
        );
        assert_eq!(short_argv(&s(&["dnf", "-y"])), "dnf -y");
    }

    #[test]
    fn isolated_wraps_argv() {
        let v = isolated(&s(&["mmdebstrap", "x"]));
        assert_eq!(v[0], "setpriv");
        assert_eq!(&v[v.len() - 2..], ["mmdebstrap", "x"]);
        assert!(v.contains(&"--kill-child".to_string()));
    }
}
