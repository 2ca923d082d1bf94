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
//! Each slot's lifecycle is one enum ([`life`]): waiting, starting, up, stopping, ended
//! (crashed or exited, with a pending restart) or down, each stage carrying its own data
//! (the run, its pid, where it serves). The transitions are the slot's methods and return
//! the state change to print in Heroku's words; nothing else writes a slot's stage.
//!
//! One `select!` loop, whatever the phase (release, running, stopping, killing), takes run
//! reports (one dispatcher, [`Supervisor::on_report`]), outside events (signals, file
//! changes, stdout closing) and the earliest timer (a pending restart, the end of a kill's
//! confirmation). After every event `settle` starts instances whose dependencies are up,
//! publishes the router's pool, and prints the `ready` marker when everything is up. The
//! loop ends when [`Supervisor::outcome`] says so: after a shutdown once no run is left,
//! when every instance has ended for good, or when the release phase failed.
//!
//! Everything the supervisor asks of the OS (spawning a run, port holders, the final
//! sweep) goes through a [`host::Host`]; the unit tests (`tests.rs`) use one that spawns
//! nothing and play the runs' reports themselves, in paused time.
//!
//! Shutdown sends each run its stop signal; the run escalates to SIGKILL after the grace
//! period and reports `Finished` only once its whole process group is gone. Then what left
//! its group goes too: processes marked with the session's `HLOCAL_SESSION`, and the
//! orphans hlocal inherited as subreaper ([`shutdown`]). The watchdog (`sys::Watchdog`)
//! covers the case where hlocal itself is killed.

mod changes;
mod control;
mod host;
pub mod instance;
mod life;
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

use crate::control::ControlRequest;
use crate::output::{Level, LogSender, Marker, Record, Source, StateChange};
use crate::router::Backends;
use crate::sys::Signal;
use host::{Host, System};
use instance::{Control, Report, Run, RunEvent, RunId, RunMachine, RunSpec};
use life::{AfterRun, Change, Current, Life, Serving, Then};
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
    /// A request from the control socket.
    Control(ControlRequest),
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

/// Whose state changed, for [`Supervisor::tell`]: an instance, or the release phase
/// (which has no port).
struct Teller<'a> {
    name: &'a Arc<str>,
    port: Option<u16>,
    command: &'a str,
    /// Named by a change to `stopping`.
    stop_signal: Signal,
}

/// What a run takes from its process type (the release phase's included).
struct TypeRun<'a> {
    command: &'a str,
    ready: Readiness,
    stop_signal: Signal,
    grace: Duration,
    tty: bool,
    force_color: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The release run runs; nothing of the formation has started.
    Release,
    Running,
    /// Shutting down; `code` is hlocal's exit status.
    Stopping {
        code: i32,
    },
    /// A second Ctrl-C: every group was sent SIGKILL; the runs' ends are awaited until
    /// `until`.
    Killing {
        until: Instant,
    },
    Done(Exit),
}

/// How hlocal ends: its status, and whether processes that left their group may be
/// left to sweep (not after the release phase: nothing of the formation started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exit {
    code: i32,
    sweep: bool,
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
    /// The release run, while the release phase lasts.
    release: Option<release::ReleaseRun>,
    /// Exit codes of instances that ended for good with a failure, in time order.
    failures: Vec<i32>,
    ready_announced: bool,
    /// `hlocal wait` requests not answered yet, and why the app cannot become ready.
    waiters: control::Waiters,
    /// Where the names of types and instances are published for the control server.
    names: Option<watch::Sender<Vec<String>>>,
    /// `HLOCAL_<TYPE>_PORT` and `HLOCAL_URL`, for every process.
    discovery: Vec<(String, String)>,
    /// `HLOCAL_SESSION` of every process started, to find any that left its group.
    session: Arc<str>,
}

impl Supervisor {
    pub fn new(
        config: Arc<StartConfig>,
        log: LogSender,
        machine: RunMachine,
        backends: Option<watch::Sender<Backends>>,
        session: &str,
    ) -> Supervisor {
        let session: Arc<str> = session.into();
        let host = System {
            log: log.clone(),
            machine: Arc::new(machine),
            session: Arc::clone(&session),
        };
        Supervisor::on_host(config, log, Arc::new(host), backends, session)
    }

    /// Publishes the names of types and instances to `names`, now and after every scale.
    pub fn publish_names_to(mut self, names: watch::Sender<Vec<String>>) -> Supervisor {
        self.names = Some(names);
        self.publish_names();
        self
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
        let discovery = crate::ports::discovery_env(
            config.types.iter().map(|t| (t.name.as_str(), t.first_port)),
            slot::public_url(&slots, &config).as_deref(),
        );
        let supervisor = Supervisor {
            config,
            log,
            host,
            backends,
            reports_tx,
            reports,
            slots,
            phase: Phase::Release,
            release: None,
            failures: Vec::new(),
            ready_announced: false,
            waiters: control::Waiters::default(),
            names: None,
            discovery,
            session,
        };
        supervisor.publish_backends();
        supervisor
    }

    /// Runs the release phase, then the formation, until the app stops; returns hlocal's
    /// exit status. One loop takes every report, event and timer, whatever the phase.
    pub async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) -> i32 {
        self.start_release().await;
        self.settle().await;
        loop {
            if let Some(Exit { code, sweep }) = self.outcome() {
                if sweep {
                    self.sweep_session().await;
                }
                return code;
            }
            let timer = self.next_timer();
            tokio::select! {
                Some(report) = self.reports.recv() => self.on_report(report).await,
                Some(event) = events.recv() => self.on_event(event).await,
                () = sleep_until_some(timer) => self.on_timer().await,
            }
            self.settle().await;
        }
    }

    /// The formation starts (at the next `settle`), unless it is empty.
    async fn start_formation(&mut self) {
        if self.slots.is_empty() {
            self.log
                .message(None, "nothing to start: the formation has no instances")
                .await;
            self.phase = Phase::Done(Exit {
                code: 0,
                sweep: false,
            });
        } else {
            self.phase = Phase::Running;
        }
    }

    /// `Some` once hlocal should exit.
    fn outcome(&self) -> Option<Exit> {
        let exit = |code| Exit { code, sweep: true };
        match self.phase {
            Phase::Release => None,
            Phase::Running => self
                .slots
                .iter()
                .all(|s| s.has_ended(&self.slots, &self.config))
                .then(|| exit(self.failures.first().copied().unwrap_or(0))),
            Phase::Stopping { code } => self.slots.iter().all(Slot::is_idle).then(|| exit(code)),
            Phase::Killing { until } => (self.slots.iter().all(Slot::is_idle)
                || Instant::now() >= until)
                .then(|| exit(KILLED_CODE)),
            Phase::Done(exit) => Some(exit),
        }
    }

    async fn on_event(&mut self, event: Event) {
        match (self.phase, event) {
            (_, Event::Control(request)) => self.on_control(request).await,
            (Phase::Release, event) => self.interrupt_release(event).await,
            (Phase::Running, Event::Signal(signal)) => {
                let text = format!("Received {signal}, stopping all processes");
                self.log.message(None, text).await;
                self.begin_shutdown(0).await;
            }
            (Phase::Stopping { .. }, Event::Signal(signal)) => self.kill_now(signal).await,
            (_, Event::FilesChanged(paths)) => self.on_files_changed(&paths).await,
            (_, Event::StdoutClosed) => self.begin_shutdown(STDOUT_CLOSED_CODE).await,
            (Phase::Killing { .. } | Phase::Done(_), Event::Signal(_)) => {}
        }
    }

    /// The earliest pending restart, or the end of a kill's confirmation.
    fn next_timer(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running => self.next_restart(),
            Phase::Killing { until } => Some(until),
            _ => None,
        }
    }

    async fn on_timer(&mut self) {
        if self.phase == Phase::Running {
            self.start_due().await;
        }
    }

    /// The one dispatcher of the runs' reports.
    async fn on_report(&mut self, report: Report) {
        match self.phase {
            Phase::Release => return self.on_release_report(report.event).await,
            Phase::Killing { .. } => return self.on_killed_report(report).await,
            _ => {}
        }
        let RunId { slot, generation } = report.run;
        let Some(s) = self.slots.get(slot) else {
            return;
        };
        if s.run().is_some_and(|r| r.id.generation == generation) {
            self.on_current_report(slot, report.event).await;
        } else if s.retiring.iter().any(|r| r.run.id.generation == generation) {
            self.on_retiring_report(slot, generation, report.event)
                .await;
        }
    }

    async fn on_current_report(&mut self, idx: usize, event: RunEvent) {
        match event {
            RunEvent::Ready { addr } => {
                if let Some(current) = self.slots[idx].current_mut() {
                    current.ran = true;
                }
                self.on_ready(idx, addr).await;
            }
            RunEvent::BootTimeout => self.on_boot_timeout(idx).await,
            RunEvent::NotYetOnPort { port } => self.on_not_yet_on_port(idx, port).await,
            RunEvent::ListeningElsewhere { port } => self.on_listening_elsewhere(idx, port).await,
            RunEvent::Exited { code } => self.on_exited(idx, code).await,
            RunEvent::Finished => {
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
            | RunEvent::NotYetOnPort { .. }
            | RunEvent::ListeningElsewhere { .. } => {}
        }
    }

    async fn on_ready(&mut self, idx: usize, addr: Option<std::net::SocketAddr>) {
        let s = &mut self.slots[idx];
        let addr = addr.unwrap_or_else(|| s.default_addr());
        if s.bound_late(addr) {
            let (name, text) = (
                Arc::clone(&s.name),
                format!("listening on PORT={} now", s.port),
            );
            self.log.message(Some(&name), text).await;
            return;
        }
        let Some(change) = s.up(Serving::At(addr)) else {
            return;
        };
        self.print(idx, change).await;
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
        let spec = &self.config.types[s.type_index];
        let Some(run) = s.boot_timed_out() else {
            return;
        };
        run.send(Control::Kill);
        let text = slot::boot_timeout_text(spec, self.config.boot_timeout);
        let name = Arc::clone(&s.name);
        self.log.message_at(Level::Error, Some(&name), text).await;
        self.log
            .message(Some(&name), "Stopping process with SIGKILL")
            .await;
    }

    /// A booting web process listens, but not yet on its `PORT`: a warning now rather than
    /// a surprise at the boot timeout.
    async fn on_not_yet_on_port(&mut self, idx: usize, port: u16) {
        let s = &self.slots[idx];
        if s.state() != Some(State::Starting) {
            return;
        }
        let (name, text) = (Arc::clone(&s.name), slot::not_yet_text(port, s.port));
        self.log.message_at(Level::Warning, Some(&name), text).await;
    }

    /// A web process that listens, but not on its `PORT`, is kept and counted up: it
    /// serves on its own port (a dev server), only the router cannot reach it (H21, with
    /// the same words).
    async fn on_listening_elsewhere(&mut self, idx: usize, port: u16) {
        let s = &mut self.slots[idx];
        if s.state() != Some(State::Starting) {
            return;
        }
        if let Some(current) = s.current_mut() {
            current.ran = true;
        }
        let (name, text) = (Arc::clone(&s.name), slot::elsewhere_text(port, s.port));
        self.log.message_at(Level::Warning, Some(&name), text).await;
        if let Some(change) = self.slots[idx].up(Serving::Elsewhere(port)) {
            self.print(idx, change).await;
        }
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
            self.log.message_at(Level::Warning, Some(&name), text).await;
            if let Some(ours) = holder.filter(|h| h.ours) {
                self.host.stop_process(ours.pid, grace).await;
            }
        }
    }

    async fn on_exited(&mut self, idx: usize, code: i32) {
        self.mark_ran(idx);
        let name = Arc::clone(&self.slots[idx].name);
        self.log
            .message(Some(&name), format!("Process exited with status {code}"))
            .await;
        let Some(change) = self.slots[idx].exited(code) else {
            return;
        };
        self.print(idx, change).await;
        if let Some(reason) = self.cannot_run(idx) {
            self.log.message_at(Level::Error, Some(&name), reason).await;
        }
        if self.config.exit_on_exit && self.phase == Phase::Running {
            self.begin_shutdown(code).await;
        }
    }

    /// The run is over and its process group gone: stopped, restarted, or ended.
    async fn after_run(&mut self, idx: usize) {
        match self.slots[idx].finished() {
            AfterRun::Down(change, then) => {
                self.print(idx, change).await;
                if then == Then::Restart && self.phase == Phase::Running {
                    self.start_slot(idx).await;
                }
            }
            AfterRun::Ended => self.schedule_restart(idx).await,
            AfterRun::Nothing => {}
        }
    }

    /// A type that is up once spawned has no check to pass: its run counts as having run
    /// once it lived [`RAN_AFTER`], so a worker that exits 127 after hours of work is
    /// restarted, while one whose command is missing (gone in milliseconds) is not.
    fn mark_ran(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        let spawned = matches!(self.config.types[s.type_index].ready, Readiness::Spawned);
        if let Some(current) = s.current_mut() {
            current.ran |= spawned && current.started.elapsed() >= RAN_AFTER;
        }
    }

    /// Why the slot's last run could not run at all (exit 126/127 before it ever ran,
    /// see [`Self::mark_ran`]): restarting it would only fail the same way.
    fn cannot_run(&self, idx: usize) -> Option<String> {
        let s = &self.slots[idx];
        let Life::Ended(ended) = s.life() else {
            return None;
        };
        if ended.ran || !ended.crashed {
            return None;
        }
        let command = &self.config.types[s.type_index].command;
        shell::cannot_run(command, ended.code?)
    }

    /// Restart policy and back-off, for a run that ended by itself.
    async fn schedule_restart(&mut self, idx: usize) {
        if self.phase != Phase::Running {
            return;
        }
        let policy = self.config.types[self.slots[idx].type_index].restart;
        let cannot_run = self.cannot_run(idx).is_some();
        let s = &mut self.slots[idx];
        let Life::Ended(ended) = s.life() else {
            return;
        };
        if ended.restart_at.is_some() {
            return;
        }
        let succeeded = !ended.crashed;
        if cannot_run || !policy.should_restart(succeeded) {
            if !succeeded {
                self.failures.push(ended.code.unwrap_or(1));
            }
            if self.config.watches(s.type_index) {
                let name = Arc::clone(&s.name);
                let text = "waiting for a file change to run again";
                self.log.message(Some(&name), text.to_string()).await;
            }
            return;
        }
        let delay = s.backoff.next_delay(ended.started.elapsed());
        s.schedule(Instant::now() + delay);
        if !delay.is_zero() {
            let name = Arc::clone(&s.name);
            let text = format!("restarting in {}s", delay.as_secs());
            self.log.message(Some(&name), text).await;
        }
    }

    fn next_restart(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| s.life().restart_due())
            .min()
    }

    async fn start_due(&mut self) {
        let now = Instant::now();
        for idx in 0..self.slots.len() {
            if self.slots[idx].take_due(now) {
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
        let id = self.slots[idx].next_run(idx);
        match self.host.spawn(spec) {
            Ok(process) => {
                // `Starting process` is printed before the run's output is read.
                let (run, orders) = Run::channel(id);
                let current = Current::new(run, process.pid());
                let change = self.slots[idx].start(current, port);
                self.print(idx, change).await;
                process.start(id, orders, &self.reports_tx);
                if matches!(
                    self.config.types[self.slots[idx].type_index].ready,
                    Readiness::Spawned
                ) {
                    self.on_ready(idx, None).await;
                }
            }
            Err(error) => self.spawn_failed(idx, port, &error).await,
        }
    }

    /// `sh` itself could not be started (no `sh`, the app directory gone): crashed for
    /// good, as a command that cannot run, rather than a loop of failures; a file change
    /// starts it again. A shortage of file descriptors or processes is hlocal's or the
    /// system's, not the app's: that spawn is retried (see [`Self::retry_spawn`]).
    async fn spawn_failed(&mut self, idx: usize, port: u16, error: &std::io::Error) {
        let name = Arc::clone(&self.slots[idx].name);
        if let Some(shortage) = crate::sys::spawn_shortage(error) {
            return self
                .retry_spawn(idx, port, &format!("{error}: {shortage}"))
                .await;
        }
        // `Starting process …`, why it failed, then `… to crashed`: the reason between.
        let [starting, crashed] = self.slots[idx].spawn_failed(port, Some(127), None);
        self.print(idx, starting).await;
        let text = format!("Failed to start process: {error}");
        self.log.message_at(Level::Error, Some(&name), text).await;
        self.print(idx, crashed).await;
        if self.phase == Phase::Running {
            self.failures.push(127);
        }
    }

    /// Crashed (already, after a crash; else once it counts as started), and started
    /// again after the crash back-off, at least [`SPAWN_RETRY`] later.
    async fn retry_spawn(&mut self, idx: usize, port: u16, why: &str) {
        let s = &mut self.slots[idx];
        let was_crashed = s.state() == Some(State::Crashed);
        let delay = s.backoff.next_delay(Duration::ZERO).max(SPAWN_RETRY);
        let running = self.phase == Phase::Running;
        let restart_at = running.then(|| Instant::now() + delay);
        let changes = s.spawn_failed(port, None, restart_at);
        if !was_crashed {
            for change in changes {
                self.print(idx, change).await;
            }
        }
        let retry = if running {
            format!("; retrying in {}s", delay.as_secs())
        } else {
            String::new()
        };
        let name = Arc::clone(&self.slots[idx].name);
        let text = format!("Failed to start process: {why}{retry}");
        self.log.message_at(Level::Warning, Some(&name), text).await;
    }

    fn instance_spec(&self, idx: usize, port: u16) -> RunSpec {
        let s = &self.slots[idx];
        let spec = &self.config.types[s.type_index];
        let of = TypeRun {
            command: &spec.command,
            ready: spec.ready.clone(),
            stop_signal: spec.stop_signal,
            grace: spec.stop_timeout,
            tty: spec.tty,
            force_color: spec.force_color,
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
            tty: of.tty,
            force_color: of.force_color,
        }
    }

    fn instance_env(&self, name: &str, port: Option<u16>) -> Vec<(String, String)> {
        let mut env = slot::instance_env(name, port, self.config.dyno);
        env.extend(self.discovery.iter().cloned());
        env.push((
            crate::sys::SESSION_VAR.to_string(),
            self.session.to_string(),
        ));
        env
    }

    /// Prints a change of state: the line in Heroku's words, the JSON `state` event.
    async fn print(&mut self, idx: usize, change: Change) {
        let stop_signal = self.config.types[self.slots[idx].type_index].stop_signal;
        self.print_stopping(idx, change, stop_signal).await;
    }

    /// [`Self::print`], naming `signal` if the change is to `stopping`.
    async fn print_stopping(&mut self, idx: usize, change: Change, signal: Signal) {
        let s = &self.slots[idx];
        let spec = &self.config.types[s.type_index];
        let who = Teller {
            name: &s.name,
            port: Some(s.port),
            command: &spec.command,
            stop_signal: signal,
        };
        self.tell(who, change).await;
        if change.to == State::Crashed {
            let status = change
                .code
                .map_or(String::new(), |c| format!(" with status {c}"));
            let why = format!("{} crashed{status}", self.slots[idx].name);
            self.answer_waiters_failed(why).await;
        }
    }

    /// Logs `change` in Heroku's words (and as a JSON `state` event): an instance's, or
    /// the release phase's.
    async fn tell(&self, who: Teller<'_>, change: Change) {
        let wording = state::describe(change.from, change.to, who.command, who.stop_signal);
        let event = StateChange {
            name: Arc::clone(who.name),
            from: change.from.map(State::name),
            to: change.to.name(),
            pid: change.pid,
            port: who.port,
            code: change.code,
            text: wording.change,
        };
        self.log.send(Record::State(event)).await;
        if let Some(then) = wording.then {
            self.log.message(Some(who.name), then).await;
        }
    }

    /// After every event: start instances whose dependencies are up, publish the
    /// router's pool, announce readiness.
    async fn settle(&mut self) {
        if !matches!(self.phase, Phase::Running | Phase::Stopping { .. }) {
            return;
        }
        if self.phase == Phase::Running {
            for idx in 0..self.slots.len() {
                if self.slots[idx].state().is_none()
                    && !self.slots[idx].held
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
            // Web instances are on their way during the release phase too: the router
            // holds requests then (H20 after its timeout) rather than answer H14.
            let on_the_way = matches!(self.phase, Phase::Release | Phase::Running);
            let pool = slot::backends(&self.slots, &self.config, on_the_way);
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
            self.log.marker(Marker::Ready { url }).await;
        }
        self.ready_announced = ready;
        if ready {
            self.answer_waiters_ready();
        }
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
