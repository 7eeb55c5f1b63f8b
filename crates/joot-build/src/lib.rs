//! joot-build: runs a recipe. For each step: cache key -> lookup -> (on a miss) run the step in
//! a fresh env over the layers built so far -> commit the env's upper dir as a new layer. The
//! image is published at the end, in one step; a failing step changes no image.
//!
//! Built-in modules that work inside the image (`packages`, `users`, `files`, `run`,
//! `services`, `puppet`) run as a shell script in the env through the sandbox; `hostname` writes
//! into the step's upper dir directly (the sandbox binds its own /etc/hostname over the file at
//! run time); custom modules and `ansible` work from the host on the root mounted for the step.

mod base;
pub mod cache;
mod engine;
pub mod error;
mod hostroot;
pub mod report;
pub mod script;
pub mod tree;

pub use base::import_tarball;
pub use engine::{
    BaseImage, BuildOptions, BuildOutcome, STEP_ENV_MARK, StepOutcome, build, remove_leftover_envs,
};
pub use error::{BuildError, StepFailure};
pub use report::{OutputSink, Reporter, Silent, StepInfo};
