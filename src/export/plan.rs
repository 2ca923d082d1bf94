//! The app to export, in the terms every format shares, built from the `StartConfig`
//! that `hlocal start` would run with (so the same files, flags and hlocal.toml settings
//! are read, and refused, the same way).

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::options::RestartPolicy;
use crate::ports;
use crate::supervisor::ready::Readiness;
use crate::supervisor::spec::StartConfig;
use crate::sys::Signal;

/// What every format is given.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `--app`, else the app root's directory name: a lowercase DNS label.
    pub app: String,
    /// The app root, absolute: where the processes run.
    pub root: PathBuf,
    /// The export directory, absolute: where files that units refer to are.
    pub dir: PathBuf,
    /// `--user`: the account processes run as, where the engine has one.
    pub user: Option<String>,
    /// `--image`, else the app's name: the container image (compose, kubernetes).
    pub image: String,
    /// Config vars from the env files in first-seen order, `PORT` left out (every
    /// process gets its own).
    pub env: Vec<(String, String)>,
    /// The release phase, unless `--no-release`.
    pub release: Option<Release>,
    /// The formation's types in Procfile order, `release` excluded.
    pub processes: Vec<Process>,
}

/// The release phase: its command, and how it is stopped (`[process.release]`).
#[derive(Debug, Clone)]
pub struct Release {
    pub command: String,
    pub stop_signal: Signal,
    pub stop_timeout: Duration,
}

/// One process type and its settings.
#[derive(Debug, Clone)]
pub struct Process {
    pub name: String,
    pub command: String,
    pub count: usize,
    /// `PORT` of instance 1 (foreman's layout: base + 100 × type index); instance n
    /// gets `port + n - 1`.
    pub port: u16,
    pub restart: RestartPolicy,
    pub stop_signal: Signal,
    pub stop_timeout: Duration,
    pub ready: Ready,
    /// Names of the types that must be up first (hlocal.toml `depends_on`).
    pub depends_on: Vec<String>,
}

/// hlocal.toml's `ready`, as text the formats can carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// No check: up once started.
    Started,
    /// Something listens on `PORT`.
    Port,
    /// `GET path` on `PORT` answers 2xx or 3xx.
    Http(String),
    /// A line of output matches this regex: no engine can check that.
    Log(String),
}

/// What the command line adds to the loaded configuration.
pub struct Naming<'a> {
    pub app: Option<&'a str>,
    pub user: Option<&'a str>,
    pub image: Option<&'a str>,
    pub dir: &'a Path,
}

impl Plan {
    pub fn new(config: StartConfig, naming: &Naming<'_>) -> Result<Plan, Error> {
        let root = absolute(&config.root)?;
        let app = match naming.app {
            Some(name) => checked_app_name(name)?,
            None => app_name_from(&root),
        };
        let names: Vec<String> = config.types.iter().map(|t| t.name.clone()).collect();
        let processes = config
            .types
            .into_iter()
            .map(|t| Process {
                depends_on: t
                    .depends_on
                    .iter()
                    .filter_map(|&i| names.get(i).cloned())
                    .collect(),
                ready: Ready::from(t.ready),
                name: t.name,
                command: t.command,
                count: t.count,
                port: t.first_port,
                restart: t.restart,
                stop_signal: t.stop_signal,
                stop_timeout: t.stop_timeout,
            })
            .collect();
        Ok(Plan {
            image: naming.image.map_or_else(|| app.clone(), str::to_string),
            app,
            root,
            dir: absolute(naming.dir)?,
            user: naming.user.map(str::to_string),
            env: config
                .env
                .iter()
                .filter(|(name, _)| name != "PORT")
                .cloned()
                .collect(),
            release: config.release.map(|r| Release {
                command: r.command,
                stop_signal: r.stop_signal,
                stop_timeout: r.stop_timeout,
            }),
            processes,
        })
    }

    /// The types that run at least one instance.
    pub fn running(&self) -> impl Iterator<Item = &Process> {
        self.processes.iter().filter(|p| p.count > 0)
    }
}

impl Process {
    /// `PORT` of each instance, instance 1 first.
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        (1..=self.count).map(|n| ports::instance_port(self.port, n))
    }

    /// Whether the type's own readiness check needs its port exposed.
    pub fn listens(&self) -> bool {
        self.name == "web" || matches!(self.ready, Ready::Port | Ready::Http(_))
    }
}

/// The restart policy in the words systemd and Compose share.
pub fn restart_word(policy: RestartPolicy) -> &'static str {
    match policy {
        RestartPolicy::OnFailure => "on-failure",
        RestartPolicy::Always => "always",
        RestartPolicy::Never => "no",
    }
}

impl From<Readiness> for Ready {
    fn from(readiness: Readiness) -> Ready {
        match readiness {
            Readiness::Spawned => Ready::Started,
            Readiness::Port => Ready::Port,
            Readiness::Http(path) => Ready::Http(path),
            Readiness::Log(regex) => Ready::Log(regex.as_str().to_string()),
        }
    }
}

/// `path` absolute and normalised, as systemd requires (`WorkingDirectory=` and
/// `EnvironmentFile=` with `..` are refused or ignored): resolved on disk when it
/// exists, else with `.` and `..` taken out of the text.
fn absolute(path: &Path) -> Result<PathBuf, Error> {
    if let Ok(resolved) = std::fs::canonicalize(path) {
        return Ok(resolved);
    }
    let absolute = std::path::absolute(path).map_err(|e| Error::io("resolving path", path, e))?;
    let mut normal = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    Ok(normal)
}

/// The longest app name that leaves room for `-TYPE` suffixes within a DNS label (63).
const MAX_APP_NAME: usize = 30;

/// `--app` becomes part of unit, service and object names: a lowercase DNS label, which
/// every engine accepts.
fn checked_app_name(name: &str) -> Result<String, Error> {
    let label = name.len() <= MAX_APP_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if label && !name.is_empty() {
        return Ok(name.to_string());
    }
    Err(Error::named(
        "--app",
        format!(
            "{name:?}: use 1 to {MAX_APP_NAME} lowercase letters, digits and \"-\", not starting or ending with \"-\""
        ),
    ))
}

/// The root directory's name made into a valid app name (`My_App` → `my-app`).
fn app_name_from(root: &Path) -> String {
    let base = root
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mapped: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed: String = mapped
        .trim_matches('-')
        .chars()
        .take(MAX_APP_NAME)
        .collect();
    match trimmed.trim_end_matches('-') {
        "" => "app".to_string(),
        name => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_from_directories_are_dns_labels() {
        assert_eq!(app_name_from(Path::new("/src/My_App")), "my-app");
        assert_eq!(app_name_from(Path::new("/src/__")), "app");
        assert_eq!(app_name_from(Path::new("/")), "app");
        assert_eq!(app_name_from(Path::new("/x/héllo wörld")), "h-llo-w-rld");
    }

    #[test]
    fn app_flag_must_be_a_dns_label() {
        assert!(checked_app_name("shop-2").is_ok());
        for bad in ["", "Shop", "-shop", "shop-", "a_b", &"a".repeat(31)] {
            assert!(checked_app_name(bad).is_err(), "{bad:?}");
        }
    }
}
