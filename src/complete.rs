//! Dynamic shell completion: the values a NAME or TYPE may take, asked of the app in the
//! current directory when the shell completes (`hlocal completions SHELL` installs a
//! script that calls hlocal back; see docs/editors.md). Leaf of the CLI: `cli` attaches
//! these to its arguments, so nothing here may depend on `cli`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap_complete::CompletionCandidate;
use serde_json::Value;

use crate::control::client::Client;
use crate::control::protocol::Command;
use crate::input::procfile::{self, RELEASE};

/// The variable the shell scripts set when they call hlocal back for completions.
pub const ENV_VAR: &str = "HLOCAL_COMPLETE";

/// A running app answers `ps` in microseconds; past this, complete without it rather than
/// leave the shell hanging.
const ASK_LIMIT: Duration = Duration::from_millis(300);

/// Process types of `./Procfile`, the release phase's included (`hlocal run release`).
pub fn process_types() -> Vec<CompletionCandidate> {
    procfile_types()
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// What `hlocal scale` takes: `TYPE=` for each of the Procfile's types (not `release`).
pub fn scale_counts() -> Vec<CompletionCandidate> {
    procfile_types()
        .into_iter()
        .filter(|name| name != RELEASE)
        .map(|name| CompletionCandidate::new(format!("{name}=")))
        .collect()
}

/// What a NAME may be: the Procfile's types (not `release`, which is no instance), then
/// the running app's instances (`web.1`) when one answers on the control socket.
pub fn instance_names() -> Vec<CompletionCandidate> {
    let mut names: Vec<String> = procfile_types()
        .into_iter()
        .filter(|name| name != RELEASE)
        .collect();
    for name in running_instances() {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.into_iter().map(CompletionCandidate::new).collect()
}

/// Completion must never fail loudly: an unreadable Procfile completes nothing.
fn procfile_types() -> Vec<String> {
    procfile::load(Path::new("Procfile"))
        .map(|types| types.into_iter().map(|t| t.name).collect())
        .unwrap_or_default()
}

fn running_instances() -> Vec<String> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    // As the control commands find it: HLOCAL_SOCKET, else .hlocal.sock here.
    let socket = std::env::var_os("HLOCAL_SOCKET").map(PathBuf::from);
    let ask = async {
        let mut client = Client::connect(Path::new("."), socket.as_deref()).await?;
        client.call(&Command::Ps).await.ok()?.result
    };
    let answer = runtime.block_on(async { tokio::time::timeout(ASK_LIMIT, ask).await });
    answer
        .ok()
        .flatten()
        .map_or_else(Vec::new, |ps| names_in(&ps))
}

/// The instance names of a `ps` answer.
fn names_in(ps: &Value) -> Vec<String> {
    ps["instances"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|row| row["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Answers the shell's call-back when `HLOCAL_COMPLETE` is set, and exits.
pub fn answer_shell(cli: fn() -> clap::Command) {
    clap_complete::CompleteEnv::with_factory(cli)
        .var(ENV_VAR)
        .complete();
}
