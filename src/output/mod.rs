//! Everything hlocal prints goes through here: one printer thread is the only writer of
//! stdout (overmind's multi_output), so lines from different processes never mix.
//!
//! Producers (instance readers, the supervisor, the router) send [`Record`]s through a
//! [`LogSender`]; the printer formats them (`format`) and writes each drained batch with
//! a few syscalls. Framing a pipe into whole lines, and cleaning a line of what would
//! move the cursor, live in `lines`.

pub mod format;
pub mod lines;
mod printer;
mod router_log;
pub mod tap;

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

pub use format::OutputStyle;
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
    /// Both through one pipe (the text formats) or a terminal: which one wrote a line is
    /// not known.
    Merged,
}

impl Stream {
    /// `"stdout"` or `"stderr"`; `None` (JSON `null`) when not known.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Stream::Stdout => Some("stdout"),
            Stream::Stderr => Some("stderr"),
            Stream::Merged => None,
        }
    }
}

/// One thing to print.
#[derive(Debug, Clone)]
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
        level: Level,
        about: Option<Arc<str>>,
        text: String,
    },
    /// A change of an instance's state, printed as `text` and as a JSON `state` event.
    State(StateChange),
    /// Requests through the router, one line each, in the order they finished.
    Router(Vec<RouterLog>),
    /// One of the fixed lines editors wait for (`hlocal | ready: URL`, …).
    Marker(Marker),
    /// hlocal is about to exit with `code`: the JSON `exit` event, the last object.
    Exit { code: i32 },
}

/// How much a message of hlocal's own matters: the JSON `message` event's `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    /// Heroku's error codes (R10, R12) and what keeps a process from starting.
    Error,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// The fixed lines that begin and end an editor's background task (docs/editors.md):
/// printed uncolored, as `hlocal | KIND: TEXT`, whatever the log format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// Every instance of the formation is up; `url` is where the app answers (none
    /// without a web process).
    Ready { url: Option<String> },
    /// A restart cycle begins: files changed, or `hlocal restart`.
    Reloading { reason: String },
    /// The app cannot become ready: a failed release phase, a crash or R10 before ready.
    Error { reason: String },
}

impl Marker {
    /// The word after `hlocal | ` and the JSON event's name.
    pub fn kind(&self) -> &'static str {
        match self {
            Marker::Ready { .. } => "ready",
            Marker::Reloading { .. } => "reloading",
            Marker::Error { .. } => "error",
        }
    }

    /// What follows `KIND: ` on the line.
    pub fn text(&self) -> &str {
        match self {
            Marker::Ready { url } => url.as_deref().unwrap_or("(no web process)"),
            Marker::Reloading { reason } | Marker::Error { reason } => reason,
        }
    }
}

/// `{"ts","event":"state","name","from","to","pid","port","code"}`.
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

impl Record {
    /// App output and router lines: the many records, which wait for room in the queue.
    /// hlocal's own records (lifecycle, states, messages) are few and never wait.
    fn waits_for_room(&self) -> bool {
        matches!(self, Record::Output { .. } | Record::Router(_))
    }
}

/// The producers' end of the printer's queue. Cheap to clone.
///
/// One FIFO queue keeps every record in the order it was sent (a process's last lines
/// before its `Process exited`), but only app output and router lines count against its
/// bound: with stdout stalled (`hlocal start | less`, paused) the processes block on their
/// pipes, losslessly, while the supervisor's own records still go through at once, so
/// Ctrl-C, the shutdown and the SIGKILL escalation never wait for the reader of stdout.
#[derive(Debug, Clone)]
pub struct LogSender {
    tx: mpsc::UnboundedSender<Queued>,
    /// One token per queued record that waits for room: a counting semaphore that also
    /// works for synchronous senders.
    room: mpsc::Sender<()>,
}

/// The printer's end of the queue.
#[derive(Debug)]
pub struct Records {
    rx: mpsc::UnboundedReceiver<Queued>,
    room: mpsc::Receiver<()>,
}

#[derive(Debug)]
struct Queued {
    record: Record,
    holds_room: bool,
}

/// App records in flight before their producers wait. Output chunks are at most 64 KiB,
/// so this bounds the queue to a few MiB while letting a fast writer run ahead of the
/// terminal.
const QUEUE_RECORDS: usize = 64;

impl LogSender {
    pub fn channel() -> (LogSender, Records) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (room_tx, room_rx) = mpsc::channel(QUEUE_RECORDS);
        (
            LogSender { tx, room: room_tx },
            Records { rx, room: room_rx },
        )
    }

    /// App output waits while the printer is behind: a process writing faster than stdout
    /// can take is slowed down, as it would be writing to a terminal directly. hlocal's
    /// own records never wait.
    pub async fn send(&self, record: Record) {
        let holds_room = record.waits_for_room();
        // The printer outlives every producer; an error only means we are exiting.
        if holds_room && self.room.send(()).await.is_err() {
            return;
        }
        let _ = self.tx.send(Queued { record, holds_room });
    }

    /// For synchronous callers, outside any runtime thread.
    pub fn send_blocking(&self, record: Record) {
        let holds_room = record.waits_for_room();
        if holds_room && self.room.blocking_send(()).is_err() {
            return;
        }
        let _ = self.tx.send(Queued { record, holds_room });
    }

    /// An informational line of hlocal's own.
    pub async fn message(&self, about: Option<&Arc<str>>, text: impl Into<String>) {
        self.message_at(Level::Info, about, text).await;
    }

    pub async fn message_at(
        &self,
        level: Level,
        about: Option<&Arc<str>>,
        text: impl Into<String>,
    ) {
        self.send(Record::Message {
            level,
            about: about.cloned(),
            text: text.into(),
        })
        .await;
    }

    pub async fn marker(&self, marker: Marker) {
        self.send(Record::Marker(marker)).await;
    }
}

impl Records {
    /// The next record; `None` once every sender is gone and the queue is empty.
    #[cfg(test)]
    pub async fn recv(&mut self) -> Option<Record> {
        let queued = self.rx.recv().await?;
        Some(self.release(queued))
    }

    /// The next record, waiting on the printer's thread; `None` once every sender is
    /// gone and the queue is empty.
    pub fn blocking_recv(&mut self) -> Option<Record> {
        let queued = self.rx.blocking_recv()?;
        Some(self.release(queued))
    }

    /// A record already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Record> {
        let queued = self.rx.try_recv().ok()?;
        Some(self.release(queued))
    }

    /// Frees the record's room: its token was queued before the record, so it is there.
    fn release(&mut self, queued: Queued) -> Record {
        if queued.holds_room {
            let _ = self.room.try_recv();
        }
        queued.record
    }
}
