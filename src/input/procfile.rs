//! Procfile parsing: `name: command` per line, in file order.
//!
//! [`parse`] is pure over text and reports the 1-based line of the first problem;
//! [`load`] reads the file and prefixes its path (`Procfile:3: …`). This module knows
//! nothing of formations or of what `release` means at run time — `formation` and the
//! supervisor own that; it only names the type ([`RELEASE`]).

use std::collections::HashMap;
use std::path::Path;

use crate::error::Error;
use crate::input::textfile::{excerpt, read_text};

/// The type Heroku runs once, to completion, before the formation (its release phase).
pub const RELEASE: &str = "release";

/// One `name: command` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessType {
    pub name: String,
    pub command: String,
    /// 1-based line in the Procfile (0 for `--start-cmd`).
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcfileError {
    #[error("expected \"name: command\", found {0:?}")]
    Malformed(String),
    #[error("invalid process type name {0:?} (use letters, digits, \"_\" and \"-\")")]
    InvalidName(String),
    #[error("empty command for process type {0:?}")]
    EmptyCommand(String),
    #[error("duplicate process type {name:?} (first defined on line {first_line})")]
    Duplicate { name: String, first_line: usize },
    #[error("the command of {0:?} contains a NUL byte (no process can be given one)")]
    NulInCommand(String),
}

/// Parses Procfile text. Errors carry the 1-based line.
pub fn parse(text: &str) -> Result<Vec<ProcessType>, (usize, ProcfileError)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut types: Vec<ProcessType> = Vec::new();
    // Name to line, so duplicates are found in linear time over 100,000 types too.
    let mut first_lines: HashMap<String, usize> = HashMap::new();
    for (index, raw) in file_lines(text).enumerate() {
        let line = index + 1;
        let entry = raw.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        let parsed = parse_entry(entry).and_then(|(name, command)| {
            if let Some(&first_line) = first_lines.get(name) {
                return Err(ProcfileError::Duplicate {
                    name: name.to_string(),
                    first_line,
                });
            }
            first_lines.insert(name.to_string(), line);
            Ok(ProcessType {
                name: name.to_string(),
                command: command.to_string(),
                line,
            })
        });
        types.push(parsed.map_err(|error| (line, error))?);
    }
    Ok(types)
}

/// Lines ended by LF, CRLF or a lone CR (old Mac files): no command can hold a carriage
/// return on purpose, and read as one line such a file would run its whole text.
fn file_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        let Some(end) = text.find(['\n', '\r']) else {
            rest = None;
            return (!text.is_empty()).then_some(text);
        };
        let after = if text[end..].starts_with("\r\n") {
            end + 2
        } else {
            end + 1
        };
        rest = Some(&text[after..]);
        Some(&text[..end])
    })
}

/// Splits one trimmed, non-comment line at its first colon: commands may contain colons
/// (`web: bin/server --bind 0.0.0.0:$PORT`), names may not.
fn parse_entry(entry: &str) -> Result<(&str, &str), ProcfileError> {
    let (name, command) = entry
        .split_once(':')
        .ok_or_else(|| ProcfileError::Malformed(excerpt(entry)))?;
    let (name, command) = (name.trim(), command.trim());
    if !is_valid_name(name) {
        return Err(ProcfileError::InvalidName(excerpt(name)));
    }
    if command.is_empty() {
        return Err(ProcfileError::EmptyCommand(name.to_string()));
    }
    if command.contains('\0') {
        return Err(ProcfileError::NulInCommand(name.to_string()));
    }
    Ok((name, command))
}

/// `^[A-Za-z0-9_-]+$`, the names Heroku accepts.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Reads and parses the file at `path`; errors read `Procfile:3: …`.
pub fn load(path: &Path) -> Result<Vec<ProcessType>, Error> {
    let text = read_text(path, "reading Procfile")?;
    parse(&text).map_err(|(line, error)| Error::located(path, line, error))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
pub mod tests {
    use super::*;
    use std::fs;

    /// A scratch directory for loader tests, removed on drop; shared by the other input
    /// modules' tests.
    pub struct TempDir(pub std::path::PathBuf);

    impl TempDir {
        pub fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("hlocal-{}-{name}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        pub fn file(&self, name: &str, bytes: &[u8]) -> std::path::PathBuf {
            let path = self.0.join(name);
            fs::write(&path, bytes).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn types(text: &str) -> Vec<(String, String, usize)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|t| (t.name, t.command, t.line))
            .collect()
    }

    fn entry(name: &str, command: &str, line: usize) -> (String, String, usize) {
        (name.to_string(), command.to_string(), line)
    }

    fn error(text: &str) -> (usize, ProcfileError) {
        parse(text).unwrap_err()
    }

    #[test]
    fn types_keep_file_order_and_lines() {
        let text =
            "web: bundle exec puma\n\n# workers\nworker: sidekiq\nrelease: rake db:migrate\n";
        assert_eq!(
            types(text),
            [
                entry("web", "bundle exec puma", 1),
                entry("worker", "sidekiq", 4),
                entry("release", "rake db:migrate", 5),
            ]
        );
    }

    #[test]
    fn command_keeps_colons_after_the_first() {
        assert_eq!(
            types("web: server --bind 0.0.0.0:$PORT http://x"),
            [entry("web", "server --bind 0.0.0.0:$PORT http://x", 1)]
        );
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(
            types("  web :   node index.js  \t\n\t# indented comment\n"),
            [entry("web", "node index.js", 1)]
        );
    }

    #[test]
    fn no_space_after_colon_is_fine() {
        assert_eq!(types("web:node x"), [entry("web", "node x", 1)]);
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        assert_eq!(
            types("\u{feff}web: a\r\n\r\nworker: b\r\n"),
            [entry("web", "a", 1), entry("worker", "b", 3)]
        );
    }

    #[test]
    fn a_lone_carriage_return_ends_a_line() {
        assert_eq!(
            types("web: a\r\rworker: b\rclock: c"),
            [
                entry("web", "a", 1),
                entry("worker", "b", 3),
                entry("clock", "c", 4)
            ]
        );
        assert_eq!(
            types("web: a\n\r\nworker: b"),
            [entry("web", "a", 1), entry("worker", "b", 3)]
        );
    }

    #[test]
    fn names_may_use_digits_underscores_dashes_and_case() {
        assert_eq!(
            types("Web_2-x: a\nweb: b"),
            [entry("Web_2-x", "a", 1), entry("web", "b", 2)]
        );
    }

    #[test]
    fn empty_and_comment_only_files_have_no_types() {
        assert_eq!(types(""), []);
        assert_eq!(types("\n# nothing yet\n   \n"), []);
    }

    #[test]
    fn release_is_an_ordinary_entry_here() {
        assert_eq!(types("release: ./migrate")[0].0, RELEASE);
    }

    #[test]
    fn duplicate_type_names_first_line() {
        let (line, e) = error("web: a\nworker: b\nweb: c\n");
        assert_eq!(line, 3);
        assert_eq!(
            e,
            ProcfileError::Duplicate {
                name: "web".into(),
                first_line: 1
            }
        );
        assert_eq!(
            e.to_string(),
            r#"duplicate process type "web" (first defined on line 1)"#
        );
    }

    #[test]
    fn empty_command_is_an_error() {
        let (line, e) = error("# c\nweb:   \n");
        assert_eq!((line, &e), (2, &ProcfileError::EmptyCommand("web".into())));
        assert_eq!(e.to_string(), r#"empty command for process type "web""#);
    }

    #[test]
    fn invalid_name_is_an_error() {
        let (line, e) = error("my web: x");
        assert_eq!(
            (line, &e),
            (1, &ProcfileError::InvalidName("my web".into()))
        );
        assert_eq!(
            e.to_string(),
            r#"invalid process type name "my web" (use letters, digits, "_" and "-")"#
        );
    }

    #[test]
    fn empty_and_non_ascii_names_are_invalid() {
        assert_eq!(error(": x").1, ProcfileError::InvalidName(String::new()));
        assert_eq!(error("wéb: x").1, ProcfileError::InvalidName("wéb".into()));
        assert_eq!(
            error("web.1: x").1,
            ProcfileError::InvalidName("web.1".into())
        );
    }

    #[test]
    fn line_without_colon_is_an_error() {
        let (line, e) = error("web: a\n\nbundle exec puma\n");
        assert_eq!(line, 3);
        assert_eq!(
            e.to_string(),
            r#"expected "name: command", found "bundle exec puma""#
        );
    }

    #[test]
    fn long_lines_are_shortened_in_messages() {
        let long = "x".repeat(500);
        let message = error(&long).1.to_string();
        assert_eq!(
            message,
            format!(r#"expected "name: command", found "{}…""#, "x".repeat(60))
        );
    }

    #[test]
    fn control_characters_are_escaped_in_messages() {
        let e = error("bad\u{1b}[2Jline").1;
        assert_eq!(
            e.to_string(),
            r#"expected "name: command", found "bad\u{1b}[2Jline""#
        );
    }

    #[test]
    fn load_prefixes_path_and_line() {
        let dir = TempDir::new("procfile-dup");
        let path = dir.file("Procfile", b"web: a\n\nweb: b\n");
        let message = load(&path).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                r#"{}:3: duplicate process type "web" (first defined on line 1)"#,
                path.display()
            )
        );
    }

    #[test]
    fn load_reads_a_valid_file() {
        let dir = TempDir::new("procfile-ok");
        let path = dir.file("Procfile", b"web: a\n");
        assert_eq!(load(&path).unwrap()[0].command, "a");
    }

    #[test]
    fn load_of_a_missing_file_is_an_io_error() {
        let path = Path::new("/nonexistent/hlocal/Procfile");
        let message = load(path).unwrap_err().to_string();
        assert!(
            message.starts_with("reading Procfile /nonexistent/hlocal/Procfile: "),
            "{message}"
        );
    }

    #[test]
    fn load_of_non_utf8_names_path_and_line() {
        let dir = TempDir::new("procfile-utf8");
        let path = dir.file("Procfile", b"web: a\nworker: \xff\n");
        let message = load(&path).unwrap_err().to_string();
        assert_eq!(message, format!("{}:2: not valid UTF-8", path.display()));
    }
}

/// Property tests (the repo's fuzzing): no text panics the parser; valid entries come back
/// as written, on their own lines.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_text_parses_or_names_a_line(text in "\\PC{0,400}|([a-z#: \\t\\r\\n-]{0,20}\\n){0,10}") {
            if let Err((line, _)) = parse(&text) {
                prop_assert!(line >= 1 && line <= file_lines(&text).count().max(1));
            }
        }

        #[test]
        fn entries_read_back(
            entries in prop::collection::btree_map("[A-Za-z0-9_-]{1,16}", "[!-~][ -~]{0,60}", 1..8),
        ) {
            let text: String = entries.iter().map(|(n, c)| format!("{n}: {c}\n")).collect();
            let types = parse(&text).expect("valid entries");
            let read: Vec<(String, String)> =
                types.into_iter().map(|t| (t.name, t.command)).collect();
            let written: Vec<(String, String)> =
                entries.into_iter().map(|(n, c)| (n, c.trim_end().to_string())).collect();
            prop_assert_eq!(read, written);
        }
    }
}
