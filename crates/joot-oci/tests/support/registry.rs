//! A real distribution registry (Debian's `docker-registry`) on a free loopback port, storage
//! in the test's directory, optionally behind htpasswd basic auth. Stopped (killed by its own
//! pid and reaped) when dropped, even if the test fails.

#![allow(dead_code)]

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub dir: PathBuf,
    log: PathBuf,
}

impl Registry {
    /// Starts a registry storing under `dir`; with `user` it requires basic auth.
    pub fn start(dir: &Path, user: Option<(&str, &str)>) -> Registry {
        fs::create_dir_all(dir).unwrap();
        let auth = match user {
            Some((u, p)) => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", u, p])
                    .output()
                    .expect("run htpasswd (apache2-utils)");
                assert!(out.status.success(), "htpasswd failed");
                let file = dir.join("htpasswd");
                fs::write(&file, &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: joot-test\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        for _attempt in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = format!("127.0.0.1:{port}");
            let config = dir.join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: {addr}\n{auth}",
                    dir.join("data").display()
                ),
            )
            .unwrap();
            let log = dir.join("registry.log");
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(fs::File::create(dir.join("registry.out")).unwrap())
                .stderr(fs::File::create(&log).unwrap())
                .spawn()
                .expect("start docker-registry");
            let mut reg = Registry {
                child,
                addr,
                dir: dir.to_path_buf(),
                log,
            };
            let started = Instant::now();
            loop {
                if let Ok(Some(_)) = reg.child.try_wait() {
                    break; // exited (port taken?): try another port
                }
                if TcpStream::connect(&reg.addr).is_ok() {
                    return reg;
                }
                if started.elapsed() > Duration::from_secs(30) {
                    panic!("docker-registry did not start: {}", reg.log());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("docker-registry failed to start 5 times");
    }

    /// The registry's log so far (stderr, then the access log from stdout).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default() + &self.access_log()
    }

    /// The access log (one line per request, on the registry's stdout).
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.join("registry.out")).unwrap_or_default()
    }

    /// How many GET requests the log shows for blob `digest` (`sha256:...`).
    pub fn blob_gets(&self, digest: &str) -> usize {
        self.access_log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains(&format!("/blobs/{digest}")))
            .count()
    }

    /// Where the registry keeps blob `digest`'s bytes.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
