//! The client commands: `hlocal ps`, `restart`, `stop`, `scale`, `logs`, `wait`, and
//! `hlocal start NAME…` while the app already runs. Each finds the app's control socket
//! from `-d`/`-f`/`--socket`, sends one request and prints the answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use serde_json::Value;

use crate::cli::{ControlArgs, LogsArgs, NamesArgs, PsArgs, ScaleArgs, WaitArgs};
use crate::config;
use crate::control::client::Client;
use crate::control::protocol::{Answer, Command, ErrorKind, LogStyle, StyleFormat};
use crate::error::Error;
use crate::input::duration;
use crate::options::{ColorChoice, LogFormat};
use crate::sys;

/// Exit status when no hlocal runs the app.
pub const NOT_RUNNING: i32 = 3;
/// Time for a ready app's answer to `wait` to arrive, even with `--timeout 0`.
const ANSWER_TIME: Duration = Duration::from_millis(200);

/// How long `hlocal wait` without `--timeout` waits for an hlocal to appear.
const START_GRACE: Duration = Duration::from_secs(5);
const CONNECT_RETRY: Duration = Duration::from_millis(50);

pub fn ps(args: PsArgs) -> Result<i32, Error> {
    let json = args.json;
    call(&args.control, Command::Ps, |result| {
        if json {
            println!("{result}");
        } else {
            print!("{}", ps_table(result));
        }
    })
}

pub fn restart(args: NamesArgs) -> Result<i32, Error> {
    let names = args.names;
    call(&args.control, Command::Restart { names }, print_done)
}

pub fn stop(args: NamesArgs) -> Result<i32, Error> {
    let names = args.names;
    call(&args.control, Command::Stop { names }, print_done)
}

/// `hlocal start NAME…` aimed at a running app; `None` when none runs (then `start`
/// runs the app itself).
pub fn start_names(
    root: &Path,
    socket: Option<&Path>,
    names: &[String],
) -> Option<Result<i32, Error>> {
    let runtime = runtime().ok()?;
    let mut client = runtime.block_on(Client::connect(root, socket))?;
    let command = Command::Start {
        names: names.to_vec(),
    };
    let answer = runtime.block_on(client.call(&command));
    Some(
        answer
            .map_err(Error::ControlLost)
            .map(|answer| conclude(answer, print_done)),
    )
}

pub fn scale(args: ScaleArgs) -> Result<i32, Error> {
    let formation = parse_counts(&args.counts)?;
    call(&args.control, Command::Scale { formation }, print_done)
}

pub fn logs(args: LogsArgs) -> Result<i32, Error> {
    let style = log_style(&args);
    let command = Command::Logs {
        names: args.names,
        lines: args.lines,
        follow: args.follow,
        style,
    };
    with_client(&args.control, async |mut client| {
        let answer = client.call(&command).await.map_err(Error::ControlLost)?;
        if !answer.ok {
            return Ok(conclude(answer, |_| {}));
        }
        // A closed stdout (`hlocal logs | head`) ends the command quietly.
        let _ = client.copy_stream(sys::write_stdout).await;
        Ok(0)
    })
}

pub fn wait(args: WaitArgs) -> Result<i32, Error> {
    let timeout = args
        .timeout
        .as_deref()
        .map(|text| duration::parse(text).map_err(|e| Error::named("--timeout", e)))
        .transpose()?;
    let started = Instant::now();
    // Started together with `hlocal start` (an editor's task and its preLaunchTask), the
    // wait may come before the socket exists: it keeps trying for a while.
    let patience = timeout.unwrap_or(START_GRACE);
    with_client_within(&args.control, patience, async |mut client| {
        let waiting = client.call(&Command::Wait);
        let answer = match timeout {
            // A ready app answers in a round trip: however short the limit, that long.
            Some(limit) => {
                match tokio::time::timeout_at(started + limit.max(ANSWER_TIME), waiting).await {
                    Ok(answer) => answer,
                    Err(_) => {
                        eprintln!(
                            "hlocal: error: the app was not ready after {}",
                            shown(limit)
                        );
                        return Ok(1);
                    }
                }
            }
            None => waiting.await,
        };
        Ok(conclude(answer.map_err(Error::ControlLost)?, |result| {
            if let Some(url) = result.get("url").and_then(Value::as_str) {
                println!("ready: {url}");
            } else {
                println!("ready");
            }
        }))
    })
}

/// Connects, sends `command`, prints a successful result with `show`; the exit status.
fn call(args: &ControlArgs, command: Command, show: impl FnOnce(&Value)) -> Result<i32, Error> {
    with_client(args, async |mut client| {
        let answer = client.call(&command).await.map_err(Error::ControlLost)?;
        Ok(conclude(answer, show))
    })
}

/// Runs `body` with a connection to the app's hlocal; exit 3 when none runs.
pub(super) fn with_client(
    args: &ControlArgs,
    body: impl AsyncFnOnce(Client) -> Result<i32, Error>,
) -> Result<i32, Error> {
    with_client_within(args, Duration::ZERO, body)
}

/// As [`with_client`], trying to connect for up to `patience` while none answers.
fn with_client_within(
    args: &ControlArgs,
    patience: Duration,
    body: impl AsyncFnOnce(Client) -> Result<i32, Error>,
) -> Result<i32, Error> {
    let (root, socket) = (root_of(args), args.socket.as_deref());
    runtime()?.block_on(async {
        let give_up = Instant::now() + patience;
        loop {
            if let Some(client) = Client::connect(&root, socket).await {
                return body(client).await;
            }
            if Instant::now() >= give_up {
                return Ok(not_running(args));
            }
            tokio::time::sleep(CONNECT_RETRY).await;
        }
    })
}

/// 0 and the result shown, or 1 and the problem on stderr as one line.
pub(super) fn conclude(answer: Answer, show: impl FnOnce(&Value)) -> i32 {
    match (answer.ok, answer.result, answer.error) {
        (true, Some(result), _) => {
            show(&result);
            0
        }
        (_, _, Some(problem)) => {
            eprintln!("hlocal: error: {}", problem.message);
            if problem.kind == ErrorKind::ShuttingDown {
                NOT_RUNNING
            } else {
                1
            }
        }
        _ => 0,
    }
}

fn print_done(result: &Value) {
    if let Some(text) = result.get("text").and_then(Value::as_str) {
        println!("{text}");
    }
}

fn not_running(args: &ControlArgs) -> i32 {
    let root = root_of(args);
    eprintln!(
        "hlocal: error: no hlocal is running the app in {}: start it with `hlocal start -d {}`",
        root.display(),
        root.display()
    );
    NOT_RUNNING
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::startup("cannot start the async runtime", e))
}

/// The app root as `start` finds it: `-d`, else the Procfile's directory, else `.`.
pub fn root_of(args: &ControlArgs) -> PathBuf {
    config::root_from(args.root.as_deref(), args.procfile.as_deref())
}

/// `web=3 worker=0` → counts; `TYPE=N` only (scaling is always explicit).
fn parse_counts(counts: &[String]) -> Result<BTreeMap<String, usize>, Error> {
    let mut formation = BTreeMap::new();
    for item in counts.iter().filter(|item| !item.is_empty()) {
        let parsed = item
            .split_once('=')
            .and_then(|(name, count)| Some((name.trim(), count.trim().parse::<usize>().ok()?)));
        match parsed {
            Some((name, count)) if !name.is_empty() => {
                formation.insert(name.to_string(), count);
            }
            _ => {
                let message = format!("\"{item}\" is not TYPE=N (e.g. web=3)");
                return Err(Error::named("scale", message));
            }
        }
    }
    Ok(formation)
}

fn log_style(args: &LogsArgs) -> LogStyle {
    let format = match (args.style.json, args.style.log_format) {
        (true, _) => StyleFormat::Json,
        (false, Some(LogFormat::Heroku)) => StyleFormat::Heroku,
        (false, _) => StyleFormat::Plain,
    };
    let color = args
        .style
        .color
        .unwrap_or(ColorChoice::Auto)
        .for_this_stdout();
    LogStyle {
        format,
        color,
        timestamps: !args.timestamps.no_timestamp,
    }
}

/// `ps`'s table: one line per instance, then the router's URL.
fn ps_table(result: &Value) -> String {
    let rows: Vec<[String; 7]> = result
        .get("instances")
        .and_then(Value::as_array)
        .map(|instances| instances.iter().map(ps_row).collect())
        .unwrap_or_default();
    let header = ["NAME", "STATE", "PID", "PORT", "UPTIME", "RESTARTS", "EXIT"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if let Some(url) = result.get("url").and_then(Value::as_str) {
        out.push_str(&format!("url: {url}\n"));
    }
    out
}

fn ps_row(instance: &Value) -> [String; 7] {
    let text = |key: &str| match instance.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "-".to_string(),
    };
    let uptime = instance
        .get("uptime_ms")
        .and_then(Value::as_u64)
        .map_or_else(|| "-".to_string(), |ms| shown(Duration::from_millis(ms)));
    [
        text("name"),
        text("state"),
        text("pid"),
        text("port"),
        uptime,
        text("restarts"),
        text("exit_code"),
    ]
}

/// `42s`, `3m05s`, `2h01m`: as long as it needs to be.
fn shown(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_are_type_equals_number() {
        let counts = parse_counts(&["web=3".into(), "worker=0".into()]).expect("valid");
        assert_eq!(
            counts,
            BTreeMap::from([("web".into(), 3), ("worker".into(), 0)])
        );
        assert!(parse_counts(&["web".into()]).is_err());
        assert!(parse_counts(&["web=-1".into()]).is_err());
        assert!(parse_counts(&["=2".into()]).is_err());
    }

    #[test]
    fn the_ps_table_aligns_its_columns() {
        let result = json!({
            "instances": [
                {"name": "web.1", "state": "up", "pid": 41, "port": 5007, "uptime_ms": 65_000,
                 "restarts": 0, "exit_code": null},
                {"name": "worker.1", "state": "crashed", "pid": null, "port": 5107,
                 "uptime_ms": null, "restarts": 3, "exit_code": 1},
            ],
            "url": "http://localhost:5006",
        });
        assert_eq!(
            ps_table(&result),
            "NAME      STATE    PID  PORT  UPTIME  RESTARTS  EXIT\n\
             web.1     up       41   5007  1m05s   0         -\n\
             worker.1  crashed  -    5107  -       3         1\n\
             url: http://localhost:5006\n"
        );
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(shown(Duration::from_secs(42)), "42s");
        assert_eq!(shown(Duration::from_secs(185)), "3m05s");
        assert_eq!(shown(Duration::from_secs(7260)), "2h01m");
    }
}
