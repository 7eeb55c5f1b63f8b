//! Progress of a build, reported step by step through [`Reporter`]; the binary turns it into
//! terminal lines (`[3/7] packages nginx curl ... 12.4 s`), plain log lines or JSON lines.

use std::time::Duration;

/// The step being reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInfo {
    /// 1-based position.
    pub index: usize,
    /// Number of steps in the recipe.
    pub total: usize,
    /// Module name (`packages`, or the custom module's name).
    pub module: String,
    /// One-line summary (`packages nginx curl`).
    pub summary: String,
}

/// Receives build progress. Every method has an empty default.
pub trait Reporter {
    /// Something outside the steps: resolving the base, publishing the image.
    fn note(&mut self, _message: &str) {}
    /// A step starts running (cache miss).
    fn step_started(&mut self, _step: &StepInfo) {}
    /// A step was taken from the cache.
    fn step_cached(&mut self, _step: &StepInfo, _layer: &str) {}
    /// A step ran and its layer was committed.
    fn step_finished(&mut self, _step: &StepInfo, _elapsed: Duration, _layer: &str) {}
    /// A step failed; `tail` is the end of its output.
    fn step_failed(&mut self, _step: &StepInfo, _elapsed: Duration, _tail: &str) {}
    /// Why a step was or was not taken from the cache (`--explain-cache`).
    fn explain(&mut self, _step: &StepInfo, _reasons: &[String]) {}
    /// A receiver for the step's output lines while it runs (called from another thread), for
    /// example to show the latest line next to a spinner. None (the default) when not wanted.
    fn output_sink(&mut self, _step: &StepInfo) -> Option<OutputSink> {
        None
    }
}

/// Receives output lines of a running step.
pub type OutputSink = Box<dyn FnMut(&str) + Send>;

/// A reporter that drops everything.
pub struct Silent;

impl Reporter for Silent {}
