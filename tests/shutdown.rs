use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{Hlocal, LAYOUT, Running, assert_no_leftovers, free_port, leftovers};

/// A web that binds, a worker, a process that forks a grandchild.
fn busy_app(extra: &[&str]) -> Running {
    let port = free_port(LAYOUT);
    Hlocal::new()
        .procfile(
            "web: python3 -m http.server $PORT --bind 127.0.0.1\n\
             worker: while true; do echo tick; sleep 0.2; done\n\
             forker: sleep 1000 & sleep 1000\n",
        )
        .args(["start", "--no-timestamp", "-p", &port.to_string()])
        .args(extra)
        .spawn()
}

fn wait_ready(app: &Running) {
    app.wait_for(r"hlocal +\| ready: ");
}

fn assert_clean_stop(mut app: Running, signal: Signal) {
    wait_ready(&app);
    app.signal(signal);
    let status = app.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", app.output());
    for name in ["web.1", "worker.1", "forker.1"] {
        assert_eq!(
            app.count(&format!("{name}: State changed from stopping to down")),
            1,
            "{}",
            app.output()
        );
    }
    assert_no_leftovers(&app.marker);
}

#[test]
fn sigint_to_hlocal_alone_stops_everything() {
    assert_clean_stop(busy_app(&[]), Signal::SIGINT);
}

#[test]
fn sigterm_stops_everything() {
    assert_clean_stop(busy_app(&[]), Signal::SIGTERM);
}

#[test]
fn sighup_stops_everything() {
    assert_clean_stop(busy_app(&[]), Signal::SIGHUP);
}

#[test]
fn ctrl_c_to_the_whole_process_group_stops_everything() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile(
            "worker: while true; do echo tick; sleep 0.2; done\nforker: sleep 1000 & sleep 1000\n",
        )
        .args(["start", "-p", &port.to_string()])
        .spawn_in_own_group();
    wait_ready(&app);
    // As a terminal's Ctrl-C does: SIGINT to the foreground process group.
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(app.pid()), Signal::SIGINT);
    assert_eq!(app.wait_exit().code(), Some(0), "{}", app.output());
    assert_no_leftovers(&app.marker);
}

#[test]
fn a_process_ignoring_sigterm_gets_r12_then_sigkill() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("stubborn: trap '' TERM; echo armed; while true; do sleep 0.1; done\n")
        .args([
            "start",
            "--no-timestamp",
            "-t",
            "1",
            "-p",
            &port.to_string(),
        ])
        .spawn();
    app.wait_for(r"stubborn\.1 +\| armed");
    app.signal(Signal::SIGINT);
    assert_eq!(app.wait_exit().code(), Some(0), "{}", app.output());
    app.wait_for(r"stubborn\.1: Stopping all processes with SIGTERM$");
    app.wait_for(r"stubborn\.1: Error R12 \(Exit timeout\) -> At least one process failed to exit within 1 second of SIGTERM$");
    app.wait_for(r"stubborn\.1: Stopping remaining processes with SIGKILL$");
    app.wait_for(r"stubborn\.1: Process exited with status 137$");
    assert_no_leftovers(&app.marker);
}

#[test]
fn a_second_ctrl_c_kills_at_once_with_130() {
    assert_second_ctrl_c_kills_at_once(
        "stubborn: trap '' TERM; echo armed; while true; do sleep 0.1; done\n",
        r"stubborn\.1 +\| armed",
    );
}

#[test]
fn a_second_ctrl_c_kills_what_is_left_of_a_group_whose_main_process_exited() {
    assert_second_ctrl_c_kills_at_once(
        "w: (trap '' TERM; echo armed; exec sleep 300) & wait\n",
        r"w\.1 +\| armed",
    );
}

/// Signals this close together count as one request (hlocal coalesces within 200 ms).
const PAST_COALESCE_WINDOW: Duration = Duration::from_millis(400);

/// `procfile` ignores SIGTERM and prints `armed`: a first Ctrl-C starts a 60 s grace
/// period, a second one (past the coalescing window) must not wait for it.
fn assert_second_ctrl_c_kills_at_once(procfile: &str, armed: &str) {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile(procfile)
        .args(["start", "-t", "60", "-p", &port.to_string()])
        .spawn();
    app.wait_for(armed);
    app.signal(Signal::SIGINT);
    app.wait_for("Stopping all processes with SIGTERM");
    std::thread::sleep(PAST_COALESCE_WINDOW);
    let second = Instant::now();
    app.signal(Signal::SIGINT);
    assert_eq!(app.wait_exit().code(), Some(130), "{}", app.output());
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "took {:?}",
        second.elapsed()
    );
    assert_no_leftovers(&app.marker);
}

#[test]
fn the_exit_is_reported_once_the_whole_group_is_gone() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .file(
            "sub/app.py",
            "import signal, sys, time\n\
             def stop(*_):\n    print('handling')\n    time.sleep(1)\n    print('handled')\n    sys.exit(0)\n\
             signal.signal(signal.SIGTERM, stop)\n\
             print('armed')\n\
             while True:\n    time.sleep(0.1)\n",
        )
        .procfile("worker: cd sub && python3 app.py\n")
        .args(["start", "--no-timestamp", "-p", &port.to_string()])
        .spawn();
    app.wait_for(r"worker\.1 +\| armed");
    let mut app = app;
    app.signal(Signal::SIGINT);
    assert_eq!(app.wait_exit().code(), Some(0), "{}", app.output());
    let lines = app.lines();
    let at = |pattern: &str| {
        let re = regex::Regex::new(pattern).expect("regex");
        lines.iter().position(|l| re.is_match(l))
    };
    let handled = at(r"worker\.1 +\| handled$").expect("the handler ran to its end");
    let exited = at(r"worker\.1: Process exited with status 143$").expect("exit line");
    assert!(handled < exited, "{}", app.output());
    assert_no_leftovers(&app.marker);
}

#[test]
fn once_hlocal_has_exited_nothing_of_it_is_left_not_even_its_watchdog() {
    // The watchdog's last sweep takes a few ms: a race, so looked at ten times.
    for _ in 0..10 {
        let mut app = busy_app(&[]);
        wait_ready(&app);
        app.signal(Signal::SIGTERM);
        // Looked at the moment hlocal's exit is seen (a blocking wait, no polling delay).
        let exited = app.child.wait().expect("wait");
        let left = leftovers(&app.marker);
        assert!(
            left.is_empty(),
            "still running after hlocal exited: {left:?}"
        );
        assert_eq!(exited.code(), Some(0), "{}", app.output());
        app.wait_exit();
    }
}

#[test]
fn one_sigint_to_hlocal_and_its_group_is_one_graceful_stop() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("worker: trap 'sleep 1; echo handled; exit 0' TERM; echo armed; while true; do sleep 0.1; done\n")
        .args(["start", "-t", "20", "-p", &port.to_string()])
        .spawn_in_own_group();
    app.wait_for(r"worker\.1 +\| armed");
    // As GNU `timeout -s INT` and some terminals do: the same SIGINT, twice over.
    // The two copies arrive a little apart (well within the window), as they do there.
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(app.pid()), Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(50));
    app.signal(Signal::SIGINT);
    assert_eq!(app.wait_exit().code(), Some(0), "{}", app.output());
    app.wait_for(r"worker\.1 +\| handled$");
    assert_no_leftovers(&app.marker);
}

#[test]
fn grandchildren_are_stopped_too() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("forker: sleep 1000 & sleep 1000 & echo forked; wait\n")
        .args(["start", "-p", &port.to_string()])
        .spawn();
    app.wait_for("forked");
    app.stop();
}

#[test]
fn leftovers_of_a_crashed_process_are_cleaned_up() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("crasher: sleep 1000 & echo forked; exit 3\n")
        .args(["start", "--restart", "never", "-p", &port.to_string()])
        .spawn();
    let mut app = app;
    assert_eq!(app.wait_exit().code(), Some(3), "{}", app.output());
    assert_no_leftovers(&app.marker);
}

#[test]
fn nothing_survives_hlocal_being_killed_with_sigkill() {
    let mut app = busy_app(&[]);
    wait_ready(&app);
    app.signal(Signal::SIGKILL);
    let status = app.wait_exit();
    assert_eq!(status.code(), None);
    assert_no_leftovers(&app.marker);
}

/// The watchdog is `hlocal __watchdog …`, started by hlocal itself: not a user command.
#[test]
fn the_watchdog_subcommand_is_hidden_from_the_help() {
    let out = Hlocal::new().args(["--help"]).run();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("start"), "{}", out.stdout);
    assert!(!out.stdout.contains("watchdog"), "{}", out.stdout);
}

#[test]
fn nothing_survives_sigkill_to_hlocals_whole_group() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("worker: while true; do sleep 0.2; done\nforker: sleep 1000 & sleep 1000\n")
        .args(["start", "-p", &port.to_string()])
        .spawn_in_own_group();
    wait_ready(&app);
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(app.pid()), Signal::SIGKILL);
    let _ = app.wait_exit();
    assert_no_leftovers(&app.marker);
}

#[test]
fn a_plain_shutdown_is_quick() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("worker: sleep 1000\n")
        .args(["start", "-m", "worker=20", "-p", &port.to_string()])
        .spawn();
    wait_ready(&app);
    let asked = Instant::now();
    app.signal(Signal::SIGTERM);
    assert_eq!(app.wait_exit().code(), Some(0));
    // Generous bound for a busy CI machine; the benchmark measures the real figure.
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "took {:?}",
        asked.elapsed()
    );
    assert_no_leftovers(&app.marker);
}

/// A daemon that calls `setsid` leaves its process group; it is still found and stopped.
fn daemonizing_app() -> Running {
    let port = free_port(LAYOUT);
    Hlocal::new()
        .procfile("daemon: setsid sleep 1000 & echo spawned; sleep 1000\n")
        .args(["start", "-p", &port.to_string()])
        .spawn()
}

#[test]
fn a_process_that_left_its_group_is_stopped_at_shutdown() {
    let app = daemonizing_app();
    app.wait_for("spawned");
    app.stop();
}

#[test]
fn a_process_that_left_its_group_does_not_survive_sigkill_of_hlocal() {
    let mut app = daemonizing_app();
    app.wait_for("spawned");
    app.signal(Signal::SIGKILL);
    let _ = app.wait_exit();
    assert_no_leftovers(&app.marker);
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat[stat.rfind(')')? + 1..].trim_start().chars().next()? != 'Z'))
        .unwrap_or(false)
}

/// The pid a process of the app writes to `path`, once it is there.
fn pid_written_to(path: &std::path::Path) -> i32 {
    let mut pid = None;
    crate::harness::eventually("a pid in the pid file", || {
        pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse().ok());
        pid.is_some()
    });
    pid.expect("pid")
}

#[test]
fn a_process_that_left_its_session_and_cleared_its_environment_is_stopped() {
    // A double fork: the subshell exits at once, so the escapee (its own session, no
    // HLOCAL_SESSION nor test marker in its environment) is an orphan from the start.
    let app = Hlocal::new()
        .procfile(
            "worker: (setsid env -i sh -c 'echo $$ > escaped.pid; exec sleep 300' &); sleep 300\n",
        )
        .args(["start", "--no-timestamp"])
        .spawn();
    let escaped = pid_written_to(&app.dir.join("escaped.pid"));
    assert!(running(escaped), "{}", app.output());
    wait_ready(&app);
    app.signal(Signal::SIGINT);
    let mut app = app;
    assert_eq!(app.wait_exit().code(), Some(0), "{}", app.output());
    let survived = running(escaped);
    if survived {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(escaped), Signal::SIGKILL);
    }
    assert!(!survived, "pid {escaped} outlived hlocal: {}", app.output());
}

#[test]
fn an_inherited_orphan_that_exits_is_reaped_while_hlocal_runs() {
    let app = Hlocal::new()
        .procfile("worker: (sh -c 'echo $$ > orphan.pid; exec sleep 0.5' &); sleep 300\n")
        .args(["start", "--no-timestamp"])
        .spawn();
    let orphan = pid_written_to(&app.dir.join("orphan.pid"));
    // Not a zombie either: hlocal, its parent now, waited for it.
    crate::harness::eventually("the orphan is reaped", || {
        !std::path::Path::new(&format!("/proc/{orphan}")).exists()
    });
    app.stop();
}
