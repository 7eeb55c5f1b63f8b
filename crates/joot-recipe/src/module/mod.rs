//! The modules a recipe step can use: a closed enum of built-ins plus the custom-module escape
//! hatch. Each module lives in its own file with its config type (serde, `deny_unknown_fields`),
//! its checks, the files it reads (for the cache key) and a one-line summary for progress.
//! Adding a module is one file, one variant and one line in [`BUILTIN`].

mod ansible;
mod custom;
mod files;
mod hostname;
mod packages;
mod puppet;
mod run;
mod services;
mod users;

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

pub use ansible::Ansible;
pub use custom::Custom;
pub use files::{FileEntry, Files, Mode, Owner};
pub use hostname::Hostname;
pub use packages::Packages;
pub use puppet::Puppet;
pub use run::Run;
pub use services::Services;
pub use users::{User, Users};

use crate::diag::Sink;
use crate::node::Node;

/// The built-in modules, as written in a recipe, with a one-line description.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "packages",
        "install packages with the image's package manager (apt or dnf)",
    ),
    (
        "users",
        "create users: uid, groups, sudo, shell, ssh keys, password hash",
    ),
    (
        "files",
        "copy files from beside the recipe into the image, with mode and owner",
    ),
    ("run", "run a shell script inside the image"),
    (
        "services",
        "enable, disable or mask systemd units (offline)",
    ),
    (
        "hostname",
        "set /etc/hostname and the 127.0.1.1 line of /etc/hosts",
    ),
    (
        "puppet",
        "apply a puppet manifest inside the image (`puppet apply`)",
    ),
    (
        "ansible",
        "run an ansible playbook against the image (chroot connection)",
    ),
];

/// What a step does.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Module {
    /// `packages: [nginx, curl]`
    Packages(Packages),
    /// `users: [{name: alice, ...}]`
    Users(Users),
    /// `files: [{src: a.conf, dst: /etc/a.conf}]`
    Files(Files),
    /// `run: script` or `run: {script: ..., shell: ..., env: ...}`
    Run(Run),
    /// `services: {enable: [...], disable: [...]}`
    Services(Services),
    /// `hostname: web`
    Hostname(Hostname),
    /// `puppet: site.pp` or `puppet: {manifest: ..., modulepath: ...}`
    Puppet(Puppet),
    /// `ansible: site.yml` or `ansible: {playbook: ..., extra_vars: ...}`
    Ansible(Ansible),
    /// `module: NAME` + `with: {...}`
    Custom(Custom),
}

/// A file a step reads from the host; its content is part of the step's cache key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// What it is, for `--explain-cache` ("files[0].src nginx.conf").
    pub label: String,
    /// Where it is on the host.
    pub path: PathBuf,
}

/// What module checks need besides their own node.
pub(crate) struct Cx<'a> {
    /// The directory of the recipe file; relative paths are resolved against it.
    pub dir: &'a Path,
    /// Where custom modules are looked up, in order.
    pub module_dirs: &'a [PathBuf],
    pub sink: &'a mut Sink,
}

impl Module {
    /// The module's name as written in recipes (`packages`, or the custom module's name).
    pub fn kind(&self) -> &str {
        match self {
            Module::Packages(_) => "packages",
            Module::Users(_) => "users",
            Module::Files(_) => "files",
            Module::Run(_) => "run",
            Module::Services(_) => "services",
            Module::Hostname(_) => "hostname",
            Module::Puppet(_) => "puppet",
            Module::Ansible(_) => "ansible",
            Module::Custom(c) => &c.name,
        }
    }

    /// One line for progress output: `packages nginx curl`.
    pub fn summary(&self) -> String {
        let s = match self {
            Module::Packages(m) => m.summary(),
            Module::Users(m) => m.summary(),
            Module::Files(m) => m.summary(),
            Module::Run(m) => m.summary(),
            Module::Services(m) => m.summary(),
            Module::Hostname(m) => m.summary(),
            Module::Puppet(m) => m.summary(),
            Module::Ansible(m) => m.summary(),
            Module::Custom(m) => m.summary(),
        };
        truncate(&s, 72)
    }

    /// The host files this step reads.
    pub fn inputs(&self) -> Vec<Input> {
        match self {
            Module::Files(m) => m.inputs(),
            Module::Puppet(m) => m.inputs(),
            Module::Ansible(m) => m.inputs(),
            Module::Custom(m) => m.inputs(),
            Module::Packages(_)
            | Module::Users(_)
            | Module::Run(_)
            | Module::Services(_)
            | Module::Hostname(_) => Vec::new(),
        }
    }

    /// Parses and checks the step config `node` of module `kind`.
    pub(crate) fn parse(kind: &str, node: &Node, cx: &mut Cx<'_>) -> Option<Module> {
        Some(match kind {
            "packages" => Module::Packages(Packages::parse(node, cx)?),
            "users" => Module::Users(Users::parse(node, cx)?),
            "files" => Module::Files(Files::parse(node, cx)?),
            "run" => Module::Run(Run::parse(node, cx)?),
            "services" => Module::Services(Services::parse(node, cx)?),
            "hostname" => Module::Hostname(Hostname::parse(node, cx)?),
            "puppet" => Module::Puppet(Puppet::parse(node, cx)?),
            "ansible" => Module::Ansible(Ansible::parse(node, cx)?),
            _ => return None,
        })
    }
}

/// Deserializes each item of a list node on its own, so one bad item does not hide the errors
/// of the others: None when the node is not a list, else one entry per item (None for an item
/// that failed, its error recorded).
pub(crate) fn parse_items<T: serde::de::DeserializeOwned>(
    node: &Node,
    cx: &mut Cx<'_>,
    what: &str,
) -> Option<Vec<Option<T>>> {
    let Some(items) = node.as_seq() else {
        cx.sink.error(
            node.loc,
            format!("`{what}` takes a list, found {}", node.value.kind()),
        );
        return None;
    };
    Some(items.iter().map(|item| cx.sink.parse::<T>(item)).collect())
}

/// The built-in module closest to a misspelt name, if any is close.
pub fn suggest(name: &str) -> Option<&'static str> {
    BUILTIN
        .iter()
        .map(|(b, _)| (edit_distance(name, b), *b))
        .filter(|(d, b)| *d <= 2.max(b.len() / 3))
        .min()
        .map(|(_, b)| b)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let n = s.trim().lines().filter(|l| !l.trim().is_empty()).count();
    if line.chars().count() > max {
        let cut: String = line.chars().take(max - 3).collect();
        format!("{cut}...")
    } else if n > 1 {
        format!("{line} (+{} lines)", n - 1)
    } else {
        line.to_string()
    }
}

/// A user or group name as `useradd` accepts it (shadow's default rule, 32 chars).
pub(crate) fn valid_account_name(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    s.len() <= 32
        && (first.is_ascii_lowercase() || first == '_')
        && s.char_indices().skip(1).all(|(i, c)| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == '_'
                || c == '-'
                || (c == '$' && i == s.len() - 1)
        })
}

/// An absolute path inside the image without `..` (and not the root itself).
pub(crate) fn check_image_path(s: &str) -> Result<(), String> {
    let p = Path::new(s);
    if !p.is_absolute() {
        return Err(format!("`{s}` must be an absolute path inside the image"));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(format!("`{s}` must not contain `..`"));
    }
    if p.components().count() < 2 {
        return Err(format!("`{s}` names the root directory itself"));
    }
    Ok(())
}

/// A host path given relative to the recipe (or absolute) that must exist.
pub(crate) fn recipe_file(
    cx: &mut Cx<'_>,
    rel: &str,
    loc: crate::node::Loc,
    what: &str,
) -> Option<PathBuf> {
    if rel.is_empty() {
        cx.sink.error(loc, format!("{what} is empty"));
        return None;
    }
    let p = cx.dir.join(rel);
    if p.symlink_metadata().is_err() && !p.exists() {
        cx.sink.error(
            loc,
            format!(
                "{what} `{rel}` not found (looked for {}; paths are relative to the recipe)",
                p.display()
            ),
        );
        return None;
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("pakages"), Some("packages"));
        assert_eq!(suggest("user"), Some("users"));
        assert_eq!(suggest("zzzzzz"), None);
    }

    #[test]
    fn account_names() {
        assert!(valid_account_name("alice"));
        assert!(valid_account_name("_apt"));
        assert!(valid_account_name("www-data"));
        assert!(valid_account_name("machine$"));
        assert!(!valid_account_name("Alice"));
        assert!(!valid_account_name("1x"));
        assert!(!valid_account_name("a b"));
        assert!(!valid_account_name(""));
        assert!(!valid_account_name(&"a".repeat(33)));
    }

    #[test]
    fn image_paths() {
        assert!(check_image_path("/etc/motd").is_ok());
        assert!(check_image_path("etc/motd").is_err());
        assert!(check_image_path("/etc/../x").is_err());
        assert!(check_image_path("/").is_err());
    }

    #[test]
    fn summaries_are_one_line() {
        assert_eq!(truncate("echo a\necho b\n", 72), "echo a (+1 lines)");
        assert_eq!(truncate(&"x".repeat(100), 10), "xxxxxxx...");
    }
}
