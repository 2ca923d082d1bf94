//! Bodies stream both ways without being buffered whole: big uploads and downloads
//! arrive intact, events arrive one by one, upgrades are bridged both ways.

use std::net::Ipv4Addr;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::support::*;

const BIG: u64 = 50 * 1024 * 1024;

fn checksum_of_pattern(len: u64) -> u64 {
    let mut sum = Checksum::new();
    let mut offset = 0;
    while offset < len {
        let n = (len - offset).min(1 << 20);
        sum.add(&pattern(offset, n));
        offset += n;
    }
    sum.value()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_mib_upload_arrives_intact() {
    let sink = http_backend(
        "web.1",
        Ipv4Addr::LOCALHOST.into(),
        |req: Request<hyper::body::Incoming>| async move {
            let mut body = req.into_body();
            let (mut sum, mut len) = (Checksum::new(), 0u64);
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                if let Some(data) = frame.data_ref() {
                    sum.add(data);
                    len += data.len() as u64;
                }
            }
            Response::new(full(Bytes::from(format!("{len} {}", sum.value()))))
        },
    )
    .await;
    let mut rig = Rig::start(vec![sink.backend.clone()]).await;
    let upload = PatternBody {
        left: BIG,
        offset: 0,
    }
    .boxed();
    let req = Request::post("/upload")
        .header("host", "h")
        .body(upload)
        .expect("UNWRAP: valid");
    let (parts, body) = fetch(rig.v4(), req).await;
    assert_eq!(parts.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&body),
        format!("{BIG} {}", checksum_of_pattern(BIG))
    );
    assert_eq!(rig.log().await.word("method"), "POST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_mib_download_arrives_intact_and_is_counted() {
    let source = http_backend("web.1", Ipv4Addr::LOCALHOST.into(), |_req| async move {
        Response::new(
            PatternBody {
                left: BIG,
                offset: 0,
            }
            .boxed(),
        )
    })
    .await;
    let mut rig = Rig::start(vec![source.backend.clone()]).await;
    let mut client = connect(rig.v4()).await;
    let response = within("a response", client.send_request(get("/big")))
        .await
        .expect("UNWRAP: answered");
    assert_eq!(response.headers()["content-length"], BIG.to_string());
    let mut body = response.into_body();
    let (mut sum, mut len) = (Checksum::new(), 0u64);
    while let Some(frame) = within("a frame", body.frame()).await {
        let frame = frame.expect("UNWRAP: the download completes");
        if let Some(data) = frame.data_ref() {
            sum.add(data);
            len += data.len() as u64;
        }
    }
    assert_eq!((len, sum.value()), (BIG, checksum_of_pattern(BIG)));
    assert_eq!(rig.log().await.word("bytes"), BIG.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_arrive_one_by_one() {
    // The backend sends an event, then waits for the test to have received it.
    let (received, acks) = mpsc::channel::<()>(1);
    let acks = std::sync::Arc::new(tokio::sync::Mutex::new(acks));
    let sse = http_backend("web.1", Ipv4Addr::LOCALHOST.into(), move |_req| {
        let acks = acks.clone();
        async move {
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                let mut acks = acks.lock().await;
                for i in 0..3 {
                    if tx
                        .send(Ok(Bytes::from(format!("data: {i}\n\n"))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    if acks.recv().await.is_none() {
                        return;
                    }
                }
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(body)
                .expect("UNWRAP: valid response")
        }
    })
    .await;
    let rig = Rig::start(vec![sse.backend.clone()]).await;
    let mut client = connect(rig.v4()).await;
    let response = within("the stream's head", client.send_request(get("/events")))
        .await
        .expect("UNWRAP: answered");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert!(
        response
            .headers()
            .get("transfer-encoding")
            .is_some_and(|te| te == "chunked")
    );
    let mut body = response.into_body();
    for i in 0..3 {
        let mut event = Vec::new();
        while !event.ends_with(b"\n\n") {
            let frame = within("the next event", body.frame()).await;
            let frame = frame.expect("UNWRAP: open").expect("UNWRAP: no error");
            event.extend_from_slice(frame.data_ref().map_or(&[][..], |d| &d[..]));
        }
        assert_eq!(String::from_utf8_lossy(&event), format!("data: {i}\n\n"));
        received.send(()).await.expect("UNWRAP: backend waits");
    }
    assert!(within("the end", body.frame()).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_are_bridged_both_ways() {
    let echo = http_backend(
        "web.1",
        Ipv4Addr::LOCALHOST.into(),
        |mut req: Request<hyper::body::Incoming>| async move {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.await else { return };
                let mut io = hyper_util::rt::TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = io.read(&mut buf).await {
                    if io.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "Upgrade")
                .header("upgrade", "echo")
                .body(empty())
                .expect("UNWRAP: valid response")
        },
    )
    .await;
    let mut rig = Rig::start(vec![echo.backend.clone()]).await;
    let upgrade = b"GET /ws HTTP/1.1\r\nhost: h\r\nconnection: Upgrade\r\nupgrade: echo\r\n\r\n";
    let mut stream = send_raw(rig.v4(), upgrade).await;
    let head = within("the 101", read_head(&mut stream)).await;
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(
        head.starts_with("http/1.1 101 switching protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains("upgrade: echo\r\n") && head.contains("connection: upgrade\r\n"),
        "{head}"
    );
    for message in [&b"hello"[..], b"second message"] {
        stream.write_all(message).await.expect("UNWRAP: bridged");
        let mut back = vec![0u8; message.len()];
        within("the echo", stream.read_exact(&mut back))
            .await
            .expect("UNWRAP: echoed");
        assert_eq!(back, message);
    }
    let log = rig.log().await;
    assert_eq!(
        (log.word("status"), log.word("path")),
        ("101".into(), "/ws".into())
    );
}
