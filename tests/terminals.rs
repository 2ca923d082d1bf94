//! Pseudo-terminals (`tty = true`, `--tty`), colors for children, `hlocal attach`: the
//! attach client runs on a terminal of its own, played by `fixtures/bin/terminal.py`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::control::ctl;
use crate::harness::{
    BIN, Hlocal, LAYOUT, LONG, Running, assert_no_leftovers, fixture_path, free_port,
    wait_with_deadline,
};
use crate::logs::assert_million_lines_arrive;

/// Prints its terminal's size at start and on every SIGWINCH.
const SIZED: &str = "sized: trap 'stty size' WINCH; stty size; while :; do sleep 0.1; done\n";

/// `hlocal start` on `procfile`, its `tty_types` on terminals, once it is ready.
fn start(procfile: &str, args: &[&str]) -> Running {
    let port = free_port(LAYOUT).to_string();
    let running = Hlocal::new()
        .procfile(procfile)
        .args(["start", "--no-timestamp", "-p", &port])
        .args(args)
        .spawn();
    running.wait_for("ready: ");
    running
}

/// `hlocal attach NAME` on a terminal of `size`, playing `steps` (see terminal.py).
fn attach(app: &Running, name: &str, size: (u16, u16), steps: &str) -> Child {
    on_terminal(&app.dir, &app.marker, size, steps, &["attach", name])
}

/// `hlocal ARGS` in `dir` on a terminal of `size`, playing `steps`; it carries the
/// app's `marker`, so a client left behind counts as a leftover.
fn on_terminal(dir: &Path, marker: &str, size: (u16, u16), steps: &str, args: &[&str]) -> Child {
    terminal_command(dir, marker, size, steps, args)
        .spawn()
        .expect("spawn terminal.py")
}

/// The command [`on_terminal`] runs, `NO_COLOR` unset, for a test to add to.
fn terminal_command(
    dir: &Path,
    marker: &str,
    size: (u16, u16),
    steps: &str,
    args: &[&str],
) -> Command {
    let mut command = Command::new("python3");
    command
        .arg(fixture_path("bin/terminal.py"))
        .args([&size.0.to_string(), &size.1.to_string(), steps, "--", BIN])
        .args(args)
        .current_dir(dir)
        .env("HLOCAL_TEST_MARKER", marker)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for the scripted terminal to finish; its transcript when every step passed.
fn finished(mut terminal: Child) -> String {
    let status = wait_with_deadline(&mut terminal, LONG * 2);
    let mut transcript = String::new();
    if let Some(mut stderr) = terminal.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut transcript);
    }
    assert!(
        status.is_some_and(|s| s.success()),
        "the terminal's steps failed ({status:?}); transcript:\n{transcript}"
    );
    transcript
}

#[test]
fn a_program_that_colors_only_a_terminal_keeps_its_colors_under_tty() {
    let procfile = "colors: python3 -c \"import os; print('\\033[31mred\\033[0m' if os.isatty(1) else 'no terminal')\"\n";
    let app = start(procfile, &["--color", "always", "--tty", "colors"]);
    app.wait_for("colors\\.1 \\|\u{1b}\\[0m \u{1b}\\[31mred\u{1b}\\[0m$");
    app.stop();
}

#[test]
fn children_are_told_to_color_only_when_hlocal_prints_in_color() {
    let procfile = "env: echo \"force=${FORCE_COLOR:-unset} cli=${CLICOLOR_FORCE:-unset}\"\n";
    let colored = start(procfile, &["--color", "always"]);
    colored.wait_for("env\\.1 +\\|\u{1b}\\[0m force=1 cli=1$");
    colored.stop();
    let plain = start(procfile, &["--color", "never"]);
    plain.wait_for(r"env\.1 +\| force=unset cli=unset$");
    plain.stop();
    let port = free_port(LAYOUT).to_string();
    let turned_off = Hlocal::new()
        .procfile(procfile)
        .file("hlocal.toml", "child_color = false\n")
        .env("CLICOLOR_FORCE", "0")
        .args(["start", "--no-timestamp", "--color", "always", "-p", &port])
        .spawn();
    turned_off.wait_for("env\\.1 +\\|\u{1b}\\[0m force=unset cli=0$");
    turned_off.stop();
}

#[test]
fn on_a_terminal_an_empty_no_color_leaves_color_on_and_a_set_one_turns_it_off() {
    // no-color.org: `NO_COLOR` counts when "present and not an empty string".
    let transcript = |no_color: &str| {
        let app = Hlocal::new().procfile("say: echo hi\n");
        let port = free_port(LAYOUT).to_string();
        let start = ["start", "--no-timestamp", "-p", &port];
        let steps = r#"[["expect","hi"],["eof"]]"#;
        let mut command = terminal_command(&app.dir, &app.marker, (30, 90), steps, &start);
        let terminal = command.env("NO_COLOR", no_color).spawn();
        let transcript = finished(terminal.expect("spawn terminal.py"));
        assert_no_leftovers(&app.marker);
        transcript
    };
    let empty = transcript("");
    assert!(empty.contains("\u{1b}[0m hi"), "{empty:?}");
    let set = transcript("1");
    assert!(set.contains("| hi") && !set.contains('\u{1b}'), "{set:?}");
}

#[test]
fn a_million_lines_through_a_terminal_arrive_whole_and_in_order() {
    assert_million_lines_arrive("a: seq 1 1000000\n", &["--tty", "a"], &["a.1"]);
}

#[test]
fn a_pdb_session_through_attach_sets_a_breakpoint_prints_a_variable_and_detaches() {
    let port = free_port(LAYOUT).to_string();
    let app = Hlocal::new()
        .procfile("debug: python3 -m pdb prog.py\n")
        .file("prog.py", "x = 41\ny = x + 1\nprint('result', y)\n")
        .file("hlocal.toml", "[process.debug]\ntty = true\n")
        .args(["start", "--no-timestamp", "-p", &port])
        .spawn();
    app.wait_for(r"hlocal +\| debug\.1: waiting for input — hlocal attach debug\.1$");
    let steps = r#"[["expect","(Pdb) "],["send","b 3\r"],["expect","Breakpoint 1"],
        ["expect","(Pdb) "],["send","c\r"],["expect","-> print"],["expect","(Pdb) "],
        ["send","p y\r"],["expect","42"],["expect","(Pdb) "],["send","\u001d"],["eof"]]"#;
    let transcript = finished(attach(&app, "debug.1", (30, 90), steps));
    assert!(transcript.contains("detached from debug.1"), "{transcript}");
    // The session shows in the log too, and the debugger is still waiting.
    app.wait_for(r"debug\.1 +\| 42$");
    let exits = app.count(r"debug\.1: Process exited");
    assert_eq!(exits, 0, "the debugger ended: {}", app.output());
    app.stop();
}

#[test]
fn a_second_attach_is_refused_and_stopping_hlocal_ends_the_client_and_leaves_nothing() {
    let app = start("ask: printf 'name? '; read name\n", &["--tty", "ask"]);
    app.wait_for(r"ask\.1: waiting for input — hlocal attach ask\.1$");
    let mut terminal = attach(&app, "ask", (24, 80), r#"[["expect","name? "],["eof"]]"#);
    let mut progress = BufReader::new(terminal.stdout.take().expect("stdout"));
    let mut first = String::new();
    let _ = progress.read_line(&mut first);
    assert_eq!(first, "ok 1\n", "the client never showed the prompt");
    // One client at a time: a second attach is refused, the first stays attached.
    ctl(&app.dir, &["attach", "ask.1"]).assert_error(
        "hlocal: error: ask.1 already has a client attached; detach it first (Ctrl-])\n",
    );
    // Announced once: the prompt has not changed since.
    assert_eq!(app.count("waiting for input"), 1, "{}", app.output());
    let marker = app.marker.clone();
    app.stop();
    let transcript = finished(terminal);
    assert!(
        transcript.contains("ask.1's terminal closed"),
        "{transcript}"
    );
    assert_no_leftovers(&marker);
}

#[test]
fn the_attached_terminals_size_reaches_the_program_and_follows_its_resizes() {
    let app = start(SIZED, &["--tty", "sized"]);
    app.wait_for(r"sized\.1 +\| 24 80$");
    let steps = r#"[["expect","30 90"],["resize",40,100],["expect","40 100"],
        ["send","\u001d"],["eof"]]"#;
    finished(attach(&app, "sized.1", (30, 90), steps));
    app.wait_for(r"sized\.1 +\| 40 100$");
    // Detached, the program gets hlocal's size (no terminal: 80x24) back.
    app.wait_for_nth(r"sized\.1 +\| 24 80$", 1);
    app.stop();
}

#[test]
fn the_terminals_follow_hlocals_own_window_and_ctrl_c_stops_hlocal() {
    let port = free_port(LAYOUT).to_string();
    let app = Hlocal::new().procfile(SIZED);
    let start = ["start", "--no-timestamp", "--tty", "sized", "-p", &port];
    // Ctrl-C on hlocal's terminal stops the app: the instance's own terminal (a session
    // of its own) does not take it.
    let steps = r#"[["expect","30 90"],["resize",40,100],["expect","40 100"],
        ["send","\u0003"],["expect","Received SIGINT"],["eof"]]"#;
    let transcript = finished(on_terminal(&app.dir, &app.marker, (30, 90), steps, &start));
    assert!(transcript.contains("Process exited"), "{transcript}");
    assert_no_leftovers(&app.marker);
}

#[test]
fn ctrl_c_typed_through_attach_reaches_the_program_not_hlocal() {
    let app = start(SIZED, &["--tty", "sized"]);
    let steps = r#"[["expect","30 90"],["send","\u0003"],["eof"]]"#;
    let transcript = finished(attach(&app, "sized.1", (30, 90), steps));
    assert!(
        transcript.contains("sized.1's terminal closed"),
        "{transcript}"
    );
    app.wait_for(r"sized\.1: Process exited with status 130$");
    assert_eq!(app.count("Received SIGINT"), 0, "{}", app.output());
    app.stop();
}

#[test]
fn attach_refuses_an_instance_without_a_terminal_and_unknown_names() {
    let app = start("plain: sleep 60\n", &[]);
    let refused = ctl(&app.dir, &["attach", "plain.1"]);
    refused.assert_error(
        "hlocal: error: plain.1 does not run on a terminal: set `tty = true` under \
         [process.plain] in hlocal.toml, or start with `--tty plain`\n",
    );
    let unknown = ctl(&app.dir, &["attach", "web.1"]);
    unknown.assert_error(
        "hlocal: error: no instance or process type named \"web.1\"; known: plain, plain.1\n",
    );
    app.stop();
}

/// Counts the SIGINTs it gets, from "ready" until 0.5 s after the first; says how many.
const COUNTS_SIGINT: &str = "import signal, time
got = []
signal.signal(signal.SIGINT, lambda *_: got.append(1))
print('ready', flush=True)
while not got:
    time.sleep(0.01)
time.sleep(0.5)
print(f'got {len(got)}', flush=True)";

#[test]
fn run_takes_the_terminals_ctrl_c_once_and_passes_on_a_sent_sigint() {
    let app = Hlocal::new().procfile("web: x\n");
    // Ctrl-C reaches hlocal and the command (one foreground group): hlocal does not add
    // a second one.
    let steps = r#"[["expect","ready"],["send","\u0003"],["expect","got "],["eof"]]"#;
    let run = ["run", "python3", "-c", COUNTS_SIGINT];
    let transcript = finished(on_terminal(&app.dir, &app.marker, (24, 80), steps, &run));
    assert!(transcript.contains("got 1\r\n"), "{transcript}");
    // A SIGINT sent to hlocal's pid alone (`kill -INT`, `timeout -s INT`) is passed on.
    let mut child = in_own_group(Command::new(BIN).args(run), &app.dir);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("kill");
    assert_eq!(
        ended_or_killed(&mut child).and_then(|s| s.code()),
        Some(0),
        "hlocal run kept running"
    );
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("got 1"));
    // GNU `timeout` signals hlocal, then its whole process group, the command included:
    // the command gets one SIGINT, not two. (4 s: python is set up long before, even on
    // a busy machine.)
    let mut timeout = Command::new("timeout");
    timeout
        .args(["--preserve-status", "-s", "INT", "4", BIN])
        .args(run);
    let mut timeout = in_own_group(&mut timeout, &app.dir);
    let out = BufReader::new(timeout.stdout.take().expect("stdout"));
    ended_or_killed(&mut timeout);
    let printed: Vec<String> = out.lines().map_while(Result::ok).collect();
    assert_eq!(printed, ["ready", "got 1"]);
}

/// `command` in `dir` in a process group of its own (so that a failure can end all of
/// it), stdout piped.
fn in_own_group(command: &mut Command, dir: &Path) -> Child {
    command
        .current_dir(dir)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// The status of `child` (a group leader) once it ends, or `None` after [`LONG`], its
/// whole group then killed.
fn ended_or_killed(child: &mut Child) -> Option<std::process::ExitStatus> {
    let status = wait_with_deadline(child, LONG);
    if status.is_none() {
        let group = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
    status
}

#[test]
fn run_passes_on_sigusr1_instead_of_dying_and_orphaning_the_command() {
    let app = Hlocal::new().procfile("web: x\n");
    let script = "trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.05; done";
    let mut child = in_own_group(
        Command::new(BIN).args(["run", "sh", "-c", script]),
        &app.dir,
    );
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).expect("kill");
    assert_eq!(ended_or_killed(&mut child).and_then(|s| s.code()), Some(7));
    assert_eq!(
        lines.next().and_then(Result::ok).as_deref(),
        Some("got-usr1")
    );
}
