//! `hlocal start`, assembled: checks ports, binds the router, starts the watchdog, then
//! starts the runtime and the tasks around the supervisor — signals, the watcher, the
//! router and the printer — and returns the exit status.
//!
//! The order matters: everything that can fail on bad input happens before any process
//! starts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::control::ControlRequest;
use crate::control::server;
use crate::control::socket;
use crate::control::terminals::Terminals;
use crate::error::{Error, InputError};
use crate::output::tap::Tap;
use crate::output::{Level, LogSender, Printer, Record};
use crate::ports;
use crate::router::{self, Backends, Listeners};
use crate::supervisor::instance::RunMachine;
use crate::supervisor::spec::StartConfig;
use crate::supervisor::{Event, Supervisor};
use crate::sys::{self, ShutdownSignals, Watchdog, WindowChanges};
use crate::watch::Watcher;

/// The watchdog's grace for the groups it stops when hlocal died abruptly.
const WATCHDOG_GRACE: Duration = Duration::from_secs(3);

pub fn start(mut config: StartConfig) -> Result<i32, Error> {
    // Nothing to start (`all=0`): the supervisor says so and exits; a router bound first
    // would only risk "port in use" for an app that runs nothing.
    if config.types.iter().all(|t| t.count == 0) {
        config.router = None;
    }
    check_open_files(&config)?;
    ports::check_free(planned_ports(&config))?;
    let listeners = match &config.router {
        Some(router) => Some(router::bind(router.port)?),
        None => None,
    };
    let session = session_token();
    let watchdog = Watchdog::spawn(WATCHDOG_GRACE, &session)
        .map_err(|e| Error::startup("cannot start the watchdog process", e))?;
    // An error return from here drops it, which ends it and waits (`Watchdog`'s drop).
    let watchdog = Arc::new(watchdog);
    sys::become_subreaper();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::startup("cannot start the async runtime", e))?;
    // Another hlocal running this app is refused before anything starts.
    let (control_listener, socket_file) =
        runtime.block_on(socket::claim(&config.root, config.socket.as_deref()))?;
    // The watcher walks the tree (up to a second for 100,000 files) before anything runs.
    let watching = start_watcher(&config)?;
    let (log, records) = LogSender::channel();
    let (closed_tx, closed_rx) = oneshot::channel();
    let tap = Tap::new(name_width(&config));
    let printer = Printer::spawn(
        config.style.clone(),
        name_width(&config),
        records,
        tap.clone(),
        closed_tx,
    )
    .map_err(|e| Error::startup("cannot start the printer thread", e))?;
    let control = Control {
        listener: control_listener,
        tap: tap.clone(),
    };
    let code = runtime.block_on(run(
        config,
        listeners,
        control,
        log,
        closed_rx,
        Arc::clone(&watchdog),
        watching,
        &session,
    ));
    // The supervisor is gone, so no command is taken any more: the file goes now, not
    // after the drains below (seconds, for a stalled reader), so that it exists only
    // while an hlocal takes commands on it. Removed later, it could already be the socket
    // of a new `hlocal start` that found this one's refusing connections and replaced it.
    drop(socket_file);
    // Dropping the runtime drops every task, and with them the last log senders.
    runtime.shutdown_timeout(Duration::from_millis(200));
    let deadline = printer.join();
    // Subscribers (`hlocal logs -f`, editors) get what they still hold, `exit` last, in
    // what is left of the time stdout was given: one bound for both, not one each.
    tap.finish(deadline);
    // Everything is stopped: the watchdog's sweep finds nothing and it exits at once.
    // Waited for, so that nothing of hlocal's outlives it (the bound only matters if
    // something of the session had escaped: the watchdog then stops it first).
    watchdog.finish();
    code
}

/// The registry of the `tty` instances' terminals; when there are any, they follow
/// hlocal's terminal's size.
fn terminals(config: &StartConfig) -> Terminals {
    let tty_types: Vec<String> = config
        .types
        .iter()
        .filter(|t| t.tty)
        .map(|t| t.name.clone())
        .collect();
    let terminals = Terminals::new(tty_types.clone());
    if !tty_types.is_empty()
        && let Ok(mut changes) = WindowChanges::install()
    {
        let follow = terminals.clone();
        tokio::spawn(async move {
            while let Some(size) = changes.next().await {
                follow.follow_size(size);
            }
        });
    }
    terminals
}

/// The control socket's listener and the log's tap it reads.
struct Control {
    listener: UnixListener,
    tap: Tap,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    config: StartConfig,
    listeners: Option<Listeners>,
    control: Control,
    log: LogSender,
    stdout_closed: oneshot::Receiver<()>,
    watchdog: Arc<Watchdog>,
    watching: Option<Watching>,
    session: &str,
) -> Result<i32, Error> {
    let (events_tx, events) = mpsc::unbounded_channel();
    let signals = ShutdownSignals::install()
        .map_err(|e| Error::startup("cannot install signal handlers", e))?;
    tokio::spawn(forward_signals(signals, events_tx.clone()));
    tokio::spawn(forward_stdout_closed(stdout_closed, events_tx.clone()));
    tokio::spawn(reap_orphans(Arc::clone(&watchdog)));
    let _watcher = watching.map(|(watcher, changes)| {
        tokio::spawn(forward_changes(changes, events_tx.clone()));
        watcher
    });
    for warning in &config.env_warnings {
        let text = format!("warning: {warning}");
        log.message_at(Level::Warning, None, text).await;
    }
    announce_ports(&config, &log).await;
    let config = Arc::new(config);
    let router = listeners.zip(config.router.clone());
    let (pool_tx, pool_rx) = watch::channel(Backends::default());
    let publish = router.is_some().then_some(pool_tx);
    // The supervisor publishes its first snapshot as it is made (web instances on their
    // way, release phase included), so the router never sees an empty default.
    let (names_tx, names_rx) = watch::channel(Vec::new());
    let terminals = terminals(&config);
    let machine = RunMachine {
        watchdog,
        terminals: terminals.clone(),
    };
    let supervisor = Supervisor::new(Arc::clone(&config), log.clone(), machine, publish, session)
        .publish_names_to(names_tx);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    tokio::spawn(forward_control(control_rx, events_tx.clone()));
    let context = server::Context {
        supervisor: control_tx,
        names: names_rx,
        tap: control.tap,
        hello: hello(&config),
        terminals,
    };
    tokio::spawn(server::serve(control.listener, Arc::new(context)));
    if let Some((listeners, router)) = router {
        tokio::spawn(router::serve(listeners, router, pool_rx, log.clone()));
    }
    let code = supervisor.run(events).await;
    log.send(Record::Exit { code }).await;
    Ok(code)
}

/// File descriptors hlocal needs besides its instances': stdio, the runtime, the
/// printer, the watcher, signals, the watchdog's pipe.
const BASE_FDS: u64 = 64;
/// Per instance: the output pipe (two with `--json`), tokio's pidfd, a readiness probe's
/// socket, and the pipes of a spawn in progress.
const FDS_PER_INSTANCE: u64 = 4;
/// The router's client and backend connections at the least. It may hold up to half the
/// limit (`router/clients.rs`), closing idle connections to make room, so the formation
/// check counts only this floor.
const ROUTER_FDS: u64 = 128;

/// Raises the open-file limit, then refuses a formation that still cannot fit: every
/// instance past the limit would crash at spawn, again and again.
fn check_open_files(config: &StartConfig) -> Result<(), Error> {
    let limit = sys::raise_open_files_limit()
        .ok()
        .or_else(sys::open_files_limit)
        .unwrap_or(u64::MAX);
    let instances = config
        .types
        .iter()
        .map(|t| u64::try_from(t.count).unwrap_or(u64::MAX))
        .fold(u64::from(config.release.is_some()), u64::saturating_add);
    let router = if config.router.is_some() {
        ROUTER_FDS
    } else {
        0
    };
    let needed = instances
        .saturating_mul(FDS_PER_INSTANCE)
        .saturating_add(BASE_FDS + router);
    if needed > limit {
        return Err(InputError::TooManyInstances {
            instances,
            needed,
            limit,
        }
        .into());
    }
    Ok(())
}

/// hlocal inherits the orphans of its apps' processes (it is their subreaper): those
/// that exit are reaped here, so none lingers as a zombie until the shutdown.
async fn reap_orphans(watchdog: Arc<Watchdog>) {
    const EVERY: Duration = Duration::from_secs(1);
    loop {
        tokio::time::sleep(EVERY).await;
        let watchdog = Arc::clone(&watchdog);
        let _ = tokio::task::spawn_blocking(move || watchdog.reap_orphans()).await;
    }
}

/// Signals closer together than this are one request: `timeout -s INT`, some editors
/// and terminals send the same SIGINT to hlocal's pid and to its process group.
const SIGNAL_COALESCE: std::time::Duration = std::time::Duration::from_millis(200);

async fn forward_signals(mut signals: ShutdownSignals, events: mpsc::UnboundedSender<Event>) {
    let mut last: Option<tokio::time::Instant> = None;
    loop {
        let signal = signals.recv().await;
        let now = tokio::time::Instant::now();
        if last.is_some_and(|at| now - at < SIGNAL_COALESCE) {
            continue;
        }
        last = Some(now);
        if events.send(Event::Signal(signal)).is_err() {
            return;
        }
    }
}

async fn forward_stdout_closed(
    closed: oneshot::Receiver<()>,
    events: mpsc::UnboundedSender<Event>,
) {
    if closed.await.is_ok() {
        let _ = events.send(Event::StdoutClosed);
    }
}

/// The watcher and the batches of changed paths it sends.
type Watching = (Watcher, mpsc::Receiver<Vec<PathBuf>>);

fn start_watcher(config: &StartConfig) -> Result<Option<Watching>, Error> {
    let Some(watch) = &config.watch else {
        return Ok(None);
    };
    let (tx, rx) = mpsc::channel(16);
    Ok(Some((Watcher::start(watch.clone(), tx)?, rx)))
}

async fn forward_changes(
    mut changes: mpsc::Receiver<Vec<PathBuf>>,
    events: mpsc::UnboundedSender<Event>,
) {
    while let Some(paths) = changes.recv().await {
        if events.send(Event::FilesChanged(paths)).is_err() {
            return;
        }
    }
}

/// `(instance, port)` for every instance, and the router's public port.
fn planned_ports(config: &StartConfig) -> Vec<(String, u16)> {
    let mut planned: Vec<(String, u16)> = config
        .router
        .iter()
        .map(|r| ("router".to_string(), r.port))
        .collect();
    for spec in &config.types {
        for n in 1..=spec.count {
            planned.push((
                format!("{}.{n}", spec.name),
                ports::instance_port(spec.first_port, n),
            ));
        }
    }
    planned
}

/// The chosen ports are printed at start-up.
async fn announce_ports(config: &StartConfig, log: &LogSender) {
    let planned = planned_ports(config);
    let instances: Vec<String> = planned
        .iter()
        .filter(|(name, _)| name != "router")
        .map(|(name, port)| format!("{name}={port}"))
        .collect();
    if let Some(router) = &config.router {
        let text = format!("router listening on http://localhost:{}", router.port);
        log.message(None, text).await;
    }
    if !instances.is_empty() {
        log.message(None, format!("ports: {}", instances.join(" ")))
            .await;
    }
}

/// Unique to this run of hlocal: its pid and start time.
fn session_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// The longest name the printer will see at start, for padding.
fn name_width(config: &StartConfig) -> usize {
    let instances = planned_ports(config)
        .into_iter()
        .map(|(name, _)| name.len());
    let release = config.release.iter().map(|_| "release.1".len());
    instances.chain(release).max().unwrap_or(0)
}

/// Control requests join the supervisor's other events.
async fn forward_control(
    mut requests: mpsc::UnboundedReceiver<ControlRequest>,
    events: mpsc::UnboundedSender<Event>,
) {
    while let Some(request) = requests.recv().await {
        if events.send(Event::Control(request)).is_err() {
            return;
        }
    }
}

/// Who answers on the control socket: what `hello` returns.
fn hello(config: &StartConfig) -> serde_json::Value {
    let root = std::path::absolute(&config.root).unwrap_or_else(|_| config.root.clone());
    serde_json::json!({
        "pid": std::process::id(),
        "root": root.to_string_lossy(),
        "version": env!("CARGO_PKG_VERSION"),
        "url": config.router.as_ref().map(|r| format!("http://localhost:{}", r.port)),
    })
}
