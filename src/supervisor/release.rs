//! The release phase: the `release` type runs once, to completion, before
//! anything else starts; a failure aborts the start with its exit status.

use std::sync::Arc;

use super::instance::{Control, Run, RunEvent, RunId};
use super::life::Change;
use super::ready::Readiness;
use super::state::State;
use super::{Event, Exit, KILLED_CODE, Phase, STDOUT_CLOSED_CODE, Supervisor, Teller, TypeRun};
use crate::output::{Level, Source};
use crate::sys::Signal;

/// Reports about the release run use a slot number no formation instance has.
const RELEASE_SLOT: usize = usize::MAX;
const RELEASE_NAME: &str = "release.1";

/// The release run and what became of it so far.
#[derive(Debug)]
pub(super) struct ReleaseRun {
    run: Run,
    pid: u32,
    /// As an instance's: `starting`, `up` (it is running), then `exited` or `crashed`,
    /// or `stopping` and `down` when a signal interrupts it; `None` before it is told.
    state: Option<State>,
    command: String,
    stop: Control,
    /// Its exit status, once it exited.
    exit: Option<i32>,
    /// hlocal's exit status, once a signal interrupted the release.
    interrupted: Option<i32>,
}

impl Supervisor {
    /// Starts the release run, or the formation when there is none.
    pub(super) async fn start_release(&mut self) {
        let Some(release) = self.config.release.clone() else {
            return self.start_formation().await;
        };
        let name: Arc<str> = RELEASE_NAME.into();
        let of = TypeRun {
            command: &release.command,
            ready: Readiness::Spawned,
            stop_signal: release.stop_signal,
            grace: release.stop_timeout,
            tty: false,
            force_color: self.config.force_color,
        };
        let spec = self.run_spec(Source::app(RELEASE_NAME, release.index), None, of);
        let id = RunId {
            slot: RELEASE_SLOT,
            generation: 1,
        };
        let process = match self.host.spawn(spec) {
            Ok(process) => process,
            Err(error) => {
                let text = format!("Starting process with command `{}`", release.command);
                self.log.message(Some(&name), text).await;
                let text = format!("Failed to start the release phase: {error}");
                self.log
                    .message_at(Level::Error, Some(&name), text.clone())
                    .await;
                self.answer_waiters_failed(text).await;
                return self.end_release(1);
            }
        };
        let (run, orders) = Run::channel(id);
        self.release = Some(ReleaseRun {
            run,
            pid: process.pid(),
            state: None,
            command: release.command.clone(),
            stop: Control::Stop {
                signal: release.stop_signal,
                grace: release.stop_timeout,
            },
            exit: None,
            interrupted: None,
        });
        // Told before the run's output is read, as an instance's start is.
        let signal = release.stop_signal;
        self.change_release_state(State::Starting, None, signal)
            .await;
        self.change_release_state(State::Up, None, signal).await;
        process.start(id, orders, &self.reports_tx);
    }

    /// The release run's state moves to `to`, told as an instance's change is;
    /// `stop_signal` is what a change to `stopping` names.
    async fn change_release_state(&mut self, to: State, code: Option<i32>, stop_signal: Signal) {
        let Some(from) = self
            .release
            .as_mut()
            .map(|release| release.state.replace(to))
        else {
            return;
        };
        let Some(release) = &self.release else {
            return;
        };
        let change = Change {
            from,
            to,
            pid: Some(release.pid),
            code,
        };
        let name: Arc<str> = RELEASE_NAME.into();
        let who = Teller {
            name: &name,
            port: None,
            command: &release.command,
            stop_signal,
        };
        self.tell(who, change).await;
    }

    /// Once the release run is over: the formation starts if it succeeded; else hlocal
    /// exits with the release's own status when it failed (128+N when a signal from
    /// elsewhere killed it), hlocal's when a signal interrupted it. Either way nothing of
    /// the app starts.
    pub(super) async fn on_release_report(&mut self, event: RunEvent) {
        let Some(release) = &mut self.release else {
            return;
        };
        match event {
            RunEvent::Exited { code } => {
                release.exit = Some(code);
                let name: Arc<str> = RELEASE_NAME.into();
                let text = format!("Process exited with status {code}");
                self.log.message(Some(&name), text).await;
                let to = match release.state {
                    Some(State::Stopping) => State::Down,
                    _ if code == 0 => State::Exited,
                    _ => State::Crashed,
                };
                let signal = release.stop.signal();
                return self.change_release_state(to, Some(code), signal).await;
            }
            RunEvent::Finished => {}
            RunEvent::Ready { .. }
            | RunEvent::BootTimeout
            | RunEvent::NotYetOnPort { .. }
            | RunEvent::ListeningElsewhere { .. } => {
                return;
            }
        }
        let (code, text) = match (release.interrupted, release.exit) {
            (None, Some(0)) => {
                self.release = None;
                return self.start_formation().await;
            }
            (Some(code), _) => (code, "Release phase interrupted".to_string()),
            (None, code) => {
                let code = code.unwrap_or(1);
                (code, format!("Release phase failed with status {code}"))
            }
        };
        let said = format!("{text}, not starting the app");
        self.log.message_at(Level::Error, None, said).await;
        self.answer_waiters_failed(text).await;
        self.end_release(code);
    }

    fn end_release(&mut self, code: i32) {
        self.release = None;
        self.phase = Phase::Done(Exit { code, sweep: false });
    }

    /// First signal: stop the release with its stop signal and grace (exit 0, as any
    /// requested shutdown); second: kill it (exit 130).
    pub(super) async fn interrupt_release(&mut self, event: Event) {
        let Some(release) = &mut self.release else {
            return;
        };
        let (order, code) = match (event, release.interrupted) {
            (Event::Signal(signal), None) => {
                let text = format!("Received {signal}, stopping the release phase");
                self.log.message(None, text).await;
                (release.stop, 0)
            }
            (Event::Signal(_), Some(_)) => (Control::Kill, KILLED_CODE),
            (Event::StdoutClosed, _) => (Control::Kill, STDOUT_CLOSED_CODE),
            (Event::FilesChanged(_) | Event::Control(_), _) => return,
        };
        let Some(release) = &mut self.release else {
            return;
        };
        release.run.send(order);
        release.interrupted = Some(code);
        if release.state == Some(State::Up) {
            self.change_release_state(State::Stopping, None, order.signal())
                .await;
        }
    }
}
