#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::Path;
use std::time::Duration;

use super::validate::{SettingsError, check};
use super::values::{EnvFile, Lined};
use super::*;
use crate::input::formation;
use crate::input::procfile::tests::TempDir;
use crate::options::{Balance, ColorChoice, LogFormat, RestartPolicy};
use crate::sys::Signal;

fn ok(text: &str) -> Settings {
    parse(text).unwrap()
}

fn process(text: &str) -> ProcessSettings {
    ok(text).processes.remove(0)
}

fn lined<T>(value: T, line: usize) -> Lined<T> {
    Lined { value, line }
}

macro_rules! error {
    ($($name:ident: $text:expr => $line:expr, $message:expr;)*) => {$(
        #[test]
        fn $name() {
            let (line, message) = parse($text).unwrap_err();
            assert!(message.contains($message), "{message:?} lacks {:?}", $message);
            assert!(!message.contains('\n'), "{message:?}");
            assert_eq!(line, $line, "{message}");
        }
    )*};
}

#[test]
fn empty_file_sets_nothing() {
    assert_eq!(ok(""), Settings::default());
    assert_eq!(ok("# just a comment\n"), Settings::default());
}

#[test]
fn every_top_level_key() {
    let text = r#"
procfile = "Procfile.dev"
env = [".env", ".env.local"]
start_cmd = "bin/web"
formation = "web=2,worker=1"
port = 5006
timeout = 5
boot_timeout = "90s"
request_timeout = 0.5
header_timeout = "10s"
watch_debounce = "200ms"
restart = "on-failure"
exit_on_exit = true
no_release = true
dyno = true
no_router = false
preboot = true
no_timestamp = true
json = false
balance = "random"
color = "never"
log_format = "heroku"
watch = ["src", "lib"]
watch_ignore = ["*.tmp", "log/"]
child_color = false
"#;
    let expected = Settings {
        procfile: Some("Procfile.dev".into()),
        env: Some(vec![lined(".env".into(), 3), lined(".env.local".into(), 3)]),
        start_cmd: Some("bin/web".into()),
        formation: Some(lined(formation::parse("web=2,worker=1").unwrap(), 5)),
        port: Some(5006),
        timeout: Some(Duration::from_secs(5)),
        boot_timeout: Some(Duration::from_secs(90)),
        request_timeout: Some(Duration::from_millis(500)),
        header_timeout: Some(Duration::from_secs(10)),
        watch_debounce: Some(Duration::from_millis(200)),
        restart: Some(RestartPolicy::OnFailure),
        exit_on_exit: Some(true),
        no_release: Some(true),
        dyno: Some(true),
        no_router: Some(false),
        preboot: Some(true),
        no_timestamp: Some(true),
        json: Some(false),
        balance: Some(Balance::Random),
        color: Some(ColorChoice::Never),
        log_format: Some(LogFormat::Heroku),
        watch: Some(WatchSetting::Paths(vec!["src".into(), "lib".into()])),
        watch_ignore: Some(vec!["*.tmp".into(), "log/".into()]),
        child_color: Some(false),
        processes: Vec::new(),
    };
    assert_eq!(ok(text), expected);
}

#[test]
fn env_accepts_a_string_a_comma_list_or_an_empty_array() {
    let paths = |text: &str| -> Vec<EnvFile> {
        let files = ok(text).env.unwrap();
        files.into_iter().map(|file| file.value).collect()
    };
    assert_eq!(paths(r#"env = ".env""#), vec![".env".into()]);
    assert_eq!(
        paths(r#"env = ".env, .env.local""#),
        vec![".env".into(), ".env.local".into()]
    );
    assert_eq!(paths("env = []"), Vec::new());
    assert_eq!(
        paths(r#"env = [".env", { path = ".env.local", required = false }]"#),
        vec![
            ".env".into(),
            EnvFile {
                path: ".env.local".into(),
                required: false
            }
        ]
    );
}

#[test]
fn each_env_file_keeps_its_line_for_a_missing_file_error() {
    let text = "port = 5000\nenv = [\n  \".env\",\n  { path = \".env.local\" },\n]\n";
    let lines: Vec<usize> = ok(text).env.unwrap().iter().map(|f| f.line).collect();
    assert_eq!(lines, [3, 4]);
    let lines: Vec<usize> = ok("\nenv = \"a, b\"")
        .env
        .unwrap()
        .iter()
        .map(|f| f.line)
        .collect();
    assert_eq!(lines, [2, 2]);
}

#[test]
fn watch_true_and_false() {
    assert_eq!(ok("watch = true").watch, Some(WatchSetting::Root));
    assert_eq!(ok("watch = false").watch, Some(WatchSetting::Off));
}

#[test]
fn process_tables_keep_file_order_and_header_lines() {
    let text =
        "port = 1\n\n[process.worker]\nrestart = \"always\"\n\n[process.web]\n[process.clock]\n";
    let names: Vec<(String, usize)> = ok(text)
        .processes
        .into_iter()
        .map(|p| (p.name, p.line))
        .collect();
    assert_eq!(
        names,
        [("worker".into(), 3), ("web".into(), 6), ("clock".into(), 7)]
    );
}

#[test]
fn every_process_key() {
    let text = r#"
[process.web]
restart = "always"
stop_signal = "SIGINT"
stop_timeout = 10
watch = ["src/**/*.py", "templates/*"]
ready = { http = "/health" }
depends_on = ["redis",
  "worker"]
tty = true
child_color = false
"#;
    let expected = ProcessSettings {
        name: "web".into(),
        line: 2,
        restart: Some(RestartPolicy::Always),
        stop_signal: Some(Signal::Int),
        stop_timeout: Some(Duration::from_secs(10)),
        watch: Some(ProcessWatch::Globs(vec![
            "src/**/*.py".into(),
            "templates/*".into(),
        ])),
        ready: Some(Ready::Http("/health".into())),
        depends_on: vec![lined("redis".into(), 8), lined("worker".into(), 9)],
        tty: Some(true),
        child_color: Some(false),
    };
    assert_eq!(process(text), expected);
}

#[test]
fn dotted_process_keys_work_too() {
    let p = process("process.web.stop_signal = \"TERM\"\n");
    assert_eq!((p.name.as_str(), p.line), ("web", 1));
    assert_eq!(p.stop_signal, Some(Signal::Term));
}

#[test]
fn process_watch_forms() {
    assert_eq!(
        process("[process.web]\nwatch = false").watch,
        Some(ProcessWatch::Exempt)
    );
    assert_eq!(
        process("[process.web]\nwatch = true").watch,
        Some(ProcessWatch::Any)
    );
}

#[test]
fn ready_forms() {
    assert_eq!(
        process("[process.web]\nready = \"port\"").ready,
        Some(Ready::Port)
    );
    let Some(Ready::Log(regex)) =
        process("[process.worker]\nready = { log = 'Listening on \\d+' }").ready
    else {
        panic!("expected a log check");
    };
    assert!(regex.is_match("Listening on 8080"));
}

#[test]
fn ready_as_a_sub_table() {
    assert_eq!(
        process("[process.web.ready]\nhttp = \"/\"\n").ready,
        Some(Ready::Http("/".into()))
    );
}

#[test]
fn crlf_and_bom_are_accepted() {
    let s = ok("\u{feff}port = 1\r\n\r\n[process.web]\r\nrestart = \"never\"\r\n");
    assert_eq!(s.port, Some(1));
    assert_eq!(s.processes[0].line, 3);
}

error! {
    unknown_top_level_key_names_it_and_its_line:
        "port = 1\n\n\nfrmation = \"web=1\"\n" => 4, "unknown field `frmation`, expected one of `procfile`";
    unknown_process_key_names_it:
        "[process.web]\nrestart = \"always\"\nstop_sig = \"INT\"\n" => 3, "unknown field `stop_sig`, expected one of `restart`";
    unknown_table_is_an_unknown_key:
        "[processes.web]\n" => 1, "unknown field `processes`";
    toml_syntax_errors_are_one_line:
        "port = 1\nformation = \n" => 2, "";
    duplicate_process_table:
        "[process.web]\n[process.web]\n" => 2, "duplicate key `web`";
    duplicate_key_names_it:
        "port = 1\n\"port\" = 2\n" => 2, "duplicate key `\"port\"`";
    port_out_of_range:
        "port = 70000\n" => 1, "70000";
    wrong_type_for_a_flag:
        "\ndyno = \"yes\"\n" => 2, "invalid type: string \"yes\", expected a boolean";
    bad_restart_policy:
        "restart = \"sometimes\"\n" => 1, "unknown variant `sometimes`, expected one of `on-failure`, `always`, `never`";
    bad_balance:
        "balance = \"least-conn\"\n" => 1, "unknown variant `least-conn`";
    bad_color:
        "color = \"yes\"\n" => 1, "unknown variant `yes`";
    bad_log_format:
        "log_format = \"json\"\n" => 1, "unknown variant `json`";
    bad_duration:
        "\ntimeout = \"5x\"\n" => 2, r#"invalid duration "5x" (use seconds like 5 or 0.2, or a unit: 200ms, 5s, 1m)"#;
    negative_duration:
        "boot_timeout = -1\n" => 1, r#"invalid duration "-1""#;
    bad_process_duration:
        "[process.web]\nstop_timeout = \"forever\"\n" => 2, r#"invalid duration "forever""#;
    bad_formation_syntax:
        "port = 1\nformation = \"web=x\"\n" => 2, r#"invalid count "x" for "web" in formation "web=x""#;
    formation_naming_release:
        "formation = \"release=1\"\n" => 1, "cannot be scaled";
    bad_signal:
        "[process.web]\n\nstop_signal = \"SIGFOO\"\n" => 3, r#"unknown signal "SIGFOO""#;
    empty_procfile_path:
        "procfile = \"\"\n" => 1, "expected a path, found an empty string";
    empty_env_entry:
        "env = [\".env\",\n \"\"]\n" => 2, "expected a path, found an empty string";
    empty_env_in_a_comma_list:
        "env = \".env,,.env.local\"\n" => 1, "expected a path, found an empty string";
    env_of_the_wrong_type:
        "env = 5\n" => 1, "expected an env file path, comma-separated paths, or an array of paths";
    empty_start_cmd:
        "start_cmd = \" \"\n" => 1, "expected a command, found an empty string";
    empty_watch_array:
        "watch = []\n" => 1, "watch = [] names no path (use false to turn watching off)";
    watch_of_the_wrong_type:
        "watch = \"src\"\n" => 1, "expected true, false or an array of paths";
    empty_process_watch_array:
        "[process.web]\nwatch = []\n" => 2, "watch = [] names no glob (use false to exempt this process)";
    bad_watch_glob_names_its_line:
        "[process.web]\nwatch = [\n  \"src/**\",\n  \"src/[\",\n]\n" => 4, "src/[";
    ready_unknown_string:
        "[process.web]\nready = \"bound\"\n" => 2, r#"unknown ready check "bound" (use "port", { log = "regex" } or { http = "/path" })"#;
    ready_unknown_key:
        "[process.web]\nready = { tcp = 5 }\n" => 2, "unknown field `tcp`, expected `log` or `http`";
    ready_two_checks:
        "[process.web]\nready = { log = \"x\", http = \"/\" }\n" => 2, "a ready check takes one of log or http";
    ready_empty_table:
        "[process.web]\nready = {}\n" => 2, "empty ready check";
    ready_http_without_slash:
        "[process.web]\nready = { http = \"health\" }\n" => 2, r#"ready http path must start with "/", found "health""#;
    ready_bad_regex_is_one_line:
        "[process.web]\n\nready = { log = \"(unclosed\" }\n" => 3, r#"invalid ready log regex "(unclosed": unclosed group"#;
    ready_log_of_the_wrong_type:
        "[process.web]\nready = { log = 5 }\n" => 2, "invalid type: integer `5`, expected a string";
    depends_on_not_an_array:
        "[process.web]\ndepends_on = \"redis\"\n" => 2, "expected a sequence";
    process_not_a_table:
        "process = 5\n" => 1, "expected a map";
}

#[test]
fn regex_too_big_is_an_error_not_a_crash() {
    let (line, message) =
        parse("[process.web]\nready = { log = \"(a{1000}){1000}\" }\n").unwrap_err();
    assert_eq!(line, 2);
    assert!(message.starts_with("invalid ready log regex"), "{message}");
}

const TYPES: &[&str] = &["release", "web", "worker", "redis"];

fn check_error(text: &str) -> (usize, SettingsError) {
    check(&ok(text), TYPES).unwrap_err()
}

#[test]
fn check_accepts_known_types_and_acyclic_dependencies() {
    let text = r#"
formation = "web=2"
[process.release]
stop_signal = "INT"
[process.web]
depends_on = ["worker", "redis"]
[process.worker]
depends_on = ["redis"]
[process.redis]
"#;
    assert_eq!(check(&ok(text), TYPES), Ok(()));
}

#[test]
fn process_table_for_an_unknown_type() {
    assert_eq!(
        check_error("port = 1\n[process.wrk]\n"),
        (
            2,
            SettingsError::UnknownProcess {
                name: "wrk".into(),
                known: "release, web, worker, redis".into()
            }
        )
    );
    assert_eq!(
        check_error("[process.wrk]").1.to_string(),
        r#"unknown process type "wrk" in [process.wrk] (the Procfile has: release, web, worker, redis)"#
    );
}

#[test]
fn depends_on_an_unknown_type_names_the_entry_line() {
    let (line, e) =
        check_error("[process.web]\ndepends_on = [\n  \"worker\",\n  \"postgres\",\n]\n");
    assert_eq!(line, 4);
    assert_eq!(
        e.to_string(),
        r#"unknown process type "postgres" in depends_on (the Procfile has: release, web, worker, redis)"#
    );
}

#[test]
fn release_refuses_what_only_long_running_types_use() {
    let (line, e) =
        check_error("port = 1\n[process.release]\nstop_timeout = \"5s\"\nrestart = \"always\"\n");
    assert_eq!((line, e), (2, SettingsError::ReleaseSetting("restart")));
    assert!(check(&ok("[process.release]\nstop_signal = \"INT\"\n"), TYPES).is_ok());
}

#[test]
fn depends_on_cannot_involve_release() {
    assert_eq!(
        check_error("[process.web]\ndepends_on = [\"release\"]\n"),
        (2, SettingsError::Release)
    );
    assert_eq!(
        check_error("\n[process.release]\ndepends_on = [\"web\"]\n"),
        (2, SettingsError::Release)
    );
}

#[test]
fn dependency_cycle_is_named() {
    let text =
        "[process.web]\ndepends_on = [\"worker\"]\n[process.worker]\ndepends_on = [\"web\"]\n";
    let (line, e) = check_error(text);
    assert_eq!(line, 2);
    assert_eq!(e.to_string(), "dependency cycle: web -> worker -> web");
}

#[test]
fn longer_cycle_reached_from_outside_it() {
    let text = r#"
[process.web]
depends_on = ["worker"]
[process.worker]
depends_on = ["redis"]
[process.redis]
depends_on = ["worker"]
"#;
    assert_eq!(
        check_error(text),
        (
            5,
            SettingsError::Cycle(vec!["worker".into(), "redis".into(), "worker".into()])
        )
    );
}

#[test]
fn self_dependency_is_a_cycle() {
    assert_eq!(
        check_error("[process.web]\ndepends_on = [\"web\"]\n"),
        (2, SettingsError::Cycle(vec!["web".into(), "web".into()]))
    );
}

#[test]
fn shared_dependencies_are_not_cycles() {
    let text = "[process.web]\ndepends_on = [\"redis\", \"worker\"]\n[process.worker]\ndepends_on = [\"redis\"]\n";
    assert_eq!(check(&ok(text), TYPES), Ok(()));
}

#[test]
fn formation_naming_an_unknown_type() {
    let (line, e) = check_error("\nformation = \"web=1,wrk=2\"\n");
    assert_eq!(line, 2);
    assert_eq!(
        e.to_string(),
        r#"unknown process type "wrk" in formation (the Procfile has: web, worker, redis)"#
    );
}

#[test]
fn validate_prefixes_the_path() {
    let settings = ok("[process.wrk]\n");
    let message = validate(&settings, Path::new("./hlocal.toml"), TYPES)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(r#"hlocal.toml:1: unknown process type "wrk""#),
        "{message}"
    );
}

#[test]
fn load_without_a_file_is_none() {
    let dir = TempDir::new("settings-none");
    assert_eq!(load(&dir.0).unwrap(), None);
}

#[test]
fn load_reads_the_file_in_the_root() {
    let dir = TempDir::new("settings-ok");
    dir.file(FILE_NAME, b"port = 5100\n");
    assert_eq!(load(&dir.0).unwrap().unwrap().port, Some(5100));
}

#[test]
fn load_errors_read_path_line_message() {
    let dir = TempDir::new("settings-bad");
    let path = dir.file(FILE_NAME, b"port = 1\n\n\nfrmation = \"web=1\"\n");
    let message = load(&dir.0).unwrap_err().to_string();
    let expected = format!(
        "{}:4: unknown field `frmation`, expected one of",
        path.display()
    );
    assert!(message.starts_with(&expected), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn load_of_non_utf8_names_its_line() {
    let dir = TempDir::new("settings-utf8");
    let path = dir.file(FILE_NAME, b"port = 1\nstart_cmd = \"\xff\"\n");
    let message = load(&dir.0).unwrap_err().to_string();
    assert_eq!(message, format!("{}:2: not valid UTF-8", path.display()));
}
