//! Where an instance is in its lifecycle, with the data each stage has: a run exists
//! only while one can be running, an address only while up, a pending restart only once
//! the run ended. The transitions are `Slot`'s (`slot.rs`); each returns the state
//! change to print.

use std::net::SocketAddr;

use tokio::time::Instant;

use super::instance::Run;
use super::state::State;

#[derive(Debug)]
pub(super) enum Life {
    /// Not started yet: its dependencies are not up. `before` is the state `hlocal start`
    /// took it from (down, crashed, exited), which its next start reports leaving.
    Waiting { before: Option<State> },
    /// Its run is on its way up.
    Starting(Current),
    /// Its run passed the readiness check, or listens on a port of its own.
    Up(Current, Serving),
    /// Its run was told to stop; `then` is what follows once it is gone. `code` is its
    /// exit status, once it exited.
    Stopping {
        current: Current,
        then: Then,
        code: Option<i32>,
    },
    /// Its run ended by itself, or could not start.
    Ended(Ended),
    /// Stopped by hlocal's shutdown.
    Down { pid: Option<u32>, code: Option<i32> },
}

/// The run of a starting, up or stopping instance.
#[derive(Debug)]
pub(super) struct Current {
    pub run: Run,
    pub pid: u32,
    pub started: Instant,
    /// It got far enough to count as having run (see `Supervisor::mark_ran`): an exit
    /// 126/127 after that is a crash like any other, not a command that cannot run.
    pub ran: bool,
    pub boot_timed_out: bool,
}

impl Current {
    pub fn new(run: Run, pid: u32) -> Current {
        Current {
            run,
            pid,
            started: Instant::now(),
            ran: false,
            boot_timed_out: false,
        }
    }
}

/// Where an up instance answers.
#[derive(Debug, Clone, Copy)]
pub(super) enum Serving {
    /// On its `PORT` (or where its readiness check found it): in the router's pool.
    At(SocketAddr),
    /// On this port instead of `PORT`: out of the router's reach.
    Elsewhere(u16),
}

/// What follows a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Then {
    Down,
    /// New code (a file change): start again once down.
    Restart,
}

#[derive(Debug)]
pub(super) struct Ended {
    pub crashed: bool,
    /// `None` when it never ran (a spawn that failed for want of descriptors).
    pub code: Option<i32>,
    pub pid: Option<u32>,
    pub started: Instant,
    pub ran: bool,
    /// The run while its process group is being cleared, until it reports `Finished`.
    pub clearing: Option<Run>,
    pub restart_at: Option<Instant>,
}

impl Life {
    /// Not started yet, as a new instance is.
    pub const NEW: Life = Life::Waiting { before: None };

    /// The state Heroku's words name; `None` before the first start.
    pub fn state(&self) -> Option<State> {
        Some(match self {
            Life::Waiting { .. } => return None,
            Life::Starting(_) => State::Starting,
            Life::Up(..) => State::Up,
            Life::Stopping { .. } => State::Stopping,
            Life::Ended(ended) if ended.crashed => State::Crashed,
            Life::Ended(_) => State::Exited,
            Life::Down { .. } => State::Down,
        })
    }

    /// The run whose reports count: the live one, or the one being cleared.
    pub fn run(&self) -> Option<&Run> {
        match self {
            Life::Starting(current) | Life::Up(current, _) | Life::Stopping { current, .. } => {
                Some(&current.run)
            }
            Life::Ended(ended) => ended.clearing.as_ref(),
            Life::Waiting { .. } | Life::Down { .. } => None,
        }
    }

    pub fn current_mut(&mut self) -> Option<&mut Current> {
        match self {
            Life::Starting(current) | Life::Up(current, _) | Life::Stopping { current, .. } => {
                Some(current)
            }
            Life::Waiting { .. } | Life::Ended(_) | Life::Down { .. } => None,
        }
    }

    /// The pid of the current or last run, for state events.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Life::Ended(Ended { pid, .. }) | Life::Down { pid, .. } => *pid,
            _ => self.running_pid(),
        }
    }

    /// The pid of a process that runs now (starting, up or stopping): what `ps` shows.
    pub fn running_pid(&self) -> Option<u32> {
        match self {
            Life::Starting(current) | Life::Up(current, _) | Life::Stopping { current, .. } => {
                Some(current.pid)
            }
            Life::Ended(_) | Life::Down { .. } | Life::Waiting { .. } => None,
        }
    }

    /// The exit status of the current or last run, once it exited.
    pub fn code(&self) -> Option<i32> {
        match self {
            Life::Stopping { code, .. }
            | Life::Ended(Ended { code, .. })
            | Life::Down { code, .. } => *code,
            Life::Waiting { .. } | Life::Starting(_) | Life::Up(..) => None,
        }
    }

    /// A restart is scheduled or follows the stop under way.
    pub fn is_pending(&self) -> bool {
        match self {
            Life::Ended(ended) => ended.restart_at.is_some(),
            Life::Stopping { then, .. } => *then == Then::Restart,
            _ => false,
        }
    }

    /// When an ended run with nothing left to clear is due to start again.
    pub fn restart_due(&self) -> Option<Instant> {
        match self {
            Life::Ended(Ended {
                clearing: None,
                restart_at,
                ..
            }) => *restart_at,
            _ => None,
        }
    }
}

/// A change of state to print, in Heroku's words (`state::describe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Change {
    pub from: Option<State>,
    pub to: State,
    pub pid: Option<u32>,
    pub code: Option<i32>,
}

/// What the end of a run (`Finished`) leads to.
#[derive(Debug)]
pub(super) enum AfterRun {
    /// A stop is complete: `down`, then what the stop was for.
    Down(Change, Then),
    /// It ended by itself: the restart policy decides.
    Ended,
    Nothing,
}
