//! The supervisor's seam to the machine: everything it asks of the OS (spawn a run, are
//! ports free, who holds a port, stop a process, sweep what left its group, pick a
//! preboot port) goes through [`Host`]. `hlocal start` uses [`System`]; the supervisor's
//! unit tests use a host that spawns nothing and feed the runs' reports themselves
//! (watchexec's `TestChild` idea), so policy is tested in paused time, in milliseconds.
//!
//! The answers that need a scan of `/proc` or the socket tables are futures: [`System`]
//! runs those scans on tokio's blocking threads, a test host answers at once (a blocking
//! task would let paused time jump ahead while it runs).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::instance::{self, Control, Report, RunId, RunMachine, RunSpec, Spawned};
use super::slot;
use crate::output::LogSender;
use crate::ports;
use crate::sys::{self, PortHolder};

pub(super) trait Host: Send + Sync + 'static {
    /// Spawns the run's process, not yet supervised: the supervisor prints `Starting
    /// process` (with the pid) before the app's first line can be read.
    fn spawn(&self, spec: RunSpec) -> io::Result<Box<dyn Process>>;
    /// Every `(instance, port)` is free, or why not in `hlocal start`'s words (`port 5008
    /// (web.3) is already in use by pid 4242 (…)`).
    fn check_free(&self, wanted: Vec<(String, u16)>) -> Answer<Result<(), String>>;
    /// What listens on `port` (`None`: a process of another user).
    fn port_holders(&self, port: u16) -> Answer<Vec<Option<PortHolder>>>;
    /// Stops one process: SIGTERM, `grace`, SIGKILL.
    fn stop_process(&self, pid: u32, grace: Duration) -> Answer<()>;
    /// Stops what left its process group: the session's marked processes, the orphans.
    fn sweep(&self, grace: Duration) -> Answer<()>;
    /// The port for preboot's new run (see [`slot::preboot_port`]).
    fn preboot_port(&self, current: u16, home: u16) -> Answer<u16>;
}

/// A host's answer, possibly computed on a blocking thread.
pub(super) type Answer<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A spawned process of a run.
pub(super) trait Process: Send {
    fn pid(&self) -> u32;
    /// Starts supervising it: it takes its orders from `orders` (the other end of
    /// its [`Run`](super::instance::Run) handle), its reports go to `reports`, tagged
    /// with `id`.
    fn start(
        self: Box<Self>,
        id: RunId,
        orders: mpsc::UnboundedReceiver<Control>,
        reports: &mpsc::UnboundedSender<Report>,
    );
}

/// The real machine: `sh -c` in process groups the watchdog knows of.
pub(super) struct System {
    pub log: LogSender,
    pub machine: Arc<RunMachine>,
    /// `HLOCAL_SESSION` of every process started, to find any that left its group.
    pub session: Arc<str>,
}

struct SystemProcess {
    spawned: Spawned,
    spec: RunSpec,
    log: LogSender,
    machine: Arc<RunMachine>,
}

impl Host for System {
    fn spawn(&self, spec: RunSpec) -> io::Result<Box<dyn Process>> {
        let spawned = instance::spawn(&spec, &self.machine.watchdog)?;
        Ok(Box::new(SystemProcess {
            spawned,
            spec,
            log: self.log.clone(),
            machine: Arc::clone(&self.machine),
        }))
    }

    fn check_free(&self, wanted: Vec<(String, u16)>) -> Answer<Result<(), String>> {
        off_workers(Ok(()), move || {
            ports::check_free(wanted).map_err(|taken| taken.to_string())
        })
    }

    fn port_holders(&self, port: u16) -> Answer<Vec<Option<PortHolder>>> {
        let session = Arc::clone(&self.session);
        off_workers(Vec::new(), move || sys::port_holders(port, &session))
    }

    fn stop_process(&self, pid: u32, grace: Duration) -> Answer<()> {
        off_workers((), move || sys::stop_process(pid, grace))
    }

    fn sweep(&self, grace: Duration) -> Answer<()> {
        let session = Arc::clone(&self.session);
        let watchdog = Arc::clone(&self.machine.watchdog);
        off_workers((), move || {
            sys::stop_session(&session, grace);
            watchdog.stop_orphans(grace);
        })
    }

    fn preboot_port(&self, current: u16, home: u16) -> Answer<u16> {
        off_workers(home, move || slot::preboot_port(current, home))
    }
}

/// Runs a blocking call on tokio's blocking threads. A failed join means the call
/// panicked: `fallback` (nothing found, nothing done, the layout's port) stands in.
fn off_workers<T: Send + 'static>(
    fallback: T,
    call: impl FnOnce() -> T + Send + 'static,
) -> Answer<T> {
    let task = tokio::task::spawn_blocking(call);
    Box::pin(async move { task.await.unwrap_or(fallback) })
}

impl Process for SystemProcess {
    fn pid(&self) -> u32 {
        self.spawned.pid()
    }

    fn start(
        self: Box<Self>,
        id: RunId,
        orders: mpsc::UnboundedReceiver<Control>,
        reports: &mpsc::UnboundedSender<Report>,
    ) {
        let this = *self;
        let (log, machine) = (&this.log, &this.machine);
        instance::start(this.spawned, this.spec, id, orders, log, reports, machine);
    }
}
