//! The client end of the control socket, for the CLI's subcommands: find the app's
//! socket, send requests, read answers and streams.

use std::io;
use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::protocol::{Answer, Command, request_line};
use super::socket;

/// A connection to a running hlocal.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
}

impl Client {
    /// Connects to the hlocal running the app at `root`; `None` when none answers.
    pub async fn connect(root: &Path, given: Option<&Path>) -> Option<Client> {
        for path in socket::candidates(root, given) {
            if let Ok(stream) = UnixStream::connect(&path).await {
                let (read, writer) = stream.into_split();
                return Some(Client {
                    reader: BufReader::new(read),
                    writer,
                    next_id: 1,
                });
            }
        }
        None
    }

    /// Sends `command` and reads its answer.
    pub async fn call(&mut self, command: &Command) -> io::Result<Answer> {
        let id = self.next_id;
        self.next_id += 1;
        self.writer.write_all(&request_line(id, command)).await?;
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "hlocal closed the control connection",
            ));
        }
        serde_json::from_str(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// The connection's two halves, for a stream of raw bytes after an `attach` answer
    /// (what the reader buffered past the answer comes first).
    pub fn into_halves(self) -> (BufReader<OwnedReadHalf>, OwnedWriteHalf) {
        (self.reader, self.writer)
    }

    /// Hands what follows a `logs` or `subscribe` answer to `out` until hlocal ends it.
    pub async fn copy_stream(
        mut self,
        mut out: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let read = self.reader.read(&mut buffer).await?;
            if read == 0 {
                return Ok(());
            }
            out(&buffer[..read])?;
        }
    }
}
