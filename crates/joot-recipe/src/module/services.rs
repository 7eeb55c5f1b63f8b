//! `services`: enable, disable or mask systemd units with `systemctl` inside the image. systemd
//! is not running there, so systemctl works offline: it only creates or removes the unit links.

use serde::{Deserialize, Serialize};

use super::Cx;
use crate::node::Node;

/// `services: {enable: [...], disable: [...], mask: [...]}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Services {
    /// Units to enable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enable: Vec<String>,
    /// Units to disable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disable: Vec<String>,
    /// Units to mask.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mask: Vec<String>,
}

impl Services {
    pub(crate) fn parse(node: &Node, cx: &mut Cx<'_>) -> Option<Services> {
        let s: Services = cx.sink.parse(node)?;
        let mut ok = true;
        if s.enable.is_empty() && s.disable.is_empty() && s.mask.is_empty() {
            cx.sink.error(
                node.loc,
                "`services` names no unit: give `enable`, `disable` or `mask`",
            );
            ok = false;
        }
        for (field, units) in [
            ("enable", &s.enable),
            ("disable", &s.disable),
            ("mask", &s.mask),
        ] {
            for (j, u) in units.iter().enumerate() {
                let valid = !u.is_empty()
                    && !u.starts_with('-')
                    && u.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "@._:-\\".contains(c));
                if !valid {
                    cx.sink.error(
                        node.get(field).map_or(node.loc, |n| n.loc_of_item(j)),
                        format!("`{u}` is not a systemd unit name"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(s)
    }

    pub(crate) fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (verb, units) in [
            ("enable", &self.enable),
            ("disable", &self.disable),
            ("mask", &self.mask),
        ] {
            if !units.is_empty() {
                parts.push(format!("{verb} {}", units.join(" ")));
            }
        }
        format!("services {}", parts.join(", "))
    }
}
