//! The app's configuration as users write it: literal `.env` values and `${VAR}`,
//! optional env files, `run` without a Procfile, inputs that could never be spawned,
//! `run` arguments, usage errors.

use std::net::TcpListener;

use crate::harness::Hlocal;

/// `hlocal run sh -c 'printf "%s|" "$A" "$B"…'`: each variable's value between bars.
fn values_seen_by_run(app: Hlocal, names: &[&str]) -> crate::harness::Outcome {
    let script: String = names.iter().map(|n| format!(" \"${n}\"")).collect();
    app.args(["run", "sh", "-c", &format!("printf '%s|'{script}")])
        .run()
}

#[test]
fn env_values_are_literal_and_only_braced_references_expand() {
    let out = values_seen_by_run(
        Hlocal::new()
            .procfile("web: x\n")
            .env_file(
                "A=abc$123\nB=p@ss$word\nC=\"abc$123\"\nD=${HLOCAL_UNSET_HOST:-localhost}\n\
             E='x${A}'\nF=\"\\$HOME\"\nG=\"${A}-x\"\nH=${FROM_SHELL}\n",
            )
            .env("FROM_SHELL", "shell"),
        &["A", "B", "C", "D", "E", "F", "G", "H"],
    );
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (
            Some(0),
            "abc$123|p@ss$word|abc$123|localhost|x${A}|$HOME|abc$123-x|shell|"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn an_unset_reference_is_empty_with_one_warning_naming_file_line_and_variable() {
    let app = Hlocal::new()
        .procfile("web: x\n")
        .env_file("SECRET=hunter2\nURL=\"db://${HLOCAL_NEVER_SET}/x\"\n");
    let out = values_seen_by_run(app, &["URL"]);
    assert_eq!(out.stdout, "db:///x|");
    assert_eq!(
        out.stderr,
        "hlocal: warning: .env:2: ${HLOCAL_NEVER_SET} is not set; it expands to nothing\n"
    );
    let out = Hlocal::new()
        .procfile("web: x\n")
        .env_file("URL=${HLOCAL_NEVER_SET}\n")
        .args(["check"])
        .run();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "hlocal: warning: .env:1: ${HLOCAL_NEVER_SET} is not set; it expands to nothing\n"
    );
}

#[test]
fn an_unset_reference_is_announced_by_start() {
    let port = crate::harness::free_port(&[0, 100]);
    let mut app = Hlocal::new()
        .procfile("worker: echo \"url=$URL\"\n")
        .env_file("URL=${HLOCAL_NEVER_SET}\n")
        .args([
            "start",
            "--no-timestamp",
            "--exit-on-exit",
            "-p",
            &port.to_string(),
        ])
        .spawn();
    app.wait_for(
        r"hlocal +\| warning: \.env:1: \$\{HLOCAL_NEVER_SET\} is not set; it expands to nothing$",
    );
    app.wait_for(r"worker\.1 +\| url=$");
    assert_eq!(app.wait_exit().code(), Some(0));
}

/// `hlocal check`'s error line for an app whose only problem is its `.env`.
fn env_error(env: &str) -> String {
    let out = Hlocal::new()
        .procfile("web: x\n")
        .env_file(env)
        .args(["check"])
        .run();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    out.stderr
}

#[test]
fn a_malformed_env_line_is_reported_without_its_value() {
    let stderr = env_error("GOOD=1\nSTRIPE KEY=sk_live_secret\n");
    assert!(stderr.starts_with("hlocal: error: .env:2: "), "{stderr}");
    assert!(stderr.contains("STRIPE KEY"), "{stderr}");
    assert!(!stderr.contains("sk_live"), "{stderr}");
    let stderr = env_error("TOKEN=\"sk_live_secret\" trailing\n");
    assert!(stderr.starts_with("hlocal: error: .env:1: "), "{stderr}");
    assert!(!stderr.contains("sk_live"), "{stderr}");
}

#[test]
fn optional_env_files_may_be_missing_and_required_ones_may_not() {
    let toml = "env = [\".env\", { path = \".env.local\", required = false }]\n";
    let out = values_seen_by_run(
        Hlocal::new()
            .procfile("web: x\n")
            .env_file("A=1\n")
            .file("hlocal.toml", toml),
        &["A"],
    );
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (Some(0), "1|"),
        "{}",
        out.stderr
    );
    let out = Hlocal::new()
        .procfile("web: x\n")
        .file("hlocal.toml", toml)
        .args(["check"])
        .run();
    assert_eq!(out.code(), Some(1));
    assert_eq!(
        out.stderr,
        "hlocal: error: hlocal.toml:1: env file .env does not exist\n"
    );
}

#[test]
fn run_needs_no_procfile() {
    let out = values_seen_by_run(Hlocal::new().env_file("A=from-env-file\n"), &["A"]);
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (Some(0), "from-env-file|"),
        "{}",
        out.stderr
    );
}

#[test]
fn run_needs_a_procfile_it_was_given() {
    let out = Hlocal::new()
        .args(["run", "-f", "Procfile.dev", "true"])
        .run();
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("no Procfile at /"), "{}", out.stderr);
    assert!(out.stderr.contains("Procfile.dev"), "{}", out.stderr);
}

#[test]
fn a_missing_procfile_names_the_directory_searched() {
    let app = Hlocal::new();
    let dir = app.dir.canonicalize().expect("canonical dir");
    let out = app.args(["check"]).run();
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr
            .contains(&format!("no Procfile in {}", dir.display())),
        "{}",
        out.stderr
    );
}

#[test]
fn a_nul_byte_in_a_procfile_command_is_refused() {
    for command in ["check", "start"] {
        let out = Hlocal::new()
            .procfile("web: sleep 1\nworker: echo a\0b\n")
            .args([command])
            .run();
        assert_eq!(out.code(), Some(1), "{command}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("hlocal: error: Procfile:2: "),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn a_nul_byte_in_start_cmd_of_hlocal_toml_is_refused() {
    let out = Hlocal::new()
        .file(
            "hlocal.toml",
            "port = 5006\nstart_cmd = \"echo a\\u0000b\"\n",
        )
        .args(["check"])
        .run();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.starts_with("hlocal: error: hlocal.toml:2: "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("NUL"), "{}", out.stderr);
}

#[test]
fn an_env_value_over_128_kib_is_refused() {
    let big = "x".repeat(128 * 1024 + 1);
    let out = Hlocal::new()
        .procfile("web: x\n")
        .env_file(&format!("A=1\nBIG={big}\n"))
        .args(["check"])
        .run();
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.starts_with("hlocal: error: .env:2: "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("BIG"), "{}", out.stderr);
}

#[test]
fn an_environment_too_big_for_execve_is_refused() {
    let value = "x".repeat(100 * 1024);
    let text: String = (0..64).map(|i| format!("V{i}={value}\n")).collect();
    let out = Hlocal::new()
        .procfile("web: x\n")
        .env_file(&text)
        .args(["check"])
        .run();
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("too big"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn run_arguments_reach_a_command_ending_in_a_comment_or_separator() {
    for line in [
        "hello: echo hi # a note\n",
        "hello: echo hi;\n",
        "hello: echo hi &\n",
    ] {
        let out = Hlocal::new()
            .procfile(line)
            .args(["run", "hello", "there", "a b"])
            .run();
        assert_eq!(out.stdout, "hi there a b\n", "{line:?}: {}", out.stderr);
    }
}

#[test]
fn check_ignores_a_junk_port_in_the_shell() {
    let out = Hlocal::new()
        .procfile("web: x\n")
        .env("PORT", "abc")
        .args(["check"])
        .run();
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (Some(0), "valid procfile detected (web)\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn nothing_to_start_exits_before_binding_the_router() {
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let out = Hlocal::new()
        .procfile("web: sleep 100\n")
        .args([
            "start",
            "--no-timestamp",
            "-p",
            &port.to_string(),
            "-m",
            "all=0",
        ])
        .run();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("nothing to start"), "{}", out.stdout);
}

#[test]
fn bare_hlocal_prints_the_help() {
    let out = Hlocal::new().run();
    assert_eq!(out.code(), Some(2));
    assert!(out.stderr.contains("Usage: hlocal"), "{}", out.stderr);
    assert!(out.stderr.contains("Commands:"), "{}", out.stderr);
}

#[test]
fn usage_errors_keep_clap_whole_message_and_exit_2() {
    for (args, wanted) in [
        (&["run"][..], "<CMD>"),
        (&["strt"][..], "a similar subcommand exists: 'start'"),
        (
            &["start", "--color", "yes"][..],
            "[possible values: auto, always, never]",
        ),
    ] {
        let out = Hlocal::new().args(args).run();
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(wanted), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: "),
            "{args:?}: {}",
            out.stderr
        );
    }
    for flag in ["--help", "--version"] {
        assert_eq!(Hlocal::new().args([flag]).run().code(), Some(0));
    }
}
