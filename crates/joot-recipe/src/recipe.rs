//! The recipe document: header (`version`, `name`, `from`, `module_path`) and the step list,
//! parsed and checked as a whole. Every problem is collected with its line and column before
//! anything runs; a recipe that comes back from [`parse`] is ready to build.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::diag::{Diagnostics, Sink};
use crate::module::{BUILTIN, Custom, Cx, Input, Module, suggest};
use crate::node::{Loc, Node, Value};

/// The recipe format version this crate reads.
pub const RECIPE_VERSION: u32 = 1;

const HEADER_KEYS: &[&str] = &[
    "version",
    "name",
    "description",
    "from",
    "module_path",
    "steps",
];

/// A checked recipe.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recipe {
    /// Format version (1).
    pub version: u32,
    /// Image name to publish (`--name` overrides).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What the build starts from.
    pub from: Base,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The recipe file.
    #[serde(skip)]
    pub path: PathBuf,
    /// Its directory: relative paths in the recipe are relative to it.
    #[serde(skip)]
    pub dir: PathBuf,
}

/// The base of a build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    /// An image already in the store.
    Image(String),
    /// A distribution spec (`debian:bookworm`), bootstrapped when missing.
    Distro(String),
    /// A rootfs tarball on the host (resolved against the recipe's directory).
    Tarball(PathBuf),
    /// A registry reference (`localhost:5000/team/app:1.0`), pulled when missing.
    Reference(String),
}

impl Base {
    /// What `from:` said (the tarball as resolved).
    pub fn label(&self) -> String {
        match self {
            Base::Image(s) | Base::Distro(s) | Base::Reference(s) => s.clone(),
            Base::Tarball(p) => p.display().to_string(),
        }
    }
}

/// A first path component with a dot or a port, or `localhost`: a registry reference.
fn looks_like_reference(s: &str) -> bool {
    match s.split_once('/') {
        Some((host, rest)) => {
            !rest.is_empty() && (host.contains('.') || host.contains(':') || host == "localhost")
        }
        None => false,
    }
}

/// One step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// 1-based position in the recipe.
    pub index: usize,
    /// Where the step starts in the recipe.
    #[serde(skip)]
    pub loc: Loc,
    /// What it does.
    pub module: Module,
}

impl Step {
    /// The host files the step reads (their content goes into the cache key).
    pub fn inputs(&self) -> Vec<Input> {
        self.module.inputs()
    }
}

/// What parsing needs besides the text.
#[derive(Clone, Debug, Default)]
pub struct ParseOptions {
    /// Directories searched for custom modules after `modules/` beside the recipe.
    pub module_dirs: Vec<PathBuf>,
}

/// Parses and checks recipe `text` read from `path`.
pub fn parse(text: &str, path: &Path, opts: &ParseOptions) -> Result<Recipe, Diagnostics> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut sink = Sink::default();
    let recipe = match Node::parse(text) {
        Ok(root) => check(&root, path, &dir, opts, &mut sink),
        Err(e) => {
            sink.de(Loc::new(1, 1), e);
            None
        }
    };
    match recipe {
        Some(r) if sink.is_empty() => Ok(r),
        _ => {
            let mut items = sink.items;
            items.sort_by_key(|d| (d.loc.line, d.loc.column));
            Err(Diagnostics {
                file: path.to_path_buf(),
                items,
            })
        }
    }
}

fn check(
    root: &Node,
    path: &Path,
    dir: &Path,
    opts: &ParseOptions,
    sink: &mut Sink,
) -> Option<Recipe> {
    let Some(map) = root.as_map() else {
        sink.error(
            root.loc,
            format!(
                "a recipe is a mapping with `version`, `from` and `steps`, found {}",
                root.value.kind()
            ),
        );
        return None;
    };
    for (k, _) in map {
        let key = k.key_text();
        if !HEADER_KEYS.contains(&key.as_str()) {
            let hint = if BUILTIN.iter().any(|(b, _)| *b == key) || key == "module" {
                format!("; `{key}` is a module: put it in a step under `steps:`")
            } else {
                String::new()
            };
            sink.error(
                k.loc,
                format!(
                    "unknown field `{key}`, expected one of {}{hint}",
                    HEADER_KEYS.join(", ")
                ),
            );
        }
    }

    let version = match root.get("version") {
        None => {
            sink.error(
                root.loc,
                format!("missing field `version` (write `version: {RECIPE_VERSION}`)"),
            );
            None
        }
        Some(n) => match n.deserialize::<u32>() {
            Ok(RECIPE_VERSION) => Some(RECIPE_VERSION),
            Ok(v) => {
                sink.error(
                    n.loc,
                    format!("recipe version {v} is not supported: this joot reads version {RECIPE_VERSION}"),
                );
                None
            }
            Err(e) => {
                sink.de(n.loc, e);
                None
            }
        },
    };

    let name = root.get("name").and_then(|n| {
        let s: String = sink.parse(n)?;
        if !valid_name(&s) {
            sink.error(
                n.loc,
                format!("`{s}` is not a valid image name ([A-Za-z0-9][A-Za-z0-9_.-]{{0,63}})"),
            );
            return None;
        }
        Some(s)
    });
    let description = root
        .get("description")
        .and_then(|n| sink.parse::<String>(n));

    let from = match root.get("from") {
        None => {
            sink.error(
                root.loc,
                "missing field `from` (an image name, a distro like `debian:bookworm`, or a rootfs tarball path)",
            );
            None
        }
        Some(n) => sink
            .parse::<String>(n)
            .and_then(|s| parse_base(&s, n.loc, dir, sink)),
    };

    let mut module_dirs: Vec<PathBuf> = Vec::new();
    if let Some(n) = root.get("module_path")
        && let Some(list) = sink.parse::<Vec<String>>(n)
    {
        for (i, d) in list.iter().enumerate() {
            let p = dir.join(d);
            if p.is_dir() {
                module_dirs.push(p);
            } else {
                sink.error(
                    n.loc_of_item(i),
                    format!(
                        "module directory `{d}` not found (looked for {})",
                        p.display()
                    ),
                );
            }
        }
    }
    module_dirs.extend(opts.module_dirs.iter().cloned());

    let steps = match root.get("steps") {
        None => {
            sink.error(
                root.loc,
                "missing field `steps` (a list; `steps: []` for none)",
            );
            None
        }
        Some(n) => match n.as_seq() {
            Some(items) => {
                let mut cx = Cx {
                    dir,
                    module_dirs: &module_dirs,
                    sink,
                };
                let mut steps = Vec::new();
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match parse_step(i + 1, item, &mut cx) {
                        Some(s) => steps.push(s),
                        None => ok = false,
                    }
                }
                ok.then_some(steps)
            }
            None if n.value == Value::Null => Some(Vec::new()),
            None => {
                sink.error(
                    n.loc,
                    format!("`steps` must be a list, found {}", n.value.kind()),
                );
                None
            }
        },
    };

    Some(Recipe {
        version: version?,
        name,
        description,
        from: from?,
        steps: steps?,
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
    })
}

fn parse_step(index: usize, node: &Node, cx: &mut Cx<'_>) -> Option<Step> {
    let Some(map) = node.as_map() else {
        cx.sink.error(
            node.loc,
            format!(
                "step {index}: a step is a mapping like `- run: ...`, found {}",
                node.value.kind()
            ),
        );
        return None;
    };
    let keys: Vec<String> = map.iter().map(|(k, _)| k.key_text()).collect();
    if keys.iter().any(|k| k == "module") {
        let mut ok = true;
        for (k, _) in map {
            let key = k.key_text();
            if key != "module" && key != "with" {
                cx.sink.error(
                    k.loc,
                    format!("step {index}: unknown field `{key}` in a custom module step, expected `module` and `with`"),
                );
                ok = false;
            }
        }
        let name_node = node.get("module").expect("checked above");
        let custom = Custom::parse(name_node, node.get("with"), cx);
        return Some(Step {
            index,
            loc: node.loc,
            module: Module::Custom(custom.filter(|_| ok)?),
        });
    }
    if map.len() != 1 {
        let loc = map.get(1).map_or(node.loc, |(k, _)| k.loc);
        let msg = if map.is_empty() {
            format!("step {index} is empty: give one module such as `run:`")
        } else {
            format!(
                "step {index} has {} modules ({}): a step has exactly one, split it",
                keys.len(),
                keys.join(", ")
            )
        };
        cx.sink.error(loc, msg);
        return None;
    }
    let (k, v) = &map[0];
    let kind = k.key_text();
    if kind == "with" {
        cx.sink.error(
            k.loc,
            format!("step {index}: `with` needs `module: NAME` in the same step"),
        );
        return None;
    }
    if !BUILTIN.iter().any(|(b, _)| *b == kind) {
        let hint = match suggest(&kind) {
            Some(s) => format!(" (did you mean `{s}`?)"),
            None => String::new(),
        };
        let names: Vec<&str> = BUILTIN.iter().map(|(b, _)| *b).collect();
        cx.sink.error(
            k.loc,
            format!(
                "step {index}: unknown module `{kind}`{hint}; built-in modules are {}, and a custom module is written `module: NAME`",
                names.join(", ")
            ),
        );
        return None;
    }
    let module = Module::parse(&kind, v, cx)?;
    Some(Step {
        index,
        loc: node.loc,
        module,
    })
}

fn parse_base(s: &str, loc: Loc, dir: &Path, sink: &mut Sink) -> Option<Base> {
    let looks_like_path = (s.starts_with('/') && !looks_like_reference(s))
        || s.starts_with("./")
        || s.starts_with("../")
        || [
            ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tzst",
        ]
        .iter()
        .any(|ext| s.ends_with(ext));
    if looks_like_path {
        let p = dir.join(s);
        if !p.is_file() {
            sink.error(
                loc,
                format!(
                    "rootfs tarball `{s}` not found (looked for {})",
                    p.display()
                ),
            );
            return None;
        }
        return Some(Base::Tarball(p));
    }
    if looks_like_reference(s) {
        return Some(Base::Reference(s.to_string()));
    }
    if let Some((distro, release)) = s.split_once(':') {
        let part = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        };
        if !part(distro) || !part(release) {
            sink.error(
                loc,
                format!(
                    "`{s}` is not a distro spec: write DISTRO:RELEASE such as `debian:bookworm`"
                ),
            );
            return None;
        }
        return Some(Base::Distro(s.to_string()));
    }
    if !valid_name(s) {
        sink.error(
            loc,
            format!(
                "`{s}` is not an image name, a distro spec (`debian:bookworm`) or a tarball path"
            ),
        );
        return None;
    }
    Some(Base::Image(s.to_string()))
}

/// The store's name rule: `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`.
pub fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && s.len() <= 64
        && c.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Recipe {
    /// The recipe as JSON, as given to custom modules (`recipe` in their config file).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
