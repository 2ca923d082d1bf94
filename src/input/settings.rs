//! hlocal.toml: defaults for the `start` flags and per-process settings.
//!
//! [`parse`] turns the text into [`Settings`], every field an `Option` (or empty) so
//! `config` can layer CLI > file > defaults; anything that can be checked from the file
//! alone (types, unknown keys, durations, signals, regexes, globs, the formation's
//! syntax) is refused here with its line. [`validate`] does the checks that need the
//! Procfile's types: `[process.X]` and `depends_on` names, dependency cycles, the
//! formation's names. Resolving paths against the app root, and what each setting does,
//! are `config`'s and the supervisor's business.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use crate::error::Error;
use crate::input::duration;
use crate::input::formation::{self, Formation, FormationError};
use crate::input::procfile::RELEASE;
use crate::input::textfile::{excerpt, read_text};
use crate::options::{Balance, ColorChoice, LogFormat, RestartPolicy};
use crate::sys::Signal;

pub const FILE_NAME: &str = "hlocal.toml";

/// The top-level keys are the long flags of `start`, `-` → `_`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default, deserialize_with = "non_empty_path")]
    pub procfile: Option<PathBuf>,
    /// `env = ".env"`, `env = ".env,.env.local"` (split as `-e` is) or an array of paths
    /// and `{ path = ".env.local", required = false }` tables; `env = []` reads no env
    /// file at all.
    #[serde(default, deserialize_with = "env_files")]
    pub env: Option<Vec<EnvFile>>,
    #[serde(default, deserialize_with = "non_empty_string")]
    pub start_cmd: Option<String>,
    #[serde(default, deserialize_with = "formation")]
    pub formation: Option<Lined<Formation>>,
    #[serde(default, deserialize_with = "nonzero_port")]
    pub port: Option<u16>,
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_positive_option")]
    pub boot_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_positive_option")]
    pub request_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_positive_option")]
    pub header_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub watch_debounce: Option<Duration>,
    pub restart: Option<RestartPolicy>,
    pub exit_on_exit: Option<bool>,
    pub no_release: Option<bool>,
    pub dyno: Option<bool>,
    pub no_router: Option<bool>,
    pub preboot: Option<bool>,
    pub no_timestamp: Option<bool>,
    pub json: Option<bool>,
    pub balance: Option<Balance>,
    pub color: Option<ColorChoice>,
    pub log_format: Option<LogFormat>,
    pub watch: Option<WatchSetting>,
    /// Gitignore-syntax globs, checked by the watcher that compiles them.
    pub watch_ignore: Option<Vec<String>>,
    /// `[process.TYPE]` tables, in file order.
    #[serde(default, rename = "process", deserialize_with = "process_tables")]
    pub processes: Vec<ProcessSettings>,
}

/// One `[process.TYPE]` table.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSettings {
    /// The `TYPE` of `[process.TYPE]`.
    #[serde(skip)]
    pub name: String,
    /// The line of the `[process.TYPE]` header (or of the key, written dotted).
    #[serde(skip)]
    pub line: usize,
    pub restart: Option<RestartPolicy>,
    pub stop_signal: Option<Signal>,
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub stop_timeout: Option<Duration>,
    pub watch: Option<ProcessWatch>,
    pub ready: Option<Ready>,
    #[serde(default)]
    pub depends_on: Vec<Lined<String>>,
}

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

/// A value and the 1-based line of hlocal.toml it is on, for the problems [`validate`]
/// finds once the Procfile is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lined<T> {
    pub value: T,
    pub line: usize,
}

/// Problems that need the Procfile's types to be seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("unknown process type {name:?} in [process.{name}] (the Procfile has: {known})")]
    UnknownProcess { name: String, known: String },
    #[error("unknown process type {name:?} in depends_on (the Procfile has: {known})")]
    UnknownDependency { name: String, known: String },
    #[error("\"release\" runs once before anything else starts, so depends_on cannot involve it")]
    Release,
    #[error(
        "{0} in [process.release]: release runs once, to completion, so only stop_signal and stop_timeout apply"
    )]
    ReleaseSetting(&'static str),
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error(transparent)]
    Formation(#[from] FormationError),
}

/// Parses hlocal.toml text; errors carry the 1-based line and a one-line message.
pub fn parse(text: &str) -> Result<Settings, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut settings: Settings = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map_or(1, |span| LineIndex::new(text).line_at(span.start));
        (line, one_line(e.message()))
    })?;
    settings.offsets_to_lines(text);
    Ok(settings)
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

/// Checks the settings against the Procfile's types (`release` included); errors read
/// `hlocal.toml:LINE: …` with `path` as given.
pub fn validate(settings: &Settings, path: &Path, type_names: &[&str]) -> Result<(), Error> {
    check(settings, type_names).map_err(|(line, error)| Error::located(path, line, error))
}

/// [`validate`] without the path: the first problem in file order, at its line.
pub fn check(settings: &Settings, type_names: &[&str]) -> Result<(), (usize, SettingsError)> {
    if let Some(f) = &settings.formation {
        formation::check(&f.value, type_names).map_err(|e| (f.line, e.into()))?;
    }
    let known = || type_names.join(", ");
    let names: HashSet<&str> = type_names.iter().copied().collect();
    for process in &settings.processes {
        if !names.contains(process.name.as_str()) {
            let error = SettingsError::UnknownProcess {
                name: excerpt(&process.name),
                known: known(),
            };
            return Err((process.line, error));
        }
        if process.name == RELEASE {
            release_settings(process).map_err(|e| (process.line, e))?;
        }
        for dep in &process.depends_on {
            if dep.value == RELEASE {
                return Err((dep.line, SettingsError::Release));
            }
            if !names.contains(dep.value.as_str()) {
                let error = SettingsError::UnknownDependency {
                    name: excerpt(&dep.value),
                    known: known(),
                };
                return Err((dep.line, error));
            }
        }
    }
    match find_cycle(&settings.processes) {
        Some((line, cycle)) => Err((line, SettingsError::Cycle(cycle))),
        None => Ok(()),
    }
}

/// `[process.release]` may set how the release is stopped; restarts, readiness and
/// watching make no sense for a run-once command.
fn release_settings(process: &ProcessSettings) -> Result<(), SettingsError> {
    if !process.depends_on.is_empty() {
        return Err(SettingsError::Release);
    }
    let refused = [
        ("restart", process.restart.is_some()),
        ("ready", process.ready.is_some()),
        ("watch", process.watch.is_some()),
    ];
    match refused.iter().find(|(_, set)| *set) {
        Some((key, _)) => Err(SettingsError::ReleaseSetting(key)),
        None => Ok(()),
    }
}

/// The first dependency cycle met walking the types in file order, as names from a type
/// back to itself, with the line of the cycle's first `depends_on` entry.
fn find_cycle(processes: &[ProcessSettings]) -> Option<(usize, Vec<String>)> {
    let graph = Graph {
        by_name: processes.iter().map(|p| (p.name.as_str(), p)).collect(),
    };
    let mut done = HashSet::new();
    processes
        .iter()
        .find_map(|p| graph.cycle_from(&p.name, &mut done))
}

/// The `[process.*]` tables by name.
struct Graph<'a> {
    by_name: HashMap<&'a str, &'a ProcessSettings>,
}

impl<'a> Graph<'a> {
    fn deps(&self, name: &str) -> &'a [Lined<String>] {
        self.by_name
            .get(name)
            .map_or(&[][..], |p: &&'a ProcessSettings| &p.depends_on[..])
    }

    /// Depth-first from `start`, with a stack of its own: a chain of 100,000
    /// dependencies must not overflow the thread's. Each frame is a type on the path
    /// and how many of its dependencies were taken (the last one taken leads on);
    /// `on_path` finds a type's frame in constant time.
    fn cycle_from(
        &self,
        start: &'a str,
        done: &mut HashSet<&'a str>,
    ) -> Option<(usize, Vec<String>)> {
        if done.contains(start) {
            return None;
        }
        let mut path: Vec<(&'a str, usize)> = vec![(start, 0)];
        let mut on_path: HashMap<&'a str, usize> = HashMap::from([(start, 0)]);
        while let Some((name, taken)) = path.last_mut() {
            let name: &'a str = name;
            let Some(dep) = self.deps(name).get(*taken) else {
                path.pop();
                on_path.remove(name);
                done.insert(name);
                continue;
            };
            *taken += 1;
            let next = dep.value.as_str();
            if let Some(&at) = on_path.get(next) {
                return Some(self.cycle(&path[at..], next));
            }
            if !done.contains(next) {
                on_path.insert(next, path.len());
                path.push((next, 0));
            }
        }
        None
    }

    /// The cycle along `frames` back to `to`, at the line of the first frame's entry.
    fn cycle(&self, frames: &[(&'a str, usize)], to: &str) -> (usize, Vec<String>) {
        let (first, taken) = frames[0];
        let line = self.deps(first)[taken - 1].line;
        let names = frames.iter().map(|(name, _)| name.to_string());
        (line, names.chain([to.to_string()]).collect())
    }
}

impl Settings {
    /// Turns the byte offsets deserializing left in `line` fields into 1-based lines.
    fn offsets_to_lines(&mut self, text: &str) {
        let lines = LineIndex::new(text);
        if let Some(f) = &mut self.formation {
            f.line = lines.line_at(f.line);
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

/// toml's and the regex crate's messages may span lines; ours are one line.
fn one_line(message: &str) -> String {
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

fn process_tables<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ProcessSettings>, D::Error> {
    // toml hands tables over sorted by key; the keys' offsets give back the file order.
    let tables = BTreeMap::<Spanned<String>, ProcessSettings>::deserialize(d)?;
    let mut processes: Vec<ProcessSettings> = tables
        .into_iter()
        .map(|(name, mut process)| {
            process.line = name.span().start;
            process.name = name.into_inner();
            process
        })
        .collect();
    processes.sort_by_key(|p| p.line);
    Ok(processes)
}

fn formation<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Lined<Formation>>, D::Error> {
    let spec = Spanned::<String>::deserialize(d)?;
    let line = spec.span().start;
    formation::parse(spec.get_ref())
        .map(|value| Some(Lined { value, line }))
        .map_err(de::Error::custom)
}

/// `port = 0` would bind a port nobody is told about.
fn nonzero_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    match u16::deserialize(d)? {
        0 => Err(de::Error::custom(
            "port 0 is not allowed (use a port from 1 to 65535)",
        )),
        port => Ok(Some(port)),
    }
}

fn non_empty_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
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

fn non_empty_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
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

fn env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<EnvFile>>, D::Error> {
    d.deserialize_any(EnvFilesVisitor).map(Some)
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
    type Value = Vec<EnvFile>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an env file path, comma-separated paths, or an array of paths")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<EnvFile>, E> {
        v.split(',')
            .map(|part| EnvFileVisitor.visit_str(part.trim()))
            .collect()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<EnvFile>, A::Error> {
        let mut files = Vec::new();
        while let Some(file) = seq.next_element()? {
            files.push(file);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::input::procfile::tests::TempDir;

    fn ok(text: &str) -> Settings {
        parse(text).unwrap()
    }

    fn process(text: &str) -> ProcessSettings {
        ok(text).processes.remove(0)
    }

    fn lined<T>(value: T, line: usize) -> Lined<T> {
        Lined { value, line }
    }

    macro_rules! error {
        ($($name:ident: $text:expr => $line:expr, $message:expr;)*) => {$(
            #[test]
            fn $name() {
                let (line, message) = parse($text).unwrap_err();
                assert!(message.contains($message), "{message:?} lacks {:?}", $message);
                assert!(!message.contains('\n'), "{message:?}");
                assert_eq!(line, $line, "{message}");
            }
        )*};
    }

    #[test]
    fn empty_file_sets_nothing() {
        assert_eq!(ok(""), Settings::default());
        assert_eq!(ok("# just a comment\n"), Settings::default());
    }

    #[test]
    fn every_top_level_key() {
        let text = r#"
procfile = "Procfile.dev"
env = [".env", ".env.local"]
start_cmd = "bin/web"
formation = "web=2,worker=1"
port = 5006
timeout = 5
boot_timeout = "90s"
request_timeout = 0.5
header_timeout = "10s"
watch_debounce = "200ms"
restart = "on-failure"
exit_on_exit = true
no_release = true
dyno = true
no_router = false
preboot = true
no_timestamp = true
json = false
balance = "random"
color = "never"
log_format = "heroku"
watch = ["src", "lib"]
watch_ignore = ["*.tmp", "log/"]
"#;
        let expected = Settings {
            procfile: Some("Procfile.dev".into()),
            env: Some(vec![".env".into(), ".env.local".into()]),
            start_cmd: Some("bin/web".into()),
            formation: Some(lined(formation::parse("web=2,worker=1").unwrap(), 5)),
            port: Some(5006),
            timeout: Some(Duration::from_secs(5)),
            boot_timeout: Some(Duration::from_secs(90)),
            request_timeout: Some(Duration::from_millis(500)),
            header_timeout: Some(Duration::from_secs(10)),
            watch_debounce: Some(Duration::from_millis(200)),
            restart: Some(RestartPolicy::OnFailure),
            exit_on_exit: Some(true),
            no_release: Some(true),
            dyno: Some(true),
            no_router: Some(false),
            preboot: Some(true),
            no_timestamp: Some(true),
            json: Some(false),
            balance: Some(Balance::Random),
            color: Some(ColorChoice::Never),
            log_format: Some(LogFormat::Heroku),
            watch: Some(WatchSetting::Paths(vec!["src".into(), "lib".into()])),
            watch_ignore: Some(vec!["*.tmp".into(), "log/".into()]),
            processes: Vec::new(),
        };
        assert_eq!(ok(text), expected);
    }

    #[test]
    fn env_accepts_a_string_a_comma_list_or_an_empty_array() {
        assert_eq!(ok(r#"env = ".env""#).env, Some(vec![".env".into()]));
        assert_eq!(
            ok(r#"env = ".env, .env.local""#).env,
            Some(vec![".env".into(), ".env.local".into()])
        );
        assert_eq!(ok("env = []").env, Some(Vec::new()));
        assert_eq!(
            ok(r#"env = [".env", { path = ".env.local", required = false }]"#).env,
            Some(vec![
                ".env".into(),
                EnvFile {
                    path: ".env.local".into(),
                    required: false
                }
            ])
        );
    }

    #[test]
    fn watch_true_and_false() {
        assert_eq!(ok("watch = true").watch, Some(WatchSetting::Root));
        assert_eq!(ok("watch = false").watch, Some(WatchSetting::Off));
    }

    #[test]
    fn process_tables_keep_file_order_and_header_lines() {
        let text = "port = 1\n\n[process.worker]\nrestart = \"always\"\n\n[process.web]\n[process.clock]\n";
        let names: Vec<(String, usize)> = ok(text)
            .processes
            .into_iter()
            .map(|p| (p.name, p.line))
            .collect();
        assert_eq!(
            names,
            [("worker".into(), 3), ("web".into(), 6), ("clock".into(), 7)]
        );
    }

    #[test]
    fn every_process_key() {
        let text = r#"
[process.web]
restart = "always"
stop_signal = "SIGINT"
stop_timeout = 10
watch = ["src/**/*.py", "templates/*"]
ready = { http = "/health" }
depends_on = ["redis",
  "worker"]
"#;
        let expected = ProcessSettings {
            name: "web".into(),
            line: 2,
            restart: Some(RestartPolicy::Always),
            stop_signal: Some(Signal::Int),
            stop_timeout: Some(Duration::from_secs(10)),
            watch: Some(ProcessWatch::Globs(vec![
                "src/**/*.py".into(),
                "templates/*".into(),
            ])),
            ready: Some(Ready::Http("/health".into())),
            depends_on: vec![lined("redis".into(), 8), lined("worker".into(), 9)],
        };
        assert_eq!(process(text), expected);
    }

    #[test]
    fn dotted_process_keys_work_too() {
        let p = process("process.web.stop_signal = \"TERM\"\n");
        assert_eq!((p.name.as_str(), p.line), ("web", 1));
        assert_eq!(p.stop_signal, Some(Signal::Term));
    }

    #[test]
    fn process_watch_forms() {
        assert_eq!(
            process("[process.web]\nwatch = false").watch,
            Some(ProcessWatch::Exempt)
        );
        assert_eq!(
            process("[process.web]\nwatch = true").watch,
            Some(ProcessWatch::Any)
        );
    }

    #[test]
    fn ready_forms() {
        assert_eq!(
            process("[process.web]\nready = \"port\"").ready,
            Some(Ready::Port)
        );
        let Some(Ready::Log(regex)) =
            process("[process.worker]\nready = { log = 'Listening on \\d+' }").ready
        else {
            panic!("expected a log check");
        };
        assert!(regex.is_match("Listening on 8080"));
    }

    #[test]
    fn ready_as_a_sub_table() {
        assert_eq!(
            process("[process.web.ready]\nhttp = \"/\"\n").ready,
            Some(Ready::Http("/".into()))
        );
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        let s = ok("\u{feff}port = 1\r\n\r\n[process.web]\r\nrestart = \"never\"\r\n");
        assert_eq!(s.port, Some(1));
        assert_eq!(s.processes[0].line, 3);
    }

    error! {
        unknown_top_level_key_names_it_and_its_line:
            "port = 1\n\n\nfrmation = \"web=1\"\n" => 4, "unknown field `frmation`, expected one of `procfile`";
        unknown_process_key_names_it:
            "[process.web]\nrestart = \"always\"\nstop_sig = \"INT\"\n" => 3, "unknown field `stop_sig`, expected one of `restart`";
        unknown_table_is_an_unknown_key:
            "[processes.web]\n" => 1, "unknown field `processes`";
        toml_syntax_errors_are_one_line:
            "port = 1\nformation = \n" => 2, "";
        duplicate_process_table:
            "[process.web]\n[process.web]\n" => 2, "duplicate key";
        port_out_of_range:
            "port = 70000\n" => 1, "70000";
        wrong_type_for_a_flag:
            "\ndyno = \"yes\"\n" => 2, "invalid type: string \"yes\", expected a boolean";
        bad_restart_policy:
            "restart = \"sometimes\"\n" => 1, "unknown variant `sometimes`, expected one of `on-failure`, `always`, `never`";
        bad_balance:
            "balance = \"least-conn\"\n" => 1, "unknown variant `least-conn`";
        bad_color:
            "color = \"yes\"\n" => 1, "unknown variant `yes`";
        bad_log_format:
            "log_format = \"json\"\n" => 1, "unknown variant `json`";
        bad_duration:
            "\ntimeout = \"5x\"\n" => 2, r#"invalid duration "5x" (use seconds like 5 or 0.2, or a unit: 200ms, 5s, 1m)"#;
        negative_duration:
            "boot_timeout = -1\n" => 1, r#"invalid duration "-1""#;
        bad_process_duration:
            "[process.web]\nstop_timeout = \"forever\"\n" => 2, r#"invalid duration "forever""#;
        bad_formation_syntax:
            "port = 1\nformation = \"web=x\"\n" => 2, r#"invalid count "x" for "web" in formation "web=x""#;
        formation_naming_release:
            "formation = \"release=1\"\n" => 1, "cannot be scaled";
        bad_signal:
            "[process.web]\n\nstop_signal = \"SIGFOO\"\n" => 3, r#"unknown signal "SIGFOO""#;
        empty_procfile_path:
            "procfile = \"\"\n" => 1, "expected a path, found an empty string";
        empty_env_entry:
            "env = [\".env\",\n \"\"]\n" => 2, "expected a path, found an empty string";
        empty_env_in_a_comma_list:
            "env = \".env,,.env.local\"\n" => 1, "expected a path, found an empty string";
        env_of_the_wrong_type:
            "env = 5\n" => 1, "expected an env file path, comma-separated paths, or an array of paths";
        empty_start_cmd:
            "start_cmd = \" \"\n" => 1, "expected a command, found an empty string";
        empty_watch_array:
            "watch = []\n" => 1, "watch = [] names no path (use false to turn watching off)";
        watch_of_the_wrong_type:
            "watch = \"src\"\n" => 1, "expected true, false or an array of paths";
        empty_process_watch_array:
            "[process.web]\nwatch = []\n" => 2, "watch = [] names no glob (use false to exempt this process)";
        bad_watch_glob_names_its_line:
            "[process.web]\nwatch = [\n  \"src/**\",\n  \"src/[\",\n]\n" => 4, "src/[";
        ready_unknown_string:
            "[process.web]\nready = \"bound\"\n" => 2, r#"unknown ready check "bound" (use "port", { log = "regex" } or { http = "/path" })"#;
        ready_unknown_key:
            "[process.web]\nready = { tcp = 5 }\n" => 2, "unknown field `tcp`, expected `log` or `http`";
        ready_two_checks:
            "[process.web]\nready = { log = \"x\", http = \"/\" }\n" => 2, "a ready check takes one of log or http";
        ready_empty_table:
            "[process.web]\nready = {}\n" => 2, "empty ready check";
        ready_http_without_slash:
            "[process.web]\nready = { http = \"health\" }\n" => 2, r#"ready http path must start with "/", found "health""#;
        ready_bad_regex_is_one_line:
            "[process.web]\n\nready = { log = \"(unclosed\" }\n" => 3, r#"invalid ready log regex "(unclosed": unclosed group"#;
        ready_log_of_the_wrong_type:
            "[process.web]\nready = { log = 5 }\n" => 2, "invalid type: integer `5`, expected a string";
        depends_on_not_an_array:
            "[process.web]\ndepends_on = \"redis\"\n" => 2, "expected a sequence";
        process_not_a_table:
            "process = 5\n" => 1, "expected a map";
    }

    #[test]
    fn regex_too_big_is_an_error_not_a_crash() {
        let (line, message) =
            parse("[process.web]\nready = { log = \"(a{1000}){1000}\" }\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(message.starts_with("invalid ready log regex"), "{message}");
    }

    const TYPES: &[&str] = &["release", "web", "worker", "redis"];

    fn check_error(text: &str) -> (usize, SettingsError) {
        check(&ok(text), TYPES).unwrap_err()
    }

    #[test]
    fn check_accepts_known_types_and_acyclic_dependencies() {
        let text = r#"
formation = "web=2"
[process.release]
stop_signal = "INT"
[process.web]
depends_on = ["worker", "redis"]
[process.worker]
depends_on = ["redis"]
[process.redis]
"#;
        assert_eq!(check(&ok(text), TYPES), Ok(()));
    }

    #[test]
    fn process_table_for_an_unknown_type() {
        assert_eq!(
            check_error("port = 1\n[process.wrk]\n"),
            (
                2,
                SettingsError::UnknownProcess {
                    name: "wrk".into(),
                    known: "release, web, worker, redis".into()
                }
            )
        );
        assert_eq!(
            check_error("[process.wrk]").1.to_string(),
            r#"unknown process type "wrk" in [process.wrk] (the Procfile has: release, web, worker, redis)"#
        );
    }

    #[test]
    fn depends_on_an_unknown_type_names_the_entry_line() {
        let (line, e) =
            check_error("[process.web]\ndepends_on = [\n  \"worker\",\n  \"postgres\",\n]\n");
        assert_eq!(line, 4);
        assert_eq!(
            e.to_string(),
            r#"unknown process type "postgres" in depends_on (the Procfile has: release, web, worker, redis)"#
        );
    }

    #[test]
    fn release_refuses_what_only_long_running_types_use() {
        let (line, e) = check_error(
            "port = 1\n[process.release]\nstop_timeout = \"5s\"\nrestart = \"always\"\n",
        );
        assert_eq!((line, e), (2, SettingsError::ReleaseSetting("restart")));
        assert!(check(&ok("[process.release]\nstop_signal = \"INT\"\n"), TYPES).is_ok());
    }

    #[test]
    fn depends_on_cannot_involve_release() {
        assert_eq!(
            check_error("[process.web]\ndepends_on = [\"release\"]\n"),
            (2, SettingsError::Release)
        );
        assert_eq!(
            check_error("\n[process.release]\ndepends_on = [\"web\"]\n"),
            (2, SettingsError::Release)
        );
    }

    #[test]
    fn dependency_cycle_is_named() {
        let text =
            "[process.web]\ndepends_on = [\"worker\"]\n[process.worker]\ndepends_on = [\"web\"]\n";
        let (line, e) = check_error(text);
        assert_eq!(line, 2);
        assert_eq!(e.to_string(), "dependency cycle: web -> worker -> web");
    }

    #[test]
    fn longer_cycle_reached_from_outside_it() {
        let text = r#"
[process.web]
depends_on = ["worker"]
[process.worker]
depends_on = ["redis"]
[process.redis]
depends_on = ["worker"]
"#;
        assert_eq!(
            check_error(text),
            (
                5,
                SettingsError::Cycle(vec!["worker".into(), "redis".into(), "worker".into()])
            )
        );
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        assert_eq!(
            check_error("[process.web]\ndepends_on = [\"web\"]\n"),
            (2, SettingsError::Cycle(vec!["web".into(), "web".into()]))
        );
    }

    #[test]
    fn shared_dependencies_are_not_cycles() {
        let text = "[process.web]\ndepends_on = [\"redis\", \"worker\"]\n[process.worker]\ndepends_on = [\"redis\"]\n";
        assert_eq!(check(&ok(text), TYPES), Ok(()));
    }

    #[test]
    fn formation_naming_an_unknown_type() {
        let (line, e) = check_error("\nformation = \"web=1,wrk=2\"\n");
        assert_eq!(line, 2);
        assert_eq!(
            e.to_string(),
            r#"unknown process type "wrk" in formation (the Procfile has: web, worker, redis)"#
        );
    }

    #[test]
    fn validate_prefixes_the_path() {
        let settings = ok("[process.wrk]\n");
        let message = validate(&settings, Path::new("./hlocal.toml"), TYPES)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(r#"hlocal.toml:1: unknown process type "wrk""#),
            "{message}"
        );
    }

    #[test]
    fn load_without_a_file_is_none() {
        let dir = TempDir::new("settings-none");
        assert_eq!(load(&dir.0).unwrap(), None);
    }

    #[test]
    fn load_reads_the_file_in_the_root() {
        let dir = TempDir::new("settings-ok");
        dir.file(FILE_NAME, b"port = 5100\n");
        assert_eq!(load(&dir.0).unwrap().unwrap().port, Some(5100));
    }

    #[test]
    fn load_errors_read_path_line_message() {
        let dir = TempDir::new("settings-bad");
        let path = dir.file(FILE_NAME, b"port = 1\n\n\nfrmation = \"web=1\"\n");
        let message = load(&dir.0).unwrap_err().to_string();
        let expected = format!(
            "{}:4: unknown field `frmation`, expected one of",
            path.display()
        );
        assert!(message.starts_with(&expected), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn load_of_non_utf8_names_its_line() {
        let dir = TempDir::new("settings-utf8");
        let path = dir.file(FILE_NAME, b"port = 1\nstart_cmd = \"\xff\"\n");
        let message = load(&dir.0).unwrap_err().to_string();
        assert_eq!(message, format!("{}:2: not valid UTF-8", path.display()));
    }
}

/// Property tests (the repo's fuzzing): hlocal.toml text, arbitrary or built from its own
/// keys with values of every TOML type, is settings or a one-line error with a line number.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    const TOP_KEYS: &[&str] = &[
        "procfile",
        "env",
        "start_cmd",
        "formation",
        "port",
        "timeout",
        "boot_timeout",
        "request_timeout",
        "watch_debounce",
        "restart",
        "exit_on_exit",
        "no_release",
        "dyno",
        "no_router",
        "preboot",
        "no_timestamp",
        "json",
        "balance",
        "color",
        "log_format",
        "watch",
        "watch_ignore",
    ];
    const PROCESS_KEYS: &[&str] = &[
        "restart",
        "stop_signal",
        "stop_timeout",
        "watch",
        "ready",
        "depends_on",
    ];

    fn toml_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| format!("{n:?}")),
            any::<bool>().prop_map(|b| b.to_string()),
            "\\PC{0,20}".prop_map(|s| format!("{s:?}")),
            "[a-z0-9=,. ]{0,12}".prop_map(|s| format!("\"{s}\"")),
        ];
        leaf.prop_recursive(2, 16, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(|v| format!("[{}]", v.join(", "))),
                prop::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|v| {
                    let pairs: Vec<String> = v.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    format!("{{ {} }}", pairs.join(", "))
                }),
            ]
        })
    }

    fn settings_text() -> impl Strategy<Value = String> {
        let top = prop::collection::vec((prop::sample::select(TOP_KEYS), toml_value()), 0..6);
        let process = (
            "[a-z]{1,5}",
            prop::collection::vec((prop::sample::select(PROCESS_KEYS), toml_value()), 0..4),
        );
        (top, prop::collection::vec(process, 0..3)).prop_map(|(top, processes)| {
            let mut text: String = top.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
            for (name, keys) in processes {
                text.push_str(&format!("[process.{name}]\n"));
                text.extend(keys.iter().map(|(k, v)| format!("{k} = {v}\n")));
            }
            text
        })
    }

    proptest! {
        #[test]
        fn any_text_is_settings_or_a_located_error(text in "\\PC{0,300}", built in settings_text()) {
            for text in [&text, &built] {
                match parse(text) {
                    Ok(settings) => {
                        let _ = check(&settings, &["web", "worker"]);
                    }
                    Err((line, message)) => {
                        prop_assert!(line >= 1 && line <= text.lines().count().max(1), "{line}");
                        prop_assert!(!message.contains('\n'), "{message:?}");
                    }
                }
            }
        }
    }
}
