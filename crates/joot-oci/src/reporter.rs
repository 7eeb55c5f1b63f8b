//! Progress reporting. Libraries never print: transfers report through [`Reporter`], which the
//! binary implements with bars or JSON lines. Work running on the async runtime sends
//! [`Event`]s over a channel and one relay thread calls the reporter, so implementations need
//! not be `'static`.

use std::sync::mpsc;

/// What is being done to a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Download,
    Upload,
    Compress,
    Unpack,
}

/// How a blob's work ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The work was done.
    Done,
    /// Nothing to do: the layer is in the store, or the blob already in the registry.
    AlreadyPresent,
    /// Served from the local blob cache (a resumed pull, a repeated push).
    Cached,
}

/// Receives per-blob progress. `id` is a short digest (12 hex characters) or a layer label.
pub trait Reporter: Send + Sync {
    /// Work on `id` starts; `total` bytes when known.
    fn begin(&self, id: &str, action: Action, total: Option<u64>) {
        let _ = (id, action, total);
    }
    /// `bytes` more bytes of `id` were moved.
    fn advance(&self, id: &str, bytes: u64) {
        let _ = (id, bytes);
    }
    /// Work on `id` ended.
    fn end(&self, id: &str, outcome: Outcome) {
        let _ = (id, outcome);
    }
    /// A line worth showing (resolved digest, chosen platform).
    fn note(&self, message: &str) {
        let _ = message;
    }
}

/// A reporter that shows nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Reporter for Silent {}

/// A progress event sent from async tasks.
#[derive(Debug)]
pub(crate) enum Event {
    Begin(String, Action, Option<u64>),
    Advance(String, u64),
    End(String, Outcome),
    Note(String),
}

/// The sending half handed to tasks.
pub(crate) type Relay = mpsc::Sender<Event>;

/// Forwards events to `reporter` until every sender is gone.
pub(crate) fn forward(rx: mpsc::Receiver<Event>, reporter: &dyn Reporter) {
    for ev in rx {
        match ev {
            Event::Begin(id, a, t) => reporter.begin(&id, a, t),
            Event::Advance(id, n) => reporter.advance(&id, n),
            Event::End(id, o) => reporter.end(&id, o),
            Event::Note(m) => reporter.note(&m),
        }
    }
}

/// A short label for a digest string: its first 12 hex characters.
pub fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}
