//! What the supervisor is asked to run: the whole `hlocal start` configuration, one spec
//! per process type and the release phase. `config` builds these from the command line,
//! hlocal.toml and the env files; the supervisor only reads them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::options::RestartPolicy;
use crate::output::OutputStyle;
use crate::router::RouterConfig;
use crate::supervisor::ready::Readiness;
use crate::sys::Signal;
use crate::watch::{ProcessFilter, WatchConfig};

/// Everything `hlocal start` needs.
#[derive(Debug, Clone)]
pub struct StartConfig {
    pub root: PathBuf,
    /// Config vars from the env files, in first-seen order.
    pub env: Arc<Vec<(String, String)>>,
    /// `path:line: ${NAME} is not set…` for each unset reference in the env files.
    pub env_warnings: Vec<String>,
    /// Process types in Procfile order, `release` excluded.
    pub types: Vec<TypeSpec>,
    pub release: Option<ReleaseSpec>,

    pub router: Option<RouterConfig>,
    pub style: OutputStyle,
    pub boot_timeout: Duration,
    /// `-t`: grace after the stop signal, unless a type sets its own `stop_timeout`.
    pub timeout: Duration,
    pub exit_on_exit: bool,
    pub dyno: bool,
    pub preboot: bool,
    /// `-w` (or `watch = …` in hlocal.toml): every process restarts on any change,
    /// unless its own `watch` setting says otherwise.
    pub watch_all: bool,
    /// Set when anything is watched (globally or by one process's globs).
    pub watch: Option<WatchConfig>,
    /// `--socket` / `HLOCAL_SOCKET`: where the control socket goes instead of the root.
    pub socket: Option<PathBuf>,
    /// Children get `FORCE_COLOR`/`CLICOLOR_FORCE` (hlocal prints in color and the
    /// top-level `child_color` is not false); the release phase follows this.
    pub force_color: bool,
}

impl StartConfig {
    /// A file change restarts the instances of `types[index]`: hlocal watches, and the
    /// type's own `watch` setting (or `-w` for a type without one) says so.
    pub fn watches(&self, index: usize) -> bool {
        self.watch.is_some()
            && match self.types[index].watch {
                TypeWatch::Off => false,
                TypeWatch::Inherit => self.watch_all,
                TypeWatch::Any | TypeWatch::Only(_) => true,
            }
    }
}

/// One process type of the formation.
#[derive(Debug, Clone)]
pub struct TypeSpec {
    pub name: String,
    pub command: String,
    /// Position in the Procfile (release excluded): color and port block.
    pub index: usize,
    pub count: usize,
    /// `PORT` of instance 1; instance n gets `first_port + n - 1`.
    pub first_port: u16,
    pub restart: RestartPolicy,
    pub stop_signal: Signal,
    /// Grace between the stop signal and SIGKILL.
    pub stop_timeout: Duration,
    pub ready: Readiness,
    pub watch: TypeWatch,
    /// Indexes into `StartConfig::types` that must be `up` before this type starts.
    pub depends_on: Vec<usize>,
    /// Each instance on a pseudo-terminal of its own (`tty = true`, `--tty TYPE`).
    pub tty: bool,
    /// As [`StartConfig::force_color`], with the type's own `child_color`.
    pub force_color: bool,
}

/// Which file changes restart a type.
#[derive(Debug, Clone)]
pub enum TypeWatch {
    /// Any change, when watching is on (`-w`).
    Inherit,
    /// `watch = false`: never.
    Off,
    /// `watch = true`: any change, even without `-w`.
    Any,
    /// `watch = ["src/**/*.py"]`: changes matching these globs.
    Only(ProcessFilter),
}

/// The `release` process type: run once, to completion, before the formation.
#[derive(Debug, Clone)]
pub struct ReleaseSpec {
    pub command: String,
    /// Its position in the Procfile, for its color.
    pub index: usize,
    /// `[process.release]`'s, for a shutdown during the release phase.
    pub stop_signal: Signal,
    pub stop_timeout: Duration,
}
