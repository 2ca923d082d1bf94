use std::fs;

use crate::harness::{
    Hlocal, LAYOUT, LONG, Running, assert_no_leftovers, eventually, free_port, wait_with_deadline,
};

fn watched(settings: &str, args: &[&str]) -> Running {
    watched_with("100ms", settings, args)
}

fn watched_with(debounce: &str, settings: &str, args: &[&str]) -> Running {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("api: echo api run; sleep 1000\nworker: echo worker run; sleep 1000\nclock: echo clock run; sleep 1000\n")
        .file("hlocal.toml", settings)
        .file("app.py", "print('v1')\n")
        .file("lib/util.rb", "1\n")
        .file(".gitignore", "*.secret\n")
        .args(["start", "--no-timestamp", "--no-router", "-w", "--watch-debounce", debounce, "-p", &port.to_string()])
        .args(args)
        .spawn();
    app.wait_for(r"hlocal +\| ready:");
    app
}

fn write(app: &Running, path: &str, text: &str) {
    fs::write(app.dir.join(path), text).expect("write");
}

#[test]
fn a_change_restarts_exactly_the_instances_that_watch_it() {
    let app = watched(
        "[process.worker]\nwatch = [\"**/*.rb\"]\n[process.clock]\nwatch = false\n",
        &[],
    );
    write(&app, "app.py", "print('v2')\n");
    app.wait_for(r"hlocal +\| Restarting api\.1: app\.py changed$");
    app.wait_for_nth(r"api\.1 +\| api run", 1);
    write(&app, "lib/util.rb", "2\n");
    app.wait_for(r"hlocal +\| Restarting worker\.1: lib/util\.rb changed$");
    app.wait_for_nth(r"worker\.1 +\| worker run", 1);
    assert_eq!(
        app.count(r"Restarting worker\.1: app\.py"),
        0,
        "{}",
        app.output()
    );
    assert_eq!(app.count(r"Restarting clock"), 0, "{}", app.output());
    app.stop();
}

#[test]
fn a_restart_is_a_normal_stop_then_start() {
    let app = watched("", &[]);
    write(&app, "app.py", "print('v2')\n");
    app.wait_for(r"api\.1: Stopping all processes with SIGTERM$");
    app.wait_for(r"api\.1: State changed from stopping to down$");
    app.wait_for(r"api\.1: State changed from down to starting$");
    app.wait_for_nth(r"api\.1: State changed from starting to up$", 1);
    app.stop();
}

#[test]
fn ignored_files_restart_nothing() {
    let app = watched("", &["--watch-ignore", "*.tmp"]);
    write(&app, "key.secret", "x");
    fs::create_dir_all(app.dir.join("deep/dir")).expect("mkdir");
    write(&app, "deep/dir/scratch.tmp", "x");
    fs::create_dir_all(app.dir.join("node_modules/pkg")).expect("mkdir");
    write(&app, "node_modules/pkg/index.js", "x");
    // A real change afterwards: the first restart must name it, not an ignored file.
    write(&app, "app.py", "print('v2')\n");
    let first = app.wait_for(r"Restarting api\.1: ");
    assert!(
        first.ends_with("Restarting api.1: app.py changed"),
        "{}",
        app.output()
    );
    app.stop();
}

#[test]
fn twenty_rapid_writes_cause_one_restart() {
    // A long quiet period, so a busy machine's pauses between writes stay inside it.
    let app = watched_with(
        "1s",
        "[process.worker]\nwatch = false\n[process.clock]\nwatch = false\n",
        &[],
    );
    for i in 0..20 {
        write(&app, "app.py", &format!("print({i})\n"));
    }
    app.wait_for_nth(r"api\.1: State changed from starting to up$", 1);
    // A later, separate change: the restarts are exactly two.
    write(&app, "lib/util.rb", "2\n");
    app.wait_for(r"Restarting api\.1: lib/util\.rb changed");
    assert_eq!(app.count(r"Restarting api\.1: "), 2, "{}", app.output());
    app.stop();
}

#[test]
fn rename_and_replace_saves_count() {
    let app = watched("", &[]);
    // vim / JetBrains: write a temporary file, then rename it over the original.
    write(&app, "app.py.tmp-save", "print('v2')\n");
    fs::rename(app.dir.join("app.py.tmp-save"), app.dir.join("app.py")).expect("rename");
    app.wait_for(r"Restarting api\.1: app\.py changed");
    app.stop();
}

#[test]
fn a_new_empty_directory_is_not_a_change_but_a_file_in_it_is() {
    let app = watched("", &[]);
    fs::create_dir(app.dir.join("newdir")).expect("mkdir");
    write(&app, "newdir/file.py", "x");
    let first = app.wait_for(r"Restarting api\.1: ");
    assert!(
        first.ends_with("newdir/file.py changed"),
        "{}",
        app.output()
    );
    app.stop();
}

#[test]
fn watch_paths_limit_what_is_watched_and_per_type_true_works_without_w() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("api: echo api run; sleep 1000\nworker: echo worker run; sleep 1000\n")
        .file(
            "hlocal.toml",
            "watch_debounce = \"100ms\"\n[process.worker]\nwatch = true\n",
        )
        .file("src/app.py", "1\n")
        .file("notes.txt", "1\n")
        .start_without_router(port)
        .spawn();
    app.wait_for(r"hlocal +\| ready:");
    write(&app, "notes.txt", "2\n");
    app.wait_for(r"Restarting worker\.1: notes\.txt changed$");
    assert_eq!(
        app.count(r"Restarting api\.1"),
        0,
        "without -w only worker watches: {}",
        app.output()
    );
    app.stop();

    let app = watched_paths(&["-w", "src"]);
    write(&app, "notes.txt", "3\n");
    write(&app, "src/app.py", "2\n");
    let first = app.wait_for(r"Restarting api\.1: ");
    assert!(first.ends_with("src/app.py changed"), "{}", app.output());
    app.stop();
}

fn watched_paths(args: &[&str]) -> Running {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("api: echo api run; sleep 1000\n")
        .file("src/app.py", "1\n")
        .file("notes.txt", "1\n")
        .args([
            "start",
            "--no-timestamp",
            "--no-router",
            "--watch-debounce",
            "100ms",
            "-p",
            &port.to_string(),
        ])
        .args(args)
        .spawn();
    app.wait_for(r"hlocal +\| ready:");
    app
}

#[test]
fn hlocals_own_output_file_in_the_app_root_is_not_a_change() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("ticker: while :; do echo tick; sleep 0.1; done\n")
        .file("app.py", "print('v1')\n");
    let (dir, out, marker) = (app.dir.clone(), app.dir.join("out.txt"), app.marker.clone());
    let mut child = app
        .command()
        .args(["start", "--no-timestamp", "--no-router", "-w"])
        .args(["--watch-debounce", "50ms", "-p", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(&out).expect("out.txt"))
        .stderr(fs::File::create(dir.join("err.txt")).expect("err.txt"))
        .spawn()
        .expect("spawn hlocal");
    let text = || fs::read_to_string(&out).unwrap_or_default();
    // Fifteen ticks are thirty debounce periods of hlocal writing into the watched tree.
    eventually("fifteen ticks in out.txt", || {
        text().matches("ticker.1 | tick").count() >= 15
    });
    fs::write(dir.join("app.py"), "print('v2')\n").expect("write");
    eventually("the restart for app.py", || {
        text().contains("Restarting ticker.1: app.py changed")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    assert!(
        wait_with_deadline(&mut child, LONG).is_some(),
        "hlocal did not exit"
    );
    assert_no_leftovers(&marker);
    let text = text();
    let restarts: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("| Restarting ").map(|(_, why)| why))
        .collect();
    assert_eq!(restarts, ["ticker.1: app.py changed"], "{text}");
}

#[test]
fn no_watch_undoes_watch_in_hlocal_toml() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("ticker: while :; do echo tick; sleep 0.1; done\n")
        .file(
            "hlocal.toml",
            "watch = true\nwatch_debounce = \"50ms\"\n[process.ticker]\nwatch = [\"*.py\"]\n",
        )
        .file("app.py", "print('v1')\n")
        .start_without_router(port)
        .args(["--no-watch"])
        .spawn();
    app.wait_for(r"hlocal +\| ready:");
    write(&app, "app.py", "print('v2')\n");
    // Ten ticks after the change are twenty debounce periods: a watcher would have
    // restarted the ticker by then.
    let ticks_so_far = app.count(r"ticker\.1 +\| tick$");
    app.wait_for_nth(r"ticker\.1 +\| tick$", ticks_so_far + 10);
    assert_eq!(app.count("Restarting"), 0, "{}", app.output());
    app.stop();
}

#[test]
fn with_watch_a_finished_task_waits_for_a_change_and_runs_again() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("task: python3 task.py\n")
        .file("task.py", "print('first')\n")
        .start_without_router(port)
        .args(["-w", "--watch-debounce", "50ms"])
        .spawn();
    app.wait_for(r"task\.1: waiting for a file change to run again$");
    write(&app, "task.py", "print('second')\n");
    app.wait_for(r"task\.1 +\| second$");
    app.wait_for_nth(r"task\.1: waiting for a file change to run again$", 1);
    let still_running = matches!(app.child.try_wait(), Ok(None));
    assert!(still_running, "{}", app.output());
    assert_eq!(app.stop().code(), Some(0));
}
