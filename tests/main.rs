//! Integration tests: every module drives the real `hlocal` binary on apps written to
//! temp directories (see `harness`).

mod harness;

/// Configuration as users write it: `.env` literals and `${VAR}`, optional env files,
/// `run` without a Procfile, unspawnable inputs, usage errors.
mod config;
/// The control socket: `ps`, `restart`, `stop`, `start`, `scale`, `logs`, `wait`.
mod control;
/// Editors and shells: markers, `init vscode`, completions, man page, hlocal.toml's schema.
mod editor;
/// `hlocal export`: golden files, the engines' own validators, config vars round-tripped.
mod export;
/// `--log-format heroku`, `--json`, colors.
mod formats;
/// Bad input: exact one-line errors with file and line, exit 1, nothing started.
mod inputs;
/// States, readiness, restart policy and back-off, boot timeout, dependencies.
mod lifecycle;
/// Log integrity: partial lines, invalid UTF-8, long lines, a million lines.
mod logs;
/// The router: balancing, headers, logs, H-codes, streaming, upgrades, preboot.
mod router;
/// `hlocal run` and `hlocal check`.
mod run;
/// Shutdown in every way it can happen, and no process left behind.
mod shutdown;
/// `hlocal start`: line format, ports, env, formation, release, exit statuses.
mod start;
/// Pseudo-terminals, children's colors, `hlocal attach`.
mod terminals;
/// Restarts on file changes.
mod watch;
