//! Command-line interface: clap derive structs only. Resolution into a validated
//! configuration happens in `config`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::ArgValueCandidates;

use crate::complete;

use crate::export::Format;
use crate::options::{Balance, ColorChoice, LogFormat, RestartPolicy};

#[derive(Debug, Parser)]
#[command(
    after_help = EXIT_STATUS,
    name = "hlocal",
    version,
    arg_required_else_help = true,
    about = "Run a Procfile app locally the way Heroku runs it"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Exit codes are stable and documented in `--help`.
const EXIT_STATUS: &str = "\
Exit status of `hlocal start`:
  0    after a requested shutdown (Ctrl-C, SIGTERM, SIGHUP), or every process exited 0
  N    the exiting process's status with --exit-on-exit; the first failure's status
       when every process ended for good; a failed release phase's status
  1    bad input: nothing was started
  2    usage error (unknown flag or command, missing argument)
  130  after a second Ctrl-C (everything killed at once)
  141  stdout was closed
`hlocal run` exits with its command's status (128+N after signal N, 127 not found);
`hlocal check` and `hlocal export` exit 0 when done, 1 on bad input; usage errors are 2.
`hlocal ps|restart|stop|scale|logs|wait|attach` (and `hlocal start NAME...` while the app runs)
exit 0 when done, 1 on bad input or an unknown name (`wait`: the app failed or the
timeout passed), 3 when no hlocal runs this app.
`hlocal init|completions|man|schema` exit 0 when done, 1 when they cannot.";

/// Parsed once per run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start every process type of the Procfile (or the ones named).
    #[command(after_help = EXIT_STATUS)]
    Start(Box<StartArgs>),
    /// Run a one-off command with the app's config vars.
    Run(RunArgs),
    /// Validate the Procfile, env files and hlocal.toml.
    Check(AppArgs),
    /// Write the app for systemd, Docker Compose, Kubernetes, a Procfile or supervisord.
    Export(ExportArgs),
    /// List the running app's instances: state, pid, port, uptime, restarts.
    Ps(PsArgs),
    /// Restart instances or types of the running app (none named: all).
    Restart(NamesArgs),
    /// Stop instances or types of the running app; they stay down until started (none
    /// named: shut the app down, as Ctrl-C would).
    Stop(NamesArgs),
    /// Change the running app's formation: `hlocal scale web=3 worker=0`.
    Scale(ScaleArgs),
    /// Print the running app's last log lines, and follow them with -f.
    Logs(LogsArgs),
    /// Wait until the app is ready: exit 0 ready, 1 failed, 3 not running (after waiting
    /// 5 s, or --timeout, for it to start).
    Wait(WaitArgs),
    /// Connect this terminal to a `tty` instance (a debugger's prompt); Ctrl-] detaches.
    Attach(AttachArgs),
    /// Set up an editor for this app: `hlocal init vscode` writes .vscode/tasks.json and
    /// launch.json, merged into the files that exist.
    Init(InitArgs),
    /// Print the shell script that completes hlocal's commands, flags and process names.
    Completions(CompletionsArgs),
    /// Print hlocal's man page (roff): `hlocal man | man -l -`; `hlocal man start`, a
    /// command's own page (hlocal-start(1)).
    Man(ManArgs),
    /// Print the JSON Schema of hlocal.toml, for editors that validate and complete it.
    Schema,
    /// The watchdog `hlocal start` runs beside itself; not for users.
    #[command(name = crate::sys::WATCHDOG_COMMAND, hide = true)]
    Watchdog(WatchdogArgs),
}

/// How the control commands find the running app: its root (as for `start`) or the
/// socket itself.
#[derive(Debug, Args, Clone, Default)]
pub struct ControlArgs {
    /// App root of the running hlocal [default: the Procfile's directory, else .].
    #[arg(short = 'd', long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The Procfile of the running app (its directory is the app root).
    #[arg(long, value_name = "FILE")]
    pub procfile: Option<PathBuf>,
    /// The control socket [default: .hlocal.sock in the app root].
    #[arg(long, value_name = "PATH", env = "HLOCAL_SOCKET")]
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct PsArgs {
    #[command(flatten)]
    pub control: ControlArgs,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct NamesArgs {
    #[command(flatten)]
    pub control: ControlArgs,
    /// Instances (`web.1`) or process types (`web`).
    #[arg(value_name = "NAME", add = ArgValueCandidates::new(complete::instance_names))]
    pub names: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct InitArgs {
    /// The editor to set up.
    #[arg(value_name = "EDITOR")]
    pub editor: Editor,
    /// App root to write the editor's files into [default: .].
    #[arg(short = 'd', long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Editor {
    Vscode,
}

#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

#[derive(Debug, Args, Clone)]
pub struct ManArgs {
    /// A command whose own page to print (`start`, `ps`, …).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ScaleArgs {
    #[command(flatten)]
    pub control: ControlArgs,
    /// New counts, as `web=3 worker=0` (or `web=3,worker=0`).
    #[arg(
        value_name = "TYPE=N",
        required = true,
        value_delimiter = ',',
        add = ArgValueCandidates::new(complete::scale_counts)
    )]
    pub counts: Vec<String>,
}

#[derive(Debug, Args, Clone)]
// `--json` and `--log-format` both choose the format: `logs` takes one at a time.
#[command(mut_arg("json", |json| json.conflicts_with("log_format")))]
pub struct LogsArgs {
    #[command(flatten)]
    pub control: ControlArgs,
    /// Instances (`web.1`) or process types (`web`) [default: all].
    #[arg(value_name = "NAME", add = ArgValueCandidates::new(complete::instance_names))]
    pub names: Vec<String>,
    /// Lines per instance.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 100)]
    pub lines: usize,
    /// Keep printing new lines until interrupted.
    #[arg(short = 'f', long)]
    pub follow: bool,
    #[command(flatten)]
    pub timestamps: TimestampArgs,
    #[command(flatten)]
    pub style: LogStyleArgs,
}

/// `--no-timestamp`, as `start` and `logs` take it (`start` follows it with its undoing
/// `--timestamp`, hence a struct of its own).
#[derive(Debug, Args, Clone, Default)]
pub struct TimestampArgs {
    /// Omit timestamps from log lines.
    #[arg(long)]
    pub no_timestamp: bool,
}

/// How log lines look, as `start` and `logs` take it (`start` follows `--json` with its
/// undoing `--no-json`; `logs` refuses `--json` with `--log-format`).
#[derive(Debug, Args, Clone, Default)]
pub struct LogStyleArgs {
    /// When to color output [default: auto].
    #[arg(long, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
    /// Log line format [default: plain].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct WaitArgs {
    #[command(flatten)]
    pub control: ControlArgs,
    /// Give up (exit 1) after this long [default: wait as long as it takes].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct AttachArgs {
    #[command(flatten)]
    pub control: ControlArgs,
    /// The instance (`web.1`; a type name means its first instance).
    #[arg(value_name = "NAME", add = ArgValueCandidates::new(complete::instance_names))]
    pub name: String,
}

/// What `hlocal start` tells its watchdog: the grace period for what it stops, and the
/// session mark of hlocal's processes. Its stdin is the pipe hlocal reports on.
#[derive(Debug, Args)]
pub struct WatchdogArgs {
    pub grace_ms: u64,
    pub session: String,
}

/// Where the app is and what config it reads; shared by every command.
#[derive(Debug, Args, Clone, Default)]
pub struct AppArgs {
    /// Procfile to read [default: Procfile in the app root].
    #[arg(short = 'f', long, value_name = "FILE")]
    pub procfile: Option<PathBuf>,
    /// App root: where processes run and .env and hlocal.toml are found [default: the Procfile's directory].
    #[arg(short = 'd', long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Env file(s) to read instead of .env; repeatable and comma-separated.
    #[arg(short = 'e', long = "env", value_name = "FILE", value_delimiter = ',')]
    pub env: Vec<PathBuf>,
    /// The `web` command when there is no Procfile.
    #[arg(long, value_name = "CMD")]
    pub start_cmd: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct StartArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// Formation as `web=2,worker=1` or process types (`web worker`).
    #[arg(value_name = "TYPE", add = ArgValueCandidates::new(complete::instance_names))]
    pub types: Vec<String>,
    /// Formation: `web=2,worker=1`, or `all=N`.
    #[arg(short = 'm', long, value_name = "FORMATION")]
    pub formation: Option<String>,
    /// Public port [default: PORT from the env files, else from the shell, else 5006].
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Grace after SIGTERM before SIGKILL at shutdown [default: 5s].
    #[arg(short = 't', long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// How long a web process may take to bind $PORT [default: 60s].
    #[arg(long, value_name = "DURATION")]
    pub boot_timeout: Option<String>,
    /// Restart policy for processes that end [default: on-failure].
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<RestartPolicy>,
    /// Stop everything when any process exits, and exit with its status (foreman's mode).
    #[arg(long, overrides_with = "no_exit_on_exit")]
    pub exit_on_exit: bool,
    /// Keep running when a process exits (undoes hlocal.toml's exit_on_exit = true).
    #[arg(long, overrides_with = "exit_on_exit")]
    pub no_exit_on_exit: bool,
    /// Skip the release phase.
    #[arg(long, overrides_with = "release")]
    pub no_release: bool,
    /// Run the release phase (undoes hlocal.toml's no_release = true).
    #[arg(long, overrides_with = "no_release")]
    pub release: bool,
    /// Set DYNO=web.1 (apps read DYNO as "running on Heroku").
    #[arg(long, overrides_with = "no_dyno")]
    pub dyno: bool,
    /// Do not set DYNO (undoes hlocal.toml's dyno = true).
    #[arg(long, overrides_with = "dyno")]
    pub no_dyno: bool,
    /// No router: instance ports exactly as foreman's.
    #[arg(long, overrides_with = "router")]
    pub no_router: bool,
    /// Put the router in front of web (undoes hlocal.toml's no_router = true).
    #[arg(long, overrides_with = "no_router")]
    pub router: bool,
    /// How the router picks a web instance [default: round-robin].
    #[arg(long, value_name = "STRATEGY")]
    pub balance: Option<Balance>,
    /// Router: H12 after this long without a response [default: 30s].
    #[arg(long, value_name = "DURATION")]
    pub request_timeout: Option<String>,
    /// Router: close a connection whose request head takes longer than this [default: 30s].
    #[arg(long, value_name = "DURATION")]
    pub header_timeout: Option<String>,
    /// On restarts, start the new instance and wait until it is up before stopping the old one.
    #[arg(long, overrides_with = "no_preboot")]
    pub preboot: bool,
    /// Stop the old instance before starting the new one (undoes hlocal.toml's preboot = true).
    #[arg(long, overrides_with = "preboot")]
    pub no_preboot: bool,
    /// Restart processes when files change under PATH [default: the app root]; repeatable.
    #[arg(short = 'w', long, value_name = "PATH", num_args = 0..=1, default_missing_value = "", value_delimiter = ',', overrides_with = "no_watch")]
    pub watch: Option<Vec<String>>,
    /// Watch nothing (undoes hlocal.toml's watch, the per-process ones included).
    #[arg(long, overrides_with = "watch")]
    pub no_watch: bool,
    /// Quiet period before a change restarts processes [default: 200ms].
    #[arg(long, value_name = "DURATION")]
    pub watch_debounce: Option<String>,
    /// Ignore changes matching GLOB (gitignore syntax); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub watch_ignore: Vec<String>,
    /// Run each instance of TYPE on a pseudo-terminal of its own (for `hlocal attach`);
    /// repeatable.
    #[arg(long, value_name = "TYPE")]
    pub tty: Vec<String>,
    #[command(flatten)]
    pub timestamps: TimestampArgs,
    // Overriding works both ways: whichever of the two comes last wins.
    /// Print timestamps (undoes hlocal.toml's no_timestamp = true).
    #[arg(long, overrides_with = "no_timestamp")]
    pub timestamp: bool,
    #[command(flatten)]
    pub style: LogStyleArgs,
    /// Print text (undoes hlocal.toml's json = true).
    #[arg(long, overrides_with = "json")]
    pub no_json: bool,
    /// The control socket [default: .hlocal.sock in the app root].
    #[arg(long, value_name = "PATH", env = "HLOCAL_SOCKET")]
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// PORT for the command [default: as for `start`].
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Set DYNO=run.1 (hlocal.toml's dyno = true does too).
    #[arg(long, overrides_with = "no_dyno")]
    pub dyno: bool,
    /// Do not set DYNO (undoes hlocal.toml's dyno = true).
    #[arg(long, overrides_with = "dyno")]
    pub no_dyno: bool,
    /// The command (or a Procfile process type) and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD",
        add = ArgValueCandidates::new(complete::process_types)
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// What to write for.
    #[arg(value_name = "FORMAT")]
    pub format: Format,
    /// Directory to write the files into (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Formation: `web=2,worker=1`, or `all=N` [default: hlocal.toml's, else one of each].
    #[arg(short = 'm', long, value_name = "FORMATION")]
    pub formation: Option<String>,
    /// Base port: type i's instances get PORT + 100*i + (n-1) [default: as for `start`].
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Grace after the stop signal, unless a type sets its own `stop_timeout` [default: 5s].
    #[arg(short = 't', long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Name of the app in unit, service and object names [default: the app root's name].
    #[arg(short = 'a', long = "app", value_name = "NAME")]
    pub app_name: Option<String>,
    /// Account the processes run as (systemd, Compose, supervisord).
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,
    /// Container image (Compose, Kubernetes) [default: the app's name].
    #[arg(short = 'i', long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Leave out the release phase.
    #[arg(long)]
    pub no_release: bool,
    /// Print the files to stdout instead of writing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Write into DIR even when it is not empty (files of the same name are replaced).
    #[arg(long)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use clap::error::ErrorKind;

    use super::*;

    fn parse(words: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(["hlocal"].iter().chain(words)).map(|cli| cli.command)
    }

    fn start(flags: &[&str]) -> StartArgs {
        match parse(&[&["start"], flags].concat()) {
            Ok(Command::Start(args)) => *args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn start_takes_the_last_of_a_flag_and_its_undoing() {
        let undone = start(&["--no-timestamp", "--timestamp", "--json", "--no-json"]);
        assert!(!undone.timestamps.no_timestamp && undone.timestamp);
        assert!(!undone.style.json && undone.no_json);
        let redone = start(&["--timestamp", "--no-timestamp", "--no-json", "--json"]);
        assert!(redone.timestamps.no_timestamp && !redone.timestamp);
        assert!(redone.style.json && !redone.no_json);
    }

    #[test]
    fn only_logs_refuses_json_with_a_log_format() {
        for flags in [
            ["--json", "--log-format", "plain"],
            ["--log-format", "plain", "--json"],
        ] {
            let refused = parse(&[&["logs"], &flags[..]].concat()).map(|_| ());
            assert_eq!(
                refused.map_err(|e| e.kind()),
                Err(ErrorKind::ArgumentConflict)
            );
            // `start` checks the pair against hlocal.toml too, after parsing.
            let started = start(&flags);
            assert!(started.style.json && started.style.log_format == Some(LogFormat::Plain));
        }
    }
}
