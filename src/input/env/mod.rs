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

use crate::error::{self, Error};
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
    let (vars, warnings) =
        parse_files(&texts).map_err(|e| Error::located(paths[e.file], e.line, e.error))?;
    let warnings = warnings
        .into_iter()
        .map(|w| {
            format!(
                "{}:{}: ${{{}}} is not set; it expands to nothing",
                error::display_path(paths[w.file]),
                w.line,
                w.name
            )
        })
        .collect();
    Ok(Loaded { vars, warnings })
}

/// [`load_files`] over the files' contents. A text whose first non-blank character is `{`
/// is a JSON env file; anything else is a dotenv file.
pub fn parse_files(texts: &[&str]) -> Result<(Vars, Vec<Warning>), FileError> {
    let mut defined = Defined::default();
    let mut warnings = Vec::new();
    for (file, text) in texts.iter().enumerate() {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let located = |(line, error)| FileError { file, line, error };
        let vars = if text.trim_start().starts_with('{') {
            json::parse(text).map_err(located)?
        } else {
            let (vars, unset) =
                dotenv::parse(text, |name| defined.lookup(name)).map_err(located)?;
            warnings.extend(
                unset
                    .into_iter()
                    .map(|(line, name)| Warning { file, line, name }),
            );
            vars
        };
        defined.extend(vars);
    }
    Ok((defined.vars, warnings))
}

/// The values so far, in first-seen order, with an index for `${NAME}` lookups.
#[derive(Default)]
struct Defined {
    vars: Vars,
    index: HashMap<String, usize>,
}

impl Defined {
    fn extend(&mut self, vars: Vars) {
        for (key, value) in vars {
            match self.index.get(&key) {
                Some(&at) => self.vars[at].1 = value,
                None => {
                    self.index.insert(key.clone(), self.vars.len());
                    self.vars.push((key, value));
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
