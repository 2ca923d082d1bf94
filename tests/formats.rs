use crate::harness::{Hlocal, LAYOUT, free_port};

#[test]
fn heroku_log_format_uses_logplex_lines() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("worker: echo hello; sleep 1000\n")
        .args(["start", "--log-format", "heroku", "-p", &port.to_string()])
        .spawn();
    let ts = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00";
    app.wait_for(&format!(r"^{ts} app\[worker\.1\]: hello$"));
    app.wait_for(&format!(
        r"^{ts} heroku\[worker\.1\]: Starting process with command `echo hello; sleep 1000`$"
    ));
    app.wait_for(&format!(
        r"^{ts} heroku\[worker\.1\]: State changed from starting to up$"
    ));
    app.stop();
}

#[test]
fn json_output_is_only_json_objects_with_stable_fields() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("worker: echo hello; echo oops >&2; exit 2\n")
        .args([
            "start",
            "--json",
            "--restart",
            "never",
            "-p",
            &port.to_string(),
        ])
        .spawn();
    assert_eq!(app.wait_exit().code(), Some(2));
    let mut states = Vec::new();
    let mut logs = Vec::new();
    let mut messages = Vec::new();
    let lines = app.lines();
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["ts"].is_string(), "{line}");
        assert_eq!(v["v"], 1, "{line}");
        match v["event"].as_str() {
            Some("state") => {
                for key in ["name", "from", "to", "pid", "port", "code"] {
                    assert!(v.get(key).is_some(), "{key} missing: {line}");
                }
                states.push((
                    v["from"].clone(),
                    v["to"].as_str().unwrap_or("").to_string(),
                    v["code"].clone(),
                ));
            }
            Some("ready" | "error" | "exit") => {}
            Some("message") => {
                assert!(v["level"].is_string() && v.get("name").is_some(), "{line}");
                messages.push(v["text"].as_str().unwrap_or("").to_string());
            }
            Some("log") => logs.push((
                v["name"].as_str().unwrap_or("").to_string(),
                v["stream"].clone(),
                v["line"].clone(),
            )),
            _ => panic!("unexpected event: {line}"),
        }
    }
    let last = lines.last().map(String::as_str).unwrap_or_default();
    assert!(
        last.contains(r#""event":"exit","code":2}"#),
        "the exit event must come last: {last}"
    );
    assert!(
        messages.contains(&"Process exited with status 2".to_string()),
        "{messages:?}"
    );
    assert!(
        logs.contains(&("worker.1".into(), "stdout".into(), "hello".into())),
        "{logs:?}"
    );
    assert!(
        logs.contains(&("worker.1".into(), "stderr".into(), "oops".into())),
        "{logs:?}"
    );
    assert_eq!(
        states[0],
        (
            serde_json::Value::Null,
            "starting".into(),
            serde_json::Value::Null
        )
    );
    assert!(
        states.contains(&("up".into(), "crashed".into(), 2.into())),
        "{states:?}"
    );
}

#[test]
fn the_release_phase_changes_state_in_json_like_an_instance() {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile("release: exit 4\nweb: sleep 1000\n")
        .args(["start", "--json", "-p", &port.to_string()])
        .spawn();
    assert_eq!(app.wait_exit().code(), Some(4));
    let states: Vec<serde_json::Value> = app
        .lines()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["event"] == "state")
        .inspect(|event| assert!(event["pid"].is_u64(), "{event}"))
        .map(|event| {
            serde_json::json!([
                event["name"],
                event["from"],
                event["to"],
                event["port"],
                event["code"]
            ])
        })
        .collect();
    assert_eq!(
        states,
        [
            serde_json::json!(["release.1", null, "starting", null, null]),
            serde_json::json!(["release.1", "starting", "up", null, null]),
            serde_json::json!(["release.1", "up", "crashed", null, 4]),
        ]
    );
}

#[test]
fn json_ready_event() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("worker: sleep 1000\n")
        .args(["start", "--json", "-p", &port.to_string()])
        .spawn();
    // No web process: nothing to open, so no URL.
    app.wait_for(r#"^\{"v":1,"ts":"[^"]+","event":"ready","url":null\}$"#);
    app.stop();
}

#[test]
fn json_with_the_heroku_format_is_refused() {
    let outcome = Hlocal::new()
        .procfile("worker: sleep 1000\n")
        .args(["start", "--json", "--log-format", "heroku"])
        .run();
    outcome.assert_error(
        "hlocal: error: --json: cannot be combined with --log-format heroku (JSON replaces the text formats)\n",
    );
}

#[test]
fn json_with_the_heroku_format_is_refused_where_each_was_asked_for() {
    let both_in_the_file = Hlocal::new()
        .procfile("worker: sleep 1000\n")
        .file("hlocal.toml", "json = true\nlog_format = \"heroku\"\n")
        .args(["check"])
        .run();
    both_in_the_file.assert_error(
        "hlocal: error: hlocal.toml: json: cannot be combined with log_format = \"heroku\" in hlocal.toml (JSON replaces the text formats)\n",
    );
    let flag_and_file = Hlocal::new()
        .procfile("worker: sleep 1000\n")
        .file("hlocal.toml", "log_format = \"heroku\"\n")
        .args(["start", "--json"])
        .run();
    flag_and_file.assert_error(
        "hlocal: error: --json: cannot be combined with log_format = \"heroku\" in hlocal.toml (JSON replaces the text formats)\n",
    );
}

#[test]
fn color_follows_the_flag() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("worker: echo hi; sleep 1000\n")
        .args([
            "start",
            "--color",
            "always",
            "--no-timestamp",
            "-p",
            &port.to_string(),
        ])
        .spawn();
    app.wait_for("\u{1b}\\[36mworker\\.1 \\|\u{1b}\\[0m hi$");
    app.stop();
}

/// A progress bar, a CRLF line and a line full of terminal control, as one process prints.
const TERMINAL_TRICKS: &str = concat!(
    r"tty: printf '10%%\r50%%\r100%%\n'; printf 'crlf\r\n';",
    r" printf '\033[2K\033[1Gclear \033]0;title\007titled \033[31mred\033[0m\033[?25l\n'",
    "\n"
);

fn tricks_through(args: &[&str]) -> Vec<String> {
    let port = free_port(LAYOUT);
    let mut app = Hlocal::new()
        .procfile(TERMINAL_TRICKS)
        .args(["start", "--no-timestamp", "-p", &port.to_string()])
        .args(args)
        .spawn();
    assert_eq!(app.wait_exit().code(), Some(0), "{}", app.output());
    app.lines()
}

fn app_lines<'a>(lines: &'a [String], prefix: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix))
        .collect()
}

#[test]
fn carriage_returns_and_control_sequences_cannot_overwrite_the_prefix() {
    let lines = tricks_through(&["--color", "never"]);
    assert_eq!(
        app_lines(&lines, "tty.1  | "),
        ["100%", "crlf", "clear titled red"],
        "{lines:?}"
    );
    let heroku = tricks_through(&["--color", "never", "--log-format", "heroku"]);
    let ends: Vec<&str> = heroku
        .iter()
        .filter_map(|l| l.split_once(" app[tty.1]: ").map(|(_, line)| line))
        .collect();
    assert_eq!(ends, ["100%", "crlf", "clear titled red"], "{heroku:?}");
}

#[test]
fn colors_pass_through_only_when_hlocal_prints_in_color() {
    let lines = tricks_through(&["--color", "always"]);
    let ends: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_once("tty.1  |\x1b[0m ").map(|(_, line)| line))
        .collect();
    assert_eq!(
        ends,
        ["100%", "crlf", "clear titled \x1b[31mred\x1b[0m"],
        "{lines:?}"
    );
}

#[test]
fn json_lines_never_hold_escape_codes() {
    let lines = tricks_through(&["--json", "--color", "always"]);
    let texts: Vec<String> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["name"] == "tty.1")
        .filter_map(|v| v["line"].as_str().map(str::to_string))
        .collect();
    assert_eq!(texts, ["100%", "crlf", "clear titled red"], "{lines:?}");
}
