//! A client socket with bytes put back in front of it: what hyper had read but not yet
//! parsed when the router took the connection back from it (to park it while idle, or
//! to bridge it after a `101`). Reads drain those bytes first; writes go to the socket,
//! which notes whether the last one found it full ([`WriteBlocked`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub(crate) struct Rewind {
    prefix: Bytes,
    pub(crate) stream: TcpStream,
    blocked: WriteBlocked,
}

/// Whether the socket's last write found its send buffer full: the writer then still
/// holds bytes the client has not been sent. hyper flushes whatever it buffers in the
/// same poll, until the socket takes everything or blocks, so between polls this is
/// exactly "hyper holds unsent bytes". Shared: the connection's task asks while hyper
/// owns the socket.
#[derive(Clone, Default)]
pub(crate) struct WriteBlocked(Arc<AtomicBool>);

impl WriteBlocked {
    pub(crate) fn is_blocked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn record<T>(&self, write: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.0.store(write.is_pending(), Ordering::Relaxed);
        write
    }
}

impl Rewind {
    pub(crate) fn new(stream: TcpStream) -> Rewind {
        Rewind {
            prefix: Bytes::new(),
            stream,
            blocked: WriteBlocked::default(),
        }
    }

    /// Whether writes are blocked, readable after the socket was handed to hyper.
    pub(crate) fn write_blocked(&self) -> WriteBlocked {
        self.blocked.clone()
    }

    /// Puts `bytes` back in front of whatever is still unread.
    pub(crate) fn unread(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.prefix = if self.prefix.is_empty() {
            bytes
        } else {
            let mut joined = BytesMut::with_capacity(bytes.len() + self.prefix.len());
            joined.extend_from_slice(&bytes);
            joined.extend_from_slice(&self.prefix);
            joined.freeze()
        };
    }

    /// The bytes put back, taken out.
    pub(crate) fn take_unread(&mut self) -> Bytes {
        std::mem::take(&mut self.prefix)
    }

    pub(crate) fn has_unread(&self) -> bool {
        !self.prefix.is_empty()
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.prefix.is_empty() {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        let n = this.prefix.len().min(buf.remaining());
        buf.put_slice(&this.prefix[..n]);
        this.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.blocked
            .record(Pin::new(&mut this.stream).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.blocked
            .record(Pin::new(&mut this.stream).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn unread_bytes_come_first_in_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("UNWRAP: ephemeral port");
        let addr = listener.local_addr().expect("UNWRAP: bound");
        let mut client = TcpStream::connect(addr).await.expect("UNWRAP: listening");
        let (server, _) = listener.accept().await.expect("UNWRAP: connected");
        let mut rewind = Rewind::new(server);
        rewind.unread(Bytes::from_static(b"cd"));
        rewind.unread(Bytes::from_static(b"ab"));
        assert!(rewind.has_unread());
        client.write_all(b"ef").await.expect("UNWRAP: sent");
        drop(client);
        let mut all = Vec::new();
        rewind.read_to_end(&mut all).await.expect("UNWRAP: read");
        assert_eq!(all, b"abcdef");
    }
}
