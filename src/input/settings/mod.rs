//! hlocal.toml: defaults for the `start` flags and per-process settings.
//!
//! [`parse`] turns the text into [`Settings`], every field an `Option` (or empty) so
//! `config` can layer CLI > file > defaults; anything that can be checked from the file
//! alone (types, unknown keys, durations, signals, regexes, globs, the formation's
//! syntax) is refused here with its line. [`validate()`] does the checks that need the
//! Procfile's types: `[process.X]` and `depends_on` names, dependency cycles, the
//! formation's names. Resolving paths against the app root, and what each setting does,
//! are `config`'s and the supervisor's business.
//!
//! `schema` holds the tables users write (the top level and `[process.*]`), `values`
//! the typed values of their keys and the serde visitors that check each one at its
//! line, `validate` the checks against the Procfile; this file reads and parses.

mod schema;
mod validate;
mod values;

use std::path::Path;

pub use schema::{ProcessSettings, Settings, json_schema};
pub use validate::validate;
pub use values::{EnvFile, Lined, ProcessWatch, Ready, WatchSetting};

use crate::error::Error;
use crate::input::textfile::read_text;
use values::one_line;

pub const FILE_NAME: &str = "hlocal.toml";

/// Parses hlocal.toml text; errors carry the 1-based line and a one-line message.
pub fn parse(text: &str) -> Result<Settings, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut settings: Settings = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map_or(1, |span| LineIndex::new(text).line_at(span.start));
        (line, message_naming_the_key(&e, text))
    })?;
    settings.offsets_to_lines(text);
    Ok(settings)
}

/// toml says `duplicate key` and points at the key: name it (`duplicate key `web``).
fn message_naming_the_key(e: &toml::de::Error, text: &str) -> String {
    let key = e.span().and_then(|span| text.get(span));
    match key {
        Some(key) if e.message() == "duplicate key" => format!("duplicate key `{}`", key.trim()),
        _ => one_line(e.message()),
    }
}

/// Reads `root/hlocal.toml` if there is one.
pub fn load(root: &Path) -> Result<Option<Settings>, Error> {
    let path = root.join(FILE_NAME);
    if !path.exists() {
        return Ok(None);
    }
    let text = read_text(&path, "reading settings file")?;
    parse(&text)
        .map(Some)
        .map_err(|(line, message)| Error::located(&path, line, message))
}

impl Settings {
    /// Turns the byte offsets deserializing left in `line` fields into 1-based lines.
    fn offsets_to_lines(&mut self, text: &str) {
        let lines = LineIndex::new(text);
        if let Some(f) = &mut self.formation {
            f.line = lines.line_at(f.line);
        }
        for file in self.env.iter_mut().flatten() {
            file.line = lines.line_at(file.line);
        }
        for process in &mut self.processes {
            process.line = lines.line_at(process.line);
            for dep in &mut process.depends_on {
                dep.line = lines.line_at(dep.line);
            }
        }
    }
}

/// The offsets of a text's newlines: each offset's line is a binary search away, so a
/// file of 100,000 tables is not scanned once per table.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        LineIndex(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(at, _)| at)
                .collect(),
        )
    }

    /// 1-based line of the byte at `offset`.
    fn line_at(&self, offset: usize) -> usize {
        self.0.partition_point(|&newline| newline < offset) + 1
    }
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
