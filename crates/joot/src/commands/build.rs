//! `joot build RECIPE`: checks the recipe (every error with its line and column, before
//! anything runs), resolves its base (an image, a distro spec bootstrapped on first use, a
//! registry reference pulled on first use, or a rootfs tarball imported once), then runs the
//! steps through joot-build with the step cache and publishes the image. Progress goes to stderr
//! (`[3/7] packages nginx curl ... 12.4 s`, or JSON lines); the image name goes to stdout.

use std::time::Duration;

use anyhow::{Context, Result};
use joot_build::{BaseImage, BuildOptions, Reporter, StepInfo};
use joot_recipe::Base;

use super::Ctx;
use crate::cli;
use crate::reporters::{Mode, Progress};

pub fn run(ctx: &Ctx, args: &cli::BuildArgs) -> Result<i32> {
    let mut opts = BuildOptions::new(
        &args.recipe,
        args.name.as_deref(),
        ctx.config.build.module_path.clone(),
    )?;
    opts.no_cache = args.no_cache;
    opts.keep_failed = args.keep_failed;
    opts.explain_cache = args.explain_cache;
    let base = resolve_base(ctx, &opts.recipe.from)?;
    let store = ctx.store()?;
    let mut rep = BuildReporter::new(ctx.progress());
    let out = joot_build::build(store, &opts, &base, &mut rep)
        .with_context(|| format!("cannot build image {}", opts.image))?;
    let cached = out.steps.iter().filter(|s| s.cached).count();
    let total = out.steps.len();
    let summary = if total > 0 && cached == total {
        format!(
            "built image {} in {:.2} s: every step was cached ({total} of {total})",
            out.image.name,
            out.elapsed.as_secs_f64()
        )
    } else {
        format!(
            "built image {} in {:.1} s: {} step{} ran, {cached} cached",
            out.image.name,
            out.elapsed.as_secs_f64(),
            total - cached,
            if total - cached == 1 { "" } else { "s" }
        )
    };
    let progress = ctx.progress();
    if progress.mode() == Mode::Json {
        progress.event(
            "build_finished",
            serde_json::json!({
                "image": out.image.name.to_string(),
                "steps": total,
                "cached": cached,
                "duration_s": out.elapsed.as_secs_f64(),
                "layers": out.image.layers.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
                "log": out.log,
            }),
        );
    } else {
        progress.line(&summary);
    }
    println!("{}", out.image.name);
    Ok(0)
}

/// The base image of the recipe's `from:`.
fn resolve_base(ctx: &Ctx, from: &Base) -> Result<BaseImage> {
    let label = from.label();
    let image = match from {
        Base::Image(s) | Base::Distro(s) | Base::Reference(s) => {
            match super::from::resolve(ctx, s)? {
                super::from::Base::Image(i) => *i,
                super::from::Base::Host => anyhow::bail!(
                    "`from: host` cannot be built on: name an image, a distro or a tarball"
                ),
            }
        }
        Base::Tarball(path) => joot_build::import_tarball(ctx.store()?, path)
            .with_context(|| format!("cannot import base {}", path.display()))?,
    };
    Ok(BaseImage { label, image })
}

/// Build progress for the terminal (a spinner per running step), plain lines, or JSON lines.
struct BuildReporter<'a> {
    progress: &'a Progress,
    bar: Option<indicatif::ProgressBar>,
}

impl<'a> BuildReporter<'a> {
    fn new(progress: &'a Progress) -> BuildReporter<'a> {
        BuildReporter {
            progress,
            bar: None,
        }
    }

    fn json(&self) -> bool {
        self.progress.mode() == Mode::Json
    }

    fn fields(step: &StepInfo) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("index".into(), step.index.into());
        m.insert("total".into(), step.total.into());
        m.insert("module".into(), step.module.clone().into());
        m.insert("summary".into(), step.summary.clone().into());
        m
    }

    fn head(step: &StepInfo) -> String {
        format!("[{}/{}] {}", step.index, step.total, step.summary)
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for BuildReporter<'_> {
    fn note(&mut self, message: &str) {
        self.progress.line(message);
    }

    fn step_started(&mut self, step: &StepInfo) {
        if self.json() {
            self.progress
                .event("step_started", Self::fields(step).into());
            return;
        }
        match self.progress.mode() {
            Mode::Bars => self.bar = Some(self.progress.bar(None, false, &Self::head(step))),
            _ => self.progress.line(&format!("{} ...", Self::head(step))),
        }
    }

    fn step_cached(&mut self, step: &StepInfo, layer: &str) {
        if self.json() {
            let mut f = Self::fields(step);
            f.insert("layer".into(), layer.into());
            self.progress.event("step_cached", f.into());
            return;
        }
        self.progress
            .line(&format!("{} ... cached", Self::head(step)));
    }

    fn step_finished(&mut self, step: &StepInfo, elapsed: Duration, layer: &str) {
        self.finish_bar();
        if self.json() {
            let mut f = Self::fields(step);
            f.insert("layer".into(), layer.into());
            f.insert("duration_s".into(), elapsed.as_secs_f64().into());
            self.progress.event("step_finished", f.into());
            return;
        }
        self.progress.line(&format!(
            "{} ... {:.1} s",
            Self::head(step),
            elapsed.as_secs_f64()
        ));
    }

    fn step_failed(&mut self, step: &StepInfo, elapsed: Duration, tail: &str) {
        self.finish_bar();
        if self.json() {
            let mut f = Self::fields(step);
            f.insert("duration_s".into(), elapsed.as_secs_f64().into());
            f.insert("tail".into(), tail.into());
            self.progress.event("step_failed", f.into());
            return;
        }
        self.progress.line(&format!(
            "{} ... failed after {:.1} s",
            Self::head(step),
            elapsed.as_secs_f64()
        ));
    }

    fn output_sink(&mut self, step: &StepInfo) -> Option<joot_build::OutputSink> {
        // On a terminal, the spinner of the running step shows its latest output line.
        let bar = self.bar.clone()?;
        let head = Self::head(step);
        Some(Box::new(move |line: &str| {
            let line: String = line.chars().take(60).collect();
            bar.set_message(format!("{head} | {line}"));
        }))
    }

    fn explain(&mut self, step: &StepInfo, reasons: &[String]) {
        if self.json() {
            let mut f = Self::fields(step);
            f.insert("reasons".into(), reasons.to_vec().into());
            self.progress.event("step_cache_explained", f.into());
            return;
        }
        for r in reasons {
            self.progress
                .line(&format!("[{}/{}] cache: {r}", step.index, step.total));
        }
    }
}
