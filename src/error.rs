//! The one error type that stops hlocal, and the exit code each maps to.
//!
//! Parsers (`procfile`, `env`, `formation`, `settings`, `duration`) return their own
//! small error enums carrying a line number; loaders turn them into
//! [`Error::Located`] with the file's path, so every message reads `path:line: …`.
//! Runtime conditions (a crash, a refused backend connection) are never an `Error`:
//! they become state changes and log lines. `main.rs` renders an `Error` once, as
//! `hlocal: error: …`, and exits with [`Error::exit_code`].

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem in an input file, at a line: `Procfile:3: duplicate process type "web" …`.
    #[error("{path}:{line}: {message}")]
    Located {
        path: String,
        line: usize,
        message: String,
    },
    /// An OS operation failed: `reading env file .env.local: No such file or directory`.
    #[error("{about} {path}: {source}", path = .path.display())]
    Io {
        about: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Any other bad input (flags, formation, ports) described in one sentence.
    #[error("{0}")]
    Input(String),
    /// `hlocal run` could not execute the command.
    #[error("cannot run `{command}`: {source}")]
    Spawn { command: String, source: io::Error },
}

impl Error {
    pub fn located(path: &Path, line: usize, message: impl ToString) -> Self {
        Error::Located {
            path: display_path(path),
            line,
            message: message.to_string(),
        }
    }

    pub fn io(about: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            about,
            path: PathBuf::from(display_path(path)),
            source,
        }
    }

    pub fn input(message: impl ToString) -> Self {
        Error::Input(message.to_string())
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
}
