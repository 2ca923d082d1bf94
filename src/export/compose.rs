//! A Docker Compose file, `compose.yaml`: one service per type with `deploy.replicas`
//! from the formation, the release as a one-shot service the others wait for, a
//! healthcheck from `ready`, `depends_on` from hlocal.toml. The config vars are written
//! once, as the `x-hlocal-env` mapping every service merges into its `environment`:
//! Compose's own env-file dialect differs between its versions (quotes, `$`, newlines),
//! while a YAML string with `$` doubled reaches the container byte for byte in all.

use std::fmt::Write;

use super::plan::{self, Plan, Process, Ready};
use super::quote::{self, yaml};
use super::{File, HEADER};

pub const FILE_NAME: &str = "compose.yaml";

pub fn render(plan: &Plan) -> Vec<File> {
    let mut text = format!("{HEADER}\n");
    text.push_str(&env_anchor(plan));
    text.push_str("services:\n");
    if let Some(command) = &plan.release {
        text.push_str(&service_head(plan, "release", command));
        text.push_str("    restart: \"no\"\n");
    }
    for process in &plan.processes {
        text.push_str(&service(plan, process));
    }
    vec![File {
        name: FILE_NAME.to_string(),
        text,
    }]
}

/// A string as Compose reads it: YAML, with `$` doubled so Compose does not take it for
/// one of its `${VAR}` substitutions.
fn string(value: &str) -> String {
    yaml(&value.replace('$', "$$"))
}

fn env_anchor(plan: &Plan) -> String {
    if plan.env.is_empty() {
        return "x-hlocal-env: &env {}\n".to_string();
    }
    let mut text = "x-hlocal-env: &env\n".to_string();
    for (name, value) in &plan.env {
        let _ = writeln!(text, "  {}: {}", yaml(name), string(value));
    }
    text
}

/// What the release service and the types share: image, command, user, config vars.
fn service_head(plan: &Plan, name: &str, command: &str) -> String {
    let mut text = format!("  {}:\n", yaml(name));
    let _ = writeln!(text, "    image: {}", yaml(&plan.image));
    let _ = writeln!(
        text,
        "    command: [\"/bin/sh\", \"-c\", {}]",
        string(command)
    );
    if let Some(user) = &plan.user {
        let _ = writeln!(text, "    user: {}", yaml(user));
    }
    text.push_str("    environment:\n      <<: *env\n");
    text
}

fn service(plan: &Plan, process: &Process) -> String {
    let mut text = service_head(plan, &process.name, &process.command);
    let _ = writeln!(text, "      PORT: \"{}\"", process.port);
    if process.name == "web" {
        let _ = writeln!(text, "    ports:\n      - {}", published_ports(process));
    }
    let _ = writeln!(
        text,
        "    deploy:\n      replicas: {}\n    restart: {}\n    stop_signal: {}\n    stop_grace_period: {}",
        process.count,
        yaml(plan::restart_word(process.restart)),
        process.stop_signal,
        quote::duration(process.stop_timeout)
    );
    text.push_str(&healthcheck(&process.ready));
    text.push_str(&depends_on(plan, process));
    text
}

/// Every replica listens on the type's first port in its own container; the host
/// publishes one port per replica, as `hlocal start --no-router` numbers them.
fn published_ports(process: &Process) -> String {
    let last = process.ports().last().unwrap_or(process.port);
    let host = if last == process.port {
        process.port.to_string()
    } else {
        format!("{}-{last}", process.port)
    };
    format!("\"{host}:{}\"", process.port)
}

/// Checks run inside the container with bash's `/dev/tcp` (no curl needed in the image).
fn healthcheck(ready: &Ready) -> String {
    let script = match ready {
        Ready::Started => return String::new(),
        Ready::Log(regex) => {
            return format!(
                "    # ready = {{ log = {regex:?} }} is not expressible in Compose: no healthcheck.\n"
            );
        }
        Ready::Port => "exec 3<>/dev/tcp/127.0.0.1/$PORT".to_string(),
        Ready::Http(path) => format!(
            "exec 3<>/dev/tcp/127.0.0.1/$PORT && printf 'GET %s HTTP/1.0\\r\\n\\r\\n' {} >&3 && head -n 1 <&3 | grep -q ' [23][0-9][0-9] '",
            shell_single_quoted(path)
        ),
    };
    format!(
        "    healthcheck:\n      test: [\"CMD\", \"bash\", \"-c\", {}]\n      interval: 5s\n",
        string(&script)
    )
}

/// A POSIX shell word that is exactly `text`.
fn shell_single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn has_healthcheck(process: &Process) -> bool {
    matches!(process.ready, Ready::Port | Ready::Http(_))
}

fn depends_on(plan: &Plan, process: &Process) -> String {
    let mut conditions: Vec<(&str, &str)> = Vec::new();
    if plan.release.is_some() {
        conditions.push(("release", "service_completed_successfully"));
    }
    for dependency in plan
        .processes
        .iter()
        .filter(|p| process.depends_on.contains(&p.name))
    {
        let condition = if has_healthcheck(dependency) {
            "service_healthy"
        } else {
            "service_started"
        };
        conditions.push((&dependency.name, condition));
    }
    if conditions.is_empty() {
        return String::new();
    }
    let mut text = "    depends_on:\n".to_string();
    for (name, condition) in conditions {
        let _ = writeln!(
            text,
            "      {}:\n        condition: {condition}",
            yaml(name)
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_keep_dollars_literal() {
        assert_eq!(string("a$b ${C}"), r#""a$$b $${C}""#);
    }

    #[test]
    fn shell_words_survive_single_quotes() {
        assert_eq!(shell_single_quoted("/it's"), r"'/it'\''s'");
    }
}
