use std::io::Write;
use std::process::{Command, Stdio};

use crate::harness::{BIN, Hlocal};

fn run_in(app: &Hlocal, args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .arg("run")
        .args(args)
        .current_dir(&app.dir)
        .env_remove("PORT")
        .env_remove("DYNO")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn dyno_is_set_by_the_flag_or_hlocal_toml_and_undone_by_no_dyno() {
    let show = ["sh", "-c", "echo ${DYNO-unset}"];
    let plain = Hlocal::new().procfile("web: x\n");
    assert_eq!(run_in(&plain, &show, "").1, "unset\n");
    let flagged: Vec<&str> = ["--dyno"].iter().chain(&show).copied().collect();
    assert_eq!(run_in(&plain, &flagged, "").1, "run.1\n");
    let file = Hlocal::new()
        .procfile("web: x\n")
        .file("hlocal.toml", "dyno = true\n");
    assert_eq!(run_in(&file, &show, "").1, "run.1\n");
    let undone: Vec<&str> = ["--no-dyno"].iter().chain(&show).copied().collect();
    assert_eq!(run_in(&file, &undone, "").1, "unset\n");
}

#[test]
fn run_has_the_apps_env_and_port_and_prints_only_the_commands_output() {
    let app = Hlocal::new().procfile("web: x\n").env_file("GREETING=hi\n");
    let (code, out, err) = run_in(&app, &["sh", "-c", "echo $GREETING $PORT"], "");
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (Some(0), "hi 5006\n", "")
    );
}

#[test]
fn run_passes_stdin_through() {
    let app = Hlocal::new().procfile("web: x\n");
    let (code, out, _) = run_in(&app, &["sh", "-c", "read x; echo got $x"], "hello\n");
    assert_eq!((code, out.as_str()), (Some(0), "got hello\n"));
}

#[test]
fn run_a_procfile_type_runs_its_command() {
    let app = Hlocal::new().procfile("hello: echo hello from $PORT\n");
    let (code, out, _) = run_in(&app, &["-p", "7777", "hello"], "");
    assert_eq!((code, out.as_str()), (Some(0), "hello from 7777\n"));
}

#[test]
fn run_exits_with_the_commands_status() {
    let app = Hlocal::new().procfile("web: x\n");
    assert_eq!(run_in(&app, &["sh", "-c", "exit 42"], "").0, Some(42));
}

#[test]
fn run_reports_death_by_signal_as_128_plus_n() {
    let app = Hlocal::new().procfile("web: x\n");
    assert_eq!(
        run_in(&app, &["sh", "-c", "kill -TERM $$"], "").0,
        Some(143)
    );
}

#[test]
fn run_a_missing_command_is_127() {
    let app = Hlocal::new().procfile("web: x\n");
    let (code, out, err) = run_in(&app, &["no-such-command-hlocal"], "");
    assert_eq!((code, out.as_str()), (Some(127), ""));
    assert!(
        err.starts_with("hlocal: error: cannot run `no-such-command-hlocal`"),
        "{err}"
    );
}

#[test]
fn check_lists_every_type_release_included() {
    let out = Hlocal::new()
        .procfile("web: a\nworker: b\nrelease: c\n")
        .args(["check"])
        .run();
    assert_eq!(
        out.stdout,
        "valid procfile detected (web, worker, release)\n"
    );
    assert_eq!(out.code(), Some(0));
}
