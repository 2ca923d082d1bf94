//! Test rig: the router serving on an ephemeral port, in-process backends (well-behaved
//! hyper servers and raw TCP misbehavers), clients (hyper and raw bytes), and
//! deadline-bounded waits. Every task started here is aborted when its handle drops.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::output::{LogSender, Record, Records, RouterLog, RouterValue};
use crate::router::{Backend, Backends, Balance, RouterConfig, bind, serve, serve_here};

/// Long enough for a loaded 2-core CI machine; only failures wait this long.
pub(super) const PATIENCE: Duration = Duration::from_secs(20);

pub(super) type TestBody = BoxBody<Bytes, io::Error>;

/// Aborts its task when dropped.
pub(super) struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) fn spawn(f: impl Future<Output = ()> + Send + 'static) -> Task {
    Task(tokio::spawn(f))
}

/// Fails the test if `f` takes longer than [`PATIENCE`].
pub(super) async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// The router under test.
pub(super) struct Rig {
    pub(super) port: u16,
    pub(super) backends: watch::Sender<Backends>,
    logs: Records,
    /// Lines received in a batch and not yet looked at.
    pending: VecDeque<RouterLog>,
    _serve: Task,
}

impl Rig {
    pub(super) async fn start(up: Vec<Backend>) -> Rig {
        Rig::with(up, Duration::from_secs(30), Balance::RoundRobin).await
    }

    pub(super) async fn with(up: Vec<Backend>, timeout: Duration, balance: Balance) -> Rig {
        Rig::build(up, timeout, balance, false).await
    }

    /// The router on the test's own runtime rather than its worker threads, so the
    /// test can count the tasks it leaves behind.
    pub(super) async fn here(up: Vec<Backend>, timeout: Duration) -> Rig {
        Rig::build(up, timeout, Balance::RoundRobin, true).await
    }

    async fn build(up: Vec<Backend>, timeout: Duration, balance: Balance, here: bool) -> Rig {
        let listeners = bind(0).expect("UNWRAP: an ephemeral port is free");
        let port = listeners.port().expect("UNWRAP: bound");
        let (backends, rx) = watch::channel(Backends {
            up,
            ..Backends::default()
        });
        let (log, logs) = LogSender::channel();
        let config = RouterConfig {
            port,
            request_timeout: timeout,
            header_timeout: Duration::from_secs(30),
            balance,
        };
        let serve = if here {
            let shared = crate::router::Shared::new(balance, usize::MAX);
            spawn(serve_here(listeners.sockets, config, rx, shared, log))
        } else {
            spawn(serve(listeners, config, rx, log))
        };
        Rig {
            port,
            backends,
            logs,
            pending: VecDeque::new(),
            _serve: serve,
        }
    }

    pub(super) fn v4(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    pub(super) fn v6(&self) -> SocketAddr {
        SocketAddr::from((Ipv6Addr::LOCALHOST, self.port))
    }

    pub(super) fn publish(&self, backends: Backends) {
        self.backends.send_replace(backends);
    }

    /// The next router log line.
    pub(super) async fn log(&mut self) -> Log {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Log(line);
            }
            match within("a router log line", self.logs.recv()).await {
                Some(Record::Router(lines)) => self.pending.extend(lines),
                Some(_) => continue,
                None => panic!("the router's log channel closed"),
            }
        }
    }

    /// No further log line arrives within a short while.
    pub(super) async fn no_more_logs(&mut self) {
        if let Some(line) = self.pending.pop_front() {
            panic!("unexpected log line {:?}", Log(line).text());
        }
        let quiet = tokio::time::timeout(Duration::from_millis(200), self.logs.recv()).await;
        if let Ok(Some(Record::Router(lines))) = quiet {
            let texts: Vec<String> = lines.into_iter().map(|l| Log(l).text()).collect();
            panic!("unexpected log lines {texts:?}");
        }
    }
}

/// A router log line, with ways to look at it.
#[derive(Debug)]
pub(super) struct Log(pub(super) RouterLog);

impl Log {
    /// Rendered as the plain printer does.
    pub(super) fn text(&self) -> String {
        crate::output::format::router_text(&self.0)
    }

    pub(super) fn get(&self, key: &str) -> Option<RouterValue<'_>> {
        self.0.fields().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub(super) fn word(&self, key: &str) -> String {
        match self.get(key) {
            Some(RouterValue::Word(s) | RouterValue::Quoted(s) | RouterValue::Escaped(s)) => {
                s.to_owned()
            }
            Some(RouterValue::Number(n) | RouterValue::Millis(n)) => n.to_string(),
            Some(RouterValue::Empty) => String::new(),
            None => panic!("no {key}= in {}", self.text()),
        }
    }

    pub(super) fn code(&self) -> String {
        self.get("code")
            .map_or_else(String::new, |_| self.word("code"))
    }
}

/// A backend instance under test; its server stops when this drops.
pub(super) struct TestBackend {
    pub(super) backend: Backend,
    _task: Task,
}

pub(super) fn backend(name: &str, addr: SocketAddr, generation: u64) -> Backend {
    Backend {
        name: name.into(),
        addr,
        generation,
    }
}

pub(super) async fn listen(ip: IpAddr) -> TcpListener {
    TcpListener::bind(SocketAddr::new(ip, 0))
        .await
        .expect("UNWRAP: ephemeral port")
}

/// A hyper HTTP/1.1 server (with upgrades) answering with `handler`.
pub(super) async fn http_backend<F, Fut>(name: &str, ip: IpAddr, handler: F) -> TestBackend
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    let listener = listen(ip).await;
    let addr = listener.local_addr().expect("UNWRAP: bound");
    let task = spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = server::Builder::new()
                    .max_headers(2048)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    TestBackend {
        backend: backend(name, addr, 1),
        _task: task,
    }
}

/// A TCP server that does whatever `client_conn` does with each accepted connection.
pub(super) async fn raw_backend<F, Fut>(name: &str, conn: F) -> TestBackend
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = listen(IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let addr = listener.local_addr().expect("UNWRAP: bound");
    let task = spawn(async move {
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(conn(stream));
            }
        }
    });
    TestBackend {
        backend: backend(name, addr, 1),
        _task: task,
    }
}

/// Reads a request head (up to the blank line) from a raw connection.
pub(super) async fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    head
}

pub(super) fn text(body: &'static str) -> TestBody {
    full(Bytes::from_static(body.as_bytes()))
}

pub(super) fn full(bytes: Bytes) -> TestBody {
    http_body_util::Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed()
}

pub(super) fn empty() -> TestBody {
    text("")
}

/// A body fed from a channel, frame by frame.
pub(super) struct ChannelBody(pub(super) mpsc::Receiver<Result<Bytes, io::Error>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.0.poll_recv(cx).map(|f| f.map(|r| r.map(Frame::data)))
    }
}

pub(super) fn channel_body() -> (mpsc::Sender<Result<Bytes, io::Error>>, TestBody) {
    let (tx, rx) = mpsc::channel(4);
    (tx, BodyExt::boxed(ChannelBody(rx)))
}

/// A body of `len` deterministic bytes, generated in 64 KiB frames.
pub(super) struct PatternBody {
    pub(super) left: u64,
    pub(super) offset: u64,
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        let chunk = pattern(self.offset, n);
        self.left -= n;
        self.offset += n;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

pub(super) fn pattern(offset: u64, len: u64) -> Bytes {
    (offset..offset + len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// FNV-1a over a stream of chunks; the same however the stream was cut.
#[derive(Clone)]
pub(super) struct Checksum(u64);

impl Checksum {
    pub(super) fn new() -> Checksum {
        Checksum(0xcbf2_9ce4_8422_2325)
    }

    pub(super) fn add(&mut self, data: &[u8]) {
        for b in data {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub(super) fn value(&self) -> u64 {
        self.0
    }
}

/// A hyper client connection to the router.
pub(super) async fn connect(addr: SocketAddr) -> client::SendRequest<TestBody> {
    let stream = TcpStream::connect(addr)
        .await
        .expect("UNWRAP: router listens");
    let (sender, conn) = client::handshake(TokioIo::new(stream))
        .await
        .expect("UNWRAP: h1 handshake does no IO");
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    sender
}

pub(super) fn get(path: &str) -> Request<TestBody> {
    Request::get(path)
        .header("host", "localhost:5006")
        .body(empty())
        .expect("UNWRAP: valid request")
}

/// Sends `req` on a new connection and collects the response.
pub(super) async fn fetch(
    addr: SocketAddr,
    req: Request<TestBody>,
) -> (hyper::http::response::Parts, Bytes) {
    let mut sender = connect(addr).await;
    let response = within("a response", sender.send_request(req))
        .await
        .expect("UNWRAP: the router answers");
    let (parts, body) = response.into_parts();
    let body = within("a response body", body.collect())
        .await
        .expect("UNWRAP: body arrives whole")
        .to_bytes();
    (parts, body)
}

/// Writes raw bytes and reads until the router closes the connection.
pub(super) async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("UNWRAP: router listens");
    // The router may answer and close before reading everything: a write error is fine.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = within("the router to close", stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A raw connection to the router with `request` (or its beginning) already written.
pub(super) async fn send_raw(addr: SocketAddr, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("UNWRAP: router listens");
    stream.write_all(request).await.expect("UNWRAP: sent");
    stream
}

/// Counts requests a backend served, shareable with its handler.
#[derive(Clone, Default)]
pub(super) struct Counter(Arc<AtomicU64>);

impl Counter {
    pub(super) fn bump(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(super) fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Whether this host can use IPv6 loopback.
pub(super) fn has_ipv6() -> bool {
    std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}
