//! Config vars from env files: dotenv files and `heroku local`'s JSON env files.
//!
//! Dotenv files (`dotenv.rs`) are read with dotenvy's quoting rules (an `export` prefix, `#`
//! comments, single quotes taken literally, double quotes with `\` escapes and values over
//! several lines) but with values kept literal as foreman, honcho and Heroku keep them
//! (a backslash outside quotes included):
//! only `${NAME}` and `${NAME:-default}` expand (unquoted and in double quotes), from the
//! earlier lines, then the earlier files, then hlocal's own environment. `$` anywhere else
//! is just a `$`, so a secret such as `p@ss$word` arrives byte for byte. An unset `${NAME}`
//! without a default expands to nothing and is reported as a [`Warning`].
//! Errors name the file and line and never show a value (it may be a secret).
//! The merge: later files override earlier ones, and within a file a later line beats an
//! earlier one; keys keep the order in which they were first seen.
//!
//! Here the files are merged in order and errors located; `dotenv` and `json` each parse
//! one file, and `vars` is the leaf both share (the vars, their size limit, the errors).
//!
//! This module does not decide which files to read (`config` does: `.env` by default,
//! `-e` replaces it), nor how the result is layered over the inherited environment.

mod dotenv;
mod json;
mod vars;

use std::collections::HashMap;
use std::path::Path;

pub use vars::{EnvError, Vars};

use crate::error::{self, Error, Place};
use crate::input::textfile::read_text;

/// A problem in one of the texts given to [`parse_files`]: its index, and the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: usize,
    pub line: usize,
    pub error: EnvError,
}

/// `${NAME}` without a default, and `NAME` set nowhere: it expanded to nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: usize,
    pub line: usize,
    pub name: String,
}

/// The config vars, and the warnings to show the user (as `path:line: …` lines).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub vars: Vars,
    /// Where each of `vars` got its value: `.env:3`, or a JSON file's path.
    pub places: Vec<Place>,
    pub warnings: Vec<String>,
}

/// Reads the files in order; later files override earlier ones. Keys keep the order in
/// which they were first seen.
pub fn load_files(paths: &[&Path]) -> Result<Loaded, Error> {
    let texts = paths
        .iter()
        .map(|path| read_text(path, "reading env file"))
        .collect::<Result<Vec<_>, _>>()?;
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let merged = parse_files(&texts).map_err(|e| Error::located(paths[e.file], e.line, e.error))?;
    let place = |file: usize, line: Option<usize>| {
        let path = error::display_path(paths[file]);
        match line {
            Some(line) => Place::Line { path, line },
            None => Place::Named(path),
        }
    };
    let warnings = merged
        .warnings
        .into_iter()
        .map(|w| {
            let at = place(w.file, Some(w.line));
            format!("{at}: ${{{}}} is not set; it expands to nothing", w.name)
        })
        .collect();
    let places = merged
        .origins
        .into_iter()
        .map(|o| place(o.file, o.line))
        .collect();
    Ok(Loaded {
        vars: merged.vars,
        places,
        warnings,
    })
}

/// What [`parse_files`] read: the vars, where each got its value, and the warnings.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Merged {
    pub vars: Vars,
    pub origins: Vec<Origin>,
    pub warnings: Vec<Warning>,
}

/// The file (index) and line that set a var; JSON files have no lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub file: usize,
    pub line: Option<usize>,
}

/// [`load_files`] over the files' contents. A text whose first non-blank character is `{`
/// is a JSON env file; anything else is a dotenv file.
pub fn parse_files(texts: &[&str]) -> Result<Merged, FileError> {
    let mut defined = Defined::default();
    let mut warnings = Vec::new();
    for (file, text) in texts.iter().enumerate() {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let located = |(line, error)| FileError { file, line, error };
        if text.trim_start().starts_with('{') {
            let vars = json::parse(text).map_err(located)?;
            let origin = Origin { file, line: None };
            defined.extend(vars.into_iter().map(|var| (var, origin)));
        } else {
            let dotenv = dotenv::parse(text, |name| defined.lookup(name)).map_err(located)?;
            warnings.extend(dotenv.unset.into_iter().map(|(line, name)| Warning {
                file,
                line,
                name,
            }));
            let origins = dotenv.lines.into_iter().map(|line| Origin {
                file,
                line: Some(line),
            });
            defined.extend(dotenv.vars.into_iter().zip(origins));
        }
    }
    Ok(Merged {
        vars: defined.vars,
        origins: defined.origins,
        warnings,
    })
}

/// The values so far, in first-seen order, where each was set, and an index for
/// `${NAME}` lookups.
#[derive(Default)]
struct Defined {
    vars: Vars,
    origins: Vec<Origin>,
    index: HashMap<String, usize>,
}

impl Defined {
    fn extend(&mut self, vars: impl Iterator<Item = ((String, String), Origin)>) {
        for ((key, value), origin) in vars {
            match self.index.get(&key) {
                Some(&at) => {
                    self.vars[at].1 = value;
                    self.origins[at] = origin;
                }
                None => {
                    self.index.insert(key.clone(), self.vars.len());
                    self.vars.push((key, value));
                    self.origins.push(origin);
                }
            }
        }
    }

    /// `${NAME}` not set by the file's earlier lines: the earlier files, then hlocal's
    /// environment.
    fn lookup(&self, name: &str) -> Option<String> {
        self.index
            .get(name)
            .map(|&at| self.vars[at].1.clone())
            .or_else(|| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
