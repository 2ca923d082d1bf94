use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{Hlocal, LAYOUT, Running, assert_no_leftovers, free_port};

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
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("stubborn: trap '' TERM; echo armed; while true; do sleep 0.1; done\n")
        .args(["start", "-t", "60", "-p", &port.to_string()])
        .spawn();
    app.wait_for(r"stubborn\.1 +\| armed");
    app.signal(Signal::SIGINT);
    app.wait_for("Stopping all processes with SIGTERM");
    let second = Instant::now();
    app.signal(Signal::SIGINT);
    assert_eq!(app.wait_exit().code(), Some(130), "{}", app.output());
    assert!(
        second.elapsed() < Duration::from_secs(10),
        "took {:?}",
        second.elapsed()
    );
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
