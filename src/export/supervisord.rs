//! A supervisord program group, `APP.conf`: one `[program:APP-TYPE-N]` per instance (each
//! with its own `PORT`), the release as a program that runs once, `[group:APP]` over all.
//!
//! supervisord reads this file with Python's configparser (` ;` and ` #` start a comment,
//! values are one line) and `environment=` with a non-POSIX shlex that strips every
//! quote character at both ends of a value and knows no escapes. Values it cannot carry
//! are refused, naming the variable.

use std::fmt::Write;

use super::plan::{Plan, Process};
use super::quote;
use super::{File, HEADER};
use crate::error::{Error, InputError};
use crate::options::RestartPolicy;
use crate::sys::Signal;

const FORMAT: &str = "supervisord";

/// Lower starts first: the release before the types.
const RELEASE_PRIORITY: u32 = 100;
const TYPE_PRIORITY: u32 = 999;

pub fn render(plan: &Plan) -> Result<Vec<File>, Error> {
    let env = environment(plan)?;
    let mut programs = Vec::new();
    let mut sections = Vec::new();
    if let Some(release) = &plan.release {
        let name = format!("{}-release", plan.app);
        let head = program(plan, &name, &release.command, &env)?;
        sections.push(format!(
            "; The release phase: started first, but the programs below do not wait for it.\n{head}autostart=true\nautorestart=false\nstartsecs=0\nstopsignal={signal}\nstopwaitsecs={grace}\nstopasgroup=true\nkillasgroup=true\npriority={RELEASE_PRIORITY}\n",
            signal = signal_word(release.stop_signal),
            grace = quote::whole_seconds(release.stop_timeout),
        ));
        programs.push(name);
    }
    for process in plan.running() {
        for (n, port) in process.ports().enumerate() {
            let name = format!("{}-{}-{}", plan.app, process.name, n + 1);
            sections.push(instance(plan, process, &name, port, &env)?);
            programs.push(name);
        }
    }
    let text = format!(
        "{HEADER}\n[group:{app}]\nprograms={programs}\n\n{sections}",
        app = plan.app,
        programs = programs.join(","),
        sections = sections.join("\n")
    );
    Ok(vec![File {
        name: format!("{}.conf", plan.app),
        text,
    }])
}

fn program(plan: &Plan, name: &str, command: &str, env: &str) -> Result<String, Error> {
    let mut text = format!(
        "[program:{name}]\ncommand={}\n",
        command_line(name, command)?
    );
    let _ = writeln!(text, "directory={}", quote::percent_path(&plan.root));
    if let Some(user) = &plan.user {
        let _ = writeln!(text, "user={user}");
    }
    if !env.is_empty() {
        let _ = writeln!(text, "environment={env}");
    }
    Ok(text)
}

fn instance(
    plan: &Plan,
    process: &Process,
    name: &str,
    port: u16,
    env: &str,
) -> Result<String, Error> {
    let env = match env {
        "" => format!("PORT=\"{port}\""),
        vars => format!("PORT=\"{port}\",{vars}"),
    };
    let mut text = program(plan, name, &process.command, &env)?;
    let _ = write!(
        text,
        "autostart=true\nautorestart={restart}\nexitcodes=0\nstopsignal={signal}\nstopwaitsecs={grace}\nstopasgroup=true\nkillasgroup=true\npriority={TYPE_PRIORITY}\n",
        restart = restart(process.restart),
        signal = signal_word(process.stop_signal),
        grace = quote::whole_seconds(process.stop_timeout),
    );
    Ok(text)
}

/// supervisord's name for a signal: `TERM`, `INT`.
fn signal_word(signal: Signal) -> &'static str {
    signal.name().trim_start_matches("SIG")
}

fn restart(policy: RestartPolicy) -> &'static str {
    match policy {
        RestartPolicy::OnFailure => "unexpected",
        RestartPolicy::Always => "true",
        RestartPolicy::Never => "false",
    }
}

/// `/bin/sh -c "COMMAND"` for supervisord's POSIX shlex, `%` doubled (supervisord expands
/// `%(name)s`).
fn command_line(program: &str, command: &str) -> Result<String, Error> {
    if starts_comment(command) {
        return Err(InputError::NotExportable {
            what: program.to_string(),
            format: FORMAT,
            why: "its command has \" ;\" or \" #\", which supervisord's config reader takes for a comment".into(),
        }
        .into());
    }
    let quoted = quote::double_quoted(&command.replace('%', "%%"), &[]);
    Ok(format!("/bin/sh -c {quoted}"))
}

/// configparser's inline comments: `;` or `#` after whitespace.
fn starts_comment(text: &str) -> bool {
    text.as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_whitespace() && (w[1] == b';' || w[1] == b'#'))
}

/// `NAME="value",…` for every config var, or the first one supervisord cannot carry.
fn environment(plan: &Plan) -> Result<String, Error> {
    let pairs = plan
        .env
        .iter()
        .map(|(name, value)| Ok(format!("{name}={}", env_value(name, value)?)))
        .collect::<Result<Vec<String>, Error>>()?;
    Ok(pairs.join(","))
}

fn env_value(name: &str, value: &str) -> Result<String, Error> {
    let refuse = |why: &str| Err(quote::inexpressible(FORMAT, name, why));
    if value.chars().any(char::is_control) {
        return refuse("supervisord takes one line per value, without control characters");
    }
    if value.starts_with(['"', '\'']) || value.ends_with(['"', '\'']) {
        return refuse("supervisord strips quote characters at either end of a value");
    }
    if starts_comment(value) {
        return refuse("supervisord's config reader takes \" ;\" or \" #\" for a comment");
    }
    let value = value.replace('%', "%%");
    match (value.contains('"'), value.contains('\'')) {
        (false, _) => Ok(format!("\"{value}\"")),
        (true, false) => Ok(format!("'{value}'")),
        (true, true) => refuse("supervisord cannot quote a value with both kinds of quotes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_pick_the_quote_they_do_not_contain() {
        assert_eq!(
            env_value("A", "say \"hi\" now").ok(),
            Some("'say \"hi\" now'".into())
        );
        assert_eq!(
            env_value("A", "it's 100%").ok(),
            Some("\"it's 100%%\"".into())
        );
        assert!(env_value("A", "'quoted'").is_err());
        assert!(env_value("A", "a ;b").is_err());
        assert!(env_value("A", "l1\nl2").is_err());
        assert!(env_value("A", "it's \"x\" y").is_err());
    }
}
