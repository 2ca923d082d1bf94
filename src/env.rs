//! Config vars from env files (SPEC §1): dotenv files and `heroku local`'s JSON env files.
//!
//! Dotenv files go through dotenvy's iterator, which never touches our own environment,
//! so quoting, `export`, comments, multiline values and `${VAR}` follow dotenvy. All the
//! dotenv files of one start are fed to a single dotenvy iterator, so a later file can
//! expand `${VAR}` from an earlier one, as when dotenv files are loaded one after another
//! (dotenvy looks `VAR` up in the inherited environment first; JSON files' values are not
//! seen by `${VAR}`).
//! The merge: later files override earlier ones, and within a file a later line beats an
//! earlier one; keys keep the order in which they were first seen.
//!
//! This module does not decide which files to read (`config` does: `.env` by default,
//! `-e` replaces it), nor how the result is layered over the inherited environment.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::Error;
use crate::procfile::{excerpt, read_text};

/// Config vars in order: `(name, value)`.
pub type Vars = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("invalid line {0:?}")]
    InvalidLine(String),
    #[error("unterminated quote in {0:?}")]
    UnterminatedQuote(String),
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("invalid variable name {0:?} (a name cannot be empty or contain \"=\" or NUL)")]
    InvalidName(String),
    #[error("the value of {0:?} contains a NUL byte")]
    NulInValue(String),
}

/// A problem in one of the texts given to [`parse_files`]: its index, and the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: usize,
    pub line: usize,
    pub error: EnvError,
}

/// Reads the files in order; later files override earlier ones. Keys keep the order in
/// which they were first seen.
pub fn load_files(paths: &[&Path]) -> Result<Vars, Error> {
    let texts = paths
        .iter()
        .map(|path| read_text(path, "reading env file"))
        .collect::<Result<Vec<_>, _>>()?;
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    parse_files(&texts).map_err(|e| Error::located(paths[e.file], e.line, e.error))
}

/// [`load_files`] over the files' contents. A text whose first non-blank character is `{`
/// is a JSON env file; anything else is a dotenv file.
pub fn parse_files(texts: &[&str]) -> Result<Vars, FileError> {
    let texts: Vec<&str> = texts
        .iter()
        .map(|text| text.strip_prefix('\u{feff}').unwrap_or(text))
        .collect();
    let is_json = |text: &str| text.trim_start().starts_with('{');
    let mut per_file: Vec<Vars> = vec![Vec::new(); texts.len()];
    let mut errors: Vec<FileError> = Vec::new();
    for (file, text) in texts.iter().enumerate().filter(|(_, t)| is_json(t)) {
        match parse_json(text) {
            Ok(vars) => per_file[file] = vars,
            Err((line, error)) => errors.push(FileError { file, line, error }),
        }
    }
    let dotenv: Vec<(usize, &str)> = texts
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, t)| !is_json(t))
        .collect();
    match parse_dotenv(&dotenv) {
        Ok(vars) => vars
            .into_iter()
            .for_each(|(file, key, value)| per_file[file].push((key, value))),
        Err(error) => errors.push(error),
    }
    // Report the problem a reader of the files in order meets first.
    match errors.into_iter().min_by_key(|e| (e.file, e.line)) {
        Some(error) => Err(error),
        None => Ok(merge(per_file)),
    }
}

fn merge(files: Vec<Vars>) -> Vars {
    let mut merged: Vars = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (key, value) in files.into_iter().flatten() {
        match index.get(&key) {
            Some(&at) => merged[at].1 = value,
            None => {
                index.insert(key.clone(), merged.len());
                merged.push((key, value));
            }
        }
    }
    merged
}

/// One physical line of a dotenv file, and where it came from.
struct Line<'a> {
    text: &'a str,
    file: usize,
    /// 1-based, within its file.
    number: usize,
}

/// Parses the dotenv texts `(file index, text)` with one dotenvy iterator, returning
/// `(file index, key, value)` per entry.
fn parse_dotenv(texts: &[(usize, &str)]) -> Result<Vec<(usize, String, String)>, FileError> {
    let lines: Vec<Line> = texts
        .iter()
        .flat_map(|&(file, text)| {
            text.split_inclusive('\n')
                .enumerate()
                .map(move |(i, text)| Line {
                    text,
                    file,
                    number: i + 1,
                })
        })
        .collect();
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let feed = LineFeed::new(&lines);
    let mut entries = Vec::new();
    let mut consumed_before = 0;
    for item in dotenvy::from_read_iter(&feed) {
        let consumed = feed.consumed();
        let span = EntrySpan::new(&lines, consumed_before, consumed);
        consumed_before = consumed;
        let (first, last) = (&lines[span.first], &lines[span.last]);
        let error_at = |line: &Line, error: EnvError| FileError {
            file: line.file,
            line: line.number,
            error,
        };
        // A quote left open at the end of one file must not swallow the next one.
        if first.file != last.file {
            return Err(error_at(first, EnvError::UnterminatedQuote(shown(first))));
        }
        match item {
            Ok((key, value)) if value.contains('\0') => {
                return Err(error_at(first, EnvError::NulInValue(key)));
            }
            Ok((key, value)) => entries.push((first.file, key, value)),
            Err(dotenvy::Error::LineParse(text, index)) => {
                let at = &lines[span.line_of(&lines, &text, index)];
                // A quote still open at the end of the input comes back as all the text
                // from the entry on, with the index at its end.
                let error = if index >= text.len() && text.contains(['"', '\'']) {
                    EnvError::UnterminatedQuote(shown(at))
                } else {
                    EnvError::InvalidLine(shown(at))
                };
                return Err(error_at(at, error));
            }
            // dotenvy's other errors (I/O, env lookups) cannot come from an in-memory reader.
            Err(_) => return Err(error_at(first, EnvError::InvalidLine(shown(first)))),
        }
    }
    Ok(entries)
}

fn shown(line: &Line) -> String {
    excerpt(line.text.trim())
}

/// The physical lines (indices into the line list) of the entry dotenvy just yielded.
struct EntrySpan {
    first: usize,
    last: usize,
}

impl EntrySpan {
    /// dotenvy skipped the blank and comment lines after the previous entry; this entry
    /// starts at the first other line and ends at the last line it consumed.
    fn new(lines: &[Line], consumed_before: usize, consumed: usize) -> EntrySpan {
        let last = consumed
            .saturating_sub(1)
            .min(lines.len().saturating_sub(1));
        let first = (consumed_before..last)
            .find(|&i| {
                let text = lines[i].text.trim();
                !text.is_empty() && !text.starts_with('#')
            })
            .unwrap_or(last);
        EntrySpan { first, last }
    }

    /// The line of a `LineParse(text, index)` error. dotenvy reports either the whole
    /// entry with a byte index (a bad key or a missing `=`, always on the first line) or
    /// just the value with a char index, which may fall on a later line of a multiline
    /// value.
    fn line_of(&self, lines: &[Line], text: &str, index: usize) -> usize {
        let entry_start = lines[self.first].text.trim_end_matches(['\n', '\r']);
        let text_start = text.split('\n').next().unwrap_or("").trim_end_matches('\r');
        if text_start == entry_start {
            return self.first;
        }
        let newlines = text.chars().take(index).filter(|&c| c == '\n').count();
        (self.first + newlines).min(self.last)
    }
}

/// Hands dotenvy one physical line per `read`, so how many lines it has consumed is
/// known whenever its iterator yields: its `BufReader` only refills when empty, and its
/// line reader stops at the `\n` that ends each chunk. A file's last line gets a `\n` if
/// it lacks one, so files never run together.
struct LineFeed<'a> {
    lines: &'a [Line<'a>],
    next: Cell<usize>,
    offset: Cell<usize>,
}

impl<'a> LineFeed<'a> {
    fn new(lines: &'a [Line<'a>]) -> Self {
        LineFeed {
            lines,
            next: Cell::new(0),
            offset: Cell::new(0),
        }
    }

    fn consumed(&self) -> usize {
        self.next.get()
    }
}

impl Read for &LineFeed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(line) = self.lines.get(self.next.get()) else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        let bytes = line.text.as_bytes();
        let offset = self.offset.get();
        let n = if offset < bytes.len() {
            let n = (bytes.len() - offset).min(buf.len());
            buf[..n].copy_from_slice(&bytes[offset..offset + n]);
            n
        } else {
            buf[0] = b'\n';
            1
        };
        let total = bytes.len() + usize::from(!line.text.ends_with('\n'));
        if offset + n == total {
            self.next.set(self.next.get() + 1);
            self.offset.set(0);
        } else {
            self.offset.set(offset + n);
        }
        Ok(n)
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
    use crate::procfile::tests::TempDir;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(text: &str) -> Vars {
        parse_files(&[text]).unwrap()
    }

    /// `(line, error)` of a single text.
    fn error(text: &str) -> (usize, EnvError) {
        let e = parse_files(&[text]).unwrap_err();
        assert_eq!(e.file, 0);
        (e.line, e.error)
    }

    fn invalid(line: usize, shown: &str) -> (usize, EnvError) {
        (line, EnvError::InvalidLine(shown.into()))
    }

    fn unterminated(line: usize, shown: &str) -> (usize, EnvError) {
        (line, EnvError::UnterminatedQuote(shown.into()))
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
        .unwrap();
        assert_eq!(merged[1], ("HLOCAL_TEST_U2".into(), "db:5432".into()));
    }

    #[test]
    fn later_files_override_and_first_seen_order_is_kept() {
        let merged = parse_files(&["A=1\nB=2\n", "C=3\nA=override\n"]).unwrap();
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
        let merged = parse_files(&["A=1", "B=2"]).unwrap();
        assert_eq!(merged, vars(&[("A", "1"), ("B", "2")]));
    }

    #[test]
    fn empty_files_are_empty() {
        assert_eq!(parse_files(&[]).unwrap(), Vars::new());
        assert_eq!(parse(""), Vars::new());
        assert_eq!(parse("\n# only a comment\n\n"), Vars::new());
    }

    #[test]
    fn invalid_line_names_its_line() {
        assert_eq!(error("A=1\n\nFOO BAR\n"), invalid(3, "FOO BAR"));
        assert_eq!(
            EnvError::InvalidLine("FOO BAR".into()).to_string(),
            r#"invalid line "FOO BAR""#
        );
    }

    #[test]
    fn line_numbers_count_comments_blank_lines_and_multiline_values() {
        let text = "# c\n\nA=\"one\ntwo\nthree\"\n  # indented comment\nB=1\n-bad=1\n";
        assert_eq!(error(text), invalid(8, "-bad=1"));
    }

    #[test]
    fn key_errors_are_on_the_entry_first_line() {
        assert_eq!(error("A=1\n1A=\"x\ny\"\n"), invalid(2, "1A=\"x"));
        assert_eq!(error("KEY\n"), invalid(1, "KEY"));
    }

    #[test]
    fn value_errors_inside_multiline_values_name_the_later_line() {
        assert_eq!(error("A=1\nB=\"x\ny\" junk\nC=2\n"), invalid(3, "y\" junk"));
    }

    #[test]
    fn bad_escape_and_trailing_garbage_are_invalid_lines() {
        assert_eq!(error("A=\"\\q\"\n"), invalid(1, "A=\"\\q\""));
        assert_eq!(error("A=one two\n"), invalid(1, "A=one two"));
        assert_eq!(error("A=${OPEN\n"), invalid(1, "A=${OPEN"));
    }

    #[test]
    fn unterminated_quote_names_the_line_it_opens() {
        assert_eq!(error("A=1\nB=\"open\nC=2\n"), unterminated(2, "B=\"open"));
        assert_eq!(error("A='open"), unterminated(1, "A='open"));
        assert_eq!(
            EnvError::UnterminatedQuote("B=\"open".into()).to_string(),
            r#"unterminated quote in "B=\"open""#
        );
    }

    #[test]
    fn unterminated_quote_does_not_swallow_the_next_file() {
        let e = parse_files(&["A=1\nB=\"open\n", "C=2\"\n"]).unwrap_err();
        assert_eq!(
            e,
            FileError {
                file: 0,
                line: 2,
                error: EnvError::UnterminatedQuote("B=\"open".into())
            }
        );
    }

    #[test]
    fn errors_in_a_later_file_name_that_file_and_its_line() {
        let e = parse_files(&["A=1\nB=2\n", "C=3\nnot a line\n"]).unwrap_err();
        assert_eq!((e.file, e.line), (1, 2));
    }

    #[test]
    fn very_long_lines_are_shortened_in_messages() {
        let text = format!("A B{}\n", "x".repeat(1000));
        let (line, e) = error(&text);
        assert_eq!(line, 1);
        assert!(e.to_string().len() < 100, "{e}");
    }

    #[test]
    fn long_lines_over_the_read_buffer_parse() {
        let long = "v".repeat(20_000);
        assert_eq!(parse(&format!("A={long}\nB=2\n"))[0].1, long);
        assert_eq!(error(&format!("A={long}\nB 2\n")), invalid(2, "B 2"));
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
        let merged =
            parse_files(&["A=1\nB=1\n", r#"{"b": "json", "c": "json"}"#, "C=3\n"]).unwrap();
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
            load_files(&[&first]).unwrap(),
            vars(&[("A", "1"), ("B", "2")])
        );
        let message = load_files(&[&first, &second]).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(r#"{}:3: invalid line "FOO BAR""#, second.display())
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
