//! Custom modules, the escape hatch: `module: NAME` runs the executable `NAME` found in
//! `modules/` beside the recipe (then in the configured search path) on the host, as
//! `NAME-EXECUTABLE NAME ROOT CONFIG.json`, where ROOT is the image root being built (mounted
//! read-write) and CONFIG.json holds `{"with": <the step's with:>, "recipe": <the whole recipe>}`.
//! Any language works; a non-zero exit fails the step.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Cx, Input};
use crate::node::Node;

/// `module: NAME` with `with: {...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Custom {
    /// The module's name (its executable's file name).
    pub name: String,
    /// The step's `with:` config, passed through as JSON.
    #[serde(default)]
    pub with: serde_json::Value,
    /// The executable found for it.
    #[serde(skip)]
    pub exe: PathBuf,
}

impl Custom {
    pub(crate) fn parse(name_node: &Node, with: Option<&Node>, cx: &mut Cx<'_>) -> Option<Custom> {
        let name: String = cx.sink.parse(name_node)?;
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            cx.sink.error(
                name_node.loc,
                format!("`{name}` is not a module name (letters, digits, `_`, `.` and `-`)"),
            );
            return None;
        }
        let mut dirs = vec![cx.dir.join("modules")];
        dirs.extend(cx.module_dirs.iter().cloned());
        let Some(exe) = dirs.iter().map(|d| d.join(&name)).find(|p| p.is_file()) else {
            let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            let hint = super::suggest(&name)
                .map(|b| format!("; did you mean the built-in `{b}:`?"))
                .unwrap_or_default();
            cx.sink.error(
                name_node.loc,
                format!(
                    "custom module `{name}` not found (looked in {}){hint}",
                    looked.join(", ")
                ),
            );
            return None;
        };
        let mode = exe.metadata().map(|m| m.permissions().mode()).unwrap_or(0);
        if mode & 0o111 == 0 {
            cx.sink.error(
                name_node.loc,
                format!(
                    "custom module `{name}` ({}) is not executable: chmod +x it",
                    exe.display()
                ),
            );
            return None;
        }
        Some(Custom {
            name,
            with: with.map_or(serde_json::Value::Null, Node::to_json),
            exe,
        })
    }

    pub(crate) fn inputs(&self) -> Vec<Input> {
        vec![Input {
            label: format!("module executable {}", self.name),
            path: self.exe.clone(),
        }]
    }

    pub(crate) fn summary(&self) -> String {
        format!("module {}", self.name)
    }
}
