//! How many client connections the router holds (all its workers together), and which of
//! them are idle: past the cap, a new connection closes the oldest idle one (a
//! keep-alive connection between requests, or one that never sent anything) rather than
//! being shut out, and is itself refused only when every connection is busy. The cap keeps file descriptors in
//! reserve for backend connections and for the app's restarts; the same eviction frees
//! a descriptor when `accept` runs out of them.
//!
//! Connections busy sending a head are not idle: `--header-timeout` bounds those.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Of the open-files limit, the share client connections may use: each busy one needs a
/// backend connection too, and hlocal its pipes and watches.
const CLIENT_SHARE: usize = 2;

/// Client connections the router may hold.
pub(crate) fn cap(open_files: Option<usize>) -> usize {
    open_files.map_or(usize::MAX, |limit| (limit / CLIENT_SHARE).max(1))
}

/// One worker's idle connections by age (oldest first), each with the way to close it.
#[derive(Default)]
struct Idle {
    next_ticket: u64,
    by_age: BTreeMap<(Instant, u64), oneshot::Sender<()>>,
}

/// The router's client connections: one count and cap for all its workers, and each
/// worker's idle list. A worker locks only its own list on every request, so no lock is
/// shared per request; making room (rare) looks through every list for the oldest.
pub(crate) struct Clients {
    cap: usize,
    open: AtomicUsize,
    workers: Mutex<Vec<Arc<Mutex<Idle>>>>,
}

/// A worker's handle on [`Clients`]: its own idle list, and the shared count.
pub(crate) struct WorkerClients {
    all: Arc<Clients>,
    idle: Arc<Mutex<Idle>>,
}

/// An admitted connection; dropping it (the connection's task ending) frees its place.
pub(crate) struct Admitted(Arc<Clients>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Clients {
    pub(crate) fn new(cap: usize) -> Clients {
        Clients {
            cap,
            open: AtomicUsize::new(0),
            workers: Mutex::default(),
        }
    }

    /// A new worker's handle, with an idle list of its own.
    pub(crate) fn join(self: &Arc<Self>) -> WorkerClients {
        let idle = Arc::new(Mutex::new(Idle::default()));
        locked(&self.workers).push(Arc::clone(&idle));
        WorkerClients {
            all: Arc::clone(self),
            idle,
        }
    }

    /// Closes the oldest idle connection of every worker's, if there is one.
    fn close_oldest(&self) -> bool {
        let workers = locked(&self.workers).clone();
        loop {
            // One list locked at a time: a worker never waits for another's.
            let oldest = workers
                .iter()
                .filter_map(|idle| locked(idle).by_age.keys().next().map(|&key| (key, idle)))
                .min_by_key(|&(key, _)| key);
            let Some((key, idle)) = oldest else {
                return false;
            };
            // Gone meanwhile (it woke up), or its task dropped the receiver: the next.
            let close = locked(idle).by_age.remove(&key);
            if close.is_some_and(|close| close.send(()).is_ok()) {
                return true;
            }
        }
    }
}

impl WorkerClients {
    /// A place for a new connection, closing the oldest idle one past the cap; `None`
    /// when every connection is busy.
    pub(crate) fn admit(&self) -> Option<Admitted> {
        let open = self.all.open.fetch_add(1, Ordering::Relaxed);
        if open >= self.all.cap && !self.all.close_oldest() {
            self.all.open.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Admitted(Arc::clone(&self.all)))
    }

    /// Closes the oldest idle connection, if any: `accept` ran out of descriptors.
    pub(crate) fn evict_oldest(&self) -> bool {
        self.all.close_oldest()
    }

    /// Waits, idle, until the client sends something (`true`), or closes, or the
    /// connection is evicted (`false`).
    pub(crate) async fn idle_until_readable(&self, stream: &TcpStream) -> bool {
        let (close, closed) = oneshot::channel();
        let key = {
            let mut idle = locked(&self.idle);
            let key = (Instant::now(), idle.next_ticket);
            idle.next_ticket += 1;
            idle.by_age.insert(key, close);
            key
        };
        let readable = tokio::select! {
            ready = stream.readable() => ready.is_ok(),
            _evicted = closed => false,
        };
        locked(&self.idle).by_age.remove(&key);
        readable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_half_the_descriptors() {
        assert_eq!(cap(Some(1024)), 512);
        assert_eq!(cap(Some(1)), 1);
        assert_eq!(cap(None), usize::MAX);
    }

    /// Puts an idle connection on `worker`'s list, as its task would.
    fn idle(worker: &WorkerClients) -> oneshot::Receiver<()> {
        let (close, closed) = oneshot::channel();
        let mut idle = locked(&worker.idle);
        let key = (Instant::now(), idle.next_ticket);
        idle.next_ticket += 1;
        idle.by_age.insert(key, close);
        closed
    }

    #[test]
    fn past_the_cap_the_oldest_idle_connection_of_any_worker_closes_then_new_ones_are_refused() {
        let clients = Arc::new(Clients::new(2));
        let (first, second) = (clients.join(), clients.join());
        let older_place = first.admit().expect("UNWRAP: under the cap");
        let newer_place = second.admit().expect("UNWRAP: under the cap");
        let mut older_closed = idle(&first);
        let mut newer_closed = idle(&second);
        let _third = second.admit().expect("UNWRAP: an idle one made room");
        assert_eq!(
            older_closed.try_recv(),
            Ok(()),
            "the first worker's, the oldest"
        );
        assert!(newer_closed.try_recv().is_err());
        // The evicted connection's task ends; the newer one is busy again.
        drop(older_place);
        locked(&second.idle).by_age.clear();
        assert!(first.admit().is_none(), "all busy: refused");
        drop(newer_place);
        assert!(first.admit().is_some());
    }
}
