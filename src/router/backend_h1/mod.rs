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

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::conn_pool::QuickAck;
use super::headers::{self, Forwarded};
use chunked::{Chunked, Step};

mod chunked;
mod head;

pub(crate) use head::Fields;

/// hyper's client limit: a longer head is a malformed response.
const MAX_HEAD: usize = 8192 + 4096 * 100;
/// Room made in a connection's buffer before each read.
const READ_ROOM: usize = 16 * 1024;

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
            if let Some(head) = head::parse(&mut self.buf)? {
                let Some(framing) = head.framing(method)? else {
                    continue; // informational: the real head follows
                };
                let keep_alive = head.keeps_alive() && framing != Framing::UntilClose;
                return Ok(head.response.map(|()| RawBody {
                    fields: head.fields,
                    conn: Some(self),
                    framing,
                    keep_alive,
                    sent_since_wait: false,
                    fault: None,
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
/// `Transfer-Encoding` (there is no body to frame). With `fwd`, the headers are still the
/// client's: Heroku's are written in place of its own, and hop-by-hop ones left out, as
/// `headers::prepare_request` would have changed them.
pub(crate) fn encode_request<B>(req: &Request<B>, fwd: Option<&Forwarded<'_>>) -> Vec<u8> {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(req.method().as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    let mut field = |name: &HeaderName, value: &HeaderValue| {
        if name != header::TRANSFER_ENCODING {
            headers::push_field(&mut head, name.as_str().as_bytes(), value.as_bytes());
        }
    };
    match fwd {
        Some(fwd) => headers::each_request_field(req.headers(), fwd, field),
        None => req
            .headers()
            .iter()
            .for_each(|(name, value)| field(name, value)),
    }
    head.extend_from_slice(b"\r\n");
    head
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
    /// The response's fields, kept out of its (empty) header map until one is needed.
    fields: Fields,
    conn: Option<RawConn>,
    framing: Framing,
    keep_alive: bool,
    /// Data went out since the body last waited: a fault found now waits one turn
    /// (held here meanwhile).
    sent_since_wait: bool,
    fault: Option<BodyError>,
}

/// A body error for hyper's server: it cuts the client's response short.
pub(crate) type BodyError = Box<dyn std::error::Error + Send + Sync>;

impl RawBody {
    /// The fields of the response this is the body of.
    pub(crate) fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The fields, moved out: they are in a header map from now on.
    pub(crate) fn take_fields(&mut self) -> Fields {
        std::mem::take(&mut self.fields)
    }

    /// The connection, once the body ended cleanly and the backend may send another.
    pub(crate) fn reusable(&mut self) -> Option<RawConn> {
        let clean = self.framing == Framing::Done && self.keep_alive;
        if clean && self.conn.as_ref().is_some_and(|c| c.buf.is_empty()) {
            let mut conn = self.conn.take()?;
            // Pooled without a buffer: the next exchange allocates one, and the allocator
            // hands back the one a response just freed, still in cache. Keeping each
            // connection's own buffer meant reading into cold memory at 256 connections
            // (the kernel's copy and the reads after it: ~2 % of the router's CPU).
            conn.buf = BytesMut::new();
            Some(conn)
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

impl RawBody {
    /// The next piece of body, reading the connection when none is buffered.
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BodyError>>> {
        loop {
            match self.take_buffered() {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(data))),
                Err(fault) => return Poll::Ready(Some(Err(fault))),
                Ok(None) => {}
            }
            if self.framing == Framing::Done {
                return Poll::Ready(None);
            }
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(conn.poll_fill(cx)) {
                Ok(0) if self.framing == Framing::UntilClose => {
                    self.framing = Framing::Done;
                    self.keep_alive = false;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    let early =
                        io::Error::new(io::ErrorKind::UnexpectedEof, "backend closed mid-body");
                    return Poll::Ready(Some(Err(early.into())));
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
            }
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
        if let Some(fault) = this.fault.take() {
            return Poll::Ready(Some(Err(fault)));
        }
        match this.poll_data(cx) {
            Poll::Ready(Some(Ok(data))) => {
                this.sent_since_wait = true;
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            // hyper drops the client's connection on a body error without writing what
            // it holds: a backend that sent part of a body and then broke off would cost
            // the client even the head. One turn first lets hyper send what came, as it
            // does when its own client reports the break a read later.
            Poll::Ready(Some(Err(fault))) if std::mem::take(&mut this.sent_since_wait) => {
                this.fault = Some(fault);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(Some(Err(fault))) => Poll::Ready(Some(Err(fault))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                this.sent_since_wait = false;
                Poll::Pending
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
