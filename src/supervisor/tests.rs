//! The supervisor's policy in paused time: a host that spawns nothing hands each run's
//! order queue and report sender to the test, which plays the runs (`Ready`, `Exited`,
//! `Finished`) and reads what hlocal prints. Each test takes milliseconds, however many
//! seconds of back-off or grace it goes through.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::host::{Answer, Host, Process};
use super::instance::{Control, Report, RunEvent, RunId, RunSpec};
use super::ready::Readiness;
use super::spec::{ReleaseSpec, StartConfig, TypeSpec, TypeWatch};
use super::{Event, Supervisor};
use crate::control::ControlRequest;
use crate::control::protocol::{Command, ErrorKind, Problem};
use crate::options::{LogFormat, RestartPolicy};
use crate::output::{LogSender, Marker, OutputStyle, Record, Records};
use crate::router::Backends;
use crate::sys::{PortHolder, Signal};

/// Longer than any wait the supervisor schedules: a line that does not come by then
/// never will (paused time gets there at once).
const NEVER: Duration = Duration::from_secs(3600);
/// Where preboot's new runs go.
const PREBOOT_PORT: u16 = 6000;
/// Held by another program on the test host: `web.3`'s port when `web` is the first type.
const TAKEN_PORT: u16 = 5002;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A run the supervisor started: how to report about it, what it was told.
struct Started {
    id: RunId,
    orders: mpsc::UnboundedReceiver<Control>,
    reports: mpsc::UnboundedSender<Report>,
}

struct TestHost {
    started: mpsc::UnboundedSender<Started>,
    next_pid: AtomicU32,
}

struct TestProcess {
    pid: u32,
    started: mpsc::UnboundedSender<Started>,
}

impl Host for TestHost {
    fn spawn(&self, _spec: RunSpec) -> std::io::Result<Box<dyn Process>> {
        Ok(Box::new(TestProcess {
            pid: self.next_pid.fetch_add(1, Ordering::Relaxed),
            started: self.started.clone(),
        }))
    }

    fn check_free(&self, wanted: Vec<(String, u16)>) -> Answer<Result<(), String>> {
        let taken = wanted.into_iter().find(|&(_, port)| port == TAKEN_PORT);
        Box::pin(async move {
            taken.map_or(Ok(()), |(name, port)| {
                Err(format!(
                    "port {port} ({name}) is already in use by pid 4242"
                ))
            })
        })
    }

    fn port_holders(&self, _port: u16) -> Answer<Vec<Option<PortHolder>>> {
        Box::pin(async { Vec::new() })
    }

    fn stop_process(&self, _pid: u32, _grace: Duration) -> Answer<()> {
        Box::pin(async {})
    }

    fn sweep(&self, _grace: Duration) -> Answer<()> {
        Box::pin(async {})
    }

    fn preboot_port(&self, _current: u16, _home: u16) -> Answer<u16> {
        Box::pin(async { PREBOOT_PORT })
    }
}

impl Process for TestProcess {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn start(
        self: Box<Self>,
        id: RunId,
        orders: mpsc::UnboundedReceiver<Control>,
        reports: &mpsc::UnboundedSender<Report>,
    ) {
        let started = Started {
            id,
            orders,
            reports: reports.clone(),
        };
        let _ = self.started.send(started);
    }
}

fn process(name: &str, index: usize, ready: Readiness) -> TypeSpec {
    TypeSpec {
        name: name.into(),
        command: format!("run-{name}"),
        index,
        count: 1,
        first_port: 5000 + 100 * u16::try_from(index).unwrap_or(0),
        restart: RestartPolicy::OnFailure,
        stop_signal: Signal::Term,
        stop_timeout: secs(5),
        ready,
        watch: TypeWatch::Inherit,
        depends_on: Vec::new(),
        tty: false,
        force_color: false,
    }
}

fn worker(name: &str, index: usize) -> TypeSpec {
    process(name, index, Readiness::Spawned)
}

fn config(types: Vec<TypeSpec>) -> StartConfig {
    StartConfig {
        root: PathBuf::from("."),
        env: Arc::new(Vec::new()),
        env_warnings: Vec::new(),
        types,
        release: None,
        router: None,
        style: OutputStyle {
            format: LogFormat::Plain,
            json: false,
            color: false,
            timestamps: false,
        },
        boot_timeout: secs(60),
        timeout: secs(5),
        exit_on_exit: false,
        dyno: false,
        preboot: false,
        watch_all: false,
        watch: None,
        socket: None,
        force_color: false,
    }
}

/// hlocal under test: its printed lines, its runs, its exit status.
struct App {
    records: Records,
    events: mpsc::UnboundedSender<Event>,
    started: mpsc::UnboundedReceiver<Started>,
    runs: HashMap<RunId, Started>,
    exit: JoinHandle<i32>,
}

impl App {
    fn start(config: StartConfig) -> App {
        let (log, records) = LogSender::channel();
        let (started_tx, started) = mpsc::unbounded_channel();
        let host = TestHost {
            started: started_tx,
            next_pid: AtomicU32::new(100),
        };
        let supervisor =
            Supervisor::on_host(Arc::new(config), log, Arc::new(host), None, "test".into());
        let (events, events_rx) = mpsc::unbounded_channel();
        App {
            records,
            events,
            started,
            runs: HashMap::new(),
            exit: tokio::spawn(supervisor.run(events_rx)),
        }
    }

    /// The next line hlocal prints of its own (app output aside), `name: text`.
    async fn line(&mut self) -> String {
        loop {
            let record = tokio::time::timeout(NEVER, self.records.recv()).await;
            let record = record.ok().flatten().expect("hlocal printed nothing more");
            if let Some(line) = own_line(record) {
                return line;
            }
        }
    }

    /// The lines printed so far and not read yet.
    fn printed(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.records.try_recv())
            .filter_map(own_line)
            .collect()
    }

    /// The lines up to and including `last`.
    async fn lines_until(&mut self, last: &str) -> Vec<String> {
        let mut lines = Vec::new();
        while lines.last().is_none_or(|l: &String| l != last) {
            lines.push(self.line().await);
        }
        lines
    }

    /// The next run the supervisor starts.
    async fn run(&mut self) -> RunId {
        let started = tokio::time::timeout(NEVER, self.started.recv()).await;
        let started = started.ok().flatten().expect("no run was started");
        let id = started.id;
        self.runs.insert(id, started);
        id
    }

    /// No run was started by now.
    fn no_run_started(&mut self) -> bool {
        self.started.try_recv().is_err()
    }

    fn report(&self, id: RunId, event: RunEvent) {
        let _ = self.runs[&id].reports.send(Report { run: id, event });
    }

    /// The run's main process exited with `code` and its group is gone.
    fn exit(&self, id: RunId, code: i32) {
        self.report(id, RunEvent::Exited { code });
        self.report(id, RunEvent::Finished);
    }

    /// The orders the run got so far.
    fn orders(&mut self, id: RunId) -> Vec<String> {
        let orders = &mut self.runs.get_mut(&id).expect("a started run").orders;
        std::iter::from_fn(|| orders.try_recv().ok())
            .map(|order| match order {
                Control::Stop { signal, grace } => format!("stop {signal} {}s", grace.as_secs()),
                Control::Kill => "kill".into(),
            })
            .collect()
    }

    /// Asks what `hlocal scale` asks; the supervisor's answer.
    async fn scale(&self, formation: &[(&str, usize)]) -> Result<Value, Problem> {
        let formation = formation.iter().map(|&(t, n)| (t.to_string(), n)).collect();
        self.ask(Command::Scale { formation }).await
    }

    /// Asks what a control command asks; the supervisor's answer.
    async fn ask(&self, command: Command) -> Result<Value, Problem> {
        let (reply, answer) = oneshot::channel();
        let _ = self
            .events
            .send(Event::Control(ControlRequest { command, reply }));
        let answer = tokio::time::timeout(NEVER, answer).await;
        answer.ok().and_then(Result::ok).expect("no answer")
    }

    fn signal(&self, signal: Signal) {
        let _ = self.events.send(Event::Signal(signal));
    }

    async fn status(self) -> i32 {
        let exit = tokio::time::timeout(NEVER, self.exit).await;
        exit.expect("hlocal did not exit")
            .expect("the supervisor panicked")
    }
}

fn own_line(record: Record) -> Option<String> {
    match record {
        Record::Message { about, text, .. } => {
            Some(about.map_or(text.clone(), |name| format!("{name}: {text}")))
        }
        Record::State(change) => Some(format!("{}: {}", change.name, change.text)),
        Record::Marker(Marker::Ready { .. }) => Some("ready".into()),
        Record::Marker(marker) => Some(format!("{}: {}", marker.kind(), marker.text())),
        Record::Output { .. } | Record::Router(_) | Record::Exit { .. } => None,
    }
}

/// Lets the supervisor do everything it can do now (and at every timer due before `by`).
async fn settle_for(by: Duration) {
    tokio::time::sleep(by).await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_restarts_at_once_then_after_a_back_off_doubling_to_thirty_seconds() {
    let mut app = App::start(config(vec![worker("worker", 0)]));
    let mut run = app.run().await;
    app.lines_until("ready").await;
    let mut waits = Vec::new();
    for _ in 0..8 {
        app.exit(run, 1);
        let crashed = Instant::now();
        run = app.run().await;
        waits.push(crashed.elapsed().as_secs());
    }
    assert_eq!(waits, [0, 1, 2, 4, 8, 16, 30, 30]);
    let said: Vec<String> = app
        .printed()
        .into_iter()
        .filter_map(|line| Some(line.split_once("restarting in ")?.1.to_string()))
        .collect();
    assert_eq!(said, ["1s", "2s", "4s", "8s", "16s", "30s", "30s"]);
}

#[tokio::test(start_paused = true)]
async fn a_crash_prints_its_status_the_state_and_the_wait() {
    let mut app = App::start(config(vec![worker("worker", 0)]));
    let first = app.run().await;
    app.lines_until("ready").await;
    app.exit(first, 1);
    let second = app.run().await;
    assert_eq!(
        app.lines_until("worker.1: State changed from starting to up")
            .await,
        [
            "worker.1: Process exited with status 1",
            "worker.1: State changed from up to crashed",
            "worker.1: State changed from crashed to starting",
            "worker.1: Starting process with command `run-worker`",
            "worker.1: State changed from starting to up",
        ]
    );
    app.exit(second, 1);
    app.lines_until("worker.1: State changed from up to crashed")
        .await;
    assert_eq!(app.line().await, "worker.1: restarting in 1s");
}

#[tokio::test(start_paused = true)]
async fn a_run_up_for_sixty_seconds_resets_the_back_off() {
    let mut app = App::start(config(vec![worker("worker", 0)]));
    let mut run = app.run().await;
    for _ in 0..4 {
        app.exit(run, 1);
        run = app.run().await;
    }
    settle_for(secs(60)).await;
    app.exit(run, 1);
    let crashed = Instant::now();
    app.run().await;
    assert_eq!(crashed.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn restart_policies_decide_after_exit_0_and_after_a_crash() {
    let cases = [
        (RestartPolicy::OnFailure, 0, false),
        (RestartPolicy::OnFailure, 1, true),
        (RestartPolicy::Always, 0, true),
        (RestartPolicy::Never, 1, false),
    ];
    for (policy, code, restarts) in cases {
        let mut spec = worker("worker", 0);
        spec.restart = policy;
        let mut app = App::start(config(vec![spec]));
        let run = app.run().await;
        app.exit(run, code);
        settle_for(secs(1)).await;
        assert_eq!(
            !app.no_run_started(),
            restarts,
            "{policy:?} after exit {code}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn hlocal_exits_with_the_first_failure_once_everything_ended() {
    let (mut a, mut b) = (worker("a", 0), worker("b", 1));
    a.restart = RestartPolicy::Never;
    b.restart = RestartPolicy::Never;
    let mut app = App::start(config(vec![a, b]));
    let (a, b) = (app.run().await, app.run().await);
    app.exit(b, 3);
    settle_for(secs(1)).await;
    app.exit(a, 4);
    assert_eq!(app.status().await, 3);
}

#[tokio::test(start_paused = true)]
async fn watching_an_app_that_ended_waits_for_a_change_instead_of_exiting() {
    let mut settings = config(vec![worker("a", 0)]);
    watch_everything(&mut settings);
    let mut app = App::start(settings);
    let first = app.run().await;
    app.exit(first, 0);
    app.lines_until("a.1: waiting for a file change to run again")
        .await;
    settle_for(secs(3600)).await;
    assert!(!app.exit.is_finished(), "hlocal exited while watching");
    let _ = app.events.send(Event::FilesChanged(vec!["job.py".into()]));
    let second = app.run().await;
    app.exit(second, 0);
    app.lines_until("a.1: waiting for a file change to run again")
        .await;
    app.signal(Signal::Int);
    assert_eq!(app.status().await, 0);
}

#[tokio::test(start_paused = true)]
async fn exit_0_of_everything_is_status_0() {
    let mut app = App::start(config(vec![worker("a", 0)]));
    let a = app.run().await;
    app.exit(a, 0);
    assert_eq!(app.status().await, 0);
}

#[tokio::test(start_paused = true)]
async fn exit_on_exit_stops_the_rest_and_returns_the_first_status() {
    let mut settings = config(vec![worker("a", 0), worker("b", 1)]);
    settings.exit_on_exit = true;
    let mut app = App::start(settings);
    let (a, b) = (app.run().await, app.run().await);
    app.exit(a, 3);
    assert_eq!(
        app.lines_until("b.1: Stopping all processes with SIGTERM")
            .await
            .last()
            .map(String::as_str),
        Some("b.1: Stopping all processes with SIGTERM")
    );
    assert_eq!(app.orders(b), ["stop SIGTERM 5s"]);
    app.exit(b, 143);
    assert_eq!(app.status().await, 3);
}

/// `-w`: every type restarts on any change.
fn watch_everything(settings: &mut StartConfig) {
    settings.watch_all = true;
    settings.watch = Some(crate::watch::WatchConfig {
        root: ".".into(),
        paths: Vec::new(),
        debounce: Duration::from_millis(200),
        ignore: Vec::new(),
    });
}

fn db_and_web() -> StartConfig {
    let mut web = process("web", 1, Readiness::Port);
    web.depends_on = vec![0];
    config(vec![process("db", 0, Readiness::Port), web])
}

#[tokio::test(start_paused = true)]
async fn a_dependent_starts_once_its_dependency_is_up() {
    let mut app = App::start(db_and_web());
    let db = app.run().await;
    settle_for(secs(30)).await;
    assert!(app.no_run_started(), "web started before db was up");
    app.report(db, RunEvent::Ready { addr: None });
    app.run().await;
    assert_eq!(
        app.lines_until("web.1: Starting process with command `run-web`")
            .await,
        [
            "db.1: Starting process with command `run-db`",
            "db.1: State changed from starting to up",
            "web.1: Starting process with command `run-web`",
        ]
    );
}

/// `db_and_web` up, then Ctrl-C: web is stopping, db waits for it.
async fn db_and_web_stopping() -> (App, RunId, RunId) {
    let mut app = App::start(db_and_web());
    let db = app.run().await;
    app.report(db, RunEvent::Ready { addr: None });
    let web = app.run().await;
    app.report(web, RunEvent::Ready { addr: None });
    app.lines_until("ready").await;
    app.signal(Signal::Int);
    app.lines_until("web.1: Stopping all processes with SIGTERM")
        .await;
    (app, db, web)
}

#[tokio::test(start_paused = true)]
async fn dependents_stop_before_their_dependencies() {
    let (mut app, db, web) = db_and_web_stopping().await;
    settle_for(secs(30)).await;
    assert_eq!(
        app.orders(db),
        Vec::<String>::new(),
        "db stopped before web"
    );
    app.exit(web, 143);
    app.lines_until("db.1: Stopping all processes with SIGTERM")
        .await;
    assert_eq!(app.orders(db), ["stop SIGTERM 5s"]);
    app.exit(db, 0);
    assert_eq!(app.status().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_second_ctrl_c_kills_everything_and_returns_130() {
    let mut app = App::start(config(vec![worker("a", 0)]));
    let a = app.run().await;
    app.lines_until("ready").await;
    app.signal(Signal::Int);
    app.lines_until("a.1: Stopping all processes with SIGTERM")
        .await;
    app.signal(Signal::Int);
    assert_eq!(
        app.line().await,
        "Received SIGINT again, killing all processes"
    );
    assert_eq!(app.orders(a), ["stop SIGTERM 5s", "kill"]);
    app.exit(a, 137);
    assert_eq!(
        app.lines_until("a.1: State changed from stopping to down")
            .await,
        [
            "a.1: Process exited with status 137",
            "a.1: State changed from stopping to down"
        ]
    );
    assert_eq!(app.status().await, 130);
}

#[tokio::test(start_paused = true)]
async fn a_second_ctrl_c_stops_what_waited_for_its_dependents_with_sigkill() {
    let (mut app, db, web) = db_and_web_stopping().await;
    app.signal(Signal::Int);
    assert_eq!(
        app.lines_until("db.1: Stopping all processes with SIGKILL")
            .await,
        [
            "Received SIGINT again, killing all processes",
            "db.1: Stopping all processes with SIGKILL"
        ]
    );
    assert_eq!(app.orders(db), ["kill"]);
    app.exit(db, 137);
    app.lines_until("db.1: State changed from stopping to down")
        .await;
    app.exit(web, 137);
    app.lines_until("web.1: State changed from stopping to down")
        .await;
    assert_eq!(app.status().await, 130);
}

#[tokio::test(start_paused = true)]
async fn preboot_stops_the_old_run_only_once_the_new_one_is_up() {
    let mut settings = config(vec![process("web", 0, Readiness::Port)]);
    settings.preboot = true;
    watch_everything(&mut settings);
    let mut app = App::start(settings);
    let old = app.run().await;
    app.report(old, RunEvent::Ready { addr: None });
    app.lines_until("ready").await;
    let _ = app.events.send(Event::FilesChanged(vec!["app.py".into()]));
    let new = app.run().await;
    settle_for(secs(30)).await;
    assert_eq!(app.orders(old), Vec::<String>::new());
    app.report(new, RunEvent::Ready { addr: None });
    assert_eq!(
        app.lines_until("web.1: Preboot: the new process is up; stopping the old one with SIGTERM")
            .await,
        [
            "reloading: app.py changed",
            "Restarting web.1: app.py changed",
            "web.1: Preboot: starting a new process on port 6000; the old one serves until it is up",
            "web.1: State changed from up to starting",
            "web.1: Starting process with command `run-web`",
            "web.1: State changed from starting to up",
            "web.1: Preboot: the new process is up; stopping the old one with SIGTERM",
        ]
    );
    assert_eq!(app.orders(old), ["stop SIGTERM 5s"]);
}

#[tokio::test(start_paused = true)]
async fn changes_while_the_old_run_stops_for_a_restart_join_that_restart() {
    let mut settings = config(vec![worker("worker", 0)]);
    watch_everything(&mut settings);
    let mut app = App::start(settings);
    let old = app.run().await;
    app.lines_until("ready").await;
    let _ = app.events.send(Event::FilesChanged(vec!["app.py".into()]));
    app.lines_until("worker.1: Stopping all processes with SIGTERM")
        .await;
    for later in ["app.py", "lib.py"] {
        let _ = app.events.send(Event::FilesChanged(vec![later.into()]));
    }
    settle_for(secs(1)).await;
    assert_eq!(app.printed(), Vec::<String>::new());
    app.exit(old, 143);
    app.run().await;
    assert!(app.no_run_started());
    // Once the new run is going, a change is a new cycle again.
    app.lines_until("worker.1: State changed from starting to up")
        .await;
    let _ = app.events.send(Event::FilesChanged(vec!["app.py".into()]));
    app.lines_until("reloading: app.py changed").await;
}

#[tokio::test(start_paused = true)]
async fn hlocal_start_of_a_stopped_instance_says_it_leaves_down() {
    let mut app = App::start(config(vec![worker("worker", 0)]));
    let run = app.run().await;
    app.lines_until("ready").await;
    let names = || vec!["worker.1".to_string()];
    let stopped = app.ask(Command::Stop { names: names() }).await;
    assert!(stopped.is_ok(), "{stopped:?}");
    app.exit(run, 143);
    app.lines_until("worker.1: State changed from stopping to down")
        .await;
    let started = app.ask(Command::Start { names: names() }).await;
    assert!(started.is_ok(), "{started:?}");
    app.run().await;
    assert_eq!(
        app.lines_until("worker.1: Starting process with command `run-worker`")
            .await,
        [
            "worker.1: State changed from down to starting",
            "worker.1: Starting process with command `run-worker`",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn hlocal_stop_of_a_crashed_instance_puts_it_down() {
    // `other` keeps hlocal running once `worker` has crashed for good.
    let mut app = App::start(config(vec![worker("worker", 0), worker("other", 1)]));
    let run = app.run().await;
    app.run().await;
    app.exit(run, 127);
    app.lines_until("worker.1: command not found: run-worker")
        .await;
    let names = vec!["worker.1".to_string()];
    let stopped = app.ask(Command::Stop { names }).await;
    assert!(stopped.is_ok(), "{stopped:?}");
    assert_eq!(
        app.line().await,
        "worker.1: State changed from crashed to down"
    );
    settle_for(secs(30)).await;
    assert!(app.no_run_started());
}

#[tokio::test(start_paused = true)]
async fn a_command_that_cannot_run_is_not_restarted_but_one_that_ran_is() {
    let mut app = App::start(config(vec![worker("worker", 0)]));
    let run = app.run().await;
    app.exit(run, 127);
    app.lines_until("worker.1: command not found: run-worker")
        .await;
    settle_for(secs(30)).await;
    assert!(app.no_run_started());
    assert_eq!(app.status().await, 127);

    let mut app = App::start(config(vec![worker("worker", 0)]));
    let run = app.run().await;
    settle_for(secs(5)).await;
    app.exit(run, 127);
    app.run().await;
    let said = app.printed();
    assert!(
        !said.iter().any(|l| l.contains("command not found")),
        "{said:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_waiting_out_its_back_off_is_down_after_shutdown() {
    let mut app = App::start(config(vec![worker("worker", 0)]));
    let run = app.run().await;
    app.exit(run, 1);
    let run = app.run().await;
    app.exit(run, 1);
    app.lines_until("worker.1: restarting in 1s").await;
    app.signal(Signal::Int);
    assert_eq!(
        app.lines_until("worker.1: State changed from crashed to down")
            .await,
        [
            "Received SIGINT, stopping all processes",
            "worker.1: State changed from crashed to down",
        ]
    );
    assert_eq!(app.status().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_boot_timeout_kills_the_run_and_counts_as_a_crash() {
    let mut app = App::start(config(vec![process("web", 0, Readiness::Port)]));
    let run = app.run().await;
    app.report(run, RunEvent::BootTimeout);
    app.lines_until("web.1: Stopping process with SIGKILL")
        .await;
    assert_eq!(app.orders(run), ["kill"]);
    app.exit(run, 137);
    app.lines_until("web.1: State changed from starting to crashed")
        .await;
    app.run().await;
}

fn with_release() -> StartConfig {
    let mut settings = config(vec![worker("worker", 0)]);
    settings.release = Some(ReleaseSpec {
        command: "migrate".into(),
        index: 1,
        stop_signal: Signal::Term,
        stop_timeout: secs(5),
    });
    settings
}

#[tokio::test(start_paused = true)]
async fn a_failed_release_starts_nothing_and_is_hlocal_s_status() {
    let mut app = App::start(with_release());
    let release = app.run().await;
    app.exit(release, 2);
    assert_eq!(
        app.lines_until("Release phase failed with status 2, not starting the app")
            .await,
        [
            "release.1: Starting process with command `migrate`",
            "release.1: State changed from starting to up",
            "release.1: Process exited with status 2",
            "release.1: State changed from up to crashed",
            "Release phase failed with status 2, not starting the app",
        ]
    );
    assert_eq!(app.status().await, 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_release_prints_the_error_marker() {
    let mut app = App::start(with_release());
    let release = app.run().await;
    app.exit(release, 2);
    app.lines_until("error: Release phase failed with status 2")
        .await;
}

/// The `error:` and `reloading:` markers among `lines`.
fn markers(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .filter(|l| l.starts_with("error: ") || l.starts_with("reloading: "))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_crash_before_ready_prints_the_error_marker_once_per_cycle() {
    let mut settings = config(vec![process("web", 0, Readiness::Port)]);
    watch_everything(&mut settings);
    let mut app = App::start(settings);
    let first = app.run().await;
    app.exit(first, 1);
    app.lines_until("error: web.1 crashed with status 1").await;
    let second = app.run().await;
    app.exit(second, 1);
    app.run().await;
    assert_eq!(markers(app.printed()), Vec::<String>::new());
    let _ = app.events.send(Event::FilesChanged(vec!["app.py".into()]));
    app.lines_until("reloading: app.py changed").await;
}

#[tokio::test(start_paused = true)]
async fn after_ready_a_crash_prints_no_error_marker_until_the_next_cycle() {
    let crashing = |name, index| TypeSpec {
        restart: RestartPolicy::Never,
        ..worker(name, index)
    };
    let mut settings = config(vec![
        crashing("worker", 0),
        crashing("second", 1),
        worker("other", 2),
    ]);
    watch_everything(&mut settings);
    let mut app = App::start(settings);
    let run = app.run().await;
    let second = app.run().await;
    app.run().await;
    app.lines_until("ready").await;
    // The second crash is the one that used to find the app "not ready" and say `error`.
    app.exit(run, 1);
    app.lines_until("worker.1: State changed from up to crashed")
        .await;
    // Not ready any more, and nothing will make it so: `hlocal wait` says why.
    let waited = app.ask(Command::Wait).await.map_err(|p| p.message);
    assert_eq!(waited, Err("worker.1 crashed with status 1".to_string()));
    app.exit(second, 1);
    app.lines_until("second.1: State changed from up to crashed")
        .await;
    settle_for(secs(1)).await;
    assert_eq!(markers(app.printed()), Vec::<String>::new());
    // A new cycle: a crash before its `ready` is an error again.
    let _ = app.events.send(Event::FilesChanged(vec!["app.py".into()]));
    let rerun = app.run().await;
    app.exit(rerun, 1);
    let lines = app
        .lines_until("error: worker.1 crashed with status 1")
        .await;
    assert_eq!(
        markers(lines),
        [
            "reloading: app.py changed",
            "error: worker.1 crashed with status 1"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_formation_starts_after_a_successful_release() {
    let mut app = App::start(with_release());
    let release = app.run().await;
    app.exit(release, 0);
    app.run().await;
    app.lines_until("ready").await;
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_during_the_release_stops_it_and_starts_nothing() {
    let mut app = App::start(with_release());
    let release = app.run().await;
    app.signal(Signal::Int);
    assert_eq!(
        app.lines_until("release.1: Stopping all processes with SIGTERM")
            .await,
        [
            "release.1: Starting process with command `migrate`",
            "release.1: State changed from starting to up",
            "Received SIGINT, stopping the release phase",
            "release.1: Stopping all processes with SIGTERM",
        ]
    );
    assert_eq!(app.orders(release), ["stop SIGTERM 5s"]);
    app.exit(release, 130);
    assert_eq!(
        app.lines_until("Release phase interrupted, not starting the app")
            .await,
        [
            "release.1: Process exited with status 130",
            "release.1: State changed from stopping to down",
            "Release phase interrupted, not starting the app",
        ]
    );
    assert!(app.no_run_started());
    assert_eq!(app.status().await, 0);
}

#[tokio::test(start_paused = true)]
async fn the_router_holds_requests_from_its_first_snapshot() {
    // The router serves as soon as the supervisor exists, before the release phase and
    // the first start: web instances on their way mean "hold" (H20 after the request
    // timeout), never "no web processes" (H14).
    let (tx, rx) = watch::channel(Backends::default());
    let (log, _records) = LogSender::channel();
    let (started, _) = mpsc::unbounded_channel();
    let host = TestHost {
        started,
        next_pid: AtomicU32::new(100),
    };
    let config = config(vec![process("web", 0, Readiness::Port)]);
    let _supervisor = Supervisor::on_host(
        Arc::new(config),
        log,
        Arc::new(host),
        Some(tx),
        "test".into(),
    );
    let pool = rx.borrow().clone();
    assert!(
        pool.starting && pool.up.is_empty() && !pool.crashed,
        "{pool:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_scale_onto_a_taken_port_starts_and_stops_nothing() {
    let mut web = worker("web", 0);
    web.count = 2;
    let mut app = App::start(config(vec![web, worker("worker", 1)]));
    for _ in 0..3 {
        app.run().await;
    }
    app.lines_until("ready").await;
    let refused = app.scale(&[("worker", 0), ("web", 4)]).await;
    let problem = refused.expect_err("web.3's port is taken");
    assert_eq!(problem.kind, ErrorKind::Invalid);
    assert_eq!(
        problem.message,
        "cannot scale: port 5002 (web.3) is already in use by pid 4242; nothing was started or stopped"
    );
    settle_for(secs(1)).await;
    assert!(app.no_run_started());
    assert!(app.printed().is_empty(), "worker.1 was not stopped");
}

/// `ps`'s rows as `name state pid` (pid `-` when none).
async fn ps_rows(app: &App) -> Vec<String> {
    let ps = app.ask(Command::Ps).await.expect("ps answers");
    let rows = ps["instances"].as_array().cloned().unwrap_or_default();
    rows.iter()
        .map(|row| {
            let pid = row["pid"].as_u64().map_or("-".into(), |p| p.to_string());
            format!(
                "{} {} {pid}",
                row["name"].as_str().unwrap_or("?"),
                row["state"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn ps_lists_a_scaled_away_instance_until_it_stopped_and_no_pid_once_it_is_gone() {
    let mut web = worker("web", 0);
    (web.count, web.restart) = (2, RestartPolicy::Never);
    let mut app = App::start(config(vec![web, worker("clock", 1)]));
    let runs = [app.run().await, app.run().await, app.run().await];
    app.lines_until("ready").await;
    assert!(app.scale(&[("web", 1)]).await.is_ok());
    let clock = "clock.1 up 102";
    assert_eq!(
        ps_rows(&app).await,
        ["web.1 up 100", "web.2 stopping 101", clock]
    );
    app.exit(runs[1], 143);
    app.lines_until("web.2: State changed from stopping to down")
        .await;
    assert_eq!(ps_rows(&app).await, ["web.1 up 100", clock]);
    app.exit(runs[0], 1);
    app.lines_until("web.1: State changed from up to crashed")
        .await;
    assert_eq!(ps_rows(&app).await, ["web.1 crashed -", clock]);
}

#[tokio::test(start_paused = true)]
async fn naming_a_type_scaled_to_0_says_so() {
    let mut app = App::start(config(vec![worker("web", 0), worker("clock", 1)]));
    let _runs = [app.run().await, app.run().await];
    app.lines_until("ready").await;
    assert!(app.scale(&[("web", 0)]).await.is_ok());
    let names = vec!["web".to_string()];
    let refused = app.ask(Command::Start { names }).await;
    let problem = refused.expect_err("nothing to start");
    assert_eq!(problem.kind, ErrorKind::Invalid);
    assert_eq!(
        problem.message,
        "web has no instances (scaled to 0): hlocal scale TYPE=N runs some"
    );
}

#[tokio::test(start_paused = true)]
async fn a_scale_checks_no_port_an_instance_of_its_own_holds() {
    // web.3 is on TAKEN_PORT: here, its own process is what holds it.
    let mut web = worker("web", 0);
    web.count = 3;
    let mut app = App::start(config(vec![web]));
    let runs = [app.run().await, app.run().await, app.run().await];
    app.lines_until("ready").await;
    assert!(app.scale(&[("web", 3)]).await.is_ok(), "the same count");
    assert!(app.scale(&[("web", 2)]).await.is_ok(), "scaling down");
    assert_eq!(app.orders(runs[2]), ["stop SIGTERM 5s"]);
    // Scaled away and still stopping: back in the formation once its run is gone.
    assert!(app.scale(&[("web", 3)]).await.is_ok());
    assert!(app.scale(&[("web", 2)]).await.is_ok());
    app.exit(runs[2], 143);
    app.lines_until("web.3: State changed from stopping to down")
        .await;
    let refused = app.scale(&[("web", 3)]).await;
    assert!(refused.is_err_and(|p| p.message.contains("(web.3)")));
    assert!(app.no_run_started());
}
