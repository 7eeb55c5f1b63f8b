//! `run`: a shell script run inside the image, as root by default, with the env's clean
//! environment plus the step's `env:`. A non-zero exit fails the build.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Cx;
use crate::node::Node;

/// `run: script` or `run: {script, shell, env, user, workdir}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// The script text.
    pub script: String,
    /// The interpreter (default /bin/sh), run as `SHELL -e -c SCRIPT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Run as this user (default root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Working directory inside the image (default /).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
}

impl Run {
    pub(crate) fn parse(node: &Node, cx: &mut Cx<'_>) -> Option<Run> {
        let run = if let Some(script) = node.as_str() {
            Run {
                script: script.to_string(),
                shell: None,
                env: BTreeMap::new(),
                user: None,
                workdir: None,
            }
        } else {
            cx.sink.parse::<Run>(node)?
        };
        let mut ok = true;
        if run.script.trim().is_empty() {
            cx.sink.error(node.loc, "`run` has an empty script");
            ok = false;
        }
        if let Some(shell) = &run.shell
            && !shell.starts_with('/')
        {
            cx.sink.error(
                node.loc_of("shell"),
                format!("shell `{shell}` must be an absolute path such as /bin/bash"),
            );
            ok = false;
        }
        if let Some(w) = &run.workdir
            && let Err(e) = super::check_image_path(w)
        {
            cx.sink
                .error(node.loc_of("workdir"), format!("workdir {e}"));
            ok = false;
        }
        for k in run.env.keys() {
            let valid = !k.is_empty()
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                cx.sink.error(
                    node.loc_of("env"),
                    format!("`{k}` is not a valid environment variable name"),
                );
                ok = false;
            }
        }
        ok.then_some(run)
    }

    pub(crate) fn summary(&self) -> String {
        format!("run {}", self.script)
    }
}
