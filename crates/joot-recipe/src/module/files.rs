//! `files`: copy files (or whole directories) from beside the recipe into the image, or write
//! inline content, with a mode and an owner. Destinations are resolved inside the image root, so
//! a symlink in the image cannot redirect a write onto the host. Owners are looked up in the
//! image's own /etc/passwd and /etc/group.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::{Cx, Input, check_image_path, recipe_file};
use crate::node::Node;

/// `files: [...]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Files {
    /// The entries, applied in order.
    pub entries: Vec<FileEntry>,
}

/// One file or directory to put into the image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Source path relative to the recipe (a file or a directory, copied recursively).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// Inline content instead of `src`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Absolute destination inside the image.
    pub dst: String,
    /// Octal mode such as "0644" (default: the source's mode, 0644 for inline content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// `user`, `user:group` or numeric ids (default root:root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// The source resolved on the host (set by validation).
    #[serde(skip)]
    pub src_path: Option<PathBuf>,
}

/// A permission mode written as a quoted octal string ("0644", "755", "04755").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode(pub u32);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an octal mode in quotes such as \"0644\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Mode, E> {
                let ok = (3..=4).contains(&s.len()) && s.chars().all(|c| ('0'..='7').contains(&c));
                match u32::from_str_radix(s, 8) {
                    Ok(m) if ok => Ok(Mode(m)),
                    _ => Err(E::custom(format!(
                        "bad mode `{s}`: write 3 or 4 octal digits in quotes such as \"0644\""
                    ))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Mode, E> {
                Err(E::custom(format!(
                    "bad mode {v}: write the mode in quotes such as \"0644\" (unquoted, YAML reads it as a number)"
                )))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Mode, E> {
                self.visit_i64(v as i64)
            }
        }
        d.deserialize_any(V)
    }
}

/// A file owner: a user and an optional group, by name or number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// User name or numeric uid.
    pub user: String,
    /// Group name or numeric gid; the user's primary group when absent.
    pub group: Option<String>,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{}:{g}", self.user),
            None => f.write_str(&self.user),
        }
    }
}

impl Serialize for Owner {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Owner {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Owner, D::Error> {
        let s = String::deserialize(d)?;
        let (user, group) = match s.split_once(':') {
            Some((u, g)) => (u.to_string(), Some(g.to_string())),
            None => (s.clone(), None),
        };
        let part_ok = |p: &str| {
            (!p.is_empty() && p.chars().all(|c| c.is_ascii_digit())) || super::valid_account_name(p)
        };
        if !part_ok(&user) || group.as_deref().is_some_and(|g| !part_ok(g)) {
            return Err(de::Error::custom(format!(
                "bad owner `{s}`: write `user`, `user:group` or numeric ids such as `0:0`"
            )));
        }
        Ok(Owner { user, group })
    }
}

impl Files {
    pub(crate) fn parse(node: &Node, cx: &mut Cx<'_>) -> Option<Files> {
        let parsed: Vec<Option<FileEntry>> = super::parse_items(node, cx, "files")?;
        let mut ok = parsed.iter().all(Option::is_some);
        if parsed.is_empty() {
            cx.sink.error(node.loc, "`files` lists no file");
            ok = false;
        }
        let mut entries = Vec::new();
        for (i, e) in parsed.into_iter().enumerate() {
            let Some(mut e) = e else { continue };
            let item = node.as_seq().and_then(|s| s.get(i)).unwrap_or(node);
            match (&e.src, &e.content) {
                (Some(_), Some(_)) => {
                    cx.sink
                        .error(item.loc, "give either `src` or `content`, not both");
                    ok = false;
                }
                (None, None) => {
                    cx.sink.error(
                        item.loc,
                        "give `src` (a file beside the recipe) or `content`",
                    );
                    ok = false;
                }
                (Some(src), None) => {
                    let src = src.clone();
                    match recipe_file(cx, &src, item.loc_of("src"), "source") {
                        Some(p) => e.src_path = Some(p),
                        None => ok = false,
                    }
                }
                (None, Some(_)) => {}
            }
            if let Err(msg) = check_image_path(&e.dst) {
                cx.sink.error(item.loc_of("dst"), format!("dst {msg}"));
                ok = false;
            }
            entries.push(e);
        }
        ok.then_some(Files { entries })
    }

    pub(crate) fn inputs(&self) -> Vec<Input> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                Some(Input {
                    label: format!("files[{i}].src {}", e.src.as_deref()?),
                    path: e.src_path.clone()?,
                })
            })
            .collect()
    }

    pub(crate) fn summary(&self) -> String {
        let dsts: Vec<&str> = self.entries.iter().map(|e| e.dst.as_str()).collect();
        format!("files {}", dsts.join(" "))
    }
}
