//! Bootstraps a distribution into a store without the CLI, printing progress as plain lines:
//! `cargo run -p joot-bootstrap --example bootstrap -- STORE SPEC [NAME] [--fresh] [--include a,b]`.

use joot_bootstrap::{Defaults, Options, Phase, Reporter, Request, Spec};

struct Lines;

impl Reporter for Lines {
    fn phase(&self, p: Phase) {
        eprintln!("phase: {p}");
    }
    fn package(&self, name: &str, done: u64) {
        eprintln!("package {done}: {name}");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [store, spec, rest @ ..] = args.as_slice() else {
        return Err("usage: bootstrap STORE SPEC [NAME] [--fresh] [--include a,b]".into());
    };
    let mut req = Request::default();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--fresh" => req.fresh = true,
            "--replace" => req.replace = true,
            "--include" => {
                req.include = it
                    .next()
                    .ok_or("--include needs a value")?
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            name => req.name = Some(name.to_string()),
        }
    }
    let store = joot_store::Store::open(store)?;
    let opts = Options::new(Spec::parse(spec)?, &req, &Defaults::default())?;
    let out = joot_bootstrap::bootstrap(&store, &opts, &Lines)?;
    println!(
        "image={} layer={} reused={} tool={} packages={} downloaded_bytes={} index_bytes={} seconds={:.2}",
        out.image.name,
        out.layer,
        out.reused,
        out.tool,
        out.packages,
        out.downloaded_bytes,
        out.index_bytes,
        out.elapsed.as_secs_f64()
    );
    Ok(())
}
