//! Measures `create_env` from the 1st to the Nth env and the disk cost of an empty env.
//!
//! `cargo run --release -p joot-store --example env_create -- [N] [STORE_DIR]`

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use joot_store::{EnvConfig, EnvSource, Image, Name, Origin, Replace, Store};

fn disk_bytes(p: &Path) -> u64 {
    let md = std::fs::symlink_metadata(p).unwrap();
    let mut total = md.blocks() * 512;
    if md.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            total += disk_bytes(&e.unwrap().path());
        }
    }
    total
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(1000);
    let tmp = tempfile::tempdir().unwrap();
    let root = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("store"));
    let store = Store::open(&root).unwrap();
    let b = store.new_layer().unwrap();
    std::fs::write(b.root().join("hello"), "hi").unwrap();
    let id = b
        .publish(Origin::Other {
            description: "bench".into(),
        })
        .unwrap();
    let image = Image::new(Name::parse("bench-base").unwrap(), vec![id]);
    store.put_image(&image, Replace::Yes).unwrap();

    let envs_dir = root.join("envs");
    let before = disk_bytes(&envs_dir);
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let name = Name::parse(&format!("bench{i}")).unwrap();
        let t = Instant::now();
        store
            .create_env(&name, EnvSource::from_image(&image), EnvConfig::default())
            .unwrap();
        times.push(t.elapsed());
    }
    let per_env = (disk_bytes(&envs_dir) - before) / n as u64;
    let k = n.min(50);
    let first = median(&mut times[..k].to_vec());
    let last = median(&mut times[n - k..].to_vec());
    let mut rm = Vec::with_capacity(n);
    for i in 0..n {
        let name = Name::parse(&format!("bench{i}")).unwrap();
        let t = Instant::now();
        store.remove_env(&name, false).unwrap();
        rm.push(t.elapsed());
    }
    println!("envs: {n}");
    println!("create 1st: {:?}", times[0]);
    println!("create median of first {k}: {first:?}");
    println!("create median of last {k}: {last:?}");
    println!("create {n}th: {:?}", times[n - 1]);
    println!("remove median: {:?}", median(&mut rm));
    println!("disk per empty env: {per_env} bytes");
}
