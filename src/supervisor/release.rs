//! The release phase: the `release` type runs once, to completion, before
//! anything else starts; a failure aborts the start with its exit status.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::instance::{self, Control, RunEvent, RunId};
use super::ready::Readiness;
use super::{Event, KILLED_CODE, Supervisor, TypeRun};
use crate::output::Source;

/// Reports about the release run use a slot number no formation instance has.
const RELEASE_SLOT: usize = usize::MAX;
const RELEASE_NAME: &str = "release.1";

impl Supervisor {
    /// `Err(code)` when hlocal must exit instead of starting the formation.
    pub(super) async fn release(
        &mut self,
        events: &mut mpsc::UnboundedReceiver<Event>,
    ) -> Result<(), i32> {
        let Some(release) = self.config.release.clone() else {
            return Ok(());
        };
        let name: Arc<str> = RELEASE_NAME.into();
        let of = TypeRun {
            command: &release.command,
            ready: Readiness::Spawned,
            stop_signal: release.stop_signal,
            grace: release.stop_timeout,
        };
        let spec = self.run_spec(Source::app(RELEASE_NAME, release.index), None, of);
        let id = RunId {
            slot: RELEASE_SLOT,
            generation: 1,
        };
        let text = format!("Starting process with command `{}`", release.command);
        self.log.message(Some(&name), text).await;
        let run = match self.host.spawn(spec) {
            Ok(process) => process.start(id, &self.reports_tx),
            Err(error) => {
                let text = format!("Failed to start the release phase: {error}");
                self.log.message(Some(&name), text).await;
                return Err(1);
            }
        };
        let stop = Control::Stop {
            signal: release.stop_signal,
            grace: release.stop_timeout,
        };
        self.wait_release(&run, stop, &name, events).await
    }

    /// `Ok` once the release succeeded; else hlocal's exit status: the release's own
    /// when it failed (128+N when a signal from elsewhere killed it), hlocal's when a
    /// signal interrupted it. Either way nothing of the app starts.
    async fn wait_release(
        &mut self,
        run: &instance::Run,
        stop: Control,
        name: &Arc<str>,
        events: &mut mpsc::UnboundedReceiver<Event>,
    ) -> Result<(), i32> {
        let mut exit = None;
        let mut interrupted: Option<i32> = None;
        loop {
            tokio::select! {
                Some(report) = self.reports.recv() => match report.event {
                    RunEvent::Exited { code } => {
                        let text = format!("Process exited with status {code}");
                        self.log.message(Some(name), text).await;
                        exit = Some(code);
                    }
                    RunEvent::Finished => break,
                    RunEvent::Ready { .. }
                    | RunEvent::BootTimeout
                    | RunEvent::ListeningElsewhere { .. } => {}
                },
                Some(event) = events.recv() => {
                    interrupted = self.interrupt_release(run, stop, interrupted, event).await;
                }
            }
        }
        let (code, text) = match (interrupted, exit) {
            (None, Some(0)) => return Ok(()),
            (Some(code), _) => (code, "Release phase interrupted".to_string()),
            (None, code) => {
                let code = code.unwrap_or(1);
                (code, format!("Release phase failed with status {code}"))
            }
        };
        self.log
            .message(None, format!("{text}, not starting the app"))
            .await;
        Err(code)
    }

    /// First signal: stop the release with its stop signal and grace (exit 0, as any
    /// requested shutdown); second: kill it (exit 130).
    async fn interrupt_release(
        &self,
        run: &instance::Run,
        stop: Control,
        before: Option<i32>,
        event: Event,
    ) -> Option<i32> {
        match (event, before) {
            (Event::Signal(signal), None) => {
                let text = format!("Received {signal}, stopping the release phase");
                self.log.message(None, text).await;
                run.send(stop);
                Some(0)
            }
            (Event::Signal(_), Some(_)) => {
                run.send(Control::Kill);
                Some(KILLED_CODE)
            }
            (Event::StdoutClosed, _) => {
                run.send(Control::Kill);
                Some(super::STDOUT_CLOSED_CODE)
            }
            (Event::FilesChanged(_), before) => before,
        }
    }
}
