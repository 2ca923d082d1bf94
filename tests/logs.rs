use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{
    Hlocal, LAYOUT, LONG, assert_no_leftovers, eventually, free_port, leftovers, wait_with_deadline,
};

fn one_shot(procfile: &str) -> Vec<String> {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile(procfile)
        .args(["start", "--no-timestamp", "-p", &port.to_string()])
        .spawn();
    assert_eq!(app.wait_exit().code(), Some(0), "{}", app.output());
    app.lines()
}

#[test]
fn a_final_line_without_newline_is_printed() {
    let lines = one_shot("printer: printf 'first\\nno newline at end'\n");
    assert!(lines.iter().any(|l| l == "printer.1 | first"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l == "printer.1 | no newline at end"),
        "{lines:?}"
    );
}

#[test]
fn stderr_lines_are_printed_too() {
    let lines = one_shot("printer: echo to-stderr >&2\n");
    assert!(
        lines.iter().any(|l| l == "printer.1 | to-stderr"),
        "{lines:?}"
    );
}

#[test]
fn invalid_utf8_is_replaced_not_dropped() {
    let lines = one_shot("printer: printf 'bad \\377 byte\\n'\n");
    assert!(
        lines.iter().any(|l| l == "printer.1 | bad \u{fffd} byte"),
        "{lines:?}"
    );
}

#[test]
fn a_200_kib_line_arrives_in_64_kib_chunks_that_concatenate() {
    let lines = one_shot("printer: head -c 204800 /dev/zero | tr '\\0' x; echo; echo after\n");
    let chunks: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("printer.1 | "))
        .filter(|l| l.starts_with('x'))
        .collect();
    assert_eq!(
        chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
        [65536, 65536, 65536, 8192]
    );
    assert_eq!(chunks.concat(), "x".repeat(204_800));
    assert!(lines.iter().any(|l| l == "printer.1 | after"));
}

#[test]
fn a_million_lines_from_each_of_two_processes_all_arrive_in_order() {
    let procfile = "a: seq 1 1000000\nb: seq 1 1000000\n";
    assert_million_lines_arrive(procfile, &[], &["a.1", "b.1"]);
}

/// Runs `hlocal start ARGS` on `procfile` (each of whose `names` prints 1 … 1,000,000)
/// to its end: every instance's lines arrive whole, in order, none lost.
pub(crate) fn assert_million_lines_arrive(procfile: &str, args: &[&str], names: &[&str]) {
    let port = free_port(LAYOUT);
    let dir = crate::harness::temp_dir("million");
    let out = dir.join("out.txt");
    let status = std::process::Command::new(crate::harness::BIN)
        .args(["start", "--no-timestamp", "-p", &port.to_string()])
        .args(args)
        .current_dir(Hlocal::new().procfile(procfile).dir.clone())
        .stdout(std::fs::File::create(&out).expect("out"))
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(0));
    let text = std::fs::read_to_string(&out).expect("read");
    for name in names {
        let mut expected = 1u64;
        let own = text
            .lines()
            .filter_map(|l| l.split_once(" | "))
            .filter(|(who, _)| who.trim_end() == *name)
            .map(|(_, line)| line);
        for line in own {
            assert_eq!(
                line.parse::<u64>().ok(),
                Some(expected),
                "{name}: line out of order or damaged"
            );
            expected += 1;
        }
        assert_eq!(expected, 1_000_001, "{name}: lines lost");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn stdout_and_stderr_lines_keep_the_order_they_were_written_in() {
    let lines = one_shot("both: for i in $(seq 1 300); do echo out$i; echo err$i >&2; done\n");
    let own: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("both.1 | "))
        .collect();
    let expected: Vec<String> = (1..=300)
        .flat_map(|i| [format!("out{i}"), format!("err{i}")])
        .collect();
    assert_eq!(own, expected);
}

#[test]
fn the_starting_line_comes_before_the_apps_first_line() {
    for _ in 0..5 {
        let lines = one_shot("quick: echo first words\n");
        let starting = lines
            .iter()
            .position(|l| l.contains("quick.1: Starting process"));
        let first = lines.iter().position(|l| l.ends_with("| first words"));
        assert!(starting.is_some() && starting < first, "{lines:?}");
    }
}

/// A pipe for hlocal's stdout: the write end to hand over, the read end for the test.
fn stdout_pipe(nonblocking: bool) -> (std::fs::File, Stdio) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let (read, write) = nix::unistd::pipe().expect("pipe");
    if nonblocking {
        fcntl(&write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).expect("O_NONBLOCK");
    }
    (std::fs::File::from(read), Stdio::from(write))
}

/// `hlocal start --no-timestamp -p PORT` and `extra` on `app`, printing to `stdout`.
fn start_writing_to(app: &Hlocal, stdout: Stdio, extra: &[&str]) -> Child {
    let port = free_port(LAYOUT);
    app.command()
        .args(["start", "--no-timestamp", "-p", &port.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(stdout)
        .spawn()
        .expect("spawn hlocal")
}

#[test]
fn a_non_blocking_stdout_gets_every_line_whole() {
    let app = Hlocal::new().procfile("counter: seq 1 100000\n");
    let (mut read, stdout) = stdout_pipe(true);
    let mut child = start_writing_to(&app, stdout, &[]);
    // Read slowly, so that hlocal finds the pipe full again and again.
    let mut text = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match read.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = wait_with_deadline(&mut child, LONG).expect("hlocal did not exit");
    let text = String::from_utf8_lossy(&text);
    let numbers: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("counter.1 | "))
        .collect();
    let expected: Vec<String> = (1..=100_000).map(|n| n.to_string()).collect();
    assert!(
        numbers == expected,
        "lines lost or torn: {} of them",
        numbers.len()
    );
    assert_eq!(status.code(), Some(0));
}

/// Whether the process is blocked (sleeping) rather than running.
fn is_sleeping(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('S'))
        })
        .unwrap_or(false)
}

/// Waits until the app's `yes` (marked with `marker`) is blocked writing: `yes` never
/// sleeps unless its pipe to hlocal is full, so hlocal's queue is full too, and its
/// printer stuck on stdout.
fn wait_for_yes_to_block(marker: &str) {
    eventually("the app's output to back up into `yes`", || {
        let filler = leftovers(marker).into_iter().find(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "yes")
        });
        filler.is_some_and(|pid| {
            (0..3).all(|_| {
                std::thread::sleep(Duration::from_millis(50));
                is_sleeping(pid)
            })
        })
    });
}

/// Ctrl-C, as the terminal sends it.
fn interrupt(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
}

#[test]
fn a_stdout_nobody_reads_does_not_stall_the_shutdown() {
    let app = Hlocal::new().procfile(concat!(
        "filler: exec yes hlocal-filler-line\n",
        "quiet: trap 'touch got-term; exit 0' TERM; sleep 1000 & wait\n",
    ));
    let (dir, marker) = (app.dir.clone(), app.marker.clone());
    // Held, never read: once it is full, hlocal's writes to stdout block.
    let (_unread, stdout) = stdout_pipe(false);
    let mut child = start_writing_to(&app, stdout, &["-t", "3"]);
    wait_for_yes_to_block(&marker);
    interrupt(&child);
    let status = wait_with_deadline(&mut child, Duration::from_secs(15));
    if status.is_none() {
        let _ = child.kill();
    }
    assert!(dir.join("got-term").exists(), "the app never got SIGTERM");
    assert!(status.is_some(), "hlocal did not exit");
    assert_no_leftovers(&marker);
}

#[test]
fn a_stalled_stdout_and_a_stalled_subscriber_hold_the_exit_2_s_in_all() {
    let app = Hlocal::new().procfile("filler: while [ ! -e go ]; do sleep 0.05; done; exec yes\n");
    let (dir, marker) = (app.dir.clone(), app.marker.clone());
    // Held, never read: once it is full, hlocal's writes to stdout block.
    let (_unread, stdout) = stdout_pipe(false);
    let mut child = start_writing_to(&app, stdout, &[]);
    let _stuck = subscribe_without_reading(&dir);
    // What the printer hands the subscriber before stdout blocks (64 KiB of `y` lines
    // and more, some 500 KB as JSON events) overfills its socket: its writes block too.
    std::fs::write(dir.join("go"), "").expect("go");
    wait_for_yes_to_block(&marker);
    interrupt(&child);
    let asked = Instant::now();
    let status = wait_with_deadline(&mut child, LONG);
    let took = asked.elapsed();
    if status.is_none() {
        let _ = child.kill();
    }
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "None: it did not exit"
    );
    // 2 s for the two stalls together, plus the shutdown (a 2 s bound each: 4 s and more).
    assert!(took < Duration::from_millis(3500), "exit took {took:?}");
    assert_no_leftovers(&marker);
}

/// A control-socket subscriber that reads its answer and nothing after it.
fn subscribe_without_reading(dir: &Path) -> UnixStream {
    let socket = dir.join(".hlocal.sock");
    let mut connected = None;
    eventually("the control socket", || {
        connected = UnixStream::connect(&socket).ok();
        connected.is_some()
    });
    let mut stream = connected.expect("connected");
    stream.set_read_timeout(Some(LONG)).expect("timeout");
    stream
        .write_all(b"{\"v\":1,\"id\":1,\"cmd\":\"subscribe\"}\n")
        .expect("subscribe");
    let mut answer = Vec::new();
    let mut byte = [0u8];
    while answer.last() != Some(&b'\n') {
        stream.read_exact(&mut byte).expect("the subscribe answer");
        answer.push(byte[0]);
    }
    assert!(
        String::from_utf8_lossy(&answer).contains("\"ok\":true"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    stream
}
