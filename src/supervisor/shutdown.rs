//! Stopping: the shutdown sequence (dependents first, each with its stop signal, grace
//! and SIGKILL), the second Ctrl-C that kills at once, and the final sweep for
//! processes that left their process group.

use tokio::time::Instant;

use super::instance::{Control, Report, RunEvent, RunId};
use super::life::Then;
use super::state::State;
use super::{KILL_CONFIRM, Phase, Supervisor};
use crate::sys::Signal;

impl Supervisor {
    pub(super) async fn begin_shutdown(&mut self, code: i32) {
        if self.phase != Phase::Running {
            return;
        }
        self.phase = Phase::Stopping { code };
        for idx in 0..self.slots.len() {
            let s = &mut self.slots[idx];
            let spec = &self.config.types[s.type_index];
            let stop = Control::Stop {
                signal: spec.stop_signal,
                grace: spec.stop_timeout,
            };
            for old in &s.retiring {
                old.run.send(stop);
            }
            if let Some(down) = s.no_more_restarts() {
                self.print(idx, down).await;
            }
        }
        self.stop_in_dependency_order().await;
    }

    /// Dependents first (docker compose's order): a type is stopped once no running
    /// instance depends on it, so a worker finishes its job while redis is still up.
    pub(super) async fn stop_in_dependency_order(&mut self) {
        for idx in 0..self.slots.len() {
            let s = &self.slots[idx];
            let live = matches!(s.state(), Some(State::Starting | State::Up));
            if live && !self.has_running_dependents(s.type_index) {
                self.stop_slot(idx, Then::Down).await;
            }
        }
    }

    fn has_running_dependents(&self, type_index: usize) -> bool {
        self.slots.iter().any(|other| {
            other.run().is_some()
                && self.config.types[other.type_index]
                    .depends_on
                    .contains(&type_index)
        })
    }

    /// Prints `Stopping all processes with SIGTERM`, then sends it: the line comes
    /// before anything the app prints in reply.
    pub(super) async fn stop_slot(&mut self, idx: usize, then: Then) {
        let Some(change) = self.slots[idx].stop(then) else {
            return;
        };
        self.print(idx, change).await;
        let s = &self.slots[idx];
        let spec = &self.config.types[s.type_index];
        if let Some(run) = s.run() {
            run.send(Control::Stop {
                signal: spec.stop_signal,
                grace: spec.stop_timeout,
            });
        }
    }

    /// Whatever left its process group (a daemon that called `setsid`) but still carries
    /// this session's mark goes too, and so does every orphan hlocal inherited as
    /// subreaper (one that also cleared its environment): SIGTERM, the grace period,
    /// SIGKILL.
    pub(super) async fn sweep_session(&self) {
        self.host.sweep(self.config.timeout).await;
    }

    /// A second Ctrl-C: SIGKILL every group now, confirm briefly, exit 130. An instance
    /// not yet told to stop (its dependents were stopping first) is stopping now.
    pub(super) async fn kill_now(&mut self, signal: Signal) {
        let text = format!("Received {signal} again, killing all processes");
        self.log.message(None, text).await;
        for idx in 0..self.slots.len() {
            if let Some(change) = self.slots[idx].stop(Then::Down) {
                self.print_stopping(idx, change, Signal::Kill).await;
            }
            let s = &self.slots[idx];
            for run in s.run().into_iter().chain(s.retiring.iter().map(|r| &r.run)) {
                run.send(Control::Kill);
            }
        }
        self.phase = Phase::Killing {
            until: Instant::now() + KILL_CONFIRM,
        };
    }

    /// While killing, each instance's end is still told (its exit status, `stopping →
    /// down`), and nothing starts again.
    pub(super) async fn on_killed_report(&mut self, report: Report) {
        let id = report.run;
        let stopping = self.slots.get(id.slot).is_some_and(|s| {
            s.run().is_some_and(|r| r.id == id) && s.state() == Some(State::Stopping)
        });
        match report.event {
            RunEvent::Exited { code } if stopping => self.on_exited(id.slot, code).await,
            RunEvent::Finished if stopping => self.after_run(id.slot).await,
            RunEvent::Finished => self.forget_run(id),
            _ => {}
        }
    }

    fn forget_run(&mut self, id: RunId) {
        if let Some(s) = self.slots.get_mut(id.slot) {
            s.forget(id);
        }
    }
}
