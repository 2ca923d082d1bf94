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
    Answer, Command, ErrorKind, LogStyle, MAX_REQUEST_BYTES, Problem, Request, TerminalSize,
    parse_request,
};
use super::terminals::{Attachment, Refusal, Terminals};
use super::{ControlRequest, check_names};
use crate::output::tap::{Filter, Subscription, Tap};
use crate::sys::{self, WindowSize};

/// What every connection's task reads.
pub struct Context {
    /// Sends requests to the supervisor; closed once it has stopped.
    pub supervisor: mpsc::UnboundedSender<ControlRequest>,
    /// Every instance and type name, as the supervisor publishes them.
    pub names: watch::Receiver<Vec<String>>,
    pub tap: Tap,
    /// The `hello` answer: pid, root, version, router URL.
    pub hello: Value,
    /// The `tty` instances' terminals, for `attach`.
    pub terminals: Terminals,
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
            Ok(Next::Attach(attachment)) => {
                return relay(&mut reader, &mut write, attachment).await;
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
    /// The connection now carries a terminal's bytes.
    Attach(Attachment),
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
        Command::Attach { name, size } => {
            let size = size.map(WindowSize::from);
            let attached = instance_name(context, &name).and_then(|name| {
                let attachment = refused(&name, context.terminals.attach(&name, size))?;
                Ok((name, attachment))
            });
            match attached {
                Ok((name, attachment)) => {
                    send(write, Some(Answer::success(id, json!({"attached": name})))).await?;
                    Ok(Next::Attach(attachment))
                }
                Err(problem) => answer_only(write, Some(Answer::failure(id, problem))).await,
            }
        }
        Command::Resize { name, size } => {
            let resized = instance_name(context, &name).and_then(|name| {
                refused(&name, context.terminals.resize(&name, size.into()))?;
                Ok(name)
            });
            let answer = match resized {
                Ok(name) => Answer::success(id, json!({"resized": name})),
                Err(problem) => Answer::failure(id, problem),
            };
            answer_only(write, Some(answer)).await
        }
        command => {
            let answer = ask_supervisor(context, id, command).await;
            send(write, Some(answer)).await?;
            Ok(Next::Serve)
        }
    }
}

async fn answer_only<W: AsyncWrite + Unpin>(
    write: &mut W,
    answer: Option<Answer>,
) -> std::io::Result<Next> {
    send(write, answer).await?;
    Ok(Next::Serve)
}

/// An instance's name for `attach`/`resize`: a type name means its first instance.
fn instance_name(context: &Context, name: &str) -> Result<String, Problem> {
    check_names(&[name.to_string()], &context.names.borrow())?;
    Ok(if name.contains('.') {
        name.to_string()
    } else {
        format!("{name}.1")
    })
}

/// A refusal of `attach` or `resize` in words: how to enable a terminal, or why not now.
fn refused<T>(name: &str, result: Result<T, Refusal>) -> Result<T, Problem> {
    let type_name = name.rsplit_once('.').map_or(name, |(t, _)| t);
    result.map_err(|refusal| match refusal {
        Refusal::NoTerminal => Problem::new(
            ErrorKind::Invalid,
            format!(
                "{name} does not run on a terminal: set `tty = true` under \
                 [process.{type_name}] in hlocal.toml, or start with `--tty {type_name}`"
            ),
        ),
        Refusal::NotRunning => Problem::new(ErrorKind::Invalid, format!("{name} is not running")),
        Refusal::AlreadyAttached => Problem::new(
            ErrorKind::Invalid,
            format!("{name} already has a client attached; detach it first (Ctrl-])"),
        ),
    })
}

impl From<TerminalSize> for WindowSize {
    fn from(size: TerminalSize) -> WindowSize {
        WindowSize {
            rows: size.rows,
            cols: size.cols,
        }
    }
}

/// An attached client's connection: its bytes go to the terminal, the terminal's output
/// to it, until the client closes its side (detach), the run ends or the client falls
/// behind. The program keeps running either way.
async fn relay<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut R,
    write: &mut W,
    attachment: Attachment,
) {
    let Attachment {
        terminal,
        id,
        mut output,
    } = attachment;
    let mut keys = vec![0; 4096];
    loop {
        tokio::select! {
            read = reader.read(&mut keys) => match read {
                Ok(n) if n > 0 && terminal.master.write_all(&keys[..n]).await.is_ok() => {}
                _ => break,
            },
            chunk = output.recv() => match chunk {
                Some(bytes) if write.write_all(&bytes).await.is_ok() => {}
                _ => break,
            },
        }
    }
    terminal.detach(id);
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
    let (kept, mut follower) = context.tap.replay(&filter, lines, &style.output(), follow);
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
/// ends it (hlocal ends every subscription when it exits, after the `exit` event). It runs on a thread of its own at the lowest priority: when the CPU is
/// contended, the app's output to hlocal's stdout goes first, and the subscriber catches
/// up afterwards (or is cut off once too far behind).
fn feed(mut client: impl Write, mut events: Subscription, first: Vec<u8>) {
    sys::lower_thread_priority();
    let mut text = first;
    while client.write_all(&text).is_ok() {
        text.clear();
        if !events.next_blocking(&mut text) {
            break;
        }
    }
    // The connection ends (EOF after the last line) before the subscription is dropped,
    // which is what hlocal's exit waits for (`Tap::finish`).
    drop(client);
    drop(events);
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
