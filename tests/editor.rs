//! Editors and shells: the markers against the matcher `hlocal init vscode` writes, the
//! merge into existing VS Code files, completions, the man page, hlocal.toml's schema.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use regex::Regex;
use serde_json::Value;

use crate::harness::{BIN, Hlocal, LAYOUT, Running, fixture_path, free_port};

/// The begin and end patterns of the background task in the app's generated tasks.json,
/// and the launch configuration's ready-URL pattern.
struct Matcher {
    begins: Regex,
    ends: Regex,
    ready_url: Regex,
}

fn generated_matcher(dir: &Path) -> Matcher {
    let outcome = Hlocal::in_dir(dir).args(["init", "vscode"]).run();
    assert_eq!(outcome.code(), Some(0), "{}", outcome.stderr);
    let tasks = read_json(&dir.join(".vscode/tasks.json"));
    let launch = read_json(&dir.join(".vscode/launch.json"));
    let background = &tasks["tasks"][0]["problemMatcher"]["background"];
    let pattern = |v: &Value| Regex::new(v.as_str().expect("a pattern")).expect("a regex");
    Matcher {
        begins: pattern(&background["beginsPattern"]),
        ends: pattern(&background["endsPattern"]),
        ready_url: pattern(&launch["configurations"][0]["serverReadyAction"]["pattern"]),
    }
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).expect("read");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn start_web_app(procfile: &str, args: &[&str]) -> Running {
    let port = free_port(LAYOUT);
    let server = fs::read_to_string(fixture_path("bin/server.py")).expect("fixture");
    Hlocal::new()
        .file("server.py", &server)
        .procfile(procfile)
        .args(["start", "--color", "always", "-p", &port.to_string()])
        .args(args)
        .spawn()
}

/// The lines matching `re`, in order.
fn matching(app: &Running, re: &Regex) -> Vec<String> {
    app.lines().into_iter().filter(|l| re.is_match(l)).collect()
}

#[test]
fn the_generated_matcher_sees_start_and_restart_end_with_ready() {
    let app = start_web_app("web: python3 server.py\n", &[]);
    let matcher = generated_matcher(&app.dir);
    let ready = app.wait_for(r"hlocal +\| ready: ");
    // Colors are on, and still the marker is plain.
    assert!(app.lines().iter().any(|l| l.contains('\x1b')));
    assert!(matcher.ends.is_match(&ready), "{ready:?}");
    assert!(matching(&app, &matcher.begins).is_empty());
    let url = &matcher.ready_url.captures(&ready).expect("a URL")[1];
    assert!(url.starts_with("http://localhost:"), "{url}");

    let restart = Hlocal::in_dir(&app.dir).args(["restart"]).run();
    assert_eq!(restart.code(), Some(0), "{}", restart.stderr);
    let reloading = app.wait_for(r"hlocal +\| reloading: ");
    assert!(
        reloading.ends_with("reloading: hlocal restart"),
        "{reloading}"
    );
    assert!(matcher.begins.is_match(&reloading), "{reloading:?}");
    app.wait_for_nth(r"hlocal +\| ready: ", 1);
    let lines = app.lines();
    let began = lines.iter().position(|l| matcher.begins.is_match(l));
    let ended = lines.iter().rposition(|l| matcher.ends.is_match(l));
    assert!(
        began < ended,
        "the task ends after it begins again: {lines:#?}"
    );
    app.stop();
}

#[test]
fn a_crash_before_ready_ends_the_task_with_the_error_marker() {
    let app = start_web_app("web: echo booting; exit 3\n", &[]);
    let matcher = generated_matcher(&app.dir);
    let error = app.wait_for(r"hlocal +\| error: ");
    assert!(
        error.ends_with("error: web.1 crashed with status 3"),
        "{error}"
    );
    assert!(matcher.ends.is_match(&error), "{error:?}");
    assert_eq!(matching(&app, &matcher.ends), [error]);
    app.stop();
}

#[test]
fn a_file_change_prints_the_reloading_marker_then_ready() {
    let app = start_web_app(
        "web: python3 server.py\n",
        &["-w", "--watch-debounce", "50ms"],
    );
    app.wait_for(r"hlocal +\| ready: ");
    let path = app.dir.join("server.py");
    let mut text = fs::read_to_string(&path).expect("read");
    text.push_str("\n# changed\n");
    fs::write(&path, text).expect("write");
    app.wait_for(r"^\S+ hlocal +\| reloading: server\.py changed$");
    app.wait_for_nth(r"hlocal +\| ready: ", 1);
    app.stop();
}

#[test]
fn json_markers_are_events() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("web: exit 3\n")
        .args(["start", "--json", "-p", &port.to_string()])
        .spawn();
    app.wait_for(
        r#"^\{"v":1,"ts":"[^"]+","event":"error","reason":"web\.1 crashed with status 3"\}$"#,
    );
    app.stop();
}

const USER_TASKS: &str = r#"{
  // my build
  "version": "2.0.0",
  "tasks": [
    { "label": "build", "command": "make", }, /* trailing comma above */
  ],
}
"#;

#[test]
fn init_vscode_merges_into_existing_files_and_is_idempotent() {
    let app = Hlocal::new()
        .procfile("web: python3 server.py\nworker: sleep 1000\n")
        .file(".vscode/tasks.json", USER_TASKS);
    let dir = app.dir.clone();
    let first = app.args(["init", "vscode"]).run();
    assert_eq!(
        first.stdout,
        ".vscode/tasks.json: added 3 entries, kept the rest\n.vscode/launch.json: created with 1 entry\n"
    );
    let tasks = fs::read_to_string(dir.join(".vscode/tasks.json")).expect("read");
    for kept in [
        "// my build",
        "/* trailing comma above */",
        r#""label": "build""#,
    ] {
        assert!(tasks.contains(kept), "{kept} lost:\n{tasks}");
    }
    for added in ["hlocal: start", "hlocal: run web", "hlocal: run worker"] {
        assert!(tasks.contains(added), "{added} missing:\n{tasks}");
    }
    let launch = fs::read_to_string(dir.join(".vscode/launch.json")).expect("read");
    let second = Hlocal::in_dir(&dir).args(["init", "vscode"]).run();
    assert_eq!(
        second.stdout,
        ".vscode/tasks.json: up to date\n.vscode/launch.json: up to date\n"
    );
    assert_eq!(
        fs::read_to_string(dir.join(".vscode/tasks.json")).ok(),
        Some(tasks)
    );
    assert_eq!(
        fs::read_to_string(dir.join(".vscode/launch.json")).ok(),
        Some(launch)
    );
}

#[test]
fn init_vscode_refuses_a_file_it_cannot_merge_and_writes_nothing() {
    let app = Hlocal::new()
        .procfile("web: sleep 1000\n")
        .file(".vscode/tasks.json", "{ \"tasks\": \"mine\" }\n");
    let dir = app.dir.clone();
    app.args(["init", "vscode"]).run().assert_error(
        "hlocal: error: .vscode/tasks.json: cannot merge: \"tasks\" is not an array; nothing was written\n",
    );
    assert!(!dir.join(".vscode/launch.json").exists());
    let broken = Hlocal::in_dir(&dir)
        .file(
            ".vscode/tasks.json",
            "{\n  \"tasks\": [\n    {\"label\": }\n",
        )
        .args(["init", "vscode"])
        .run();
    assert!(
        broken
            .stderr
            .starts_with("hlocal: error: .vscode/tasks.json:3: cannot merge: "),
        "{}",
        broken.stderr
    );
    assert_eq!(broken.code(), Some(1));
}

/// What the shell gets when it asks hlocal to complete `words` (the last one being typed).
fn complete(dir: &Path, shell: &str, words: &[&str]) -> Vec<String> {
    let output = Command::new(BIN)
        .current_dir(dir)
        .env("HLOCAL_COMPLETE", shell)
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
        .arg("--")
        .args(words)
        .stdin(Stdio::null())
        .output()
        .expect("run hlocal");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn completions_offer_the_procfile_types_where_a_name_goes() {
    let app = Hlocal::new().fixture("demo");
    let dir = app.dir.clone();
    let script = app.args(["completions", "bash"]).run();
    assert!(
        script.stdout.contains("HLOCAL_COMPLETE=\"bash\""),
        "{}",
        script.stdout
    );
    for (words, shell) in [
        (&["hlocal", "restart", ""][..], "bash"),
        (&["hlocal", "logs", ""][..], "fish"),
        (&["hlocal", "start", ""][..], "zsh"),
    ] {
        let offered = complete(&dir, shell, words);
        for name in ["web", "worker"] {
            assert!(offered.iter().any(|o| o == name), "{words:?}: {offered:?}");
        }
        assert!(!offered.iter().any(|o| o == "release"), "{offered:?}");
    }
    let run = complete(&dir, "bash", &["hlocal", "run", ""]);
    assert!(run.iter().any(|o| o == "web"), "{run:?}");
    let scale = complete(&dir, "bash", &["hlocal", "scale", "w"]);
    assert_eq!(scale, ["web=", "worker="]);
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let script = Hlocal::in_dir(&dir).args(["completions", shell]).run();
        assert!(
            script.stdout.contains("HLOCAL_COMPLETE"),
            "{shell}: {}",
            script.stdout
        );
    }
}

#[test]
fn the_man_pages_render_without_warnings() {
    for (args, title) in [
        (&["man"][..], "hlocal"),
        (&["man", "start"][..], "hlocal-start"),
    ] {
        assert_man_page_renders(args, title);
    }
    let unknown = Hlocal::new().args(["man", "nope"]).run();
    assert_eq!(unknown.code(), Some(1), "{}", unknown.stderr);
}

fn assert_man_page_renders(args: &[&str], title: &str) {
    let page = Hlocal::new().args(args).run();
    assert_eq!(page.code(), Some(0));
    assert!(
        page.stdout.contains(&format!("\n.TH {title} 1 ")),
        "{}",
        page.stdout
    );
    let mut groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("groff (Debian: groff-base) renders man pages");
    {
        use std::io::Write;
        let mut stdin = groff.stdin.take().expect("stdin");
        stdin.write_all(page.stdout.as_bytes()).expect("write");
    }
    let rendered = groff.wait_with_output().expect("groff");
    assert!(rendered.status.success());
    assert_eq!(String::from_utf8_lossy(&rendered.stderr), "");
}

fn shipped_schema() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hlocal.schema.json")
}

#[test]
fn the_shipped_schema_is_the_generated_one() {
    let printed = Hlocal::new().args(["schema"]).run();
    let shipped = fs::read_to_string(shipped_schema()).expect("hlocal.schema.json");
    assert!(
        printed.stdout == shipped,
        "hlocal.schema.json is stale: regenerate it with `cargo run -- schema > hlocal.schema.json`"
    );
}

/// Validates each TOML file against the shipped schema with python's jsonschema (the
/// same validator `hlocal export`'s tests use); prints one verdict per file.
const VALIDATE: &str = r#"
import json, sys, tomllib, jsonschema
schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft7Validator(schema)
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        errors = list(validator.iter_errors(tomllib.load(f)))
    print("valid" if not errors else "invalid: " + errors[0].message)
"#;

fn validate(files: &[&Path]) -> Vec<String> {
    let output = Command::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(shipped_schema())
        .args(files)
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_fixture_hlocal_toml_validates_and_a_bad_one_does_not() {
    let fixtures = [
        fixture_path("demo/hlocal.toml"),
        fixture_path("export/app/hlocal.toml"),
    ];
    let app = Hlocal::new()
        .file("every-key.toml", EVERY_KEY)
        .file("typo.toml", "prot = 5000\n")
        .file("bad-duration.toml", "timeout = \"5 minutes\"\n")
        .file(
            "bad-signal.toml",
            "[process.web]\nstop_signal = \"SIGSTOP\"\n",
        )
        .file("bad-ready.toml", "[process.web]\nready = { tcp = 5 }\n");
    let local = [
        "every-key.toml",
        "typo.toml",
        "bad-duration.toml",
        "bad-signal.toml",
        "bad-ready.toml",
    ]
    .map(|name| app.dir.join(name));
    let files: Vec<&Path> = fixtures.iter().chain(&local).map(|p| p.as_path()).collect();
    let verdicts = validate(&files);
    assert_eq!(verdicts[..3], ["valid", "valid", "valid"], "{verdicts:?}");
    for verdict in &verdicts[3..] {
        assert!(verdict.starts_with("invalid: "), "{verdicts:?}");
    }
}

/// Every key hlocal.toml has, in each of its forms.
const EVERY_KEY: &str = r#"
procfile = "Procfile"
env = [".env", { path = ".env.local", required = false }]
start_cmd = "python3 server.py"
formation = "web=2, worker=1"
port = 5000
timeout = 5
boot_timeout = "90s"
request_timeout = 0.5
header_timeout = "200ms"
watch_debounce = "1m"
restart = "on-failure"
exit_on_exit = false
no_release = true
dyno = true
no_router = false
preboot = true
no_timestamp = false
json = false
balance = "round-robin"
color = "never"
log_format = "plain"
watch = ["src", "templates"]
watch_ignore = ["*.log"]

[process.web]
restart = "always"
stop_signal = "SIGINT"
stop_timeout = "10s"
watch = ["src/**/*.py"]
ready = { http = "/health" }
depends_on = ["db"]

[process.db]
stop_signal = "term"
watch = false
ready = "port"

[process.worker]
ready = { log = "^ready$" }
watch = true
"#;

#[test]
fn completions_offer_the_running_app_s_instances() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("worker: sleep 1000\n")
        .args(["start", "-m", "worker=2", "-p", &port.to_string()])
        .spawn();
    app.wait_for(r"hlocal +\| ready: ");
    let offered = complete(&app.dir, "bash", &["hlocal", "stop", "w"]);
    assert_eq!(offered, ["worker", "worker.1", "worker.2"]);
    app.stop();
}

#[test]
fn init_vscode_without_a_procfile_names_the_directory_and_writes_nothing() {
    let app = Hlocal::new();
    let dir = app.dir.clone();
    let out = app.args(["init", "vscode"]).run();
    assert_eq!(out.code(), Some(1));
    let absolute = std::path::absolute(&dir).expect("absolute");
    assert!(
        out.stderr.starts_with(&format!(
            "hlocal: error: no Procfile in {} (",
            absolute.display()
        )),
        "{}",
        out.stderr
    );
    assert!(!dir.join(".vscode").exists());
}

#[test]
fn init_vscode_reads_the_procfile_hlocal_toml_names() {
    let app = Hlocal::new()
        .file("Procfile.dev", "web: ./serve\nworker: ./work\n")
        .file("hlocal.toml", "procfile = \"Procfile.dev\"\n");
    let dir = app.dir.clone();
    let out = app.args(["init", "vscode"]).run();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let tasks = fs::read_to_string(dir.join(".vscode/tasks.json")).expect("tasks.json");
    assert!(tasks.contains("\"hlocal: run worker\""), "{tasks}");
}
