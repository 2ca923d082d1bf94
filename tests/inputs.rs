use crate::harness::{Hlocal, LAYOUT, free_port};

#[test]
fn malformed_procfile_line_names_file_and_line() {
    Hlocal::new()
        .procfile("web: python3 app.py\n\nthis is not a process\n")
        .args(["check"])
        .run()
        .assert_error("hlocal: error: Procfile:3: expected \"name: command\", found \"this is not a process\"\n");
}

#[test]
fn duplicate_type_names_first_line() {
    Hlocal::new()
        .procfile("web: a\nworker: b\nweb: c\n")
        .args(["start"])
        .run()
        .assert_error(
            "hlocal: error: Procfile:3: duplicate process type \"web\" (first defined on line 1)\n",
        );
}

#[test]
fn empty_command_is_an_error() {
    Hlocal::new()
        .procfile("# comment\nweb:   \n")
        .args(["check"])
        .run()
        .assert_error("hlocal: error: Procfile:2: empty command for process type \"web\"\n");
}

#[test]
fn bad_type_name_is_an_error() {
    Hlocal::new()
        .procfile("my web: a\n")
        .args(["check"])
        .run()
        .assert_error("hlocal: error: Procfile:1: invalid process type name \"my web\" (use letters, digits, \"_\" and \"-\")\n");
}

#[test]
fn missing_procfile_is_an_error_unless_start_cmd() {
    let out = Hlocal::new().args(["check"]).run();
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.starts_with("hlocal: error: no Procfile in /"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.ends_with(
            " (use -f FILE, -d DIR, or --start-cmd CMD to run a web process without one)\n"
        ),
        "{}",
        out.stderr
    );
    let out = Hlocal::new()
        .args(["check", "--start-cmd", "python3 -m http.server"])
        .run();
    assert_eq!(out.stdout, "valid procfile detected (web)\n");
    assert_eq!(out.code(), Some(0));
}

#[test]
fn an_empty_start_cmd_is_refused_and_nothing_starts() {
    for blank in ["", "   "] {
        for command in ["check", "start"] {
            Hlocal::new()
                .args([command, "--start-cmd", blank])
                .run()
                .assert_error(
                    "hlocal: error: --start-cmd: expected a command, found an empty string\n",
                );
        }
    }
}

#[test]
fn backslashes_in_unquoted_env_values_reach_the_process_as_written() {
    let out = Hlocal::new()
        .env_file("WIN=C:\\path\\to\nPATTERN=^\\d+$\n")
        .args(["run", "sh", "-c", "printf '%s|%s' \"$WIN\" \"$PATTERN\""])
        .run();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "C:\\path\\to|^\\d+$");
}

#[test]
fn malformed_env_file_names_file_and_line() {
    let out = Hlocal::new()
        .procfile("web: a\n")
        .env_file("GOOD=1\n# comment\nNOT A VALID LINE\n")
        .args(["check"])
        .run();
    assert!(
        out.stderr.starts_with("hlocal: error: .env:3: "),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);
    assert_eq!(out.code(), Some(1));
}

#[test]
fn env_file_named_explicitly_must_exist() {
    Hlocal::new()
        .procfile("web: a\n")
        .args(["check", "-e", "missing.env"])
        .run()
        .assert_error("hlocal: error: env file missing.env does not exist\n");
}

#[test]
fn formation_naming_an_unknown_type_is_an_error() {
    Hlocal::new()
        .procfile("web: a\nworker: b\n")
        .args(["start", "-m", "web=1,wrk=2"])
        .run()
        .assert_error("hlocal: error: formation: unknown process type \"wrk\" in formation (the Procfile has: web, worker)\n");
}

#[test]
fn positional_formation_naming_an_unknown_type_is_an_error() {
    let out = Hlocal::new()
        .procfile("web: a\n")
        .args(["start", "worker"])
        .run();
    assert!(
        out.stderr.contains("unknown process type \"worker\""),
        "{}",
        out.stderr
    );
    assert_eq!(out.code(), Some(1));
}

#[test]
fn unknown_flag_is_claps_message_and_exit_2() {
    let out = Hlocal::new()
        .procfile("web: a\n")
        .args(["start", "--no-such-flag"])
        .run();
    assert!(
        out.stderr
            .starts_with("error: unexpected argument '--no-such-flag'"),
        "{}",
        out.stderr
    );
    assert_eq!(out.code(), Some(2));
}

#[test]
fn bad_duration_is_an_error() {
    Hlocal::new()
        .procfile("web: a\n")
        .args(["start", "-t", "5x"])
        .run()
        .assert_error("hlocal: error: --timeout: invalid duration \"5x\" (use seconds like 5 or 0.2, or a unit: 200ms, 5s, 1m)\n");
}

#[test]
fn bad_port_in_env_file_is_an_error() {
    Hlocal::new()
        .procfile("web: a\n")
        .env_file("A=1\nPORT=eighty\n")
        .args(["start"])
        .run()
        .assert_error("hlocal: error: .env:2: PORT is not a port number: \"eighty\"\n");
    Hlocal::new()
        .procfile("web: a\n")
        .file("env.json", r#"{"port": "eighty"}"#)
        .args(["run", "-e", "env.json", "true"])
        .run()
        .assert_error("hlocal: error: env.json: PORT is not a port number: \"eighty\"\n");
}

#[test]
fn port_in_use_names_the_holder() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let out = Hlocal::new()
        .procfile("web: sleep 1000\n")
        .args(["start", "--no-router", "-p", &port.to_string()])
        .run();
    let expected = format!(
        "hlocal: error: port {port} (web.1) is already in use by pid {}",
        std::process::id()
    );
    assert!(out.stderr.starts_with(&expected), "{}", out.stderr);
    assert_eq!(out.code(), Some(1));
    assert!(
        !out.stdout.contains("Starting process"),
        "nothing may start: {}",
        out.stdout
    );
}

#[test]
fn a_watch_path_named_like_a_process_type_gets_a_hint() {
    Hlocal::new()
        .procfile("web: a\n")
        .args(["start", "-w", "web"])
        .run()
        .assert_error("hlocal: error: watch path web does not exist; to start only some process types, name them before -w (hlocal start web -w)\n");
}

#[test]
fn an_unknown_key_in_hlocal_toml_names_key_and_line() {
    let out = Hlocal::new()
        .procfile("web: a\n")
        .file("hlocal.toml", "port = 5006\nfrmation = \"web=2\"\n")
        .args(["start"])
        .run();
    assert!(
        out.stderr.starts_with("hlocal: error: hlocal.toml:2: ") && out.stderr.contains("frmation"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);
    assert_eq!(out.code(), Some(1));
}

/// Flags whose feature is off are still checked: nothing starts, one line, exit 1.
#[test]
fn every_flag_is_checked_up_front_even_when_unused() {
    for (args, error) in [
        (
            ["--watch-debounce", "abc"],
            "--watch-debounce: invalid duration \"abc\"",
        ),
        (
            ["--request-timeout", "abc"],
            "--request-timeout: invalid duration \"abc\"",
        ),
        (
            ["--watch-ignore", "{a"],
            "--watch-ignore: invalid glob \"{a\"",
        ),
    ] {
        let out = Hlocal::new()
            .procfile("worker: echo started\n")
            .args(["start", "--restart", "never"])
            .args(args)
            .run();
        assert_eq!(out.code(), Some(1), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with(&format!("hlocal: error: {error}")),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(!out.stdout.contains("started"), "{}", out.stdout);
    }
}

#[test]
fn port_zero_and_zero_timeouts_are_refused() {
    for (args, error) in [
        (
            ["-p", "0"],
            "-p: port 0 is not allowed (use a port from 1 to 65535)",
        ),
        (
            ["--request-timeout", "0"],
            "--request-timeout: duration \"0\" must be more than 0",
        ),
        (
            ["--boot-timeout", "0s"],
            "--boot-timeout: duration \"0s\" must be more than 0",
        ),
        (
            ["--header-timeout", "0ms"],
            "--header-timeout: duration \"0ms\" must be more than 0",
        ),
    ] {
        Hlocal::new()
            .procfile("web: echo started\n")
            .args(["start"])
            .args(args)
            .run()
            .assert_error(&format!("hlocal: error: {error}\n"));
    }
}

#[test]
fn port_zero_and_zero_timeouts_in_hlocal_toml_name_their_line() {
    for (toml, error) in [
        ("port = 0\n", "hlocal.toml:1: port 0 is not allowed"),
        (
            "# c\nrequest_timeout = \"0ms\"\n",
            "hlocal.toml:2: duration \"0ms\" must be more than 0",
        ),
    ] {
        let out = Hlocal::new()
            .procfile("web: echo started\n")
            .file("hlocal.toml", toml)
            .args(["check"])
            .run();
        assert_eq!(out.code(), Some(1), "{}", out.stderr);
        assert!(
            out.stderr.starts_with(&format!("hlocal: error: {error}")),
            "{}",
            out.stderr
        );
    }
}

/// `-e /dev/zero` grew without end and a FIFO blocked forever: only regular files are read.
#[test]
fn inputs_must_be_regular_files() {
    let app = Hlocal::new().procfile("web: echo started\n");
    let fifo = app.dir.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let fifo = fifo.to_string_lossy().into_owned();
    for (command, args, error) in [
        (
            "check",
            ["-e", "/dev/zero"],
            "reading env file /dev/zero: not a regular file",
        ),
        (
            "start",
            ["-e", fifo.as_str()],
            &format!("reading env file {fifo}: not a regular file") as &str,
        ),
        (
            "run",
            ["-f", fifo.as_str()],
            &format!("reading Procfile {fifo}: not a regular file"),
        ),
    ] {
        let mut hlocal = Hlocal::new()
            .procfile("web: echo started\n")
            .args([command]);
        hlocal = hlocal.args(args);
        if command == "run" {
            hlocal = hlocal.args(["true"]);
        }
        hlocal
            .run()
            .assert_error(&format!("hlocal: error: {error}\n"));
    }
}

#[test]
fn types_that_share_a_discovery_variable_get_a_warning() {
    let out = Hlocal::new()
        .procfile("web-x: a\nweb_x: b\n")
        .args(["check"])
        .run();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "hlocal: warning: process types web-x, web_x all set HLOCAL_WEB_X_PORT; it holds web_x's port (the last of them)\n"
    );
    // `start` says it too; `run` sets no such variable, so it does not.
    let started = Hlocal::new()
        .procfile("web-x: sleep 100\nweb_x: sleep 100\n")
        .start_without_router(free_port(LAYOUT))
        .spawn();
    started.wait_for(r"hlocal +\| warning: process types web-x, web_x all set HLOCAL_WEB_X_PORT");
    started.stop();
    let run = Hlocal::new()
        .procfile("web-x: a\nweb_x: b\n")
        .args(["run", "true"])
        .run();
    assert_eq!((run.code(), run.stderr.as_str()), (Some(0), ""));
}

#[test]
fn env_dev_null_reads_no_env_file() {
    let out = Hlocal::new()
        .env_file("FROM_DOTENV=yes\n")
        .args([
            "run",
            "-e",
            "/dev/null",
            "sh",
            "-c",
            "echo ${FROM_DOTENV-none}",
        ])
        .run();
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (Some(0), "none\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn inputs_over_10_mib_are_refused() {
    let big = format!("A=1\n{}", "#".repeat(10 * 1024 * 1024));
    Hlocal::new()
        .procfile("web: echo started\n")
        .file("big.env", &big)
        .args(["check", "-e", "big.env"])
        .run()
        .assert_error("hlocal: error: reading env file big.env: larger than 10 MiB\n");
}

/// 100,000 process types and formation items: checking them took minutes (debug build)
/// when duplicates and names were found by scanning lists; it now takes about half a
/// second, and the deadline leaves room for a busy machine.
#[test]
fn a_hundred_thousand_types_are_checked_in_linear_time() {
    let procfile: String = (0..LARGE).map(|i| format!("t{i}: true\n")).collect();
    let items: Vec<String> = (0..LARGE).map(|i| format!("t{i}=1")).collect();
    let app = Hlocal::new();
    std::fs::write(app.dir.join("Procfile"), procfile).expect("write Procfile");
    std::fs::write(
        app.dir.join("hlocal.toml"),
        format!("formation = \"{}\"\n", items.join(",")),
    )
    .expect("write hlocal.toml");
    // 100,000 types cannot all have a block of 100 ports: the layout error is the answer.
    assert_checked_within_deadline(app, "leaves no room for the formation");
}

/// An env file of 100,000 lines, each referring to an earlier one: 34 s (debug build)
/// when every `${NAME}` scanned the lines before it.
#[test]
fn a_hundred_thousand_env_references_are_resolved_in_linear_time() {
    let env: String = (0..LARGE)
        .map(|i| format!("K{i}=${{K{}}}x\n", i / 2))
        .collect();
    let app = Hlocal::new().procfile("web: true\n");
    std::fs::write(app.dir.join(".env"), env).expect("write .env");
    // That much environment cannot be given to a process: the size check is the answer.
    assert_checked_within_deadline(app, "the environment is too big");
}

/// A chain of 20,000 `depends_on` closed into a cycle: the recursive search overflowed
/// the stack (after 90 s, as each table's line was counted from the file's start).
/// Parsing 20,000 TOML tables takes a debug build about 0.3 s.
#[test]
fn twenty_thousand_dependencies_are_walked_without_recursion() {
    const CHAIN: usize = 20_000;
    let procfile: String = (0..CHAIN).map(|i| format!("t{i}: true\n")).collect();
    let tables: String = (0..CHAIN)
        .map(|i| format!("[process.t{i}]\ndepends_on = [\"t{}\"]\n", (i + 1) % CHAIN))
        .collect();
    let app = Hlocal::new();
    std::fs::write(app.dir.join("Procfile"), procfile).expect("write Procfile");
    std::fs::write(app.dir.join("hlocal.toml"), tables).expect("write hlocal.toml");
    assert_checked_within_deadline(app, "hlocal.toml:2: dependency cycle: t0 -> t1 -> t2");
}

const LARGE: usize = 100_000;

/// `hlocal check` ends within 8 s (over 5x its time, 0.5-1.5 s, on this machine under
/// load) with one error line.
fn assert_checked_within_deadline(app: Hlocal, error: &str) {
    const DEADLINE: std::time::Duration = std::time::Duration::from_secs(8);
    // A file, not a pipe: a long message must not block hlocal while nobody reads.
    let stderr_path = app.dir.join("stderr");
    let stderr_file = std::fs::File::create(&stderr_path).expect("create stderr file");
    let mut child = app
        .args(["check"])
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(stderr_file)
        .spawn()
        .expect("spawn hlocal");
    let status = crate::harness::wait_with_deadline(&mut child, DEADLINE);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let status =
        status.unwrap_or_else(|| panic!("hlocal check did not finish within {DEADLINE:?}"));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(error), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn tty_names_a_procfile_type() {
    Hlocal::new()
        .procfile("web: sleep 60\n")
        .args(["start", "--tty", "wbe"])
        .run()
        .assert_error(
            "hlocal: error: --tty: unknown process type \"wbe\" (the Procfile has: web)\n",
        );
}

#[test]
fn a_command_longer_than_one_argument_may_be_is_refused_at_its_line() {
    let long = format!("web: a\nworker: echo {}\n", "a".repeat(200_000));
    let out = Hlocal::new().procfile(&long).args(["check"]).run();
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.starts_with(
            "hlocal: error: Procfile:2: the command of \"worker\" is 200005 bytes; a process takes at most "
        ),
        "{}",
        out.stderr
    );
}
