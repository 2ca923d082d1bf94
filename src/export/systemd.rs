//! systemd units, as foreman writes them: `APP.target` wants every instance, each type is
//! a template `APP-TYPE@.service` whose instance name is its port (`APP-web@5006`), the
//! release is a oneshot `APP-release.service` that instances require and start after,
//! and the config vars are one `EnvironmentFile=`, `APP.env`, in the export directory.

use std::fmt::Write;
use std::time::Duration;

use super::plan::{self, Plan, Process, Ready, Release};
use super::quote::{self, double_quoted};
use super::{File, HEADER};
use crate::error::Error;

const FORMAT: &str = "systemd";

pub fn render(plan: &Plan) -> Result<Vec<File>, Error> {
    let mut files = vec![
        File {
            name: format!("{}.target", plan.app),
            text: target(plan),
        },
        File {
            name: env_file_name(plan),
            text: env_file(plan)?,
        },
    ];
    if let Some(release) = &plan.release {
        files.push(File {
            name: release_unit(plan),
            text: release_service(plan, release),
        });
    }
    for process in plan.running() {
        files.push(File {
            name: format!("{}-{}@.service", plan.app, process.name),
            text: template(plan, process),
        });
    }
    Ok(files)
}

fn env_file_name(plan: &Plan) -> String {
    format!("{}.env", plan.app)
}

fn release_unit(plan: &Plan) -> String {
    format!("{}-release.service", plan.app)
}

fn instances(plan: &Plan, process: &Process) -> Vec<String> {
    process
        .ports()
        .map(|port| format!("{}-{}@{port}.service", plan.app, process.name))
        .collect()
}

fn target(plan: &Plan) -> String {
    let mut wants: Vec<String> = plan.release.iter().map(|_| release_unit(plan)).collect();
    for process in plan.running() {
        wants.extend(instances(plan, process));
    }
    format!(
        "{HEADER}\n[Unit]\nDescription={app}\nWants={wants}\n\n[Install]\nWantedBy=multi-user.target\n",
        app = plan.app,
        wants = wants.join(" ")
    )
}

/// systemd's EnvironmentFile: double quotes keep everything (newlines included) except
/// `\`, `"`, `$` and `` ` ``, which take a backslash; no variable is expanded. systemd
/// drops a variable whose name is not a shell name or whose value has control characters
/// other than tab and newline, so those are refused here rather than lost there.
fn env_file(plan: &Plan) -> Result<String, Error> {
    let mut text = format!("{HEADER}\n");
    for (name, value) in &plan.env {
        if !quote::is_shell_name(name) {
            return Err(quote::inexpressible(
                FORMAT,
                name,
                "systemd takes only letters, digits and \"_\" in a variable name",
            ));
        }
        if value
            .chars()
            .any(|c| c.is_control() && c != '\t' && c != '\n')
        {
            return Err(quote::inexpressible(
                FORMAT,
                name,
                "systemd refuses control characters other than tab and newline in a value",
            ));
        }
        let _ = writeln!(text, "{name}={}", double_quoted(value, &['$', '`']));
    }
    Ok(text)
}

/// `/bin/sh -c "COMMAND"` in ExecStart's syntax: C-style escapes inside the quotes, `%`
/// starts a specifier and `$` a systemd variable, each doubled to stay literal.
fn exec_start(command: &str) -> String {
    let literal = command.replace('%', "%%").replace('$', "$$");
    let quoted = double_quoted(&literal, &[]).replace('\t', "\\t");
    format!("ExecStart=/bin/sh -c {quoted}")
}

fn service_common(plan: &Plan, command: &str) -> String {
    let mut text = String::new();
    if let Some(user) = &plan.user {
        let _ = writeln!(text, "User={user}");
    }
    let _ = writeln!(text, "WorkingDirectory={}", quote::percent_path(&plan.root));
    let _ = writeln!(
        text,
        "EnvironmentFile={}",
        quote::percent_path(&plan.dir.join(env_file_name(plan)))
    );
    let _ = writeln!(text, "{}", exec_start(command));
    text
}

fn release_service(plan: &Plan, release: &Release) -> String {
    format!(
        "{HEADER}\n[Unit]\nDescription={app} release\nPartOf={app}.target\nAfter=network.target\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n{common}KillMode=control-group\nKillSignal={signal}\nTimeoutStopSec={timeout}\n",
        app = plan.app,
        common = service_common(plan, &release.command),
        signal = release.stop_signal,
        timeout = stop_timeout(release.stop_timeout),
    )
}

fn template(plan: &Plan, process: &Process) -> String {
    let app = &plan.app;
    let mut unit = format!(
        "{HEADER}\n[Unit]\nDescription={app} {name} on port %i\nPartOf={app}.target\n",
        name = process.name
    );
    let mut after = vec!["network.target".to_string()];
    if plan.release.is_some() {
        let _ = writeln!(unit, "Requires={}", release_unit(plan));
        after.push(release_unit(plan));
    }
    let dependencies: Vec<String> = process
        .depends_on
        .iter()
        .filter_map(|name| plan.running().find(|p| &p.name == name))
        .flat_map(|dependency| instances(plan, dependency))
        .collect();
    if !dependencies.is_empty() {
        let _ = writeln!(
            unit,
            "# depends_on = {:?}: systemd starts this after them, not once they are ready.",
            process.depends_on
        );
        let _ = writeln!(unit, "Wants={}", dependencies.join(" "));
        after.extend(dependencies);
    }
    let _ = writeln!(unit, "After={}", after.join(" "));
    if let Some(note) = ready_note(&process.ready) {
        let _ = writeln!(unit, "{note}");
    }
    let _ = write!(
        unit,
        "\n[Service]\nType=simple\nEnvironment=PORT=%i\n{common}Restart={restart}\nKillMode=control-group\nKillSignal={signal}\nTimeoutStopSec={timeout}\nSyslogIdentifier={app}-{name}\n",
        common = service_common(plan, &process.command),
        restart = plan::restart_word(process.restart),
        signal = process.stop_signal,
        timeout = stop_timeout(process.stop_timeout),
        name = process.name,
    );
    unit
}

fn ready_note(ready: &Ready) -> Option<String> {
    let check = match ready {
        Ready::Started => return None,
        Ready::Port => "port".to_string(),
        Ready::Http(path) => format!("http {path:?}"),
        Ready::Log(regex) => format!("log {regex:?}"),
    };
    Some(format!(
        "# ready ({check}) is not expressible: systemd counts this service up once it is started."
    ))
}

/// `TimeoutStopSec=0` would mean "wait forever" to systemd; hlocal's 0 means "no grace".
fn stop_timeout(grace: Duration) -> String {
    if grace.is_zero() {
        return "1ms".to_string();
    }
    quote::duration(grace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_start_keeps_dollar_percent_and_quotes_literal() {
        assert_eq!(
            exec_start(r#"echo "$PORT" 100% \o/"#),
            r#"ExecStart=/bin/sh -c "echo \"$$PORT\" 100%% \\o/""#
        );
    }
}
