//! `puppet`: apply a manifest with `puppet apply` inside the image (puppet must be installed
//! in the image, for example by a `packages: [puppet]` step before). The manifest and the
//! optional module directory are bound read-only into the env for the run.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Cx, Input, recipe_file};
use crate::node::Node;

/// `puppet: site.pp` or `puppet: {manifest: site.pp, modulepath: modules-puppet}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Puppet {
    /// The manifest, relative to the recipe.
    pub manifest: String,
    /// A directory of puppet modules, relative to the recipe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modulepath: Option<String>,
    /// The manifest resolved on the host.
    #[serde(skip)]
    pub manifest_path: PathBuf,
    /// The module directory resolved on the host.
    #[serde(skip)]
    pub modulepath_path: Option<PathBuf>,
}

impl Puppet {
    pub(crate) fn parse(node: &Node, cx: &mut Cx<'_>) -> Option<Puppet> {
        let mut p = match node.as_str() {
            Some(m) => Puppet {
                manifest: m.to_string(),
                modulepath: None,
                manifest_path: PathBuf::new(),
                modulepath_path: None,
            },
            None => cx.sink.parse::<Puppet>(node)?,
        };
        let loc = if node.as_str().is_some() {
            node.loc
        } else {
            node.loc_of("manifest")
        };
        let manifest = recipe_file(cx, &p.manifest.clone(), loc, "puppet manifest");
        let modulepath = match p.modulepath.clone() {
            Some(m) => Some(recipe_file(
                cx,
                &m,
                node.loc_of("modulepath"),
                "puppet modulepath",
            )?),
            None => None,
        };
        p.manifest_path = manifest?;
        p.modulepath_path = modulepath;
        Some(p)
    }

    pub(crate) fn inputs(&self) -> Vec<Input> {
        let mut v = vec![Input {
            label: format!("puppet manifest {}", self.manifest),
            path: self.manifest_path.clone(),
        }];
        if let (Some(m), Some(p)) = (&self.modulepath, &self.modulepath_path) {
            v.push(Input {
                label: format!("puppet modulepath {m}"),
                path: p.clone(),
            });
        }
        v
    }

    pub(crate) fn summary(&self) -> String {
        format!("puppet {}", self.manifest)
    }
}
