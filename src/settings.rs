//! TEMPORARY local placeholder until the inputs branch delivers hlocal.toml parsing.
use std::path::{Path, PathBuf};
use std::time::Duration;
use regex::Regex;
use crate::error::Error;
use crate::output::{ColorChoice, LogFormat};
use crate::router::Balance;
use crate::supervisor::policy::RestartPolicy;
use crate::sys::Signal;
pub const FILE_NAME: &str = "hlocal.toml";
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub procfile: Option<PathBuf>, pub env: Option<Vec<String>>, pub start_cmd: Option<String>, pub formation: Option<String>,
    pub port: Option<u16>, pub timeout: Option<Duration>, pub boot_timeout: Option<Duration>, pub request_timeout: Option<Duration>, pub watch_debounce: Option<Duration>,
    pub restart: Option<RestartPolicy>, pub exit_on_exit: Option<bool>, pub no_release: Option<bool>, pub dyno: Option<bool>, pub no_router: Option<bool>, pub preboot: Option<bool>, pub no_timestamp: Option<bool>, pub json: Option<bool>,
    pub balance: Option<Balance>, pub color: Option<ColorChoice>, pub log_format: Option<LogFormat>,
    pub watch: Option<WatchSetting>, pub watch_ignore: Option<Vec<String>>,
    pub processes: Vec<(String, ProcessSettings)>,
}
impl Settings { pub fn process(&self, name: &str) -> Option<&ProcessSettings> { self.processes.iter().find(|(n, _)| n == name).map(|(_, p)| p) } }
#[derive(Debug, Clone)] pub enum WatchSetting { Enabled(bool), Paths(Vec<String>) }
#[derive(Debug, Clone, Default)]
pub struct ProcessSettings { pub restart: Option<RestartPolicy>, pub stop_signal: Option<Signal>, pub stop_timeout: Option<Duration>, pub watch: Option<ProcessWatch>, pub ready: Option<Ready>, pub depends_on: Vec<String> }
#[derive(Debug, Clone)] pub enum ProcessWatch { Off, All, Globs(Vec<String>) }
#[derive(Debug, Clone)] pub enum Ready { Port, Log(Regex), Http(String) }
pub fn load(root: &Path) -> Result<Option<Settings>, Error> { let _ = root; Ok(None) }
pub fn validate(s: &Settings, path: &Path, names: &[&str]) -> Result<(), Error> { let _ = (s, path, names); Ok(()) }
