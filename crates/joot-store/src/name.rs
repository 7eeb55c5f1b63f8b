//! Validated names of images and envs. A name becomes a file name in the store
//! (`images/<name>.json`, `envs/<name>/`), so it is checked once, here, before any side effect.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The name of an image or env: `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Validates `s` as a name; the error names the bad input and says what is wrong.
    pub fn parse(s: &str) -> Result<Name> {
        let bad = |reason| {
            Err(Error::InvalidName {
                name: s.to_string(),
                reason,
            })
        };
        let Some(first) = s.bytes().next() else {
            return bad("the name is empty");
        };
        if s.len() > 64 {
            return bad("longer than 64 characters");
        }
        if !first.is_ascii_alphanumeric() {
            return bad("must start with a letter or digit");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return bad("only letters, digits, '_', '.' and '-' are allowed");
        }
        Ok(Name(s.to_string()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Name {
    type Err = Error;
    fn from_str(s: &str) -> Result<Name> {
        Name::parse(s)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        let s = String::deserialize(d)?;
        Name::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for ok in ["a", "Z9", "bookworm", "web-1.2_x", &"a".repeat(64)] {
            assert_eq!(Name::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_bad_names_naming_them() {
        for bad in [
            "",
            "-x",
            ".hidden",
            "_a",
            "a/b",
            "..",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            let err = Name::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<Name>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<Name>("\"../x\"").is_err());
    }
}
