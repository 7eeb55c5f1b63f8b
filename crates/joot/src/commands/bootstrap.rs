//! `joot bootstrap`: arguments and config defaults become a validated
//! `joot_bootstrap::Options` (so a bad spec, name or URL fails before anything happens), then
//! the library runs the installer. The result (image name, or JSON with `--json`) goes to
//! stdout; phases, packages and bytes go to the progress sink on stderr.

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use joot_bootstrap::{Defaults, Options, Outcome, Phase, Reporter, Request, Spec};

use super::Ctx;
use crate::cli;
use crate::reporters::{Mode, Progress};

pub fn run(ctx: &Ctx, args: &cli::BootstrapArgs) -> Result<i32> {
    if args.list {
        print_list(args.json)?;
        return Ok(0);
    }
    let spec_str = args
        .spec
        .as_deref()
        .context("a distribution spec is required (see `joot bootstrap --list`)")?;
    let spec = Spec::parse(spec_str)?;
    let req = Request {
        name: args.name.clone(),
        variant: args.variant.clone(),
        arch: args.arch.clone(),
        include: args.include.clone(),
        mirror: args.mirror.clone(),
        components: args.components.clone(),
        keyring: args.keyring.clone(),
        repos: args.repos.clone(),
        replace: args.replace,
        fresh: args.fresh,
        suite: args.suite.clone(),
    };
    let opts = Options::new(spec, &req, &defaults(ctx))?;
    let store = ctx.store()?;
    let rep = CliReporter::new(ctx.progress());
    let out = joot_bootstrap::bootstrap(store, &opts, &rep);
    rep.finish();
    let out = out.with_context(|| format!("cannot bootstrap {}", opts.spec))?;
    summarize(ctx.progress(), &opts, &out);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome_json(&out))?);
    } else {
        println!("{}", out.image.name);
    }
    Ok(0)
}

/// KEEP THIS SIGNATURE: commands/from.rs (the lead's) calls it for `--from SPEC`.
/// Returns the image for a distro spec (`debian:bookworm`), bootstrapping it first when the
/// store has none: what `--from debian:bookworm` and recipes' `from:` use.
pub fn ensure_image(ctx: &Ctx, spec: &str) -> Result<joot_store::Image> {
    let spec = Spec::parse(spec)?;
    let store = ctx.store()?;
    let defaults = defaults(ctx);
    let name = Options::new(spec.clone(), &Request::default(), &defaults)?.name;
    if let Ok(image) = store.image(&name) {
        return Ok(image);
    }
    ctx.progress().line(&format!(
        "no image {name} yet: bootstrapping {spec} (once; later runs reuse it)"
    ));
    let rep = CliReporter::new(ctx.progress());
    let image = joot_bootstrap::ensure_image(store, &spec, &defaults, &rep);
    rep.finish();
    image.with_context(|| format!("cannot bootstrap {spec}"))
}

/// The config file's `[bootstrap]` section as the library's defaults.
fn defaults(ctx: &Ctx) -> Defaults {
    let b = &ctx.config.bootstrap;
    Defaults {
        mirrors: b.mirrors.clone(),
        variant: b.variant.clone(),
        arch: b.arch.clone(),
        components: b.components.clone(),
        include: b.include.clone(),
        repos: b.repos.clone(),
    }
}

fn print_list(json: bool) -> Result<()> {
    let rows = joot_bootstrap::list();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<14} {:<7} {:<4} {:<30} {:<8} SOURCE",
        "DISTRO", "FAMILY", "PM", "RELEASES (*default)", "VARIANT"
    );
    for r in rows {
        let releases = if r.releases.is_empty() {
            "any (rpm:VER sets $releasever)".to_string()
        } else {
            r.releases
                .iter()
                .map(|x| {
                    if *x == r.default_release {
                        format!("{x}*")
                    } else {
                        x.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let source = if r.sources.is_empty() {
            "--repo URL".to_string()
        } else {
            r.sources.join(" ")
        };
        println!(
            "{:<14} {:<7} {:<4} {:<30} {:<8} {}",
            r.id,
            r.family.as_str(),
            r.package_manager,
            releases,
            r.default_variant,
            source
        );
    }
    Ok(())
}

fn outcome_json(out: &Outcome) -> serde_json::Value {
    serde_json::json!({
        "image": out.image.name.as_str(),
        "layer": out.layer.as_str(),
        "reused": out.reused,
        "tool": out.tool,
        "packages": out.packages,
        "downloaded_bytes": out.downloaded_bytes,
        "index_bytes": out.index_bytes,
        "seconds": out.elapsed.as_secs_f64(),
        "distro": out.image.distro,
    })
}

fn summarize(p: &Progress, opts: &Options, out: &Outcome) {
    let how = if out.reused {
        format!(
            "reused an identical earlier bootstrap (mirror index unchanged, {} checked)",
            human_bytes(out.index_bytes)
        )
    } else {
        format!(
            "{} packages installed with {}, {} of packages downloaded",
            out.packages,
            out.tool,
            human_bytes(out.downloaded_bytes)
        )
    };
    p.line(&format!(
        "bootstrapped image {} from {}: {how}, {:.1} s",
        out.image.name,
        opts.spec,
        out.elapsed.as_secs_f64()
    ));
    p.event("bootstrap_done", outcome_json(out));
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Shows bootstrap progress: a spinner with the phase and the last package on a terminal, one
/// line per phase and per package otherwise, JSON events with `--progress json`.
struct CliReporter<'a> {
    progress: &'a Progress,
    bar: ProgressBar,
    planned: std::cell::Cell<u64>,
}

impl<'a> CliReporter<'a> {
    fn new(progress: &'a Progress) -> CliReporter<'a> {
        let bar = progress.bar(None, false, "bootstrap");
        CliReporter {
            progress,
            bar,
            planned: std::cell::Cell::new(0),
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Reporter for CliReporter<'_> {
    fn phase(&self, phase: Phase) {
        self.bar.set_message(phase.to_string());
        if self.progress.mode() == Mode::Plain {
            self.progress.line(&format!("bootstrap: {phase}"));
        }
        self.progress.event(
            "bootstrap_phase",
            serde_json::json!({ "phase": format!("{phase:?}").to_lowercase(), "message": phase.to_string() }),
        );
    }

    fn planned(&self, total: u64) {
        self.planned.set(total);
        self.progress.event(
            "bootstrap_planned",
            serde_json::json!({ "packages": total }),
        );
    }

    fn package(&self, name: &str, done: u64) {
        let of = match self.planned.get() {
            0 => String::new(),
            n => format!("/{n}"),
        };
        self.bar
            .set_message(format!("{done}{of} packages set up ({name})"));
        if self.progress.mode() == Mode::Plain {
            self.progress
                .line(&format!("bootstrap: set up {name} ({done}{of})"));
        }
        self.progress.event(
            "bootstrap_package",
            serde_json::json!({ "name": name, "done": done }),
        );
    }

    fn bytes(&self, downloaded: u64) {
        self.bar
            .set_message(format!("downloaded {}", human_bytes(downloaded)));
        self.progress.event(
            "bootstrap_bytes",
            serde_json::json!({ "downloaded": downloaded }),
        );
    }

    fn output(&self, line: &str) {
        tracing::debug!(target: "joot::bootstrap", "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(40 * 1024 * 1024), "40.0 MiB");
    }
}
