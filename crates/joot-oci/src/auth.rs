//! Registry credentials: `--creds USER:PASSWORD`, else the first of `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `$DOCKER_CONFIG/config.json` and
//! `~/.docker/config.json` that has an entry for the registry (the files podman, skopeo and
//! docker write). An entry's `auth` (base64 `user:password`) gives basic credentials, which the
//! client also trades for a bearer token when the registry asks for one; `registrytoken` is
//! used as a bearer token directly. No entry means anonymous.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { user: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Credentials {
    /// Parses `--creds USER:PASSWORD`.
    pub fn parse(s: &str) -> Result<Credentials> {
        match s.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Credentials::Basic {
                user: user.to_string(),
                password: password.to_string(),
            }),
            _ => Err(Error::invalid("credentials", "expected USER:PASSWORD")),
        }
    }

    pub(crate) fn to_client(&self) -> oci_client::secrets::RegistryAuth {
        use oci_client::secrets::RegistryAuth;
        match self {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { user, password } => {
                RegistryAuth::Basic(user.clone(), password.clone())
            }
            Credentials::Bearer(t) => RegistryAuth::Bearer(t.clone()),
        }
    }
}

#[derive(Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// The credential files consulted, in order.
pub fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        files.push(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        files.push(PathBuf::from(d).join("containers/auth.json"));
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        files.push(PathBuf::from(d).join("config.json"));
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        files.push(PathBuf::from(h).join(".docker/config.json"));
    }
    files
}

/// Finds credentials for `registry` (`host[:port]`) in the usual files.
pub fn lookup(registry: &str) -> Result<Credentials> {
    for file in auth_files() {
        if let Some(c) = lookup_in(&file, registry)? {
            tracing::debug!(file = %file.display(), registry, "credentials found");
            return Ok(c);
        }
    }
    Ok(Credentials::Anonymous)
}

/// Looks `registry` up in one auth file; a missing file is no entry.
pub fn lookup_in(file: &Path, registry: &str) -> Result<Option<Credentials>> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Auth {
                path: file.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    let parsed: AuthFile = serde_json::from_slice(&bytes).map_err(|e| Error::Auth {
        path: file.to_path_buf(),
        reason: format!("does not parse: {e}"),
    })?;
    let keys = keys_for(registry);
    let Some(entry) = parsed
        .auths
        .iter()
        .find(|(k, _)| keys.iter().any(|want| normalize_key(k) == *want))
        .map(|(_, v)| v)
    else {
        return Ok(None);
    };
    if let Some(t) = entry.registrytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::Bearer(t.clone())));
    }
    if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| Error::Auth {
                path: file.to_path_buf(),
                reason: format!("entry for {registry}: auth is not base64: {e}"),
            })?;
        let decoded = String::from_utf8(decoded).map_err(|_| Error::Auth {
            path: file.to_path_buf(),
            reason: format!("entry for {registry}: auth is not UTF-8"),
        })?;
        return Credentials::parse(&decoded)
            .map(Some)
            .map_err(|_| Error::Auth {
                path: file.to_path_buf(),
                reason: format!("entry for {registry}: auth is not USER:PASSWORD"),
            });
    }
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials::Basic {
            user: u.clone(),
            password: p.clone(),
        }));
    }
    Ok(None)
}

/// Keys in auth files may be `host`, `https://host`, `http://host/v1/`...
fn normalize_key(k: &str) -> String {
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    k.split('/').next().unwrap_or(k).to_string()
}

fn keys_for(registry: &str) -> Vec<String> {
    if registry == "docker.io"
        || registry == "index.docker.io"
        || registry == "registry-1.docker.io"
    {
        vec![
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ]
    } else {
        vec![registry.to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_and_podman_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et");
        std::fs::write(
            &f,
            format!(
                r#"{{"auths":{{"https://localhost:5000/v2/":{{"auth":"{auth}"}},
                "tok.example":{{"registrytoken":"abc"}},
                "https://index.docker.io/v1/":{{"username":"bob","password":"pw"}}}}}}"#
            ),
        )
        .unwrap();
        assert_eq!(
            lookup_in(&f, "localhost:5000").unwrap(),
            Some(Credentials::Basic {
                user: "alice".into(),
                password: "s3cr:et".into()
            })
        );
        assert_eq!(
            lookup_in(&f, "tok.example").unwrap(),
            Some(Credentials::Bearer("abc".into()))
        );
        assert!(matches!(
            lookup_in(&f, "docker.io").unwrap(),
            Some(Credentials::Basic { .. })
        ));
        assert_eq!(lookup_in(&f, "other:1").unwrap(), None);
        assert_eq!(lookup_in(&dir.path().join("missing"), "x").unwrap(), None);
        std::fs::write(&f, "{").unwrap();
        assert!(lookup_in(&f, "x").is_err());
    }

    #[test]
    fn creds_flag_parses() {
        assert!(Credentials::parse("u:p").is_ok());
        assert!(Credentials::parse("nocolon").is_err());
        assert!(Credentials::parse(":p").is_err());
        assert!(!format!("{:?}", Credentials::parse("u:secret").unwrap()).contains("secret"));
    }
}
