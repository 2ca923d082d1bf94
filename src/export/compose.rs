//! A Docker Compose file, `compose.yaml`: one service per type with `deploy.replicas`
//! from the formation, the release as a one-shot service the others wait for, a
//! healthcheck from `ready`, `depends_on` from hlocal.toml.
//!
//! The config vars go to `compose.env`, every service's `env_file`, single-quoted: the
//! one form Compose's env-file readers of every version (python-dotenv in v1, compose-go
//! in v2) take literally, `$` and `#` included. A value that form cannot carry (a `'`, a
//! `\`, `${`, a line break or another control character) or a name an env file cannot hold
//! goes instead to the `x-hlocal-env` mapping every service merges into its
//! `environment`, as a YAML string with `$` doubled, which reaches the container byte for
//! byte in every version.

use std::fmt::Write;

use super::plan::{self, Plan, Process, Ready};
use super::quote::{self, yaml};
use super::{File, HEADER};

pub const FILE_NAME: &str = "compose.yaml";
/// The config vars Compose's env-file readers take literally.
pub const ENV_FILE: &str = "compose.env";

pub fn render(plan: &Plan) -> Vec<File> {
    let (in_file, in_yaml): (Vec<_>, Vec<_>) = plan
        .env
        .iter()
        .partition(|(name, value)| fits_env_file(name, value));
    let mut text = format!("{HEADER}\n");
    text.push_str(&env_anchor(&in_yaml));
    text.push_str("services:\n");
    if let Some(release) = &plan.release {
        text.push_str(&service_head(plan, "release", &release.command));
        let _ = writeln!(
            text,
            "    restart: \"no\"\n    stop_signal: {}\n    stop_grace_period: {}",
            release.stop_signal,
            quote::duration(release.stop_timeout)
        );
    }
    for process in &plan.processes {
        text.push_str(&service(plan, process));
    }
    let mut env = format!("{HEADER}\n");
    for (name, value) in in_file {
        let _ = writeln!(env, "{name}='{value}'");
    }
    vec![
        File {
            name: FILE_NAME.to_string(),
            text,
        },
        File {
            name: ENV_FILE.to_string(),
            text: env,
        },
    ]
}

/// Whether `NAME='value'` means the same to every Compose version's env-file reader.
/// (Compose v1's python-dotenv expands `${VAR}` even in single quotes.)
fn fits_env_file(name: &str, value: &str) -> bool {
    quote::is_shell_name(name)
        && !value.contains("${")
        && !value
            .chars()
            .any(|c| c == '\'' || c == '\\' || c.is_control())
}

/// A string as Compose reads it: YAML, with `$` doubled so Compose does not take it for
/// one of its `${VAR}` substitutions.
fn string(value: &str) -> String {
    yaml(&value.replace('$', "$$"))
}

fn env_anchor(vars: &[&(String, String)]) -> String {
    if vars.is_empty() {
        return "x-hlocal-env: &env {}\n".to_string();
    }
    let mut text = "x-hlocal-env: &env\n".to_string();
    for (name, value) in vars {
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
    let _ = writeln!(text, "    env_file: [{ENV_FILE}]");
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
    fn the_env_file_takes_what_every_reader_takes_literally() {
        assert!(fits_env_file("A", "p@ss$word $X #not a comment ☃"));
        assert!(!fits_env_file("A", "${X}"));
        assert!(!fits_env_file("A", "it's"));
        assert!(!fits_env_file("A", "C:\\path"));
        assert!(!fits_env_file("A", "two\nlines"));
        assert!(!fits_env_file("A.B", "x"));
    }

    #[test]
    fn shell_words_survive_single_quotes() {
        assert_eq!(shell_single_quoted("/it's"), r"'/it'\''s'");
    }
}
