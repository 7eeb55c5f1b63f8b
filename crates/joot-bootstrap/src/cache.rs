//! The bootstrap caches under `STORE/cache/bootstrap/`:
//!
//! - `<distro>/<release>/debs/`, `.../lists/`: `.deb` files and apt lists (Debian family);
//!   `.../dnf/`: dnf's cachedir with `keepcache` (RPM family). A second bootstrap of the same
//!   suite downloads no package again. `.../lock` is held (flock) for a whole bootstrap so two
//!   runs never write the same cache at once. After a Debian-family bootstrap, cached `.deb`s
//!   of a package the new tree has in another version are removed (see [`prune_debs`]), so
//!   the cache holds what the suite currently needs, not every version it ever had.
//! - `results/<key>.json`: which layer an earlier bootstrap produced. The key hashes every
//!   input that decides the tree: the validated options, the installer and its version, this
//!   crate's result format, and the digest of each suite's signed `InRelease` (or each repository's
//!   `repomd.xml`), fetched fresh before every bootstrap. The index files list the digest of
//!   every package index they cover, so an identical index means the same package set at the
//!   same versions; a mirror update changes the key and the next bootstrap runs (from the
//!   package cache). A record whose layer was garbage-collected is ignored. `--fresh` skips the
//!   lookup.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use joot_store::{LayerId, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::spec::{Installer, Options};
use crate::tool::Tool;

/// Bump when the trees this crate produces change for the same inputs (conventions, hooks).
pub const RESULT_FORMAT: u32 = 1;

/// The per-distribution cache, locked while alive.
pub struct Cache {
    base: PathBuf,
    _lock: File,
}

impl Cache {
    /// Creates and locks `cache/bootstrap/<distro>/<release>/` (waits for another bootstrap
    /// holding it; `on_wait` is called first then). Releases get their own directories so that pruning superseded packages of
    /// one release never touches another's.
    pub fn open(
        store: &Store,
        distro: &str,
        release: &str,
        on_wait: impl FnOnce(),
    ) -> Result<Cache> {
        let release = if release.is_empty() { "any" } else { release };
        let base = store
            .cache_dir()
            .join("bootstrap")
            .join(distro)
            .join(release);
        for sub in ["debs", "lists", "dnf"] {
            fs_err::create_dir_all(base.join(sub))?;
        }
        let lock = fs_err::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(base.join("lock"))?
            .into_parts()
            .0;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                on_wait();
                lock.lock()?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        Ok(Cache { base, _lock: lock })
    }

    pub fn base(&self) -> &Path {
        &self.base
    }
    pub fn debs(&self) -> PathBuf {
        self.base.join("debs")
    }
    pub fn lists(&self) -> PathBuf {
        self.base.join("lists")
    }
    pub fn dnf(&self) -> PathBuf {
        self.base.join("dnf")
    }
}

/// Sizes of the package files under `dir` (recursively), by path.
pub fn package_files(dir: &Path) -> HashMap<PathBuf, u64> {
    let mut out = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let p = e.path();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file()
                && p.extension().is_some_and(|x| x == "deb" || x == "rpm")
                && let Ok(m) = e.metadata()
            {
                out.insert(p, m.len());
            }
        }
    }
    out
}

/// Bytes of package files in `dir` that were not in `before`.
pub fn new_package_bytes(before: &HashMap<PathBuf, u64>, dir: &Path) -> u64 {
    package_files(dir)
        .into_iter()
        .filter(|(p, _)| !before.contains_key(p))
        .map(|(_, n)| n)
        .sum()
}

/// `name_version_arch.deb` split into its parts (the version as apt writes it, `:` as `%3a`).
fn deb_parts(file: &str) -> Option<(&str, &str, &str)> {
    let stem = file.strip_suffix(".deb")?;
    let mut it = stem.splitn(3, '_');
    Some((it.next()?, it.next()?, it.next()?))
}

/// Installed `(package, version, arch)` from a dpkg status file.
fn installed(status: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for para in status.split("\n\n") {
        let field = |name: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
                .map(str::to_string)
        };
        if let (Some(p), Some(v), Some(a), Some(st)) = (
            field("Package"),
            field("Version"),
            field("Architecture"),
            field("Status"),
        ) && st.ends_with(" installed")
        {
            out.push((p, v, a));
        }
    }
    out
}

/// Removes cached `.deb`s of packages that the tree with dpkg `status` has installed in a
/// different version (superseded by a point release or security update). Returns the bytes
/// freed. Packages the tree does not have are kept: another variant may need them.
pub fn prune_debs(debs: &Path, status: &str) -> u64 {
    let now: HashMap<(String, String), String> = installed(status)
        .into_iter()
        .map(|(p, v, a)| ((p, a), v.replace(':', "%3a")))
        .collect();
    let mut freed = 0;
    let Ok(rd) = std::fs::read_dir(debs) else {
        return 0;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((p, v, a)) = deb_parts(&name) else {
            continue;
        };
        let superseded = now
            .get(&(p.to_string(), a.to_string()))
            .is_some_and(|cur| cur != v);
        if superseded {
            let len = e.metadata().map_or(0, |m| m.len());
            if std::fs::remove_file(e.path()).is_ok() {
                tracing::debug!(file = %name, "pruned superseded package from the cache");
                freed += len;
            }
        }
    }
    freed
}

/// The index files whose digests identify the package set: `InRelease` per apt suite,
/// `repodata/repomd.xml` per RPM repository (with dnf variables substituted).
pub fn index_urls(o: &Options) -> Vec<String> {
    match &o.installer {
        Installer::Debian(p) => p
            .sources
            .iter()
            .filter_map(|line| {
                let mut w = line.split_whitespace().skip(1);
                let (url, suite) = (w.next()?, w.next()?);
                Some(format!(
                    "{}/dists/{suite}/InRelease",
                    url.trim_end_matches('/')
                ))
            })
            .collect(),
        Installer::Rpm(p) => p
            .repos
            .iter()
            .map(|r| {
                let base = r
                    .baseurl
                    .replace("$releasever", &p.releasever)
                    .replace("$basearch", o.arch.rpm);
                format!("{}/repodata/repomd.xml", base.trim_end_matches('/'))
            })
            .collect(),
    }
}

/// apt's own downloader (same proxies, same TLS setup as the installers).
pub const APT_HELPER: Tool = Tool {
    name: "/usr/lib/apt/apt-helper",
    package: "apt",
    reason: "to fetch a mirror's index and reuse an identical earlier bootstrap",
};

/// Fetches each index file into `tmp` (local `file://` ones are read in place) and returns
/// their sha256 digests and total size, or None when any cannot be fetched (then nothing is
/// reused and the installer reports the real problem).
pub fn fetch_fingerprint(urls: &[String], tmp: &Path) -> Option<(Vec<String>, u64)> {
    let mut digests = Vec::new();
    let mut bytes = 0;
    for (i, url) in urls.iter().enumerate() {
        let data = if let Some(path) = url.strip_prefix("file://") {
            std::fs::read(path).ok()?
        } else {
            let dest = tmp.join(format!("index-{i}"));
            let mut cmd = APT_HELPER.command().ok()?;
            cmd.arg("download-file")
                .arg(url)
                .arg(&dest)
                .stdin(std::process::Stdio::null());
            if let Err(e) = joot_sandbox::tool::run(cmd) {
                tracing::debug!(%url, error = %e, "index not fetched: nothing reused");
                return None;
            }
            std::fs::read(&dest).ok()?
        };
        bytes += data.len() as u64;
        digests.push(hex::encode(Sha256::digest(&data)));
    }
    Some((digests, bytes))
}

/// The installed version of a Debian package on the host (`dpkg-query`), or `unknown`: part of
/// the result key, so an upgraded installer makes the next bootstrap run afresh.
pub fn host_package_version(package: &str) -> String {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success() && !o.stdout.is_empty())
        .map_or_else(
            || "unknown".to_string(),
            |o| String::from_utf8_lossy(&o.stdout).into_owned(),
        )
}

/// The result key for `o` installed by `tool` (its name and version) from indexes with
/// `digests`.
pub fn result_key(o: &Options, tool: &str, digests: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "joot-bootstrap result {RESULT_FORMAT}\nspec {}\nvariant {}\narch {}\npackages {:?}\ninstaller {:?}\ntool {tool}\nindexes {digests:?}\n",
        o.spec, o.variant, o.arch.deb, o.packages, o.installer
    ));
    hex::encode(h.finalize())
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    format: u32,
    layer: LayerId,
    spec: String,
    created: u64,
}

fn results_dir(store: &Store) -> PathBuf {
    store.cache_dir().join("bootstrap").join("results")
}

/// The layer an earlier bootstrap with `key` produced, if it is still in the store.
pub fn lookup(store: &Store, key: &str) -> Option<LayerId> {
    let path = results_dir(store).join(format!("{key}.json"));
    let data = std::fs::read(&path).ok()?;
    let rec: Record = serde_json::from_slice(&data).ok()?;
    if rec.format != RESULT_FORMAT || !store.has_layer(&rec.layer) {
        let _ = std::fs::remove_file(&path);
        return None;
    }
    Some(rec.layer)
}

/// Remembers that `key` produced `layer`.
pub fn record(store: &Store, key: &str, layer: &LayerId, spec: &str) -> Result<()> {
    let dir = results_dir(store);
    fs_err::create_dir_all(&dir)?;
    let rec = Record {
        format: RESULT_FORMAT,
        layer: layer.clone(),
        spec: spec.to_string(),
        created: joot_store::meta::now(),
    };
    let tmp = dir.join(format!(".{key}.tmp"));
    fs_err::write(
        &tmp,
        serde_json::to_vec_pretty(&rec).expect("record serializes"),
    )?;
    fs_err::rename(&tmp, dir.join(format!("{key}.json")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Defaults, Request, Spec};

    fn opts(spec: &str, req: Request) -> Options {
        Options::new(Spec::parse(spec).unwrap(), &req, &Defaults::default()).unwrap()
    }

    #[test]
    fn index_urls_per_family() {
        let o = opts("debian:bookworm", Request::default());
        assert_eq!(
            index_urls(&o),
            [
                "http://deb.debian.org/debian/dists/bookworm/InRelease",
                "http://deb.debian.org/debian/dists/bookworm-updates/InRelease",
                "http://deb.debian.org/debian-security/dists/bookworm-security/InRelease",
            ]
        );
        let o = opts(
            "rocky:9",
            Request {
                arch: Some("x86_64".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            index_urls(&o)[0],
            "https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os/repodata/repomd.xml"
        );
    }

    #[test]
    fn host_package_versions() {
        assert_ne!(host_package_version("dpkg"), "unknown");
        assert_eq!(host_package_version("joot-no-such-package"), "unknown");
    }

    #[test]
    fn key_changes_with_every_input() {
        let base = opts("debian:bookworm", Request::default());
        let k = result_key(&base, "mmdebstrap", &["aa".into()]);
        assert_eq!(k, result_key(&base, "mmdebstrap", &["aa".into()]));
        assert_ne!(k, result_key(&base, "mmdebstrap", &["ab".into()]));
        assert_ne!(k, result_key(&base, "debootstrap", &["aa".into()]));
        let inc = opts(
            "debian:bookworm",
            Request {
                include: vec!["curl".into()],
                ..Default::default()
            },
        );
        assert_ne!(k, result_key(&inc, "mmdebstrap", &["aa".into()]));
        let named = opts(
            "debian:bookworm",
            Request {
                name: Some("other".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            k,
            result_key(&named, "mmdebstrap", &["aa".into()]),
            "the image name is not an input"
        );
    }

    #[test]
    fn local_fingerprint_and_records() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("repomd.xml");
        std::fs::write(&f, "<repomd/>").unwrap();
        let url = format!("file://{}", f.display());
        let (d1, n) = fetch_fingerprint(std::slice::from_ref(&url), t.path()).unwrap();
        assert_eq!(n, 9);
        std::fs::write(&f, "<repomd>2</repomd>").unwrap();
        let (d2, _) = fetch_fingerprint(&[url], t.path()).unwrap();
        assert_ne!(d1, d2);
        assert!(fetch_fingerprint(&["file:///nonexistent/x".into()], t.path()).is_none());

        let store = Store::open(t.path().join("store")).unwrap();
        let missing = LayerId::random();
        record(&store, "k1", &missing, "debian:bookworm").unwrap();
        assert_eq!(
            lookup(&store, "k1"),
            None,
            "a record of a removed layer is dropped"
        );
        let b = store.new_layer().unwrap();
        let id = b
            .publish(joot_store::Origin::Other {
                description: "t".into(),
            })
            .unwrap();
        record(&store, "k2", &id, "debian:bookworm").unwrap();
        assert_eq!(lookup(&store, "k2"), Some(id));
    }

    #[test]
    fn a_second_bootstrap_of_the_release_waits_for_the_cache() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("store")).unwrap();
        let first = Cache::open(&store, "debian", "bookworm", || panic!("no wait")).unwrap();
        assert!(first.debs().ends_with("debian/bookworm/debs"));
        // Another release is independent.
        let other = Cache::open(&store, "debian", "trixie", || panic!("no wait")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let s2 = store.clone();
        let waiter = std::thread::spawn(move || {
            let _second = Cache::open(&s2, "debian", "bookworm", || tx.send(()).unwrap()).unwrap();
        });
        rx.recv().unwrap();
        drop(first);
        waiter.join().unwrap();
        drop(other);
    }

    #[test]
    fn prunes_superseded_debs_only() {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "libc6_2.36-9+deb12u9_amd64.deb",
            "libc6_2.36-9+deb12u10_amd64.deb",
            "bsdutils_1%3a2.38.1-5_amd64.deb",
            "linux-image-amd64_6.1.1_amd64.deb",
            "libc6_2.36-9+deb12u9_i386.deb",
        ] {
            std::fs::write(t.path().join(f), "x").unwrap();
        }
        let status = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u10\n\n\
Package: bsdutils\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:2.38.1-5\n\n\
Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n";
        assert_eq!(prune_debs(t.path(), status), 1);
        let mut left: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "bsdutils_1%3a2.38.1-5_amd64.deb",
                "libc6_2.36-9+deb12u10_amd64.deb",
                "libc6_2.36-9+deb12u9_i386.deb",
                "linux-image-amd64_6.1.1_amd64.deb",
            ]
        );
    }

    #[test]
    fn counts_new_package_bytes() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("sub")).unwrap();
        std::fs::write(t.path().join("a.deb"), "12345").unwrap();
        let before = package_files(t.path());
        std::fs::write(t.path().join("sub/b.rpm"), "123").unwrap();
        std::fs::write(t.path().join("sub/repomd.xml"), "123456").unwrap();
        assert_eq!(new_package_bytes(&before, t.path()), 3);
    }
}
