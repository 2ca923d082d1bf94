//! The proxy engine: send a request to a backend over a pooled connection and get the
//! response head back, turning every way that can fail into Heroku's code for it, then
//! hand the response (streamed, never buffered) to the client, and bridge upgrades.
//!
//! Failure → code, after Heroku's definitions (Dev Center "Heroku Error Codes"):
//! every up instance refused → H21 (others are tried first, up to 10 attempts, as Heroku
//! does); connect hangs → H19; no response head within the request timeout → H12; the
//! backend closed before answering → H13, or H18 if it left while the request body was
//! still being sent; an unparseable response → H17; the client's body broke → H27 (it
//! left) or H26 (bad chunk). Choosing the instance is `balancer`'s part, the limits and
//! header rewriting `headers`'.

use std::error::Error as _;
use std::io;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use tokio::time::error::Elapsed;
use tokio::time::{Instant, timeout_at};

use super::Router;
use super::backend_h1::{self, Fault, RawConn};
use super::balancer::{Backend, Tried};
use super::body::{BackendBody, Exchange, Proxied, RouterBody};
use super::client_conn::{Bridge, ClientConn};
use super::codes::{Cause, Code, Entry};
use super::conn_pool::{BackendConn, ConnPool, HyperLink, Key, Link, ReqBody, STALL, Wire};
use super::headers::{self, Forwarded};
use super::rewind::Rewind;

/// Heroku: "a maximum of 10 connection attempts, or fewer if you have less than 10
/// running web dynos", and 5 seconds before a connection attempt is given up (H19).
const MAX_CONNECT_ATTEMPTS: usize = 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A request hyper handed back unsent (its connection closed first), or a bodiless
/// idempotent one whose *reused* connection died before answering, is tried again on a
/// new connection this many times. A fresh connection that closes unanswered is H13 at
/// once: the app saw the request, and sending it again could crash it again (pingora's
/// "retry only reused").
const MAX_UNSENT_RETRIES: usize = 3;

/// The client's request on its way to the backend: HTTP/1.1, origin-form target. Its
/// headers are still the client's: Heroku's are added (and hop-by-hop ones left out) as
/// it is sent, by `send`.
pub(crate) fn prepare(req: Request<Option<Incoming>>) -> Request<ReqBody> {
    let (mut parts, body) = req.into_parts();
    parts.version = Version::HTTP_11;
    if parts.uri.scheme().is_some() {
        parts.uri = parts
            .uri
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |p| Uri::from(p.clone()));
    }
    Request::from_parts(parts, ReqBody::new(body))
}

/// A request body of no announced length: the client sent it chunked.
fn has_streamed_body(body: &ReqBody) -> bool {
    use hyper::body::Body as _;
    !body.is_end_stream() && body.size_hint().exact().is_none()
}

/// Heroku's headers, and no hop-by-hop ones, in `req`'s own map: what hyper's client sends.
fn prepare_for_hyper(req: &mut Request<ReqBody>, fwd: &Forwarded<'_>) {
    headers::prepare_request(req.headers_mut(), fwd);
    if has_streamed_body(req.body()) {
        // Said explicitly, or hyper sends a GET's or HEAD's body as `Content-Length: 0`.
        req.headers_mut().insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
    }
}

/// What the router tells the backend about this request.
fn forwarded<'a>(
    router: &'a Router,
    entry: &'a Entry,
    start_ms: u64,
    upgrade: bool,
) -> Forwarded<'a> {
    Forwarded {
        request_id: &entry.request_id,
        forwarded_for: &entry.fwd,
        port: &router.forwarded_port,
        start_ms,
        upgrade,
    }
}

/// Sends `req` to an up instance and waits for the response head.
pub(crate) async fn send(
    router: &Router,
    mut req: Request<ReqBody>,
    exchange: &mut Exchange,
    arrived: Instant,
    upgrade: bool,
) -> Result<Response<BackendBody>, Code> {
    let boot_deadline = arrived + router.config.request_timeout;
    let plain = is_plain(&req, upgrade);
    let start_ms = headers::unix_millis(SystemTime::now());
    // Heroku's headers are in the request's own map once hyper's client has sent it.
    let mut prepared = false;
    let mut tried = Vec::new();
    let mut retries = 0;
    loop {
        let fresh = retries > 0;
        let (backend, conn) = connect(router, &mut tried, boot_deadline, exchange, fresh).await?;
        // H12 counts from the moment the request could be sent (Heroku § Timeouts).
        let connected = exchange.sendable_since();
        let deadline = connected + router.config.request_timeout;
        let key = Key::of(&backend);
        let to = Try {
            router,
            key,
            deadline,
            reused: conn.reused,
        };
        let attempt = match conn.link {
            Link::Raw(raw) if plain => {
                let fwd = forwarded(router, exchange.entry(), start_ms, upgrade);
                let head = backend_h1::encode_request(&req, (!prepared).then_some(&fwd));
                send_raw(&to, raw, &req, head, exchange).await
            }
            link => {
                if !std::mem::replace(&mut prepared, true) {
                    let fwd = forwarded(router, exchange.entry(), start_ms, upgrade);
                    prepare_for_hyper(&mut req, &fwd);
                }
                let hyper = Box::pin(link.into_hyper()).await.map_err(|_| Code::H13)?;
                Box::pin(send_hyper(&to, hyper, req, exchange)).await
            }
        };
        match attempt {
            Attempt::Answered(response) => {
                router.conn_pool.heard_from(key);
                return Ok(response);
            }
            Attempt::Again(request, _) if retries < MAX_UNSENT_RETRIES => {
                retries += 1;
                req = request;
            }
            Attempt::Again(_, code) | Attempt::Failed(code) => return Err(code),
        }
    }
}

/// One try: to which backend, on a connection taken from the pool or not, answered by
/// when.
struct Try<'r> {
    router: &'r Router,
    key: Key,
    deadline: Instant,
    reused: bool,
}

impl Try<'_> {
    /// The answer to this try's request, or the deadline passing first.
    async fn answer<F: Future>(&self, sending: F) -> Result<F::Output, Elapsed> {
        answer(self.router, self.key, sending, self.deadline).await
    }
}

/// What one try on one connection came to.
enum Attempt {
    Answered(Response<BackendBody>),
    /// Unsent, or safe to send again: try once more on a new connection (the code is
    /// the answer once the tries are used up).
    Again(Request<ReqBody>, Code),
    Failed(Code),
}

/// A request the router sends itself (`backend_h1`): no body, no upgrade, not CONNECT.
fn is_plain(req: &Request<ReqBody>, upgrade: bool) -> bool {
    use hyper::body::Body as _;
    !upgrade && req.body().is_end_stream() && req.method() != Method::CONNECT
}

/// One try through the router's own client.
async fn send_raw(
    to: &Try<'_>,
    conn: RawConn,
    req: &Request<ReqBody>,
    head: Vec<u8>,
    exchange: &mut Exchange,
) -> Attempt {
    let key = to.key;
    match to.answer(conn.exchange(head, req.method())).await {
        Err(_elapsed) => Attempt::Failed(Code::H12),
        Ok(Ok(response)) => {
            exchange.answered(key, None, response.status());
            Attempt::Answered(response.map(BackendBody::Raw))
        }
        // The request is still whole here: a retry needs no copy.
        Ok(Err(Fault::Unsent)) => Attempt::Again(bodiless_copy(req), Code::H13),
        Ok(Err(Fault::Closed)) if to.reused && is_idempotent(req.method()) => {
            Attempt::Again(bodiless_copy(req), Code::H13)
        }
        Ok(Err(Fault::Closed)) => Attempt::Failed(Code::H13),
        Ok(Err(Fault::Malformed)) => Attempt::Failed(Code::H17),
    }
}

/// One try through hyper's client.
async fn send_hyper(
    to: &Try<'_>,
    hyper: HyperLink,
    mut req: Request<ReqBody>,
    exchange: &mut Exchange,
) -> Attempt {
    let Try { key, reused, .. } = *to;
    let HyperLink { mut sender, wire } = hyper;
    // Only a reused connection's failure is replayed (`stale` below): a fresh one
    // needs no copy.
    let replay = reused.then(|| replayable(&req)).flatten();
    req.body_mut().send_on(&wire);
    match to.answer(sender.try_send_request(req)).await {
        Err(_elapsed) => Attempt::Failed(Code::H12),
        Ok(Ok(response)) => {
            let conn = BackendConn {
                link: Link::Hyper(HyperLink { sender, wire }),
                reused,
            };
            exchange.answered(key, Some(conn), response.status());
            Attempt::Answered(response.map(BackendBody::Hyper))
        }
        Ok(Err(mut failed)) => {
            let code = classify(failed.error(), &wire);
            let stale = reused && code == Code::H13;
            match failed.take_message().or_else(|| replay.filter(|_| stale)) {
                Some(request) => Attempt::Again(request, code),
                None => Attempt::Failed(code),
            }
        }
    }
}

/// Waits for `sending` until `deadline`, telling the pool each [`STALL`] it goes on
/// waiting: a single-threaded backend may be busy with an idle pooled connection. One
/// timer at a time, as a plain timeout would use.
///
/// Most answers wake the request before anything else does, so the timer is armed only
/// when the request is polled again still unanswered: `server::drive` ticks every 50 ms
/// while a request is in progress, so that is at most one tick in. A timer per request
/// (armed and cancelled in the runtime's wheel) was a measurable part of its cost.
async fn answer<F: Future>(
    router: &Router,
    key: Key,
    sending: F,
    deadline: Instant,
) -> Result<F::Output, Elapsed> {
    let sent = Instant::now();
    let mut sending = std::pin::pin!(sending);
    let mut first = true;
    let quick = std::future::poll_fn(|cx| match sending.as_mut().poll(cx) {
        Poll::Ready(answer) => Poll::Ready(Some(answer)),
        Poll::Pending if std::mem::take(&mut first) => Poll::Pending,
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    if let Some(answer) = quick {
        return Ok(answer);
    }
    let mut next_check = sent + STALL;
    loop {
        let check = next_check.max(Instant::now()).min(deadline);
        match timeout_at(check, &mut sending).await {
            Err(_) if check < deadline => {
                router.conn_pool.stalled(key);
                next_check = check + STALL;
            }
            done => return done,
        }
    }
}

/// A copy of a request that can safely be sent twice: no body, and an idempotent method
/// (RFC 9110 §9.2.2). A kept-alive connection the backend closed as the request went out
/// (the process just died, or its idle timeout hit) is the case: the request most
/// likely never reached the app, and reaching it twice does no harm. The retry goes
/// through `connect`, which waits for the supervisor's news once the dead instance
/// refuses.
fn replayable(req: &Request<ReqBody>) -> Option<Request<ReqBody>> {
    use hyper::body::Body as _;
    let replay = is_idempotent(req.method()) && req.body().is_end_stream();
    replay.then(|| bodiless_copy(req))
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The request's head again, with no body.
fn bodiless_copy(req: &Request<ReqBody>) -> Request<ReqBody> {
    let mut copy = Request::new(ReqBody::empty());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy
}

/// A connection to the next instance: pooled if one is idle, else new; instances that
/// refuse are skipped until none is left (H21, after a moment's wait for news).
async fn connect(
    router: &Router,
    tried: &mut Vec<Tried>,
    boot_deadline: Instant,
    exchange: &mut Exchange,
    fresh: bool,
) -> Result<(Backend, BackendConn), Code> {
    loop {
        let backend = router
            .picker
            .choose(&router.backends, tried, boot_deadline)
            .await?;
        exchange.trying(&backend);
        let pooled = (!fresh)
            .then(|| router.conn_pool.checkout(Key::of(&backend)))
            .flatten();
        if let Some(conn) = pooled {
            exchange.connect_took(Duration::ZERO);
            return Ok((backend, conn));
        }
        let started = Instant::now();
        let limit = started + CONNECT_TIMEOUT.min(router.config.request_timeout);
        // Boxed, as hyper's client is in `send`: a pooled connection is the common case,
        // and kept inline this future would make every request's (and so every client
        // connection's) future larger.
        let attempt = Box::pin(timeout_at(limit, ConnPool::connect(&backend))).await;
        exchange.connect_took(started.elapsed());
        match attempt {
            Ok(Ok(conn)) => return Ok((backend, conn)),
            // Refused, or any other reason the backend cannot be reached.
            Ok(Err(_refused)) => {
                tried.push((backend.addr, backend.generation));
                if tried.len() >= MAX_CONNECT_ATTEMPTS {
                    return Err(Code::H21);
                }
            }
            Err(_elapsed) => return Err(Code::H19),
        }
    }
}

/// Heroku's code for a request that got no response head.
fn classify(err: &hyper::Error, wire: &Wire) -> Code {
    if let Some(code) = client_body_fault(err) {
        return code;
    }
    if err.is_parse() {
        return Code::H17;
    }
    if wire.body_pending.load(Ordering::Relaxed) {
        return Code::H18;
    }
    Code::H13
}

/// A failure that came from reading the *client's* body while sending it: the client left
/// (H27), or its chunked encoding was invalid (H26, 400). hyper reports both as a user
/// body error whose source is the hyper error of the client connection.
fn client_body_fault(err: &hyper::Error) -> Option<Code> {
    if !err.is_user() {
        return None;
    }
    let client = err.source()?.downcast_ref::<hyper::Error>()?;
    let io = client.source().and_then(|s| s.downcast_ref::<io::Error>());
    match io.map(io::Error::kind) {
        Some(io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput) => {
            Some(Code::H26(Cause::BadChunk))
        }
        _ => Some(Code::H27),
    }
}

/// A `101` the client did not ask for is a malformed response (H17): there is nothing
/// to bridge it to.
pub(crate) fn check_switch<B>(response: &Response<B>, upgrade: bool) -> Result<(), Code> {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS && !upgrade {
        return Err(Code::H17);
    }
    Ok(())
}

/// The backend's response as the client gets it; a `101` is bridged in both directions.
/// The fields of a head the router read itself stay out of the header map when the
/// router's own server writes the response (`own_server`): it writes them from the head,
/// then the map's (the router's own, `X-Request-Id` and `Via`). hyper's server needs them
/// in the map, in the backend's order before the router's.
pub(crate) fn respond(
    ctx: &ClientConn,
    mut response: Response<BackendBody>,
    mut exchange: Exchange,
    own_server: bool,
) -> Response<RouterBody> {
    if let (false, BackendBody::Raw(raw)) = (own_server, response.body_mut()) {
        let fields = raw.take_fields();
        fields.into_map(response.headers_mut());
    }
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching {
        exchange.upgraded();
        let backend = hyper::upgrade::on(&mut response);
        ctx.bridge(Bridge { backend });
    }
    let (mut parts, body) = response.into_parts();
    headers::prepare_response(&mut parts.headers, &exchange.entry().request_id, switching);
    Response::from_parts(parts, RouterBody::Proxied(Proxied::new(body, exchange)))
}

/// Copies bytes both ways between the upgraded client and backend until both are done.
pub(crate) async fn bridge(mut client: Rewind, bridge: Bridge) {
    if let Ok(backend) = bridge.backend.await {
        let mut backend = TokioIo::new(backend);
        let _closed = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
    }
}
