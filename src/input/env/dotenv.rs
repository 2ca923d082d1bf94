//! Dotenv files, with dotenvy's quoting rules and values kept literal: only `${NAME}`
//! and `${NAME:-default}` expand (the rules in full are in `env`'s module doc).

use std::collections::HashMap;

use super::vars::{EnvError, MAX_VAR_BYTES, ValueProblem, Vars};
use crate::input::textfile::excerpt;

/// The entries of one dotenv file in order, the line of each, and the unset references
/// `(line, name)`.
pub(super) struct Dotenv {
    pub vars: Vars,
    pub lines: Vec<usize>,
    pub unset: Vec<(usize, String)>,
}

/// Parses one dotenv file; `${NAME}` not set by its earlier lines is looked up with
/// `outside` (the earlier files, then hlocal's environment).
pub(super) fn parse(
    text: &str,
    outside: impl Fn(&str) -> Option<String>,
) -> Result<Dotenv, (usize, EnvError)> {
    let text = text.replace("\r\n", "\n");
    let mut cursor = Cursor {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
    };
    let mut vars = Vars::new();
    let mut lines = Vec::new();
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
                None => outside(name),
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
        lines.push(line);
    }
    Ok(Dotenv { vars, lines, unset })
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

/// One value: unquoted, single- and double-quoted parts, back to back (`"x"y` is `xy`),
/// up to the end of the line or a ` # comment` (a quoted part may span lines). Blanks
/// inside an unquoted value are kept (`A=two words`, as foreman, honcho and node-foreman
/// read it); after a quoted part and a blank only a comment may follow. A backslash
/// outside quotes is just a backslash (`C:\dir`, `^\d+$`), as foreman and node-foreman
/// keep it, where dotenvy and a shell would drop it.
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
        // `${A:-${B}}` would end at the first `}`: refused rather than half expanded.
        if default.is_some_and(|default| default.contains("${")) {
            return Err(self.problem(ValueProblem::NestedReference));
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
