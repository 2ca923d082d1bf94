//! Each Heroku error code, produced by a backend or client that misbehaves that way, and
//! the router still serving (and leaking no task) afterwards.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use hyper::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::*;
use crate::router::Balance;

fn ok_backend_reply() -> &'static [u8] {
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
}

async fn rig_with_timeout(up: Vec<crate::router::Backend>, timeout: Duration) -> Rig {
    Rig::with(up, timeout, Balance::RoundRobin).await
}

/// The code's 503 page reaches the client and its log line has Heroku's shape.
async fn expect_503(rig: &mut Rig, code: &str, desc: &str) -> Log {
    let (parts, body) = fetch(rig.v4(), get("/")).await;
    assert_eq!(parts.status, 503);
    assert!(String::from_utf8_lossy(&body).contains(&format!("{code} {desc}")));
    let log = rig.log().await;
    assert_eq!(log.code(), code, "{}", log.text());
    assert_eq!(log.word("desc"), desc);
    assert_eq!(log.word("status"), "503");
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h12_when_no_response_byte_arrives_in_time() {
    let slow = http_backend("web.1", Ipv4Addr::LOCALHOST.into(), |_req| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Response::new(empty())
    })
    .await;
    let mut rig = rig_with_timeout(vec![slow.backend.clone()], Duration::from_millis(300)).await;
    let log = expect_503(&mut rig, "H12", "Request timeout").await;
    assert!(
        log.text().contains(" dyno=web.1 connect="),
        "{}",
        log.text()
    );
    let service: u64 = log.word("service").parse().expect("UNWRAP: a number");
    assert!(service >= 300, "{}", log.text());
    assert_eq!(log.word("bytes"), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h13_when_the_backend_closes_without_answering() {
    let closer = raw_backend("web.1", |mut stream| async move {
        read_head(&mut stream).await;
    })
    .await;
    let mut rig = Rig::start(vec![closer.backend.clone()]).await;
    let log = expect_503(&mut rig, "H13", "Connection closed without response").await;
    assert!(log.text().contains(" dyno=web.1 "), "{}", log.text());
    assert_eq!(log.word("bytes"), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_connection_closed_unanswered_is_not_sent_again() {
    let received = Counter::default();
    let seen = received.clone();
    let closer = raw_backend("web.1", move |mut stream| {
        let seen = seen.clone();
        async move {
            read_head(&mut stream).await;
            seen.bump();
        }
    })
    .await;
    let mut rig = Rig::start(vec![closer.backend.clone()]).await;
    expect_503(&mut rig, "H13", "Connection closed without response").await;
    assert_eq!(received.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_connection_closed_unanswered_is_sent_again_on_a_new_one() {
    // The first connection answers once, then closes on its next request (an idle
    // timeout racing the request); every later connection answers.
    let (connections, heads) = (Counter::default(), Counter::default());
    let (seen, read) = (connections.clone(), heads.clone());
    let flaky = raw_backend("web.1", move |mut stream| {
        let first = seen.bump() == 1;
        let read = read.clone();
        async move {
            while !read_head(&mut stream).await.is_empty() {
                read.bump();
                if first && read.get() > 1 {
                    return;
                }
                let _ = stream.write_all(ok_backend_reply()).await;
            }
        }
    })
    .await;
    // One router (one pool); a request's log line comes after its connection's checkin.
    let mut rig = Rig::here(vec![flaky.backend.clone()], Duration::from_secs(30)).await;
    for _ in 0..2 {
        let (parts, body) = fetch(rig.v4(), get("/")).await;
        assert_eq!((parts.status.as_u16(), &body[..]), (200, &b"ok"[..]));
        assert_eq!(rig.log().await.word("status"), "200");
    }
    // The second request went out on the pooled connection, then again on a new one.
    assert_eq!((connections.get(), heads.get()), (2, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h17_when_the_backend_does_not_speak_http() {
    let garbage = raw_backend("web.1", |mut stream| async move {
        read_head(&mut stream).await;
        let _ = stream.write_all(b"SSH-2.0-OpenSSH\r\n\r\n").await;
    })
    .await;
    let mut rig = Rig::start(vec![garbage.backend.clone()]).await;
    expect_503(&mut rig, "H17", "Poorly formatted HTTP response").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h18_when_the_backend_dies_half_way_through_the_response() {
    let half = raw_backend("web.1", |mut stream| async move {
        read_head(&mut stream).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
            .await;
    })
    .await;
    let mut rig = Rig::start(vec![half.backend.clone()]).await;
    let mut client = connect(rig.v4()).await;
    let response = within("a response head", client.send_request(get("/"))).await;
    let response = response.expect("UNWRAP: the head was forwarded");
    assert_eq!(response.status(), 200);
    let body = within(
        "the body to break",
        http_body_util::BodyExt::collect(response.into_body()),
    )
    .await;
    assert!(body.is_err(), "the client must see the response cut short");
    let log = rig.log().await;
    let text = log.text();
    assert!(
        text.starts_with("sock=backend at=error code=H18 desc=\"Server Request Interrupted\""),
        "{text}"
    );
    assert!(
        text.contains(" dyno=web.1 ") && text.contains(" status=503 bytes=10 "),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h18_when_the_backend_leaves_while_the_body_is_being_sent() {
    let leaver = raw_backend("web.1", |mut stream| async move {
        read_head(&mut stream).await;
        let mut some = [0u8; 16];
        let _ = stream.read(&mut some).await;
    })
    .await;
    let mut rig = Rig::start(vec![leaver.backend.clone()]).await;
    let (tx, body) = channel_body();
    let feeder = spawn(async move {
        // Keeps sending until the router stops taking it.
        while tx
            .send(Ok(Bytes::from(vec![b'x'; 16 * 1024])))
            .await
            .is_ok()
        {}
    });
    let req = Request::post("/upload")
        .header("host", "h")
        .body(body)
        .expect("UNWRAP: valid");
    // The 503 comes while the client is still sending; the router then closes, and the
    // client may see that as a failed write before it reads the 503.
    let mut client = connect(rig.v4()).await;
    let answer = within("the router to answer", client.send_request(req)).await;
    drop(feeder);
    if let Ok(response) = answer {
        assert_eq!(response.status(), 503);
    }
    let log = rig.log().await;
    assert!(
        log.text().starts_with("sock=backend at=error code=H18"),
        "{}",
        log.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h21_when_every_instance_refuses_and_others_are_tried_first() {
    let refusing = {
        let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("UNWRAP: free port");
        l.local_addr().expect("UNWRAP: bound")
    };
    let dead = backend("web.1", refusing, 1);
    let mut rig = Rig::start(vec![dead.clone()]).await;
    let log = expect_503(&mut rig, "H21", "Backend connection refused").await;
    assert!(
        log.text().contains(" dyno=web.1 connect="),
        "{}",
        log.text()
    );
    assert!(
        log.text().contains(" service= status=503 bytes= "),
        "{}",
        log.text()
    );
    let alive = raw_backend("web.2", |mut stream| async move {
        read_head(&mut stream).await;
        let _ = stream.write_all(ok_backend_reply()).await;
    })
    .await;
    rig.publish(crate::router::Backends {
        up: vec![dead, alive.backend.clone()],
        ..Default::default()
    });
    for _ in 0..3 {
        let (parts, body) = fetch(rig.v4(), get("/")).await;
        assert_eq!((parts.status.as_u16(), &body[..]), (200, &b"ok"[..]));
        assert_eq!(rig.log().await.word("dyno"), "web.2");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h19_when_connecting_hangs() {
    // A listener that never accepts, its one-connection queue already taken: the
    // kernel drops further SYNs, so a connect neither succeeds nor is refused.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("UNWRAP: socket");
    socket
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .expect("UNWRAP: bind");
    socket.listen(0).expect("UNWRAP: listen");
    let addr = socket
        .local_addr()
        .expect("UNWRAP: bound")
        .as_socket()
        .expect("UNWRAP: inet");
    let mut fillers = Vec::new();
    for _ in 0..2 {
        let connecting =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await;
        if let Ok(Ok(stream)) = connecting {
            fillers.push(stream);
        }
    }
    let mut rig =
        rig_with_timeout(vec![backend("web.1", addr, 1)], Duration::from_millis(300)).await;
    let log = expect_503(&mut rig, "H19", "Backend connection timeout").await;
    assert!(
        log.text().contains(" dyno=web.1 connect="),
        "{}",
        log.text()
    );
    drop(socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h27_when_the_client_leaves_first_and_nothing_leaks() {
    let tasks = tokio::runtime::Handle::current().metrics();
    let (arrived, mut reached) = tokio::sync::mpsc::channel::<()>(1);
    let slow = http_backend(
        "web.1",
        Ipv4Addr::LOCALHOST.into(),
        move |req: Request<_>| {
            let arrived = arrived.clone();
            async move {
                if req.uri().path() == "/slow" {
                    let _ = arrived.send(()).await;
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                Response::new(empty())
            }
        },
    )
    .await;
    let mut rig = Rig::here(vec![slow.backend.clone()], Duration::from_secs(30)).await;
    // Every long-lived task is up once a first request went through.
    fetch(rig.v4(), get("/")).await;
    rig.log().await;
    let baseline = settled(&tasks).await;
    let client = send_raw(rig.v4(), b"GET /slow HTTP/1.1\r\nhost: h\r\n\r\n").await;
    within("the request to reach the backend", reached.recv()).await;
    drop(client);
    let log = rig.log().await;
    let text = log.text();
    assert!(
        text.starts_with("sock=client at=warning code=H27 desc=\"Client Request Interrupted\" method=GET path=\"/slow\""),
        "{text}"
    );
    assert!(
        text.contains(" dyno=web.1 ") && text.contains(" status=499 "),
        "{text}"
    );
    // The router's tasks for that request (client connection, backend connection) end,
    // and so does the backend's, once the router hangs up on it.
    within("the abandoned request's tasks to end", async {
        while tasks.num_alive_tasks() > baseline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// The number of live tasks once it stopped changing (finished tasks are reaped lazily).
async fn settled(tasks: &tokio::runtime::RuntimeMetrics) -> usize {
    let mut last = tasks.num_alive_tasks();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = tasks.num_alive_tasks();
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h27_when_the_client_leaves_during_its_upload() {
    let (arrived, mut reached) = tokio::sync::mpsc::channel::<()>(1);
    let sink = http_backend(
        "web.1",
        Ipv4Addr::LOCALHOST.into(),
        move |req: Request<hyper::body::Incoming>| {
            let arrived = arrived.clone();
            async move {
                let _ = arrived.send(()).await;
                let _ = http_body_util::BodyExt::collect(req.into_body()).await;
                Response::new(empty())
            }
        },
    )
    .await;
    let mut rig = Rig::start(vec![sink.backend.clone()]).await;
    let head = b"POST /upload HTTP/1.1\r\nhost: h\r\ncontent-length: 1000000\r\n\r\npartial";
    let client = send_raw(rig.v4(), head).await;
    within("the request to reach the backend", reached.recv()).await;
    drop(client);
    let log = rig.log().await;
    let text = log.text();
    assert!(
        text.starts_with("sock=client at=warning code=H27 "),
        "{text}"
    );
    assert!(text.contains(" method=POST path=\"/upload\" "), "{text}");
    // The router keeps serving.
    rig.no_more_logs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h12_leaves_no_task_behind() {
    let tasks = tokio::runtime::Handle::current().metrics();
    let slow = http_backend(
        "web.1",
        Ipv4Addr::LOCALHOST.into(),
        |req: Request<_>| async move {
            if req.uri().path() == "/" {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Response::new(empty())
        },
    )
    .await;
    let mut rig = Rig::here(vec![slow.backend.clone()], Duration::from_millis(200)).await;
    fetch(rig.v4(), get("/warm")).await;
    rig.log().await;
    let baseline = settled(&tasks).await;
    for _ in 0..3 {
        expect_503(&mut rig, "H12", "Request timeout").await;
    }
    within("timed-out requests' tasks to end", async {
        while tasks.num_alive_tasks() > baseline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
