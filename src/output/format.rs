//! Pure formatting of records into bytes: plain (foreman's `14:03:07 web.1  | line`),
//! Heroku Logplex (`2026-11-22T14:03:07.123456+00:00 app[web.1]: line`) and JSON (one
//! object per line, every one with `"v"` and `"event"`: docs/json.md is the contract, the
//! golden tests below pin it). Colors and padding live here; writing to stdout does not.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use nu_ansi_term::{Color, Style};
use serde::Serialize;

use crate::options::LogFormat;

use super::lines::{clean_line, needs_cleaning, split_lines, split_long};
use super::router_log::push_escaped;
use super::{
    Level, Marker, Record, RouterLog, RouterValue, Source, SourceKind, StateChange, Stream,
};

/// The JSON events' schema version, `"v"` on every object. Adding an event or a key keeps
/// it; renaming or removing one, or changing a value's meaning, bumps it.
pub const JSON_VERSION: u32 = 1;

/// Resolved output options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputStyle {
    pub format: LogFormat,
    pub json: bool,
    pub color: bool,
    pub timestamps: bool,
}

/// foreman's palette, in order of the process types in the Procfile.
const PALETTE: [Color; 12] = [
    Color::Cyan,
    Color::Yellow,
    Color::Green,
    Color::Purple,
    Color::Red,
    Color::Blue,
    Color::LightCyan,
    Color::LightYellow,
    Color::LightGreen,
    Color::LightPurple,
    Color::LightRed,
    Color::LightBlue,
];

fn style_of(kind: SourceKind) -> Style {
    match kind {
        SourceKind::App { type_index } => PALETTE[type_index % PALETTE.len()].normal(),
        SourceKind::Hlocal => Style::new().bold(),
        SourceKind::Router => Color::DarkGray.bold(),
    }
}

const HLOCAL: &str = "hlocal";
const ROUTER: &str = "router";

/// A second's worth of formatted clock, recomputed when the second changes.
#[derive(Debug, Default)]
struct Clock {
    second: i64,
    local: String,
    utc: String,
}

/// Formats records; keeps the per-source prefixes and the clock cached between calls, so
/// formatting a record allocates nothing (a million lines cost a few hundred records).
#[derive(Debug)]
pub struct Formatter {
    style: OutputStyle,
    width: usize,
    tz: TimeZone,
    clock: Clock,
    now: Timestamp,
    /// Per channel (`app`, `heroku`), the prefix of each name seen.
    prefixes: [HashMap<Box<str>, Prefix>; 2],
    /// A chunk's line prefix, built once per chunk and copied before every line.
    line_prefix: Vec<u8>,
    /// The current line with its carriage returns and escape sequences resolved.
    cleaned: Vec<u8>,
    /// The JSON `exit` event was written: it stays the last object.
    exited: bool,
}

/// Logplex's two sources: `app[web.1]` for a process's lines, `heroku[…]` for the
/// platform's (lifecycle, router). The plain format does not show it.
#[derive(Debug, Clone, Copy)]
enum Channel {
    App,
    Heroku,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::App => "app",
            Channel::Heroku => "heroku",
        }
    }
}

/// The constant bytes of a plain/heroku line for one source, around the timestamp.
#[derive(Debug, Clone)]
struct Prefix {
    before_time: Vec<u8>,
    after_time: Vec<u8>,
}

impl Formatter {
    /// `width` is the longest name known at start; longer names found later widen it.
    pub fn new(style: OutputStyle, width: usize, tz: TimeZone) -> Formatter {
        Formatter {
            style,
            width: width.max(HLOCAL.len()),
            tz,
            clock: Clock {
                second: i64::MIN,
                ..Clock::default()
            },
            now: Timestamp::UNIX_EPOCH,
            prefixes: [HashMap::new(), HashMap::new()],
            line_prefix: Vec::new(),
            cleaned: Vec::new(),
            exited: false,
        }
    }

    /// Appends the formatted `record` to `out`, stamped `now`.
    pub fn write(&mut self, record: &Record, now: Timestamp, out: &mut Vec<u8>) {
        if self.exited {
            return;
        }
        self.tick(now);
        match record {
            Record::Output {
                source,
                stream,
                lines,
            } => self.write_output(source, *stream, lines, out),
            Record::Message { level, about, text } => {
                self.write_message(*level, about.as_deref(), text, out);
            }
            Record::State(change) => self.write_state(change, out),
            Record::Router(logs) => self.write_router(logs, out),
            Record::Marker(marker) => self.write_marker(marker, out),
            Record::Exit { code } => self.write_exit(*code, out),
        }
    }

    fn tick(&mut self, now: Timestamp) {
        self.now = now;
        let second = now.as_second();
        if second != self.clock.second {
            self.clock.second = second;
            self.clock.local = now
                .to_zoned_datetime(self.tz.clone())
                .strftime("%H:%M:%S")
                .to_string();
            self.clock.utc = now
                .to_zoned_datetime(TimeZone::UTC)
                .strftime("%Y-%m-%dT%H:%M:%S")
                .to_string();
        }
    }

    /// RFC 3339 in UTC with microseconds, as Logplex prints.
    fn rfc3339(&self) -> String {
        let mut ts = Vec::with_capacity(32);
        self.push_rfc3339(&mut ts);
        String::from_utf8(ts).unwrap_or_default()
    }

    fn push_rfc3339(&self, out: &mut Vec<u8>) {
        let micros = self.now.subsec_microsecond();
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{}.{micros:06}+00:00", self.clock.utc);
    }

    /// A chunk of whole lines; a line holding `\r` or `ESC` is cleaned first (only those
    /// are copied: the common line costs one memchr over the chunk).
    fn write_output(
        &mut self,
        source: &Arc<Source>,
        stream: Stream,
        lines: &[u8],
        out: &mut Vec<u8>,
    ) {
        let lines = lines.strip_suffix(b"\n").unwrap_or(lines);
        let json = self.style.json;
        let mut prefix = std::mem::take(&mut self.line_prefix);
        prefix.clear();
        if json {
            let ts = self.rfc3339();
            json_log_prefix(&mut prefix, &ts, &source.name, stream.name());
        } else {
            self.push_prefix(&source.name, source.kind, Channel::App, &mut prefix);
        }
        // One check for the whole chunk; line by line only when it has such bytes.
        let valid = std::str::from_utf8(lines).is_ok();
        let dirty = needs_cleaning(lines);
        let keep_colors = self.style.color && !json;
        let mut cleaned = std::mem::take(&mut self.cleaned);
        for line in split_lines(lines) {
            let line = if dirty && needs_cleaning(line) {
                cleaned.clear();
                clean_line(line, keep_colors, &mut cleaned);
                cleaned.as_slice()
            } else {
                line
            };
            for piece in split_long(line) {
                out.extend_from_slice(&prefix);
                if json {
                    push_json_string(out, piece, valid);
                    out.extend_from_slice(b"}\n");
                    continue;
                }
                if valid {
                    out.extend_from_slice(piece);
                } else {
                    push_lossy(out, piece);
                }
                out.push(b'\n');
            }
        }
        self.cleaned = cleaned;
        self.line_prefix = prefix;
    }

    /// A line of hlocal's own: `hlocal | web.1: text` / `heroku[web.1]: text`, or a JSON
    /// `message` event.
    fn write_message(&mut self, level: Level, about: Option<&str>, text: &str, out: &mut Vec<u8>) {
        if self.style.json {
            let ts = self.rfc3339();
            let message = MessageJson {
                v: JSON_VERSION,
                ts: &ts,
                event: "message",
                level: level.name(),
                name: about,
                text,
            };
            return json_line(out, &message);
        }
        let line = match about {
            Some(name) if self.style.format == LogFormat::Plain => format!("{name}: {text}"),
            _ => text.to_string(),
        };
        self.write_system_line(about.unwrap_or(HLOCAL), SourceKind::Hlocal, &line, out);
    }

    fn write_state(&mut self, change: &StateChange, out: &mut Vec<u8>) {
        if self.style.json {
            json_line(out, &StateJson::new(&self.rfc3339(), change));
        } else {
            self.write_message(Level::Info, Some(&change.name), &change.text, out);
        }
    }

    /// `hlocal | ready: URL` in the plain layout whatever the format (only the clock
    /// follows it), and never colored, so one pattern matches it everywhere.
    fn write_marker(&mut self, marker: &Marker, out: &mut Vec<u8>) {
        if self.style.json {
            let ts = self.rfc3339();
            return match marker {
                Marker::Ready { url } => json_line(out, &ReadyJson::new(&ts, url.as_deref())),
                Marker::Reloading { reason } | Marker::Error { reason } => {
                    json_line(out, &ReasonJson::new(&ts, marker.kind(), reason));
                }
            };
        }
        if self.push_clock(out) {
            out.push(b' ');
        }
        // Writing into a Vec cannot fail.
        let _ = writeln!(
            out,
            "{HLOCAL:<width$} | {}: {}",
            marker.kind(),
            marker.text(),
            width = self.width
        );
    }

    /// The JSON `exit` event, after which nothing more is written; text formats print
    /// nothing for it.
    fn write_exit(&mut self, code: i32, out: &mut Vec<u8>) {
        if self.style.json {
            let ts = self.rfc3339();
            json_line(out, &ExitJson::new(&ts, code));
            self.exited = true;
        }
    }

    /// One line per request, written straight into the batch; the lines of one record
    /// share a timestamp, so their prefix is made once.
    fn write_router(&mut self, logs: &[RouterLog], out: &mut Vec<u8>) {
        if self.style.json {
            let ts = self.rfc3339();
            for log in logs {
                json_router(out, &ts, log);
            }
            return;
        }
        let mut prefix = std::mem::take(&mut self.line_prefix);
        prefix.clear();
        self.push_prefix(ROUTER, SourceKind::Router, Channel::Heroku, &mut prefix);
        for log in logs {
            out.extend_from_slice(&prefix);
            push_router_fields(log, out);
            out.push(b'\n');
        }
        self.line_prefix = prefix;
    }

    /// hlocal's lines (lifecycle, ports, …) in the text formats.
    fn write_system_line(
        &mut self,
        subject: &str,
        kind: SourceKind,
        line: &str,
        out: &mut Vec<u8>,
    ) {
        self.push_prefix(subject, kind, Channel::Heroku, out);
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }

    /// Appends a line's prefix and clock. The plain prefix names the speaker (`hlocal`,
    /// `router`, `web.1`), the Heroku one the subject (`heroku[web.1]`, `heroku[router]`).
    fn push_prefix(
        &mut self,
        subject: &str,
        kind: SourceKind,
        channel: Channel,
        out: &mut Vec<u8>,
    ) {
        let name = match (self.style.format, kind) {
            (LogFormat::Plain, SourceKind::Router) => ROUTER,
            (LogFormat::Plain, SourceKind::Hlocal) => HLOCAL,
            _ => subject,
        };
        if name.len() > self.width {
            self.width = name.len();
            self.prefixes.iter_mut().for_each(HashMap::clear);
        }
        if !self.prefixes[channel as usize].contains_key(name) {
            let prefix = self.build_prefix(name, kind, channel);
            self.prefixes[channel as usize].insert(name.into(), prefix);
        }
        let prefix = &self.prefixes[channel as usize][name];
        out.extend_from_slice(&prefix.before_time);
        self.push_clock(out);
        out.extend_from_slice(&prefix.after_time);
    }

    /// The format's clock, if it shows one; says whether it did.
    fn push_clock(&self, out: &mut Vec<u8>) -> bool {
        match (self.style.format, self.style.timestamps) {
            (LogFormat::Heroku, _) => self.push_rfc3339(out),
            (LogFormat::Plain, true) => out.extend_from_slice(self.clock.local.as_bytes()),
            (LogFormat::Plain, false) => return false,
        }
        true
    }

    fn build_prefix(&self, name: &str, kind: SourceKind, channel: Channel) -> Prefix {
        let (color_on, color_off) = if self.style.color {
            let style = style_of(kind);
            (style.prefix().to_string(), style.suffix().to_string())
        } else {
            (String::new(), String::new())
        };
        let after = match self.style.format {
            LogFormat::Plain => {
                let gap = if self.style.timestamps { " " } else { "" };
                format!("{gap}{name:<width$} |{color_off} ", width = self.width)
            }
            LogFormat::Heroku => format!(" {}[{name}]:{color_off} ", channel.name()),
        };
        Prefix {
            before_time: color_on.into_bytes(),
            after_time: after.into_bytes(),
        }
    }
}

/// Valid UTF-8 is copied as is; invalid bytes become U+FFFD (lossy, not dropped).
fn push_lossy(out: &mut Vec<u8>, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(_) => out.extend_from_slice(bytes),
        Err(_) => out.extend_from_slice(String::from_utf8_lossy(bytes).as_bytes()),
    }
}

/// `at=info method=GET path="/" … connect=0ms … status=200`, as the plain format prints
/// the fields (the router's tests compare with Heroku's lines through it).
#[cfg(test)]
pub(crate) fn router_text(log: &RouterLog) -> String {
    let mut text = Vec::with_capacity(256);
    push_router_fields(log, &mut text);
    String::from_utf8_lossy(&text).into_owned()
}

/// The router's JSON event for `log` (with an empty `ts`), as `--json` prints it.
#[cfg(test)]
pub(crate) fn router_json(log: &RouterLog) -> String {
    let mut json = Vec::with_capacity(256);
    json_router(&mut json, "", log);
    String::from_utf8_lossy(&json).into_owned()
}

fn push_router_fields(log: &RouterLog, out: &mut Vec<u8>) {
    let mut digits = itoa::Buffer::new();
    for (i, (key, value)) in log.fields().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        match value {
            RouterValue::Word(w) => out.extend_from_slice(w.as_bytes()),
            RouterValue::Quoted(q) => {
                out.push(b'"');
                out.extend_from_slice(q.as_bytes());
                out.push(b'"');
            }
            RouterValue::Escaped(e) => {
                out.push(b'"');
                push_escaped(out, e);
                out.push(b'"');
            }
            RouterValue::Millis(ms) => {
                out.extend_from_slice(digits.format(ms).as_bytes());
                out.extend_from_slice(b"ms");
            }
            RouterValue::Number(n) => out.extend_from_slice(digits.format(n).as_bytes()),
            RouterValue::Empty => {}
        }
    }
}

/// `{"v","ts","event":"log","name","stream","line"}`; `line` last, so the fast path can
/// write the rest once per chunk.
#[derive(Serialize)]
struct LogJson<'a> {
    v: u32,
    ts: &'a str,
    event: &'static str,
    name: &'a str,
    stream: Option<&'a str>,
    line: &'a str,
}

#[derive(Serialize)]
struct MessageJson<'a> {
    v: u32,
    ts: &'a str,
    event: &'static str,
    level: &'static str,
    /// The instance the message is about, if any.
    name: Option<&'a str>,
    text: &'a str,
}

#[derive(Serialize)]
struct StateJson<'a> {
    v: u32,
    ts: &'a str,
    event: &'static str,
    name: &'a str,
    from: Option<&'static str>,
    to: &'static str,
    pid: Option<u32>,
    port: Option<u16>,
    code: Option<i32>,
}

impl<'a> StateJson<'a> {
    fn new(ts: &'a str, c: &'a StateChange) -> Self {
        StateJson {
            v: JSON_VERSION,
            ts,
            event: "state",
            name: &c.name,
            from: c.from,
            to: c.to,
            pid: c.pid,
            port: c.port,
            code: c.code,
        }
    }
}

#[derive(Serialize)]
struct ReadyJson<'a> {
    v: u32,
    ts: &'a str,
    event: &'static str,
    url: Option<&'a str>,
}

impl<'a> ReadyJson<'a> {
    fn new(ts: &'a str, url: Option<&'a str>) -> Self {
        ReadyJson {
            v: JSON_VERSION,
            ts,
            event: "ready",
            url,
        }
    }
}

/// The `reloading` and `error` markers.
#[derive(Serialize)]
struct ReasonJson<'a> {
    v: u32,
    ts: &'a str,
    event: &'static str,
    reason: &'a str,
}

impl<'a> ReasonJson<'a> {
    fn new(ts: &'a str, event: &'static str, reason: &'a str) -> Self {
        ReasonJson {
            v: JSON_VERSION,
            ts,
            event,
            reason,
        }
    }
}

#[derive(Serialize)]
struct ExitJson<'a> {
    v: u32,
    ts: &'a str,
    event: &'static str,
    code: i32,
}

impl<'a> ExitJson<'a> {
    fn new(ts: &'a str, code: i32) -> Self {
        ExitJson {
            v: JSON_VERSION,
            ts,
            event: "exit",
            code,
        }
    }
}

/// A log object up to its `line` value: `{"v":1,"ts":…,"event":"log","name":…,
/// "stream":…,"line":`, made once per chunk of lines.
fn json_log_prefix(out: &mut Vec<u8>, ts: &str, name: &str, stream: Option<&str>) {
    let empty = LogJson {
        v: JSON_VERSION,
        ts,
        event: "log",
        name,
        stream,
        line: "",
    };
    json_line(out, &empty);
    // `"line":""}\n` → `"line":`
    out.truncate(out.len() - "\"\"}\n".len());
}

/// `text` as a JSON string. Most log lines are valid UTF-8 with nothing to escape: those
/// are copied as they are; the rest go through serde_json (invalid UTF-8 lossily).
fn push_json_string(out: &mut Vec<u8>, text: &[u8], valid_utf8: bool) {
    let plain = valid_utf8 && !text.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(text);
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(text));
    }
}

fn json_line(out: &mut Vec<u8>, value: &impl Serialize) {
    // Serializing these plain structs into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.push(b'\n');
}

/// `{"v":1,"ts":…,"event":"router","at":"info",…}`: the router line's fields as keys, in
/// the line's order, their real texts as values, JSON-escaped. Written field by field: a
/// `serde_json::Map` cost two allocations per field, for every request.
fn json_router(out: &mut Vec<u8>, ts: &str, log: &RouterLog) {
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(b"{\"v\":");
    out.extend_from_slice(digits.format(JSON_VERSION).as_bytes());
    out.extend_from_slice(b",\"ts\":");
    push_json_string(out, ts.as_bytes(), true);
    out.extend_from_slice(b",\"event\":\"router\"");
    for (key, value) in log.fields() {
        out.push(b',');
        push_json_string(out, key.as_bytes(), true);
        out.push(b':');
        match value {
            RouterValue::Word(s) | RouterValue::Quoted(s) | RouterValue::Escaped(s) => {
                push_json_string(out, s.as_bytes(), true);
            }
            RouterValue::Millis(n) | RouterValue::Number(n) => {
                out.extend_from_slice(digits.format(n).as_bytes());
            }
            RouterValue::Empty => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Source;

    fn style(format: LogFormat, json: bool, timestamps: bool) -> OutputStyle {
        OutputStyle {
            format,
            json,
            color: false,
            timestamps,
        }
    }

    fn at() -> Timestamp {
        "2026-11-22T14:03:07.123456Z".parse().expect("timestamp")
    }

    fn render(style: OutputStyle, width: usize, record: &Record) -> String {
        let mut f = Formatter::new(style, width, TimeZone::UTC);
        let mut out = Vec::new();
        f.write(record, at(), &mut out);
        String::from_utf8(out).expect("utf8")
    }

    fn output(text: &str) -> Record {
        Record::Output {
            source: Source::app("web.1", 0),
            stream: Stream::Stdout,
            lines: bytes::Bytes::from(text.to_string()),
        }
    }

    #[test]
    fn plain_lines_are_timestamped_padded_and_prefixed() {
        let got = render(
            style(LogFormat::Plain, false, true),
            9,
            &output("GET / 200\nsecond\n"),
        );
        assert_eq!(
            got,
            "14:03:07 web.1     | GET / 200\n14:03:07 web.1     | second\n"
        );
    }

    #[test]
    fn no_timestamp_drops_the_clock() {
        let got = render(style(LogFormat::Plain, false, false), 6, &output("x\n"));
        assert_eq!(got, "web.1  | x\n");
    }

    #[test]
    fn heroku_format_uses_logplex_prefixes() {
        let s = style(LogFormat::Heroku, false, true);
        assert_eq!(
            render(s.clone(), 6, &output("GET / 200\n")),
            "2026-11-22T14:03:07.123456+00:00 app[web.1]: GET / 200\n"
        );
        let msg = Record::Message {
            level: Level::Error,
            about: Some("web.1".into()),
            text: "Error R12".into(),
        };
        assert_eq!(
            render(s, 6, &msg),
            "2026-11-22T14:03:07.123456+00:00 heroku[web.1]: Error R12\n"
        );
    }

    #[test]
    fn state_changes_read_as_heroku_lifecycle_lines() {
        let change = StateChange {
            name: "web.1".into(),
            from: Some("starting"),
            to: "up",
            pid: Some(42),
            port: Some(5007),
            code: None,
            text: "State changed from starting to up".into(),
        };
        let record = Record::State(change);
        let plain = render(style(LogFormat::Plain, false, false), 6, &record);
        assert_eq!(plain, "hlocal | web.1: State changed from starting to up\n");
        let heroku = render(style(LogFormat::Heroku, false, true), 6, &record);
        assert_eq!(
            heroku,
            "2026-11-22T14:03:07.123456+00:00 heroku[web.1]: State changed from starting to up\n"
        );
    }

    #[test]
    fn messages_about_an_instance_name_it_after_hlocal() {
        let msg = Record::Message {
            level: Level::Info,
            about: Some("web.1".into()),
            text: "State changed from starting to up".into(),
        };
        let got = render(style(LogFormat::Plain, false, false), 6, &msg);
        assert_eq!(got, "hlocal | web.1: State changed from starting to up\n");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let record = Record::Output {
            source: Source::app("w.1", 0),
            stream: Stream::Stderr,
            lines: bytes::Bytes::from_static(b"a\xffb\n"),
        };
        let got = render(style(LogFormat::Plain, false, false), 3, &record);
        assert_eq!(got, "w.1    | a\u{fffd}b\n");
    }

    // Golden JSON: each event exactly as docs/json.md shows it. A failure here is a
    // change of the documented schema: update the docs and, unless it only adds, bump
    // JSON_VERSION.

    fn json(record: &Record) -> String {
        render(style(LogFormat::Plain, true, true), 6, record)
    }

    #[test]
    fn json_log_event() {
        assert_eq!(
            json(&output("hi \"there\"\nplain\n")),
            concat!(
                r#"{"v":1,"ts":"2026-11-22T14:03:07.123456+00:00","event":"log","name":"web.1","stream":"stdout","line":"hi \"there\""}"#,
                "\n",
                r#"{"v":1,"ts":"2026-11-22T14:03:07.123456+00:00","event":"log","name":"web.1","stream":"stdout","line":"plain"}"#,
                "\n",
            )
        );
    }

    #[test]
    fn json_message_event() {
        let record = Record::Message {
            level: Level::Error,
            about: Some("web.1".into()),
            text: "Error R12 (Exit timeout)".into(),
        };
        assert_eq!(
            json(&record),
            r#"{"v":1,"ts":"2026-11-22T14:03:07.123456+00:00","event":"message","level":"error","name":"web.1","text":"Error R12 (Exit timeout)"}"#.to_owned() + "\n"
        );
        let record = Record::Message {
            level: Level::Info,
            about: None,
            text: "ports: web.1=5000".into(),
        };
        assert_eq!(
            json(&record),
            r#"{"v":1,"ts":"2026-11-22T14:03:07.123456+00:00","event":"message","level":"info","name":null,"text":"ports: web.1=5000"}"#.to_owned() + "\n"
        );
    }

    #[test]
    fn json_marker_events() {
        let ready = Record::Marker(Marker::Ready {
            url: Some("http://localhost:5006".into()),
        });
        let reloading = Record::Marker(Marker::Reloading {
            reason: "app.py changed".into(),
        });
        let error = Record::Marker(Marker::Error {
            reason: "web.1 crashed with status 1".into(),
        });
        let got: String = [ready, reloading, error].iter().map(json).collect();
        assert_eq!(
            got,
            concat!(
                r#"{"v":1,"ts":"2026-11-22T14:03:07.123456+00:00","event":"ready","url":"http://localhost:5006"}"#,
                "\n",
                r#"{"v":1,"ts":"2026-11-22T14:03:07.123456+00:00","event":"reloading","reason":"app.py changed"}"#,
                "\n",
                r#"{"v":1,"ts":"2026-11-22T14:03:07.123456+00:00","event":"error","reason":"web.1 crashed with status 1"}"#,
                "\n",
            )
        );
    }

    #[test]
    fn json_exit_event_is_the_last_object() {
        let mut f = Formatter::new(style(LogFormat::Plain, true, true), 6, TimeZone::UTC);
        let mut out = Vec::new();
        f.write(&Record::Exit { code: 3 }, at(), &mut out);
        f.write(&output("late\n"), at(), &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            r#"{"v":1,"ts":"2026-11-22T14:03:07.123456+00:00","event":"exit","code":3}"#.to_owned()
                + "\n"
        );
    }

    #[test]
    fn text_formats_print_nothing_for_exit() {
        let got = render(
            style(LogFormat::Plain, false, true),
            6,
            &Record::Exit { code: 0 },
        );
        assert_eq!(got, "");
    }

    #[test]
    fn json_state_event_has_every_key() {
        let change = StateChange {
            name: "web.1".into(),
            from: Some("up"),
            to: "crashed",
            pid: Some(42),
            port: Some(5007),
            code: Some(1),
            text: "State changed from up to crashed".into(),
        };
        let got = render(
            style(LogFormat::Plain, true, true),
            6,
            &Record::State(change),
        );
        assert_eq!(
            got.trim(),
            r#"{"v":1,"ts":"2026-11-22T14:03:07.123456+00:00","event":"state","name":"web.1","from":"up","to":"crashed","pid":42,"port":5007,"code":1}"#
        );
    }

    fn router_log() -> RouterLog {
        let mut log = RouterLog::default();
        log.push("at", RouterValue::Word("info"));
        log.push("path", RouterValue::Quoted("/"));
        log.push("dyno", RouterValue::Empty);
        log.push("connect", RouterValue::Millis(0));
        log.push("status", RouterValue::Number(200));
        log
    }

    #[test]
    fn router_lines_render_heroku_fields() {
        let got = render(
            style(LogFormat::Plain, false, false),
            6,
            &Record::Router(vec![router_log()]),
        );
        assert_eq!(
            got,
            "router | at=info path=\"/\" dyno= connect=0ms status=200\n"
        );
    }

    #[test]
    fn router_json_event_carries_the_fields() {
        let got = render(
            style(LogFormat::Plain, true, false),
            6,
            &Record::Router(vec![router_log()]),
        );
        assert_eq!(
            got.trim(),
            r#"{"v":1,"ts":"2026-11-22T14:03:07.123456+00:00","event":"router","at":"info","path":"/","dyno":null,"connect":0,"status":200}"#
        );
    }

    /// A client's texts: a quote, a backslash, a control character, spaces, non-ASCII.
    fn client_router_log() -> Record {
        let mut log = RouterLog::default();
        log.push("path", RouterValue::Quoted("/a\"b\\c"));
        log.push("host", RouterValue::Word("evil at=error é"));
        log.push("fwd", RouterValue::Quoted("1.2.3.4\u{1}"));
        Record::Router(vec![log])
    }

    #[test]
    fn router_text_formats_escape_client_texts() {
        let fields = r#"path="/a\"b\\c" host="evil at=error é" fwd="1.2.3.4\x01""#;
        let plain = render(
            style(LogFormat::Plain, false, false),
            6,
            &client_router_log(),
        );
        assert_eq!(plain, format!("router | {fields}\n"));
        let heroku = render(
            style(LogFormat::Heroku, false, true),
            6,
            &client_router_log(),
        );
        assert_eq!(
            heroku,
            format!("2026-11-22T14:03:07.123456+00:00 heroku[router]: {fields}\n")
        );
    }

    #[test]
    fn router_json_event_carries_the_real_texts() {
        let got = render(
            style(LogFormat::Plain, true, false),
            6,
            &client_router_log(),
        );
        assert_eq!(
            got.trim(),
            r#"{"v":1,"ts":"2026-11-22T14:03:07.123456+00:00","event":"router","path":"/a\"b\\c","host":"evil at=error é","fwd":"1.2.3.4\u0001"}"#
        );
        let event: serde_json::Value = serde_json::from_str(&got).expect("one JSON object");
        assert_eq!(event["path"], "/a\"b\\c");
        assert_eq!(event["host"], "evil at=error é");
        assert_eq!(event["fwd"], "1.2.3.4\u{1}");
    }

    fn markers() -> [Record; 3] {
        [
            Record::Marker(Marker::Ready {
                url: Some("http://localhost:5006".into()),
            }),
            Record::Marker(Marker::Reloading {
                reason: "app.py changed".into(),
            }),
            Record::Marker(Marker::Error {
                reason: "web.1 crashed with status 1".into(),
            }),
        ]
    }

    fn render_all(style: OutputStyle, records: &[Record]) -> String {
        records
            .iter()
            .map(|r| render(style.clone(), 8, r))
            .collect()
    }

    #[test]
    fn markers_are_padded_like_every_hlocal_line() {
        let got = render_all(style(LogFormat::Plain, false, true), &markers());
        assert_eq!(
            got,
            "14:03:07 hlocal   | ready: http://localhost:5006\n\
             14:03:07 hlocal   | reloading: app.py changed\n\
             14:03:07 hlocal   | error: web.1 crashed with status 1\n"
        );
    }

    #[test]
    fn markers_are_never_colored() {
        let mut s = style(LogFormat::Plain, false, false);
        s.color = true;
        let got = render_all(s, &markers());
        assert!(!got.contains('\x1b'), "{got:?}");
        assert!(got.starts_with("hlocal   | ready: "), "{got:?}");
    }

    #[test]
    fn markers_keep_the_plain_layout_in_the_heroku_format() {
        let got = render_all(style(LogFormat::Heroku, false, true), &markers());
        assert_eq!(
            got.lines().next(),
            Some("2026-11-22T14:03:07.123456+00:00 hlocal   | ready: http://localhost:5006")
        );
    }

    #[test]
    fn colors_wrap_the_prefix_only() {
        let mut s = style(LogFormat::Plain, false, false);
        s.color = true;
        let got = render(s, 5, &output("x\n"));
        assert_eq!(got, "\x1b[36mweb.1  |\x1b[0m x\n");
    }
}
