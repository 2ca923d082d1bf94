//! The tables of hlocal.toml as users write them: the top level (the long flags of
//! `start`) and `[process.TYPE]`. Each key's value type and its checks are in `values`.
//! The same types derive hlocal.toml's JSON Schema (`hlocal schema`); a key read by a
//! visitor names the schema of what that visitor accepts (`schema_with`). Such a key also
//! needs `#[serde(default)]` (harmless for an `Option`): without it schemars cannot tell
//! the key may be left out and lists it as required. Doc comments on the fields are the
//! descriptions editors show.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::generate::SchemaSettings;
use schemars::transform::transform_subschemas;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::values::{
    self, EnvFile, Lined, ProcessWatch, Ready, WatchSetting, env_files, formation_spec,
    non_empty_path, non_empty_string, nonzero_port,
};
use crate::input::duration;
use crate::input::formation::Formation;
use crate::options::{Balance, ColorChoice, LogFormat, RestartPolicy};
use crate::sys::Signal;

/// The top-level keys are the long flags of `start`, `-` → `_`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "hlocal.toml",
    description = "Settings of `hlocal start` for this app; a command-line flag wins over its key."
)]
pub struct Settings {
    /// The Procfile to read (`-f`) [default: Procfile in the app root].
    #[serde(default, deserialize_with = "non_empty_path")]
    #[schemars(schema_with = "values::non_empty_schema")]
    pub procfile: Option<PathBuf>,
    /// `env = ".env"`, `env = ".env,.env.local"` (split as `-e` is) or an array of paths
    /// and `{ path = ".env.local", required = false }` tables; `env = []` reads no env
    /// file at all.
    #[serde(default, deserialize_with = "env_files")]
    #[schemars(schema_with = "values::env_files_schema")]
    pub env: Option<Vec<Lined<EnvFile>>>,
    /// The `web` command when there is no Procfile (`--start-cmd`).
    #[serde(default, deserialize_with = "non_empty_string")]
    #[schemars(schema_with = "values::non_empty_schema")]
    pub start_cmd: Option<String>,
    /// Instances per type, `"web=2,worker=1"` or `"all=N"` (`-m`) [default: one of each].
    #[serde(default, deserialize_with = "formation_spec")]
    #[schemars(schema_with = "values::formation_schema")]
    pub formation: Option<Lined<Formation>>,
    /// The public port (`-p`) [default: PORT from the env files, else the shell, else 5006].
    #[serde(default, deserialize_with = "nonzero_port")]
    #[schemars(schema_with = "values::port_schema")]
    pub port: Option<u16>,
    /// Grace after the stop signal before SIGKILL at shutdown (`-t`) [default: 5s]: seconds
    /// (5, 0.2) or "200ms", "5s", "1m".
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    #[schemars(schema_with = "duration::json_schema")]
    pub timeout: Option<Duration>,
    /// How long a web process may take to bind its PORT before R10 [default: 60s].
    #[serde(default, deserialize_with = "duration::deserialize_positive_option")]
    #[schemars(schema_with = "duration::positive_json_schema")]
    pub boot_timeout: Option<Duration>,
    /// Router: H12 after this long without a response [default: 30s].
    #[serde(default, deserialize_with = "duration::deserialize_positive_option")]
    #[schemars(schema_with = "duration::positive_json_schema")]
    pub request_timeout: Option<Duration>,
    /// Router: close a connection whose request head takes longer [default: 30s].
    #[serde(default, deserialize_with = "duration::deserialize_positive_option")]
    #[schemars(schema_with = "duration::positive_json_schema")]
    pub header_timeout: Option<Duration>,
    /// Quiet period after the last change before processes restart [default: 200ms].
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    #[schemars(schema_with = "duration::json_schema")]
    pub watch_debounce: Option<Duration>,
    /// Restart policy of every type without its own [default: "on-failure"].
    pub restart: Option<RestartPolicy>,
    /// Stop everything when any process exits, and exit with its status (foreman's mode).
    pub exit_on_exit: Option<bool>,
    /// Skip the `release` type.
    pub no_release: Option<bool>,
    /// Set DYNO=web.1 (and so on) in each process.
    pub dyno: Option<bool>,
    /// No router: instance ports exactly as foreman's.
    pub no_router: Option<bool>,
    /// On a restart, start the new web process and stop the old one once the new one is up.
    pub preboot: Option<bool>,
    /// Omit timestamps from log lines.
    pub no_timestamp: Option<bool>,
    /// One JSON object per line instead of text (not with log_format = "heroku").
    pub json: Option<bool>,
    /// How the router picks a web instance [default: "round-robin"].
    pub balance: Option<Balance>,
    /// When to color output [default: "auto": when stdout is a terminal and NO_COLOR is unset or empty].
    pub color: Option<ColorChoice>,
    /// Log line format [default: "plain"].
    pub log_format: Option<LogFormat>,
    /// Restart processes when files change: true watches the app root, an array these paths.
    #[serde(default)]
    #[schemars(schema_with = "values::watch_paths_schema")]
    pub watch: Option<WatchSetting>,
    /// Changes to ignore, gitignore syntax (`--watch-ignore`); `!glob` re-includes.
    pub watch_ignore: Option<Vec<String>>,
    /// `false`: children are not told to print in color (`FORCE_COLOR`, `CLICOLOR_FORCE`).
    pub child_color: Option<bool>,
    /// `[process.TYPE]` tables: settings of one Procfile type each (kept in file order).
    #[serde(default, rename = "process", deserialize_with = "process_tables")]
    #[schemars(with = "BTreeMap<String, ProcessSettings>")]
    pub processes: Vec<ProcessSettings>,
}

/// One `[process.TYPE]` table.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(description = "Settings of one Procfile process type.")]
pub struct ProcessSettings {
    /// The `TYPE` of `[process.TYPE]`.
    #[serde(skip)]
    pub name: String,
    /// The line of the `[process.TYPE]` header (or of the key, written dotted).
    #[serde(skip)]
    pub line: usize,
    /// Restart policy of this type [default: the top-level `restart`].
    pub restart: Option<RestartPolicy>,
    /// The signal that stops this type [default: "SIGTERM"].
    #[serde(default)]
    #[schemars(schema_with = "values::signal_schema")]
    pub stop_signal: Option<Signal>,
    /// Grace after the stop signal before SIGKILL [default: the top-level `timeout`].
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    #[schemars(schema_with = "duration::json_schema")]
    pub stop_timeout: Option<Duration>,
    /// Which changes restart this type: true any, false none, an array only those
    /// matching these globs (relative to the app root).
    #[serde(default)]
    #[schemars(schema_with = "values::watch_globs_schema")]
    pub watch: Option<ProcessWatch>,
    /// When an instance counts as up: "port" (something listens on its PORT; web's
    /// default), { log = "REGEX" } or { http = "/PATH" } [default for other types: once
    /// spawned].
    #[serde(default)]
    #[schemars(schema_with = "values::ready_schema")]
    pub ready: Option<Ready>,
    /// Types whose instances must be up before this one starts.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub depends_on: Vec<Lined<String>>,
    /// Each instance on a pseudo-terminal of its own.
    pub tty: Option<bool>,
    /// The top-level `child_color`, for this type.
    pub child_color: Option<bool>,
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

/// hlocal.toml's JSON Schema, draft 7 (what taplo / Even Better TOML read).
pub fn json_schema() -> Schema {
    SchemaSettings::draft07()
        .with_transform(drop_null)
        .into_generator()
        .into_root_schema_for::<Settings>()
}

/// TOML has no null: a key left out is what `Option` means, so `null` is no value to
/// offer (`"type": ["boolean", "null"]` → `"boolean"`, `{"type": "null"}` out of anyOf).
fn drop_null(schema: &mut Schema) {
    let is_null = |v: &serde_json::Value| v.is_null() || *v == "null" || v["type"] == "null";
    if let Some(object) = schema.as_object_mut() {
        if object
            .get("default")
            .is_some_and(serde_json::Value::is_null)
        {
            object.remove("default");
        }
        for key in ["type", "anyOf"] {
            let Some(serde_json::Value::Array(items)) = object.get_mut(key) else {
                continue;
            };
            items.retain(|item| !is_null(item));
            if items.len() == 1 {
                let only = items.remove(0);
                object.remove(key);
                match only {
                    serde_json::Value::Object(fields) => object.extend(fields),
                    single => {
                        object.insert(key.to_string(), single);
                    }
                }
            }
        }
    }
    transform_subschemas(&mut drop_null, schema);
}
