//! The one error type that stops hlocal, and the exit code each maps to.
//!
//! Three kinds, kept apart because they call for different fixes:
//! - bad input at a place the user can find ([`Located`]: `Procfile:3: …`, `--timeout: …`).
//!   Parsers (`procfile`, `env`, `formation`, `settings`, `duration`) return their own
//!   small error enums carrying a line number; loaders and `config` turn them into a
//!   [`Located`] with the file's path or the flag's name;
//! - bad input of the app as a whole ([`InputError`]: no Procfile, ports, sizes);
//! - a start-up failure of hlocal's own machinery ([`Error::Startup`]: binding the
//!   router, the runtime, the watcher, the watchdog), and OS errors on a named path.
//!
//! Runtime conditions (a crash, a refused backend connection) are never an `Error`:
//! they become state changes and log lines. `main.rs` renders an `Error` once, as
//! `hlocal: error: …`, and exits with [`Error::exit_code`].

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Located(#[from] Located),
    #[error(transparent)]
    Input(#[from] InputError),
    /// An OS operation failed: `reading env file .env.local: No such file or directory`.
    #[error("{about} {path}: {source}", path = .path.display())]
    Io {
        about: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// hlocal could not set up something it runs on: `cannot start the async runtime: …`.
    #[error("{what}: {source}")]
    Startup {
        what: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `hlocal start` in an app another hlocal runs: `who` names it (with its pid when it
    /// said), `socket` is its control socket.
    #[error(
        "{who} is already running this app: its control socket is {socket}; stop it first (hlocal stop) or pass --socket to run a second copy"
    )]
    AlreadyRunning { who: String, socket: String },
    /// A control command lost its connection to the running hlocal.
    #[error("lost the connection to hlocal: {0}")]
    ControlLost(io::Error),
    /// `hlocal run` could not execute the command.
    #[error("cannot run `{command}`: {source}")]
    Spawn { command: String, source: io::Error },
}

/// Bad input and where it is: every parser's error renders through this one shape.
#[derive(Debug, thiserror::Error)]
#[error("{at}: {message}")]
pub struct Located {
    pub at: Place,
    pub message: String,
}

/// Where bad input was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A line of a file: `Procfile:3`.
    Line { path: String, line: usize },
    /// A flag or a setting named without a line: `--timeout`, `hlocal.toml: watch`.
    Named(String),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Line { path, line } => write!(f, "{path}:{line}"),
            Place::Named(name) => f.write_str(name),
        }
    }
}

/// Bad input that is no single line or flag: the app, its ports, what the system allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// `place` is `in /the/app` (the directory searched) or `at /a/file`.
    #[error(
        "no Procfile {place} (use -f FILE, -d DIR, or --start-cmd CMD to run a web process without one)"
    )]
    NoProcfile { place: String },
    /// `hlocal init vscode` where there is no Procfile: `place` is the directory.
    #[error(
        "no Procfile in {place} (init writes a task per Procfile type: run it in the app root, or pass -d DIR)"
    )]
    NoProcfileToSetUp { place: String },
    #[error("env file {0} does not exist")]
    NoEnvFile(String),
    #[error("give the formation either with -m or as arguments, not both")]
    FormationTwice,
    #[error("watch path {0} does not exist")]
    NoWatchPath(String),
    /// `hlocal start -w web`: the path named is a process type.
    #[error(
        "watch path {0} does not exist; to start only some process types, name them before -w (hlocal start {0} -w)"
    )]
    WatchPathIsAType(String),
    /// The watcher's ignore rules did not compile (the message names the rule).
    #[error("{0}")]
    WatchIgnore(String),
    #[error(
        "port {public} leaves no room for the formation: {type_name} would need port {last} (the highest is 65535); choose a lower port with -p"
    )]
    NoRoomForFormation {
        public: u16,
        type_name: String,
        last: u32,
    },
    /// `holder`: ` by pid N (command)`, ` by pid N` or ` by another user's process`.
    #[error("port {port} ({what}) is already in use{holder}")]
    PortInUse {
        port: u16,
        what: String,
        holder: String,
    },
    #[error(
        "the environment is too big to start a process: {needed_kib} KiB of variables and command, the system allows {limit_kib} KiB (ARG_MAX)"
    )]
    EnvironmentTooBig { needed_kib: usize, limit_kib: usize },
    /// `hlocal export`: what an engine cannot receive (`what` names it, never a value)
    /// and why.
    #[error("cannot export {what} to {format}: {why}")]
    NotExportable {
        what: String,
        format: &'static str,
        why: String,
    },
    /// `hlocal export DIR` into a directory that has files, without `--force`.
    #[error("{0} is not empty (use --force to write into it anyway)")]
    ExportDirNotEmpty(String),
    #[error(
        "{instances} instances need about {needed} open files, more than the limit of {limit} (ulimit -n, hard limit included): raise the hard limit or start fewer instances"
    )]
    TooManyInstances {
        instances: u64,
        needed: u64,
        limit: u64,
    },
}

impl Error {
    /// Bad input at a line of `path`.
    pub fn located(path: &Path, line: usize, message: impl ToString) -> Self {
        let at = Place::Line {
            path: display_path(path),
            line,
        };
        Located::new(at, message).into()
    }

    /// Bad input given as the flag or setting `name`.
    pub fn named(name: impl Into<String>, message: impl ToString) -> Self {
        Located::new(Place::Named(name.into()), message).into()
    }

    pub fn io(about: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            about,
            path: PathBuf::from(display_path(path)),
            source,
        }
    }

    /// hlocal's own machinery failed to start: `what` says what it was doing.
    pub fn startup(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Startup {
            what: what.into(),
            source: source.into(),
        }
    }

    /// Bad input or an unusable environment is 1 ("1 when it could not start");
    /// a command `hlocal run` cannot execute gets the shell's 127 (not found) or 126.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
            Error::Spawn { .. } => 126,
            _ => 1,
        }
    }
}

impl Located {
    fn new(at: Place, message: impl ToString) -> Self {
        Located {
            at,
            message: message.to_string(),
        }
    }
}

/// Paths as the user would type them: `./.env` is shown as `.env`.
pub fn display_path(path: &Path) -> String {
    let shown = path.strip_prefix(".").unwrap_or(path);
    shown.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn located_renders_path_line_message() {
        let e = Error::located(Path::new("./Procfile"), 3, "duplicate process type \"web\"");
        assert_eq!(e.to_string(), "Procfile:3: duplicate process type \"web\"");
    }

    #[test]
    fn named_renders_name_message() {
        let e = Error::named("--timeout", "invalid duration \"5x\"");
        assert_eq!(e.to_string(), "--timeout: invalid duration \"5x\"");
    }

    #[test]
    fn startup_renders_what_and_why() {
        let e = Error::startup("cannot start the async runtime", "out of threads");
        assert_eq!(
            e.to_string(),
            "cannot start the async runtime: out of threads"
        );
    }
}
