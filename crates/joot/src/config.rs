//! The user's configuration file (TOML): `$JOOT_CONFIG`, else `~/.joot`, else `/etc/joot.cfg`,
//! the first that exists wins. It sets the store root and defaults for runs, bootstraps, builds
//! and registries. Unknown keys are errors, so a typo does not silently do nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Store root.
    pub root: Option<PathBuf>,
    #[serde(default)]
    pub run: RunDefaults,
    #[serde(default)]
    pub bootstrap: BootstrapDefaults,
    #[serde(default)]
    pub build: BuildDefaults,
    #[serde(default)]
    pub registry: RegistryDefaults,
}

/// Defaults applied to every new env (command-line options add to or override them).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunDefaults {
    /// "host" or "none".
    pub net: Option<String>,
    /// K=V pairs.
    #[serde(default)]
    pub env: Vec<String>,
    /// SRC:DST[:ro] binds.
    #[serde(default)]
    pub binds: Vec<String>,
}

/// Defaults for `joot bootstrap` and distro specs used by `--from`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapDefaults {
    /// Mirror per distribution id (debian, ubuntu, ...).
    #[serde(default)]
    pub mirrors: BTreeMap<String, String>,
    pub variant: Option<String>,
    pub arch: Option<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
    /// Repositories per RPM distribution id.
    #[serde(default)]
    pub repos: BTreeMap<String, Vec<String>>,
}

/// Defaults for `joot build`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildDefaults {
    /// Extra directories searched for custom modules.
    #[serde(default)]
    pub module_path: Vec<PathBuf>,
}

/// Registry settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryDefaults {
    /// Registries (host:port) reached over plain http.
    #[serde(default)]
    pub insecure: Vec<String>,
}

impl Config {
    /// Loads the first config file found, or the defaults when there is none.
    pub fn load() -> Result<(Config, Option<PathBuf>)> {
        for path in candidates() {
            if path.is_file() {
                let text = fs_err::read_to_string(&path)?;
                let config = parse(&text, &path)?;
                return Ok((config, Some(path)));
            }
        }
        Ok((Config::default(), None))
    }
}

fn candidates() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("JOOT_CONFIG") {
        // An explicit config path is the only one considered.
        return vec![PathBuf::from(p)];
    }
    let mut out = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        out.push(PathBuf::from(home).join(".joot"));
    }
    out.push(PathBuf::from("/etc/joot.cfg"));
    out
}

fn parse(text: &str, path: &Path) -> Result<Config> {
    toml::from_str(text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_sections() {
        let c = parse(
            "root = '/srv/joot'\n[run]\nnet = 'none'\nenv = ['A=1']\n[bootstrap]\nmirrors = { debian = 'http://m/debian' }\n[registry]\ninsecure = ['localhost:5000']\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.root.unwrap(), PathBuf::from("/srv/joot"));
        assert_eq!(c.run.net.as_deref(), Some("none"));
        assert_eq!(c.bootstrap.mirrors["debian"], "http://m/debian");
        assert_eq!(c.registry.insecure, vec!["localhost:5000"]);
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_file() {
        let err = parse("rot = '/x'\n", Path::new("/etc/joot.cfg")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("/etc/joot.cfg"), "{msg}");
        assert!(msg.contains("rot"), "{msg}");
    }
}
