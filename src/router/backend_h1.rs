//! The router's own HTTP/1.1 client for the common request: no body and no upgrade.
//!
//! hyper's client runs each backend connection as a task of its own and hands every
//! request and response across a channel; for a small `GET` that machinery cost more
//! than the router's own work. Here the request's task writes the head and reads the
//! response itself on a [`RawConn`]. Everything else (a body to send, an upgrade) still
//! goes through hyper: a raw connection is handed to hyper's handshake when such a
//! request picks it (`conn_pool`).
//!
//! The parsing follows what hyper's client does, so that either path gives the client
//! the same answer: httparse with hyper's limits (100 headers, ~408 KiB of head),
//! informational (1xx) heads skipped, the body framed by RFC 9112 §6.3 (no body for
//! HEAD, 204 and 304; chunked when `Transfer-Encoding` says so; otherwise by
//! `Content-Length`, all of whose values must agree; otherwise until the backend
//! closes), and a connection kept only when the response allows it (HTTP/1.1 without
//! `Connection: close`, or HTTP/1.0 with `keep-alive`) and ended with nothing extra.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::conn_pool::QuickAck;

/// hyper's client limits: more headers, or a longer head, is a malformed response.
const MAX_HEADERS: usize = 100;
const MAX_HEAD: usize = 8192 + 4096 * 100;
/// Room made in a connection's buffer before each read.
const READ_ROOM: usize = 16 * 1024;
/// Bytes of chunk extensions and trailers accepted in one body (hyper's limit too).
const MAX_CHUNK_EXTRAS: usize = 16 * 1024;

/// A backend connection the router speaks HTTP/1.1 on itself.
pub(crate) struct RawConn {
    io: QuickAck,
    /// Read and not yet used.
    buf: BytesMut,
}

/// Why an exchange got no response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The request could not be written: the backend never saw it.
    Unsent,
    /// The backend closed (or reset) the connection before a whole head came.
    Closed,
    /// What came is not an HTTP/1.1 response head within hyper's limits.
    Malformed,
}

impl RawConn {
    pub(crate) fn new(io: QuickAck) -> RawConn {
        RawConn {
            io,
            buf: BytesMut::new(),
        }
    }

    /// Readable while idle: the backend closed it, or sent what nobody asked for.
    pub(crate) fn is_closed(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.io.poll_read_ready(&mut cx).is_ready()
    }

    /// The socket, for hyper's handshake. An idle connection has nothing buffered.
    pub(crate) fn into_io(self) -> QuickAck {
        self.io
    }

    /// Sends `head` and reads the response head: the response, its body still to read.
    pub(crate) async fn exchange(
        mut self,
        head: Vec<u8>,
        method: &Method,
    ) -> Result<Response<RawBody>, Fault> {
        self.io
            .write_all(&head)
            .await
            .map_err(|_unsent| Fault::Unsent)?;
        loop {
            if let Some(parsed) = parse_head(&mut self.buf)? {
                let Some(framing) = framing(&parsed, method)? else {
                    continue; // informational: the real head follows
                };
                let keep_alive = keeps_alive(&parsed) && !matches!(framing, Framing::UntilClose);
                return Ok(parsed.map(|()| RawBody {
                    conn: Some(self),
                    framing,
                    keep_alive,
                }));
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(Fault::Malformed);
            }
            if self.fill().await.map_err(|_reset| Fault::Closed)? == 0 {
                return Err(Fault::Closed);
            }
        }
    }

    async fn fill(&mut self) -> io::Result<usize> {
        self.make_room();
        self.io.read_buf(&mut self.buf).await
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.make_room();
        std::pin::pin!(self.io.read_buf(&mut self.buf)).poll(cx)
    }

    fn make_room(&mut self) {
        if self.buf.capacity() - self.buf.len() < READ_ROOM / 4 {
            self.buf.reserve(READ_ROOM);
        }
    }
}

/// The request head as hyper's client writes a bodiless request: the request line with
/// the origin-form target, then every header as it is (lowercase names), without
/// `Transfer-Encoding` (there is no body to frame).
pub(crate) fn encode_request<B>(req: &Request<B>) -> Vec<u8> {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(req.method().as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// A whole head at the start of `buf`, taken out of it; `None` if more must be read.
fn parse_head(buf: &mut BytesMut) -> Result<Option<Response<()>>, Fault> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Fault::Malformed),
    };
    let code = parsed.code.unwrap_or_default();
    let status = StatusCode::from_u16(code).map_err(|_| Fault::Malformed)?;
    let version = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let reason = parsed
        .reason
        .filter(|r| Some(*r) != status.canonical_reason());
    let reason = reason.map(|r| hyper::ext::ReasonPhrase::try_from(r.as_bytes()));
    // The head's bytes become shared: header values point into them, uncopied.
    let fields: Vec<(usize, usize, usize, usize)> = parsed
        .headers
        .iter()
        .map(|h| {
            let name = offset_in(buf, h.name.as_bytes());
            let value = offset_in(buf, h.value);
            (name, name + h.name.len(), value, value + h.value.len())
        })
        .collect();
    let head = buf.split_to(len).freeze();
    let mut map = HeaderMap::with_capacity(fields.len());
    for (name_start, name_end, value_start, value_end) in fields {
        let name = HeaderName::from_bytes(&head[name_start..name_end]);
        let value = HeaderValue::from_maybe_shared(head.slice(value_start..value_end));
        match (name, value) {
            (Ok(name), Ok(value)) => map.append(name, value),
            _ => return Err(Fault::Malformed),
        };
    }
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = map;
    match reason {
        Some(Ok(reason)) => {
            response.extensions_mut().insert(reason);
        }
        Some(Err(_)) => return Err(Fault::Malformed),
        None => {}
    }
    Ok(Some(response))
}

/// Where `part`, a slice of `whole`, starts in it.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

/// How the body of `response` (to a `method` request) ends; `None` for a 1xx head.
fn framing(response: &Response<()>, method: &Method) -> Result<Option<Framing>, Fault> {
    let status = response.status();
    if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(None);
    }
    if status == StatusCode::SWITCHING_PROTOCOLS
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || method == Method::HEAD
    {
        return Ok(Some(Framing::Done));
    }
    let headers = response.headers();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        if response.version() == Version::HTTP_10 {
            return Err(Fault::Malformed);
        }
        return Ok(Some(if ends_chunked(headers) {
            Framing::Chunked(Chunked::default())
        } else {
            Framing::UntilClose
        }));
    }
    match content_length(headers)? {
        Some(0) => Ok(Some(Framing::Done)),
        Some(len) => Ok(Some(Framing::Length(len))),
        None => Ok(Some(Framing::UntilClose)),
    }
}

/// `Transfer-Encoding`'s last coding is `chunked`.
fn ends_chunked(headers: &HeaderMap) -> bool {
    let last = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back();
    last.and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"))
}

/// Every `Content-Length` value (comma-separated lists too) must be the same number.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, Fault> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let text = value.to_str().map_err(|_| Fault::Malformed)?;
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Fault::Malformed);
            }
            let n: u64 = part.parse().map_err(|_| Fault::Malformed)?;
            if length.is_some_and(|l| l != n) {
                return Err(Fault::Malformed);
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
fn keeps_alive(response: &Response<()>) -> bool {
    let mut keep = response.version() == Version::HTTP_11;
    for value in response.headers().get_all(header::CONNECTION) {
        let has = |token: &str| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        if has("close") {
            return false;
        }
        keep |= has("keep-alive");
    }
    keep
}

/// How the rest of a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are still to come.
    Length(u64),
    Chunked(Chunked),
    /// Everything until the backend closes: the connection cannot be reused.
    UntilClose,
    Done,
}

/// A backend's response body, read from its connection as the client takes it.
pub(crate) struct RawBody {
    conn: Option<RawConn>,
    framing: Framing,
    keep_alive: bool,
}

/// A body error for hyper's server: it cuts the client's response short.
pub(crate) type BodyError = Box<dyn std::error::Error + Send + Sync>;

impl RawBody {
    /// The connection, once the body ended cleanly and the backend may send another.
    pub(crate) fn reusable(&mut self) -> Option<RawConn> {
        let clean = self.framing == Framing::Done && self.keep_alive;
        if clean && self.conn.as_ref().is_some_and(|c| c.buf.is_empty()) {
            self.conn.take()
        } else {
            None
        }
    }

    /// The next piece of body already read, if any.
    fn take_buffered(&mut self) -> Result<Option<Bytes>, BodyError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        let buf = &mut conn.buf;
        match &mut self.framing {
            Framing::Done => Ok(None),
            Framing::Length(left) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let take = usize::try_from(*left).map_or(buf.len(), |l| l.min(buf.len()));
                *left -= take as u64;
                if *left == 0 {
                    self.framing = Framing::Done;
                }
                Ok(Some(buf.split_to(take).freeze()))
            }
            Framing::Chunked(chunked) => match chunked.next(buf)? {
                Step::Data(data) => Ok(Some(data)),
                Step::End => {
                    self.framing = Framing::Done;
                    Ok(None)
                }
                Step::More => Ok(None),
            },
            Framing::UntilClose => Ok((!buf.is_empty()).then(|| buf.split().freeze())),
        }
    }
}

impl Body for RawBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            if let Some(data) = this.take_buffered()? {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if this.framing == Framing::Done {
                return Poll::Ready(None);
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            if ready!(conn.poll_fill(cx))? == 0 {
                if this.framing == Framing::UntilClose {
                    this.framing = Framing::Done;
                    this.keep_alive = false;
                    return Poll::Ready(None);
                }
                let early = io::Error::new(io::ErrorKind::UnexpectedEof, "backend closed mid-body");
                return Poll::Ready(Some(Err(early.into())));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(left) => SizeHint::with_exact(left),
            Framing::Done => SizeHint::with_exact(0),
            Framing::Chunked(_) | Framing::UntilClose => SizeHint::default(),
        }
    }
}

/// Where a chunked body's decoder is (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// In a chunk-size line's hex digits (this many so far; the value is `Chunked::size`).
    Size {
        digits: u8,
    },
    /// Spaces after the size.
    SizeSpace,
    /// In a chunk extension, up to the line's end.
    Extension,
    /// The size line's CR came: its LF must follow.
    SizeLf,
    /// This many bytes of chunk data are still to come.
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    InTrailer,
    TrailerLf,
    EndLf,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chunked {
    state: ChunkState,
    /// The size of the chunk whose size line is being read.
    size: u64,
    /// Bytes of extensions and trailers so far.
    extras: usize,
}

impl Default for Chunked {
    fn default() -> Chunked {
        Chunked {
            state: ChunkState::Size { digits: 0 },
            size: 0,
            extras: 0,
        }
    }
}

enum Step {
    Data(Bytes),
    /// The last chunk and the trailers are through; trailers are not passed on.
    End,
    More,
}

impl Chunked {
    fn next(&mut self, buf: &mut BytesMut) -> Result<Step, BodyError> {
        loop {
            match self.state {
                ChunkState::Done => return Ok(Step::End),
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let take = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    let rest = left - take as u64;
                    self.state = if rest == 0 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(rest)
                    };
                    return Ok(Step::Data(buf.split_to(take).freeze()));
                }
                _ => {
                    let Some(&byte) = buf.first() else {
                        return Ok(Step::More);
                    };
                    buf.advance(1);
                    self.state = self.after(byte)?;
                }
            }
        }
    }

    /// The state after `byte` outside chunk data.
    fn after(&mut self, byte: u8) -> Result<ChunkState, BodyError> {
        use ChunkState as S;
        let bad = |what: &str| -> BodyError {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad chunked body: {what}"),
            )
            .into()
        };
        Ok(match (self.state, byte) {
            (S::Size { digits }, b) if b.is_ascii_hexdigit() => {
                let digit = u64::from(char::from(b).to_digit(16).unwrap_or_default());
                if digits >= 16 {
                    return Err(bad("chunk size too large"));
                }
                self.size = self.size * 16 + digit;
                S::Size { digits: digits + 1 }
            }
            (S::Size { digits: 0, .. }, _) => return Err(bad("no chunk size")),
            (S::Size { .. } | S::SizeSpace, b' ' | b'\t') => S::SizeSpace,
            (S::Size { .. } | S::SizeSpace, b';') => S::Extension,
            (S::Size { .. } | S::SizeSpace | S::Extension, b'\r') => S::SizeLf,
            (S::Extension, b'\n') => return Err(bad("newline in a chunk extension")),
            (S::Extension, _) => {
                self.count_extra()?;
                S::Extension
            }
            (S::SizeLf, b'\n') => match std::mem::take(&mut self.size) {
                0 => S::TrailerStart,
                size => S::Data(size),
            },
            (S::DataCr, b'\r') => S::DataLf,
            (S::DataLf, b'\n') => S::Size { digits: 0 },
            (S::TrailerStart, b'\r') => S::EndLf,
            (S::InTrailer, b'\r') => S::TrailerLf,
            (S::TrailerStart | S::InTrailer, _) => {
                self.count_extra()?;
                S::InTrailer
            }
            (S::TrailerLf, b'\n') => S::TrailerStart,
            (S::EndLf, b'\n') => S::Done,
            _ => return Err(bad("unexpected byte")),
        })
    }

    fn count_extra(&mut self) -> Result<(), BodyError> {
        self.extras += 1;
        if self.extras > MAX_CHUNK_EXTRAS {
            let e = io::Error::new(
                io::ErrorKind::InvalidData,
                "chunk extensions or trailers too long",
            );
            return Err(e.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` to a chunked decoder `step` bytes at a time: the data, or the error.
    fn dechunk(wire: &[u8], step: usize) -> Result<Vec<u8>, String> {
        let mut chunked = Chunked::default();
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            loop {
                match chunked.next(&mut buf).map_err(|e| e.to_string())? {
                    Step::Data(bytes) => data.extend_from_slice(&bytes),
                    Step::End => return Ok(data),
                    Step::More => break,
                }
            }
        }
        Err("unfinished".into())
    }

    #[test]
    fn chunked_bodies_decode_however_they_are_split() {
        let wire = b"5;ext=1\r\nhello\r\n6 \r\n world\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        for step in [1, 2, 3, 7, wire.len()] {
            assert_eq!(
                dechunk(wire, step).as_deref(),
                Ok(&b"hello world0123456789"[..])
            );
        }
    }

    #[test]
    fn broken_chunked_bodies_are_errors() {
        for wire in [
            &b"zz\r\n"[..],
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"11111111111111111\r\n",
            b"1;a\nb\r\n",
        ] {
            assert!(
                dechunk(wire, 1).is_err_and(|e| e != "unfinished"),
                "{wire:?}"
            );
        }
        assert_eq!(dechunk(b"5\r\nhel", 2), Err("unfinished".into()));
    }

    fn response(version: Version, headers: &[(&str, &str)]) -> Response<()> {
        let mut response = Response::new(());
        *response.version_mut() = version;
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("name");
            let value = HeaderValue::from_str(value).expect("value");
            response.headers_mut().append(name, value);
        }
        response
    }

    #[test]
    fn content_lengths_must_agree_and_be_digits() {
        let length = |values: &[&str]| {
            let headers: Vec<_> = values.iter().map(|v| ("content-length", *v)).collect();
            content_length(response(Version::HTTP_11, &headers).headers())
        };
        assert_eq!(length(&[]), Ok(None));
        assert_eq!(length(&["42"]), Ok(Some(42)));
        assert_eq!(length(&["7, 7", "7"]), Ok(Some(7)));
        assert_eq!(length(&["7", "8"]), Err(Fault::Malformed));
        assert_eq!(length(&["+7"]), Err(Fault::Malformed));
        assert_eq!(length(&[""]), Err(Fault::Malformed));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let get = Method::GET;
        let chunked = response(
            Version::HTTP_11,
            &[
                ("transfer-encoding", "gzip, chunked"),
                ("content-length", "3"),
            ],
        );
        assert!(matches!(
            framing(&chunked, &get),
            Ok(Some(Framing::Chunked(_)))
        ));
        let gzip_only = response(Version::HTTP_11, &[("transfer-encoding", "gzip")]);
        assert_eq!(framing(&gzip_only, &get), Ok(Some(Framing::UntilClose)));
        let old_chunked = response(Version::HTTP_10, &[("transfer-encoding", "chunked")]);
        assert_eq!(framing(&old_chunked, &get), Err(Fault::Malformed));
        let sized = response(Version::HTTP_11, &[("content-length", "3")]);
        assert_eq!(framing(&sized, &get), Ok(Some(Framing::Length(3))));
        assert_eq!(framing(&sized, &Method::HEAD), Ok(Some(Framing::Done)));
        let mut hints = response(Version::HTTP_11, &[]);
        *hints.status_mut() = StatusCode::from_u16(103).expect("103");
        assert_eq!(framing(&hints, &get), Ok(None));
        *hints.status_mut() = StatusCode::NOT_MODIFIED;
        assert_eq!(framing(&hints, &get), Ok(Some(Framing::Done)));
    }

    #[test]
    fn connections_are_kept_as_the_response_allows() {
        assert!(keeps_alive(&response(Version::HTTP_11, &[])));
        assert!(!keeps_alive(&response(
            Version::HTTP_11,
            &[("connection", "keep-alive, close")]
        )));
        assert!(!keeps_alive(&response(Version::HTTP_10, &[])));
        assert!(keeps_alive(&response(
            Version::HTTP_10,
            &[("connection", "Keep-Alive")]
        )));
        assert!(!keeps_alive(&response(
            Version::HTTP_10,
            &[("connection", "keep-alive"), ("connection", "close")]
        )));
    }

    #[test]
    fn a_head_keeps_its_values_and_an_unusual_reason() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 Fine\r\nA: 1\r\nB: two words\r\n\r\nbody"[..]);
        let parsed = parse_head(&mut buf).expect("valid").expect("whole");
        assert_eq!(parsed.headers()["b"], "two words");
        let reason = parsed
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .expect("reason");
        assert_eq!(reason.as_bytes(), b"Fine");
        assert_eq!(&buf[..], b"body");
        let mut partial = BytesMut::from(&b"HTTP/1.1 200 OK\r\nA: 1\r\n"[..]);
        assert_eq!(parse_head(&mut partial).map(|p| p.is_none()), Ok(true));
        let mut junk = BytesMut::from(&b"NOT HTTP\r\n\r\n"[..]);
        assert!(parse_head(&mut junk).is_err());
    }
}
