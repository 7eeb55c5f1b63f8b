//! `packages`: install packages with the image's own package manager. The image's distro
//! metadata (written by bootstrap) says which: apt-get for the Debian family, dnf for the RPM
//! family. Services do not start during installs (policy-rc.d on Debian).

use serde::{Deserialize, Serialize};

use super::Cx;
use crate::node::Node;

/// `packages: [nginx, curl]`: names as the package manager takes them (`name`, `name=1.2-3`,
/// `name:amd64`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Packages {
    /// Package names, in order.
    pub names: Vec<String>,
}

impl Packages {
    pub(crate) fn parse(node: &Node, cx: &mut Cx<'_>) -> Option<Packages> {
        if node.as_str().is_some() {
            cx.sink.error(
                node.loc,
                "`packages` takes a list: write `packages: [name, ...]`",
            );
            return None;
        }
        let p: Packages = cx.sink.parse(node)?;
        let mut ok = true;
        if p.names.is_empty() {
            cx.sink.error(node.loc, "`packages` lists no package");
            ok = false;
        }
        for (i, name) in p.names.iter().enumerate() {
            let valid = !name.is_empty()
                && !name.starts_with('-')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-._:=~*".contains(c));
            if !valid {
                cx.sink.error(
                    node.loc_of_item(i),
                    format!("`{name}` is not a package name"),
                );
                ok = false;
            }
        }
        ok.then_some(p)
    }

    pub(crate) fn summary(&self) -> String {
        format!("packages {}", self.names.join(" "))
    }
}
