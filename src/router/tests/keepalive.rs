//! Client connections stay usable across idle periods: the router parks an idle
//! keep-alive connection (hyper lets go of it) and takes it up again on the next bytes.

use std::net::Ipv4Addr;
use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::*;

/// Well past the router's idle period before it parks (50 to 100 ms).
const IDLE: Duration = Duration::from_millis(300);

/// Reads one response with a `content-length` body.
async fn response(stream: &mut TcpStream) -> String {
    let head =
        String::from_utf8_lossy(&within("a response head", read_head(stream)).await).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    within("a response body", stream.read_exact(&mut body))
        .await
        .expect("UNWRAP: whole body");
    head + &String::from_utf8_lossy(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_serves_again_after_being_parked() {
    let one = http_backend("web.1", Ipv4Addr::LOCALHOST.into(), |_req| async {
        Response::new(text("hi"))
    })
    .await;
    let rig = Rig::start(vec![one.backend.clone()]).await;
    let mut stream = TcpStream::connect(rig.v4())
        .await
        .expect("UNWRAP: listening");
    for round in 0..3 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: h\r\n\r\n")
            .await
            .expect("UNWRAP: open");
        let answer = response(&mut stream).await;
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n"),
            "round {round}: {answer}"
        );
        assert!(
            !answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(answer.ends_with("\r\n\r\nhi"), "{answer}");
        tokio::time::sleep(IDLE).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_split_across_the_idle_period_is_served_whole() {
    let one = http_backend(
        "web.1",
        Ipv4Addr::LOCALHOST.into(),
        |req: hyper::Request<_>| async move {
            Response::new(full(bytes::Bytes::from(req.uri().path().to_owned())))
        },
    )
    .await;
    let rig = Rig::start(vec![one.backend.clone()]).await;
    let mut stream = send_raw(rig.v4(), b"GET /first HTTP/1.1\r\nhost: h\r\n\r\n").await;
    assert!(response(&mut stream).await.ends_with("/first"));
    // Half a request, a pause long enough to park, then the rest.
    stream.write_all(b"GET /sec").await.expect("UNWRAP: open");
    tokio::time::sleep(IDLE).await;
    stream
        .write_all(b"ond HTTP/1.1\r\nhost: h\r\n\r\n")
        .await
        .expect("UNWRAP: open");
    let answer = response(&mut stream).await;
    assert!(answer.ends_with("/second"), "{answer}");
    // Two pipelined requests after another idle period.
    tokio::time::sleep(IDLE).await;
    stream
        .write_all(b"GET /a HTTP/1.1\r\nhost: h\r\n\r\nGET /b HTTP/1.1\r\nhost: h\r\n\r\n")
        .await
        .expect("UNWRAP: open");
    assert!(response(&mut stream).await.ends_with("/a"));
    assert!(response(&mut stream).await.ends_with("/b"));
}

/// A client that asked to close and reads slower than the router writes: the response's
/// last bytes wait in hyper's buffer while the socket is full, and the connection must
/// not be parked then (hyper would let go of the socket and those bytes with it).
#[tokio::test(start_paused = true)]
async fn a_slow_reader_gets_the_whole_response_before_the_connection_closes() {
    // More than the kernel's socket buffers and hyper's together hold.
    const LEN: usize = 16 << 20;
    let source = http_backend("web.1", Ipv4Addr::LOCALHOST.into(), |_req| async {
        Response::new(full(Bytes::from(vec![b'x'; LEN])))
    })
    .await;
    let rig = Rig::here(vec![source.backend.clone()], Duration::from_secs(30)).await;
    let request = b"GET /big HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n";
    let mut stream = send_raw(rig.v4(), request).await;
    let mut answer = Vec::new();
    let mut chunk = vec![0u8; 4 << 10];
    loop {
        // Longer than the router's idle period, so its idle timer fires between any two
        // reads; time is paused, so each pause passes as soon as the router is blocked.
        tokio::time::sleep(IDLE).await;
        match within("the rest of the response", stream.read(&mut chunk)).await {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("the router broke the connection: {e}"),
        }
    }
    let body = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |head| answer.len() - head - 4);
    assert_eq!(body, LEN, "the response was cut short");
}
