//! Steering a running `hlocal start` from outside: `hlocal ps`, `restart`, `stop`,
//! `start`, `scale`, `logs`, `wait`, and editors speaking the protocol directly.
//!
//! `socket` finds and claims the app's unix socket, `protocol` is the wire format
//! (newline-delimited JSON, versioned), `server` answers clients on hlocal's runtime and
//! hands table changes to the supervisor as [`ControlRequest`]s, `client` is the other
//! end, used by the CLI's subcommands.

pub mod client;
pub mod protocol;
pub mod server;
pub mod socket;
pub mod terminals;

use serde_json::Value;
use tokio::sync::oneshot;

use protocol::{Command, ErrorKind, Problem};

/// A request the supervisor answers: it owns the process table.
#[derive(Debug)]
pub struct ControlRequest {
    pub command: Command,
    pub reply: oneshot::Sender<Result<Value, Problem>>,
}

/// Every name in `names` must be an instance (`web.1`) or a type (`web`) of `known`;
/// otherwise an `unknown_name` problem listing the known ones.
pub fn check_names(names: &[String], known: &[String]) -> Result<(), Problem> {
    let unknown: Vec<&str> = names
        .iter()
        .filter(|name| !known.contains(name))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    // `hlocal start worker=2`: a count, meant for `scale`.
    let hint = unknown
        .iter()
        .find(|name| name.contains('='))
        .map_or(String::new(), |count| {
            format!(" (to change a count: hlocal scale {count})")
        });
    let mut problem = Problem::new(
        ErrorKind::UnknownName,
        format!(
            "no instance or process type named {}; known: {}{hint}",
            quoted(&unknown),
            known.join(", ")
        ),
    );
    problem.known = known.to_vec();
    Err(problem)
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_listed_with_the_known_ones() {
        let known = vec!["web".to_string(), "web.1".to_string()];
        assert!(check_names(&["web.1".into(), "web".into()], &known).is_ok());
        let problem = check_names(&["wbe".into()], &known).expect_err("unknown");
        assert_eq!(problem.kind, ErrorKind::UnknownName);
        assert_eq!(
            problem.message,
            "no instance or process type named \"wbe\"; known: web, web.1"
        );
        assert_eq!(problem.known, known);
    }

    #[test]
    fn a_count_given_as_a_name_points_at_scale() {
        let known = vec!["web".to_string()];
        let problem = check_names(&["web=2".into()], &known).expect_err("unknown");
        assert_eq!(
            problem.message,
            "no instance or process type named \"web=2\"; known: web (to change a count: hlocal scale web=2)"
        );
    }
}
