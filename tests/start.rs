use crate::harness::{Hlocal, LAYOUT, free_port};

fn quiet() -> [&'static str; 2] {
    ["--no-timestamp", "--color=never"]
}

#[test]
fn lines_are_timestamped_padded_and_prefixed() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile(
            "web: echo hello from web; sleep 1000\nworker: echo hello from worker; sleep 1000\n",
        )
        .args(["start", "--no-router", "-p", &port.to_string()])
        .spawn();
    let web = app.wait_for(r"web\.1 +\| hello from web$");
    let re = regex::Regex::new(r"^\d\d:\d\d:\d\d web\.1    \| hello from web$").expect("re");
    assert!(re.is_match(&web), "{web:?}");
    let worker = app.wait_for(r"worker\.1 \| hello from worker$");
    assert!(
        worker.ends_with(" worker.1 | hello from worker"),
        "{worker:?}"
    );
    let own = app.wait_for(
        r"hlocal   \| web\.1: Starting process with command `echo hello from web; sleep 1000`",
    );
    assert!(own.len() > 9);
    app.stop();
}

#[test]
fn each_instance_gets_port_ps_and_worker_name_in_foremans_layout() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("web: echo \"env $PS $PORT $FOREMAN_WORKER_NAME dyno=${DYNO:-none}\"; sleep 1000\nworker: echo \"env $PS $PORT\"; sleep 1000\n")
        .args(["start", "--no-router", "-m", "web=2,worker=1", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    app.wait_for(&format!(r"web\.1 +\| env web\.1 {port} web\.1 dyno=none$"));
    app.wait_for(&format!(
        r"web\.2 +\| env web\.2 {} web\.2 dyno=none$",
        port + 1
    ));
    app.wait_for(&format!(r"worker\.1 +\| env worker\.1 {}$", port + 100));
    app.wait_for(&format!(
        r"hlocal +\| ports: web\.1={port} web\.2={} worker\.1={}$",
        port + 1,
        port + 100
    ));
    app.stop();
}

#[test]
fn with_the_router_instances_start_one_above_the_public_port() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("web: echo \"port $PORT\"; exec sleep 1000\nworker: echo \"port $PORT\"; exec sleep 1000\n")
        .args(["start", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    app.wait_for(&format!(r"web\.1 +\| port {}$", port + 1));
    app.wait_for(&format!(r"worker\.1 +\| port {}$", port + 101));
    app.stop();
}

#[test]
fn dyno_is_set_only_on_request() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("worker: echo \"dyno=$DYNO\"; sleep 1000\n")
        .args(["start", "--dyno", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    app.wait_for(r"worker\.1 +\| dyno=worker\.1$");
    app.stop();
}

#[test]
fn env_files_beat_the_shell_and_later_files_beat_earlier_ones() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("worker: echo \"A=$A B=$B C=$C\"; sleep 1000\n")
        .file("one.env", "A=one\nB=one\n")
        .file("two.env", "B=two\n")
        .env("A", "shell")
        .env("C", "shell")
        .args(["start", "-e", "one.env,two.env", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    app.wait_for(r"worker\.1 +\| A=one B=two C=shell$");
    app.stop();
}

#[test]
fn dot_env_is_read_by_default_but_not_when_files_are_named() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("worker: echo \"A=${A:-unset} B=${B:-unset}\"; sleep 1000\n")
        .env_file("A=dotenv\n")
        .file("other.env", "B=other\n")
        .args(["start", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    app.wait_for(r"worker\.1 +\| A=dotenv B=unset$");
    app.stop();
    let app = Hlocal::new()
        .procfile("worker: echo \"A=${A:-unset} B=${B:-unset}\"; sleep 1000\n")
        .env_file("A=dotenv\n")
        .file("other.env", "B=other\n")
        .args(["start", "-e", "other.env", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    app.wait_for(r"worker\.1 +\| A=unset B=other$");
    app.stop();
}

#[test]
fn json_env_files_are_flattened() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("worker: echo \"v=$TOP_KEY\"; sleep 1000\n")
        .file("env.json", "{\"top\": {\"key\": \"v1\"}}\n")
        .args(["start", "-e", "env.json", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    app.wait_for(r"worker\.1 +\| v=v1$");
    app.stop();
}

#[test]
fn port_precedence_flag_then_env_file_then_shell_then_5006() {
    let (a, b, c) = (free_port(LAYOUT), free_port(LAYOUT), free_port(LAYOUT));
    let procfile = "web: echo \"port=$PORT\"; sleep 1000\n";
    let app = Hlocal::new()
        .procfile(procfile)
        .env_file(&format!("PORT={b}\n"))
        .env("PORT", &c.to_string())
        .args(["start", "--no-router", "-p", &a.to_string()])
        .args(quiet())
        .spawn();
    app.wait_for(&format!(r"web\.1 +\| port={a}$"));
    app.stop();
    let app = Hlocal::new()
        .procfile(procfile)
        .env_file(&format!("PORT={b}\n"))
        .env("PORT", &c.to_string())
        .args(["start", "--no-router"])
        .args(quiet())
        .spawn();
    app.wait_for(&format!(r"web\.1 +\| port={b}$"));
    app.stop();
    let app = Hlocal::new()
        .procfile(procfile)
        .env("PORT", &c.to_string())
        .args(["start", "--no-router"])
        .args(quiet())
        .spawn();
    app.wait_for(&format!(r"web\.1 +\| port={c}$"));
    app.stop();
}

#[test]
fn positional_types_start_only_those() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("web: echo web up; sleep 1000\nworker: echo worker up; sleep 1000\nclock: echo clock up; sleep 1000\n")
        .args(["start", "-p", &port.to_string(), "--no-router", "worker", "clock"])
        .args(quiet())
        .spawn();
    app.wait_for(r"worker\.1 +\| worker up");
    app.wait_for(r"clock\.1 +\| clock up");
    app.wait_for("ready: ");
    assert_eq!(app.count("web up"), 0, "{}", app.output());
    app.stop();
}

#[test]
fn a_count_of_zero_is_not_started() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("web: echo web up; sleep 1000\nworker: echo worker up; sleep 1000\n")
        .args([
            "start",
            "-p",
            &port.to_string(),
            "--no-router",
            "web=0,worker=2",
        ])
        .args(quiet())
        .spawn();
    app.wait_for(r"worker\.2 +\| worker up");
    app.wait_for("ready: ");
    assert_eq!(app.count("web up"), 0);
    app.stop();
}

#[test]
fn release_runs_first_and_once() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("web: echo web started; sleep 1000\nrelease: echo migrating; sleep 0.3; echo migrated\n")
        .args(["start", "--no-router", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    app.wait_for("web started");
    let lines = app.lines();
    let migrated = lines
        .iter()
        .position(|l| l.contains("release.1 | migrated"))
        .expect("release ran");
    let started = lines
        .iter()
        .position(|l| l.contains("web started"))
        .expect("web ran");
    assert!(migrated < started, "{}", app.output());
    assert_eq!(app.count(r"release\.1 +\| migrating"), 1);
    app.stop();
}

#[test]
fn failing_release_aborts_the_start_with_its_code() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("web: echo web started; sleep 1000\nrelease: echo failing; exit 3\n")
        .args(["start", "--no-router", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    assert_eq!(app.wait_exit().code(), Some(3));
    assert_eq!(app.count("web started"), 0, "{}", app.output());
    assert!(
        app.count("release.1: Process exited with status 3") == 1,
        "{}",
        app.output()
    );
}

/// A release that announces itself, then runs until stopped (stopping it with `signal`
/// prints `stopped`).
fn endless_release(settings: &str, signal: &str) -> crate::harness::Running {
    let port = free_port(LAYOUT);
    let release = format!(
        "release: trap 'echo stopped; exit 0' {signal}; echo migrating; while true; do sleep 0.1; done\n"
    );
    let app = Hlocal::new()
        .file("hlocal.toml", settings)
        .procfile(&format!("web: echo web started; sleep 1000\n{release}"))
        .args(["start", "--no-router", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    app.wait_for(r"release\.1 +\| migrating");
    app
}

fn assert_interrupted_release_starts_nothing(mut app: crate::harness::Running) {
    app.signal(nix::sys::signal::Signal::SIGINT);
    assert_eq!(app.wait_exit().code(), Some(0), "{}", app.output());
    app.wait_for(r"release\.1 +\| stopped$");
    app.wait_for("Release phase interrupted, not starting the app");
    assert_eq!(app.count("web started"), 0, "{}", app.output());
    assert_eq!(app.count(r"web\.1: "), 0, "{}", app.output());
    crate::harness::assert_no_leftovers(&app.marker);
}

#[test]
fn ctrl_c_during_the_release_starts_nothing() {
    assert_interrupted_release_starts_nothing(endless_release("", "TERM"));
}

#[test]
fn the_release_is_stopped_with_its_own_stop_signal() {
    let settings = "[process.release]\nstop_signal = \"SIGUSR1\"\nstop_timeout = \"20s\"\n";
    assert_interrupted_release_starts_nothing(endless_release(settings, "USR1"));
}

#[test]
fn a_release_killed_by_a_signal_from_elsewhere_aborts_with_128_plus_n() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("web: echo web started; sleep 1000\nrelease: echo migrating; kill -TERM $$\n")
        .args(["start", "--no-router", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    assert_eq!(app.wait_exit().code(), Some(143), "{}", app.output());
    app.wait_for("Release phase failed with status 143, not starting the app");
    assert_eq!(app.count("web started"), 0, "{}", app.output());
}

#[test]
fn no_release_skips_it() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("web: echo web started; sleep 1000\nrelease: echo migrating\n")
        .args([
            "start",
            "--no-router",
            "--no-release",
            "-p",
            &port.to_string(),
        ])
        .args(quiet())
        .spawn();
    app.wait_for("web started");
    assert_eq!(app.count(r"release\.1 +\| migrating"), 0);
    app.stop();
}

#[test]
fn when_every_one_shot_task_succeeds_hlocal_exits_0() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("a: echo a done\nb: sleep 0.2; echo b done\n")
        .args(["start", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    assert_eq!(app.wait_exit().code(), Some(0), "{}", app.output());
    assert_eq!(
        app.count(r"a\.1: State changed from up to exited"),
        1,
        "{}",
        app.output()
    );
    assert_eq!(app.count(r"b\.1 +\| b done"), 1);
}

#[test]
fn when_all_ended_and_one_failed_hlocal_exits_with_its_code() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("a: echo a done\nb: sleep 0.2; exit 4\n")
        .args(["start", "--restart", "never", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    assert_eq!(app.wait_exit().code(), Some(4), "{}", app.output());
    assert_eq!(
        app.count(r"b\.1: State changed from up to crashed"),
        1,
        "{}",
        app.output()
    );
}

#[test]
fn exit_on_exit_stops_everything_with_that_code() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("web: sleep 1000\nworker: sleep 0.3; exit 7\n")
        .args([
            "start",
            "--no-router",
            "--exit-on-exit",
            "-p",
            &port.to_string(),
        ])
        .args(quiet())
        .spawn();
    assert_eq!(app.wait_exit().code(), Some(7), "{}", app.output());
    assert_eq!(
        app.count(r"web\.1: State changed from stopping to down"),
        1,
        "{}",
        app.output()
    );
    crate::harness::assert_no_leftovers(&app.marker);
}

#[test]
fn a_command_that_does_not_exist_crashes_with_127() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("worker: no-such-command-hlocal\n")
        .args(["start", "--restart", "never", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    assert_eq!(app.wait_exit().code(), Some(127), "{}", app.output());
    assert_eq!(
        app.count(r"worker\.1 +\| .*not found"),
        1,
        "{}",
        app.output()
    );
    assert_eq!(app.count(r"worker\.1: Process exited with status 127"), 1);
}

#[test]
fn a_simple_command_runs_without_a_shell_in_between() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("worker: sleep 1000\n")
        .args(["start", "-p", &port.to_string()])
        .args(quiet())
        .spawn();
    app.wait_for(r"worker\.1: State changed from starting to up");
    let comms = || -> Vec<String> {
        crate::harness::children(app.pid())
            .iter()
            .map(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .unwrap_or_default()
                    .replace('\0', " ")
            })
            .collect()
    };
    // `sh -c 'exec sleep 1000'` becomes `sleep` once the shell has exec'd.
    crate::harness::eventually("sleep is a direct child", || {
        comms().iter().any(|c| c.starts_with("sleep 1000"))
    });
    assert!(
        !comms().iter().any(|c| c.starts_with("sh ")),
        "children of hlocal: {:?}",
        comms()
    );
    app.stop();
}

#[test]
fn an_empty_formation_says_there_is_nothing_to_start() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("web: sleep 1000\n")
        .args(["start", "--no-timestamp", "-p", &port.to_string(), "web=0"])
        .spawn();
    assert_eq!(app.wait_exit().code(), Some(0));
    app.wait_for(r"hlocal +\| nothing to start: the formation has no instances$");
}

#[test]
fn hlocal_toml_gives_defaults_and_flags_beat_it() {
    let (file_port, flag_port) = (free_port(LAYOUT), free_port(LAYOUT));
    let app = Hlocal::new()
        .procfile("worker: echo \"port $PORT\"; sleep 1000\n")
        .file(
            "hlocal.toml",
            &format!("formation = \"worker=2\"\nport = {file_port}\nno_timestamp = true\n"),
        )
        .args(["start", "--no-router"])
        .spawn();
    app.wait_for(&format!(r"^worker\.1 +\| port {file_port}$"));
    app.wait_for(&format!(r"^worker\.2 +\| port {}$", file_port + 1));
    app.stop();
    let app = Hlocal::new()
        .procfile("worker: echo \"port $PORT\"; sleep 1000\n")
        .file(
            "hlocal.toml",
            &format!("formation = \"worker=2\"\nport = {file_port}\nno_timestamp = true\n"),
        )
        .args([
            "start",
            "--no-router",
            "-p",
            &flag_port.to_string(),
            "-m",
            "worker=1",
        ])
        .spawn();
    app.wait_for(&format!(r"^worker\.1 +\| port {flag_port}$"));
    app.wait_for("ready: ");
    assert_eq!(app.count(r"worker\.2"), 0, "{}", app.output());
    app.stop();
}

#[test]
fn flags_turn_off_what_hlocal_toml_turned_on() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("release: echo migrating\nonce: echo \"once dyno=[${DYNO:-}]\"\n")
        .file(
            "hlocal.toml",
            "no_release = true\ndyno = true\nexit_on_exit = true\nno_timestamp = true\nwatch = [\"no-such-dir\"]\n",
        )
        .args(["start", "--color=never", "--no-router", "-p", &port.to_string()])
        .args(["--release", "--no-dyno", "--no-exit-on-exit", "--timestamp", "--no-watch"])
        .args(["--restart", "always"])
        .spawn();
    // Started at all: watching the missing directory would have been refused.
    app.wait_for(r"^\d\d:\d\d:\d\d release\.1 +\| migrating$");
    // A second run: the first exit did not stop everything.
    app.wait_for_nth(r"^\d\d:\d\d:\d\d once\.1 +\| once dyno=\[\]$", 1);
    app.stop();
}

#[test]
fn router_flag_undoes_no_router_in_hlocal_toml() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("worker: echo \"port $PORT\"; sleep 1000\nweb: sleep 1000\n")
        .file("hlocal.toml", "no_router = true\n")
        .args(["start", "-m", "worker=1", "-p", &port.to_string()])
        .args(["--router"])
        .args(quiet())
        .spawn();
    app.wait_for(&format!(
        r"hlocal +\| router listening on http://localhost:{port}$"
    ));
    // The router has the public port; the types' ports start one above it.
    app.wait_for(&format!(r"^worker\.1 +\| port {}$", port + 1));
    app.stop();
}

#[test]
fn all_n_scales_every_type() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("a: sleep 1000\nb: sleep 1000\n")
        .args([
            "start",
            "--no-timestamp",
            "-p",
            &port.to_string(),
            "-m",
            "all=2",
        ])
        .spawn();
    app.wait_for(&format!(
        r"hlocal +\| ports: a\.1={port} a\.2={} b\.1={} b\.2={}$",
        port + 1,
        port + 100,
        port + 101
    ));
    app.stop();
}

#[test]
fn procfile_flag_makes_its_directory_the_app_root() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .file(
            "sub/Procfile",
            "worker: echo \"in $(basename $(pwd)) $GREETING\"; sleep 1000\n",
        )
        .file("sub/.env", "GREETING=hi\n")
        .args([
            "start",
            "--no-timestamp",
            "-f",
            "sub/Procfile",
            "-p",
            &port.to_string(),
        ])
        .spawn();
    app.wait_for(r"worker\.1 +\| in sub hi$");
    app.stop();
    let app = Hlocal::new()
        .file(
            "sub/Procfile",
            "worker: echo \"in $(basename $(pwd))\"; sleep 1000\n",
        )
        .args([
            "start",
            "--no-timestamp",
            "-d",
            "sub",
            "-p",
            &port.to_string(),
        ])
        .spawn();
    app.wait_for(r"worker\.1 +\| in sub$");
    app.stop();
}

#[test]
fn start_cmd_runs_a_web_process_without_a_procfile() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .start_without_router(port)
        .args([
            "--start-cmd",
            "python3 -m http.server $PORT --bind 127.0.0.1",
        ])
        .spawn();
    app.wait_for(r"web\.1: State changed from starting to up$");
    app.stop();
}

#[test]
fn release_settings_that_make_no_sense_are_refused() {
    Hlocal::new()
        .file("hlocal.toml", "port = 5006\n[process.release]\nrestart = \"always\"\n")
        .procfile("web: sleep 1000\nrelease: echo migrating\n")
        .args(["check"])
        .run()
        .assert_error("hlocal: error: hlocal.toml:2: restart in [process.release]: release runs once, to completion, so only stop_signal and stop_timeout apply\n");
}

/// Runs `hlocal start` to its end (60 s at most) under an open-file limit of
/// `soft`/`hard`, as `ulimit -Sn soft -Hn hard` in the shell would; returns its exit
/// code and everything it printed.
fn start_with_open_files_limit(app: Hlocal, soft: u64, hard: u64) -> (Option<i32>, String) {
    use nix::sys::resource::{Resource, setrlimit};
    use std::os::unix::process::CommandExt;
    let log = app.dir.join("hlocal.log");
    let out = std::fs::File::create(&log).expect("log file");
    let mut command = app.command();
    command
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out);
    // SAFETY: only `setrlimit`, async-signal-safe, runs between fork and exec.
    unsafe {
        command.pre_exec(move || Ok(setrlimit(Resource::RLIMIT_NOFILE, soft, hard)?));
    }
    let mut child = command.spawn().expect("spawn hlocal");
    let status = crate::harness::wait_with_deadline(&mut child, std::time::Duration::from_secs(60));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    crate::harness::assert_no_leftovers(&app.marker);
    let printed = std::fs::read_to_string(&log).unwrap_or_default();
    (status.and_then(|s| s.code()), printed)
}

/// `count` instances of a worker running `command` once (no restarts).
fn workers(command: &str, count: usize) -> Hlocal {
    let formation = format!("worker={count}");
    Hlocal::new()
        .procfile(&format!("worker: {command}\n"))
        .args([
            "start",
            "--no-timestamp",
            "--restart",
            "never",
            "-m",
            &formation,
        ])
}

#[test]
fn a_formation_that_cannot_fit_the_open_file_limit_is_refused() {
    let (code, printed) = start_with_open_files_limit(workers("echo up", 100), 64, 64);
    assert_eq!(code, Some(1), "{printed}");
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {printed}");
    assert!(
        lines[0].starts_with("hlocal: error: 100 instances need about ")
            && lines[0].contains("more than the limit of 64"),
        "{printed}"
    );
}

#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    let app = workers("echo up; sleep 1", 40);
    let (code, printed) = start_with_open_files_limit(app, 64, 4096);
    assert_eq!(code, Some(0), "{printed}");
    assert_eq!(printed.matches("| up").count(), 40, "{printed}");
    assert!(!printed.contains("Failed to start"), "{printed}");
}

/// Sets the soft open-file limit of a running process; returns the one it had.
/// `prlimit` on another process is Linux's.
#[cfg(target_os = "linux")]
fn set_soft_open_files_limit(pid: i32, soft: u64) -> u64 {
    use nix::libc;
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reads the limits into `old`, a valid rlimit.
    let got = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) };
    assert_eq!(got, 0, "prlimit: {}", std::io::Error::last_os_error());
    let new = libc::rlimit {
        rlim_cur: soft,
        rlim_max: old.rlim_max,
    };
    // SAFETY: `new` is a valid rlimit; the old value is not asked for.
    let set = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
    assert_eq!(set, 0, "prlimit: {}", std::io::Error::last_os_error());
    old.rlim_cur
}

#[cfg(target_os = "linux")]
#[test]
fn a_spawn_out_of_file_descriptors_is_retried_rather_than_crashed_for_good() {
    let app = Hlocal::new()
        .procfile("worker: while [ ! -e crash ]; do sleep 0.05; done; rm crash; exit 1\n")
        .args(["start", "--no-timestamp"])
        .spawn();
    app.wait_for(r"hlocal +\| ready: ");
    // 0, 1 and 2 are open: every new descriptor of hlocal's fails with EMFILE.
    let limit = set_soft_open_files_limit(app.pid(), 3);
    std::fs::write(app.dir.join("crash"), "").expect("crash file");
    app.wait_for(
        r"worker\.1: Failed to start process: Too many open files \(os error 24\): hlocal's open-file limit is 3 \(ulimit -n\); retrying in 1s$",
    );
    set_soft_open_files_limit(app.pid(), limit);
    app.wait_for_nth(r"worker\.1: State changed from starting to up", 1);
    app.stop();
}

#[test]
fn a_process_that_cannot_be_spawned_says_why_between_starting_and_crashed() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("worker: sleep 1000\n")
        .env("PATH", "/nonexistent")
        .args([
            "start",
            "--no-timestamp",
            "--no-router",
            "-p",
            &port.to_string(),
        ])
        .spawn();
    assert_eq!(app.wait_exit().code(), Some(127), "{}", app.output());
    let lines: Vec<String> = app
        .lines()
        .into_iter()
        .filter(|l| l.contains("worker.1: "))
        .collect();
    assert_eq!(
        lines,
        [
            "hlocal   | worker.1: Starting process with command `sleep 1000`",
            "hlocal   | worker.1: Failed to start process: No such file or directory (os error 2)",
            "hlocal   | worker.1: State changed from starting to crashed",
        ]
    );
}
