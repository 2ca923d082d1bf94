//! Everything hlocal prints goes through here: one printer thread is the only writer of
//! stdout (overmind's multi_output), so lines from different processes never mix.
//!
//! Producers (instance readers, the supervisor, the router) send [`Record`]s through a
//! [`LogSender`]; the printer formats them (`format`) and writes each drained batch with
//! one syscall. Framing a pipe into whole lines lives in `lines`.

pub mod format;
pub mod lines;
mod printer;
mod router_log;

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

pub use format::{ColorChoice, LogFormat, OutputStyle};
pub use printer::Printer;
pub use router_log::{RouterLog, RouterValue};

/// Who produced a line. Colors follow the process type's position in the Procfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: Arc<str>,
    pub kind: SourceKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// An instance of the process type at this index in the Procfile.
    App {
        type_index: usize,
    },
    Hlocal,
    Router,
}

impl Source {
    pub fn app(name: &str, type_index: usize) -> Arc<Source> {
        Arc::new(Source {
            name: name.into(),
            kind: SourceKind::App { type_index },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One thing to print.
#[derive(Debug)]
pub enum Record {
    /// Whole lines from a process: each line in `lines` ends with `\n`.
    Output {
        source: Arc<Source>,
        stream: Stream,
        lines: Bytes,
    },
    /// A lifecycle or informational line of hlocal's own, about an instance when `about`
    /// is set: `hlocal | web.1: Error R12 …`, or `heroku[web.1]: Error R12 …`.
    Message {
        about: Option<Arc<str>>,
        text: String,
    },
    /// A change of an instance's state, printed as `text` and as a JSON `state` event.
    State(StateChange),
    /// Requests through the router, one line each, in the order they finished.
    Router(Vec<RouterLog>),
    /// Every instance of the formation is up; `url` is where the app answers (none
    /// without a web process).
    Ready { url: Option<String> },
}

/// SPEC §8: `{"ts","event":"state","name","from","to","pid","port","code"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub name: Arc<str>,
    pub from: Option<&'static str>,
    pub to: &'static str,
    pub pid: Option<u32>,
    pub port: Option<u16>,
    pub code: Option<i32>,
    /// The lifecycle line in Heroku's words (`State changed from starting to up`).
    pub text: String,
}

/// The producers' end of the printer's queue. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LogSender {
    tx: mpsc::Sender<Record>,
}

/// Records in flight before producers wait. Output chunks are at most 64 KiB, so this
/// bounds the queue to a few MiB while letting a fast writer run ahead of the terminal.
const QUEUE_RECORDS: usize = 64;

impl LogSender {
    pub fn channel() -> (LogSender, mpsc::Receiver<Record>) {
        let (tx, rx) = mpsc::channel(QUEUE_RECORDS);
        (LogSender { tx }, rx)
    }

    /// Waits while the printer is behind: a process writing faster than stdout can take
    /// is slowed down, as it would be writing to a terminal directly.
    pub async fn send(&self, record: Record) {
        // The printer outlives every producer; an error only means we are exiting.
        let _ = self.tx.send(record).await;
    }

    /// For synchronous callers, outside any runtime thread.
    pub fn send_blocking(&self, record: Record) {
        let _ = self.tx.blocking_send(record);
    }

    pub async fn message(&self, about: Option<&Arc<str>>, text: impl Into<String>) {
        self.send(Record::Message {
            about: about.cloned(),
            text: text.into(),
        })
        .await;
    }
}
