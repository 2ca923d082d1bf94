//! The pseudo-terminals of the running `tty = true` instances, by instance name: runs
//! add theirs while they run, `hlocal attach` connects to one through the control
//! server, and hlocal's own SIGWINCH resizes them all.
//!
//! At most one client is attached to a terminal at a time: a second `attach` is refused
//! (see docs/control.md). While one is attached the terminal has the client's size, and
//! gets hlocal's back when it detaches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::sys::{self, PtyMaster, WindowSize};

/// How many chunks of output may wait for an attached client before it is cut off (a
/// client that stopped reading must not hold the instance's log back).
const VIEWER_BACKLOG: usize = 1024;

/// Every running instance's terminal; cheap to clone.
#[derive(Clone, Default)]
pub struct Terminals {
    by_name: Arc<Mutex<HashMap<Arc<str>, Arc<Terminal>>>>,
    /// The process types that run on terminals (`tty = true`, `--tty`).
    tty_types: Arc<[String]>,
}

/// One instance's terminal.
#[derive(Debug)]
pub struct Terminal {
    pub master: Arc<PtyMaster>,
    view: Mutex<View>,
}

#[derive(Debug, Default)]
struct View {
    /// Where the output goes besides the log while a client is attached.
    viewer: Option<Viewer>,
    /// The id the next attachment gets.
    next_id: u64,
    /// The unfinished last line (a prompt), shown to a client as it attaches.
    partial: Bytes,
}

#[derive(Debug)]
struct Viewer {
    /// Which attachment this is, so that only its own end detaches it.
    id: u64,
    sender: mpsc::Sender<Bytes>,
}

/// Why an attach was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The instance's type does not run on a terminal.
    NoTerminal,
    NotRunning,
    AlreadyAttached,
}

/// A client's end of an attachment: the terminal's output, until the run ends or the
/// client falls too far behind.
pub struct Attachment {
    pub terminal: Arc<Terminal>,
    pub id: u64,
    pub output: mpsc::Receiver<Bytes>,
}

impl Terminals {
    pub fn new(tty_types: Vec<String>) -> Terminals {
        Terminals {
            by_name: Arc::default(),
            tty_types: tty_types.into(),
        }
    }

    /// Registers a run's terminal under its instance's name (a restart replaces the old).
    pub fn add(&self, name: Arc<str>, master: Arc<PtyMaster>) -> Arc<Terminal> {
        let terminal = Arc::new(Terminal {
            master,
            view: Mutex::default(),
        });
        self.names().insert(name, Arc::clone(&terminal));
        terminal
    }

    /// The run ended: its terminal is removed (if it is still the one registered under
    /// `name`) and an attached client's stream ends.
    pub fn remove(&self, name: &str, terminal: &Arc<Terminal>) {
        let mut names = self.names();
        if names.get(name).is_some_and(|t| Arc::ptr_eq(t, terminal)) {
            names.remove(name);
        }
        terminal.view().viewer = None;
    }

    /// Attaches a client to `name`'s terminal, at the client's `size`.
    pub fn attach(&self, name: &str, size: Option<WindowSize>) -> Result<Attachment, Refusal> {
        let terminal = self.get(name)?;
        let (sender, output) = mpsc::channel(VIEWER_BACKLOG);
        let id = {
            let mut view = terminal.view();
            if view.viewer.is_some() {
                return Err(Refusal::AlreadyAttached);
            }
            if !view.partial.is_empty() {
                let _ = sender.try_send(view.partial.clone());
            }
            view.next_id += 1;
            let id = view.next_id;
            view.viewer = Some(Viewer { id, sender });
            id
        };
        if let Some(size) = size {
            terminal.master.set_size(size);
        }
        Ok(Attachment {
            terminal,
            id,
            output,
        })
    }

    /// Resizes `name`'s terminal (the attached client's window changed).
    pub fn resize(&self, name: &str, size: WindowSize) -> Result<(), Refusal> {
        self.get(name).map(|t| t.master.set_size(size))
    }

    /// hlocal's terminal changed size: every terminal no client is attached to follows.
    pub fn follow_size(&self, size: WindowSize) {
        for terminal in self.names().values() {
            if !terminal.attached() {
                terminal.master.set_size(size);
            }
        }
    }

    fn get(&self, name: &str) -> Result<Arc<Terminal>, Refusal> {
        if let Some(terminal) = self.names().get(name) {
            return Ok(Arc::clone(terminal));
        }
        let type_name = name.rsplit_once('.').map_or(name, |(t, _)| t);
        if self.tty_types.iter().any(|t| t == type_name) {
            Err(Refusal::NotRunning)
        } else {
            Err(Refusal::NoTerminal)
        }
    }

    fn names(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Terminal>>> {
        // A panic while holding the lock leaves the map itself intact.
        self.by_name.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Terminal {
    /// The run read `output`: an attached client gets it too. A client that cannot
    /// keep up is detached.
    pub fn show(&self, output: &[u8]) {
        let mut view = self.view();
        if let Some(viewer) = &view.viewer
            && viewer
                .sender
                .try_send(Bytes::copy_from_slice(output))
                .is_err()
        {
            view.viewer = None;
        }
    }

    /// `partial` is the output's unfinished last line now.
    pub fn keep_partial(&self, partial: &[u8]) {
        let mut view = self.view();
        if partial != view.partial {
            view.partial = Bytes::copy_from_slice(partial);
        }
    }

    /// Attachment `id` ended (the client detached or went away): the terminal gets
    /// hlocal's size back.
    pub fn detach(&self, id: u64) {
        let mut view = self.view();
        if view.viewer.as_ref().is_some_and(|v| v.id == id) {
            view.viewer = None;
        }
        if view.viewer.is_none() {
            self.master.set_size(sys::terminal_size());
        }
    }

    fn attached(&self) -> bool {
        self.view().viewer.is_some()
    }

    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }
}
