//! `hlocal attach NAME`: this terminal, in raw mode, connected to a `tty` instance's
//! pseudo-terminal through the control socket. Keys go to the program, its output comes
//! here, Ctrl-] detaches and leaves it running; the window size follows this terminal.
//! The terminal's settings are put back on every way out (detach, the instance ending,
//! hlocal stopping, SIGTERM/SIGHUP to this command).

use std::io::Read;
use std::path::PathBuf;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::control::{conclude, root_of, with_client};
use crate::cli::AttachArgs;
use crate::control::client::Client;
use crate::control::protocol::{Command, TerminalSize};
use crate::error::Error;
use crate::sys::{self, RawMode, ShutdownSignals, WindowChanges, WindowSize};

/// The detach key, Ctrl-] (as telnet's escape): a control character programs rarely
/// need, one byte in raw mode.
const DETACH_KEY: u8 = 0x1d;

pub fn attach(args: AttachArgs) -> Result<i32, Error> {
    let name = args.name.clone();
    let socket = Socket {
        root: root_of(&args.control),
        given: args.control.socket.clone(),
    };
    with_client(&args.control, async |mut client| {
        let size = Some(TerminalSize::from(sys::terminal_size()));
        let request = Command::Attach {
            name: name.clone(),
            size,
        };
        let answer = client.call(&request).await.map_err(Error::ControlLost)?;
        let attached = answer.result.as_ref().and_then(|r| r.get("attached"));
        // A type's name attaches to its first instance: the answer names it.
        let name = match attached.and_then(Value::as_str) {
            Some(instance) if answer.ok => instance.to_string(),
            _ => return Ok(conclude(answer, |_| {})),
        };
        eprintln!("hlocal: attached to {name}; Ctrl-] detaches");
        let raw = RawMode::enter().map_err(|e| Error::startup("cannot set the terminal", e))?;
        let end = relay(client, &name, &socket).await;
        // The terminal's own settings come back before anything more is printed.
        drop(raw);
        eprintln!();
        match end {
            End::Detached => eprintln!("hlocal: detached from {name}; it keeps running"),
            End::Closed => eprintln!("hlocal: {name}'s terminal closed"),
        }
        Ok(0)
    })
}

/// Where the control socket is, for the resize requests' own connection.
struct Socket {
    root: PathBuf,
    given: Option<PathBuf>,
}

enum End {
    /// Ctrl-], end of input, or this command was told to stop.
    Detached,
    /// The instance ended or hlocal stopped.
    Closed,
}

async fn relay(client: Client, name: &str, socket: &Socket) -> End {
    let (mut from_hlocal, mut to_hlocal) = client.into_halves();
    let mut keys = read_keys();
    let mut resized = WindowChanges::install().ok();
    let mut stop = ShutdownSignals::install().ok();
    let mut output = vec![0; 64 * 1024];
    loop {
        tokio::select! {
            typed = keys.recv() => {
                let Some(typed) = typed else { return End::Detached };
                let detach = memchr::memchr(DETACH_KEY, &typed);
                let send = &typed[..detach.unwrap_or(typed.len())];
                if to_hlocal.write_all(send).await.is_err() {
                    return End::Closed;
                }
                if detach.is_some() {
                    return End::Detached;
                }
            }
            read = from_hlocal.read(&mut output) => match read {
                Ok(n) if n > 0 && sys::write_stdout(&output[..n]).is_ok() => {}
                _ => return End::Closed,
            },
            Some(size) = next_size(resized.as_mut()) => resize(socket, name, size).await,
            Some(()) = stopped(stop.as_mut()) => return End::Detached,
        }
    }
}

/// Stdin, read on a thread of its own (a blocking read cannot be cancelled; the thread
/// ends with the process).
fn read_keys() -> mpsc::Receiver<Vec<u8>> {
    let (keys, typed) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = [0; 4096];
        while let Ok(n) = stdin.read(&mut buffer) {
            if n == 0 || keys.blocking_send(buffer[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    typed
}

async fn next_size(changes: Option<&mut WindowChanges>) -> Option<WindowSize> {
    match changes {
        Some(changes) => changes.next().await,
        None => std::future::pending().await,
    }
}

async fn stopped(signals: Option<&mut ShutdownSignals>) -> Option<()> {
    match signals {
        Some(signals) => {
            signals.recv().await;
            Some(())
        }
        None => std::future::pending().await,
    }
}

/// Tells hlocal the window's new size, on a connection of its own (the attached one
/// carries only the terminal's bytes). A failure is harmless: the size stays.
async fn resize(socket: &Socket, name: &str, size: WindowSize) {
    if let Some(mut client) = Client::connect(&socket.root, socket.given.as_deref()).await {
        let request = Command::Resize {
            name: name.to_string(),
            size: size.into(),
        };
        let _ = client.call(&request).await;
    }
}

impl From<WindowSize> for TerminalSize {
    fn from(size: WindowSize) -> TerminalSize {
        TerminalSize {
            rows: size.rows,
            cols: size.cols,
        }
    }
}
