//! The tables of hlocal.toml as users write them: the top level (the long flags of
//! `start`) and `[process.TYPE]`. Each key's value type and its checks are in `values`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::values::{
    EnvFile, Lined, ProcessWatch, Ready, WatchSetting, env_files, formation_spec, non_empty_path,
    non_empty_string, nonzero_port,
};
use crate::input::duration;
use crate::input::formation::Formation;
use crate::options::{Balance, ColorChoice, LogFormat, RestartPolicy};
use crate::sys::Signal;

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
    #[serde(default, deserialize_with = "formation_spec")]
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
    /// `false`: children are not told to print in color (`FORCE_COLOR`, `CLICOLOR_FORCE`).
    pub child_color: Option<bool>,
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
