//! Requests the router refuses (400, 417) or answers itself (100 Continue), each followed
//! by a good request on a new connection to show the router kept serving.

use std::net::Ipv4Addr;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::support::*;

/// A backend that answers with the request body it received.
async fn echo_body() -> TestBackend {
    http_backend(
        "web.1",
        Ipv4Addr::LOCALHOST.into(),
        |req: hyper::Request<_>| async move {
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            Response::new(full(body.unwrap_or_else(|_| Bytes::from_static(b"broken"))))
        },
    )
    .await
}

fn status_of(answer: &str) -> &str {
    answer.split(' ').nth(1).unwrap_or("")
}

/// `request` is refused with `status`, then a request on a new connection is served.
/// Returns the answer and the refusal's log line (`None` for what hyper refuses before
/// the router sees a request). Lines of different connections may come in any order.
async fn refused_then_served(
    rig: &mut Rig,
    request: &[u8],
    status: &str,
    logged: bool,
) -> (String, Option<Log>) {
    let answer = raw(rig.v4(), request).await;
    let first = answer.lines().next().unwrap_or("");
    assert_eq!(status_of(&answer), status, "{first}");
    let (parts, body) = fetch(rig.v4(), get("/after")).await;
    assert_eq!((parts.status.as_u16(), &body[..]), (200, &b""[..]));
    let (mut refusal, mut served) = (None, false);
    while !served || (logged && refusal.is_none()) {
        let log = rig.log().await;
        if log.word("path") == "/after" {
            served = true;
        } else {
            refusal = Some(log);
        }
    }
    (answer, refusal)
}

/// The H26 line of a refusal, with its cause.
fn cause(refusal: &(String, Option<Log>)) -> (String, String) {
    let log = refusal.1.as_ref().expect("UNWRAP: the refusal was logged");
    (log.code(), log.word("cause"))
}

fn request_with_line(target_len: usize) -> Vec<u8> {
    let target = format!("/{}", "a".repeat(target_len - 1));
    format!("GET {target} HTTP/1.1\r\nhost: h\r\n\r\n").into_bytes()
}

/// A request with `n` headers in all; with `close`, one of them is `connection: close`.
fn request_with_headers(n: usize, value_len: usize, close: bool) -> Vec<u8> {
    let mut req = b"GET / HTTP/1.1\r\nhost: h\r\n".to_vec();
    if close {
        req.extend_from_slice(b"connection: close\r\n");
    }
    for i in (1 + usize::from(close))..n {
        req.extend_from_slice(format!("x-{i}: {}\r\n", "v".repeat(value_len)).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_line_of_8192_bytes_passes_and_8193_is_a_400() {
    let echo = echo_body().await;
    let mut rig = Rig::start(vec![echo.backend.clone()]).await;
    // "GET " + target + " HTTP/1.1" is 13 bytes besides the target.
    let answer = raw(
        rig.v4(),
        &[
            &request_with_line(8192 - 13)[..],
            b"GET /close HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n",
        ]
        .concat(),
    )
    .await;
    assert_eq!(status_of(&answer), "200", "{answer}");
    rig.log().await;
    rig.log().await;
    let refusal = refused_then_served(&mut rig, &request_with_line(8192 - 12), "400", true).await;
    assert_eq!(cause(&refusal), ("H26".into(), "bad request line".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_line_of_8192_bytes_passes_and_8193_is_a_400() {
    let echo = echo_body().await;
    let mut rig = Rig::start(vec![echo.backend.clone()]).await;
    // "x-1: " is 5 bytes.
    let ok = request_with_headers(3, 8192 - 5, true);
    assert_eq!(status_of(&raw(rig.v4(), &ok).await), "200");
    rig.log().await;
    let refusal = refused_then_served(
        &mut rig,
        &request_with_headers(2, 8192 - 4, false),
        "400",
        true,
    )
    .await;
    assert_eq!(cause(&refusal), ("H26".into(), "bad header".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_headers_pass_and_more_are_a_400() {
    let echo = echo_body().await;
    let mut rig = Rig::start(vec![echo.backend.clone()]).await;
    let ok = request_with_headers(1000, 1, true);
    assert_eq!(status_of(&raw(rig.v4(), &ok).await), "200");
    rig.log().await;
    for n in [1001, 1500] {
        let refusal =
            refused_then_served(&mut rig, &request_with_headers(n, 1, false), "400", true).await;
        assert_eq!(cause(&refusal), ("H26".into(), "bad header".into()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_two_hosts_and_garbage_are_400s() {
    let echo = echo_body().await;
    let mut rig = Rig::start(vec![echo.backend.clone()]).await;
    let connect = b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n";
    let refusal = refused_then_served(&mut rig, connect, "400", true).await;
    assert_eq!(cause(&refusal), ("H26".into(), "unsupported method".into()));
    let two_hosts = b"GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n";
    let refusal = refused_then_served(&mut rig, two_hosts, "400", true).await;
    assert_eq!(cause(&refusal), ("H26".into(), "bad header".into()));
    // Not HTTP at all: hyper answers 400 before the router sees a request.
    refused_then_served(&mut rig, b"GARBAGE\r\n\r\n", "400", false).await;
    let no_colon = b"GET / HTTP/1.1\r\nbad header\r\n\r\n";
    refused_then_served(&mut rig, no_colon, "400", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_chunking_is_a_400() {
    let echo = echo_body().await;
    let mut rig = Rig::start(vec![echo.backend.clone()]).await;
    let bad =
        b"POST / HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n";
    let refusal = refused_then_served(&mut rig, bad, "400", true).await;
    let answer = refusal.0.to_ascii_lowercase();
    assert!(answer.contains("x-request-id: "), "{answer}");
    assert_eq!(cause(&refusal), ("H26".into(), "bad chunk".into()));
    let log = refusal.1.expect("UNWRAP: logged");
    assert_eq!(log.word("dyno"), "web.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_is_answered_by_the_router_and_others_get_417() {
    let echo = echo_body().await;
    let mut rig = Rig::start(vec![echo.backend.clone()]).await;
    let head = b"POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n";
    let mut stream = send_raw(rig.v4(), head).await;
    let mut interim = [0u8; 25];
    let read = within("100 Continue", stream.read_exact(&mut interim)).await;
    read.expect("UNWRAP: answered");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").await.expect("UNWRAP: sent");
    let mut answer = Vec::new();
    while !answer.ends_with(b"hello") {
        let mut chunk = [0u8; 512];
        let read = within("the response", stream.read(&mut chunk)).await;
        let n = read.expect("UNWRAP: answered");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&chunk[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    rig.log().await;
    let other = b"POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\nexpect: 200-ok\r\n\r\nhello";
    let refusal = refused_then_served(&mut rig, other, "417", true).await;
    assert!(refusal.0.contains("Expectation Failed"), "{}", refusal.0);
    assert_eq!(
        cause(&refusal),
        ("H26".into(), "unsupported expect header value".into())
    );
    let log = refusal.1.expect("UNWRAP: logged");
    assert_eq!(log.word("status"), "417");
}
