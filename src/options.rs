//! The choices a user makes on the command line or in hlocal.toml that several layers
//! share: the CLI and the settings file parse them, the supervisor, the printer and the
//! router act on them. A leaf: it depends on no other module of hlocal.

/// When a process that ended should be started again.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Restart after a non-zero exit or a death by signal; exit 0 stays `exited`.
    #[default]
    OnFailure,
    /// Restart after any exit.
    Always,
    /// Never restart.
    Never,
}

impl RestartPolicy {
    pub fn should_restart(self, succeeded: bool) -> bool {
        match self {
            RestartPolicy::OnFailure => !succeeded,
            RestartPolicy::Always => true,
            RestartPolicy::Never => false,
        }
    }
}

/// `--log-format`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// foreman's `14:03:07 web.1  | line`.
    #[default]
    Plain,
    /// Logplex's `2026-11-22T14:03:07.123456+00:00 app[web.1]: line`.
    Heroku,
}

/// `--color`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ColorChoice {
    /// Color exactly when stdout is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// `auto` is "stdout is a terminal and NO_COLOR is unset or empty", whatever `TERM` says.
    pub fn resolve(self, stdout_is_terminal: bool, no_color_set: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stdout_is_terminal && !no_color_set,
        }
    }

    /// [`ColorChoice::resolve`] for this process's stdout and `NO_COLOR`. An empty
    /// `NO_COLOR` counts as unset, as no-color.org defines it ("present and not an empty
    /// string"), so `start` and `logs` agree on it.
    pub fn for_this_stdout(self) -> bool {
        use std::io::IsTerminal as _;
        self.resolve(std::io::stdout().is_terminal(), no_color_asked())
    }
}

/// `NO_COLOR` is set to something other than the empty string.
fn no_color_asked() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// `--balance`: Heroku's router picks a dyno at random; round-robin is more predictable
/// locally, so it is the default.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    #[default]
    RoundRobin,
    Random,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        assert!(RestartPolicy::OnFailure.should_restart(false));
        assert!(!RestartPolicy::OnFailure.should_restart(true));
        assert!(RestartPolicy::Always.should_restart(true));
        assert!(!RestartPolicy::Never.should_restart(false));
    }

    #[test]
    fn color_choice() {
        assert!(ColorChoice::Auto.resolve(true, false));
        assert!(!ColorChoice::Auto.resolve(true, true));
        assert!(!ColorChoice::Auto.resolve(false, false));
        assert!(ColorChoice::Always.resolve(false, true));
        assert!(!ColorChoice::Never.resolve(true, false));
    }
}
