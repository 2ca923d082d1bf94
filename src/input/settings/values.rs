//! The values of hlocal.toml's keys beyond plain TOML types, and the serde visitors
//! that read them: each value is checked inside toml's deserializer, so an error
//! carries the line of the value itself (an array element's, not the array's).

use std::fmt;
use std::path::PathBuf;

use regex::Regex;
use schemars::{Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use crate::input::formation::{self, Formation};
use crate::input::textfile::excerpt;

/// Top-level `watch`: `true` watches the app root (as a bare `-w`), an array names paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchSetting {
    Off,
    Root,
    Paths(Vec<PathBuf>),
}

/// Per-process `watch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessWatch {
    /// `false`: changes never restart this type.
    Exempt,
    /// `true`: any change restarts it.
    Any,
    /// Only changes matching one of these globs (relative to the app root) restart it.
    Globs(Vec<String>),
}

/// When an instance counts as `up`.
#[derive(Debug, Clone)]
pub enum Ready {
    /// Something listens on its `PORT`.
    Port,
    /// A line of its output matches.
    Log(Regex),
    /// `GET path` on its `PORT` answers.
    Http(String),
}

// `Regex` has no `PartialEq`; two checks are the same when their patterns are.
impl PartialEq for Ready {
    fn eq(&self, other: &Ready) -> bool {
        match (self, other) {
            (Ready::Port, Ready::Port) => true,
            (Ready::Log(a), Ready::Log(b)) => a.as_str() == b.as_str(),
            (Ready::Http(a), Ready::Http(b)) => a == b,
            _ => false,
        }
    }
}

/// A value and the 1-based line of hlocal.toml it is on, for the problems `validate`
/// finds once the Procfile is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lined<T> {
    pub value: T,
    pub line: usize,
}

/// toml's and the regex crate's messages may span lines; ours are one line.
pub(super) fn one_line(message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    parts.join("; ")
}

// toml only knows byte offsets, so `line` holds one until `parse` converts it with the
// text at hand (`offsets_to_lines`); `parse` is the only way to a `Settings`.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lined<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<T>::deserialize(deserializer)?;
        Ok(Lined {
            line: spanned.span().start,
            value: spanned.into_inner(),
        })
    }
}

pub(super) fn formation_spec<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Lined<Formation>>, D::Error> {
    let spec = Spanned::<String>::deserialize(d)?;
    let line = spec.span().start;
    formation::parse(spec.get_ref())
        .map(|value| Some(Lined { value, line }))
        .map_err(de::Error::custom)
}

/// `port = 0` would bind a port nobody is told about.
pub(super) fn nonzero_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    match u16::deserialize(d)? {
        0 => Err(de::Error::custom(
            "port 0 is not allowed (use a port from 1 to 65535)",
        )),
        port => Ok(Some(port)),
    }
}

pub(super) fn non_empty_string<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    checked_str(d, |text| {
        if text.trim().is_empty() {
            return Err("expected a command, found an empty string".to_string());
        }
        if text.contains('\0') {
            return Err(
                "the command contains a NUL byte (no process can be given one)".to_string(),
            );
        }
        Ok(Some(text.to_string()))
    })
}

/// Deserializes a string and checks it inside toml's value deserializer, so an error
/// carries the string's own line (an array element's, not the array's first line).
fn checked_str<'de, D, T>(
    d: D,
    check: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct CheckedStr<F>(F);

    impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for CheckedStr<F> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.0)(v).map_err(E::custom)
        }
    }

    d.deserialize_str(CheckedStr(check))
}

pub(super) fn non_empty_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    NonEmptyPath::deserialize(d).map(|p| Some(p.0))
}

/// One entry of `env`: a missing required file is an error, a missing optional one is
/// skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFile {
    pub path: PathBuf,
    pub required: bool,
}

impl From<&str> for EnvFile {
    fn from(path: &str) -> Self {
        EnvFile {
            path: PathBuf::from(path),
            required: true,
        }
    }
}

/// `{ path = ".env.local", required = false }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvFileTable {
    path: NonEmptyPath,
    #[serde(default = "required_by_default")]
    required: bool,
}

fn required_by_default() -> bool {
    true
}

impl<'de> Deserialize<'de> for EnvFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EnvFileVisitor)
    }
}

struct EnvFileVisitor;

impl<'de> Visitor<'de> for EnvFileVisitor {
    type Value = EnvFile;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an env file path or { path = \"…\", required = false }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvFile, E> {
        let path = path_from(v).map_err(E::custom)?.0;
        Ok(EnvFile {
            path,
            required: true,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EnvFile, A::Error> {
        let table = EnvFileTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(EnvFile {
            path: table.path.0,
            required: table.required,
        })
    }
}

/// `env`'s files with their byte offsets (lines once `parse` converts them): an array's
/// element has its own, the paths of a comma-separated string share the string's.
pub(super) fn env_files<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Lined<EnvFile>>>, D::Error> {
    let list = Spanned::<EnvFileList>::deserialize(d)?;
    let whole = list.span().start;
    let files = list.into_inner().0.into_iter();
    Ok(Some(
        files
            .map(|(own, value)| Lined {
                value,
                line: own.unwrap_or(whole),
            })
            .collect(),
    ))
}

/// The files of one `env` value, each with its own offset when it is an array element.
struct EnvFileList(Vec<(Option<usize>, EnvFile)>);

impl<'de> Deserialize<'de> for EnvFileList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EnvFilesVisitor).map(EnvFileList)
    }
}

/// A path that is not empty, as an element type so errors point at the element's line.
struct NonEmptyPath(PathBuf);

impl<'de> Deserialize<'de> for NonEmptyPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, path_from)
    }
}

fn path_from(text: &str) -> Result<NonEmptyPath, String> {
    if text.trim().is_empty() {
        return Err("expected a path, found an empty string".to_string());
    }
    Ok(NonEmptyPath(PathBuf::from(text)))
}

struct EnvFilesVisitor;

impl<'de> Visitor<'de> for EnvFilesVisitor {
    type Value = Vec<(Option<usize>, EnvFile)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an env file path, comma-separated paths, or an array of paths")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.split(',')
            .map(|part| {
                EnvFileVisitor
                    .visit_str(part.trim())
                    .map(|file| (None, file))
            })
            .collect()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut files = Vec::new();
        while let Some(file) = seq.next_element::<Spanned<EnvFile>>()? {
            files.push((Some(file.span().start), file.into_inner()));
        }
        Ok(files)
    }
}

impl<'de> Deserialize<'de> for WatchSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let setting = BoolOrList::<NonEmptyPath>::deserialize(
            d,
            "true, false or an array of paths",
            "watch = [] names no path (use false to turn watching off)",
        )?;
        Ok(match setting {
            BoolOrList::Bool(true) => WatchSetting::Root,
            BoolOrList::Bool(false) => WatchSetting::Off,
            BoolOrList::List(paths) => {
                WatchSetting::Paths(paths.into_iter().map(|NonEmptyPath(p)| p).collect())
            }
        })
    }
}

/// A per-process watch glob that compiles, so a bad one is refused at its line.
struct Glob(String);

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, |text| match globset::Glob::new(text) {
            Ok(_) => Ok(Glob(text.to_string())),
            Err(e) => Err(e.to_string()),
        })
    }
}

impl<'de> Deserialize<'de> for ProcessWatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let setting = BoolOrList::<Glob>::deserialize(
            d,
            "true, false or an array of globs",
            "watch = [] names no glob (use false to exempt this process)",
        )?;
        Ok(match setting {
            BoolOrList::Bool(true) => ProcessWatch::Any,
            BoolOrList::Bool(false) => ProcessWatch::Exempt,
            BoolOrList::List(globs) => {
                ProcessWatch::Globs(globs.into_iter().map(|Glob(g)| g).collect())
            }
        })
    }
}

/// `watch = true`, `false` or a non-empty array: the shape both `watch` keys share.
enum BoolOrList<T> {
    Bool(bool),
    List(Vec<T>),
}

impl<'de, T: Deserialize<'de>> BoolOrList<T> {
    fn deserialize<D: Deserializer<'de>>(
        d: D,
        expecting: &'static str,
        empty: &'static str,
    ) -> Result<Self, D::Error> {
        d.deserialize_any(BoolOrListVisitor {
            expecting,
            empty,
            items: std::marker::PhantomData,
        })
    }
}

struct BoolOrListVisitor<T> {
    expecting: &'static str,
    /// The error for `[]`, which would mean neither on nor off.
    empty: &'static str,
    items: std::marker::PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for BoolOrListVisitor<T> {
    type Value = BoolOrList<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<BoolOrList<T>, E> {
        Ok(BoolOrList::Bool(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BoolOrList<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        if items.is_empty() {
            return Err(de::Error::custom(self.empty));
        }
        Ok(BoolOrList::List(items))
    }
}

const READY_FORMS: &str = r#"use "port", { log = "regex" } or { http = "/path" }"#;

impl<'de> Deserialize<'de> for Ready {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ReadyVisitor)
    }
}

struct ReadyVisitor;

impl<'de> Visitor<'de> for ReadyVisitor {
    type Value = Ready;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a ready check ({READY_FORMS})")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Ready, E> {
        match v {
            "port" => Ok(Ready::Port),
            _ => Err(E::custom(format!(
                "unknown ready check {:?} ({READY_FORMS})",
                excerpt(v)
            ))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ready, A::Error> {
        let ready = match map.next_key::<String>()?.as_deref() {
            Some("log") => {
                let pattern: String = map.next_value()?;
                Ready::Log(compile_regex(&pattern).map_err(de::Error::custom)?)
            }
            Some("http") => {
                let path: String = map.next_value()?;
                if !path.starts_with('/') {
                    return Err(de::Error::custom(format!(
                        "ready http path must start with \"/\", found {:?}",
                        excerpt(&path)
                    )));
                }
                Ready::Http(path)
            }
            Some(other) => return Err(de::Error::unknown_field(other, &["log", "http"])),
            None => {
                return Err(de::Error::custom(format!(
                    "empty ready check ({READY_FORMS})"
                )));
            }
        };
        if map.next_key::<String>()?.is_some() {
            return Err(de::Error::custom(format!(
                "a ready check takes one of log or http ({READY_FORMS})"
            )));
        }
        Ok(ready)
    }
}

fn compile_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| {
        // The syntax error's last line says what is wrong; the lines above draw a caret.
        let text = e.to_string();
        let reason = text
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .map_or_else(|| one_line(&text), str::to_string);
        format!("invalid ready log regex {:?}: {reason}", excerpt(pattern))
    })
}

// The JSON Schema of what each visitor above accepts, for hlocal.toml's schema
// (`schema.rs` names them with `schema_with`). Each mirrors its visitor; the test that
// validates every fixture's hlocal.toml against the shipped schema keeps them honest.

pub(super) fn non_empty_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "minLength": 1 })
}

pub(super) fn port_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer", "minimum": 1, "maximum": 65535 })
}

pub(super) fn formation_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "description": "Instances per process type: \"web=2,worker=1\", or \"all=N\".",
        "pattern": r"^\s*[^=,\s]+\s*=\s*[0-9]+\s*(,\s*[^=,\s]+\s*=\s*[0-9]+\s*)*$",
    })
}

pub(super) fn env_files_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Env files read instead of .env: \".env,.env.local\", or an array of paths and { path, required } tables; [] reads none.",
        "anyOf": [
            { "type": "string", "minLength": 1 },
            {
                "type": "array",
                "items": {
                    "anyOf": [
                        { "type": "string", "minLength": 1 },
                        {
                            "type": "object",
                            "properties": {
                                "path": { "type": "string", "minLength": 1 },
                                "required": { "type": "boolean", "default": true },
                            },
                            "required": ["path"],
                            "additionalProperties": false,
                        },
                    ],
                },
            },
        ],
    })
}

pub(super) fn watch_paths_schema(_: &mut SchemaGenerator) -> Schema {
    bool_or_list_schema(
        "true watches the app root, false nothing, an array these paths.",
        "a path",
    )
}

pub(super) fn watch_globs_schema(_: &mut SchemaGenerator) -> Schema {
    bool_or_list_schema(
        "true: any change restarts this type; false: none does; an array: only changes matching these globs.",
        "a glob relative to the app root",
    )
}

/// [`BoolOrList`]'s shape: `true`, `false` or a non-empty array of strings.
fn bool_or_list_schema(description: &str, item: &str) -> Schema {
    json_schema!({
        "description": description,
        "anyOf": [
            { "type": "boolean" },
            {
                "type": "array",
                "minItems": 1,
                "items": { "type": "string", "minLength": 1, "description": item },
            },
        ],
    })
}

pub(super) fn ready_schema(_: &mut SchemaGenerator) -> Schema {
    let one_key = |key: &str, value: Schema| {
        json_schema!({
            "type": "object",
            "properties": { (key): value },
            "required": [key],
            "additionalProperties": false,
        })
    };
    json_schema!({
        "description": READY_FORMS,
        "anyOf": [
            { "const": "port" },
            one_key("log", json_schema!({ "type": "string", "format": "regex" })),
            one_key("http", json_schema!({ "type": "string", "pattern": "^/" })),
        ],
    })
}

pub(super) fn signal_schema(_: &mut SchemaGenerator) -> Schema {
    // The spellings `kill -s` takes: SIGTERM, TERM, and either in lower case.
    let mut spellings = Vec::new();
    for signal in crate::sys::Signal::ALL {
        let name = signal.name();
        for spelling in [name, &name[3..]] {
            spellings.push(spelling.to_string());
            spellings.push(spelling.to_ascii_lowercase());
        }
    }
    json_schema!({
        "description": "The signal that stops this type.",
        "type": "string",
        "enum": spellings,
    })
}
