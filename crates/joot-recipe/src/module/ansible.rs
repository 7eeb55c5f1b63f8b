//! `ansible`: run a playbook from the host against the image root with ansible's chroot
//! connection (`community.general.chroot`, which ships with Debian's `ansible`). Modules that
//! need python need it in the image (`packages: [python3]`); `raw` tasks do not. The playbook
//! targets the host pattern `all`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Cx, Input, recipe_file};
use crate::node::Node;

/// `ansible: site.yml` or `ansible: {playbook: site.yml, extra_vars: {...}, inputs: [roles]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ansible {
    /// The playbook, relative to the recipe.
    pub playbook: String,
    /// Variables passed with `--extra-vars` (as JSON).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_vars: BTreeMap<String, serde_json::Value>,
    /// Other files or directories the playbook reads (roles, templates), relative to the recipe:
    /// their content is part of the step's cache key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// The playbook resolved on the host.
    #[serde(skip)]
    pub playbook_path: PathBuf,
    /// `inputs` resolved on the host.
    #[serde(skip)]
    pub input_paths: Vec<PathBuf>,
}

impl Ansible {
    pub(crate) fn parse(node: &Node, cx: &mut Cx<'_>) -> Option<Ansible> {
        let mut a = match node.as_str() {
            Some(p) => Ansible {
                playbook: p.to_string(),
                extra_vars: BTreeMap::new(),
                inputs: Vec::new(),
                playbook_path: PathBuf::new(),
                input_paths: Vec::new(),
            },
            None => cx.sink.parse::<Ansible>(node)?,
        };
        let loc = if node.as_str().is_some() {
            node.loc
        } else {
            node.loc_of("playbook")
        };
        let playbook = recipe_file(cx, &a.playbook.clone(), loc, "ansible playbook");
        let mut ok = playbook.is_some();
        for (i, inp) in a.inputs.clone().iter().enumerate() {
            let l = node.get("inputs").map_or(node.loc, |n| n.loc_of_item(i));
            match recipe_file(cx, inp, l, "ansible input") {
                Some(p) => a.input_paths.push(p),
                None => ok = false,
            }
        }
        a.playbook_path = playbook?;
        ok.then_some(a)
    }

    pub(crate) fn inputs(&self) -> Vec<Input> {
        let mut v = vec![Input {
            label: format!("ansible playbook {}", self.playbook),
            path: self.playbook_path.clone(),
        }];
        for (name, path) in self.inputs.iter().zip(&self.input_paths) {
            v.push(Input {
                label: format!("ansible input {name}"),
                path: path.clone(),
            });
        }
        v
    }

    pub(crate) fn summary(&self) -> String {
        format!("ansible {}", self.playbook)
    }
}
