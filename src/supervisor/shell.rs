//! How a Procfile command is handed to `sh -c`.
//!
//! A simple command (one program and its arguments, variables and redirections allowed)
//! is prefixed with `exec`, so the shell replaces itself with the program: no `sh` is
//! left between hlocal and the app, and the stop signal reaches the program itself, as
//! watchexec does (watchexec issue #960). Lists, pipelines, subshells, leading variable
//! assignments and shell built-ins keep their shell.

/// The string to pass to `sh -c`.
pub fn shell_command(command: &str) -> String {
    if is_simple(command) {
        format!("exec {command}")
    } else {
        command.to_string()
    }
}

/// Words that `exec` cannot run: shell keywords and built-ins without a binary.
const NOT_EXECUTABLE: &[&str] = &[
    "!", ".", ":", "[[", "{", "}", "alias", "break", "case", "cd", "command", "continue",
    "declare", "do", "done", "elif", "else", "esac", "eval", "exec", "exit", "export", "fi", "for",
    "function", "if", "local", "read", "readonly", "return", "select", "set", "shift", "source",
    "then", "time", "times", "trap", "typeset", "ulimit", "umask", "unset", "until", "wait",
    "while",
];

/// Why a run that exited with `code` before it was ever up cannot run at all: `sh`'s
/// 127 (not found) and 126 (found, not executable). Names the program of a simple
/// command (without the `exec` hlocal added), else the command as written.
pub fn cannot_run(command: &str, code: i32) -> Option<String> {
    let what = match command.split_whitespace().next() {
        Some(program) if is_simple(command) => program,
        _ => command.trim(),
    };
    match code {
        127 => Some(format!("command not found: {what}")),
        126 => Some(format!("permission denied / not executable: {what}")),
        _ => None,
    }
}

fn is_simple(command: &str) -> bool {
    let has_operator = command
        .chars()
        .any(|c| matches!(c, ';' | '&' | '|' | '(' | ')' | '`' | '\n'));
    let Some(first) = command.split_whitespace().next() else {
        return false;
    };
    !has_operator && !first.contains('=') && !NOT_EXECUTABLE.contains(&first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_commands_are_execed() {
        assert_eq!(
            shell_command("python3 -m http.server $PORT"),
            "exec python3 -m http.server $PORT"
        );
        assert_eq!(
            shell_command("node app.js > log.txt"),
            "exec node app.js > log.txt"
        );
        assert_eq!(
            shell_command("bundle exec puma -p \"$PORT\""),
            "exec bundle exec puma -p \"$PORT\""
        );
    }

    #[test]
    fn cannot_run_names_the_program_without_exec() {
        assert_eq!(
            cannot_run("nonexistent-server --port $PORT", 127).as_deref(),
            Some("command not found: nonexistent-server")
        );
        assert_eq!(
            cannot_run("./x", 126).as_deref(),
            Some("permission denied / not executable: ./x")
        );
        assert_eq!(
            cannot_run("cd sub && nope ", 127).as_deref(),
            Some("command not found: cd sub && nope")
        );
        assert_eq!(cannot_run("./x", 1), None);
    }

    #[test]
    fn compound_commands_keep_their_shell() {
        for cmd in [
            "make && ./run",
            "a | b",
            "sleep 1000 & sleep 1000",
            "cd web; ./run",
            "(cd web && ./run)",
            "echo `date`",
            "echo $(date)",
            "FOO=1 ./run",
            "cd web",
            "exec ./run",
            "if true; then ./run; fi",
            "ls\n./run",
        ] {
            assert_eq!(shell_command(cmd), cmd, "{cmd}");
        }
    }
}
