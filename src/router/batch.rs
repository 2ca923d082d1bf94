//! A worker's router log lines on their way to the printer, a batch at a time.
//!
//! Sent one by one, each request's line would wake the printer thread: at tens of
//! thousands of requests a second that is a context switch per request, the largest
//! single cost the router had over nginx. Here each request adds its line to its
//! worker's batch as it finishes, and one task per worker sends the whole batch once the
//! worker has run every connection that was ready (a tick of its event loop), and at
//! most one batch per [`PAUSE`], so a busy worker sends one record for many requests
//! while a lone request is printed at once. A printer that falls behind still slows
//! clients down: past [`MAX_QUEUED`] lines, connections serve nothing more until the
//! batch is taken.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use crate::output::{LogSender, Record, RouterLog};

/// Lines a worker holds while the printer is behind, before connections wait.
const MAX_QUEUED: usize = 4096;
/// After a batch leaves, the next waits this long, so steady traffic (even one request
/// at a time) wakes the printer at most 200 times a second per worker; a line after a
/// quiet moment still leaves at once. Each wake-up costs the router's core a context
/// switch or two: at one connection, 2 ms measured 60 µs of CPU per request and 5 ms 54,
/// with the same p99; 20 ms saved more but raised p99 fourfold (the printer then formats
/// a long batch in one go while a request waits for the core).
const PAUSE: Duration = Duration::from_millis(5);

#[derive(Default)]
pub(crate) struct LogBatch {
    lines: Mutex<Vec<RouterLog>>,
    /// At least [`MAX_QUEUED`] lines wait: read by every connection on every poll, so
    /// kept outside the lock.
    full: AtomicBool,
    /// Lines were added: wakes [`LogBatch::send_all`].
    queued: Notify,
    /// The batch was taken: wakes connections waiting for room.
    taken: Notify,
}

impl LogBatch {
    fn lock(&self) -> MutexGuard<'_, Vec<RouterLog>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a finished request's line. Never waits: a request ends inside hyper (or as
    /// hyper drops it); connections check [`LogBatch::is_full`] before serving more.
    pub(crate) fn push(&self, line: RouterLog) {
        let mut lines = self.lock();
        lines.push(line);
        if lines.len() >= MAX_QUEUED {
            self.full.store(true, Ordering::Relaxed);
        }
        drop(lines);
        self.queued.notify_one();
    }

    pub(crate) fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// Waits until the batch is no longer full.
    pub(crate) async fn room(&self) {
        loop {
            // Registered before the check, so a batch taken in between is not missed.
            let mut taken = pin!(self.taken.notified());
            taken.as_mut().enable();
            if !self.is_full() {
                return;
            }
            taken.await;
        }
    }

    /// Sends batches to the printer until the worker stops.
    pub(crate) async fn send_all(&self, log: &LogSender) {
        loop {
            self.queued.notified().await;
            // Let the rest of this tick's ready connections add their lines first.
            tokio::task::yield_now().await;
            let lines = std::mem::take(&mut *self.lock());
            self.full.store(false, Ordering::Relaxed);
            self.taken.notify_waiters();
            if !lines.is_empty() {
                log.send(Record::Router(lines)).await;
                tokio::time::sleep(PAUSE).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::RouterValue;

    fn line(n: u64) -> RouterLog {
        let mut log = RouterLog::default();
        log.push("status", RouterValue::Number(n));
        log
    }

    #[tokio::test]
    async fn lines_added_in_one_tick_leave_as_one_record() {
        let batch = std::sync::Arc::new(LogBatch::default());
        let (log, mut records) = LogSender::channel();
        let sender = tokio::spawn({
            let batch = std::sync::Arc::clone(&batch);
            async move { batch.send_all(&log).await }
        });
        for n in 0..3 {
            batch.push(line(n));
        }
        match records.recv().await {
            Some(Record::Router(lines)) => assert_eq!(lines, [line(0), line(1), line(2)]),
            other => panic!("expected one batch, got {other:?}"),
        }
        batch.push(line(3));
        match records.recv().await {
            Some(Record::Router(lines)) => assert_eq!(lines, [line(3)]),
            other => panic!("expected the next line, got {other:?}"),
        }
        sender.abort();
    }

    #[tokio::test]
    async fn a_full_batch_makes_connections_wait_until_it_is_taken() {
        let batch = std::sync::Arc::new(LogBatch::default());
        for n in 0..MAX_QUEUED as u64 {
            batch.push(line(n));
        }
        assert!(batch.is_full());
        let waiting = tokio::time::timeout(Duration::from_millis(50), batch.room()).await;
        assert!(waiting.is_err(), "room() returned while the batch was full");
        let (log, mut records) = LogSender::channel();
        let sender = tokio::spawn({
            let batch = std::sync::Arc::clone(&batch);
            async move { batch.send_all(&log).await }
        });
        tokio::time::timeout(Duration::from_secs(20), batch.room())
            .await
            .expect("room once the batch was taken");
        assert!(!batch.is_full());
        match records.recv().await {
            Some(Record::Router(lines)) => assert_eq!(lines.len(), MAX_QUEUED),
            other => panic!("expected the full batch, got {other:?}"),
        }
        sender.abort();
    }
}
