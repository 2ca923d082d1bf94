//! `hlocal run CMD…`: a one-off process with the app's config vars and `PORT`, in the
//! foreground with the caller's terminal, stdin and signals, like `heroku run`.
//!
//! hlocal writes nothing to stdout here: the output is the command's. What is run:
//! - a Procfile type name runs that type's command (extra words become its arguments);
//! - a single word with spaces (`hlocal run "rake db:migrate && echo done"`) runs
//!   through `sh -c`, as `foreman run` does;
//! - anything else is executed directly, arguments untouched.

use std::process::Command;

use crate::cli::RunArgs;
use crate::config;
use crate::error::Error;
use crate::sys;

pub fn run(args: RunArgs) -> Result<i32, Error> {
    let app = config::load_app(&args.app, config::Procfile::Optional)?;
    super::check::warn(&app.env_warnings);
    let port = config::public_port(args.port, app.settings.as_ref(), &app)?;
    let mut command = build_command(&args.command, &app.types);
    command
        .current_dir(&app.root)
        .envs(app.env.iter().map(|(k, v)| (k, v)))
        .env("PORT", port.to_string());
    let file_dyno = app.settings.as_ref().and_then(|s| s.dyno);
    if config::toggle(args.dyno, args.no_dyno, file_dyno) {
        command.env("DYNO", "run.1");
    }
    sys::run_foreground(command).map_err(|source| Error::Spawn {
        command: args.command.join(" "),
        source,
    })
}

fn build_command(words: &[String], types: &[crate::input::procfile::ProcessType]) -> Command {
    let (first, rest) = match words {
        [first, rest @ ..] => (first, rest),
        [] => return Command::new("true"),
    };
    if let Some(process) = types.iter().find(|t| &t.name == first) {
        return shell(&process.command, rest);
    }
    if rest.is_empty() && first.contains(char::is_whitespace) {
        return shell(first, rest);
    }
    let mut command = Command::new(first);
    command.args(rest);
    command
}

/// `sh -c 'CMD "$@"' sh ARGS…`: extra arguments reach the command as positional
/// parameters, quoted by nobody.
fn shell(script: &str, args: &[String]) -> Command {
    let mut command = Command::new("sh");
    if args.is_empty() {
        command.arg("-c").arg(script);
    } else {
        command
            .arg("-c")
            .arg(with_arguments(script))
            .arg("sh")
            .args(args);
    }
    command
}

/// `CMD "$@"`, with `"$@"` where it still belongs to the command's last word list:
/// before a trailing `# comment` (which would swallow it) and before a final `;` or `&`
/// (after which it would be a command of its own).
fn with_arguments(script: &str) -> String {
    let body = without_comment(script).trim_end();
    let (command, terminator) = match body.strip_suffix(';') {
        Some(command) => (command, ";"),
        None => match body.strip_suffix('&') {
            Some(command) if !command.ends_with('&') => (command, " &"),
            _ => (body, ""),
        },
    };
    format!("{} \"$@\"{terminator}", command.trim_end())
}

/// The script up to an unquoted `#` that starts a word (the shell's comment).
fn without_comment(script: &str) -> &str {
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut word_start = true;
    for (at, c) in script.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if word_start && !single && !double => return &script[..at],
            _ => {}
        }
        word_start = !single && !double && (c.is_whitespace() || ";&|()".contains(c));
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::procfile::ProcessType;

    fn argv(command: &Command) -> Vec<String> {
        std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn procfile_type_runs_its_command_with_extra_arguments() {
        let types = [ProcessType {
            name: "worker".into(),
            command: "python worker.py".into(),
            line: 1,
        }];
        assert_eq!(
            argv(&build_command(&words(&["worker"]), &types)),
            ["sh", "-c", "python worker.py"]
        );
        assert_eq!(
            argv(&build_command(&words(&["worker", "--once"]), &types)),
            ["sh", "-c", "python worker.py \"$@\"", "sh", "--once"]
        );
    }

    #[test]
    fn arguments_go_before_a_trailing_comment_semicolon_or_ampersand() {
        assert_eq!(with_arguments("./server # note"), "./server \"$@\"");
        assert_eq!(with_arguments("a; b;"), "a; b \"$@\";");
        assert_eq!(with_arguments("serve &"), "serve \"$@\" &");
        assert_eq!(with_arguments("a && b"), "a && b \"$@\"");
        assert_eq!(
            with_arguments("echo '#x' a#b \\# c"),
            "echo '#x' a#b \\# c \"$@\""
        );
    }

    #[test]
    fn one_word_with_spaces_goes_through_the_shell() {
        assert_eq!(
            argv(&build_command(&words(&["echo $PORT"]), &[])),
            ["sh", "-c", "echo $PORT"]
        );
    }

    #[test]
    fn other_commands_run_directly() {
        assert_eq!(
            argv(&build_command(
                &words(&["sh", "-c", "read x; echo $x"]),
                &[]
            )),
            ["sh", "-c", "read x; echo $x"]
        );
    }
}
