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
    for line in app.lines() {
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["ts"].is_string(), "{line}");
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
            Some("ready") => {}
            None => logs.push((
                v["name"].as_str().unwrap_or("").to_string(),
                v["stream"].clone(),
                v["line"].clone(),
            )),
            Some(other) => panic!("unexpected event {other}: {line}"),
        }
    }
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
fn json_ready_event() {
    let port = free_port(LAYOUT);
    let app = Hlocal::new()
        .procfile("worker: sleep 1000\n")
        .args(["start", "--json", "-p", &port.to_string()])
        .spawn();
    // No web process: nothing to open, so no URL.
    app.wait_for(r#"^\{"ts":"[^"]+","event":"ready","url":null\}$"#);
    app.stop();
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
