//! File watching: turns file-system activity under the `-w` paths into debounced
//! batches of changed paths, relative to the app root and in the order they first changed,
//! sent on a channel. It owns the OS watches, the ignore rules and the debounce; it does not
//! restart anything — the supervisor reads the batches, asks [`ProcessFilter`] which
//! process types they concern, and restarts those.
//!
//! Theory of operation: notify's thread reduces each event to an [`Observation`]
//! (`events.rs`) and hands it to a worker thread through a bounded queue. The worker owns
//! the [`Tree`] (`tree.rs`: which directories are watched, which paths count, watching new
//! directories as they appear), collects changes in [`Pending`] (`batch.rs`), and sends the
//! batch once no change has come for the debounce period. Ignore rules are in `rules.rs`,
//! per-process globs in `filter.rs`. Nothing outside `watch/` imports `notify`.

// Nothing in the binary calls into this module until the supervisor is wired to it; the
// test build, which uses every item, still reports dead code here. Remove when wired.

mod batch;
mod events;
mod filter;
mod rules;
mod tree;

#[cfg(test)]
mod fsevents_tests;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use self::batch::{Pending, Root};
use self::events::Observation;
use self::rules::IgnoreRules;
use self::tree::{Scope, Tree};
use crate::error::{Error, InputError};
use crate::sys::{self, FileIdentity};

pub use self::filter::ProcessFilter;

/// The path reported when events were lost and anything under the root may have changed.
/// Every [`ProcessFilter`] matches it.
pub const WHOLE_TREE: &str = ".";

/// Observations notify's thread may queue ahead of the worker before it counts as
/// overflow. A `git checkout` of a few thousand files fits; a flood beyond it is
/// reported as [`WHOLE_TREE`].
const QUEUE_CAPACITY: usize = 4096;

#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The app root: reported paths are relative to it; its `.gitignore` applies.
    pub root: PathBuf,
    /// Directories (or files) to watch, absolute. Empty means the root.
    pub paths: Vec<PathBuf>,
    pub debounce: Duration,
    /// `--watch-ignore` globs, gitignore syntax.
    pub ignore: Vec<String>,
}

/// Keeps the OS watches alive; dropping it stops watching (the worker thread exits and
/// the `changes` sender is dropped shortly after).
pub struct Watcher {
    flags: Arc<Flags>,
    wake: SyncSender<Observed>,
}

#[derive(Default)]
struct Flags {
    /// The queue was full and an observation was dropped.
    overflowed: AtomicBool,
    stopped: AtomicBool,
}

enum Observed {
    Event(Observation),
    /// Only wakes the worker so it sees [`Flags::stopped`].
    Wake,
}

impl Watcher {
    /// Sets up every watch before returning, so any change made afterwards is reported.
    /// That is a blocking walk of the tree (0.3–0.9 s for 100,000 files in 10,000
    /// directories, debug build): call it before the supervisor's loop starts, or through
    /// `spawn_blocking`. It then watches on a thread of its own and needs no runtime.
    /// Errors: a path that does not exist, an invalid `--watch-ignore` glob, the OS watch
    /// limit.
    pub fn start(
        config: WatchConfig,
        changes: mpsc::Sender<Vec<PathBuf>>,
    ) -> Result<Watcher, Error> {
        let root_path = std::path::absolute(&config.root)
            .map_err(|e| Error::io("watching", &config.root, e))?;
        let scope = Scope::resolve(&root_path, &config.paths)?;
        let rules =
            IgnoreRules::new(&root_path, &config.ignore).map_err(InputError::WatchIgnore)?;
        let flags = Arc::new(Flags::default());
        let (queue, inbox) = sync_channel(QUEUE_CAPACITY);
        let handler = {
            let (queue, flags) = (queue.clone(), Arc::clone(&flags));
            move |event| forward(&queue, &flags, event)
        };
        let worker = Worker {
            tree: Tree::start(handler, rules, scope)?,
            root: Root::new(&root_path),
            pending: Pending::new(config.debounce),
            inbox,
            flags: Arc::clone(&flags),
            changes,
            own_output: sys::own_output_files(),
        };
        thread::Builder::new()
            .name("hlocal-watch".into())
            .spawn(move || worker.run())
            .map_err(|e| Error::startup("starting the file watcher", e))?;
        Ok(Watcher { flags, wake: queue })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.flags.stopped.store(true, Ordering::Relaxed);
        // Full: the worker has observations queued, so it wakes anyway and sees the flag.
        // Disconnected: it has stopped already.
        let _ = self.wake.try_send(Observed::Wake);
    }
}

/// notify's event handler: a synchronous callback on notify's thread.
fn forward(queue: &SyncSender<Observed>, flags: &Flags, event: notify::Result<notify::Event>) {
    for observation in events::observations(event) {
        match queue.try_send(Observed::Event(observation)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            // Full: the worker is QUEUE_CAPACITY observations behind. This one is dropped
            // and the worker, seeing the flag, rescans and reports the whole tree instead
            // of missing a change.
            Err(TrySendError::Full(_)) => flags.overflowed.store(true, Ordering::Relaxed),
        }
    }
}

struct Worker {
    tree: Tree,
    root: Root,
    pending: Pending,
    inbox: Receiver<Observed>,
    flags: Arc<Flags>,
    changes: mpsc::Sender<Vec<PathBuf>>,
    /// The files hlocal's stdout and stderr write to (`hlocal start -w > out.txt` in the
    /// app root): hlocal's own output is not a change, or every line would restart all.
    own_output: Vec<FileIdentity>,
}

/// Whether the worker goes on after a step.
enum Next {
    Continue,
    Stop,
}

impl Worker {
    fn run(mut self) {
        while let Next::Continue = self.step() {}
    }

    /// Waits for an observation or for the batch to fall due, whichever comes first.
    fn step(&mut self) -> Next {
        let received = match self.pending.due() {
            Some(due) => self
                .inbox
                .recv_timeout(due.saturating_duration_since(Instant::now())),
            None => self
                .inbox
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        if self.flags.stopped.load(Ordering::Relaxed) {
            return Next::Stop;
        }
        match received {
            Ok(Observed::Event(observation)) => self.observe(observation),
            Ok(Observed::Wake) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Next::Stop,
        }
        if self.flags.overflowed.swap(false, Ordering::Relaxed) {
            self.observe(Observation::Rescan);
        }
        if self.pending.is_due(Instant::now()) {
            return self.deliver();
        }
        Next::Continue
    }

    fn observe(&mut self, observation: Observation) {
        let now = Instant::now();
        for change in self.tree.observe(observation) {
            if !self.is_own_output(&change.path) {
                self.pending.record(change, now);
            }
        }
    }

    /// Compared by device and inode, so any name for the file (a symlink, `..`) matches;
    /// a stat per change only when stdout or stderr is a file at all.
    fn is_own_output(&self, path: &std::path::Path) -> bool {
        !self.own_output.is_empty()
            && sys::identity_of(path).is_some_and(|file| self.own_output.contains(&file))
    }

    /// Sends the settled batch, unless nothing is left of it (only transient files).
    fn deliver(&mut self) -> Next {
        let batch = self.pending.settled(&self.root);
        if batch.is_empty() {
            self.pending.clear();
            return Next::Continue;
        }
        // A sync→async bridge, so try_send.
        match self.changes.try_send(batch) {
            Ok(()) => self.pending.clear(),
            // Full: the supervisor has not taken the previous batch yet. Keep these
            // changes, merge later ones in, and offer them again after another quiet
            // period: one restart for all of them.
            Err(mpsc::error::TrySendError::Full(_)) => self.pending.postpone(Instant::now()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Next::Stop,
        }
        Next::Continue
    }
}
