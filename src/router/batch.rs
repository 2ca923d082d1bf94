//! A worker's router log lines on their way to the printer, a batch at a time.
//!
//! Sent one by one, each request's line would wake the printer thread: at tens of
//! thousands of requests a second that is a context switch per request, the largest
//! single cost the router had over nginx. Here connections append their finished lines
//! to their worker's batch, and one task per worker sends the whole batch once the
//! worker has run every connection that was ready (a tick of its event loop), and at
//! most one batch per [`PAUSE`], so a busy worker sends one record for many requests
//! while a lone request is printed at once. A printer that falls behind still slows
//! clients down: past [`MAX_QUEUED`] lines, connections wait for the batch to be taken.

use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use crate::output::{LogSender, Record, RouterLog};

/// Lines a worker holds while the printer is behind, before connections wait.
const MAX_QUEUED: usize = 4096;
/// After a batch leaves, the next waits this long, so steady traffic (even one request
/// at a time) wakes the printer at most a few hundred times a second per worker; a
/// line after a quiet moment still leaves at once.
const PAUSE: Duration = Duration::from_millis(2);

#[derive(Default)]
pub(crate) struct LogBatch {
    lines: Mutex<Vec<RouterLog>>,
    /// Lines were added: wakes [`LogBatch::send_all`].
    queued: Notify,
    /// The batch was taken: wakes connections waiting for room.
    taken: Notify,
}

impl LogBatch {
    fn lock(&self) -> MutexGuard<'_, Vec<RouterLog>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves `lines` into the batch, waiting while it is full.
    pub(crate) async fn append(&self, lines: &mut Vec<RouterLog>) {
        loop {
            // Registered before the check, so a batch taken in between is not missed.
            let mut taken = pin!(self.taken.notified());
            taken.as_mut().enable();
            {
                let mut batch = self.lock();
                if batch.len() < MAX_QUEUED {
                    batch.append(lines);
                    break;
                }
            }
            taken.await;
        }
        self.queued.notify_one();
    }

    /// Sends batches to the printer until the worker stops.
    pub(crate) async fn send_all(&self, log: &LogSender) {
        loop {
            self.queued.notified().await;
            // Let the rest of this tick's ready connections add their lines first.
            tokio::task::yield_now().await;
            let lines = std::mem::take(&mut *self.lock());
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
    async fn lines_appended_in_one_tick_leave_as_one_record() {
        let batch = std::sync::Arc::new(LogBatch::default());
        let (log, mut records) = LogSender::channel();
        let sender = tokio::spawn({
            let batch = std::sync::Arc::clone(&batch);
            async move { batch.send_all(&log).await }
        });
        for n in 0..3 {
            batch.append(&mut vec![line(n)]).await;
        }
        match records.recv().await {
            Some(Record::Router(lines)) => assert_eq!(lines, [line(0), line(1), line(2)]),
            other => panic!("expected one batch, got {other:?}"),
        }
        batch.append(&mut vec![line(3)]).await;
        match records.recv().await {
            Some(Record::Router(lines)) => assert_eq!(lines, [line(3)]),
            other => panic!("expected the next line, got {other:?}"),
        }
        sender.abort();
    }
}
