//! The printer thread: the only writer of stdout.
//!
//! It blocks on the queue for one record, drains whatever else is already queued, and
//! writes the batch with one `write` call: a million lines cost a few hundred syscalls,
//! not a million, and a line is still printed as soon as it is complete. It runs on a
//! thread of its own because a slow terminal must stall only the printer (and, through
//! the bounded queue, the processes writing faster than it), never the supervisor.

use std::io::Write;
use std::thread::JoinHandle;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::sync::{mpsc, oneshot};

use super::Record;
use super::format::{Formatter, OutputStyle};

/// Flush a batch once it grows past this, even if more records are queued.
const BATCH_BYTES: usize = 256 * 1024;

pub struct Printer {
    thread: JoinHandle<()>,
}

impl Printer {
    /// Starts the printer. `stdout_closed` fires once if stdout goes away (`hlocal start |
    /// head`), so the app can shut down instead of running on, unseen.
    pub fn spawn(
        style: OutputStyle,
        width: usize,
        records: mpsc::Receiver<Record>,
        stdout_closed: oneshot::Sender<()>,
    ) -> std::io::Result<Printer> {
        let formatter = Formatter::new(style, width, TimeZone::system());
        let thread = std::thread::Builder::new()
            .name("printer".into())
            .spawn(move || print_all(formatter, records, stdout_closed))?;
        Ok(Printer { thread })
    }

    /// Waits until every queued record is written: all senders must be dropped first.
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

fn print_all(
    mut formatter: Formatter,
    mut records: mpsc::Receiver<Record>,
    stdout_closed: oneshot::Sender<()>,
) {
    let mut stdout = std::io::stdout().lock();
    let mut batch = Vec::with_capacity(BATCH_BYTES);
    let mut closed = Some(stdout_closed);
    while let Some(first) = records.blocking_recv() {
        let now = Timestamp::now();
        formatter.write(&first, now, &mut batch);
        while batch.len() < BATCH_BYTES {
            match records.try_recv() {
                Ok(record) => formatter.write(&record, now, &mut batch),
                Err(_) => break,
            }
        }
        if closed.is_some()
            && stdout
                .write_all(&batch)
                .and_then(|()| stdout.flush())
                .is_err()
        {
            // Keep draining (producers must not block on a full queue), print nothing.
            if let Some(tell) = closed.take() {
                let _ = tell.send(());
            }
        }
        batch.clear();
    }
}
