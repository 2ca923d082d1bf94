//! Pure formatting of records: plain (foreman), Heroku Logplex, JSON; colors; padding.

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// foreman's `14:03:07 web.1  | line`.
    #[default]
    Plain,
    /// Logplex's `2026-11-22T14:03:07.123456+00:00 app[web.1]: line`.
    Heroku,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColorChoice {
    /// Color exactly when stdout is a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    Always,
    Never,
}

/// Resolved output options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputStyle {
    pub format: LogFormat,
    pub json: bool,
    pub color: bool,
    pub timestamps: bool,
}
