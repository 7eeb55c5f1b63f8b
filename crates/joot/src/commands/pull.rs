//! `joot pull`, and `ensure_pulled` for `--from REGISTRY/REPO:TAG`. Also the terminal reporter
//! for joot-oci transfers (used by push, pull and OCI import/export).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use joot_oci::{Action, Outcome};
use joot_store::Name;

use super::Ctx;
use crate::cli;
use crate::reporters::{Mode, Progress};

pub fn run(ctx: &Ctx, args: &cli::PullArgs) -> Result<i32> {
    joot_oci::parse_reference(&args.reference)?;
    let mut opts = pull_options(ctx, &args.registry)?;
    opts.name = args.name.as_deref().map(Name::parse).transpose()?;
    opts.platform = args
        .platform
        .as_deref()
        .map(joot_oci::Platform::parse)
        .transpose()?;
    let store = ctx.store()?;
    let reporter = OciReporter::new(ctx.progress());
    let image = joot_oci::pull(store, &args.reference, &opts, &reporter)
        .with_context(|| format!("cannot pull {}", args.reference))?;
    println!("{}", image.name.as_str());
    Ok(0)
}

/// Registry options from the command line and the config file (`[registry] insecure = [...]`).
pub fn registry_options(
    ctx: &Ctx,
    args: &cli::RegistryOptions,
) -> Result<joot_oci::RegistryOptions> {
    Ok(joot_oci::RegistryOptions {
        insecure: args.insecure,
        insecure_registries: ctx.config.registry.insecure.clone(),
        creds: args
            .creds
            .as_deref()
            .map(joot_oci::Credentials::parse)
            .transpose()?,
    })
}

fn pull_options(ctx: &Ctx, args: &cli::RegistryOptions) -> Result<joot_oci::PullOptions> {
    Ok(joot_oci::PullOptions {
        registry: registry_options(ctx, args)?,
        ..Default::default()
    })
}

/// KEEP THIS SIGNATURE: commands/from.rs (the lead's) calls it for `--from REF`.
/// Returns the image for a registry reference, pulling it first when the store has none: what
/// `--from localhost:5000/app:1.0` uses.
pub fn ensure_pulled(ctx: &Ctx, reference: &str) -> Result<joot_store::Image> {
    joot_oci::parse_reference(reference)?;
    let opts = joot_oci::PullOptions {
        registry: joot_oci::RegistryOptions {
            insecure_registries: ctx.config.registry.insecure.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let store = ctx.store()?;
    let reporter = OciReporter::new(ctx.progress());
    joot_oci::ensure_pulled_with(store, reference, &opts, &reporter)
        .with_context(|| format!("cannot pull {reference}"))
}

struct Transfer {
    bar: ProgressBar,
    action: Action,
    bytes: u64,
    started: Instant,
}

/// Shows joot-oci progress: a bar per blob on a terminal, a line per finished blob (with bytes
/// and rate) in plain mode, JSON events with `--progress json`.
pub struct OciReporter<'a> {
    progress: &'a Progress,
    transfers: Mutex<HashMap<String, Transfer>>,
}

impl<'a> OciReporter<'a> {
    pub fn new(progress: &'a Progress) -> OciReporter<'a> {
        OciReporter {
            progress,
            transfers: Mutex::new(HashMap::new()),
        }
    }
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Download => "download",
        Action::Upload => "upload",
        Action::Compress => "compress",
        Action::Unpack => "unpack",
    }
}

fn human(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

impl joot_oci::Reporter for OciReporter<'_> {
    fn begin(&self, id: &str, action: Action, total: Option<u64>) {
        let bar = self
            .progress
            .bar(total, true, &format!("{} {id}", verb(action)));
        self.progress.event(
            "oci_begin",
            serde_json::json!({ "id": id, "action": verb(action), "total": total }),
        );
        let mut t = self.transfers.lock().expect("reporter lock");
        if let Some(old) = t.insert(
            id.to_string(),
            Transfer {
                bar,
                action,
                bytes: 0,
                started: Instant::now(),
            },
        ) {
            old.bar.finish_and_clear();
        }
    }

    fn advance(&self, id: &str, bytes: u64) {
        let mut t = self.transfers.lock().expect("reporter lock");
        if let Some(tr) = t.get_mut(id) {
            tr.bytes += bytes;
            tr.bar.inc(bytes);
        }
    }

    fn end(&self, id: &str, outcome: Outcome) {
        let tr = self.transfers.lock().expect("reporter lock").remove(id);
        let what = match (&tr, outcome) {
            (_, Outcome::AlreadyPresent) => format!("{id}: already present"),
            (_, Outcome::Cached) => format!("{id}: cached"),
            (Some(tr), Outcome::Done) => {
                let secs = tr.started.elapsed().as_secs_f64().max(1e-6);
                format!(
                    "{} {id}: {} in {secs:.2}s ({}/s)",
                    verb(tr.action),
                    human(tr.bytes as f64),
                    human(tr.bytes as f64 / secs)
                )
            }
            (None, Outcome::Done) => format!("{id}: done"),
        };
        if let Some(tr) = &tr {
            tr.bar.finish_and_clear();
        }
        self.progress.event(
            "oci_end",
            serde_json::json!({
                "id": id,
                "outcome": format!("{outcome:?}").to_lowercase(),
                "bytes": tr.as_ref().map(|t| t.bytes),
                "seconds": tr.as_ref().map(|t| t.started.elapsed().as_secs_f64()),
            }),
        );
        if self.progress.mode() != Mode::Json {
            self.progress.line(&what);
        }
    }

    fn note(&self, message: &str) {
        self.progress.line(message);
    }
}
