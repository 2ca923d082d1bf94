//! The printer thread: the only writer of stdout.
//!
//! It blocks on the queue for one record, drains whatever else is already queued, and
//! writes the batch in pipe-sized `write` calls: a million lines cost a few hundred
//! syscalls, not a million, and a line is still printed as soon as it is complete. It runs on a
//! thread of its own because a slow terminal must stall only the printer (and, through
//! the queue's bound on app output, the processes writing faster than it), never the
//! supervisor.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::sync::oneshot;

use super::Records;
use super::format::{Formatter, OutputStyle};
use super::tap::Tap;
use crate::sys;

/// Flush a batch once it grows past this, even if more records are queued.
const BATCH_BYTES: usize = 256 * 1024;
/// What a pipe takes at once on Linux and macOS.
const PIPE_BYTES: usize = 64 * 1024;

/// At exit, how long stdout may take nothing at all before what is left is dropped: a
/// reader that stopped reading (a paused pager) must not keep hlocal alive. The same
/// span bounds the whole exit's wait from stdout's last progress, subscribers included.
const STALL_AT_EXIT: Duration = Duration::from_secs(2);
const PROGRESS_POLL: Duration = Duration::from_millis(100);

pub struct Printer {
    thread: JoinHandle<()>,
    /// Disconnects when the thread ends.
    finished: std::sync::mpsc::Receiver<()>,
    /// Pieces written so far, to tell a slow reader from one that stopped.
    written: Arc<AtomicU64>,
}

impl Printer {
    /// Starts the printer; everything it writes is also handed to `tap`. `stdout_closed` fires once if stdout goes away (`hlocal start |
    /// head`), so the app can shut down instead of running on, unseen.
    pub fn spawn(
        style: OutputStyle,
        width: usize,
        records: Records,
        tap: Tap,
        stdout_closed: oneshot::Sender<()>,
    ) -> std::io::Result<Printer> {
        let formatter = Formatter::new(style, width, TimeZone::system());
        let (alive, finished) = channel();
        let written = Arc::new(AtomicU64::new(0));
        let progress = Arc::clone(&written);
        let thread = std::thread::Builder::new()
            .name("printer".into())
            .spawn(move || print_all(formatter, records, &tap, stdout_closed, &progress, alive))?;
        Ok(Printer {
            thread,
            finished,
            written,
        })
    }

    /// Waits until every queued record is written (all senders must be dropped first),
    /// as long as stdout keeps taking output: once it has taken nothing for
    /// [`STALL_AT_EXIT`], the rest is dropped and hlocal exits without the thread.
    ///
    /// Returns the exit's deadline, [`STALL_AT_EXIT`] after stdout last took something
    /// (or after this wait began): what hlocal waits for next (the subscribers) waits
    /// until then at most, so the stalls of stdout and of a subscriber add up to
    /// [`STALL_AT_EXIT`] in all, not one bound each.
    pub fn join(self) -> Instant {
        let mut seen = self.written.load(Ordering::Relaxed);
        let mut deadline = Instant::now() + STALL_AT_EXIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return deadline;
            }
            let ended = !matches!(
                self.finished.recv_timeout(left.min(PROGRESS_POLL)),
                Err(RecvTimeoutError::Timeout)
            );
            // Looked at before the end too: the last pieces written move the deadline.
            let written = self.written.load(Ordering::Relaxed);
            if written != seen {
                seen = written;
                deadline = Instant::now() + STALL_AT_EXIT;
            }
            if ended {
                let _ = self.thread.join();
                return deadline;
            }
        }
    }
}

fn print_all(
    mut formatter: Formatter,
    mut records: Records,
    tap: &Tap,
    stdout_closed: oneshot::Sender<()>,
    written: &AtomicU64,
    _alive: Sender<()>,
) {
    let mut batch = Vec::with_capacity(BATCH_BYTES);
    let mut closed = Some(stdout_closed);
    while let Some(first) = records.blocking_recv() {
        let now = Timestamp::now();
        formatter.write(&first, now, &mut batch);
        tap.observe(first, now);
        while batch.len() < BATCH_BYTES {
            let Some(record) = records.try_recv() else {
                break;
            };
            formatter.write(&record, now, &mut batch);
            tap.observe(record, now);
        }
        tap.flush();
        if closed.is_some() && write_counted(&batch, written).is_err() {
            // Keep draining (producers must not block on a full queue), print nothing.
            if let Some(tell) = closed.take() {
                let _ = tell.send(());
            }
        }
        batch.clear();
    }
}

/// Writes a batch in pipe-sized pieces, counting each: a batch taken slowly is progress,
/// a batch not taken at all is a stall.
fn write_counted(batch: &[u8], written: &AtomicU64) -> std::io::Result<()> {
    for piece in batch.chunks(PIPE_BYTES) {
        sys::write_stdout(piece)?;
        written.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
