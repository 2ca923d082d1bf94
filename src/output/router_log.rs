//! A router log line as ordered `key=value` fields, Heroku's order:
//! `at=info method=GET path="/" host=… request_id=… fwd="…" dyno=web.1 connect=0ms …`.
//!
//! The router makes one per request, so the texts of all fields share one buffer: a line
//! costs two allocations (and the printer two frees) whatever its number of fields.
//!
//! Texts are stored as they are (JSON carries the real text) but sorted as they are
//! stored, because several come from the client (`host`, `path`, `fwd`): one scan says
//! whether a text must be quoted and whether it holds a `"`, `\` or control character,
//! which the text formats escape when they print it. So `Host: evil at=error code=H99`
//! prints `host="evil at=error code=H99"`, never a second `code=` field, and the common
//! plain text is printed as stored with no second scan.

use std::io::Write as _;

/// One field's value as the printer sees it; texts are the real ones, unescaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterValue<'a> {
    /// Printed bare: `at=info`, `method=GET`, `dyno=web.1`.
    Word(&'a str),
    /// Printed in double quotes: `path="/"`, `desc="App crashed"`.
    Quoted(&'a str),
    /// Printed in double quotes with `"` and `\` backslashed and control characters as
    /// `\xNN`: a text holding such a byte. Pushed, it is the same as `Quoted` (the log
    /// finds out itself which texts need it).
    Escaped(&'a str),
    /// Printed as `3ms`; a number of milliseconds in JSON.
    Millis(u64),
    /// Printed bare; a number in JSON (`status`, `bytes`).
    Number(u64),
    /// Printed as `dyno=`; `null` in JSON (Heroku leaves unknown fields empty on errors).
    Empty,
}

/// A value as stored: texts as a range of [`RouterLog::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    Word(usize, usize),
    Quoted(usize, usize),
    Escaped(usize, usize),
    Millis(u64),
    Number(u64),
    Empty,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterLog {
    text: String,
    fields: Vec<(&'static str, Stored)>,
}

impl RouterLog {
    /// Room for `fields` fields whose texts add up to `text` bytes.
    pub fn with_capacity(fields: usize, text: usize) -> RouterLog {
        RouterLog {
            text: String::with_capacity(text),
            fields: Vec::with_capacity(fields),
        }
    }

    /// Appends a field.
    pub fn push(&mut self, key: &'static str, value: RouterValue<'_>) {
        let stored = match value {
            RouterValue::Word(s) => self.store_text(s, Stored::Word),
            RouterValue::Quoted(s) | RouterValue::Escaped(s) => self.store_text(s, Stored::Quoted),
            RouterValue::Millis(n) => Stored::Millis(n),
            RouterValue::Number(n) => Stored::Number(n),
            RouterValue::Empty => Stored::Empty,
        };
        self.fields.push((key, stored));
    }

    /// Stores `s` as is, as `plain` if its bytes allow it: quoted if any byte would split
    /// a bare word, escaped if any would end the quotes or the line.
    fn store_text(&mut self, s: &str, plain: fn(usize, usize) -> Stored) -> Stored {
        let found = special(s);
        let start = self.text.len();
        self.text.push_str(s);
        let end = self.text.len();
        if found & ESCAPE != 0 {
            Stored::Escaped(start, end)
        } else if found & QUOTE != 0 {
            Stored::Quoted(start, end)
        } else {
            plain(start, end)
        }
    }

    /// The fields in order.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, RouterValue<'_>)> {
        self.fields
            .iter()
            .map(|&(key, stored)| (key, self.value(stored)))
    }

    fn value(&self, stored: Stored) -> RouterValue<'_> {
        let text = |start: usize, end: usize| self.text.get(start..end).unwrap_or_default();
        match stored {
            Stored::Word(start, end) => RouterValue::Word(text(start, end)),
            Stored::Quoted(start, end) => RouterValue::Quoted(text(start, end)),
            Stored::Escaped(start, end) => RouterValue::Escaped(text(start, end)),
            Stored::Millis(n) => RouterValue::Millis(n),
            Stored::Number(n) => RouterValue::Number(n),
            Stored::Empty => RouterValue::Empty,
        }
    }
}

/// A byte that would end a quoted value or start a new line or field.
const ESCAPE: u8 = 1;
/// A byte that makes a bare word read as more than one field (escaped ones do too).
const QUOTE: u8 = 2;

/// What each byte needs: a table, because every line's texts are scanned byte by byte
/// (one lookup per byte instead of four comparisons).
const CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        if byte == b'"' || byte == b'\\' || byte.is_ascii_control() {
            class[b] = ESCAPE | QUOTE;
        } else if byte == b' ' {
            class[b] = QUOTE;
        }
        b += 1;
    }
    class
};

/// The union of [`ESCAPE`] and [`QUOTE`] over the bytes of `s`.
fn special(s: &str) -> u8 {
    s.bytes().fold(0, |found, b| found | CLASS[usize::from(b)])
}

/// `s` as the text formats print it inside quotes: `"` and `\` backslashed, control
/// characters as `\xNN`, so a reader gets the text back as one field on one line. Bytes
/// suffice: every byte of a multi-byte character is above ASCII, copied as it is.
pub(super) fn push_escaped(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b if b.is_ascii_control() => {
                // Writing into a Vec cannot fail.
                let _ = write!(out, "\\x{b:02x}");
            }
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_back_in_order_with_their_values() {
        let mut log = RouterLog::with_capacity(2, 8);
        log.push("at", RouterValue::Word("info"));
        log.push("path", RouterValue::Quoted("/a b"));
        log.push("dyno", RouterValue::Empty);
        log.push("connect", RouterValue::Millis(3));
        log.push("status", RouterValue::Number(200));
        let fields: Vec<_> = log.fields().collect();
        assert_eq!(
            fields,
            [
                ("at", RouterValue::Word("info")),
                ("path", RouterValue::Quoted("/a b")),
                ("dyno", RouterValue::Empty),
                ("connect", RouterValue::Millis(3)),
                ("status", RouterValue::Number(200)),
            ]
        );
    }

    #[test]
    fn client_text_is_kept_as_sent_and_marked_for_quotes_or_escapes() {
        let mut log = RouterLog::with_capacity(3, 64);
        log.push("host", RouterValue::Word("evil at=error code=H99"));
        log.push("fwd", RouterValue::Quoted("1.2.3.4\" status=200"));
        log.push("path", RouterValue::Quoted("/a\\b\tc"));
        log.push("request_id", RouterValue::Word("é\u{1}"));
        let fields: Vec<_> = log.fields().collect();
        assert_eq!(
            fields,
            [
                ("host", RouterValue::Quoted("evil at=error code=H99")),
                ("fwd", RouterValue::Escaped("1.2.3.4\" status=200")),
                ("path", RouterValue::Escaped("/a\\b\tc")),
                ("request_id", RouterValue::Escaped("é\u{1}")),
            ]
        );
    }

    #[test]
    fn escapes_are_backslashes_and_hex() {
        let mut out = Vec::new();
        push_escaped(&mut out, "a\"b\\c\u{1}\u{7f}é\n");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            r#"a\"b\\c\x01\x7fé\x0a"#
        );
    }

    #[test]
    fn plain_words_stay_bare() {
        let mut log = RouterLog::with_capacity(1, 16);
        log.push("host", RouterValue::Word("localhost:5006"));
        assert_eq!(
            log.fields().next(),
            Some(("host", RouterValue::Word("localhost:5006")))
        );
    }
}

/// Property tests (the repo's fuzzing): whatever a client sends as `host`, `path` or `fwd`,
/// the printed line reads back as the same keys with the same values, and the JSON event
/// as the same texts.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::output::format::{router_json, router_text};

    /// A logfmt reader as a log drain would use: `key=word` or `key="escaped text"`.
    fn read_line(line: &str) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        let mut rest = line;
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=').expect("a key ends at =");
            let (value, after) = match after.strip_prefix('"') {
                Some(quoted) => read_quoted(quoted),
                None => {
                    let (word, after) = after.split_once(' ').unwrap_or((after, ""));
                    (word.to_string(), after)
                }
            };
            fields.push((key.to_string(), value));
            rest = after.strip_prefix(' ').unwrap_or(after);
        }
        fields
    }

    /// The unescaped text up to the closing quote, and what follows it.
    fn read_quoted(text: &str) -> (String, &str) {
        let mut value = String::new();
        let mut chars = text.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return (value, &text[i + 1..]),
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('x') => {
                        let hex: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                        let byte = u8::from_str_radix(&hex, 16).expect("two hex digits");
                        value.push(char::from(byte));
                    }
                    Some(c) => value.push(c),
                    None => panic!("a line cannot end in a backslash"),
                },
                c => value.push(c),
            }
        }
        panic!("unterminated quote in {text:?}")
    }

    /// A line as the router makes it, with the client's texts.
    fn client_log(path: &str, host: &str, fwd: &str, status: u64) -> RouterLog {
        let mut log = RouterLog::default();
        log.push("at", RouterValue::Word("info"));
        log.push("method", RouterValue::Word("GET"));
        log.push("path", RouterValue::Quoted(path));
        log.push("host", RouterValue::Word(host));
        log.push("fwd", RouterValue::Quoted(fwd));
        log.push("dyno", RouterValue::Empty);
        log.push("status", RouterValue::Number(status));
        log
    }

    proptest! {
        #[test]
        fn client_values_read_back_as_the_same_fields(
            host in any::<String>(),
            path in any::<String>(),
            fwd in any::<String>(),
            status in any::<u64>(),
        ) {
            let log = client_log(&path, &host, &fwd, status);
            let status = status.to_string();
            let expected = [
                ("at", "info"),
                ("method", "GET"),
                ("path", path.as_str()),
                ("host", host.as_str()),
                ("fwd", fwd.as_str()),
                ("dyno", ""),
                ("status", status.as_str()),
            ];
            let line = router_text(&log);
            prop_assert!(!line.contains('\n'), "one line: {line:?}");
            let read = read_line(&line);
            let expected: Vec<(String, String)> =
                expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            prop_assert_eq!(read, expected);
        }

        #[test]
        fn client_values_read_back_from_the_json_event(
            host in any::<String>(),
            path in any::<String>(),
            fwd in any::<String>(),
        ) {
            let json = router_json(&client_log(&path, &host, &fwd, 200));
            let event: serde_json::Value = serde_json::from_str(&json).expect("one JSON object");
            prop_assert_eq!(&event["path"], path.as_str());
            prop_assert_eq!(&event["host"], host.as_str());
            prop_assert_eq!(&event["fwd"], fwd.as_str());
        }
    }
}
