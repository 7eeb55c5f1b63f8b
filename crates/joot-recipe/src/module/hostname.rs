//! `hostname`: the name written to /etc/hostname (and the `127.0.1.1` line of /etc/hosts), what
//! a booted machine made from the image calls itself.

use serde::{Deserialize, Serialize};

use super::Cx;
use crate::node::Node;

/// `hostname: web`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hostname {
    /// The host name (RFC 1123 labels separated by dots).
    pub name: String,
}

impl Hostname {
    pub(crate) fn parse(node: &Node, cx: &mut Cx<'_>) -> Option<Hostname> {
        let h: Hostname = cx.sink.parse(node)?;
        let valid = !h.name.is_empty()
            && h.name.len() <= 253
            && h.name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            cx.sink.error(
                node.loc,
                format!(
                    "`{}` is not a valid host name (letters, digits and `-`, dot-separated labels of at most 63)",
                    h.name
                ),
            );
            return None;
        }
        Some(h)
    }

    pub(crate) fn summary(&self) -> String {
        format!("hostname {}", self.name)
    }
}
