//! foreman's own layout, normalised: a `Procfile` (`release` first, then the types in
//! order, the formation as a comment) and a `.env` in the dotenv dialect hlocal, foreman
//! and honcho read, with every value double-quoted.

use std::fmt::Write;

use super::plan::Plan;
use super::{File, HEADER};

pub fn render(plan: &Plan) -> Vec<File> {
    vec![
        File {
            name: "Procfile".to_string(),
            text: procfile(plan),
        },
        File {
            name: ".env".to_string(),
            text: dotenv(plan),
        },
    ]
}

fn procfile(plan: &Plan) -> String {
    let formation: Vec<String> = plan
        .processes
        .iter()
        .map(|p| format!("{}={}", p.name, p.count))
        .collect();
    let mut text = format!("{HEADER}\n# formation: {}\n", formation.join(","));
    if let Some(release) = &plan.release {
        let _ = writeln!(text, "release: {}", release.command);
    }
    for process in &plan.processes {
        let _ = writeln!(text, "{}: {}", process.name, process.command);
    }
    text
}

fn dotenv(plan: &Plan) -> String {
    let mut text = format!("{HEADER}\n");
    for (name, value) in &plan.env {
        let _ = writeln!(text, "{name}={}", dotenv_value(value));
    }
    text
}

/// Double quotes with `\` escapes for `\`, `"`, `$` (so `${…}` is not expanded) and
/// line breaks and tabs, keeping each variable on one line.
fn dotenv_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' | '"' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_values_stay_literal_on_one_line() {
        assert_eq!(
            dotenv_value("a\"b\\c ${X} #d\ne"),
            r#""a\"b\\c \${X} #d\ne""#
        );
    }
}
