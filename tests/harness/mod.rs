//! The test harness: a builder that writes an app into a fresh temp directory and runs
//! the real `hlocal` binary on it, either to completion (`run`) or in the background
//! (`spawn`) with its output collected line by line.
//!
//! Rules it enforces for every test: ports are picked at run time, waits poll against a
//! deadline, and everything a test starts is killed by PID when its handle drops. Each
//! app carries a unique marker in its environment, so `leftovers()` can find any process
//! hlocal left behind by walking `/proc`.

#![allow(dead_code)]

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use regex::Regex;

pub const BIN: &str = env!("CARGO_BIN_EXE_hlocal");

/// Deadlines are generous: CI is a busy 2-core machine. A passing test never waits them out.
pub const LONG: Duration = Duration::from_secs(30);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Every port `free_port` has handed out in this test run.
static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// An app directory and the command line to run hlocal on it.
pub struct Hlocal {
    pub dir: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    pub marker: String,
}

/// A fresh, empty directory unique to this test, under `$TMPDIR/hlocal-tests/<pid>/`.
/// Tests may read their app directory until the end, so a run keeps its own; the first
/// call of a run removes what earlier runs (no longer alive) left.
pub fn temp_dir(tag: &str) -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let root = std::env::temp_dir().join("hlocal-tests");
    SWEPT.call_once(|| remove_dead_runs(&root));
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = root
        .join(std::process::id().to_string())
        .join(format!("{n}-{tag}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Removes the directories of test runs whose process has ended.
fn remove_dead_runs(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let alive = name
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

impl Hlocal {
    pub fn new() -> Hlocal {
        let dir = temp_dir("app");
        // The run's pid too: two test runs at once must not take each other's processes
        // for leftovers.
        let marker = format!(
            "HLOCAL_TEST_MARKER_{}_{}",
            std::process::id(),
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("x")
        );
        Hlocal {
            dir,
            args: Vec::new(),
            env: vec![("HLOCAL_TEST_MARKER".into(), marker.clone())],
            marker,
        }
    }

    /// Another run in an app directory an earlier run used.
    pub fn in_dir(dir: &Path) -> Hlocal {
        Hlocal {
            dir: dir.to_path_buf(),
            ..Hlocal::new()
        }
    }

    pub fn procfile(self, text: &str) -> Hlocal {
        self.file("Procfile", text)
    }

    pub fn file(self, path: &str, text: &str) -> Hlocal {
        let path = self.dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(path, unindent(text)).expect("write file");
        self
    }

    pub fn env_file(self, text: &str) -> Hlocal {
        self.file(".env", text)
    }

    /// Copies `fixtures/<name>` into the app directory.
    pub fn fixture(self, name: &str) -> Hlocal {
        copy_dir(&fixture_path(name), &self.dir);
        self
    }

    /// `start --no-timestamp --no-router -p PORT`: foreman's own ports, lines without a time.
    pub fn start_without_router(self, port: u16) -> Hlocal {
        self.args([
            "start",
            "--no-timestamp",
            "--no-router",
            "-p",
            &port.to_string(),
        ])
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Hlocal {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Hlocal {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(&self.args)
            .current_dir(&self.dir)
            .env_remove("PORT")
            .env_remove("NO_COLOR")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs to completion (with a deadline), for commands that finish.
    pub fn run(self) -> Outcome {
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hlocal");
        let stdout = read_in_background(child.stdout.take());
        let stderr = read_in_background(child.stderr.take());
        let status = wait_with_deadline(&mut child, LONG).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("hlocal did not finish within {LONG:?}");
        });
        let outcome = Outcome {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        };
        assert_no_leftovers(&self.marker);
        outcome
    }

    /// Starts hlocal in the background; its stdout is collected line by line.
    pub fn spawn(self) -> Running {
        let command = self.command();
        self.spawn_command(command)
    }

    /// As `spawn`, with hlocal leading a process group of its own, as a shell's job
    /// does: the test can signal the whole group (a terminal's Ctrl-C) without hitting
    /// the test runner.
    pub fn spawn_in_own_group(self) -> Running {
        use std::os::unix::process::CommandExt;
        let mut command = self.command();
        command.process_group(0);
        self.spawn_command(command)
    }

    pub fn spawn_command(self, mut command: Command) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hlocal");
        let output = Arc::new(Collected::default());
        let readers = vec![
            collect_lines(child.stdout.take(), Arc::clone(&output), false),
            collect_lines(child.stderr.take(), Arc::clone(&output), true),
        ];
        Running {
            child,
            output,
            readers,
            marker: self.marker,
            dir: self.dir,
        }
    }
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Strips the common leading indentation, so inline Procfiles can be indented in tests.
pub fn unindent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<&str> = text
        .lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end_matches(' '))
        .collect();
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    let mut joined = out.join("\n");
    joined.push('\n');
    joined
}

#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Exactly this stderr and exit code 1, nothing on stdout.
    pub fn assert_error(&self, stderr: &str) {
        assert_eq!(self.stderr, stderr, "stdout was: {}", self.stdout);
        assert_eq!(self.code(), Some(1), "stderr: {}", self.stderr);
    }
}

fn read_in_background<R: Read + Send + 'static>(
    pipe: Option<R>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[derive(Default)]
pub struct Collected {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

fn collect_lines<R: Read + Send + 'static>(
    pipe: Option<R>,
    into: Arc<Collected>,
    stderr: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Some(pipe) = pipe else { return };
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        while reader
            .read_until(b'\n', &mut buf)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches('\n')
                .to_string();
            let line = if stderr {
                format!("[stderr] {line}")
            } else {
                line
            };
            into.lines.lock().expect("lock").push(line);
            into.changed.notify_all();
            buf.clear();
        }
    })
}

/// A running `hlocal start`.
pub struct Running {
    pub child: Child,
    output: Arc<Collected>,
    readers: Vec<std::thread::JoinHandle<()>>,
    pub marker: String,
    pub dir: PathBuf,
}

impl Running {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    /// Every line so far (stderr lines prefixed with `[stderr] `).
    pub fn lines(&self) -> Vec<String> {
        self.output.lines.lock().expect("lock").clone()
    }

    /// Waits for a line matching `pattern`, after skipping `skip` earlier matches.
    pub fn wait_for_nth(&self, pattern: &str, nth: usize) -> String {
        let re = Regex::new(pattern).expect("regex");
        let deadline = Instant::now() + LONG;
        let mut lines = self.output.lines.lock().expect("lock");
        loop {
            if let Some(line) = lines.iter().filter(|l| re.is_match(l)).nth(nth) {
                return line.clone();
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "no line matching {pattern:?} (#{nth}) within {LONG:?}; output:\n{}",
                lines.join("\n")
            );
            lines = self
                .output
                .changed
                .wait_timeout(lines, deadline - now)
                .expect("lock")
                .0;
        }
    }

    pub fn wait_for(&self, pattern: &str) -> String {
        self.wait_for_nth(pattern, 0)
    }

    pub fn count(&self, pattern: &str) -> usize {
        let re = Regex::new(pattern).expect("regex");
        self.lines().iter().filter(|l| re.is_match(l)).count()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal);
    }

    /// Waits for hlocal to exit; returns its exit status, with all output collected.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let status = wait_with_deadline(&mut self.child, LONG).unwrap_or_else(|| {
            panic!(
                "hlocal did not exit within {LONG:?}; output:\n{}",
                self.lines().join("\n")
            )
        });
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status
    }

    /// Stops hlocal with SIGINT and checks nothing was left behind.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGINT);
        let status = self.wait_exit();
        assert_no_leftovers(&self.marker);
        status
    }

    pub fn output(&self) -> String {
        self.lines().join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Whatever a failed test left running: kill it by PID (the watchdog would too).
        for pid in leftovers(&self.marker) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Live (non-zombie) processes whose environment carries `marker`.
pub fn leftovers(marker: &str) -> Vec<i32> {
    let needle = format!("HLOCAL_TEST_MARKER={marker}");
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if is_zombie(pid) {
            continue;
        }
        let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ
            .split(|&b| b == 0)
            .any(|var| var == needle.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Waits (with a deadline) until no process carrying `marker` is alive.
pub fn assert_no_leftovers(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = leftovers(marker);
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let described: Vec<String> = left
                .iter()
                .map(|pid| {
                    format!(
                        "{pid}: {}",
                        fs::read_to_string(format!("/proc/{pid}/cmdline"))
                            .unwrap_or_default()
                            .replace('\0', " ")
                    )
                })
                .collect();
            panic!("processes left behind: {described:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port that is free now, with the ports at `offsets` above it free too. Picked at
/// random below the ephemeral range (32768+), where outgoing connections — thousands,
/// when a benchmark runs beside the tests — take their local ports.
pub fn free_port(offsets: &[u16]) -> u16 {
    const LOW: u64 = 15_000;
    const SPAN: u64 = 17_000;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut state = seed
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER.fetch_add(1, Ordering::SeqCst) as u64;
    for _ in 0..1000 {
        // xorshift: cheap, and distinct tests in one process draw different ports.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let port = u16::try_from(LOW + state % SPAN).unwrap_or(20_000);
        let block: Vec<u16> = offsets.iter().map(|&o| port + o).collect();
        let mut handed_out = HANDED_OUT.lock().expect("lock");
        let all_free = block.iter().all(|p| {
            !handed_out.contains(p) && TcpListener::bind(("127.0.0.1", *p)).is_ok() && ipv6_free(*p)
        });
        if all_free {
            // Tests run as threads of one process: never give two of them the same ports.
            handed_out.extend(block);
            return port;
        }
    }
    panic!("no free port found");
}

/// Free on `::1`, or the host has no IPv6 loopback at all.
fn ipv6_free(port: u16) -> bool {
    match TcpListener::bind(("::1", port)) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::AddrNotAvailable,
    }
}

/// Offsets of the router layout for two types with up to 3 instances each.
pub const LAYOUT: &[u16] = &[0, 1, 2, 3, 101, 102, 103, 201];

/// A simple HTTP GET to localhost; the whole response as text.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(LONG)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// Polls `check` every 20 ms until it is true or the deadline passes.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The set of distinct values in `items`.
pub fn distinct<T: std::hash::Hash + Eq + Clone>(items: &[T]) -> HashSet<T> {
    items.iter().cloned().collect()
}

/// Direct children of `pid`, from every thread's `children` list (tokio spawns from its
/// worker threads, and `/proc/PID/task/TID/children` is per thread).
pub fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// An HTTP response as the tests see it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `head` (request line and headers, without the blank line) plus `body` on a new
/// connection with `Connection: close`, and reads the whole response.
pub fn request(port: u16, head: &str, body: &[u8]) -> std::io::Result<Response> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(LONG))?;
    let head = format!(
        "{head}\r\nHost: localhost:{port}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    // What arrived before a timeout tells a stalled response from one never begun.
    stream.read_to_end(&mut raw).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "{e} after {} response bytes: {:?}",
                raw.len(),
                start_of(&raw)
            ),
        )
    })?;
    parse_response(&raw)
}

fn start_of(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(&raw[..raw.len().min(200)])
}

pub fn get(port: u16, path: &str) -> std::io::Result<Response> {
    request(port, &format!("GET {path} HTTP/1.1"), b"")
}

pub fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let bad = || std::io::Error::other(format!("bad response: {:?}", start_of(raw)));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}
