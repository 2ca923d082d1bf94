//! The control protocol: newline-delimited JSON, one request per line, one answer per
//! request (and, for `subscribe` and `logs --follow`, a stream of `--json` events after
//! the answer). Documented for editor authors in `docs/control.md`; this file is the
//! truth the document follows.
//!
//! ```text
//! → {"v":1,"id":1,"cmd":"ps"}
//! ← {"v":1,"id":1,"ok":true,"result":{…}}
//! ← {"v":1,"id":2,"ok":false,"error":{"kind":"unknown_name","message":"…","known":["web.1"]}}
//! ```
//!
//! Parsing is pure and never fails to produce an answer: a line that is not JSON, not an
//! object, of another version or an unknown command gets an error answer that echoes the
//! request's `id` when one could be read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::options::LogFormat;
use crate::output::OutputStyle;

/// The protocol version this hlocal speaks. A request with another `v` is refused with
/// `unsupported_version`; a request without `v` is taken as this version.
pub const VERSION: u32 = 1;

/// The longest request line a server reads (1 MiB): longer ones are answered with
/// `too_large` and the connection is closed, since the rest of the line cannot be
/// skipped without reading it.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Who is serving: pid, app root, version, router URL. Used to name a live hlocal.
    Hello,
    /// Every instance with its state.
    Ps,
    /// Restart the named instances or types; `names` left out: all (an empty list is
    /// refused, see [`empty_selection`]).
    Restart {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        names: Vec<String>,
    },
    /// Stop the named instances or types (they stay `down`); `names` left out: shut the
    /// app down.
    Stop {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        names: Vec<String>,
    },
    /// Start named instances or types that were stopped.
    Start { names: Vec<String> },
    /// Change the formation live: `{"web":3,"worker":0}`.
    Scale { formation: BTreeMap<String, usize> },
    /// The last `lines` kept lines of the named instances (none: all), then, with
    /// `follow`, every new one as it is printed.
    Logs {
        #[serde(default)]
        names: Vec<String>,
        #[serde(default = "default_log_lines")]
        lines: usize,
        #[serde(default)]
        follow: bool,
        #[serde(flatten)]
        style: LogStyle,
    },
    /// Answer once the app is ready (`{"ready":true,"url":…}`) or cannot become ready
    /// (an error answer of kind `failed`).
    Wait,
    /// Stream every `--json` event from now on.
    Subscribe,
    /// Connect to a `tty` instance's terminal: after the answer the connection carries
    /// raw bytes both ways (keystrokes in, the terminal's output out) until either side
    /// closes it. `rows`/`cols`: the client's window size.
    Attach {
        name: String,
        #[serde(flatten)]
        size: Option<TerminalSize>,
    },
    /// The attached client's window changed size.
    Resize {
        name: String,
        #[serde(flatten)]
        size: TerminalSize,
    },
}

/// A terminal's size in character cells, as `attach` and `resize` carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct TerminalSize {
    pub rows: u16,
    pub cols: u16,
}

/// How `logs` lines are formatted: as `hlocal start` would print them with these
/// options. `format` is `plain`, `heroku` or `json` (the `--json` events).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct LogStyle {
    pub format: StyleFormat,
    pub color: bool,
    pub timestamps: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StyleFormat {
    #[default]
    Plain,
    Heroku,
    Json,
}

impl Default for LogStyle {
    fn default() -> LogStyle {
        LogStyle {
            format: StyleFormat::Plain,
            color: false,
            timestamps: true,
        }
    }
}

impl LogStyle {
    /// The `--json` events, as `subscribe` streams them.
    pub fn json() -> LogStyle {
        LogStyle {
            format: StyleFormat::Json,
            ..LogStyle::default()
        }
    }

    pub fn output(&self) -> OutputStyle {
        OutputStyle {
            format: match self.format {
                StyleFormat::Heroku => LogFormat::Heroku,
                StyleFormat::Plain | StyleFormat::Json => LogFormat::Plain,
            },
            json: self.format == StyleFormat::Json,
            color: self.color && self.format != StyleFormat::Json,
            timestamps: self.timestamps,
        }
    }
}

/// `hlocal logs` without `-n`.
pub const DEFAULT_LOG_LINES: usize = 100;

fn default_log_lines() -> usize {
    DEFAULT_LOG_LINES
}

/// A parsed request: its `id` (any JSON value, echoed back) and what it asks.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: Value,
    pub command: Command,
}

/// Why a request was refused; the `kind` an answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Not JSON, not an object, or fields of the wrong shape.
    BadRequest,
    /// A `cmd` this hlocal does not know.
    UnknownCommand,
    /// A `v` other than [`VERSION`].
    UnsupportedVersion,
    /// A line over [`MAX_REQUEST_BYTES`].
    TooLarge,
    /// A NAME that is neither an instance nor a type; `known` lists the valid ones.
    UnknownName,
    /// A valid request the app's state does not allow (`scale release=1`, a type count
    /// over the limit).
    Invalid,
    /// `wait`: the app cannot become ready (release failed, a crash or R10 before ready).
    Failed,
    /// The app is shutting down.
    ShuttingDown,
}

/// The error half of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub kind: ErrorKind,
    pub message: String,
    /// For `unknown_name`: every valid instance and type name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known: Vec<String>,
}

impl Problem {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Problem {
        Problem {
            kind,
            message: message.into(),
            known: Vec::new(),
        }
    }
}

/// One answer line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub v: u32,
    pub id: Value,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

impl Answer {
    pub fn success(id: Value, result: Value) -> Answer {
        Answer {
            v: VERSION,
            id,
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    pub fn failure(id: Value, problem: Problem) -> Answer {
        Answer {
            v: VERSION,
            id,
            ok: false,
            result: None,
            error: Some(problem),
        }
    }

    /// The answer as one line, `\n` included.
    pub fn to_line(&self) -> Vec<u8> {
        // Serializing these types cannot fail: every map key is a string.
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// Reads one request line (without its `\n`). `Err` is the answer to send back.
pub fn parse_request(line: &[u8]) -> Result<Request, Box<Answer>> {
    if line.len() > MAX_REQUEST_BYTES {
        let message = format!("a request is at most {MAX_REQUEST_BYTES} bytes");
        return Err(refused(Value::Null, ErrorKind::TooLarge, message));
    }
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| refused(Value::Null, ErrorKind::BadRequest, format!("not JSON: {e}")))?;
    let Value::Object(object) = value else {
        let message = "a request is a JSON object: {\"v\":1,\"id\":1,\"cmd\":\"ps\"}";
        return Err(refused(Value::Null, ErrorKind::BadRequest, message.into()));
    };
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    match object.get("v") {
        None => {}
        Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
        Some(v) => {
            let message =
                format!("protocol version {v} is not supported; this hlocal speaks {VERSION}");
            return Err(refused(id, ErrorKind::UnsupportedVersion, message));
        }
    }
    let cmd = match object.get("cmd") {
        Some(Value::String(cmd)) => cmd.clone(),
        _ => return Err(refused(id, ErrorKind::BadRequest, "missing \"cmd\"".into())),
    };
    if !KNOWN_COMMANDS.contains(&cmd.as_str()) {
        let known = KNOWN_COMMANDS.join(", ");
        let message = format!("unknown command \"{cmd}\"; known: {known}");
        return Err(refused(id, ErrorKind::UnknownCommand, message));
    }
    if let Some(message) = empty_selection(&cmd, &object) {
        return Err(refused(id, ErrorKind::BadRequest, message));
    }
    match serde_json::from_value(Value::Object(object)) {
        Ok(command) => Ok(Request { id, command }),
        Err(e) => Err(refused(
            id,
            ErrorKind::BadRequest,
            format!("\"{cmd}\": {e}"),
        )),
    }
}

/// An empty `names` or `formation`: an editor's empty selection must not stop or
/// restart the whole app (what leaving `names` out asks for), nor do nothing silently.
fn empty_selection(cmd: &str, object: &serde_json::Map<String, Value>) -> Option<String> {
    let empty = |key: &str| match object.get(key) {
        Some(Value::Array(items)) => items.is_empty(),
        Some(Value::Object(entries)) => entries.is_empty(),
        _ => false,
    };
    match cmd {
        "restart" if empty("names") => Some(
            "\"names\" is empty: name what to restart, or leave it out to restart everything"
                .into(),
        ),
        "stop" if empty("names") => {
            Some("\"names\" is empty: name what to stop, or leave it out to stop the app".into())
        }
        "start" if empty("names") => Some("\"names\" is empty: name what to start".into()),
        "scale" if empty("formation") => {
            Some("\"formation\" is empty: give each type to scale and its count".into())
        }
        _ => None,
    }
}

fn refused(id: Value, kind: ErrorKind, message: String) -> Box<Answer> {
    Box::new(Answer::failure(id, Problem::new(kind, message)))
}

/// Every `cmd` [`Command`] accepts, in the order the docs list them.
pub const KNOWN_COMMANDS: [&str; 11] = [
    "hello",
    "ps",
    "restart",
    "stop",
    "start",
    "scale",
    "logs",
    "wait",
    "subscribe",
    "attach",
    "resize",
];

/// A request line as a client sends it.
pub fn request_line(id: u64, command: &Command) -> Vec<u8> {
    let mut value = serde_json::to_value(command).unwrap_or(Value::Null);
    if let Value::Object(object) = &mut value {
        object.insert("v".into(), Value::from(VERSION));
        object.insert("id".into(), Value::from(id));
    }
    let mut line = serde_json::to_vec(&value).unwrap_or_default();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(line: &str) -> Answer {
        *parse_request(line.as_bytes()).expect_err("refused")
    }

    fn kind(answer: &Answer) -> ErrorKind {
        answer
            .error
            .as_ref()
            .map(|p| p.kind)
            .expect("an error answer")
    }

    #[test]
    fn a_request_names_its_command_and_arguments() {
        let got = parse_request(br#"{"v":1,"id":7,"cmd":"restart","names":["web.1"]}"#);
        let want = Request {
            id: json!(7),
            command: Command::Restart {
                names: vec!["web.1".into()],
            },
        };
        assert_eq!(got, Ok(want));
    }

    #[test]
    fn optional_fields_have_defaults_and_v_may_be_left_out() {
        let got = parse_request(br#"{"id":"a","cmd":"logs"}"#).expect("parsed");
        assert_eq!(got.id, json!("a"));
        assert_eq!(
            got.command,
            Command::Logs {
                names: vec![],
                lines: DEFAULT_LOG_LINES,
                follow: false,
                style: LogStyle::default(),
            }
        );
    }

    #[test]
    fn an_empty_selection_is_refused_and_a_left_out_one_means_all() {
        for request in [
            r#"{"cmd":"restart","names":[]}"#,
            r#"{"cmd":"stop","names":[]}"#,
            r#"{"cmd":"start","names":[]}"#,
            r#"{"cmd":"scale","formation":{}}"#,
        ] {
            assert_eq!(kind(&refusal(request)), ErrorKind::BadRequest, "{request}");
        }
        let got = parse_request(br#"{"cmd":"stop"}"#).map(|r| r.command);
        assert_eq!(got, Ok(Command::Stop { names: vec![] }));
        let sent = request_line(1, &Command::Stop { names: vec![] });
        assert!(!String::from_utf8_lossy(&sent).contains("names"));
    }

    #[test]
    fn scale_takes_a_map_of_counts() {
        let got = parse_request(br#"{"cmd":"scale","formation":{"web":3,"worker":0}}"#);
        let formation = BTreeMap::from([("web".to_string(), 3), ("worker".to_string(), 0)]);
        assert_eq!(got.map(|r| r.command), Ok(Command::Scale { formation }));
    }

    #[test]
    fn attach_carries_the_window_size_when_there_is_one() {
        let sized = parse_request(br#"{"cmd":"attach","name":"web.1","rows":40,"cols":120}"#);
        let size = Some(TerminalSize {
            rows: 40,
            cols: 120,
        });
        let name = "web.1".to_string();
        assert_eq!(sized.map(|r| r.command), Ok(Command::Attach { name, size }));
        let bare = parse_request(br#"{"cmd":"attach","name":"web.1"}"#).expect("parsed");
        assert!(matches!(bare.command, Command::Attach { size: None, .. }));
    }

    #[test]
    fn malformed_lines_get_an_answer_not_a_panic() {
        assert_eq!(kind(&refusal("{not json")), ErrorKind::BadRequest);
        assert_eq!(kind(&refusal("[1,2]")), ErrorKind::BadRequest);
        assert_eq!(kind(&refusal(r#"{"id":1}"#)), ErrorKind::BadRequest);
        assert_eq!(
            kind(&refusal(r#"{"cmd":"scale","formation":"web=2"}"#)),
            ErrorKind::BadRequest
        );
        assert_eq!(kind(&refusal(r#"{"cmd":"start"}"#)), ErrorKind::BadRequest);
        assert_eq!(kind(&refusal("\u{0}\u{ff}")), ErrorKind::BadRequest);
    }

    #[test]
    fn errors_echo_the_id_when_it_could_be_read() {
        let answer = refusal(r#"{"id":42,"cmd":"dance"}"#);
        assert_eq!(answer.id, json!(42));
        assert_eq!(kind(&answer), ErrorKind::UnknownCommand);
        assert!(!answer.ok);
    }

    #[test]
    fn another_version_is_refused() {
        let answer = refusal(r#"{"v":2,"id":1,"cmd":"ps"}"#);
        assert_eq!(kind(&answer), ErrorKind::UnsupportedVersion);
    }

    #[test]
    fn an_oversized_line_is_refused_without_parsing() {
        let line = vec![b' '; MAX_REQUEST_BYTES + 1];
        assert_eq!(
            kind(&parse_request(&line).expect_err("refused")),
            ErrorKind::TooLarge
        );
    }

    #[test]
    fn every_known_command_parses() {
        for cmd in KNOWN_COMMANDS {
            let line = match cmd {
                "start" => format!(r#"{{"cmd":"{cmd}","names":["web"]}}"#),
                "scale" => format!(r#"{{"cmd":"{cmd}","formation":{{"web":1}}}}"#),
                "attach" => format!(r#"{{"cmd":"{cmd}","name":"web.1"}}"#),
                "resize" => format!(r#"{{"cmd":"{cmd}","name":"web.1","rows":5,"cols":9}}"#),
                _ => format!(r#"{{"cmd":"{cmd}"}}"#),
            };
            assert!(parse_request(line.as_bytes()).is_ok(), "{line}");
        }
    }

    #[test]
    fn a_client_line_parses_back_to_its_command() {
        let command = Command::Stop {
            names: vec!["worker".into()],
        };
        let line = request_line(3, &command);
        assert_eq!(line.last(), Some(&b'\n'));
        let parsed = parse_request(&line[..line.len() - 1]).expect("parsed");
        assert_eq!(
            parsed,
            Request {
                id: json!(3),
                command
            }
        );
    }

    #[test]
    fn answers_are_one_line_with_only_their_half() {
        let ok = Answer::success(json!(1), json!({"pid": 5}));
        let text = String::from_utf8(ok.to_line()).expect("utf-8");
        assert_eq!(
            text,
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"pid\":5}}\n"
        );
        let mut problem = Problem::new(ErrorKind::UnknownName, "no instance \"x\"");
        problem.known = vec!["web.1".into()];
        let failed = Answer::failure(json!(2), problem);
        let text = String::from_utf8(failed.to_line()).expect("utf-8");
        assert_eq!(
            text,
            "{\"v\":1,\"id\":2,\"ok\":false,\"error\":{\"kind\":\"unknown_name\",\
             \"message\":\"no instance \\\"x\\\"\",\"known\":[\"web.1\"]}}\n"
        );
    }
}
