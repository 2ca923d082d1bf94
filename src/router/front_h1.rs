//! The router's own HTTP/1.1 server for the plain request: a whole `GET` head already in
//! hand, HTTP/1.1, no body (`Content-Length: 0` at most), no `Expect`, no upgrade, no
//! `Connection` but `keep-alive` or `close`. hyper's server costs more than the proxying
//! for such a request (its dispatcher, a boxed future, a body channel); here the
//! connection's task parses the head, runs the same service (`service::handle`, which
//! also checks the router's limits and may refuse) and writes the response itself.
//! Anything else (a head still arriving, a body, an upgrade) is put back in front of the
//! socket for hyper, which then serves the connection until it parks it, as before.
//!
//! The response is written as hyper's server writes one: the status line (the app's own
//! reason phrase kept), the headers as they are, then `content-length` from the body's
//! known length or `transfer-encoding: chunked`, `connection: close` if the client asked
//! to close, and `date` if the app sent none; no body for 204 and 304. A body that breaks
//! off ends the connection after what came.
//!
//! While a request waits for its answer the connection ticks every [`PARK_AFTER`], as
//! `server::drive` does: `forward::answer` arms its timers only when polled again.

use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::time::{Interval, interval_at};

use super::backend_h1::Fields;
use super::body::RouterBody;
use super::client_conn::ClientConn;
use super::headers;
use super::rewind::Rewind;
use super::service;

/// A connection without requests for this long (up to twice this) is parked: it waits for
/// the client's next bytes with nothing of hyper's or the router's allocated. Long enough
/// that a client sending requests back to back never is; short enough that a burst of
/// connections opened and left idle (a browser's, a test's) never holds many buffers.
/// Also the tick on which a request waiting for its answer is polled again.
pub(crate) const PARK_AFTER: Duration = Duration::from_millis(50);
/// More fields than this and hyper reads the request (its own and the router's limits).
const MAX_FIELDS: usize = 64;
/// Response bytes held before they are written, at most (plus one frame).
const MAX_UNSENT: usize = 64 * 1024;
/// Room made for each read: a whole head, usually.
const READ_ROOM: usize = 4096;
/// Bytes of a client's next requests read while one is being answered, at most.
const MAX_AHEAD: usize = 64 * 1024;

/// How a round of the router serving the connection itself ended.
pub(crate) enum Round {
    /// Nothing came for a while: wait for the client's next bytes.
    Parked,
    /// The client left, or a response could not be written or was cut short.
    Closed,
    /// A request that is hyper's to serve is unread in front of the socket.
    Hyper,
}

/// Serves plain requests on `socket` until one is not plain, or the client goes quiet or
/// away.
pub(crate) async fn serve(socket: &mut Rewind, ctx: &Arc<ClientConn>) -> Round {
    let mut buf = BytesMut::from(socket.take_unread());
    let now = tokio::time::Instant::now();
    let mut ticks = interval_at(now + PARK_AFTER, PARK_AFTER);
    let mut served = false;
    loop {
        if buf.is_empty() {
            match bytes_or_tick(socket, &mut ticks).await {
                Wake::Tick if !std::mem::take(&mut served) => return Round::Parked,
                Wake::Tick => continue,
                Wake::Readable => {}
            }
            match read_available(&socket.stream, &mut buf) {
                Ok(0) => return Round::Closed,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => return Round::Closed,
            }
        }
        let Some(Plain { request, close }) = plain_request(&mut buf) else {
            socket.unread(buf.freeze());
            return Round::Hyper;
        };
        if ctx.router.logs.is_full() {
            ctx.router.logs.room().await;
        }
        // Pinned where it is made: the future is kilobytes, and each move is a copy. In a
        // block of its own, so that it is gone before the response is written and the
        // two can share the same bytes of this future's state.
        let answered = {
            let answering = pin!(service::handle(Arc::clone(ctx), request));
            while_client_stays(answering, socket, &mut buf, &mut ticks).await
        };
        let Some(answered) = answered else {
            // Dropping the request's future logs it (H27) and hangs up on the backend.
            return Round::Closed;
        };
        served = true;
        let close = close || says_close(answered.headers());
        if write_response(socket, answered, close).await.is_err() || close {
            return Round::Closed;
        }
    }
}

enum Wake {
    Readable,
    Tick,
}

async fn bytes_or_tick(socket: &Rewind, ticks: &mut Interval) -> Wake {
    poll_fn(|cx| {
        if socket.stream.poll_read_ready(cx).is_ready() {
            return Poll::Ready(Wake::Readable);
        }
        ticks.poll_tick(cx).map(|_| Wake::Tick)
    })
    .await
}

/// Runs `answering` while the client stays: `None` if it closes or resets the connection
/// first, as hyper's server gives up on a request then. Bytes it sends meanwhile (the
/// next request, pipelined) are kept in `buf`, up to [`MAX_AHEAD`]. `answering` is polled
/// again on every tick while it waits.
async fn while_client_stays<F: Future>(
    mut answering: Pin<&mut F>,
    socket: &Rewind,
    buf: &mut BytesMut,
    ticks: &mut Interval,
) -> Option<F::Output> {
    poll_fn(|cx| {
        if let Poll::Ready(answer) = answering.as_mut().poll(cx) {
            return Poll::Ready(Some(answer));
        }
        while ticks.poll_tick(cx).is_ready() {}
        while buf.len() < MAX_AHEAD && socket.stream.poll_read_ready(cx).is_ready() {
            match read_available(&socket.stream, buf) {
                Ok(0) => return Poll::Ready(None),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Poll::Ready(None),
            }
        }
        Poll::Pending
    })
    .await
}

/// Reads what `stream` holds into `buf` (making [`READ_ROOM`] first), as `try_read_buf`
/// does; a read that leaves room also marks the socket not ready, as tokio's own
/// `poll_read` does. The kernel returns less than asked only when it has nothing more, so
/// reading again would only meet `WouldBlock`: a wasted system call per request.
fn read_available(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.is_empty() {
        // Back to the start of the buffer (it is ours alone: heads are copied out), so
        // each request is read into the same, warm bytes. Asking for more than is left
        // is what makes `try_reclaim` move; it never allocates.
        let _moved = buf.try_reclaim(buf.capacity() + 1);
    }
    buf.reserve(READ_ROOM);
    let room = buf.capacity() - buf.len();
    let mut short = None;
    // A `WouldBlock` from this closure is what makes tokio clear the readiness it saw.
    let outcome = stream.try_io(Interest::READABLE, || {
        let n = stream.try_read_buf(buf)?;
        if n > 0 && n < room {
            short = Some(n);
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    short.map_or(outcome, Ok)
}

/// A request the router serves itself.
struct Plain {
    request: Request<Option<Incoming>>,
    /// The client asked to close the connection after the response.
    close: bool,
}

/// The request at the start of `buf`, taken out of it, if it is plain; else `buf` is
/// left as it was.
fn plain_request(buf: &mut BytesMut) -> Option<Plain> {
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let mut parsed = httparse::Request::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_request_with_uninit_headers(&mut parsed, buf, &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return None,
    };
    let target = parsed.path.filter(|p| p.starts_with('/'))?;
    if parsed.method != Some("GET") || parsed.version != Some(1) {
        return None;
    }
    let mut close = false;
    for field in parsed.headers.iter() {
        close |= plain_field(field.name, field.value)?;
    }
    // The head's bytes, shared by the target and the header values; `buf` is untouched
    // until the request is known to be the router's. httparse's slices point into `buf`;
    // the same bytes sit at the same offsets in `head`.
    let head = Bytes::copy_from_slice(&buf[..len]);
    let shared = |part: &[u8]| {
        let start = part.as_ptr() as usize - buf.as_ptr() as usize;
        head.slice(start..start + part.len())
    };
    let uri = Uri::from_maybe_shared(shared(target.as_bytes())).ok()?;
    let mut map = HeaderMap::with_capacity(parsed.headers.len());
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes()).ok()?;
        let value = HeaderValue::from_maybe_shared(shared(field.value)).ok()?;
        map.append(name, value);
    }
    // The router's limits (and `Host`) are `service`'s to check, as for every request: a
    // refusal is written like any response, and ends the connection by what it says.
    buf.advance(len);
    let mut request = Request::new(None);
    *request.uri_mut() = uri;
    *request.headers_mut() = map;
    Some(Plain { request, close })
}

/// A message that asks to close the connection after it.
fn says_close(fields: &HeaderMap) -> bool {
    fields
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| headers::tokens(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"close")))
}

/// What a field says of the request, if it leaves it plain (no body: `Content-Length: 0`
/// at most; no expectation; no upgrade; nothing for the connection but keep-alive or
/// close): whether it asks to close the connection after the response.
fn plain_field(name: &str, value: &[u8]) -> Option<bool> {
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    if is("connection") {
        let mut close = false;
        for token in headers::tokens(value) {
            if token.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if !token.eq_ignore_ascii_case(b"keep-alive") {
                return None;
            }
        }
        return Some(close);
    }
    if is("content-length") {
        return (value.trim_ascii() == b"0").then_some(false);
    }
    (!(is("transfer-encoding") || is("expect") || is("upgrade"))).then_some(false)
}

/// Writes `response` as hyper's server would: the head, then the body as it comes.
async fn write_response(
    socket: &mut Rewind,
    response: Response<RouterBody>,
    close: bool,
) -> io::Result<()> {
    let (parts, mut body) = response.into_parts();
    let bodiless = matches!(
        parts.status,
        StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
    );
    let (head, chunked) = encode_head(&parts, &body, bodiless, close);
    if bodiless {
        drop(body);
        return socket.write_all(&head).await;
    }
    let mut out = vec![Bytes::from(head)];
    loop {
        // What the body has at once goes out with the head, in one write; a body that
        // keeps coming is written every `MAX_UNSENT` bytes, at the client's pace.
        if out.iter().map(Bytes::len).sum::<usize>() > MAX_UNSENT {
            write_all(socket, &mut out).await?;
        }
        let frame =
            match poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut body).poll_frame(cx))).await {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    write_all(socket, &mut out).await?;
                    poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
                }
            };
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    push_data(&mut out, data, chunked);
                }
            }
            Some(Err(_broken)) => {
                // The client gets what came; the connection cannot carry on.
                write_all(socket, &mut out).await?;
                return Err(io::Error::other("the response body broke off"));
            }
            None => {
                if chunked {
                    out.push(Bytes::from_static(b"0\r\n\r\n"));
                }
                return write_all(socket, &mut out).await;
            }
        }
    }
}

/// The status line and fields, and whether the body is sent chunked.
fn encode_head(
    parts: &hyper::http::response::Parts,
    body: &RouterBody,
    bodiless: bool,
    close: bool,
) -> (Vec<u8>, bool) {
    let mut head = Vec::with_capacity(128 + parts.headers.len() * 48);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    let reason = parts.extensions.get::<hyper::ext::ReasonPhrase>();
    match reason {
        Some(reason) => head.extend_from_slice(reason.as_bytes()),
        None => head.extend_from_slice(
            parts
                .status
                .canonical_reason()
                .unwrap_or("<none>")
                .as_bytes(),
        ),
    }
    head.extend_from_slice(b"\r\n");
    let mut has_length = false;
    let mut has_date = false;
    // The backend's fields first, then the router's (`X-Request-Id`, `Via`).
    let backend = body.backend_fields().into_iter().flat_map(Fields::iter);
    let router = parts.headers.iter();
    for (name, value) in backend.chain(router.map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))) {
        if name.eq_ignore_ascii_case(b"content-length") {
            if bodiless {
                continue;
            }
            has_length = true;
        }
        has_date |= name.eq_ignore_ascii_case(b"date");
        headers::push_field_lowercased(&mut head, name, value);
    }
    if close && !parts.headers.contains_key(header::CONNECTION) {
        headers::push_field(&mut head, b"connection", b"close");
    }
    let mut chunked = false;
    if !bodiless && !has_length {
        match body.size_hint().exact() {
            Some(length) => {
                let mut digits = itoa::Buffer::new();
                headers::push_field(
                    &mut head,
                    b"content-length",
                    digits.format(length).as_bytes(),
                );
            }
            None => {
                headers::push_field(&mut head, b"transfer-encoding", b"chunked");
                chunked = true;
            }
        }
    }
    if !has_date {
        push_date(&mut head);
    }
    head.extend_from_slice(b"\r\n");
    (head, chunked)
}

fn push_data(out: &mut Vec<Bytes>, data: Bytes, chunked: bool) {
    if chunked {
        out.push(Bytes::from(format!("{:X}\r\n", data.len())));
        out.push(data);
        out.push(Bytes::from_static(b"\r\n"));
    } else {
        out.push(data);
    }
}

/// Writes every piece, as few system calls as the socket allows.
async fn write_all(socket: &mut Rewind, out: &mut Vec<Bytes>) -> io::Result<()> {
    while !out.is_empty() {
        let slices: Vec<IoSlice<'_>> = out.iter().map(|b| IoSlice::new(b)).collect();
        let mut written = socket.write_vectored(&slices).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let first = &mut out[0];
            let step = written.min(first.len());
            first.advance(step);
            written -= step;
            if first.is_empty() {
                out.remove(0);
            }
        }
    }
    Ok(())
}

/// `date: …` as of now, formatted once a second per worker thread.
fn push_date(head: &mut Vec<u8>) {
    thread_local! {
        static CACHED: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHED.with_borrow_mut(|(at, text)| {
        if *at != second || text.is_empty() {
            *at = second;
            *text = httpdate::fmt_http_date(now);
        }
        headers::push_field(head, b"date", text.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(text: &str) -> (Option<Plain>, BytesMut) {
        let mut buf = BytesMut::from(text.as_bytes());
        (plain_request(&mut buf), buf)
    }

    #[test]
    fn a_plain_get_is_taken_and_the_next_request_left() {
        let (request, rest) =
            take("GET /a?b HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\nGET /next");
        let Plain { request, close } = request.expect("plain");
        assert!(!close);
        assert_eq!(request.uri(), "/a?b");
        assert_eq!(request.headers()["host"], "h");
        assert_eq!(&rest[..], b"GET /next");
    }

    #[test]
    fn a_get_with_no_length_or_asking_to_close_is_plain_too() {
        let text = "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let (request, rest) = take(text);
        let Plain { request, close } = request.expect("plain");
        assert!(close && rest.is_empty());
        assert_eq!(request.headers()["content-length"], "0");
    }

    #[test]
    fn a_request_to_refuse_is_still_the_routers_own() {
        // `service` refuses them (400, closing), as for a request hyper read.
        for text in [
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ] {
            let (request, rest) = take(text);
            assert!(request.is_some() && rest.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn anything_else_is_left_whole_for_hyper() {
        for text in [
            "GET / HTTP/1.1\r\nHost: h\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\n\r\n",
            "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx",
            "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: close, x-other\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "NOT HTTP\r\n\r\n",
        ] {
            let (request, rest) = take(text);
            assert!(request.is_none(), "{text:?}");
            assert_eq!(&rest[..], text.as_bytes());
        }
        let many: String = (0..MAX_FIELDS).map(|i| format!("X-{i}: v\r\n")).collect();
        let (request, _) = take(&format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n"));
        assert!(request.is_none());
    }

    #[test]
    fn heads_say_length_or_chunked_and_a_date_and_nothing_for_304() {
        let head = |status: u16, body: RouterBody, fields: &[(&str, &str)]| {
            let mut response = Response::new(body);
            *response.status_mut() = StatusCode::from_u16(status).expect("status");
            for (name, value) in fields {
                let name = HeaderName::from_bytes(name.as_bytes()).expect("name");
                response
                    .headers_mut()
                    .append(name, HeaderValue::from_str(value).expect("value"));
            }
            let (parts, body) = response.into_parts();
            let bodiless = matches!(
                parts.status,
                StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
            );
            let (head, chunked) = encode_head(&parts, &body, bodiless, false);
            (String::from_utf8(head).expect("text"), chunked)
        };
        let (page, chunked) = head(503, RouterBody::own("oops"), &[]);
        assert!(
            page.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{page}"
        );
        assert!(
            page.contains("\r\ncontent-length: 4\r\n") && page.contains("\r\ndate: "),
            "{page}"
        );
        assert!(!chunked);
        let (empty, _) = head(200, RouterBody::own(""), &[("date", "then")]);
        assert!(
            empty.contains("content-length: 0\r\n") && empty.matches("date").count() == 1,
            "{empty}"
        );
        let (not_modified, _) = head(304, RouterBody::own(""), &[("content-length", "5")]);
        assert!(!not_modified.contains("content-length"), "{not_modified}");
    }
}
