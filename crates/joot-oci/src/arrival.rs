//! A blob that is unpacked while it is still downloading: the download task appends to the
//! cache's `.partial` file and publishes how many bytes are on disk; [`FollowReader`] reads up
//! to that mark and waits for more. It reports end of file only once the download has verified
//! the whole blob against its digest, and the download's error otherwise, so nothing unpacked
//! from a bad blob can be published.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use crate::error::Error;

#[derive(Default)]
struct State {
    /// The file to read, once the download has created it.
    path: Option<PathBuf>,
    /// Bytes of the blob on disk.
    written: u64,
    /// Set when the download ended: `Ok` once verified, else a description of the failure.
    done: Option<Result<(), String>>,
}

/// Progress of one download, shared with its reader.
#[derive(Default)]
pub(crate) struct Arrival {
    state: Mutex<State>,
    cv: Condvar,
    failure: Mutex<Option<Error>>,
}

impl Arrival {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().expect("arrival lock"));
        self.cv.notify_all();
    }

    /// The download writes `path`, which already holds `written` bytes.
    pub(crate) fn start(&self, path: PathBuf, written: u64) {
        self.update(|s| {
            s.path = Some(path);
            s.written = written;
        });
    }

    /// `written` bytes are now on disk.
    pub(crate) fn progress(&self, written: u64) {
        self.update(|s| s.written = written);
    }

    /// The whole blob is verified and now lives at `path` (renamed from the partial file).
    pub(crate) fn finish(&self, path: PathBuf, size: u64) {
        self.update(|s| {
            s.path = Some(path);
            s.written = size;
            s.done = Some(Ok(()));
        });
    }

    /// The download failed; the reader fails with `e`'s text, and [`Arrival::take_failure`]
    /// gives the error itself.
    pub(crate) fn fail(&self, e: Error) {
        let msg = e.to_string();
        *self.failure.lock().expect("arrival lock") = Some(e);
        self.update(|s| s.done = Some(Err(msg)));
    }

    /// The download's error, if it failed.
    pub(crate) fn take_failure(&self) -> Option<Error> {
        self.failure.lock().expect("arrival lock").take()
    }
}

/// Reads a blob as it arrives.
pub(crate) struct FollowReader {
    arrival: Arc<Arrival>,
    file: Option<File>,
    pos: u64,
}

impl FollowReader {
    pub(crate) fn new(arrival: Arc<Arrival>) -> FollowReader {
        FollowReader {
            arrival,
            file: None,
            pos: 0,
        }
    }
}

impl Read for FollowReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let (path, written) = {
            let mut s = self.arrival.state.lock().expect("arrival lock");
            loop {
                if let Some(Err(msg)) = &s.done {
                    return Err(io::Error::other(msg.clone()));
                }
                if s.path.is_some() && self.pos < s.written {
                    break;
                }
                if s.path.is_some() && matches!(s.done, Some(Ok(()))) {
                    return Ok(0);
                }
                s = self.arrival.cv.wait(s).expect("arrival lock");
            }
            (s.path.clone().expect("checked"), s.written)
        };
        if self.file.is_none() {
            match File::open(&path) {
                Ok(f) => self.file = Some(f),
                // Renamed from `.partial` to its final name meanwhile: look the path up again.
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        && self
                            .arrival
                            .state
                            .lock()
                            .expect("arrival lock")
                            .path
                            .as_ref()
                            != Some(&path) =>
                {
                    return self.read(buf);
                }
                Err(e) => {
                    return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
                }
            }
        }
        let want = buf.len().min((written - self.pos) as usize);
        let n = self
            .file
            .as_ref()
            .expect("opened")
            .read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "blob file shorter than announced",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_a_growing_file_and_ends_only_when_verified() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.partial");
        std::fs::write(&path, b"").unwrap();
        let arrival = Arc::new(Arrival::default());
        let a2 = arrival.clone();
        let p2 = path.clone();
        let writer = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().append(true).open(&p2).unwrap();
            a2.start(p2.clone(), 0);
            for i in 0..50u8 {
                std::io::Write::write_all(&mut f, &[i; 1000]).unwrap();
                a2.progress(u64::from(i + 1) * 1000);
            }
            // Renamed into place before the end is announced: the reader keeps its fd.
            std::fs::rename(&p2, p2.with_extension("done")).unwrap();
            a2.finish(p2.with_extension("done"), 50_000);
        });
        let mut got = Vec::new();
        FollowReader::new(arrival).read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got.len(), 50_000);
        assert!(got[..1000].iter().all(|b| *b == 0) && got[49_000..].iter().all(|b| *b == 49));

        let arrival = Arc::new(Arrival::default());
        arrival.fail(Error::invalid("blob", "digest mismatch"));
        let err = FollowReader::new(arrival.clone())
            .read(&mut [0u8; 10])
            .unwrap_err();
        assert!(err.to_string().contains("digest mismatch"));
        assert!(arrival.take_failure().is_some());
    }
}
