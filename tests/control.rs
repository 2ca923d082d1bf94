//! The control socket and its commands, through the real binary: a running `hlocal
//! start` in one process, `hlocal ps/restart/stop/start/scale/logs/wait` in others.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{
    BIN, Hlocal, LAYOUT, LONG, Outcome, Running, assert_no_leftovers, eventually, fixture_path,
    free_port, get, wait_with_deadline,
};

const WEB_AND_WORKER: &str =
    "web: python3 server.py\nworker: while true; do echo tick $PS; sleep 0.2; done\n";

struct App {
    running: Running,
    port: u16,
}

fn app(procfile: &str, args: &[&str]) -> App {
    let port = free_port(LAYOUT);
    let server = std::fs::read_to_string(fixture_path("bin/server.py")).expect("fixture");
    let running = Hlocal::new()
        .file("server.py", &server)
        .procfile(procfile)
        .args(["start", "--no-timestamp", "-p", &port.to_string()])
        .args(args)
        .spawn();
    running.wait_for(r"hlocal +\| ready: ");
    App { running, port }
}

/// `hlocal ARGS -d DIR`, its stdout and stderr piped.
fn ctl_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .arg("-d")
        .arg(dir)
        .env_remove("HLOCAL_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `hlocal ARGS -d DIR` to completion.
pub(crate) fn ctl(dir: &Path, args: &[&str]) -> Outcome {
    let mut child = ctl_command(dir, args).spawn().expect("spawn hlocal");
    let status = wait_with_deadline(&mut child, LONG).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("hlocal {args:?} did not finish within {LONG:?}");
    });
    let read = |pipe: Option<&mut dyn std::io::Read>| {
        let mut text = String::new();
        if let Some(pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    };
    let stdout = read(child.stdout.as_mut().map(|p| p as &mut dyn std::io::Read));
    let stderr = read(child.stderr.as_mut().map(|p| p as &mut dyn std::io::Read));
    Outcome {
        status,
        stdout,
        stderr,
    }
}

fn ps_json(dir: &Path) -> Value {
    let outcome = ctl(dir, &["ps", "--json"]);
    assert_eq!(outcome.code(), Some(0), "{}", outcome.stderr);
    serde_json::from_str(&outcome.stdout).expect("ps --json is JSON")
}

fn instance(ps: &Value, name: &str) -> Value {
    ps["instances"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {ps}"))
}

fn state_of(dir: &Path, name: &str) -> String {
    instance(&ps_json(dir), name)["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn socket_path(dir: &Path) -> std::path::PathBuf {
    dir.join(".hlocal.sock")
}

/// One request line on the socket, its answer.
fn ask(dir: &Path, line: &[u8]) -> Value {
    let mut stream = UnixStream::connect(socket_path(dir)).expect("connect");
    stream.set_read_timeout(Some(LONG)).expect("timeout");
    stream.write_all(line).expect("write");
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).expect("read");
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
}

#[test]
fn ps_lists_every_instance_as_text_and_json() {
    let app = app(WEB_AND_WORKER, &["-m", "web=2,worker=1"]);
    let dir = &app.running.dir;
    let text = ctl(dir, &["ps"]);
    assert_eq!(text.code(), Some(0), "{}", text.stderr);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME ") && lines[0].contains("STATE"),
        "{}",
        text.stdout
    );
    for name in ["web.1", "web.2", "worker.1"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(name) && l.contains(" up ")),
            "{name}: {}",
            text.stdout
        );
    }
    assert!(
        text.stdout
            .contains(&format!("url: http://localhost:{}", app.port))
    );
    let ps = ps_json(dir);
    let web2 = instance(&ps, "web.2");
    assert_eq!(web2["state"], "up");
    assert_eq!(web2["type"], "web");
    assert_eq!(web2["port"], app.port + 2);
    assert!(web2["pid"].as_u64().is_some_and(|pid| pid > 1), "{web2}");
    assert_eq!(web2["restarts"], 0);
    app.running.stop();
}

#[test]
fn restart_replaces_one_instance_and_leaves_the_others() {
    let app = app(WEB_AND_WORKER, &["-m", "web=2,worker=1"]);
    let dir = &app.running.dir;
    let before = ps_json(dir);
    let restart = ctl(dir, &["restart", "web.1"]);
    assert_eq!(restart.code(), Some(0), "{}", restart.stderr);
    eventually("web.1 up with a new pid", || {
        let now = instance(&ps_json(dir), "web.1");
        now["state"] == "up" && now["pid"] != instance(&before, "web.1")["pid"]
    });
    let after = ps_json(dir);
    for name in ["web.2", "worker.1"] {
        assert_eq!(
            instance(&after, name)["pid"],
            instance(&before, name)["pid"],
            "{name}"
        );
    }
    assert_eq!(instance(&after, "web.1")["restarts"], 1);
    app.running.stop();
}

/// Requests sent in a loop from another thread until `stop`: (served, failed).
struct Load {
    stop: Arc<AtomicBool>,
    counts: Arc<(AtomicUsize, AtomicUsize)>,
    thread: std::thread::JoinHandle<()>,
}

impl Load {
    fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let thread = {
            let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let served = get(port, "/").is_ok_and(|r| r.status == 200);
                    let count = if served { &counts.0 } else { &counts.1 };
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        Load {
            stop,
            counts,
            thread,
        }
    }

    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        (
            self.counts.0.load(Ordering::Relaxed),
            self.counts.1.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn restarting_the_only_web_instance_fails_no_request() {
    let app = app("web: python3 server.py\n", &[]);
    let dir = &app.running.dir;
    let before = instance(&ps_json(dir), "web.1")["pid"].clone();
    let load = Load::start(app.port);
    eventually("some requests served", || {
        load.counts.0.load(Ordering::Relaxed) > 5
    });
    assert_eq!(ctl(dir, &["restart"]).code(), Some(0));
    eventually("web.1 up again with a new pid", || {
        let now = instance(&ps_json(dir), "web.1");
        now["state"] == "up" && now["pid"] != before
    });
    let served_after = load.counts.0.load(Ordering::Relaxed) + 5;
    eventually("requests served by the new process", || {
        load.counts.0.load(Ordering::Relaxed) > served_after
    });
    let (served, failed) = load.finish();
    assert!(served > 10);
    assert_eq!(failed, 0, "{}", app.running.output());
    app.running.stop();
}

#[test]
fn a_stopped_instance_stays_down_until_started() {
    let app = app(WEB_AND_WORKER, &["-m", "web=1,worker=2"]);
    let dir = &app.running.dir;
    assert_eq!(ctl(dir, &["stop", "worker.2"]).code(), Some(0));
    eventually("worker.2 down", || state_of(dir, "worker.2") == "down");
    // It stays down (no restart), and hlocal keeps running.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(state_of(dir, "worker.2"), "down");
    assert_eq!(state_of(dir, "worker.1"), "up");
    assert_eq!(ctl(dir, &["start", "worker.2"]).code(), Some(0));
    eventually("worker.2 up again", || state_of(dir, "worker.2") == "up");
    app.running.stop();
}

#[test]
fn a_whole_type_stops_and_starts() {
    let app = app(WEB_AND_WORKER, &["-m", "web=1,worker=2"]);
    let dir = &app.running.dir;
    assert_eq!(ctl(dir, &["stop", "worker"]).code(), Some(0));
    eventually("both workers down", || {
        state_of(dir, "worker.1") == "down" && state_of(dir, "worker.2") == "down"
    });
    assert_eq!(state_of(dir, "web.1"), "up");
    assert_eq!(ctl(dir, &["start", "worker"]).code(), Some(0));
    eventually("both workers up", || {
        state_of(dir, "worker.1") == "up" && state_of(dir, "worker.2") == "up"
    });
    app.running.stop();
}

#[test]
fn stop_without_names_shuts_the_app_down() {
    let mut app = app(WEB_AND_WORKER, &[]);
    let dir = app.running.dir.clone();
    assert_eq!(ctl(&dir, &["stop"]).code(), Some(0));
    let status = app.running.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", app.running.output());
    assert!(!socket_path(&dir).exists(), "the socket is removed at exit");
    crate::harness::assert_no_leftovers(&app.running.marker);
}

#[test]
fn scaling_changes_the_formation_without_failed_requests() {
    let app = app("web: python3 server.py\n", &["-m", "web=1"]);
    let dir = app.running.dir.clone();
    let port = app.port;
    let load = Load::start(port);
    assert_eq!(ctl(&dir, &["scale", "web=3"]).code(), Some(0));
    eventually("three web instances up", || {
        ["web.1", "web.2", "web.3"]
            .iter()
            .all(|n| state_of(&dir, n) == "up")
    });
    assert_eq!(instance(&ps_json(&dir), "web.3")["port"], port + 3);
    let served_by = |count: usize| {
        (0..count)
            .filter_map(|_| get(port, "/").ok())
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .filter_map(|v| v["ps"].as_str().map(String::from))
            .collect::<std::collections::HashSet<_>>()
    };
    eventually("the router uses web.3", || served_by(6).contains("web.3"));
    assert_eq!(ctl(&dir, &["scale", "web=1"]).code(), Some(0));
    eventually("web.2 and web.3 gone", || {
        let ps = ps_json(&dir);
        ps["instances"].as_array().is_some_and(|all| all.len() == 1)
    });
    let (served, failed) = load.finish();
    assert!(served > 0);
    assert_eq!(failed, 0, "{}", app.running.output());
    app.running.stop();
}

#[test]
fn a_scale_onto_a_taken_port_is_refused_whole_until_the_port_is_free() {
    let app = app(WEB_AND_WORKER, &["-m", "web=1,worker=1"]);
    let dir = &app.running.dir;
    let web3_port = app.port + 3;
    let squatter =
        std::net::TcpListener::bind(("127.0.0.1", web3_port)).expect("bind web.3's port");
    let processes = |ps: &Value| -> Vec<(Value, Value, Value)> {
        let all = ps["instances"].as_array().cloned().unwrap_or_default();
        all.iter()
            .map(|i| (i["name"].clone(), i["pid"].clone(), i["state"].clone()))
            .collect()
    };
    let before = processes(&ps_json(dir));
    let refused = ctl(dir, &["scale", "web=3", "worker=0"]);
    assert_eq!(refused.code(), Some(1), "{}", refused.stdout);
    let taken = format!("port {web3_port} (web.3) is already in use by pid ");
    assert!(
        refused.stderr.starts_with("hlocal: error: cannot scale: ")
            && refused.stderr.contains(&taken)
            && refused.stderr.lines().count() == 1,
        "{}",
        refused.stderr
    );
    assert_eq!(
        processes(&ps_json(dir)),
        before,
        "nothing started or stopped"
    );
    assert!(get(app.port, "/").is_ok_and(|r| r.status == 200));
    drop(squatter);
    let scaled = ctl(dir, &["scale", "web=3", "worker=0"]);
    assert_eq!(scaled.code(), Some(0), "{}", scaled.stderr);
    eventually("web.3 up and worker.1 gone", || {
        let ps = ps_json(dir);
        let names: Vec<&str> = ps["instances"]
            .as_array()
            .map(|all| all.iter().filter_map(|i| i["name"].as_str()).collect())
            .unwrap_or_default();
        names == ["web.1", "web.2", "web.3"] && instance(&ps, "web.3")["state"] == "up"
    });
    app.running.stop();
}

#[test]
fn logs_prints_the_kept_lines_and_follows() {
    let app = app(
        "worker: for i in $(seq 1 300); do echo line $i; done; sleep 60\nweb: python3 server.py\n",
        &[],
    );
    let dir = &app.running.dir;
    app.running.wait_for(r"worker\.1 +\| line 300$");
    // The printer keeps a line for `logs` just after writing it to stdout: poll.
    let mut logs = ctl(dir, &["logs", "-n", "5", "--no-timestamp", "worker"]);
    eventually("line 300 kept", || {
        logs = ctl(dir, &["logs", "-n", "5", "--no-timestamp", "worker"]);
        logs.stdout.ends_with("| line 300\n")
    });
    assert_eq!(logs.code(), Some(0), "{}", logs.stderr);
    let lines: Vec<&str> = logs.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", logs.stdout);
    assert!(
        lines[0].ends_with("| line 296") && lines[4].ends_with("| line 300"),
        "{}",
        logs.stdout
    );
    // -f: new lines arrive after the kept ones.
    let mut follow = Command::new(BIN)
        .args(["logs", "-f", "-n", "0", "--json", "web"])
        .arg("-d")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn logs -f");
    let stdout = follow.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|line| line.contains("GET /followed"))
    });
    eventually("the request is logged to the follower", || {
        let _ = get(app.port, "/followed");
        reader.is_finished()
    });
    let line = reader.join().expect("reader").expect("a followed line");
    let event: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(event["name"], "web.1");
    // The text format reads stdout and stderr through one pipe: which one is not known.
    assert_eq!(event["stream"], Value::Null, "{line}");
    let _ = follow.kill();
    let _ = follow.wait();
    app.running.stop();
}

#[test]
fn wait_says_ready_failed_or_not_running() {
    let app = app(WEB_AND_WORKER, &[]);
    let ready = ctl(&app.running.dir, &["wait", "--timeout", "20s"]);
    assert_eq!(ready.code(), Some(0), "{}", ready.stderr);
    assert!(
        ready.stdout.starts_with("ready: http://localhost:"),
        "{}",
        ready.stdout
    );
    // A ready app is ready however short the timeout.
    let at_once = ctl(&app.running.dir, &["wait", "--timeout", "0"]);
    assert_eq!(at_once.code(), Some(0), "{}", at_once.stderr);
    app.running.stop();

    let port = free_port(LAYOUT).to_string();
    let failing = Hlocal::new()
        .procfile("web: exit 3\nother: sleep 60\n")
        .args(["start", "--restart", "never", "--no-router", "-p", &port])
        .spawn();
    eventually("the control socket", || socket_path(&failing.dir).exists());
    let failed = ctl(&failing.dir, &["wait", "--timeout", "20s"]);
    assert_eq!(
        failed.code(),
        Some(1),
        "{}\n{}",
        failed.stderr,
        failing.output()
    );
    assert!(failed.stderr.contains("web.1"), "{}", failed.stderr);
    failing.stop();

    let empty = crate::harness::temp_dir("no-app");
    let none = ctl(&empty, &["wait", "--timeout", "1s"]);
    assert_eq!(none.code(), Some(3));
    assert!(none.stderr.contains("hlocal start"), "{}", none.stderr);
}

#[test]
fn wait_started_before_the_app_waits_for_it() {
    let app = Hlocal::new().procfile("worker: sleep 60\n").args([
        "start",
        "--no-router",
        "-p",
        &free_port(LAYOUT).to_string(),
    ]);
    let dir = app.dir.clone();
    let waiting = Command::new(BIN)
        .args(["wait", "--timeout", "20s", "-d"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hlocal wait");
    let running = app.spawn();
    let done = waiting.wait_with_output().expect("wait's output");
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    running.stop();
}

/// Run under a subreaper, whatever a refused `hlocal start` leaves running or unreaped
/// (its watchdog, say) becomes the subreaper's child; none may be there.
#[test]
fn a_refused_start_leaves_no_process_behind() {
    let first = app(WEB_AND_WORKER, &[]);
    let script = r#"
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
def parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[1]
    except OSError:
        return None
me = str(os.getpid())
left = [p for p in os.listdir("/proc") if p.isdigit() and parent(p) == me]
print(code, len(left))
"#;
    let out = Command::new("python3")
        .args(["-c", script, BIN, "start", "-d"])
        .arg(&first.running.dir)
        .args(["-p", &free_port(LAYOUT).to_string()])
        .output()
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 0\n", "{out:?}");
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let first = app(WEB_AND_WORKER, &[]);
    let dir = first.running.dir.clone();
    let mode = std::fs::metadata(socket_path(&dir))
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let second = Command::new(BIN)
        .args(["start", "-d"])
        .arg(&dir)
        .args(["-p", &free_port(LAYOUT).to_string()])
        .output()
        .expect("second start");
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("another hlocal (pid {})", first.running.pid())),
        "{stderr}"
    );
    // SIGKILL leaves the socket file behind; the next start replaces it silently.
    first.running.signal(nix::sys::signal::Signal::SIGKILL);
    let mut first = first;
    first.running.wait_exit();
    assert!(socket_path(&dir).exists());
    let port = free_port(LAYOUT);
    let again = Hlocal::in_dir(&dir)
        .args(["start", "--no-timestamp", "-p", &port.to_string()])
        .spawn();
    again.wait_for(r"hlocal +\| ready: ");
    assert!(!again.output().contains("socket"), "{}", again.output());
    assert_eq!(ctl(&dir, &["ps"]).code(), Some(0));
    again.stop();
}

#[test]
fn a_file_that_is_not_a_socket_is_never_replaced() {
    let app = Hlocal::new()
        .procfile("web: sleep 1000\n")
        .file("notes.txt", "mine\n");
    let notes = app.dir.join("notes.txt");
    let out = app
        .args(["start", "--no-router", "--socket", "notes.txt"])
        .run();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "hlocal: error: cannot create the control socket notes.txt: something other than a socket is there; hlocal leaves it alone\n"
    );
    assert_eq!(std::fs::read_to_string(notes).expect("kept"), "mine\n");
}

#[test]
fn unknown_names_exit_1_and_list_the_known_ones() {
    let app = app(WEB_AND_WORKER, &[]);
    let outcome = ctl(&app.running.dir, &["restart", "wbe"]);
    assert_eq!(outcome.code(), Some(1));
    assert_eq!(
        outcome.stderr.trim(),
        "hlocal: error: no instance or process type named \"wbe\"; known: web, web.1, worker, worker.1"
    );
    app.running.stop();
}

#[test]
fn no_running_hlocal_is_exit_3_with_how_to_start_one() {
    let empty = crate::harness::temp_dir("nothing");
    let outcome = ctl(&empty, &["ps"]);
    assert_eq!(outcome.code(), Some(3));
    assert!(
        outcome.stderr.contains("hlocal start -d"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn bad_requests_get_answers_and_the_server_keeps_serving() {
    let app = app(WEB_AND_WORKER, &[]);
    let dir = &app.running.dir;
    let answer = ask(dir, b"{not json\n");
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["error"]["kind"], "bad_request");
    let answer = ask(dir, b"{\"v\":1,\"id\":9,\"cmd\":\"dance\"}\n");
    assert_eq!(
        (answer["id"].clone(), answer["error"]["kind"].clone()),
        (9.into(), "unknown_command".into())
    );
    // 10 MiB without a newline: answered `too_large`, connection closed.
    let mut stream = UnixStream::connect(socket_path(dir)).expect("connect");
    stream.set_read_timeout(Some(LONG)).expect("timeout");
    let big = vec![b'x'; 10 << 20];
    let _ = stream.write_all(&big);
    let mut answer = String::new();
    let _ = BufReader::new(&stream).read_line(&mut answer);
    assert!(answer.contains("too_large"), "{answer:?}");
    // Still serving.
    let answer = ask(dir, b"{\"v\":1,\"id\":1,\"cmd\":\"hello\"}\n");
    assert_eq!(answer["result"]["pid"], app.running.pid());
    app.running.stop();
}

#[test]
fn a_subscriber_that_never_reads_does_not_stall_the_app() {
    let app = app("web: python3 server.py\n", &[]);
    let dir = &app.running.dir;
    let stuck = subscriber_that_never_reads(dir);
    // Thousands of router and app lines flow to hlocal's stdout although the subscriber
    // reads nothing (its socket buffer fills after a few hundred).
    for n in 0..3000 {
        let response = get(app.port, &format!("/n{n}")).expect("served");
        assert_eq!(response.status, 200);
    }
    app.running.wait_for(r#"router +\| .*path="/n2999""#);
    drop(stuck);
    app.running.stop();
}

#[test]
fn processes_get_the_port_of_every_type_and_the_url() {
    let app = app(
        "web: python3 server.py\nworker: echo ports web=$HLOCAL_WEB_PORT worker=$HLOCAL_WORKER_PORT url=$HLOCAL_URL; sleep 60\n",
        &[],
    );
    let line = app.running.wait_for(r"worker\.1 +\| ports ");
    let want = format!(
        "ports web={} worker={} url=http://localhost:{}",
        app.port + 1,
        app.port + 101,
        app.port
    );
    assert!(line.ends_with(&want), "{line}");
    app.running.stop();
}

/// `hlocal start ARGS` on a worker that says it is waiting until the file `go` exists in
/// the app directory, then prints the numbers 1 to 20,000 at once and exits (hlocal exits
/// with it); returned once the worker is waiting.
fn burst_on_go(args: &[&str]) -> Running {
    let running = Hlocal::new()
        .procfile("worker: while [ ! -e go ]; do echo waiting; sleep 0.1; done; seq 1 20000\n")
        .args(["start"])
        .args(args)
        .spawn();
    running.wait_for("waiting");
    running
}

/// `hlocal logs -f -n 0 ARGS -d DIR`, its output collected line by line.
struct Follower {
    child: std::process::Child,
    /// A message per line received.
    received: std::sync::mpsc::Receiver<()>,
    lines: std::thread::JoinHandle<Vec<String>>,
}

impl Follower {
    fn spawn(dir: &Path, args: &[&str]) -> Follower {
        let mut child = ctl_command(dir, &[&["logs", "-f", "-n", "0"], args].concat())
            .spawn()
            .expect("spawn logs -f");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, received) = std::sync::mpsc::channel();
        let lines = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(());
                lines.push(line);
            }
            lines
        });
        Follower {
            child,
            received,
            lines,
        }
    }

    /// Returns once a line has arrived: the follower is subscribed.
    fn wait_following(&self) {
        self.received
            .recv_timeout(LONG)
            .expect("the follower gets lines");
    }

    /// Waits for `logs -f` to end (it must, with hlocal); its exit code, stderr and lines.
    fn end(mut self) -> (Option<i32>, String, Vec<String>) {
        let status = wait_with_deadline(&mut self.child, LONG).expect("logs -f ends with hlocal");
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        (status.code(), stderr, self.lines.join().expect("reader"))
    }
}

fn json_events(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn a_follower_gets_every_line_then_exit_and_ends_with_hlocal() {
    let mut running = burst_on_go(&["--no-timestamp"]);
    let follower = Follower::spawn(&running.dir, &["--json"]);
    follower.wait_following();
    std::fs::write(running.dir.join("go"), "").expect("go");
    assert_eq!(running.wait_exit().code(), Some(0), "{}", running.output());
    let (code, stderr, lines) = follower.end();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr, "");
    let events = json_events(&lines);
    let numbers: Vec<&str> = events
        .iter()
        .filter(|event| event["event"] == "log" && event["line"] != "waiting")
        .filter_map(|event| event["line"].as_str())
        .collect();
    let expected: Vec<String> = (1..=20_000).map(|n| n.to_string()).collect();
    assert!(
        numbers == expected,
        "{} lines, not 1 to 20000 in order",
        numbers.len()
    );
    let last = events.last().expect("events");
    assert_eq!(last["event"], "exit", "{last}");
    assert_eq!(last["code"], 0, "{last}");
    assert_no_leftovers(&running.marker);
}

#[test]
fn a_follower_of_one_process_gets_exit_too() {
    // web ends well, worker fails: hlocal's status is worker's, 3.
    let procfile = "web: while [ ! -e go ]; do echo waiting; sleep 0.1; done; echo web done\n\
                    worker: while [ ! -e go ]; do echo waiting; sleep 0.1; done; exit 3\n";
    let port = free_port(LAYOUT);
    let mut running = Hlocal::new()
        .procfile(procfile)
        .start_without_router(port)
        .args(["--restart", "never"])
        .spawn();
    running.wait_for(r"web\.1 +\| waiting$");
    let by_type = Follower::spawn(&running.dir, &["--json", "web"]);
    let as_text = Follower::spawn(&running.dir, &["--no-timestamp", "web.1"]);
    by_type.wait_following();
    as_text.wait_following();
    std::fs::write(running.dir.join("go"), "").expect("go");
    assert_eq!(running.wait_exit().code(), Some(3), "{}", running.output());

    let (code, stderr, lines) = by_type.end();
    assert_eq!((code, stderr.as_str()), (Some(0), ""), "{stderr}");
    let events = json_events(&lines);
    let (last, before) = events.split_last().expect("events");
    assert_eq!(last["event"], "exit", "{last}");
    assert_eq!(last["code"], 3, "{last}");
    assert!(
        before.iter().all(|event| event["name"] == "web.1"),
        "only web.1's events before exit: {lines:#?}"
    );
    assert!(
        before.iter().any(|event| event["line"] == "web done"),
        "{lines:#?}"
    );

    // The text formats have no line for `exit`: the stream ends after web.1's last one.
    let (code, stderr, lines) = as_text.end();
    assert_eq!((code, stderr.as_str()), (Some(0), ""), "{stderr}");
    assert!(
        lines.iter().any(|line| line.ends_with("| web done")),
        "{lines:#?}"
    );
    let last = lines.last().expect("lines");
    assert!(
        last.contains("web.1: State changed from") && last.ends_with(" to exited"),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|line| line.contains("worker")),
        "{lines:#?}"
    );
    assert_no_leftovers(&running.marker);
}

/// A `subscribe`d connection that reads nothing after the answer: once its socket's
/// buffer is full, hlocal's thread writing to it blocks.
fn subscriber_that_never_reads(dir: &Path) -> UnixStream {
    let stuck = UnixStream::connect(socket_path(dir)).expect("connect");
    (&stuck)
        .write_all(b"{\"v\":1,\"id\":1,\"cmd\":\"subscribe\"}\n")
        .expect("subscribe");
    let mut answer = String::new();
    BufReader::new(&stuck)
        .read_line(&mut answer)
        .expect("the subscription's answer");
    assert!(answer.contains(r#""subscribed":true"#), "{answer}");
    stuck
}

#[test]
fn a_subscriber_that_never_reads_holds_the_exit_only_briefly() {
    let mut running = burst_on_go(&["--no-timestamp"]);
    let stuck = subscriber_that_never_reads(&running.dir);
    // 20,000 events (about 2 MB) fill the socket's buffer: its thread blocks on it.
    let go = std::time::Instant::now();
    std::fs::write(running.dir.join("go"), "").expect("go");
    assert_eq!(running.wait_exit().code(), Some(0), "{}", running.output());
    let took = go.elapsed();
    // 2 s for the subscriber, plus the burst and the shutdown on a busy machine.
    assert!(
        took < Duration::from_secs(10),
        "hlocal took {took:?} to exit"
    );
    running.wait_for(r"worker\.1 +\| 20000$");
    assert_no_leftovers(&running.marker);
    drop(stuck);
}

#[test]
fn the_socket_file_goes_before_the_exit_waits_for_subscribers() {
    let mut running = burst_on_go(&["--json"]);
    let socket = socket_path(&running.dir);
    let stuck = subscriber_that_never_reads(&running.dir);
    std::fs::write(running.dir.join("go"), "").expect("go");
    running.wait_for(r#""event":"exit""#);
    // The stuck subscriber keeps hlocal waiting 2 s; the file goes at the start of that.
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while socket.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the socket file is still there 1 s after the exit event"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        matches!(running.child.try_wait(), Ok(None)),
        "hlocal had already exited: the file must go while it still waits"
    );
    let refused = ctl(&running.dir, &["ps"]);
    assert_eq!(refused.code(), Some(3), "{}", refused.stderr);
    // A new hlocal of the app may start meanwhile; the old one's exit leaves it its socket.
    let next = Hlocal::in_dir(&running.dir)
        .file("Procfile.next", "other: sleep 60\n")
        .start_without_router(free_port(LAYOUT))
        .args(["-f", "Procfile.next"])
        .spawn();
    next.wait_for(r"hlocal +\| ready: ");
    assert_eq!(running.wait_exit().code(), Some(0), "{}", running.output());
    let ps = ctl(&running.dir, &["ps"]);
    assert_eq!(ps.code(), Some(0), "{}", ps.stderr);
    assert!(ps.stdout.contains("other.1"), "{}", ps.stdout);
    assert_eq!(next.stop().code(), Some(0));
    assert_no_leftovers(&running.marker);
    drop(stuck);
}
