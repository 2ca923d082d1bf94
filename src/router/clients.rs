//! How many client connections a worker holds, and which of them are idle: past the
//! cap, a new connection closes the oldest idle one (a keep-alive connection between
//! requests, or one that never sent anything) rather than being shut out, and is itself
//! refused only when every connection is busy. The cap keeps file descriptors in
//! reserve for backend connections and for the app's restarts; the same eviction frees
//! a descriptor when `accept` runs out of them.
//!
//! Connections busy sending a head are not idle: `--header-timeout` bounds those.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Of the open-files limit, the share client connections may use: each busy one needs a
/// backend connection too, and hlocal its pipes and watches.
const CLIENT_SHARE: usize = 2;

/// Client connections a worker may hold, for `workers` of them.
pub(crate) fn cap_per_worker(open_files: Option<usize>, workers: usize) -> usize {
    open_files.map_or(usize::MAX, |limit| {
        (limit / CLIENT_SHARE / workers.max(1)).max(1)
    })
}

#[derive(Default)]
struct State {
    open: usize,
    next_ticket: u64,
    /// Idle connections by age (oldest first), each with the way to close it.
    idle: BTreeMap<u64, oneshot::Sender<()>>,
}

pub(crate) struct Clients {
    cap: usize,
    state: Mutex<State>,
}

/// An admitted connection; dropping it (the connection's task ending) frees its place.
pub(crate) struct Admitted(Arc<Clients>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.state().open -= 1;
    }
}

impl Clients {
    pub(crate) fn new(cap: usize) -> Clients {
        Clients {
            cap,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a new connection, closing the oldest idle one past the cap; `None`
    /// when every connection is busy.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut state = self.state();
        if state.open >= self.cap && !Self::close_oldest(&mut state) {
            return None;
        }
        state.open += 1;
        Some(Admitted(Arc::clone(self)))
    }

    /// Closes the oldest idle connection, if any: `accept` ran out of descriptors.
    pub(crate) fn evict_oldest(&self) -> bool {
        Self::close_oldest(&mut self.state())
    }

    fn close_oldest(state: &mut State) -> bool {
        // A connection that woke up meanwhile has dropped its receiver: try the next.
        while let Some((_, close)) = state.idle.pop_first() {
            if close.send(()).is_ok() {
                return true;
            }
        }
        false
    }

    /// Waits, idle, until the client sends something (`true`), or closes, or the
    /// connection is evicted (`false`).
    pub(crate) async fn idle_until_readable(&self, stream: &TcpStream) -> bool {
        let (close, closed) = oneshot::channel();
        let ticket = {
            let mut state = self.state();
            let ticket = state.next_ticket;
            state.next_ticket += 1;
            state.idle.insert(ticket, close);
            ticket
        };
        let readable = tokio::select! {
            ready = stream.readable() => ready.is_ok(),
            _evicted = closed => false,
        };
        self.state().idle.remove(&ticket);
        readable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_half_the_descriptors_shared_by_the_workers() {
        assert_eq!(cap_per_worker(Some(1024), 2), 256);
        assert_eq!(cap_per_worker(Some(1), 4), 1);
        assert_eq!(cap_per_worker(None, 2), usize::MAX);
    }

    #[test]
    fn past_the_cap_the_oldest_idle_connection_closes_then_new_ones_are_refused() {
        let clients = Arc::new(Clients::new(2));
        let older_place = clients.admit().expect("UNWRAP: under the cap");
        let newer_place = clients.admit().expect("UNWRAP: under the cap");
        let (older, mut older_closed) = oneshot::channel();
        let (newer, mut newer_closed) = oneshot::channel();
        clients.state().idle.insert(0, older);
        clients.state().idle.insert(1, newer);
        let _third = clients.admit().expect("UNWRAP: an idle one made room");
        assert_eq!(older_closed.try_recv(), Ok(()));
        assert!(newer_closed.try_recv().is_err());
        // The evicted connection's task ends; the newer one is busy again.
        drop(older_place);
        clients.state().idle.clear();
        assert!(clients.admit().is_none(), "all busy: refused");
        drop(newer_place);
        assert!(clients.admit().is_some());
    }
}
