//! The supervisor: owns the process table and decides what happens to every instance.
//!
//! # Theory of operation
//!
//! The table is a `Vec<Slot>`, one slot per instance of the formation (`web.1`, `web.2`,
//! `worker.1`), owned by the supervisor alone. A slot's process is a *run*
//! ([`instance`]): a task that spawns `sh -c CMD` in its own process group, pumps its
//! output to the printer and reports what happens (`Ready`, `BootTimeout`, `Exited`,
//! `Finished`). Reports carry the run's generation, so news from an old run (a restart,
//! or preboot's overlapping old process) never touches the new one's state.
//!
//! One `select!` loop takes run reports, outside events (signals, file changes, stdout
//! closing) and the earliest pending restart. Each handler changes slots and prints
//! each change of state in Heroku's words; after every event `settle` starts instances
//! whose dependencies are up, publishes the router's pool, and prints the `ready` marker
//! when everything is up. The loop ends when [`Supervisor::outcome`] says so: after a
//! shutdown once no run is left, or when every instance has ended for good.
//!
//! Shutdown sends each run its stop signal; the run escalates to SIGKILL after the grace
//! period and reports `Finished` only once its whole process group is gone. Then what left
//! its group goes too: processes marked with the session's `HLOCAL_SESSION`, and the
//! orphans hlocal inherited as subreaper ([`shutdown`]). The watchdog (`sys::Watchdog`)
//! covers the case where hlocal itself is killed.

mod changes;
mod host;
pub mod instance;
pub mod policy;
pub mod ready;
mod release;
mod shell;
mod shutdown;
mod slot;
pub mod spec;
pub mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use crate::output::{LogSender, Record, Source, StateChange};
use crate::router::Backends;
use crate::sys::{Signal, Watchdog};
use host::{Host, System};
use instance::{Control, Report, RunEvent, RunId, RunSpec};
use ready::Readiness;
use slot::Slot;
use spec::StartConfig;
use state::State;

/// What the supervisor reacts to besides its own runs.
#[derive(Debug)]
pub enum Event {
    Signal(Signal),
    /// A debounced batch of changed paths, relative to the app root.
    FilesChanged(Vec<PathBuf>),
    /// Nobody reads our output any more (`hlocal start | head`).
    StdoutClosed,
}

/// Exit status after stdout closed: as if SIGPIPE had killed hlocal, like its peers.
const STDOUT_CLOSED_CODE: i32 = 141;
/// Exit status after a second Ctrl-C.
const KILLED_CODE: i32 = 130;
/// How long a run of a type that is up once spawned must live before an exit 126/127
/// counts as a crash of a program that ran, rather than a command that cannot run.
const RAN_AFTER: Duration = Duration::from_secs(5);
/// The shortest wait before retrying a spawn that failed for want of descriptors.
const SPAWN_RETRY: Duration = Duration::from_secs(1);
/// How long a kill-at-once waits for the runs to confirm their groups are gone.
const KILL_CONFIRM: Duration = Duration::from_secs(1);

/// What a run takes from its process type (the release phase's included).
struct TypeRun<'a> {
    command: &'a str,
    ready: Readiness,
    stop_signal: Signal,
    grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Stopping { code: i32 },
}

pub struct Supervisor {
    config: Arc<StartConfig>,
    log: LogSender,
    host: Arc<dyn Host>,
    backends: Option<watch::Sender<Backends>>,
    reports_tx: mpsc::UnboundedSender<Report>,
    reports: mpsc::UnboundedReceiver<Report>,
    slots: Vec<Slot>,
    phase: Phase,
    /// Exit codes of instances that ended for good with a failure, in time order.
    failures: Vec<i32>,
    ready_announced: bool,
    /// `HLOCAL_SESSION` of every process started, to find any that left its group.
    session: Arc<str>,
}

impl Supervisor {
    pub fn new(
        config: Arc<StartConfig>,
        log: LogSender,
        watchdog: Arc<Watchdog>,
        backends: Option<watch::Sender<Backends>>,
        session: &str,
    ) -> Supervisor {
        let session: Arc<str> = session.into();
        let host = System {
            log: log.clone(),
            watchdog,
            session: Arc::clone(&session),
        };
        Supervisor::on_host(config, log, Arc::new(host), backends, session)
    }

    /// A supervisor whose runs and OS calls go through `host`.
    fn on_host(
        config: Arc<StartConfig>,
        log: LogSender,
        host: Arc<dyn Host>,
        backends: Option<watch::Sender<Backends>>,
        session: Arc<str>,
    ) -> Supervisor {
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let slots = slot::formation_slots(&config);
        let supervisor = Supervisor {
            config,
            log,
            host,
            backends,
            reports_tx,
            reports,
            slots,
            phase: Phase::Running,
            failures: Vec::new(),
            ready_announced: false,
            session,
        };
        supervisor.publish_backends();
        supervisor
    }

    /// Runs the release phase, then the formation, until the app stops; returns hlocal's
    /// exit status.
    pub async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) -> i32 {
        if let Err(code) = self.release(&mut events).await {
            return code;
        }
        if self.slots.is_empty() {
            self.log
                .message(None, "nothing to start: the formation has no instances")
                .await;
            return 0;
        }
        self.settle().await;
        loop {
            if let Some(code) = self.outcome() {
                self.sweep_session().await;
                return code;
            }
            let due = self.next_restart();
            tokio::select! {
                Some(report) = self.reports.recv() => self.on_report(report).await,
                Some(event) = events.recv() => {
                    if let Some(code) = self.on_event(event).await {
                        self.sweep_session().await;
                        return code;
                    }
                }
                () = sleep_until_some(due) => self.start_due().await,
            }
            self.settle().await;
        }
    }

    /// `Some(code)` once hlocal should exit.
    fn outcome(&self) -> Option<i32> {
        match self.phase {
            Phase::Stopping { code } => self.slots.iter().all(Slot::is_idle).then_some(code),
            Phase::Running => self
                .slots
                .iter()
                .all(|s| s.has_ended(&self.slots, &self.config))
                .then(|| self.failures.first().copied().unwrap_or(0)),
        }
    }

    async fn on_event(&mut self, event: Event) -> Option<i32> {
        match event {
            Event::Signal(signal) if self.phase == Phase::Running => {
                let text = format!("Received {signal}, stopping all processes");
                self.log.message(None, text).await;
                self.begin_shutdown(0).await;
            }
            Event::Signal(signal) => return Some(self.kill_now(signal).await),
            Event::FilesChanged(paths) => self.on_files_changed(&paths).await,
            Event::StdoutClosed => self.begin_shutdown(STDOUT_CLOSED_CODE).await,
        }
        None
    }

    async fn on_report(&mut self, report: Report) {
        let RunId { slot, generation } = report.run;
        let Some(s) = self.slots.get(slot) else {
            return;
        };
        if s.run
            .as_ref()
            .is_some_and(|r| r.id.generation == generation)
        {
            self.on_current_report(slot, report.event).await;
        } else if s.retiring.iter().any(|r| r.run.id.generation == generation) {
            self.on_retiring_report(slot, generation, report.event)
                .await;
        }
    }

    async fn on_current_report(&mut self, idx: usize, event: RunEvent) {
        match event {
            RunEvent::Ready { addr } => {
                self.slots[idx].ran = true;
                self.on_ready(idx, addr).await;
            }
            RunEvent::BootTimeout => self.on_boot_timeout(idx).await,
            RunEvent::ListeningElsewhere { port } => self.on_listening_elsewhere(idx, port).await,
            RunEvent::Exited { code } => self.on_exited(idx, code).await,
            RunEvent::Finished => {
                self.slots[idx].run = None;
                self.after_run(idx).await;
                if self.phase != Phase::Running {
                    self.stop_in_dependency_order().await;
                }
            }
        }
    }

    /// News from an old run that preboot keeps serving until its successor is up.
    async fn on_retiring_report(&mut self, idx: usize, generation: u64, event: RunEvent) {
        match event {
            RunEvent::Exited { code } => {
                let name = Arc::clone(&self.slots[idx].name);
                let text = format!("Process exited with status {code}");
                self.log.message(Some(&name), text).await;
            }
            RunEvent::Finished => self.slots[idx]
                .retiring
                .retain(|r| r.run.id.generation != generation),
            RunEvent::Ready { .. }
            | RunEvent::BootTimeout
            | RunEvent::ListeningElsewhere { .. } => {}
        }
    }

    async fn on_ready(&mut self, idx: usize, addr: Option<std::net::SocketAddr>) {
        let s = &mut self.slots[idx];
        if s.state == Some(State::Up) && s.elsewhere.take().is_some() {
            s.up_addr = Some(addr.unwrap_or_else(|| s.default_addr()));
            let (name, text) = (
                Arc::clone(&s.name),
                format!("listening on PORT={} now", s.port),
            );
            self.log.message(Some(&name), text).await;
            return;
        }
        if s.state != Some(State::Starting) {
            return;
        }
        s.up_addr = Some(addr.unwrap_or_else(|| s.default_addr()));
        self.set_state(idx, State::Up, None).await;
        let spec = &self.config.types[self.slots[idx].type_index];
        let stop = Control::Stop {
            signal: spec.stop_signal,
            grace: spec.stop_timeout,
        };
        if self.slots[idx].retiring.is_empty() {
            return;
        }
        let name = Arc::clone(&self.slots[idx].name);
        let text = format!(
            "Preboot: the new process is up; stopping the old one with {}",
            spec.stop_signal
        );
        self.log.message(Some(&name), text).await;
        // Out of the pool first (published now, not after this event), then stopped:
        // no new request goes to a stopping run.
        for old in &mut self.slots[idx].retiring {
            old.addr = None;
        }
        self.publish_backends();
        for old in &self.slots[idx].retiring {
            old.run.send(stop);
        }
    }

    async fn on_boot_timeout(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        if s.state != Some(State::Starting) {
            return;
        }
        s.boot_timed_out = true;
        let text =
            slot::boot_timeout_text(&self.config.types[s.type_index], self.config.boot_timeout);
        if let Some(run) = &s.run {
            run.send(Control::Kill);
        }
        let name = Arc::clone(&s.name);
        self.log.message(Some(&name), text).await;
        self.log
            .message(Some(&name), "Stopping process with SIGKILL")
            .await;
    }

    /// A web process that listens, but not on its `PORT`, is kept and counted up: it
    /// serves on its own port (a dev server), only the router cannot reach it (H21, with
    /// the same words).
    async fn on_listening_elsewhere(&mut self, idx: usize, port: u16) {
        let s = &mut self.slots[idx];
        if s.state != Some(State::Starting) {
            return;
        }
        s.elsewhere = Some(port);
        s.ran = true;
        let (name, text) = (Arc::clone(&s.name), slot::elsewhere_text(port, s.port));
        self.log.message(Some(&name), text).await;
        self.set_state(idx, State::Up, None).await;
    }

    /// A web instance's `PORT` still held when it is about to (re)start: by a process
    /// that left the last run's group (`setsid`, a daemonizing server) it would make every
    /// restart fail with "Address already in use". One of ours is stopped; another is
    /// named. (An instance that ended for good keeps its daemon until the shutdown.)
    /// A first start needs no scan: every port was checked free when hlocal started.
    async fn release_port(&mut self, idx: usize) {
        let s = &self.slots[idx];
        let restart = s.generation > 0;
        if !restart || !s.is_web(&self.config) || self.phase != Phase::Running {
            return;
        }
        let (name, port) = (Arc::clone(&s.name), s.port);
        let grace = self.config.types[s.type_index].stop_timeout;
        for holder in self.host.port_holders(port).await {
            let text = slot::port_holder_text(port, holder.as_ref());
            self.log.message(Some(&name), text).await;
            if let Some(ours) = holder.filter(|h| h.ours) {
                self.host.stop_process(ours.pid, grace).await;
            }
        }
    }

    async fn on_exited(&mut self, idx: usize, code: i32) {
        self.mark_ran(idx);
        let s = &mut self.slots[idx];
        s.exit_code = Some(code);
        s.up_addr = None;
        s.elsewhere = None;
        let name = Arc::clone(&s.name);
        let was_stopping = s.state == Some(State::Stopping);
        let crashed = s.boot_timed_out || code != 0;
        self.log
            .message(Some(&name), format!("Process exited with status {code}"))
            .await;
        if was_stopping {
            return;
        }
        let to = if crashed {
            State::Crashed
        } else {
            State::Exited
        };
        self.set_state(idx, to, Some(code)).await;
        if let Some(reason) = self.cannot_run(idx) {
            self.log.message(Some(&name), reason).await;
        }
        if self.config.exit_on_exit && self.phase == Phase::Running {
            self.begin_shutdown(code).await;
        }
    }

    /// The run is over and its process group gone: stopped, restarted, or ended.
    async fn after_run(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        match s.state {
            Some(State::Stopping) => {
                let code = s.exit_code;
                self.set_state(idx, State::Down, code).await;
                if std::mem::take(&mut self.slots[idx].restart_after_stop)
                    && self.phase == Phase::Running
                {
                    self.start_slot(idx).await;
                }
            }
            Some(State::Crashed | State::Exited) => self.schedule_restart(idx).await,
            _ => {}
        }
    }

    /// A type that is up once spawned has no check to pass: its run counts as having run
    /// once it lived [`RAN_AFTER`], so a worker that exits 127 after hours of work is
    /// restarted, while one whose command is missing (gone in milliseconds) is not.
    fn mark_ran(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        let spawned = matches!(self.config.types[s.type_index].ready, Readiness::Spawned);
        if spawned && s.run_started.elapsed() >= RAN_AFTER {
            s.ran = true;
        }
    }

    /// Why the slot's last run could not run at all (exit 126/127 before it ever ran,
    /// see [`Self::mark_ran`]): restarting it would only fail the same way.
    fn cannot_run(&self, idx: usize) -> Option<String> {
        let s = &self.slots[idx];
        if s.ran || s.state != Some(State::Crashed) {
            return None;
        }
        let command = &self.config.types[s.type_index].command;
        shell::cannot_run(command, s.exit_code?)
    }

    /// Restart policy and back-off, for a run that ended by itself.
    async fn schedule_restart(&mut self, idx: usize) {
        if self.phase != Phase::Running {
            return;
        }
        let policy = self.config.types[self.slots[idx].type_index].restart;
        let cannot_run = self.cannot_run(idx).is_some();
        let s = &mut self.slots[idx];
        if s.restart_at.is_some() {
            return;
        }
        let succeeded = s.state == Some(State::Exited);
        if cannot_run || !policy.should_restart(succeeded) {
            if !succeeded {
                self.failures.push(s.exit_code.unwrap_or(1));
            }
            return;
        }
        let delay = s.backoff.next_delay(s.run_started.elapsed());
        s.restart_at = Some(Instant::now() + delay);
        if !delay.is_zero() {
            let name = Arc::clone(&s.name);
            let text = format!("restarting in {}s", delay.as_secs());
            self.log.message(Some(&name), text).await;
        }
    }

    fn next_restart(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|s| s.run.is_none())
            .filter_map(|s| s.restart_at)
            .min()
    }

    async fn start_due(&mut self) {
        let now = Instant::now();
        for idx in 0..self.slots.len() {
            let s = &self.slots[idx];
            if s.run.is_none() && s.restart_at.is_some_and(|at| at <= now) {
                self.slots[idx].restart_at = None;
                self.start_slot(idx).await;
            }
        }
    }

    /// Spawns a new run for the slot on its current port.
    async fn start_slot(&mut self, idx: usize) {
        self.release_port(idx).await;
        let port = self.slots[idx].port;
        self.start_run_on(idx, port).await;
    }

    async fn start_run_on(&mut self, idx: usize, port: u16) {
        let spec = self.instance_spec(idx, port);
        let s = &mut self.slots[idx];
        s.generation += 1;
        s.port = port;
        s.boot_timed_out = false;
        s.ran = false;
        s.elsewhere = None;
        s.exit_code = None;
        s.run_started = Instant::now();
        let id = RunId {
            slot: idx,
            generation: s.generation,
        };
        match self.host.spawn(spec) {
            Ok(process) => {
                self.slots[idx].pid = Some(process.pid());
                self.set_state(idx, State::Starting, None).await;
                let run = process.start(id, &self.reports_tx);
                self.slots[idx].run = Some(run);
                if matches!(
                    self.config.types[self.slots[idx].type_index].ready,
                    Readiness::Spawned
                ) {
                    self.on_ready(idx, None).await;
                }
            }
            Err(error) => self.spawn_failed(idx, &error).await,
        }
    }

    /// `sh` itself could not be started (no `sh`, the app directory gone): crashed for
    /// good, as a command that cannot run, rather than a loop of failures; a file change
    /// starts it again. A shortage of file descriptors or processes is hlocal's or the
    /// system's, not the app's: that spawn is retried (see [`Self::retry_spawn`]).
    async fn spawn_failed(&mut self, idx: usize, error: &std::io::Error) {
        let name = Arc::clone(&self.slots[idx].name);
        self.slots[idx].pid = None;
        if let Some(shortage) = crate::sys::spawn_shortage(error) {
            return self.retry_spawn(idx, &format!("{error}: {shortage}")).await;
        }
        self.log
            .message(Some(&name), format!("Failed to start process: {error}"))
            .await;
        self.set_state(idx, State::Starting, None).await;
        self.slots[idx].exit_code = Some(127);
        self.set_state(idx, State::Crashed, Some(127)).await;
        if self.phase == Phase::Running {
            self.failures.push(127);
        }
    }

    /// Crashed (already, after a crash; else once it counts as started), and started
    /// again after the crash back-off, at least [`SPAWN_RETRY`] later.
    async fn retry_spawn(&mut self, idx: usize, why: &str) {
        if self.slots[idx].state != Some(State::Crashed) {
            self.set_state(idx, State::Starting, None).await;
            self.set_state(idx, State::Crashed, None).await;
        }
        let s = &mut self.slots[idx];
        let delay = s.backoff.next_delay(Duration::ZERO).max(SPAWN_RETRY);
        let name = Arc::clone(&s.name);
        let retry = if self.phase == Phase::Running {
            s.restart_at = Some(Instant::now() + delay);
            format!("; retrying in {}s", delay.as_secs())
        } else {
            String::new()
        };
        let text = format!("Failed to start process: {why}{retry}");
        self.log.message(Some(&name), text).await;
    }

    fn instance_spec(&self, idx: usize, port: u16) -> RunSpec {
        let s = &self.slots[idx];
        let spec = &self.config.types[s.type_index];
        let of = TypeRun {
            command: &spec.command,
            ready: spec.ready.clone(),
            stop_signal: spec.stop_signal,
            grace: spec.stop_timeout,
        };
        self.run_spec(Arc::clone(&s.source), Some(port), of)
    }

    /// The one place a run is described, for an instance or the release phase.
    fn run_spec(&self, source: Arc<Source>, port: Option<u16>, of: TypeRun) -> RunSpec {
        RunSpec {
            instance_env: self.instance_env(&source.name, port),
            source,
            command: of.command.to_string(),
            root: self.config.root.clone(),
            env: Arc::clone(&self.config.env),
            port,
            ready: of.ready,
            boot_timeout: self.config.boot_timeout,
            stop_signal: of.stop_signal,
            grace: of.grace,
            merge_output: !self.config.style.json,
        }
    }

    fn instance_env(&self, name: &str, port: Option<u16>) -> Vec<(String, String)> {
        let mut env = slot::instance_env(name, port, self.config.dyno);
        env.push((
            crate::sys::SESSION_VAR.to_string(),
            self.session.to_string(),
        ));
        env
    }

    async fn set_state(&mut self, idx: usize, to: State, code: Option<i32>) {
        let s = &mut self.slots[idx];
        let from = s.state.replace(to);
        let spec = &self.config.types[s.type_index];
        let wording = state::describe(from, to, &spec.command, spec.stop_signal);
        let change = StateChange {
            name: Arc::clone(&s.name),
            from: from.map(State::name),
            to: to.name(),
            pid: s.pid,
            port: Some(s.port),
            code,
            text: wording.change,
        };
        let name = Arc::clone(&s.name);
        self.log.send(Record::State(change)).await;
        if let Some(then) = wording.then {
            self.log.message(Some(&name), then).await;
        }
    }

    /// After every event: start instances whose dependencies are up, publish the
    /// router's pool, announce readiness.
    async fn settle(&mut self) {
        if self.phase == Phase::Running {
            for idx in 0..self.slots.len() {
                if self.slots[idx].state.is_none()
                    && slot::dependencies_up(&self.slots, idx, &self.config)
                {
                    self.start_slot(idx).await;
                }
            }
        }
        self.publish_backends();
        self.announce_ready().await;
    }

    fn publish_backends(&self) {
        if let Some(tx) = &self.backends {
            let pool = slot::backends(&self.slots, &self.config, self.phase == Phase::Running);
            tx.send_if_modified(|current| {
                let changed = *current != pool;
                if changed {
                    *current = pool;
                }
                changed
            });
        }
    }

    async fn announce_ready(&mut self) {
        let ready = self.phase == Phase::Running && slot::all_up(&self.slots);
        if ready && !self.ready_announced {
            let url = slot::public_url(&self.slots, &self.config);
            self.log.send(Record::Ready { url }).await;
        }
        self.ready_announced = ready;
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
