//! The checks hlocal.toml needs the Procfile for: `[process.X]` and `depends_on` names,
//! `[process.release]`'s keys, dependency cycles, the formation's names.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::schema::{ProcessSettings, Settings};
use super::values::Lined;
use crate::error::Error;
use crate::input::formation::{self, FormationError};
use crate::input::procfile::RELEASE;
use crate::input::textfile::excerpt;

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
