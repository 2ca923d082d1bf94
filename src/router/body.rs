//! The bodies the router streams, and the one place a request is logged.
//!
//! [`RouterBody`] is what clients receive: a backend's body passed through frame by
//! frame ([`Proxied`]), or a page the router made; what backends receive is
//! `conn_pool::ReqBody`. [`Exchange`] carries a request's log entry
//! from arrival to the last byte and logs it exactly once: with the code it was given, as
//! served when the body ends, or as H27 when hyper drops it because the client left.
//! Choosing a backend and making the response are `service`'s and `forward`'s work.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::Instant;

use super::backend_h1::{BodyError, Fields, RawBody, RawConn};
use super::balancer::Backend;
use super::client_conn::ClientConn;
use super::codes::{Code, Entry};
use super::conn_pool::{BackendConn, Key};

/// One request's log entry on its way from arrival to the last response byte.
pub(crate) struct Exchange {
    ctx: Arc<ClientConn>,
    entry: Entry,
    /// When a backend connection was in hand: `service` is measured from here.
    connected: Option<Instant>,
    /// The backend answering, and its connection: back to the pool once the response
    /// ended cleanly (a raw connection is given back by its body, at its end).
    lease: Option<(Key, Option<BackendConn>)>,
    logged: bool,
}

impl Exchange {
    pub(crate) fn new(ctx: Arc<ClientConn>, entry: Entry) -> Exchange {
        ctx.begin();
        Exchange {
            ctx,
            entry,
            connected: None,
            lease: None,
            logged: false,
        }
    }

    pub(crate) fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The instance chosen for the next attempt: the `dyno=` field.
    pub(crate) fn trying(&mut self, backend: &Backend) {
        self.entry.dyno = Some(Arc::clone(&backend.name));
    }

    /// How long getting a backend connection took (zero for a pooled one): `connect=`.
    pub(crate) fn connect_took(&mut self, took: Duration) {
        self.entry.connect = Some(took);
    }

    /// When the request could first be sent: H12 and `service=` count from here, so a
    /// retry on another connection does not restart the clock.
    pub(crate) fn sendable_since(&mut self) -> Instant {
        *self.connected.get_or_insert_with(Instant::now)
    }

    /// The response head arrived from `key`, on `conn` if hyper's client holds it: it
    /// goes back to the pool if the body ends cleanly.
    pub(crate) fn answered(&mut self, key: Key, conn: Option<BackendConn>, status: StatusCode) {
        self.lease = Some((key, conn));
        self.entry.status = Some(status);
    }

    /// The router's own connection, free again at the end of the body it carried.
    fn given_back(&mut self, conn: RawConn) {
        if let Some((_, slot)) = self.lease.as_mut() {
            *slot = Some(BackendConn::returned(conn));
        }
    }

    /// A `101`: the backend connection now belongs to the bridge, never to the pool.
    pub(crate) fn upgraded(&mut self) {
        self.lease = None;
    }

    /// Logs the request (`None`: served) and, if it was served, pools its connection.
    pub(crate) fn finish(&mut self, code: Option<Code>) {
        if std::mem::replace(&mut self.logged, true) {
            return;
        }
        self.entry.service = self.connected.map(|t| t.elapsed());
        if let (None, Some((key, Some(conn)))) = (code, self.lease.take()) {
            self.ctx.router.conn_pool.checkin(key, conn);
        }
        self.ctx.log(code, &self.entry);
        self.ctx.end();
    }
}

impl Drop for Exchange {
    /// Dropped unlogged: hyper gave up on the client (it closed the connection, or a
    /// write to it failed) before the response was complete.
    fn drop(&mut self) {
        self.finish(Some(Code::H27));
    }
}

/// The response body sent to the client.
// `Proxied` carries the request's log entry; boxing it would cost an allocation per
// request, while hyper keeps the body in one slot per connection whatever its size.
#[allow(clippy::large_enum_variant)]
pub(crate) enum RouterBody {
    Proxied(Proxied),
    /// A page the router made (error page, 400, 417), sent in one frame.
    Own(Option<Bytes>),
}

impl RouterBody {
    /// The backend's fields when they are not in the response's header map yet: a head
    /// the router read itself (`forward::respond` says for whom).
    pub(crate) fn backend_fields(&self) -> Option<&Fields> {
        match self {
            RouterBody::Proxied(Proxied {
                inner: BackendBody::Raw(raw),
                ..
            }) => Some(raw.fields()),
            _ => None,
        }
    }

    pub(crate) fn own(text: &'static str) -> RouterBody {
        RouterBody::Own((!text.is_empty()).then(|| Bytes::from_static(text.as_bytes())))
    }

    /// A page made for this request.
    pub(crate) fn made(text: String) -> RouterBody {
        RouterBody::Own(Some(Bytes::from(text)))
    }
}

impl Body for RouterBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            RouterBody::Proxied(p) => p.poll_frame(cx),
            RouterBody::Own(page) => Poll::Ready(page.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RouterBody::Proxied(p) => p.inner.is_end_stream(),
            RouterBody::Own(page) => page.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RouterBody::Proxied(p) => p.inner.size_hint(),
            RouterBody::Own(page) => {
                SizeHint::with_exact(page.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

/// A backend's response body as read by hyper's client or by the router itself.
pub(crate) enum BackendBody {
    Hyper(Incoming),
    Raw(RawBody),
}

impl Body for BackendBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            BackendBody::Hyper(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            BackendBody::Raw(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            BackendBody::Hyper(body) => body.is_end_stream(),
            BackendBody::Raw(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            BackendBody::Hyper(body) => body.size_hint(),
            BackendBody::Raw(body) => body.size_hint(),
        }
    }
}

/// A backend's response body on its way to the client, counted for `bytes=`.
pub(crate) struct Proxied {
    inner: BackendBody,
    exchange: Exchange,
}

impl Proxied {
    pub(crate) fn new(inner: BackendBody, exchange: Exchange) -> Proxied {
        Proxied { inner, exchange }
    }

    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    self.exchange.entry.bytes += data.len() as u64;
                }
                if self.inner.is_end_stream() {
                    self.served();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            // The backend closed or reset mid-body; hyper cuts the client's response short.
            Some(Err(e)) => {
                self.exchange.finish(Some(Code::H18));
                Poll::Ready(Some(Err(e)))
            }
            None => {
                self.served();
                Poll::Ready(None)
            }
        }
    }

    /// The body ended cleanly: the request is logged, its connection pooled.
    fn served(&mut self) {
        if let BackendBody::Raw(body) = &mut self.inner
            && let Some(conn) = body.reusable()
        {
            self.exchange.given_back(conn);
        }
        self.exchange.finish(None);
    }
}

impl Drop for Proxied {
    /// hyper does not poll a body it knows is over (HEAD, 204, 304, or a body whose last
    /// frame said so): that is a served request, not an interrupted one.
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.served();
        }
    }
}
