//! Which instance gets a request, what it sees of it, and what the log says.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::{Request, Response};

use super::support::*;
use crate::router::{Backends, Balance};

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// A backend that answers with its own name.
async fn named(name: &'static str, ip: IpAddr) -> TestBackend {
    http_backend(
        name,
        ip,
        move |_req| async move { Response::new(text(name)) },
    )
    .await
}

/// A backend that answers with the request's headers, one `name: value` per line.
async fn echo_headers() -> TestBackend {
    http_backend("web.1", V4, |req: Request<_>| async move {
        let mut lines = String::new();
        for (k, v) in req.headers() {
            lines.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
        }
        Response::new(full(Bytes::from(lines)))
    })
    .await
}

fn header_lines(body: &Bytes, name: &str) -> Vec<String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_alternates_between_two_backends() {
    let (one, two) = (named("web.1", V4).await, named("web.2", V4).await);
    let mut rig = Rig::start(vec![one.backend.clone(), two.backend.clone()]).await;
    let mut client = connect(rig.v4()).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(send(&mut client, get("/")).await);
    }
    assert_eq!(seen, ["web.1", "web.2", "web.1", "web.2"]);
    let mut dynos = Vec::new();
    for _ in 0..4 {
        dynos.push(rig.log().await.word("dyno"));
    }
    assert_eq!(dynos, ["web.1", "web.2", "web.1", "web.2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_balance_reaches_both_backends() {
    let (one, two) = (named("web.1", V4).await, named("web.2", V4).await);
    let up = vec![one.backend.clone(), two.backend.clone()];
    let rig = Rig::with(up, Duration::from_secs(30), Balance::Random).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..64 {
        let (_, body) = fetch(rig.v4(), get("/")).await;
        seen.insert(body);
        if seen.len() == 2 {
            return;
        }
    }
    panic!("64 random picks never reached both backends: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_sees_herokus_headers_and_no_hop_by_hop_ones() {
    let echo = echo_headers().await;
    let mut rig = Rig::start(vec![echo.backend.clone()]).await;
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("UNWRAP: after 1970")
        .as_millis();
    let req = Request::get("/x?y=1")
        .header("host", "localhost:5006")
        .header("connection", "keep-alive, x-secret")
        .header("x-secret", "dropped")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic eA==")
        .header("te", "trailers")
        .header("x-forwarded-proto", "https")
        .header("x-app", "kept")
        .body(empty())
        .expect("UNWRAP: valid request");
    let (parts, body) = fetch(rig.v4(), req).await;
    let id = parts.headers["x-request-id"]
        .to_str()
        .expect("UNWRAP: ASCII")
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a new UUID: {id}");
    assert_eq!(
        header_lines(&body, "x-request-id"),
        std::slice::from_ref(&id)
    );
    assert_eq!(header_lines(&body, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(header_lines(&body, "x-forwarded-proto"), ["http"]);
    assert_eq!(
        header_lines(&body, "x-forwarded-port"),
        [rig.port.to_string()]
    );
    assert_eq!(header_lines(&body, "via"), ["1.1 hlocal"]);
    assert_eq!(header_lines(&body, "host"), ["localhost:5006"]);
    assert_eq!(header_lines(&body, "x-app"), ["kept"]);
    let start: u128 = header_lines(&body, "x-request-start")[0]
        .parse()
        .expect("UNWRAP: a number");
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("UNWRAP: after 1970")
        .as_millis();
    assert!(
        (before..=after).contains(&start),
        "{before} <= {start} <= {after}"
    );
    for gone in [
        "connection",
        "x-secret",
        "keep-alive",
        "proxy-authorization",
        "te",
    ] {
        assert!(header_lines(&body, gone).is_empty(), "{gone} was forwarded");
    }
    assert_eq!(parts.headers["via"], "1.1 hlocal");
    assert_eq!(rig.log().await.word("request_id"), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_request_id_is_kept_when_valid_and_forwarded_for_appended() {
    let echo = echo_headers().await;
    let mut rig = Rig::start(vec![echo.backend.clone()]).await;
    let valid = "abcdefghij-0123456789+/=";
    let req = Request::get("/")
        .header("host", "h")
        .header("x-request-id", valid)
        .header("x-forwarded-for", "203.0.113.7")
        .body(empty())
        .expect("UNWRAP: valid request");
    let (parts, body) = fetch(rig.v4(), req).await;
    assert_eq!(parts.headers["x-request-id"], valid);
    assert_eq!(header_lines(&body, "x-request-id"), [valid]);
    assert_eq!(
        header_lines(&body, "x-forwarded-for"),
        ["203.0.113.7, 127.0.0.1"]
    );
    let log = rig.log().await;
    assert_eq!(log.word("request_id"), valid);
    assert_eq!(log.word("fwd"), "203.0.113.7, 127.0.0.1");
    let req = Request::get("/")
        .header("host", "h")
        .header("x-request-id", "too-short")
        .body(empty())
        .expect("UNWRAP: valid request");
    let (parts, _) = fetch(rig.v4(), req).await;
    assert_ne!(parts.headers["x-request-id"], "too-short");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_line_has_every_field_in_herokus_order() {
    let one = named("web.1", V4).await;
    let mut rig = Rig::start(vec![one.backend.clone()]).await;
    let (parts, body) = fetch(rig.v4(), get("/hello?name=x")).await;
    assert_eq!(parts.status, 200);
    let log = rig.log().await;
    let keys: Vec<&str> = log.0.fields().map(|(k, _)| k).collect();
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
        ]
    );
    let text = log.text();
    assert!(
        text.starts_with(
            "at=info method=GET path=\"/hello?name=x\" host=localhost:5006 request_id="
        ),
        "{text}"
    );
    assert!(
        text.contains(" fwd=\"127.0.0.1\" dyno=web.1 connect="),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            " status=200 bytes={} protocol=http1.1",
            body.len()
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wait_while_starting_and_are_served_once_up() {
    let one = named("web.1", V4).await;
    let mut rig = Rig::start(Vec::new()).await;
    rig.publish(Backends {
        starting: true,
        ..Backends::default()
    });
    let addr = rig.v4();
    let waiting = tokio::spawn(async move { fetch(addr, get("/")).await });
    // The request is held, not failed: nothing is logged while nothing is up.
    rig.no_more_logs().await;
    assert!(!waiting.is_finished());
    rig.publish(Backends {
        up: vec![one.backend.clone()],
        ..Backends::default()
    });
    let (parts, body) = within("the held request", waiting)
        .await
        .expect("UNWRAP: task ran");
    assert_eq!((parts.status.as_u16(), &body[..]), (200, &b"web.1"[..]));
    assert_eq!(rig.log().await.word("dyno"), "web.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_instance_up_gives_h20_h10_or_h14() {
    let mut rig = Rig::with(Vec::new(), Duration::from_millis(300), Balance::RoundRobin).await;
    rig.publish(Backends {
        starting: true,
        ..Backends::default()
    });
    let (parts, body) = fetch(rig.v4(), get("/")).await;
    assert_eq!(parts.status, 503);
    assert!(String::from_utf8_lossy(&body).contains("H20 App boot timeout"));
    assert_eq!(parts.headers["content-type"], "text/html; charset=utf-8");
    let log = rig.log().await;
    assert!(
        log.text()
            .starts_with("at=error code=H20 desc=\"App boot timeout\" method=GET path=\"/\""),
        "{}",
        log.text()
    );
    assert!(
        log.text()
            .contains(" dyno= connect= service= status=503 bytes= protocol=http1.1"),
        "{}",
        log.text()
    );
    rig.publish(Backends {
        crashed: true,
        ..Backends::default()
    });
    let (parts, _) = fetch(rig.v4(), get("/")).await;
    assert_eq!(parts.status, 503);
    assert_eq!(rig.log().await.code(), "H10");
    rig.publish(Backends::default());
    let (parts, body) = fetch(rig.v4(), get("/")).await;
    assert_eq!(parts.status, 503);
    assert!(String::from_utf8_lossy(&body).contains("Application Error"));
    let log = rig.log().await;
    assert_eq!(log.code(), "H14");
    assert_eq!(log.word("desc"), "No web processes running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_instances_leave_and_new_ones_join_at_once() {
    let (one, two) = (named("web.1", V4).await, named("web.2", V4).await);
    let rig = Rig::start(vec![one.backend.clone()]).await;
    let mut client = connect(rig.v4()).await;
    for want in ["web.1", "web.1"] {
        assert_eq!(send(&mut client, get("/")).await, want);
    }
    rig.publish(Backends {
        up: vec![two.backend.clone()],
        ..Backends::default()
    });
    assert_eq!(send(&mut client, get("/")).await, "web.2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_generation_never_gets_an_old_connection() {
    let connections = Counter::default();
    let seen = connections.clone();
    let server = raw_backend("web.1", move |mut stream| {
        let n = seen.bump();
        async move {
            loop {
                if read_head(&mut stream).await.is_empty() {
                    return;
                }
                let body = format!("conn {n}");
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if tokio::io::AsyncWriteExt::write_all(&mut stream, reply.as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    })
    .await;
    let rig = Rig::start(vec![server.backend.clone()]).await;
    // One client connection: its requests share a worker, and so a backend pool.
    let mut client = connect(rig.v4()).await;
    let first = send(&mut client, get("/")).await;
    let again = send(&mut client, get("/")).await;
    assert_eq!(
        (&first[..], &again[..]),
        (&b"conn 1"[..], &b"conn 1"[..]),
        "pooled"
    );
    let mut restarted = server.backend.clone();
    restarted.generation += 1;
    rig.publish(Backends {
        up: vec![restarted],
        ..Backends::default()
    });
    let after = send(&mut client, get("/")).await;
    assert_eq!(&after[..], b"conn 2");
    assert_eq!(connections.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_ipv6_and_dual_stack_backends_and_clients() {
    if !has_ipv6() {
        eprintln!("no IPv6 on this host: only the IPv4 half runs");
    }
    let v4 = named("web.1", V4).await;
    let mut up = vec![v4.backend.clone()];
    let v6 = if has_ipv6() {
        Some(named("web.2", V6).await)
    } else {
        None
    };
    up.extend(v6.iter().map(|b| b.backend.clone()));
    let mut rig = Rig::start(up.clone()).await;
    for want in up.iter().map(|b| b.name.to_string()) {
        let (_, body) = fetch(rig.v4(), get("/")).await;
        assert_eq!(String::from_utf8_lossy(&body), want);
        assert_eq!(rig.log().await.word("fwd"), "127.0.0.1");
    }
    if !has_ipv6() {
        return;
    }
    let (_, body) = fetch(rig.v6(), get("/")).await;
    assert_eq!(&body[..], b"web.1");
    assert_eq!(rig.log().await.word("fwd"), "::1");
    // Dual stack: one socket on [::] takes both families; publish it as either address.
    let dual = std::net::TcpListener::bind((Ipv6Addr::UNSPECIFIED, 0));
    let Ok(dual) = dual else { return };
    let port = dual.local_addr().expect("UNWRAP: bound").port();
    dual.set_nonblocking(true).expect("UNWRAP: fcntl");
    let listener = tokio::net::TcpListener::from_std(dual).expect("UNWRAP: in a runtime");
    let _server = spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            read_head(&mut stream).await;
            let _ = tokio::io::AsyncWriteExt::write_all(
                &mut stream,
                b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndual",
            )
            .await;
        }
    });
    for addr in [
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
    ] {
        rig.publish(Backends {
            up: vec![backend("web.3", addr, 1)],
            ..Backends::default()
        });
        let (_, body) = fetch(rig.v4(), get("/")).await;
        assert_eq!(&body[..], b"dual", "via {addr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_no_content_responses_are_logged_as_served() {
    let app = http_backend("web.1", V4, |req: Request<_>| async move {
        let mut response = Response::new(text("twelve bytes"));
        if req.uri().path() == "/empty" {
            *response.status_mut() = hyper::StatusCode::NO_CONTENT;
            *response.body_mut() = empty();
        }
        response
    })
    .await;
    let mut rig = Rig::start(vec![app.backend.clone()]).await;
    let head = Request::head("/")
        .header("host", "h")
        .body(empty())
        .expect("UNWRAP: valid request");
    let (parts, body) = fetch(rig.v4(), head).await;
    assert_eq!((parts.status.as_u16(), body.len()), (200, 0));
    let log = rig.log().await;
    assert!(
        log.text().starts_with("at=info method=HEAD "),
        "{}",
        log.text()
    );
    let (parts, _) = fetch(rig.v4(), get("/empty")).await;
    assert_eq!(parts.status, 204);
    let log = rig.log().await;
    assert!(log.text().starts_with("at=info "), "{}", log.text());
    assert_eq!(log.word("status"), "204");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_clients_and_absolute_targets_are_served() {
    let app = http_backend("web.1", V4, |req: Request<_>| async move {
        let seen = format!("{} {:?}", req.uri(), req.version());
        Response::new(full(Bytes::from(seen)))
    })
    .await;
    let mut rig = Rig::start(vec![app.backend.clone()]).await;
    let answer = raw(rig.v4(), b"GET /old HTTP/1.0\r\nhost: h\r\n\r\n").await;
    assert!(answer.ends_with("\r\n\r\n/old HTTP/1.1"), "{answer}");
    assert_eq!(rig.log().await.word("protocol"), "http1.0");
    let absolute = b"GET http://localhost:5006/abs?q=1 HTTP/1.1\r\nhost: localhost:5006\r\nconnection: close\r\n\r\n";
    let answer = raw(rig.v4(), absolute).await;
    assert!(answer.ends_with("\r\n\r\n/abs?q=1 HTTP/1.1"), "{answer}");
    assert_eq!(rig.log().await.word("path"), "/abs?q=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborting_serve_stops_the_router() {
    let one = named("web.1", V4).await;
    let rig = Rig::start(vec![one.backend.clone()]).await;
    let addr = rig.v4();
    let (parts, _) = fetch(addr, get("/")).await;
    assert_eq!(parts.status, 200);
    drop(rig);
    within("the listening socket to close", async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Sends `req` on an open client connection and collects the body.
async fn send(
    client: &mut hyper::client::conn::http1::SendRequest<TestBody>,
    req: Request<TestBody>,
) -> Bytes {
    within("the connection", client.ready())
        .await
        .expect("UNWRAP: open");
    let response = within("a response", client.send_request(req)).await;
    let body = response.expect("UNWRAP: answered").into_body();
    let body = within("a body", http_body_util::BodyExt::collect(body)).await;
    body.expect("UNWRAP: whole").to_bytes()
}

/// The backend's fields reach the client as they would from a header map, whichever
/// server answers: the router's own (a plain GET) or hyper's (a DELETE). Names in
/// lowercase, hop-by-hop ones gone, the backend's `Via` before the router's, the backend's
/// `Date` kept, and the router's `X-Request-Id` instead of the backend's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backends_fields_reach_the_client_from_either_server() {
    use tokio::io::AsyncWriteExt;
    let app = raw_backend("web.1", |mut stream| async move {
        loop {
            if read_head(&mut stream).await.is_empty() {
                return;
            }
            let answer = b"HTTP/1.1 200 OK\r\nX-First: 1\r\nConnection: keep-alive\r\n\
                X-Request-Id: the-backends-own-id-0123456789\r\nKeep-Alive: timeout=5\r\n\
                Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nVia: 1.0 app\r\nContent-Length: 2\r\n\
                X-Last: 2\r\n\r\nok";
            if stream.write_all(answer).await.is_err() {
                return;
            }
        }
    })
    .await;
    let mut rig = Rig::start(vec![app.backend.clone()]).await;
    for method in ["GET", "DELETE"] {
        let request = format!("{method} / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let answer = raw(rig.v4(), request.as_bytes()).await;
        let (head, body) = answer.split_once("\r\n\r\n").expect("UNWRAP: a whole head");
        assert_eq!(body, "ok", "{method}");
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
        let mut names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "connection",
                "content-length",
                "date",
                "via",
                "via",
                "x-first",
                "x-last",
                "x-request-id"
            ],
            "{method}: {head}"
        );
        assert_eq!(values("via"), ["1.0 app", "1.1 hlocal"], "{method}");
        assert_eq!(
            values("date"),
            ["Sun, 06 Nov 1994 08:49:37 GMT"],
            "{method}"
        );
        assert_eq!(values("connection"), ["close"], "{method}");
        let id = rig.log().await.word("request_id");
        assert_eq!(values("x-request-id"), [id.as_str()], "{method}");
    }
}
