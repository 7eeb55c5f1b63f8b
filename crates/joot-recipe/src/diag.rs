//! Validation diagnostics: every problem found in a recipe, each with its line and column, so a
//! user fixes them all in one round instead of one per run.

use std::fmt;
use std::path::PathBuf;

use crate::node::{DeError, Loc, Node};

/// One problem in a recipe.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Where in the recipe.
    pub loc: Loc,
    /// What is wrong and, where possible, what to do.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.message)
    }
}

/// Every problem found in one recipe file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostics {
    /// The recipe file.
    pub file: PathBuf,
    /// The problems, in document order.
    pub items: Vec<Diagnostic>,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.items.len();
        write!(
            f,
            "{}: {n} error{} in recipe",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for d in &self.items {
            write!(f, "\n  {}:{d}", self.file.display())?;
        }
        Ok(())
    }
}

/// Collects diagnostics while a recipe is checked.
#[derive(Debug, Default)]
pub struct Sink {
    pub(crate) items: Vec<Diagnostic>,
}

impl Sink {
    /// Records a problem at `loc`.
    pub fn error(&mut self, loc: Loc, message: impl Into<String>) {
        self.items.push(Diagnostic {
            loc,
            message: message.into(),
        });
    }

    /// Records a deserialization error (located at its innermost node, else at `fallback`).
    pub fn de(&mut self, fallback: Loc, e: DeError) {
        let loc = e.loc.unwrap_or(fallback);
        self.error(loc, e.msg);
    }

    /// Deserializes `node` into `T`, recording the error if it fails.
    pub fn parse<T: serde::de::DeserializeOwned>(&mut self, node: &Node) -> Option<T> {
        match node.deserialize() {
            Ok(v) => Some(v),
            Err(e) => {
                self.de(node.loc, e);
                None
            }
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
