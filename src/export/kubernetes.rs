//! Kubernetes manifests, one file `APP.yaml` of documents in a fixed order: a ConfigMap of
//! the plain config vars, a Secret of those whose names look secret ([`looks_secret`]),
//! a Job for the release, a Deployment per type (replicas from the formation, `PORT`,
//! a readinessProbe from `ready`) and a Service in front of `web`.

use std::collections::HashSet;
use std::fmt::Write;

use super::plan::{Plan, Process, Ready, Release};
use super::quote::{self, yaml};
use super::{File, HEADER};
use crate::error::{Error, InputError};
use crate::options::RestartPolicy;
use crate::sys::Signal;

/// A DNS label's limit, which object names and label values share.
const MAX_NAME: usize = 63;

pub fn render(plan: &Plan) -> Result<Vec<File>, Error> {
    let components = components(plan)?;
    let (secret, plain): (Vec<_>, Vec<_>) = plan
        .env
        .iter()
        .partition(|(name, value)| looks_secret(name, value));
    let refs = EnvRefs {
        config_map: (!plain.is_empty()).then(|| format!("{}-config", plan.app)),
        secret: (!secret.is_empty()).then(|| format!("{}-secret", plan.app)),
    };
    let mut docs: Vec<String> = Vec::new();
    if let Some(name) = &refs.config_map {
        docs.push(key_values(plan, "ConfigMap", name, "data", &plain));
    }
    if let Some(name) = &refs.secret {
        docs.push(key_values(plan, "Secret", name, "stringData", &secret));
    }
    if let Some(release) = &plan.release {
        docs.push(job(plan, &refs, release));
    }
    for (process, component) in plan.processes.iter().zip(&components) {
        docs.push(deployment(plan, &refs, process, component));
        if process.name == "web" {
            docs.push(service(plan, process, component));
        }
    }
    Ok(vec![File {
        name: format!("{}.yaml", plan.app),
        text: format!("{HEADER}\n{}", docs.join("---\n")),
    }])
}

/// The rule for what goes into the Secret (documented in docs/export.md): a name ending
/// in `_KEY`, `_SECRET`, `_TOKEN`, `_PASS` or `_PWD`, containing `PASSWORD`, `PASSWD`,
/// `SECRET`, `CREDENTIAL` or `PRIVATE`, `DATABASE_URL`, or any `*_URL` whose value
/// carries a password (`scheme://user:password@host`). Names are compared uppercased.
pub fn looks_secret(name: &str, value: &str) -> bool {
    let name = name.to_ascii_uppercase();
    const SUFFIXES: [&str; 5] = ["_KEY", "_SECRET", "_TOKEN", "_PASS", "_PWD"];
    const PARTS: [&str; 5] = ["PASSWORD", "PASSWD", "SECRET", "CREDENTIAL", "PRIVATE"];
    SUFFIXES.iter().any(|s| name.ends_with(s))
        || PARTS.iter().any(|p| name.contains(p))
        || name == "DATABASE_URL"
        || (name.ends_with("_URL") && url_has_password(value))
}

fn url_has_password(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// The component label of each type (objects are named `APP-COMPONENT`): the type's name
/// lowercased, `_` as `-`, a DNS label; two types that would get the same name are refused.
fn components(plan: &Plan) -> Result<Vec<String>, Error> {
    let mut seen = HashSet::new();
    let mut components = Vec::new();
    for process in &plan.processes {
        let label = process.name.to_ascii_lowercase().replace('_', "-");
        let component = label.trim_matches('-').to_string();
        let name = format!("{}-{component}", plan.app);
        if component.is_empty() || name.len() > MAX_NAME || !seen.insert(component.clone()) {
            return Err(InputError::NotExportable {
                what: format!("process type {:?}", process.name),
                format: "kubernetes",
                why: format!("its object name {name:?} is not a unique DNS label of at most {MAX_NAME} characters (rename the type or use a shorter --app)"),
            }
            .into());
        }
        components.push(component);
    }
    Ok(components)
}

struct EnvRefs {
    config_map: Option<String>,
    secret: Option<String>,
}

fn metadata(plan: &Plan, name: &str, component: Option<&str>) -> String {
    let mut text = format!(
        "metadata:\n  name: {name}\n  labels:\n    app.kubernetes.io/name: {}\n",
        plan.app
    );
    if let Some(component) = component {
        let _ = writeln!(text, "    app.kubernetes.io/component: {component}");
    }
    text
}

fn key_values(
    plan: &Plan,
    kind: &str,
    name: &str,
    field: &str,
    vars: &[&(String, String)],
) -> String {
    let mut text = format!(
        "apiVersion: v1\nkind: {kind}\n{}",
        metadata(plan, name, None)
    );
    if kind == "Secret" {
        text.push_str("type: Opaque\n");
    }
    let _ = writeln!(text, "{field}:");
    for (key, value) in vars {
        let _ = writeln!(text, "  {}: {}", yaml(key), yaml(value));
    }
    text
}

/// `command` as Kubernetes must be given it to pass it on unchanged: it expands
/// `$(NAME)` and turns `$$` into `$` in a container's command, so every `$` is doubled.
fn unexpanded(command: &str) -> String {
    command.replace('$', "$$")
}

/// The container spec every workload shares, indented for a pod template.
fn container(plan: &Plan, refs: &EnvRefs, name: &str, command: &str) -> String {
    let mut text = format!(
        "      containers:\n        - name: {name}\n          image: {}\n          command: [\"/bin/sh\", \"-c\", {}]\n",
        yaml(&plan.image),
        yaml(&unexpanded(command))
    );
    if refs.config_map.is_some() || refs.secret.is_some() {
        text.push_str("          envFrom:\n");
    }
    if let Some(config_map) = &refs.config_map {
        let _ = writeln!(
            text,
            "            - configMapRef:\n                name: {config_map}"
        );
    }
    if let Some(secret) = &refs.secret {
        let _ = writeln!(
            text,
            "            - secretRef:\n                name: {secret}"
        );
    }
    text
}

fn job(plan: &Plan, refs: &EnvRefs, release: &Release) -> String {
    let name = format!("{}-release", plan.app);
    format!(
        "# The release phase. Deployments do not wait for it: apply and wait for this Job first\n# (kubectl wait --for=condition=complete job/{name}), then the rest.\n{signal_note}apiVersion: batch/v1\nkind: Job\n{meta}spec:\n  backoffLimit: 0\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: {app}\n        app.kubernetes.io/component: release\n    spec:\n      restartPolicy: Never\n      terminationGracePeriodSeconds: {grace}\n{container}",
        signal_note = signal_note(release.stop_signal),
        meta = metadata(plan, &name, Some("release")),
        app = plan.app,
        grace = quote::whole_seconds(release.stop_timeout),
        container = container(plan, refs, "release", &release.command),
    )
}

fn deployment(plan: &Plan, refs: &EnvRefs, process: &Process, component: &str) -> String {
    let mut text = notes(process);
    let _ = write!(
        text,
        "apiVersion: apps/v1\nkind: Deployment\n{meta}spec:\n  replicas: {count}\n  selector:\n    matchLabels:\n{selector}  template:\n    metadata:\n      labels:\n{pod_labels}    spec:\n      terminationGracePeriodSeconds: {grace}\n{container}          env:\n            - name: PORT\n              value: \"{port}\"\n",
        meta = metadata(plan, &format!("{}-{component}", plan.app), Some(component)),
        count = process.count,
        selector = selector(plan, component, 6),
        pod_labels = selector(plan, component, 8),
        grace = quote::whole_seconds(process.stop_timeout),
        container = container(plan, refs, component, &process.command),
        port = process.port,
    );
    if process.listens() {
        let _ = writeln!(
            text,
            "          ports:\n            - containerPort: {}",
            process.port
        );
    }
    text.push_str(&readiness_probe(process));
    text
}

/// The labels that pick a type's pods, at `indent` spaces.
fn selector(plan: &Plan, component: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!(
        "{pad}app.kubernetes.io/name: {}\n{pad}app.kubernetes.io/component: {component}\n",
        plan.app
    )
}

/// A comment unless `signal` is the SIGTERM Kubernetes stops containers with.
fn signal_note(signal: Signal) -> String {
    if signal == Signal::Term {
        return String::new();
    }
    format!(
        "# stop_signal = {signal} is not expressible: Kubernetes stops containers with SIGTERM.\n"
    )
}

/// Comments for what a Deployment cannot say.
fn notes(process: &Process) -> String {
    let mut text = signal_note(process.stop_signal);
    if !process.depends_on.is_empty() {
        let _ = writeln!(
            text,
            "# depends_on = {:?} is not expressible: Kubernetes starts Deployments in no order.",
            process.depends_on
        );
    }
    if process.restart == RestartPolicy::Never {
        let _ = writeln!(
            text,
            "# restart = \"never\" is not expressible: a Deployment restarts its containers always."
        );
    }
    if let Ready::Log(regex) = &process.ready {
        let _ = writeln!(
            text,
            "# ready = {{ log = {regex:?} }} is not expressible: no readinessProbe."
        );
    }
    text
}

fn readiness_probe(process: &Process) -> String {
    let probe = match &process.ready {
        Ready::Started | Ready::Log(_) => return String::new(),
        Ready::Port => format!("tcpSocket:\n              port: {}", process.port),
        Ready::Http(path) => format!(
            "httpGet:\n              path: {}\n              port: {}",
            yaml(path),
            process.port
        ),
    };
    format!("          readinessProbe:\n            {probe}\n")
}

fn service(plan: &Plan, process: &Process, component: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\n{meta}spec:\n  selector:\n{selector}  ports:\n    - port: {port}\n      targetPort: {port}\n",
        meta = metadata(plan, &format!("{}-{component}", plan.app), Some(component)),
        selector = selector(plan, component, 4),
        port = process.port,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for name in [
            "SECRET_KEY_BASE",
            "STRIPE_API_KEY",
            "github_token",
            "DB_PASSWORD",
            "SMTP_PASS",
            "DATABASE_URL",
            "AWS_SECRET_ACCESS_KEY",
            "GOOGLE_CREDENTIALS",
        ] {
            assert!(looks_secret(name, "x"), "{name}");
        }
        for name in [
            "PORT",
            "RAILS_ENV",
            "WEB_CONCURRENCY",
            "KEYBOARD",
            "TOKENIZER",
        ] {
            assert!(!looks_secret(name, "x"), "{name}");
        }
    }

    #[test]
    fn urls_are_secret_when_they_carry_a_password() {
        assert!(looks_secret("REDIS_URL", "redis://u:p@h:6379/0"));
        assert!(!looks_secret("REDIS_URL", "redis://h:6379/0"));
        assert!(!looks_secret("HOME_URL", "https://example.com/a@b:c"));
    }
}
