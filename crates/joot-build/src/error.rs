//! The errors of a build. A failed step names its index and module, the exit status and the
//! tail of its output, and the env kept with `--keep-failed`.

use std::path::PathBuf;

/// Errors of joot-build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The recipe is invalid or unreadable.
    #[error(transparent)]
    Recipe(#[from] joot_recipe::RecipeError),
    /// The store refused something.
    #[error(transparent)]
    Store(#[from] joot_store::Error),
    /// No image name in the recipe nor on the command line.
    #[error("{}: the recipe has no `name:`; give the image a name with --name", recipe.display())]
    NoName { recipe: PathBuf },
    /// The base named by `from:` is not usable.
    #[error("base `{base}`: {reason}")]
    Base { base: String, reason: String },
    /// A host file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The sandbox could not run the step at all.
    #[error("step {index} ({module}): cannot run it: {reason}")]
    Sandbox {
        index: usize,
        module: String,
        reason: String,
    },
    /// A step ran and failed.
    #[error("{0}")]
    StepFailed(Box<StepFailure>),
}

/// A step that ran and failed: what to show the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    /// 1-based step index.
    pub index: usize,
    /// Number of steps.
    pub total: usize,
    /// Module name.
    pub module: String,
    /// "exit status 3", "killed by signal 9".
    pub status: String,
    /// The last lines of the step's output.
    pub tail: String,
    /// The env kept with `--keep-failed`.
    pub kept_env: Option<String>,
    /// The build log.
    pub log: PathBuf,
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step {}/{} ({}) failed: {}",
            self.index, self.total, self.module, self.status
        )?;
        if !self.tail.trim().is_empty() {
            write!(
                f,
                "\n--- last lines of its output ---\n{}\n---",
                self.tail.trim_end()
            )?;
        }
        write!(f, "\nfull output: {}", self.log.display())?;
        match &self.kept_env {
            Some(env) => write!(
                f,
                "\nthe env of the failed step is kept: `joot shell {env}` to look inside, `joot rm {env}` when done"
            ),
            None => write!(
                f,
                "\nno image was created or changed; --keep-failed keeps the env for inspection"
            ),
        }
    }
}

/// Attaches a path to an I/O error.
pub(crate) trait IoAt<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, BuildError>;
}

impl<T> IoAt<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, BuildError> {
        self.map_err(|source| BuildError::Io {
            path: path.into(),
            source,
        })
    }
}
