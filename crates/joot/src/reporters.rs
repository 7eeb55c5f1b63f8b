//! Progress at the edge: the libraries report through small `Reporter` traits of their own and
//! this module implements them for the terminal (indicatif bars), for logs (plain lines) and for
//! CI systems (`--progress json`: one JSON object per line on stderr). stdout stays for results.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::ProgressMode;

/// How progress is shown, decided once from `--progress`, `--quiet` and whether stderr is a tty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Plain,
    Json,
    Silent,
}

/// The progress sink handed to commands; cheap to clone.
#[derive(Clone)]
pub struct Progress {
    mode: Mode,
    multi: MultiProgress,
}

impl Progress {
    pub fn new(requested: ProgressMode, quiet: bool) -> Progress {
        let mode = match requested {
            _ if quiet => Mode::Silent,
            ProgressMode::None => Mode::Silent,
            ProgressMode::Json => Mode::Json,
            ProgressMode::Plain => Mode::Plain,
            ProgressMode::Auto if std::io::stderr().is_terminal() => Mode::Bars,
            ProgressMode::Auto => Mode::Plain,
        };
        let multi = MultiProgress::with_draw_target(if mode == Mode::Bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Progress { mode, multi }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A human-readable line (a phase, a note). In JSON mode it becomes `{"event":"log",...}`.
    pub fn line(&self, msg: &str) {
        match self.mode {
            Mode::Bars => {
                let _ = self.multi.println(msg);
            }
            Mode::Plain => {
                let _ = writeln!(std::io::stderr().lock(), "{msg}");
            }
            Mode::Json => self.event("log", serde_json::json!({ "message": msg })),
            Mode::Silent => {}
        }
    }

    /// A structured event: JSON mode prints it with `"event": kind`; other modes ignore it (the
    /// caller prints a human line with [`Progress::line`] as well when one is wanted).
    pub fn event(&self, kind: &str, fields: serde_json::Value) {
        if self.mode != Mode::Json {
            return;
        }
        let mut obj = serde_json::Map::new();
        obj.insert("event".into(), kind.into());
        if let serde_json::Value::Object(map) = fields {
            obj.extend(map);
        }
        let _ = writeln!(
            std::io::stderr().lock(),
            "{}",
            serde_json::Value::Object(obj)
        );
    }

    /// A progress bar of `len` units (bytes when `bytes`), or a spinner when `len` is None.
    /// Invisible unless the mode is `Bars`.
    pub fn bar(&self, len: Option<u64>, bytes: bool, msg: &str) -> ProgressBar {
        if self.mode != Mode::Bars {
            return ProgressBar::hidden();
        }
        let pb = match len {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let template = match (len.is_some(), bytes) {
            (true, true) => {
                "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}"
            }
            (true, false) => "{msg:30!} [{bar:30}] {pos}/{len} {elapsed}",
            (false, true) => "{spinner} {msg:30!} {bytes} {binary_bytes_per_sec} {elapsed}",
            (false, false) => "{spinner} {msg} {elapsed}",
        };
        pb.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb.set_message(msg.to_string());
        if len.is_none() {
            pb.enable_steady_tick(Duration::from_millis(120));
        }
        self.multi.add(pb)
    }
}
