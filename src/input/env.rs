//! Config vars from env files: dotenv files and `heroku local`'s JSON env files.
//!
//! Dotenv files are parsed here, with dotenvy's quoting rules (an `export` prefix, `#`
//! comments, single quotes taken literally, double quotes with `\` escapes and values over
//! several lines) but with values kept literal as foreman, honcho and Heroku keep them:
//! only `${NAME}` and `${NAME:-default}` expand (unquoted and in double quotes), from the
//! earlier lines, then the earlier files, then hlocal's own environment. `$` anywhere else
//! is just a `$`, so a secret such as `p@ss$word` arrives byte for byte. An unset `${NAME}`
//! without a default expands to nothing and is reported as a [`Warning`].
//! Errors name the file and line and never show a value (it may be a secret).
//! The merge: later files override earlier ones, and within a file a later line beats an
//! earlier one; keys keep the order in which they were first seen.
//!
//! This module does not decide which files to read (`config` does: `.env` by default,
//! `-e` replaces it), nor how the result is layered over the inherited environment.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{self, Error};
use crate::input::textfile::{excerpt, read_text};

/// Config vars in order: `(name, value)`.
pub type Vars = Vec<(String, String)>;

/// Linux's MAX_ARG_STRLEN (32 pages): execve refuses one `NAME=value` string longer than
/// this, NUL included, whatever the total size of the environment.
pub const MAX_VAR_BYTES: usize = 32 * 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("expected NAME=value, found no \"=\"")]
    MissingEquals,
    #[error(
        "invalid variable name {0:?} (use letters, digits, \"_\" and \".\", not starting with a digit)"
    )]
    InvalidKey(String),
    #[error("the value of {0}: {1}")]
    InvalidValue(String, ValueProblem),
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("invalid variable name {0:?} (a name cannot be empty or contain \"=\" or NUL)")]
    InvalidName(String),
    #[error("the value of {0:?} contains a NUL byte")]
    NulInValue(String),
    #[error(
        "{0} is {1} bytes long; a process cannot be given a variable over 128 KiB (Linux's MAX_ARG_STRLEN)"
    )]
    TooLong(String, usize),
}

/// What is wrong with a dotenv value, in words that never quote the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValueProblem {
    #[error("unterminated single quote")]
    UnterminatedSingle,
    #[error("unterminated double quote")]
    UnterminatedDouble,
    #[error("invalid escape in double quotes (use \\\\, \\\", \\', \\$, \\n, \\r or \\t)")]
    InvalidEscape,
    #[error("text after the closing quote (only a # comment may follow)")]
    TextAfterQuote,
    #[error(
        "unterminated \"${{\" (write ${{NAME}} or ${{NAME:-default}}, or \\$ in double quotes)"
    )]
    UnterminatedReference,
    #[error("invalid reference (only ${{NAME}} and ${{NAME:-default}} are expanded)")]
    InvalidReference,
}

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
            parse_json(text).map_err(located)?
        } else {
            let (vars, unset) = parse_dotenv(text, &defined).map_err(located)?;
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

/// The entries of one dotenv file in order, and the unset references `(line, name)`.
type Dotenv = (Vars, Vec<(usize, String)>);

fn parse_dotenv(text: &str, defined: &Defined) -> Result<Dotenv, (usize, EnvError)> {
    let text = text.replace("\r\n", "\n");
    let mut cursor = Cursor {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
    };
    let mut vars = Vars::new();
    // Where each key's latest value is in `vars`, so a reference is found in constant
    // time however long the file.
    let mut latest: HashMap<String, usize> = HashMap::new();
    let mut unset = Vec::new();
    while let Some((line, key)) = next_key(&mut cursor)? {
        let mut value = ValueParser {
            cursor: &mut cursor,
            key: &key,
            lookup: |name: &str| match latest.get(name) {
                Some(&at) => Some(vars[at].1.clone()),
                None => defined.lookup(name),
            },
            unset: &mut unset,
            out: String::new(),
            quoted: false,
        };
        let value = value.parse()?;
        if value.contains('\0') {
            return Err((line, EnvError::NulInValue(key)));
        }
        if key.len() + value.len() + 2 > MAX_VAR_BYTES {
            return Err((line, EnvError::TooLong(key, value.len())));
        }
        latest.insert(key.clone(), vars.len());
        vars.push((key, value));
    }
    Ok((vars, unset))
}

/// Skips blank and comment lines and reads the next `[export] NAME=`, leaving the cursor
/// on the value; `(line, name)`, or `None` at the end of the file.
fn next_key(cursor: &mut Cursor) -> Result<Option<(usize, String)>, (usize, EnvError)> {
    loop {
        cursor.skip_blanks();
        match cursor.peek() {
            None => return Ok(None),
            Some('\n') => cursor.bump(),
            Some('#') => cursor.skip_line(),
            Some(_) => break,
        }
    }
    let line = cursor.line;
    let rest = &cursor.chars[cursor.pos..];
    let line_end = rest.iter().position(|&c| c == '\n').unwrap_or(rest.len());
    let Some(equals) = rest[..line_end].iter().position(|&c| c == '=') else {
        return Err((line, EnvError::MissingEquals));
    };
    let head: String = rest[..equals].iter().collect();
    let head = head.trim();
    let key = match head.strip_prefix("export") {
        Some(after) if after.starts_with([' ', '\t']) => after.trim_start(),
        _ => head,
    };
    if !is_dotenv_key(key) {
        return Err((line, EnvError::InvalidKey(excerpt(key))));
    }
    let key = key.to_string();
    cursor.pos += equals + 1;
    cursor.skip_blanks();
    Ok(Some((line, key)))
}

/// dotenvy's names: a letter or `_`, then letters, digits, `_` and `.`.
fn is_dotenv_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// `${NAME}` names: a letter or `_`, then letters, digits and `_`.
fn is_reference_name(name: &str) -> bool {
    is_dotenv_key(name) && !name.contains('.')
}

/// A position in a dotenv text, and its 1-based line.
struct Cursor {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

impl Cursor {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn bump(&mut self) {
        self.next();
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    /// Past the end of the line, its `\n` included.
    fn skip_line(&mut self) {
        while let Some(c) = self.next() {
            if c == '\n' {
                return;
            }
        }
    }
}

/// One value: unquoted, single- and double-quoted parts, back to back, up to the end
/// of the line or a ` # comment` (a quoted part may span lines). Blanks inside an
/// unquoted value are kept (`A=two words`, as foreman, honcho and node-foreman read it);
/// after a quoted part only a comment may follow.
struct ValueParser<'a, F: Fn(&str) -> Option<String>> {
    cursor: &'a mut Cursor,
    key: &'a str,
    lookup: F,
    unset: &'a mut Vec<(usize, String)>,
    out: String,
    /// A quoted part has been read.
    quoted: bool,
}

impl<F: Fn(&str) -> Option<String>> ValueParser<'_, F> {
    fn parse(&mut self) -> Result<String, (usize, EnvError)> {
        // A `#` right after `=` starts a comment: `A= # nothing` is empty, as in dotenvy.
        if self.cursor.peek() == Some('#') {
            self.cursor.skip_line();
            return Ok(String::new());
        }
        loop {
            match self.cursor.next() {
                None | Some('\n') => return Ok(std::mem::take(&mut self.out)),
                Some(blank @ (' ' | '\t')) => {
                    if let Some(value) = self.after_blank(blank)? {
                        return Ok(value);
                    }
                }
                Some('\'') => self.single_quoted()?,
                Some('"') => self.double_quoted()?,
                Some('\\') => {
                    if let Some(c) = self.cursor.next().filter(|&c| c != '\n') {
                        self.out.push(c);
                    }
                }
                Some('$') => self.reference()?,
                Some(c) => self.out.push(c),
            }
        }
    }

    /// Blanks end the value before a comment or the end of the line (trailing blanks are
    /// not part of it); before more text they belong to an unquoted value.
    fn after_blank(&mut self, first: char) -> Result<Option<String>, (usize, EnvError)> {
        let mut blanks = String::from(first);
        while let Some(blank @ (' ' | '\t')) = self.cursor.peek() {
            blanks.push(blank);
            self.cursor.bump();
        }
        match self.cursor.peek() {
            None | Some('\n') | Some('#') => {
                self.cursor.skip_line();
                Ok(Some(std::mem::take(&mut self.out)))
            }
            Some(_) if self.quoted => Err(self.problem(ValueProblem::TextAfterQuote)),
            Some(_) => {
                self.out.push_str(&blanks);
                Ok(None)
            }
        }
    }

    fn single_quoted(&mut self) -> Result<(), (usize, EnvError)> {
        self.quoted = true;
        let opened = self.cursor.line;
        loop {
            match self.cursor.next() {
                None => return Err(self.problem_at(opened, ValueProblem::UnterminatedSingle)),
                Some('\'') => return Ok(()),
                Some(c) => self.out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<(), (usize, EnvError)> {
        self.quoted = true;
        let opened = self.cursor.line;
        loop {
            match self.cursor.next() {
                None => return Err(self.problem_at(opened, ValueProblem::UnterminatedDouble)),
                Some('"') => return Ok(()),
                Some('\\') => self.escape()?,
                Some('$') => self.reference()?,
                Some(c) => self.out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<(), (usize, EnvError)> {
        let line = self.cursor.line;
        let c = match self.cursor.next() {
            Some(c @ ('\\' | '"' | '\'' | '$')) => c,
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            _ => return Err(self.problem_at(line, ValueProblem::InvalidEscape)),
        };
        self.out.push(c);
        Ok(())
    }

    /// After a `$`: `${NAME}` or `${NAME:-default}` expands; any other `$` is literal.
    fn reference(&mut self) -> Result<(), (usize, EnvError)> {
        if self.cursor.peek() != Some('{') {
            self.out.push('$');
            return Ok(());
        }
        self.cursor.bump();
        let mut inner = String::new();
        loop {
            match self.cursor.peek() {
                None | Some('\n') => {
                    return Err(self.problem(ValueProblem::UnterminatedReference));
                }
                Some('}') => break,
                Some(c) => inner.push(c),
            }
            self.cursor.bump();
        }
        self.cursor.bump();
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner.as_str(), None),
        };
        if !is_reference_name(name) {
            return Err(self.problem(ValueProblem::InvalidReference));
        }
        let value = (self.lookup)(name);
        match (value, default) {
            (Some(value), Some(default)) if value.is_empty() => self.out.push_str(default),
            (Some(value), _) => self.out.push_str(&value),
            (None, Some(default)) => self.out.push_str(default),
            (None, None) => {
                let unset = (self.cursor.line, name.to_string());
                // `${X}${X}` on one line is one warning. Lines only grow, so only this
                // line's warnings, at the end, need comparing.
                let mut this_line = self.unset.iter().rev().take_while(|(l, _)| *l == unset.0);
                if !this_line.any(|seen| *seen == unset) {
                    self.unset.push(unset);
                }
            }
        }
        Ok(())
    }

    fn problem(&self, problem: ValueProblem) -> (usize, EnvError) {
        self.problem_at(self.cursor.line, problem)
    }

    fn problem_at(&self, line: usize, problem: ValueProblem) -> (usize, EnvError) {
        (line, EnvError::InvalidValue(self.key.to_string(), problem))
    }
}

/// A JSON env file as `heroku local` (node-foreman) reads it: nested keys joined with `_`
/// and upper-cased, array items keyed by index (`{"a":["x"]}` → `A_0=x`), numbers and
/// booleans as their JSON text, `null` sets nothing.
fn parse_json(text: &str) -> Result<Vars, (usize, EnvError)> {
    let mut sink = Sink::default();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let flatten = Flatten {
        path: None,
        sink: &mut sink,
    };
    let result = flatten
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    match result {
        Ok(()) => Ok(sink.vars),
        Err(e) => {
            let error = sink.error.take().unwrap_or_else(|| {
                let full = e.to_string();
                let position = format!(" at line {} column {}", e.line(), e.column());
                let message = full.strip_suffix(&position).unwrap_or(&full);
                EnvError::Json(format!("{message} (column {})", e.column()))
            });
            Err((e.line().max(1), error))
        }
    }
}

#[derive(Default)]
struct Sink {
    vars: Vars,
    /// Our own error, kept typed: serde only carries a message (and serde_json the line).
    error: Option<EnvError>,
}

struct Flatten<'a> {
    /// The key so far; `None` at the top-level object.
    path: Option<String>,
    sink: &'a mut Sink,
}

impl Flatten<'_> {
    fn child(&mut self, key: &str) -> Flatten<'_> {
        let path = match &self.path {
            None => key.to_string(),
            Some(path) => format!("{path}_{key}"),
        };
        Flatten {
            path: Some(path),
            sink: &mut *self.sink,
        }
    }

    fn leaf<E: de::Error>(self, value: String) -> Result<(), E> {
        let name = self.path.unwrap_or_default().to_uppercase();
        let error = if name.is_empty() || name.contains(['=', '\0']) {
            EnvError::InvalidName(excerpt(&name))
        } else if value.contains('\0') {
            EnvError::NulInValue(name)
        } else {
            self.sink.vars.push((name, value));
            return Ok(());
        };
        let message = error.to_string();
        self.sink.error = Some(error);
        Err(E::custom(message))
    }
}

impl<'de> DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of config vars")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(self.child(&key))?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(self.child(&index.to_string()))?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::input::procfile::tests::TempDir;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(text: &str) -> Vars {
        parse_files(&[text]).unwrap().0
    }

    /// `(line, error)` of a single text.
    fn error(text: &str) -> (usize, EnvError) {
        let e = parse_files(&[text]).unwrap_err();
        assert_eq!(e.file, 0);
        (e.line, e.error)
    }

    fn invalid(line: usize, key: &str, problem: ValueProblem) -> (usize, EnvError) {
        (line, EnvError::InvalidValue(key.into(), problem))
    }

    fn bad_key(line: usize, key: &str) -> (usize, EnvError) {
        (line, EnvError::InvalidKey(key.into()))
    }

    #[test]
    fn dotenv_conventions_follow_dotenvy() {
        let text = r#"
# comment
A=1
export B=two
C="double quoted # not a comment"
D='single $A'
E=plain # trailing comment
F="line1
line2"
G=
H="escaped \" quote\nnewline"
"#;
        assert_eq!(
            parse(text),
            vars(&[
                ("A", "1"),
                ("B", "two"),
                ("C", "double quoted # not a comment"),
                ("D", "single $A"),
                ("E", "plain"),
                ("F", "line1\nline2"),
                ("G", ""),
                ("H", "escaped \" quote\nnewline"),
            ])
        );
    }

    #[test]
    fn unquoted_values_keep_inner_blanks_as_foreman_reads_them() {
        let text = "A=two words\nB=one  two\t # comment\nC=a#b\nD=x ${A}\n";
        assert_eq!(
            parse(text),
            vars(&[
                ("A", "two words"),
                ("B", "one  two"),
                ("C", "a#b"),
                ("D", "x two words"),
            ])
        );
    }

    #[test]
    fn expansion_sees_earlier_lines() {
        let text = "HLOCAL_TEST_HOST=db\nHLOCAL_TEST_URL=postgres://${HLOCAL_TEST_HOST}/app\n";
        assert_eq!(parse(text)[1].1, "postgres://db/app");
    }

    #[test]
    fn expansion_sees_earlier_files() {
        let merged = parse_files(&[
            "HLOCAL_TEST_H2=db\n",
            "HLOCAL_TEST_U2=${HLOCAL_TEST_H2}:5432\n",
        ])
        .unwrap()
        .0;
        assert_eq!(merged[1], ("HLOCAL_TEST_U2".into(), "db:5432".into()));
    }

    #[test]
    fn later_files_override_and_first_seen_order_is_kept() {
        let merged = parse_files(&["A=1\nB=2\n", "C=3\nA=override\n"]).unwrap().0;
        assert_eq!(merged, vars(&[("A", "override"), ("B", "2"), ("C", "3")]));
    }

    #[test]
    fn later_line_in_one_file_wins() {
        assert_eq!(parse("A=1\nB=2\nA=3\n"), vars(&[("A", "3"), ("B", "2")]));
    }

    #[test]
    fn crlf_bom_and_missing_final_newline_are_accepted() {
        assert_eq!(
            parse("\u{feff}A=1\r\nB=\"x\"\r\nC=3"),
            vars(&[("A", "1"), ("B", "x"), ("C", "3")])
        );
    }

    #[test]
    fn files_without_final_newline_do_not_run_together() {
        let merged = parse_files(&["A=1", "B=2"]).unwrap().0;
        assert_eq!(merged, vars(&[("A", "1"), ("B", "2")]));
    }

    #[test]
    fn empty_files_are_empty() {
        assert_eq!(parse_files(&[]).unwrap(), (Vars::new(), Vec::new()));
        assert_eq!(parse(""), Vars::new());
        assert_eq!(parse("\n# only a comment\n\n"), Vars::new());
    }

    #[test]
    fn values_are_literal_and_only_braced_references_expand() {
        let text = "A=abc$123\nB=p@ss$word\nC=\"abc$123\"\nD=${HLOCAL_TEST_NEVER:-localhost}\n\
                    E='x${A}'\nF=\"\\$HOME\"\nG=\"${A}-x\"\nH=$\nI=a#b\n";
        assert_eq!(
            parse(text),
            vars(&[
                ("A", "abc$123"),
                ("B", "p@ss$word"),
                ("C", "abc$123"),
                ("D", "localhost"),
                ("E", "x${A}"),
                ("F", "$HOME"),
                ("G", "abc$123-x"),
                ("H", "$"),
                ("I", "a#b"),
            ])
        );
    }

    #[test]
    fn a_default_replaces_an_empty_value_and_an_unset_reference_warns() {
        let (vars, warnings) =
            parse_files(&["E=\nA=${E:-d}\n", "\n\nB=\"x${HLOCAL_TEST_NEVER}y\"\n"]).unwrap();
        assert_eq!(vars[1].1, "d");
        assert_eq!(vars[2].1, "xy");
        assert_eq!(
            warnings,
            [Warning {
                file: 1,
                line: 3,
                name: "HLOCAL_TEST_NEVER".into()
            }]
        );
    }

    #[test]
    fn earlier_lines_beat_the_environment() {
        assert_eq!(parse("PATH=mine\nA=${PATH}\n")[1].1, "mine");
    }

    #[test]
    fn a_line_without_equals_names_its_line_only() {
        assert_eq!(
            error("A=1\n\nsk_live_secret\n"),
            (3, EnvError::MissingEquals)
        );
        assert_eq!(
            EnvError::MissingEquals.to_string(),
            r#"expected NAME=value, found no "=""#
        );
    }

    #[test]
    fn line_numbers_count_comments_blank_lines_and_multiline_values() {
        let text = "# c\n\nA=\"one\ntwo\nthree\"\n  # indented comment\nB=1\n-bad=1\n";
        assert_eq!(error(text), bad_key(8, "-bad"));
    }

    #[test]
    fn key_errors_show_the_key_and_never_the_value() {
        let (line, e) = error("A=1\nSTRIPE KEY=sk_live_secret\n");
        assert_eq!((line, &e), (2, &EnvError::InvalidKey("STRIPE KEY".into())));
        assert!(!e.to_string().contains("sk_live"), "{e}");
        assert_eq!(error("export 1A=\"x\ny\"\n"), bad_key(1, "1A"));
    }

    #[test]
    fn value_errors_inside_multiline_values_name_the_later_line() {
        assert_eq!(
            error("A=1\nB=\"x\ny\" junk\nC=2\n"),
            invalid(3, "B", ValueProblem::TextAfterQuote)
        );
        assert_eq!(
            error("B=\"x\n\\q\"\n"),
            invalid(2, "B", ValueProblem::InvalidEscape)
        );
    }

    #[test]
    fn bad_escape_trailing_text_and_bad_references_are_errors() {
        use ValueProblem::*;
        assert_eq!(error("A=\"\\q\"\n"), invalid(1, "A", InvalidEscape));
        assert_eq!(error("A='one' two\n"), invalid(1, "A", TextAfterQuote));
        assert_eq!(error("A=${OPEN\n"), invalid(1, "A", UnterminatedReference));
        assert_eq!(error("A=${A B}\n"), invalid(1, "A", InvalidReference));
        let shown = EnvError::InvalidValue("A".into(), TextAfterQuote).to_string();
        assert_eq!(
            shown,
            "the value of A: text after the closing quote (only a # comment may follow)"
        );
    }

    #[test]
    fn unterminated_quote_names_the_line_it_opens() {
        use ValueProblem::*;
        assert_eq!(
            error("A=1\nB=\"open\nC=2\n"),
            invalid(2, "B", UnterminatedDouble)
        );
        assert_eq!(error("A='open"), invalid(1, "A", UnterminatedSingle));
    }

    #[test]
    fn unterminated_quote_does_not_swallow_the_next_file() {
        let e = parse_files(&["A=1\nB=\"open\n", "C=2\"\n"]).unwrap_err();
        assert_eq!((e.file, e.line), (0, 2));
    }

    #[test]
    fn errors_in_a_later_file_name_that_file_and_its_line() {
        let e = parse_files(&["A=1\nB=2\n", "C=3\nnot a line\n"]).unwrap_err();
        assert_eq!((e.file, e.line), (1, 2));
    }

    #[test]
    fn very_long_keys_are_shortened_in_messages() {
        let text = format!("A B{}=1\n", "x".repeat(1000));
        let (line, e) = error(&text);
        assert_eq!(line, 1);
        assert!(e.to_string().len() < 200, "{e}");
    }

    #[test]
    fn long_values_parse_and_values_over_max_arg_strlen_are_errors() {
        let long = "v".repeat(20_000);
        assert_eq!(parse(&format!("A={long}\nB=2\n"))[0].1, long);
        let too_long = "v".repeat(MAX_VAR_BYTES);
        assert_eq!(
            error(&format!("A=1\nB={too_long}\n")),
            (2, EnvError::TooLong("B".into(), MAX_VAR_BYTES))
        );
    }

    #[test]
    fn nul_in_a_value_is_an_error() {
        assert_eq!(
            error("A=1\nB=\"x\0y\"\n"),
            (2, EnvError::NulInValue("B".into()))
        );
    }

    #[test]
    fn json_is_flattened_and_upper_cased() {
        let text = r#"{"top": {"key": "v", "deeper": {"n": 42}}, "flag": true, "ratio": 0.5, "camelCase": "c"}"#;
        assert_eq!(
            parse(text),
            vars(&[
                ("TOP_KEY", "v"),
                ("TOP_DEEPER_N", "42"),
                ("FLAG", "true"),
                ("RATIO", "0.5"),
                ("CAMELCASE", "c"),
            ])
        );
    }

    #[test]
    fn json_arrays_are_keyed_by_index_and_null_sets_nothing() {
        let text = "\n  {\"list\": [\"zero\", {\"x\": 1}], \"gone\": null, \"neg\": -3}";
        assert_eq!(
            parse(text),
            vars(&[("LIST_0", "zero"), ("LIST_1_X", "1"), ("NEG", "-3")])
        );
    }

    #[test]
    fn json_and_dotenv_files_merge_in_order() {
        let merged = parse_files(&["A=1\nB=1\n", r#"{"b": "json", "c": "json"}"#, "C=3\n"])
            .unwrap()
            .0;
        assert_eq!(merged, vars(&[("A", "1"), ("B", "json"), ("C", "3")]));
    }

    #[test]
    fn invalid_json_reports_serde_json_line() {
        let (line, e) = error("{\n  \"a\": 1,\n  \"b\" 2\n}\n");
        assert_eq!(line, 3);
        assert_eq!(e, EnvError::Json("expected `:` (column 7)".into()));
        assert_eq!(e.to_string(), "invalid JSON: expected `:` (column 7)");
    }

    #[test]
    fn json_trailing_content_is_an_error() {
        let (line, e) = error("{\"a\": 1}\nB=2\n");
        assert_eq!(line, 2);
        assert!(matches!(e, EnvError::Json(_)), "{e:?}");
    }

    #[test]
    fn json_names_with_equals_nul_or_nothing_are_errors() {
        assert_eq!(
            error("{\n\"a=b\": 1}"),
            (2, EnvError::InvalidName("A=B".into()))
        );
        assert_eq!(
            error(r#"{"": "x"}"#).1,
            EnvError::InvalidName(String::new())
        );
        assert_eq!(
            error(r#"{"a\u0000": "x"}"#).1,
            EnvError::InvalidName("A\0".into())
        );
        assert_eq!(
            EnvError::InvalidName("A=B".into()).to_string(),
            r#"invalid variable name "A=B" (a name cannot be empty or contain "=" or NUL)"#
        );
    }

    #[test]
    fn json_nested_empty_key_keeps_its_separator() {
        assert_eq!(parse(r#"{"": {"a": 1}}"#), vars(&[("_A", "1")]));
    }

    #[test]
    fn json_nul_in_a_value_is_an_error() {
        assert_eq!(
            error(r#"{"a": "x\u0000"}"#).1,
            EnvError::NulInValue("A".into())
        );
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_crash() {
        let text = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        assert!(matches!(error(&text).1, EnvError::Json(_)));
    }

    /// Deterministic pseudo-random texts over the characters that matter to dotenv.
    fn arbitrary_texts(seed: u64, count: usize) -> Vec<String> {
        const ALPHABET: &[&str] = &[
            "A", "b", "_", "=", "\"", "'", "\\", "\n", "\r\n", "#", " ", "$", "{", "}", "é",
            "export ",
        ];
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        (0..count)
            .map(|_| {
                (0..next() % 40)
                    .map(|_| ALPHABET[next() % ALPHABET.len()])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn arbitrary_input_never_panics_and_errors_point_inside_the_file() {
        for seed in 0..3000 {
            let texts = arbitrary_texts(seed, 1 + seed as usize % 3);
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            if let Err(e) = parse_files(&refs) {
                let lines = refs[e.file].split_inclusive('\n').count().max(1);
                assert!(
                    (1..=lines).contains(&e.line),
                    "seed {seed}: line {} of {lines} in {refs:?}: {e:?}",
                    e.line
                );
            }
        }
    }

    #[test]
    fn load_files_reads_in_order_and_locates_errors() {
        let dir = TempDir::new("env-load");
        let first = dir.file(".env", b"A=1\nB=2\n");
        let second = dir.file(".env.local", b"B=3\n\nFOO BAR\n");
        assert_eq!(
            load_files(&[&first]).unwrap().vars,
            vars(&[("A", "1"), ("B", "2")])
        );
        let message = load_files(&[&first, &second]).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                r#"{}:3: expected NAME=value, found no "=""#,
                second.display()
            )
        );
    }

    #[test]
    fn load_files_missing_file_is_an_io_error() {
        let message = load_files(&[Path::new("/nonexistent/hlocal/.env")])
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("reading env file /nonexistent/hlocal/.env: "),
            "{message}"
        );
    }

    #[test]
    fn load_files_non_utf8_names_its_line() {
        let dir = TempDir::new("env-utf8");
        let path = dir.file(".env", b"A=1\nB=\xc3\x28\n");
        let message = load_files(&[&path]).unwrap_err().to_string();
        assert_eq!(message, format!("{}:2: not valid UTF-8", path.display()));
    }
}

/// Property tests (the repo's fuzzing): no dotenv or JSON text panics the parser; a value
/// written single-quoted, or as a JSON string, reads back byte for byte. One exception,
/// found here: a CRLF inside a single-quoted value reads back as LF, because a dotenv
/// file's CRLF line endings are normalised before parsing (a Windows-saved file).
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    /// Text that looks like dotenv often enough to reach the value parser's corners.
    const DOTENV_LIKE: &str =
        "((export )?[A-Z_]{1,4} ?= ?[a-z'\"$\\\\{}:#=\\- \\t\\r]{0,20}\\n){0,8}";

    proptest! {
        #[test]
        fn any_text_is_vars_or_a_located_error(text in "\\PC{0,400}", like in DOTENV_LIKE) {
            for text in [&text, &like] {
                if let Err(e) = parse_files(&[text]) {
                    prop_assert!(e.line >= 1, "{e:?}");
                }
            }
        }

        #[test]
        fn any_json_value_is_vars_or_an_error(json in json_value(3)) {
            let text = serde_json::json!({ "KEY": json, "OTHER": { "A": 1 } }).to_string();
            let _ = parse_files(&[&text]);
        }

        #[test]
        fn single_quoted_values_read_back(key in "[A-Za-z_][A-Za-z0-9_.]{0,12}", value in "[^'\\x00]{0,200}") {
            let text = format!("{key}='{value}'\n");
            let (vars, warnings) = parse_files(&[&text]).expect("a valid line");
            prop_assert_eq!(vars, vec![(key, value.replace("\r\n", "\n"))]);
            prop_assert!(warnings.is_empty());
        }

        #[test]
        fn json_strings_read_back(
            // Upper case: JSON names are upper-cased as `heroku local` does.
            vars in prop::collection::btree_map("[A-Z_][A-Z0-9_]{0,12}", "[^\\x00]{0,100}", 0..8),
        ) {
            let text = serde_json::to_string(&vars).expect("a map of strings");
            let (read, _) = parse_files(&[&text]).expect("a valid JSON env file");
            prop_assert_eq!(read, vars.into_iter().collect::<Vars>());
        }
    }

    /// Any JSON value, nested up to `depth` levels.
    fn json_value(depth: u32) -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,20}".prop_map(Value::from),
        ];
        leaf.prop_recursive(depth, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("\\PC{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
