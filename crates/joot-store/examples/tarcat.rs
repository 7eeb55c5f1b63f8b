//! Imports a (possibly compressed) tarball into a directory, or exports a directory stack as a
//! tar on stdout: a manual check against GNU tar.
//!
//! `tarcat import FILE DEST` | `tarcat export DIR...` (bottom to top)

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("import") => {
            let f = std::fs::File::open(&args[1]).unwrap();
            let r = joot_store::compress::open_decompressed(std::io::BufReader::new(f)).unwrap();
            match joot_store::archive::import_tar(r, std::path::Path::new(&args[2])) {
                Ok(stats) => eprintln!("{stats:?}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
        Some("export") => {
            let dirs: Vec<std::path::PathBuf> = args[1..].iter().map(Into::into).collect();
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            joot_store::archive::write_merged_tar(&dirs, out, &Default::default()).unwrap();
        }
        _ => {
            eprintln!("usage: tarcat import FILE DEST | tarcat export DIR...");
            std::process::exit(2);
        }
    }
}
