//! The control socket's server: one task per client connection, on hlocal's runtime.
//!
//! `hello`, `logs` and `subscribe` are answered here (from the log's tap); everything
//! that changes or reads the process table goes to the supervisor as an
//! [`Event::Control`](crate::supervisor::Event) with a reply channel, so the
//! supervisor stays the table's only writer. A client only ever waits for its own
//! answers: a slow reader blocks its own connection's task, and a slow subscriber is cut
//! off by the tap.

use std::io::Write;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};

use super::protocol::{
    Answer, Command, ErrorKind, LogStyle, MAX_REQUEST_BYTES, Problem, Request, parse_request,
};
use super::{ControlRequest, check_names};
use crate::output::tap::{Filter, Subscription, Tap};
use crate::sys;

/// What every connection's task reads.
pub struct Context {
    /// Sends requests to the supervisor; closed once it has stopped.
    pub supervisor: mpsc::UnboundedSender<ControlRequest>,
    /// Every instance and type name, as the supervisor publishes them.
    pub names: watch::Receiver<Vec<String>>,
    pub tap: Tap,
    /// The `hello` answer: pid, root, version, router URL.
    pub hello: Value,
}

/// Accepts connections until the task is aborted.
pub async fn serve(listener: UnixListener, context: Arc<Context>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if !sys::peer_is_owner(&stream) {
            continue;
        }
        tokio::spawn(serve_client(stream, Arc::clone(&context)));
    }
}

async fn serve_client(stream: UnixStream, context: Arc<Context>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_request_line(&mut reader, &mut line).await {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
        if line.len() > MAX_REQUEST_BYTES {
            // The rest of the line cannot be skipped without reading it: answer, close.
            let _ = send(&mut write, parse_request(&line).err().map(|a| *a)).await;
            return;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let request = match parse_request(&line) {
            Ok(request) => request,
            Err(answer) => {
                if send(&mut write, Some(*answer)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        match handle(request, &context, &mut write).await {
            Ok(Next::Serve) => {}
            Ok(Next::Stream(events, first)) => {
                let _ = stream_on_thread(reader, write, *events, first);
                return;
            }
            Ok(Next::Close) | Err(_) => return,
        }
    }
}

/// One line, at most [`MAX_REQUEST_BYTES`] + 1 bytes of it (more means too large),
/// without its `\n`. `false` at end of input.
async fn read_request_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let limit = u64::try_from(MAX_REQUEST_BYTES + 1).unwrap_or(u64::MAX);
    let read = (&mut *reader).take(limit).read_until(b'\n', line).await?;
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    Ok(read > 0)
}

/// What the connection does after a request.
enum Next {
    Serve,
    /// The client went away, or its stream has ended.
    Close,
    /// The connection becomes this subscription's stream, after `first`.
    Stream(Box<Subscription>, Vec<u8>),
}

async fn handle<W: AsyncWrite + Unpin>(
    request: Request,
    context: &Context,
    write: &mut W,
) -> std::io::Result<Next> {
    let Request { id, command } = request;
    match command {
        Command::Hello => {
            send(write, Some(Answer::success(id, context.hello.clone()))).await?;
            Ok(Next::Serve)
        }
        Command::Logs {
            names,
            lines,
            follow,
            style,
        } => logs(context, write, id, names, lines, follow, &style).await,
        Command::Subscribe => {
            let events = context
                .tap
                .subscribe(Filter::default(), &LogStyle::json().output());
            send(
                write,
                Some(Answer::success(id, json!({"subscribed": true}))),
            )
            .await?;
            Ok(Next::Stream(Box::new(events), Vec::new()))
        }
        command => {
            let answer = ask_supervisor(context, id, command).await;
            send(write, Some(answer)).await?;
            Ok(Next::Serve)
        }
    }
}

async fn logs<W: AsyncWrite + Unpin>(
    context: &Context,
    write: &mut W,
    id: Value,
    names: Vec<String>,
    lines: usize,
    follow: bool,
    style: &LogStyle,
) -> std::io::Result<Next> {
    let checked = check_names(&names, &context.names.borrow());
    if let Err(problem) = checked {
        send(write, Some(Answer::failure(id, problem))).await?;
        return Ok(Next::Serve);
    }
    let filter = Filter { names };
    let (kept, mut follower) = context.tap.replay(&filter, lines, &style.output());
    send(write, Some(Answer::success(id, json!({"follow": follow})))).await?;
    let mut replay = Vec::new();
    follower.format_kept(&kept, &mut replay);
    if follow {
        return Ok(Next::Stream(Box::new(follower), replay));
    }
    write.write_all(&replay).await?;
    write.flush().await?;
    Ok(Next::Close)
}

/// Writes `first`, then the subscription's records as they come, until either side
/// ends it. It runs on a thread of its own at the lowest priority: when the CPU is
/// contended, the app's output to hlocal's stdout goes first, and the subscriber catches
/// up afterwards (or is cut off once too far behind).
fn feed(mut client: impl Write, mut events: Subscription, first: Vec<u8>) {
    sys::lower_thread_priority();
    let mut text = first;
    loop {
        if client.write_all(&text).is_err() {
            return;
        }
        text.clear();
        if !events.next_blocking(&mut text) {
            return;
        }
    }
}

/// Hands the connection to a subscriber thread of its own (see [`feed`]).
fn stream_on_thread(
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
    events: Subscription,
    first: Vec<u8>,
) -> std::io::Result<()> {
    let client = read
        .into_inner()
        .reunite(write)
        .map_err(std::io::Error::other)?;
    let client = client.into_std()?;
    client.set_nonblocking(false)?;
    std::thread::Builder::new()
        .name("subscriber".into())
        .spawn(move || feed(client, events, first))?;
    Ok(())
}

async fn ask_supervisor(context: &Context, id: Value, command: Command) -> Answer {
    let (reply, answer) = oneshot::channel();
    let request = ControlRequest { command, reply };
    let gone = || Problem::new(ErrorKind::ShuttingDown, "hlocal is shutting down");
    if context.supervisor.send(request).is_err() {
        return Answer::failure(id, gone());
    }
    match answer.await {
        Ok(Ok(result)) => Answer::success(id, result),
        Ok(Err(problem)) => Answer::failure(id, problem),
        Err(_) => Answer::failure(id, gone()),
    }
}

async fn send<W: AsyncWrite + Unpin>(write: &mut W, answer: Option<Answer>) -> std::io::Result<()> {
    if let Some(answer) = answer {
        write.write_all(&answer.to_line()).await?;
        write.flush().await?;
    }
    Ok(())
}
