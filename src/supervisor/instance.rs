//! One run of one instance: spawn `sh -c CMD` in a process group of its own, pump its
//! output to the printer, report readiness, wait for it, stop it on request, and make
//! sure its whole process group is gone before reporting the run finished.
//!
//! A run is a task plus a small handle ([`Run`]) holding the control queue, modelled on
//! watchexec's `Job`. The supervisor decides everything else (restarts, ordering, the
//! router's pool); a run only reports what happened ([`RunEvent`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use regex::Regex;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::ready::{self, Readiness};
use super::shell::shell_command;
use super::state::seconds;
use crate::control::terminals::{Terminal, Terminals};
use crate::output::lines::LineFramer;
use crate::output::{Level, LogSender, Record, Source, Stream};
use crate::sys::{self, MergedOutput, PtyMaster, Signal, Watchdog};

/// Everything needed to spawn one run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub source: Arc<Source>,
    /// The Procfile command as written.
    pub command: String,
    pub root: PathBuf,
    /// Config vars from the env files, then the instance's own (`PORT`, `PS`, …).
    pub env: Arc<Vec<(String, String)>>,
    pub instance_env: Vec<(String, String)>,
    pub port: Option<u16>,
    pub ready: Readiness,
    pub boot_timeout: Duration,
    /// For leftovers of a process that exited on its own: what to send, how long to wait.
    pub stop_signal: Signal,
    pub grace: Duration,
    /// One pipe for stdout and stderr (order kept) rather than two (streams told apart).
    pub merge_output: bool,
    /// A pseudo-terminal of its own (`tty = true`), rather than pipes.
    pub tty: bool,
    /// `FORCE_COLOR=1` and `CLICOLOR_FORCE=1`, unless set already.
    pub force_color: bool,
}

/// Which run of which instance a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunId {
    pub slot: usize,
    pub generation: u64,
}

#[derive(Debug)]
pub enum RunEvent {
    /// The readiness check passed; `addr` is where the app listens, when known.
    Ready { addr: Option<SocketAddr> },
    /// The readiness check did not pass within the boot timeout (R10).
    BootTimeout,
    /// Halfway to the boot timeout (10 s at most), a `web` process listens on `port` but
    /// not yet on its `PORT`: said early, so the user need not wait for the timeout.
    NotYetOnPort { port: u16 },
    /// At the boot timeout, a `web` process listens, but on `port` rather than its
    /// `PORT`: it is not killed for it. `Ready` follows if it binds `PORT` later.
    ListeningElsewhere { port: u16 },
    /// The main process exited, with the status a shell would report.
    Exited { code: i32 },
    /// No process of the run's group is left.
    Finished,
}

#[derive(Debug)]
pub struct Report {
    pub run: RunId,
    pub event: RunEvent,
}

#[derive(Debug, Clone, Copy)]
pub enum Control {
    /// Send `signal` to the group; SIGKILL what is left after `grace`.
    Stop { signal: Signal, grace: Duration },
    /// SIGKILL the group now.
    Kill,
}

impl Control {
    /// The signal the order sends first.
    pub fn signal(self) -> Signal {
        match self {
            Control::Stop { signal, .. } => signal,
            Control::Kill => Signal::Kill,
        }
    }
}

/// The supervisor's handle on a run.
#[derive(Debug)]
pub struct Run {
    pub id: RunId,
    control: mpsc::UnboundedSender<Control>,
}

impl Run {
    /// A handle for run `id`, and the queue its task reads the orders from.
    pub fn channel(id: RunId) -> (Run, mpsc::UnboundedReceiver<Control>) {
        let (control, orders) = mpsc::unbounded_channel();
        (Run { id, control }, orders)
    }

    pub fn send(&self, control: Control) {
        // The run task ends only after reporting `Finished`; a send after that is moot.
        let _ = self.control.send(control);
    }
}

/// A spawned process whose output is not read yet: the supervisor prints `Starting
/// process` before handing it to [`start`], so that line always precedes the app's own.
pub struct Spawned {
    child: Child,
    pid: u32,
    output: Output,
}

enum Output {
    /// `--json` keeps the streams apart, for its `stream` field.
    Split(Option<ChildStdout>, Option<ChildStderr>),
    /// Otherwise one pipe keeps stdout and stderr lines in the order they were written.
    Merged(MergedOutput),
    /// `tty = true`: the pty's master, read for both streams and written by `attach`.
    Terminal(Arc<PtyMaster>),
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// Spawns `sh -c CMD` in its own process group and tells the watchdog about the group.
pub fn spawn(spec: &RunSpec, watchdog: &Watchdog) -> std::io::Result<Spawned> {
    let mut command = command(spec);
    // `None`: the two pipes, taken from the child once spawned.
    let output = if spec.tty {
        let master = sys::spawn_on_pty(&mut command, sys::terminal_size())?;
        Some(Output::Terminal(Arc::new(master)))
    } else if spec.merge_output {
        Some(Output::Merged(sys::merged_output(&mut command)?))
    } else {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        None
    };
    let (mut child, pid) = watchdog.spawn_group(|| {
        let child = command.spawn()?;
        // `None` only once the child was reaped, which nothing did yet; a pid of 0 must
        // never reach the watchdog or `killpg` (it would mean hlocal's own group).
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("the process ended before its pid was known"))?;
        Ok(((child, pid), pid))
    })?;
    // The parent's copies of the pipe's write ends (or the pty's slave) go with
    // `command`, so the reader sees end-of-file when the process (and its children)
    // close theirs.
    drop(command);
    let output = output.unwrap_or_else(|| Output::Split(child.stdout.take(), child.stderr.take()));
    Ok(Spawned { child, pid, output })
}

/// Starts reading the process's output and supervising it; it obeys `orders` (the
/// other end of its [`Run`] handle).
pub fn start(
    spawned: Spawned,
    spec: RunSpec,
    id: RunId,
    orders: mpsc::UnboundedReceiver<Control>,
    log: &LogSender,
    reports: &mpsc::UnboundedSender<Report>,
    machine: &RunMachine,
) {
    let task = RunTask {
        id,
        pid: spawned.pid,
        spec,
        log: log.clone(),
        reports: reports.clone(),
        watchdog: Arc::clone(&machine.watchdog),
        terminals: machine.terminals.clone(),
    };
    tokio::spawn(task.supervise(spawned.child, spawned.output, orders));
}

fn command(spec: &RunSpec) -> Command {
    let mut command = Command::new("sh");
    // As Heroku's Python buildpack does, so Python apps' lines reach the log as they are
    // written instead of in 8 KiB blocks; the shell's or an env file's value wins.
    if std::env::var_os("PYTHONUNBUFFERED").is_none() {
        command.env("PYTHONUNBUFFERED", "true");
    }
    if spec.force_color {
        // The color conventions of Node (chalk, supports-color) and of CLICOLOR tools:
        // colors even though the output is a pipe. A value the user set wins.
        for var in ["FORCE_COLOR", "CLICOLOR_FORCE"] {
            let set = std::env::var_os(var).is_some() || spec.env.iter().any(|(k, _)| k == var);
            if !set {
                command.env(var, "1");
            }
        }
    }
    command
        .arg("-c")
        .arg(shell_command(&spec.command))
        .current_dir(&spec.root)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .envs(spec.instance_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    // On a pty the child leads a session of its own instead, which is also a group.
    if !spec.tty {
        sys::own_process_group(&mut command);
    }
    sys::keep_shell_limit(&mut command);
    command
}

/// What runs share of hlocal's machinery: the watchdog that outlives hlocal, and the
/// registry `hlocal attach` finds the terminals in.
pub struct RunMachine {
    pub watchdog: Arc<Watchdog>,
    pub terminals: Terminals,
}

struct RunTask {
    id: RunId,
    pid: u32,
    spec: RunSpec,
    log: LogSender,
    reports: mpsc::UnboundedSender<Report>,
    watchdog: Arc<Watchdog>,
    terminals: Terminals,
}

/// How long the exit report waits for the pipes to drain, so a process's last lines
/// are printed before `Process exited`. Grandchildren may hold the pipes open; they do
/// not delay the report beyond this.
const DRAIN_WAIT: Duration = Duration::from_millis(200);
const GROUP_POLL: Duration = Duration::from_millis(10);
/// How long processes get to disappear after SIGKILL before they are given up on.
const KILL_WAIT: Duration = Duration::from_secs(2);

impl RunTask {
    async fn supervise(
        self,
        mut child: Child,
        output: Output,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let log_ready = self.log_matcher();
        let mut terminal = None;
        let readers = match output {
            Output::Split(stdout, stderr) => [
                stdout.map(|p| self.spawn_reader(p, Stream::Stdout, log_ready.clone(), None)),
                stderr.map(|p| self.spawn_reader(p, Stream::Stderr, log_ready.clone(), None)),
            ],
            Output::Merged(pipe) => [
                Some(self.spawn_reader(pipe, Stream::Merged, log_ready.clone(), None)),
                None,
            ],
            Output::Terminal(master) => {
                let name = Arc::clone(&self.spec.source.name);
                let shown = self.terminals.add(name, Arc::clone(&master));
                terminal = Some(Arc::clone(&shown));
                let output = master.reader();
                let ready = log_ready.clone();
                let reader = self.spawn_reader(output, Stream::Merged, ready, Some(shown));
                [Some(reader), None]
            }
        };
        // `Spawned` needs no probe: the supervisor counts the instance up at once.
        let probe = (!matches!(self.spec.ready, Readiness::Spawned))
            .then(|| self.spawn_probe(log_ready.as_ref().map(|m| Arc::clone(&m.notify))));
        let mut stopping: Option<Deadline> = None;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                Some(order) = control.recv() => stopping = Some(self.obey(order, stopping)),
                () = deadline_passed(stopping.as_ref()) => {
                    if let Some(d) = stopping {
                        stopping = Some(self.escalate(d).await);
                    }
                }
            }
        };
        if let Some(probe) = probe {
            probe.abort();
        }
        let code = status.map_or(1, sys::exit_code);
        // The exit is reported once nothing of the group is left: `sh -c 'cd x && app'`
        // exits at the first SIGTERM while `app` may still be running its handler.
        self.clear_group(stopping, &mut control).await;
        self.watchdog.forget_group(self.pid);
        drain(readers).await;
        if let Some(terminal) = terminal {
            self.terminals.remove(&self.spec.source.name, &terminal);
        }
        self.report(RunEvent::Exited { code });
        self.report(RunEvent::Finished);
    }

    fn report(&self, event: RunEvent) {
        let _ = self.reports.send(Report {
            run: self.id,
            event,
        });
    }

    fn obey(&self, order: Control, stopping: Option<Deadline>) -> Deadline {
        match order {
            Control::Stop { signal, grace } => {
                stopping.unwrap_or_else(|| self.begin_stop(signal, grace))
            }
            Control::Kill => {
                sys::signal_group(self.pid, Signal::Kill);
                let killed =
                    stopping.unwrap_or_else(|| self.begin_stop(Signal::Kill, Duration::ZERO));
                Deadline {
                    at: Instant::now() + KILL_WAIT,
                    escalated: true,
                    ..killed
                }
            }
        }
    }

    fn begin_stop(&self, signal: Signal, grace: Duration) -> Deadline {
        sys::signal_group(self.pid, signal);
        Deadline {
            at: Instant::now() + grace,
            signal,
            grace,
            escalated: false,
        }
    }

    /// The grace period ran out: Heroku's R12, then SIGKILL.
    async fn escalate(&self, deadline: Deadline) -> Deadline {
        let name = Some(&self.spec.source.name);
        let r12 = format!(
            "Error R12 (Exit timeout) -> At least one process failed to exit within {} of {}",
            seconds(deadline.grace),
            deadline.signal
        );
        self.log.message_at(Level::Error, name, r12).await;
        self.log
            .message(name, "Stopping remaining processes with SIGKILL")
            .await;
        sys::signal_group(self.pid, Signal::Kill);
        Deadline {
            at: Instant::now() + KILL_WAIT,
            escalated: true,
            ..deadline
        }
    }

    /// After the main process exited, nothing of its group may outlive the run: leftover
    /// children get the same signal → grace → SIGKILL as a stop (Heroku tears a dyno down
    /// whole). A process that survives SIGKILL (stuck in the kernel) is given up on after
    /// `KILL_WAIT`, rather than hanging hlocal. Orders still count meanwhile: a second
    /// Ctrl-C kills the leftovers at once instead of waiting out the grace period.
    async fn clear_group(
        &self,
        stopping: Option<Deadline>,
        control: &mut mpsc::UnboundedReceiver<Control>,
    ) {
        if !group_alive(self.pid).await {
            return;
        }
        let mut deadline = match stopping {
            Some(deadline) => deadline,
            None => {
                // The head ended by itself and left processes in its group: they are
                // stopped as the instance would be, and the log says so, or an R12
                // after the grace would name a signal nobody was told of.
                let signal = self.spec.stop_signal;
                let text = format!("Stopping remaining processes with {signal}");
                self.log.message(Some(&self.spec.source.name), text).await;
                self.begin_stop(signal, self.spec.grace)
            }
        };
        while group_alive(self.pid).await {
            if Instant::now() >= deadline.at {
                if deadline.escalated {
                    return;
                }
                deadline = self.escalate(deadline).await;
            }
            tokio::select! {
                Some(order) = control.recv() => {
                    deadline = self.obey(order, Some(deadline));
                }
                () = tokio::time::sleep(GROUP_POLL) => {}
            }
        }
    }

    fn spawn_reader<R>(
        &self,
        pipe: R,
        stream: Stream,
        ready: Option<Arc<LogReady>>,
        terminal: Option<Arc<Terminal>>,
    ) -> JoinHandle<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let source = Arc::clone(&self.spec.source);
        let log = self.log.clone();
        tokio::spawn(pump(
            pipe,
            Pump {
                source,
                stream,
                log,
                ready,
                terminal,
            },
        ))
    }

    fn log_matcher(&self) -> Option<Arc<LogReady>> {
        match &self.spec.ready {
            Readiness::Log(regex) => Some(Arc::new(LogReady {
                regex: regex.clone(),
                matched: AtomicBool::new(false),
                notify: Arc::new(Notify::new()),
            })),
            _ => None,
        }
    }

    /// Reports `Ready` once the readiness check passes, or `BootTimeout`.
    fn spawn_probe(&self, log_line: Option<Arc<Notify>>) -> JoinHandle<()> {
        let (ready, port, pgid) = (self.spec.ready.clone(), self.spec.port, self.pid);
        let (reports, id, timeout) = (self.reports.clone(), self.id, self.spec.boot_timeout);
        let report = move |event| {
            let _ = reports.send(Report { run: id, event });
        };
        tokio::spawn(async move {
            if let (Readiness::Port, Some(port)) = (&ready, port) {
                return port_readiness(port, pgid, timeout, report).await;
            }
            let check = async {
                match (ready, port) {
                    (Readiness::Http(path), Some(port)) => {
                        Some(ready::http_answers(port, &path).await)
                    }
                    (Readiness::Log(_), _) => {
                        if let Some(notify) = log_line {
                            notify.notified().await;
                        }
                        None
                    }
                    _ => None,
                }
            };
            let event = match tokio::time::timeout(timeout, check).await {
                Ok(addr) => RunEvent::Ready { addr },
                Err(_) => RunEvent::BootTimeout,
            };
            report(event);
        })
    }
}

/// A `web` process is up once its group listens on `PORT`. One that listens on another
/// port (a dev server with its own, `-p 3000`) is pointed out from halfway to the boot
/// timeout on (at most [`ready::HINT_AFTER`] in); at the timeout it is reported so and kept, and
/// watched (slowly) for a late bind on `PORT`; one that listens nowhere is R10.
async fn port_readiness(port: u16, pgid: u32, timeout: Duration, report: impl Fn(RunEvent)) {
    let mut bound = std::pin::pin!(ready::port_bound(port, pgid, ready::PORT_POLL));
    let hint = (timeout / 2).min(ready::HINT_AFTER);
    if let Ok(addr) = tokio::time::timeout(hint, &mut bound).await {
        return report(RunEvent::Ready { addr: Some(addr) });
    }
    let rest = async {
        tokio::select! {
            addr = &mut bound => addr,
            never = point_out(pgid, &report) => match never {},
        }
    };
    if let Ok(addr) = tokio::time::timeout(timeout.saturating_sub(hint), rest).await {
        return report(RunEvent::Ready { addr: Some(addr) });
    }
    let Some(elsewhere) = ready::listening_elsewhere(pgid).await else {
        return report(RunEvent::BootTimeout);
    };
    report(RunEvent::ListeningElsewhere { port: elsewhere });
    let addr = ready::port_bound(port, pgid, ready::LATE_BIND_POLL).await;
    report(RunEvent::Ready { addr: Some(addr) });
}

/// Reports, once, the port a booting web process listens on instead of its `PORT` as
/// soon as one shows; never ends (the caller's timeout or `PORT` does).
async fn point_out(pgid: u32, report: &impl Fn(RunEvent)) -> std::convert::Infallible {
    loop {
        if let Some(port) = ready::listening_elsewhere(pgid).await {
            report(RunEvent::NotYetOnPort { port });
            return std::future::pending().await;
        }
        tokio::time::sleep(ready::HINT_POLL).await;
    }
}

/// A stop in progress: when to escalate to SIGKILL, and what to say then.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    signal: Signal,
    grace: Duration,
    escalated: bool,
}

async fn deadline_passed(deadline: Option<&Deadline>) {
    match deadline {
        Some(d) if !d.escalated => sleep_until(d.at).await,
        _ => std::future::pending().await,
    }
}

/// Waits (briefly) for the readers to reach end of file.
async fn drain(readers: [Option<JoinHandle<()>>; 2]) {
    let all = async {
        for reader in readers.into_iter().flatten() {
            let _ = reader.await;
        }
    };
    let _ = tokio::time::timeout(DRAIN_WAIT, all).await;
}

/// `ready = { log = "regex" }`: the first matching line, on either stream, wakes the probe.
struct LogReady {
    regex: Regex,
    matched: AtomicBool,
    notify: Arc<Notify>,
}

impl LogReady {
    fn check(&self, lines: &[u8]) {
        if self.matched.load(Ordering::Relaxed) {
            return;
        }
        let text = String::from_utf8_lossy(lines);
        if text.lines().any(|line| self.regex.is_match(line)) {
            self.matched.store(true, Ordering::Relaxed);
            self.notify.notify_one();
        }
    }
}

/// Where a pump's output goes.
struct Pump {
    source: Arc<Source>,
    stream: Stream,
    log: LogSender,
    ready: Option<Arc<LogReady>>,
    /// A pty's output also goes to an attached client, and a prompt is announced.
    terminal: Option<Arc<Terminal>>,
}

/// How long a terminal's unfinished line stays unchanged before the instance is
/// announced as waiting for input (a debugger's prompt).
const PROMPT_QUIET: Duration = Duration::from_millis(500);

/// Reads a pipe (or a pty) to its end, sending whole lines to the printer.
async fn pump<R: AsyncRead + Unpin>(mut pipe: R, to: Pump) {
    let mut framer = match to.terminal {
        Some(_) => LineFramer::terminal(),
        None => LineFramer::default(),
    };
    let mut announced = false;
    loop {
        let start = framer.partial().len();
        let watch_prompt = to.terminal.is_some() && !announced && start > 0;
        let Some(read) = read_unless_quiet(&mut pipe, framer.buffer(), watch_prompt).await else {
            announced = true;
            to.announce_prompt().await;
            continue;
        };
        match read {
            Ok(n) if n > 0 => announced = false,
            _ => break,
        }
        if let Some(terminal) = &to.terminal {
            terminal.show(&framer.partial()[start..]);
        }
        while let Some(lines) = framer.take_lines() {
            to.send(lines).await;
        }
        if let Some(terminal) = &to.terminal {
            terminal.keep_partial(framer.partial());
        }
    }
    if let Some(rest) = framer.finish() {
        to.send(rest).await;
    }
}

/// One read into `buffer`; `None` when `watch_prompt` and nothing came for
/// [`PROMPT_QUIET`] (a read that did not complete has taken nothing).
async fn read_unless_quiet<R: AsyncRead + Unpin>(
    pipe: &mut R,
    buffer: &mut bytes::BytesMut,
    watch_prompt: bool,
) -> Option<std::io::Result<usize>> {
    let read = pipe.read_buf(buffer);
    if !watch_prompt {
        return Some(read.await);
    }
    tokio::time::timeout(PROMPT_QUIET, read).await.ok()
}

impl Pump {
    async fn send(&self, lines: bytes::Bytes) {
        if let Some(ready) = &self.ready {
            ready.check(&lines);
        }
        let record = Record::Output {
            source: Arc::clone(&self.source),
            stream: self.stream,
            lines,
        };
        self.log.send(record).await;
    }

    async fn announce_prompt(&self) {
        let name = &self.source.name;
        let text = format!("waiting for input — hlocal attach {name}");
        self.log.message(Some(name), text).await;
    }
}

/// Whether anything of the group is left. The answer may need a walk of `/proc`
/// (zombies answer the one-syscall probe too), so it runs off the runtime's workers.
async fn group_alive(pgid: u32) -> bool {
    ready::blocking(move || Some(sys::group_alive(pgid)))
        .await
        .unwrap_or(false)
}
