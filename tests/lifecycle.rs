use crate::harness::{Hlocal, LAYOUT, Running, free_port};

fn start(procfile: &str, args: &[&str]) -> Running {
    start_with_settings(procfile, "", args)
}

fn start_with_settings(procfile: &str, settings: &str, args: &[&str]) -> Running {
    let port = free_port(LAYOUT);
    Hlocal::new()
        .procfile(procfile)
        .file("hlocal.toml", settings)
        .start_without_router(port)
        .args(args)
        .spawn()
}

const SERVER: &str = "python3 server.py";

/// Runs hlocal without the router on an app prepared by the caller.
fn start_server(app: Hlocal) -> Running {
    let port = free_port(LAYOUT);
    app.start_without_router(port).spawn()
}

fn with_server(app: Hlocal) -> Hlocal {
    app.file(
        "server.py",
        &std::fs::read_to_string(crate::harness::fixture_path("bin/server.py")).expect("fixture"),
    )
}

#[test]
fn a_web_instance_is_up_once_it_listens_on_its_port() {
    let app = start_server(
        with_server(Hlocal::new())
            .procfile(&format!("web: {SERVER}\n"))
            .env("BOOT_DELAY", "0.5"),
    );
    app.wait_for(&format!(
        r"hlocal +\| web\.1: Starting process with command `{SERVER}`$"
    ));
    let listening = app.wait_for(r"web\.1 +\| listening on");
    let up = app.wait_for(r"hlocal +\| web\.1: State changed from starting to up$");
    let lines = app.lines();
    let (l, u) = (
        lines.iter().position(|x| *x == listening),
        lines.iter().position(|x| *x == up),
    );
    assert!(l < u, "up must follow the bind:\n{}", app.output());
    // The check reads socket tables: the app saw no request.
    assert_eq!(app.count(r"web\.1 +\| .*GET"), 0, "{}", app.output());
    app.stop();
}

#[test]
fn ipv6_and_dual_stack_listeners_count_as_up() {
    for bind in ["::", "::1"] {
        let app = start_server(
            with_server(Hlocal::new())
                .procfile(&format!("web: {SERVER}\n"))
                .env("BIND", bind),
        );
        app.wait_for(r"web\.1: State changed from starting to up$");
        app.stop();
    }
}

/// A smoke test: the back-off's doubling to 30 s and its reset are the supervisor's unit
/// tests' (`src/supervisor/tests.rs`), in paused time.
#[test]
fn a_crash_prints_exit_status_and_state_then_restarts_with_backoff() {
    let app = start("worker: echo run; exit 3\n", &[]);
    app.wait_for(r"worker\.1: Process exited with status 3$");
    app.wait_for(r"worker\.1: State changed from up to crashed$");
    app.wait_for(r"worker\.1: State changed from crashed to starting$");
    app.wait_for(r"worker\.1: restarting in 1s$");
    // The first restart was immediate: two runs before the first wait.
    let before_first_wait = app
        .lines()
        .iter()
        .take_while(|l| !l.contains("restarting in"))
        .filter(|l| l.contains("| run"))
        .count();
    assert_eq!(before_first_wait, 2, "{}", app.output());
    app.stop();
}

#[test]
fn exit_0_is_not_restarted_under_on_failure() {
    let app = start(
        "once: echo done\nlater: sleep 1; echo later; sleep 1000\n",
        &[],
    );
    app.wait_for(r"once\.1: State changed from up to exited$");
    app.wait_for(r"later\.1 +\| later$");
    assert_eq!(
        app.count(r"once\.1: State changed from exited to starting"),
        0,
        "{}",
        app.output()
    );
    assert_eq!(app.count(r"once\.1 +\| done"), 1);
    app.stop();
}

#[test]
fn exit_0_is_restarted_under_always() {
    let app = start(
        "once: echo done; sleep 0.2\nidle: sleep 1000\n",
        &["--restart", "always"],
    );
    app.wait_for(r"once\.1: State changed from exited to starting$");
    app.wait_for_nth(r"once\.1 +\| done", 1);
    app.stop();
}

#[test]
fn restart_never_leaves_a_crash_crashed() {
    let mut app = start("bad: exit 5\nidle: sleep 1\n", &["--restart", "never"]);
    assert_eq!(app.wait_exit().code(), Some(5), "{}", app.output());
    assert_eq!(
        app.count(r"bad\.1: State changed from crashed to starting"),
        0
    );
}

#[test]
fn per_process_restart_policy_beats_the_flag() {
    let app = start_with_settings(
        "flaky: exit 1\nonce: echo once\nidle: sleep 1000\n",
        "[process.once]\nrestart = \"always\"\n",
        &["--restart", "never"],
    );
    app.wait_for(r"once\.1: State changed from exited to starting$");
    app.wait_for(r"flaky\.1: State changed from up to crashed$");
    assert_eq!(
        app.count(r"flaky\.1: State changed from crashed to starting"),
        0
    );
    app.stop();
}

#[test]
fn a_web_process_that_never_binds_gets_r10_and_is_killed() {
    let mut app = start(
        "web: echo not binding; sleep 1000\n",
        &["--boot-timeout", "2", "--restart", "never"],
    );
    app.wait_for(r"web\.1: Error R10 \(Boot timeout\) -> Web process failed to bind to \$PORT within 2 seconds of launch$");
    app.wait_for(r"web\.1: Stopping process with SIGKILL$");
    app.wait_for(r"web\.1: Process exited with status 137$");
    app.wait_for(r"web\.1: State changed from starting to crashed$");
    assert_eq!(app.wait_exit().code(), Some(137), "{}", app.output());
}

#[test]
fn a_log_regex_ready_check_defines_up() {
    let app = start_with_settings(
        "db: echo booting; sleep 0.5; echo 'Ready to accept connections'; sleep 1000\n",
        "[process.db]\nready = { log = \"Ready to accept\" }\n",
        &[],
    );
    let ready_line = app.wait_for(r"db\.1 +\| Ready to accept connections");
    let up = app.wait_for(r"db\.1: State changed from starting to up$");
    let lines = app.lines();
    assert!(
        lines.iter().position(|l| *l == ready_line) < lines.iter().position(|l| *l == up),
        "{}",
        app.output()
    );
    app.stop();
}

#[test]
fn an_http_ready_check_defines_up() {
    let app = start_server(
        with_server(Hlocal::new())
            .procfile(&format!("api: {SERVER}\n"))
            .file(
                "hlocal.toml",
                "[process.api]\nready = { http = \"/health\" }\n",
            )
            .env("BOOT_DELAY", "0.3"),
    );
    app.wait_for(r"api\.1 +\| .*GET /health");
    app.wait_for(r"api\.1: State changed from starting to up$");
    app.stop();
}

#[test]
fn depends_on_starts_a_type_once_its_dependencies_are_up() {
    let app = start_with_settings(
        "worker: echo worker starting; sleep 1000\ndb: sleep 0.5; echo db ready; sleep 1000\n",
        "[process.db]\nready = { log = \"db ready\" }\n[process.worker]\ndepends_on = [\"db\"]\n",
        &[],
    );
    app.wait_for(r"worker\.1 +\| worker starting");
    let lines = app.lines();
    let db_up = lines
        .iter()
        .position(|l| l.contains("db.1: State changed from starting to up"));
    let worker_start = lines
        .iter()
        .position(|l| l.contains("worker.1: Starting process"));
    assert!(db_up.is_some() && db_up < worker_start, "{}", app.output());
    app.stop();
}

#[test]
fn a_per_process_stop_signal_is_used() {
    let app = start_with_settings(
        "polite: trap 'echo got INT; exit 0' INT; echo armed; while true; do sleep 0.1; done\n",
        "[process.polite]\nstop_signal = \"SIGINT\"\n",
        &[],
    );
    app.wait_for(r"polite\.1 +\| armed");
    let mut app = app;
    app.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(app.wait_exit().code(), Some(0));
    app.wait_for(r"polite\.1: Stopping all processes with SIGINT$");
    app.wait_for(r"polite\.1 +\| got INT");
    crate::harness::assert_no_leftovers(&app.marker);
}

#[test]
fn processes_a_head_leaves_in_its_group_are_stopped_and_said_so() {
    let app = start(
        "grp: sh -c '(trap \"\" TERM; echo stays; sleep 50) & sleep 0.5; exit 2'\n",
        &["-t", "1", "--restart", "never"],
    );
    app.wait_for(r"grp\.1: State changed from up to crashed$");
    let lines = app.lines();
    let said = |text: &str| lines.iter().position(|l| l.ends_with(text));
    let order = [
        said("grp.1: Stopping remaining processes with SIGTERM"),
        said("failed to exit within 1 second of SIGTERM"),
        said("grp.1: Stopping remaining processes with SIGKILL"),
        said("grp.1: Process exited with status 2"),
    ];
    assert!(order.iter().all(Option::is_some), "{}", app.output());
    assert!(order.is_sorted(), "{}", app.output());
    app.stop();
}

#[test]
fn the_ready_marker_is_printed_when_everything_is_up_and_again_after_a_restart() {
    let app = start("worker: sleep 0.5; exit 1\nidle: sleep 1000\n", &[]);
    app.wait_for(r"hlocal +\| ready: ");
    app.wait_for(r"worker\.1: State changed from crashed to starting$");
    app.wait_for_nth(r"hlocal +\| ready: ", 1);
    app.stop();
}

#[test]
fn dependents_stop_before_their_dependencies() {
    let mut app = start_with_settings(
        "db: echo db ready; sleep 1000\nworker: trap 'echo worker finishing; sleep 0.5; exit 0' TERM; while true; do sleep 0.1; done\n",
        "[process.db]\nready = { log = \"db ready\" }\n[process.worker]\ndepends_on = [\"db\"]\n",
        &[],
    );
    app.wait_for(r"hlocal +\| ready: ");
    app.signal(nix::sys::signal::Signal::SIGINT);
    assert_eq!(app.wait_exit().code(), Some(0));
    let lines = app.lines();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let worker_down = at("worker.1: State changed from stopping to down");
    let db_stopping = at("db.1: Stopping all processes");
    assert!(
        worker_down.is_some() && worker_down < db_stopping,
        "{}",
        app.output()
    );
}

#[test]
fn a_crash_waiting_to_restart_is_down_after_shutdown() {
    let mut app = start("flaky: exit 1\nidle: sleep 1000\n", &[]);
    app.wait_for(r"flaky\.1: restarting in \d+s$");
    app.signal(nix::sys::signal::Signal::SIGINT);
    assert_eq!(app.wait_exit().code(), Some(0));
    app.wait_for(r"flaky\.1: State changed from crashed to down$");
}

#[test]
fn without_the_router_the_ready_url_is_web_1s_port() {
    let app = start_server(
        with_server(Hlocal::new()).procfile(&format!("redis: sleep 1000\nweb: {SERVER}\n")),
    );
    // No router: the instance ports start at the public port; web is type 1.
    let ports = app.wait_for(r"hlocal +\| ports: ");
    let web = ports.split("web.1=").nth(1).unwrap_or("").to_string();
    app.wait_for(&format!(r"hlocal +\| ready: http://localhost:{web}$"));
    app.stop();
}

#[test]
fn a_command_that_cannot_run_is_crashed_for_good_with_one_reason() {
    let mut app = start_server(
        Hlocal::new()
            .procfile("missing: nonexistent-server --port $PORT\nlocked: ./x\n")
            .file("x", "#!/bin/sh\necho never\n"),
    );
    // The first failure's status: which of the two ends first is up to the scheduler.
    let code = app.wait_exit().code();
    assert!(
        matches!(code, Some(126 | 127)),
        "{code:?}: {}",
        app.output()
    );
    let reasons = [
        r"missing\.1: command not found: nonexistent-server$",
        r"locked\.1: permission denied / not executable: \./x$",
    ];
    for (reason, name) in reasons.iter().zip(["missing", "locked"]) {
        assert_eq!(app.count(reason), 1, "{}", app.output());
        let started = format!(r"{name}\.1: State changed from crashed to starting");
        assert_eq!(app.count(&started), 0, "{}", app.output());
    }
    assert_eq!(app.count("restarting in"), 0, "{}", app.output());
}

#[test]
fn a_file_change_runs_a_command_that_could_not_run_again() {
    let app = start("missing: nonexistent-server\nidle: sleep 1000\n", &["-w"]);
    app.wait_for(r"missing\.1: command not found: nonexistent-server$");
    std::fs::write(app.dir.join("touched.txt"), "new code").expect("write");
    app.wait_for(r"missing\.1: State changed from crashed to starting$");
    app.wait_for_nth(r"missing\.1: command not found: nonexistent-server$", 1);
    app.stop();
}

#[test]
fn a_listener_that_left_the_group_is_stopped_before_the_restart() {
    // The server escapes the process group (a daemon's `setsid`) and keeps PORT after the
    // instance's group ends; the restart's server must still be able to bind it.
    let app = start_server(
        with_server(Hlocal::new()).procfile("web: setsid -f python3 server.py; sleep 1; exit 1\n"),
    );
    app.wait_for(r"web\.1: pid \d+ \(.*python3 server\.py\) left the process group and still holds PORT=\d+: stopping it$");
    app.wait_for_nth(r"listening on 127\.0\.0\.1 port", 1);
    assert_eq!(app.count("Address already in use"), 0, "{}", app.output());
    app.stop();
}

#[test]
fn a_worker_that_ran_before_exiting_127_is_restarted() {
    // Up once spawned, so no readiness check says it ran: living past the first seconds does.
    let app = start("worker: sleep 6; exit 127\n", &[]);
    app.wait_for(r"worker\.1: State changed from up to crashed$");
    app.wait_for(r"worker\.1: State changed from crashed to starting$");
    assert_eq!(app.count("command not found"), 0, "{}", app.output());
    app.stop();
}
