use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{Hlocal, LAYOUT, Running, fixture_path, free_port, get, request};

struct App {
    running: Running,
    port: u16,
}

fn server_app(procfile: &str, args: &[&str]) -> App {
    server_app_with(Hlocal::new(), procfile, args)
}

fn server_app_with(app: Hlocal, procfile: &str, args: &[&str]) -> App {
    let port = free_port(LAYOUT);
    let server = std::fs::read_to_string(fixture_path("bin/server.py")).expect("fixture");
    let running = app
        .file("server.py", &server)
        .procfile(procfile)
        .args(["start", "--no-timestamp", "-p", &port.to_string()])
        .args(args)
        .spawn();
    App { running, port }
}

fn ready(app: &App) {
    app.running.wait_for(r"hlocal +\| ready: ");
}

/// A connection with `head` written on it, for tests that read the answer byte by byte.
fn send_raw(port: u16, head: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(head.as_bytes()).expect("write");
    stream
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

#[test]
fn requests_are_balanced_round_robin_across_web_instances() {
    let app = server_app("web: python3 server.py\n", &["-m", "web=2"]);
    ready(&app);
    let names: Vec<String> = (0..4)
        .map(|_| {
            json(&get(app.port, "/").expect("get").body)["ps"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "web.1").count(),
        2,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| *n == "web.2").count(),
        2,
        "{names:?}"
    );
    assert_ne!(names[0], names[1]);
    app.running.stop();
}

#[test]
fn the_router_adds_herokus_headers() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let id = "abcdefghij0123456789-+/=";
    let response = request(
        app.port,
        &format!("GET /h HTTP/1.1\r\nX-Request-Id: {id}\r\nX-Forwarded-For: 10.1.2.3\r\nKeep-Alive: timeout=5"),
        b"",
    )
    .expect("get");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-request-id"), Some(id));
    let seen = json(&response.body);
    // Header names are case-insensitive; hyper sends them in lower case.
    let h = |name: &str| {
        seen["headers"]
            .as_object()
            .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(h("X-Request-Id"), id);
    assert_eq!(h("X-Forwarded-For"), "10.1.2.3, 127.0.0.1");
    assert_eq!(h("X-Forwarded-Proto"), "http");
    assert_eq!(h("X-Forwarded-Port"), app.port.to_string());
    assert_eq!(h("Via"), "1.1 hlocal");
    assert!(
        h("X-Request-Start")
            .parse::<u64>()
            .is_ok_and(|ms| ms > 1_700_000_000_000),
        "{seen}"
    );
    assert_eq!(
        h("Keep-Alive"),
        "",
        "hop-by-hop headers are not forwarded: {seen}"
    );
    app.running.stop();
}

#[test]
fn an_invalid_request_id_is_replaced_by_a_uuid() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let response = request(app.port, "GET / HTTP/1.1\r\nX-Request-Id: short", b"").expect("get");
    let id = response.header("x-request-id").unwrap_or("").to_string();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(json(&response.body)["headers"]["x-request-id"], id.as_str());
    app.running.stop();
}

#[test]
fn every_request_is_logged_in_herokus_router_format() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let response = get(app.port, "/logged?x=1").expect("get");
    let id = response.header("x-request-id").unwrap_or("").to_string();
    let line = app.running.wait_for(r"^router +\| at=info ");
    let expected = format!(
        r#"^router +\| at=info method=GET path="/logged\?x=1" host=localhost:{} request_id={id} fwd="127\.0\.0\.1" dyno=web\.1 connect=\d+ms service=\d+ms status=200 bytes=\d+ protocol=http1\.1$"#,
        app.port
    );
    assert!(
        regex::Regex::new(&expected).expect("re").is_match(&line),
        "{line}"
    );
    app.running.stop();
}

#[test]
fn heroku_format_prints_each_router_line_under_heroku_router() {
    let app = server_app("web: python3 server.py\n", &["--log-format", "heroku"]);
    // The ready marker keeps its one layout in every format (docs/editors.md).
    app.running.wait_for(r"^\S+ hlocal +\| ready: ");
    // Several at once, so some share a batch (and its prefix) on the way to the printer.
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let port = app.port;
            std::thread::spawn(move || get(port, &format!("/h{i}")).map(|r| r.status))
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().expect("client thread").expect("get"), 200);
    }
    let stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00";
    for i in 0..4 {
        let line = app.running.wait_for(&format!(r#"path="/h{i}""#));
        let expected = format!(r#"^{stamp} heroku\[router\]: at=info method=GET path="/h{i}" "#);
        assert!(
            regex::Regex::new(&expected).expect("re").is_match(&line),
            "{line}"
        );
    }
    app.running.stop();
}

#[test]
fn the_router_log_is_a_json_event_with_json() {
    let app = server_app("web: python3 server.py\n", &["--json"]);
    app.running.wait_for(r#""event":"ready""#);
    get(app.port, "/").expect("get");
    let line = app.running.wait_for(r#""event":"router""#);
    let v = json(line.as_bytes());
    assert_eq!(v["at"], "info");
    assert_eq!(v["status"], 200);
    assert_eq!(v["dyno"], "web.1");
    assert_eq!(v["method"], "GET");
    app.running.stop();
}

#[test]
fn the_router_json_event_carries_the_client_texts_unescaped() {
    let app = server_app("web: python3 server.py\n", &["--json"]);
    app.running.wait_for(r#""event":"ready""#);
    let mut stream = send_raw(
        app.port,
        "GET /a\"b HTTP/1.1\r\nHost: my host\r\nConnection: close\r\n\r\n",
    );
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let line = app.running.wait_for(r#""event":"router""#);
    let v = json(line.as_bytes());
    assert_eq!(v["path"], "/a\"b", "{line}");
    assert_eq!(v["host"], "my host", "{line}");
    app.running.stop();
}

fn assert_error(app: &App, path: &str, code: &str, desc: &str) {
    let response = get(app.port, path).expect("get");
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(
        response.text().contains("Application Error"),
        "{}",
        response.text()
    );
    let line = app
        .running
        .wait_for(&format!(r"^router +\| at=error code={code} "));
    assert!(line.contains(&format!("desc=\"{desc}\"")), "{line}");
    assert!(line.contains("status=503"), "{line}");
}

#[test]
fn no_web_instances_is_h14() {
    let app = server_app(
        "web: python3 server.py\nworker: sleep 1000\n",
        &["web=0,worker=1"],
    );
    ready(&app);
    assert_error(&app, "/", "H14", "No web processes running");
    app.running.stop();
}

#[test]
fn a_crashed_web_is_h10() {
    let app = server_app("web: exit 1\nworker: sleep 1000\n", &["--restart", "never"]);
    app.running.wait_for(
        r"web\.1: State changed from up to crashed|web\.1: State changed from starting to crashed",
    );
    assert_error(&app, "/", "H10", "App crashed");
    app.running.stop();
}

#[test]
fn a_request_timeout_is_h12() {
    let app = server_app("web: python3 server.py\n", &["--request-timeout", "1"]);
    ready(&app);
    assert_error(&app, "/sleep?s=5", "H12", "Request timeout");
    app.running.stop();
}

#[test]
fn a_connection_closed_without_response_is_h13() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    assert_error(&app, "/close", "H13", "Connection closed without response");
    app.running.stop();
}

#[test]
fn a_backend_that_dies_mid_response_is_h18() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let _ = get(app.port, "/half");
    // Heroku's H18 lines start with the side that broke: `sock=backend at=error code=H18`.
    let line = app
        .running
        .wait_for(r"^router +\| sock=backend at=error code=H18 ");
    assert!(
        line.contains("desc=\"Server Request Interrupted\""),
        "{line}"
    );
    app.running.stop();
}

#[test]
fn waiting_past_the_timeout_for_a_booting_web_is_h20() {
    let app = server_app_with(
        Hlocal::new().env("BOOT_DELAY", "20"),
        "web: python3 server.py\n",
        &["--request-timeout", "1"],
    );
    app.running.wait_for(r"web\.1: Starting process");
    assert_error(&app, "/", "H20", "App boot timeout");
    app.running.stop();
}

#[test]
fn requests_wait_for_a_booting_web_instance() {
    let app = server_app_with(
        Hlocal::new().env("BOOT_DELAY", "1"),
        "web: python3 server.py\n",
        &[],
    );
    app.running.wait_for(r"web\.1: Starting process");
    let response = get(app.port, "/").expect("get");
    assert_eq!(response.status, 200, "{}", response.text());
    app.running.stop();
}

#[test]
fn requests_during_a_crash_restart_succeed() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let _ = get(app.port, "/crash");
    // A request sent while the app is exiting may reach its dying listener on a fresh
    // connection: H13, as on Heroku (never sent twice). Once the exit is seen, requests
    // wait for the restart.
    app.running
        .wait_for(r"web\.1: Process exited with status 1");
    for _ in 0..3 {
        let response = get(app.port, "/").expect("get");
        assert_eq!(response.status, 200, "{}", response.text());
    }
    app.running
        .wait_for(r"web\.1: State changed from crashed to starting");
    app.running.stop();
}

#[test]
fn oversize_and_malformed_requests_get_400_and_the_router_keeps_serving() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let long_header = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(9000));
    assert_eq!(
        request(app.port, &long_header, b"")
            .expect("oversize")
            .status,
        400
    );
    let long_path = format!("GET /{} HTTP/1.1", "p".repeat(9000));
    assert_eq!(
        request(app.port, &long_path, b"")
            .expect("long path")
            .status,
        400
    );
    let many: String = (0..1001).map(|i| format!("\r\nX-H{i}: v")).collect();
    assert_eq!(
        request(app.port, &format!("GET / HTTP/1.1{many}"), b"")
            .expect("many")
            .status,
        400
    );
    assert_eq!(
        request(app.port, "CONNECT example.com:443 HTTP/1.1", b"")
            .expect("connect")
            .status,
        400
    );
    assert_eq!(get(app.port, "/").expect("good").status, 200);
    app.running.stop();
}

#[test]
fn expect_100_continue_is_answered_and_other_expectations_get_417() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    assert_eq!(
        request(
            app.port,
            "POST /echo HTTP/1.1\r\nExpect: something-else",
            b"x"
        )
        .expect("417")
        .status,
        417
    );
    let mut stream = send_raw(
        app.port,
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    );
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).expect("100 Continue");
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(b"hello").expect("body");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(
        rest.ends_with(b"hello"),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
    app.running.stop();
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_50_mib_upload_and_download_stream_through_intact() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let body = pattern(50 << 20);
    let echoed = request(app.port, "POST /echo HTTP/1.1", &body).expect("upload");
    assert_eq!(echoed.status, 200);
    assert!(
        echoed.body == body,
        "upload came back damaged ({} bytes)",
        echoed.body.len()
    );
    let n = 50 << 20;
    let download = get(app.port, &format!("/big?n={n}")).expect("download");
    let expected: Vec<u8> = (0..n).map(|i| (i % 256) as u8).collect();
    assert!(
        download.body == expected,
        "download damaged ({} bytes)",
        download.body.len()
    );
    app.running.stop();
}

#[test]
fn an_upgrade_is_bridged_both_ways() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let mut stream = send_raw(
        app.port,
        "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    for message in [&b"ping"[..], b"second message"] {
        stream.write_all(message).expect("send");
        let mut echo = vec![0u8; message.len()];
        stream.read_exact(&mut echo).expect("echo");
        assert_eq!(echo, message);
    }
    drop(stream);
    app.running.stop();
}

#[test]
fn server_sent_events_arrive_as_they_are_sent() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let mut stream = send_raw(
        app.port,
        "GET /sse HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let started = Instant::now();
    let mut seen = String::new();
    let mut arrivals = Vec::new();
    let mut buf = [0u8; 4096];
    while arrivals.len() < 3 {
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "stream ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        while arrivals.len() < 3 && seen.contains(&format!("data: event {}", arrivals.len())) {
            arrivals.push(started.elapsed());
        }
    }
    // The backend waits 300 ms between events: buffering would deliver them together.
    assert!(
        arrivals[2] - arrivals[0] >= Duration::from_millis(400),
        "{arrivals:?}"
    );
    app.running.stop();
}

#[test]
fn preboot_serves_every_request_across_code_changes() {
    let app = server_app(
        "web: python3 server.py\n",
        &["--preboot", "-w", "--watch-debounce", "50ms"],
    );
    ready(&app);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, ok, failed, port) = (
            Arc::clone(&stop),
            Arc::clone(&ok),
            Arc::clone(&failed),
            app.port,
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match get(port, "/") {
                    Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
        })
    };
    for change in 0..5 {
        std::fs::write(
            app.running.dir.join("app.py"),
            format!("# change {change}\n"),
        )
        .expect("write");
        app.running
            .wait_for_nth(r"web\.1: State changed from starting to up$", change + 1);
    }
    stop.store(true, Ordering::SeqCst);
    let _ = load.join();
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "failed requests; {} ok\n{}",
        ok.load(Ordering::SeqCst),
        app.running.output()
    );
    assert!(ok.load(Ordering::SeqCst) > 10);
    app.running.stop();
}

#[test]
fn backends_on_ipv6_only_and_dual_stack_are_reached() {
    for bind in ["::1", "::", "127.0.0.1"] {
        let app = server_app_with(
            Hlocal::new().env("BIND", bind),
            "web: python3 server.py\n",
            &[],
        );
        ready(&app);
        let response = get(app.port, "/").expect("get");
        assert_eq!(response.status, 200, "{bind}: {}", response.text());
        app.running.stop();
    }
}

#[test]
fn balance_random_reaches_every_instance() {
    let app = server_app(
        "web: python3 server.py\n",
        &["-m", "web=2", "--balance", "random"],
    );
    ready(&app);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        let body = get(app.port, "/").expect("get").body;
        seen.insert(json(&body)["ps"].as_str().unwrap_or("").to_string());
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    app.running.stop();
}

/// The `key=value` fields of a router line as a logfmt reader splits them: values in
/// double quotes may hold spaces and backslash escapes.
fn logfmt_fields(line: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            chars.next(); // the space after the closing quote
        } else {
            value = chars.by_ref().take_while(|&c| c != ' ').collect();
        }
        fields.push((key, value));
    }
    fields
}

#[test]
fn client_values_cannot_add_fields_to_router_lines() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let mut stream = send_raw(
        app.port,
        "GET /in\"jected HTTP/1.1\r\nHost: evil at=error code=H99\r\nX-Forwarded-For: 1.2.3.4\" status=200\r\nConnection: close\r\n\r\n",
    );
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let line = app.running.wait_for(r"^router +\| at=info ");
    let fields = logfmt_fields(line.split_once("| ").map_or("", |(_, f)| f));
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "at",
            "method",
            "path",
            "host",
            "request_id",
            "fwd",
            "dyno",
            "connect",
            "service",
            "status",
            "bytes",
            "protocol"
        ],
        "{line}"
    );
    let value = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(value("path").as_deref(), Some("/in\"jected"), "{line}");
    assert_eq!(
        value("host").as_deref(),
        Some("evil at=error code=H99"),
        "{line}"
    );
    assert_eq!(
        value("fwd").as_deref(),
        Some("1.2.3.4\" status=200, 127.0.0.1"),
        "{line}"
    );
    app.running.stop();
}

#[test]
fn a_request_that_crashes_the_app_is_delivered_once() {
    let app = server_app_with(
        Hlocal::new().env("REQUEST_LOG", "requests.log"),
        "web: python3 server.py\n",
        &[],
    );
    ready(&app);
    let response = get(app.port, "/die").expect("get");
    assert_eq!(response.status, 503, "{}", response.text());
    app.running
        .wait_for(r"^router +\| at=error code=H13 .*path=./die. ");
    let received = std::fs::read_to_string(app.running.dir.join("requests.log")).expect("log");
    assert_eq!(received, "/die\n", "the app received: {received:?}");
    app.running.stop();
}

#[test]
fn a_web_process_listening_elsewhere_is_kept_and_the_router_says_where() {
    let own = crate::harness::free_port(&[0]);
    let app = server_app(
        &format!("web: env PORT={own} python3 server.py\n"),
        &["--boot-timeout", "4"],
    );
    // From halfway to the boot timeout: a warning, the instance still starting.
    let early = format!(
        r"web\.1: listening on {own} but not yet on PORT=\d+: unless it binds PORT, the router cannot reach it; pass \$PORT to the server$"
    );
    app.running.wait_for(&early);
    assert_eq!(
        app.running.count("State changed from starting to up"),
        0,
        "{}",
        app.running.output()
    );
    let note = format!(
        r"web\.1: listening on {own}, not on PORT=\d+: the router cannot reach it; pass \$PORT to the server$"
    );
    app.running.wait_for(&note);
    app.running
        .wait_for(r"web\.1: State changed from starting to up$");
    let response = get(app.port, "/").expect("get");
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(
        response
            .text()
            .contains(&format!("web.1: listening on {own}, not on PORT=")),
        "{}",
        response.text()
    );
    app.running.wait_for(r"^router +\| at=error code=H21 ");
    assert_eq!(get(own, "/health").expect("its own port").status, 200);
    assert_eq!(app.running.count(&note), 1, "{}", app.running.output());
    assert_eq!(app.running.count(&early), 1, "{}", app.running.output());
    assert_eq!(
        app.running.count("R10|SIGKILL"),
        0,
        "{}",
        app.running.output()
    );
    app.running.stop();
}

/// Sends `raw` (a whole request, ending the connection) and reads the answer to its end.
fn exchange(port: u16, raw: &str) -> std::io::Result<crate::harness::Response> {
    let mut stream = send_raw(port, raw);
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    crate::harness::parse_response(&answer)
}

#[test]
fn a_backend_response_with_length_and_chunked_reaches_the_client_whole() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let response = get(app.port, "/both").expect("both");
    assert_eq!(response.text(), "hello");
    assert_eq!(response.header("content-length"), None);
    app.running.stop();
}

#[test]
fn backend_responses_in_every_framing_reach_the_client_whole() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    // Chunk extensions and trailers are read past; only the data reaches the client.
    for (path, body) in [
        ("/raw/chunked", "hello world"),
        ("/raw/until-close", "until close"),
        ("/raw/early-hints", "hints"),
    ] {
        for _ in 0..3 {
            let response = get(app.port, path).expect(path);
            assert_eq!(response.status, 200, "{path}: {}", response.text());
            assert_eq!(response.text(), body, "{path}");
        }
    }
    let mut stream = send_raw(
        app.port,
        "GET /raw/reason HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    assert!(
        answer.starts_with("HTTP/1.1 200 Fine Thanks\r\n"),
        "{answer}"
    );
    app.running.stop();
}

#[test]
fn pipelined_requests_are_answered_in_order_whichever_server_reads_them() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    // Plain GETs the router serves itself, then one with a body, which hyper serves.
    let mut stream = send_raw(
        app.port,
        "GET /raw/not-modified HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /health HTTP/1.1\r\nHost: x\r\n\r\n\
         GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx",
    );
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let statuses: Vec<&str> = answer
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| answer.get(i + 9..i + 12))
        .collect();
    assert_eq!(statuses, ["304", "200", "200"], "{answer}");
    assert_eq!(answer.matches("\r\n\r\nok").count(), 1, "{answer}");
    assert!(answer.contains(r#""body": "x""#), "{answer}");
    let head_304 = answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        head_304.contains("\r\ndate: ") && !head_304.contains("content-length"),
        "{head_304}"
    );
    app.running.stop();
}

/// A backend's fields as the client gets them, whichever server answers: the router's
/// own (an HTTP/1.1 GET) or hyper's (HTTP/1.0). Names in lowercase, hop-by-hop ones gone,
/// the app's `Via` before the router's, and the router's request id instead of the app's.
#[test]
fn the_apps_response_fields_reach_the_client_from_either_server() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    for request in [
        "GET /raw/own-fields HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /raw/own-fields HTTP/1.0\r\nHost: x\r\n\r\n",
    ] {
        let mut answer = String::new();
        send_raw(app.port, request)
            .read_to_string(&mut answer)
            .expect("read");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_default();
        assert_eq!(body, "ok", "{answer}");
        let fields: Vec<(&str, &str)> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(": "))
            .collect();
        let values = |name: &str| -> Vec<&str> {
            fields
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .collect()
        };
        assert_eq!(values("x-first"), ["1"], "{head}");
        assert_eq!(values("via"), ["1.0 app", "1.1 hlocal"], "{head}");
        let ids = values("x-request-id");
        assert!(ids.len() == 1 && ids[0] != "the-apps-own", "{head}");
        assert!(values("keep-alive").is_empty(), "{head}");
        assert!(
            fields.iter().all(|(n, _)| *n == n.to_ascii_lowercase()),
            "{head}"
        );
    }
    app.running.stop();
}

#[test]
fn malformed_backend_responses_are_h17_or_cut_short_as_h18() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    assert_error(
        &app,
        "/raw/garbage",
        "H17",
        "Poorly formatted HTTP response",
    );
    assert_error(
        &app,
        "/raw/two-lengths",
        "H17",
        "Poorly formatted HTTP response",
    );
    let _ = get(app.port, "/raw/bad-chunk");
    app.running
        .wait_for(r"^router +\| sock=backend at=error code=H18 .*path=./raw/bad-chunk");
    app.running.stop();
}

#[test]
fn kept_alive_backend_connections_closed_by_the_backend_are_not_a_failure() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    // The backend closes each connection right after answering: a request that picks a
    // pooled one must still be answered (the closed one is noticed, or the GET replayed).
    for i in 0..20 {
        let path = if i % 2 == 0 {
            "/raw/then-close"
        } else {
            "/health"
        };
        let response = get(app.port, path).expect(path);
        assert_eq!(response.status, 200, "{path} #{i}: {}", response.text());
    }
    // A request with a body on a connection the router has been speaking on itself.
    for _ in 0..3 {
        let _ = get(app.port, "/health").expect("health");
        let posted = request(app.port, "POST /echo HTTP/1.1", b"payload").expect("post");
        assert_eq!(posted.text(), "payload");
    }
    app.running.stop();
}

#[test]
fn a_get_with_a_chunked_body_reaches_the_backend_whole() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let raw = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
               Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let response = exchange(app.port, raw).expect("chunked get");
    assert_eq!(json(&response.body)["body"], "hello");
    app.running.stop();
}

#[test]
fn http11_needs_a_host_and_connection_cannot_remove_it() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let no_host = exchange(app.port, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(no_host.expect("no host").status, 400);
    let old = exchange(app.port, "GET / HTTP/1.0\r\n\r\n").expect("1.0");
    assert_eq!(old.status, 200);
    let raw = "GET / HTTP/1.1\r\nHost: h.example\r\nConnection: close, host\r\n\r\n";
    let response = exchange(app.port, raw).expect("connection: host");
    assert_eq!(json(&response.body)["headers"]["host"], "h.example");
    app.running.wait_for(r"code=H26 .*missing host header");
    app.running.stop();
}

#[test]
fn a_head_over_1_mib_is_refused() {
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    // 140 lines of 8,000 bytes: each within Heroku's limits, 1.12 MB in all.
    let lines: String = (0..140)
        .map(|i| format!("X-Big-{i}: {}\r\n", "a".repeat(8000)))
        .collect();
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let head = format!("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{lines}\r\n");
    // In two parts, as a slow network delivers it: hyper's buffer grows between reads.
    // The router may stop reading (and close) before the whole head is written.
    let (first, rest) = head.as_bytes().split_at(600_000);
    let _ = stream.write_all(first);
    std::thread::sleep(Duration::from_millis(300));
    let _ = stream.write_all(rest);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let status = crate::harness::parse_response(&answer).map(|r| r.status);
    assert!(!matches!(status, Ok(200)), "{status:?}");
    assert_eq!(get(app.port, "/").expect("good").status, 200);
    app.running.stop();
}

/// Sends a head one byte every 100 ms, never finishing it; how long until the router
/// closed the connection (`None`: still open at `give_up`).
fn drip_until_closed(stream: &mut TcpStream, give_up: Duration) -> Option<Duration> {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let started = Instant::now();
    let mut byte = [0u8; 1];
    for b in b"GET /slow HTTP/1.1\r\nX-Slow: "
        .iter()
        .chain([b'a'; 1000].iter())
    {
        if started.elapsed() > give_up {
            return None;
        }
        match (stream.write_all(&[*b]), stream.read(&mut byte)) {
            (Err(_), _) | (_, Ok(_)) => return Some(started.elapsed()),
            (Ok(()), Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(started.elapsed());
            }
            (Ok(()), Err(_)) => {}
        }
    }
    None
}

/// Reads one keep-alive response (with a `Content-Length`) off `stream`.
fn read_response(stream: &mut TcpStream) -> crate::harness::Response {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Ok(response) = crate::harness::parse_response(&raw) {
            let length: usize = response
                .header("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            if response.body.len() >= length {
                return response;
            }
        }
        let n = stream.read(&mut chunk).expect("response");
        assert!(
            n > 0,
            "closed mid-response: {}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn a_head_sent_slowly_is_cut_off_after_the_header_timeout() {
    let app = server_app("web: python3 server.py\n", &["--header-timeout", "1s"]);
    ready(&app);
    let mut fresh = TcpStream::connect(("127.0.0.1", app.port)).expect("connect");
    let closed = drip_until_closed(&mut fresh, Duration::from_secs(10));
    assert!(
        closed.is_some_and(|t| t >= Duration::from_millis(900)),
        "{closed:?}"
    );
    // The same on a keep-alive connection after a request it served.
    let mut kept = send_raw(app.port, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(read_response(&mut kept).status, 200);
    let closed = drip_until_closed(&mut kept, Duration::from_secs(10));
    assert!(
        closed.is_some_and(|t| t >= Duration::from_millis(900)),
        "{closed:?}"
    );
    assert_eq!(get(app.port, "/").expect("good").status, 200);
    app.running.stop();
}

#[test]
fn a_single_threaded_backend_answers_parallel_requests() {
    let app = server_app("web: env SINGLE_THREAD=1 python3 server.py\n", &[]);
    ready(&app);
    // A first request leaves a pooled connection behind, holding the backend's thread.
    assert_eq!(get(app.port, "/").expect("first").status, 200);
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..4 {
        let (tx, port) = (tx.clone(), app.port);
        std::thread::spawn(move || tx.send(get(port, "/").map(|r| r.status).ok()));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in 0..4 {
        let left = deadline.saturating_duration_since(Instant::now());
        let status = rx.recv_timeout(left);
        assert_eq!(status, Ok(Some(200)), "request {n} of 4");
    }
    app.running.stop();
}

#[test]
fn reused_backend_connections_are_not_held_back_by_delayed_acks() {
    // server.py writes a response's head and body separately, with Nagle on.
    let app = server_app("web: python3 server.py\n", &[]);
    ready(&app);
    let mut times: Vec<Duration> = (0..21)
        .map(|_| {
            let started = Instant::now();
            assert_eq!(get(app.port, "/health").expect("get").status, 200);
            started.elapsed()
        })
        .collect();
    times.sort();
    // 40 ms a request when the router's ACK of the head waits for the delayed-ACK timer.
    assert!(
        times[10] < Duration::from_millis(25),
        "median {:?}",
        times[10]
    );
    app.running.stop();
}

/// A keep-alive connection that got its answer to one request, retried until `deadline`
/// while the router refuses it (every connection busy).
fn served_connection(port: u16, deadline: Instant) -> TcpStream {
    loop {
        let mut stream = send_raw(port, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let mut answer = Vec::new();
        let mut chunk = [0u8; 1024];
        while let Ok(n @ 1..) = stream.read(&mut chunk) {
            answer.extend_from_slice(&chunk[..n]);
            if answer.ends_with(b"ok") {
                return stream;
            }
        }
        assert!(Instant::now() < deadline, "refused until the deadline");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn past_the_connection_cap_the_oldest_idle_connections_make_room() {
    let port = free_port(LAYOUT);
    let server = std::fs::read_to_string(fixture_path("bin/server.py")).expect("fixture");
    let app = Hlocal::new()
        .file("server.py", &server)
        .procfile("web: python3 server.py\n")
        .args(["start", "--no-timestamp", "-p", &port.to_string()]);
    // 256 open files for hlocal: 300 idle client connections would exhaust them.
    let base = app.command();
    let mut limited = std::process::Command::new("prlimit");
    limited
        .arg("--nofile=256:256")
        .arg(base.get_program())
        .args(base.get_args());
    for (key, value) in base.get_envs() {
        match value {
            Some(value) => limited.env(key, value),
            None => limited.env_remove(key),
        };
    }
    if let Some(dir) = base.get_current_dir() {
        limited.current_dir(dir);
    }
    let app = App {
        running: app.spawn_command(limited),
        port,
    };
    ready(&app);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut open: Vec<TcpStream> = (0..300)
        .map(|_| served_connection(app.port, deadline))
        .collect();
    let mut byte = [0u8; 1];
    open[0]
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let oldest = open[0].read(&mut byte).map_err(|e| e.kind());
    let closed = matches!(oldest, Ok(0) | Err(std::io::ErrorKind::ConnectionReset));
    assert!(closed, "the oldest is closed: {oldest:?}");
    let newest = open.last_mut().expect("connections");
    newest
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("newest still open");
    assert_eq!(read_response(newest).status, 200);
    app.running.stop();
}
