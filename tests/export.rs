//! `hlocal export`: golden files per format for a three-type app with a release phase,
//! ready checks and depends_on (`fixtures/export/app`); each engine's own validator on
//! the output; tricky config vars read back the way each engine reads them
//! (`fixtures/export/readback.py`); `--dry-run`, `--force`, and secrets kept out of
//! hlocal's own messages. A validator that is missing fails its test: `.ci/run`
//! installs them all.
//!
//! `HLOCAL_UPDATE_GOLDEN=1 cargo test --test integration export::` rewrites the golden
//! files from the current output (review the diff).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{BIN, Hlocal, Outcome, fixture_path};

const FORMATS: [&str; 5] = [
    "systemd",
    "compose",
    "kubernetes",
    "procfile",
    "supervisord",
];

/// Absolute paths in the output (the app root, the export directory) differ per run;
/// golden files show them as these.
const ROOT_PLACEHOLDER: &str = "/srv/shop";

fn app() -> Hlocal {
    Hlocal::new().fixture("export/app")
}

/// Exports with `--app shop` into `out` inside the app directory.
fn export(app: Hlocal, format: &str, extra: &[&str]) -> (PathBuf, Outcome) {
    let out = app.dir.join("out");
    let outcome = app
        .args(["export", format, "out", "--app", "shop"])
        .args(extra)
        .run();
    (out, outcome)
}

fn export_ok(app: Hlocal, format: &str, extra: &[&str]) -> PathBuf {
    let (out, outcome) = export(app, format, extra);
    assert_eq!(outcome.code(), Some(0), "stderr: {}", outcome.stderr);
    out
}

/// The files of a directory, by name, sorted.
fn files(dir: &Path) -> BTreeMap<String, String> {
    fs::read_dir(dir)
        .expect("read export dir")
        .map(|e| {
            let e = e.expect("entry");
            let text = fs::read_to_string(e.path()).expect("read file");
            (e.file_name().to_string_lossy().into_owned(), text)
        })
        .collect()
}

fn golden_dir(format: &str) -> PathBuf {
    fixture_path("export/golden").join(format)
}

#[test]
fn every_format_matches_its_golden_files() {
    for format in FORMATS {
        let app = app();
        let root = app.dir.to_string_lossy().into_owned();
        let out = export_ok(app, format, &[]);
        let written: BTreeMap<String, String> = files(&out)
            .into_iter()
            .map(|(name, text)| (name, text.replace(&root, ROOT_PLACEHOLDER)))
            .collect();
        let golden = golden_dir(format);
        if std::env::var_os("HLOCAL_UPDATE_GOLDEN").is_some() {
            let _ = fs::remove_dir_all(&golden);
            fs::create_dir_all(&golden).expect("mkdir golden");
            for (name, text) in &written {
                fs::write(golden.join(name), text).expect("write golden");
            }
        }
        assert_eq!(written, files(&golden), "{format} differs from {golden:?}");
    }
}

/// The files of a `--dry-run`'s output, each after its `# ==> NAME <==` line (files are
/// separated by an empty line).
fn printed_files(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .split("# ==> ")
        .skip(1)
        .map(|chunk| {
            let (name, text) = chunk.split_once(" <==\n").expect("file header");
            let text = text
                .strip_suffix("\n\n")
                .map_or(text.to_string(), |t| format!("{t}\n"));
            (name.to_string(), text)
        })
        .collect()
}

/// The golden files are the same bytes every run; `--dry-run` prints exactly them.
#[test]
fn dry_run_prints_the_golden_files() {
    for format in FORMATS {
        let app = app();
        let root = app.dir.to_string_lossy().into_owned();
        // The shell's PORT is not the app's: the output does not depend on it.
        let outcome = app
            .env("PORT", "9000")
            .args(["export", format, "out", "--app", "shop", "--dry-run"])
            .run();
        assert_eq!(outcome.code(), Some(0), "stderr: {}", outcome.stderr);
        assert_eq!(outcome.stderr, "");
        let printed = printed_files(&outcome.stdout.replace(&root, ROOT_PLACEHOLDER));
        assert_eq!(printed, files(&golden_dir(format)), "{format}");
    }
}

#[test]
fn dry_run_writes_nothing() {
    let app = app();
    let out = app.dir.join("out");
    let outcome = app.args(["export", "compose", "out", "--dry-run"]).run();
    assert_eq!(outcome.code(), Some(0));
    assert!(outcome.stdout.contains("services:"), "{}", outcome.stdout);
    assert!(!out.exists());
}

#[test]
fn a_non_empty_directory_needs_force() {
    let app = app().file("out/keep.txt", "mine");
    let dir = app.dir.clone();
    let refused = app.args(["export", "procfile", "out"]).run();
    refused.assert_error("hlocal: error: out is not empty (use --force to write into it anyway)\n");
    assert_eq!(fs::read_dir(dir.join("out")).expect("out").count(), 1);

    let forced = Hlocal::new()
        .fixture("export/app")
        .file("out/keep.txt", "mine")
        .args(["export", "procfile", "out", "--force"])
        .run();
    assert_eq!(forced.code(), Some(0), "{}", forced.stderr);
    assert_eq!(forced.stdout, "wrote out/Procfile\nwrote out/.env\n");
}

#[test]
fn force_never_writes_through_a_link_or_over_a_directory_and_dash_needs_dry_run() {
    let app = app().file("out/keep.txt", "mine");
    let dir = app.dir.clone();
    std::os::unix::fs::symlink(dir.join("victim"), dir.join("out/Procfile")).expect("link");
    let refused = app.args(["export", "procfile", "out", "--force"]).run();
    refused.assert_error(
        "hlocal: error: out/Procfile: a symbolic link is in the way; nothing was written\n",
    );
    assert!(!dir.join("victim").exists());
    assert!(!dir.join("out/.env").exists(), "nothing was written");
    let dash = Hlocal::in_dir(&dir).args(["export", "procfile", "-"]).run();
    dash.assert_error(
        "hlocal: error: DIR: - writes nowhere: give a directory, or --dry-run to print the files\n",
    );
}

#[test]
fn bad_app_names_are_refused() {
    let outcome = app()
        .args(["export", "compose", "out", "--app", "My_App"])
        .run();
    outcome.assert_error(
        "hlocal: error: --app: \"My_App\": use 1 to 30 lowercase letters, digits and \"-\", not starting or ending with \"-\"\n",
    );
}

/// Runs a validator; a missing one fails the test with how to get it.
fn validator(program: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("HOME", cwd)
        .output()
        .unwrap_or_else(|e| panic!("validator {program} cannot run ({e}); .ci/run installs it"))
}

fn assert_clean(what: &str, output: &Output) {
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{what} failed ({:?}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn systemd_analyze_verifies_the_units() {
    let out = export_ok(app(), "systemd", &[]);
    let mut args = vec!["verify", "--man=no", "--recursive-errors=no"];
    let names: Vec<String> = files(&out)
        .into_keys()
        .filter(|n| n.ends_with(".service") || n.ends_with(".target"))
        .map(|n| format!("./{n}"))
        .collect();
    args.extend(names.iter().map(String::as_str));
    assert_clean(
        "systemd-analyze verify",
        &validator("systemd-analyze", &args, &out),
    );
}

#[test]
fn paths_given_with_dot_dot_come_out_normalised() {
    let app = app();
    let dir = app.dir.clone();
    fs::create_dir(dir.join("sub")).expect("mkdir");
    let outcome = Command::new(BIN)
        .args(["export", "systemd", "../out", "-d", "..", "--app", "shop"])
        .current_dir(dir.join("sub"))
        .output()
        .expect("hlocal export");
    assert!(outcome.status.success(), "{outcome:?}");
    let units = files(&dir.join("out"));
    let root = fs::canonicalize(&dir).expect("canonical");
    for (name, text) in &units {
        assert!(!text.contains("/.."), "{name}:\n{text}");
    }
    let web = &units["shop-web@.service"];
    assert!(
        web.contains(&format!("WorkingDirectory={}\n", root.display())),
        "{web}"
    );
}

#[test]
fn docker_compose_and_the_compose_schema_accept_the_file() {
    let out = export_ok(app(), "compose", &[]);
    let config = validator(
        "docker-compose",
        &["-f", "compose.yaml", "config", "-q"],
        &out,
    );
    assert_clean("docker-compose config", &config);
    let schema = fixture_path("export/schema/compose-spec.json");
    let check = "import json, sys, yaml, jsonschema\n\
                 schema = json.load(open(sys.argv[1]))\n\
                 jsonschema.validate(yaml.safe_load(open(sys.argv[2])), schema)\n";
    let schema_arg = schema.to_string_lossy();
    let validated = validator("python3", &["-c", check, &schema_arg, "compose.yaml"], &out);
    assert_clean("the Compose JSON schema", &validated);
}

#[test]
fn kubernetes_validate_accepts_the_manifests() {
    let out = export_ok(app(), "kubernetes", &[]);
    let validated = validator(
        "kubernetes-validate",
        &["--strict", "--quiet", "shop.yaml"],
        &out,
    );
    assert_clean("kubernetes-validate", &validated);
}

const TRICKY: &str = "tricky.env";
const TRICKY_MORE: &str = "tricky-more.env";

/// An app whose config vars are the tricky files.
fn tricky_app() -> Hlocal {
    let text = |name: &str| fs::read_to_string(fixture_path("export").join(name)).expect("tricky");
    app()
        .file(TRICKY, &text(TRICKY))
        .file(TRICKY_MORE, &text(TRICKY_MORE))
}

/// The config vars as hlocal itself gives them to a process: the reference every
/// format must reproduce.
fn vars_as_hlocal_reads(app: Hlocal, env: &str) -> BTreeMap<String, String> {
    let dump = "import json, os; print(json.dumps(dict(os.environ)))";
    let outcome = app.args(["run", "-e", env, "python3", "-c", dump]).run();
    assert_eq!(outcome.code(), Some(0), "{}", outcome.stderr);
    serde_json::from_str(&outcome.stdout).expect("env JSON")
}

fn names_in(files: &[&str]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| {
            fs::read_to_string(fixture_path("export").join(f))
                .expect("tricky")
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `{type: {name: value}}` as the engine would see the vars of each process.
fn read_back(format: &str, out: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let script = fixture_path("export/readback.py");
    let script = script.to_string_lossy();
    let dir = out.to_string_lossy();
    let output = validator("python3", &[&script, format, &dir, "shop"], out);
    assert_clean(&format!("reading {format} back"), &output);
    serde_json::from_slice(&output.stdout).expect("readback JSON")
}

fn assert_round_trip(format: &str, files: &[&str]) {
    let env = files.join(",");
    let expected = vars_as_hlocal_reads(tricky_app(), &env);
    assert_eq!(expected["DOLLAR_BRACES"], "${NOT_EXPANDED} and $HOME");
    let out = export_ok(tricky_app(), format, &["-e", &env]);
    let seen = read_back(format, &out);
    assert!(seen.contains_key("web"), "{format}: {seen:?}");
    for (process, vars) in &seen {
        for name in names_in(files) {
            assert_eq!(
                vars.get(&name),
                expected.get(&name),
                "{format}: {name} of {process}"
            );
        }
    }
}

#[test]
fn tricky_values_round_trip_through_systemd() {
    assert_round_trip("systemd", &[TRICKY, TRICKY_MORE]);
}

#[test]
fn tricky_values_round_trip_through_compose() {
    assert_round_trip("compose", &[TRICKY, TRICKY_MORE]);
}

#[test]
fn tricky_values_round_trip_through_kubernetes() {
    assert_round_trip("kubernetes", &[TRICKY, TRICKY_MORE]);
}

#[test]
fn tricky_values_round_trip_through_supervisord() {
    assert_round_trip("supervisord", &[TRICKY]);
}

#[test]
fn tricky_values_round_trip_through_the_procfile_format() {
    let env = format!("{TRICKY},{TRICKY_MORE}");
    let expected = vars_as_hlocal_reads(tricky_app(), &env);
    let out = export_ok(tricky_app(), "procfile", &["-e", &env]);
    let exported = Hlocal::new().file(".env", &fs::read_to_string(out.join(".env")).expect(".env"));
    let seen = vars_as_hlocal_reads(exported, ".env");
    for name in names_in(&[TRICKY, TRICKY_MORE]) {
        assert_eq!(seen.get(&name), expected.get(&name), "{name}");
    }
}

/// What supervisord cannot carry is refused by name; the value never appears.
#[test]
fn supervisord_refuses_values_it_cannot_carry_without_showing_them() {
    // (name, value in dotenv syntax, a fragment of the value, the reason given)
    let cases = [
        (
            "NEWLINES",
            "\"line one\\nline two\"",
            "line one",
            "one line per value",
        ),
        ("TAB", "\"tabbed\\there\"", "tabbed", "one line per value"),
        (
            "COMMENT_LIKE",
            "'value #not a comment'",
            "not a comment",
            "for a comment",
        ),
        (
            "QUOTED_ENDS",
            "'\"quoted\"'",
            "quoted",
            "strips quote characters",
        ),
    ];
    for (name, value, fragment, why) in cases {
        let outcome = app()
            .file("secret.env", &format!("{name}={value}\n"))
            .args(["export", "supervisord", "out", "-e", "secret.env"])
            .run();
        assert_eq!(outcome.code(), Some(1), "{name}");
        assert!(
            outcome.stderr.starts_with(&format!(
                "hlocal: error: cannot export {name} to supervisord: "
            )) && outcome.stderr.contains(why)
                && outcome.stderr.lines().count() == 1,
            "{}",
            outcome.stderr
        );
        assert!(!outcome.stderr.contains(fragment), "{}", outcome.stderr);
    }
}

/// hlocal's own messages name files and variables, never values; systemd's refusal of
/// a carriage return is one of them.
#[test]
fn secrets_never_appear_in_hlocal_messages() {
    let secret = "hunter2-do-not-print";
    for format in FORMATS {
        let app = app().file("secret.env", &format!("API_TOKEN={secret}\n"));
        let (_, outcome) = export(app, format, &["-e", "secret.env"]);
        assert_eq!(outcome.code(), Some(0), "{format}: {}", outcome.stderr);
        assert!(!outcome.stdout.contains(secret) && !outcome.stderr.contains(secret));
    }
    let app = app().file("secret.env", &format!("API_TOKEN=\"{secret}\\r\"\n"));
    let (_, outcome) = export(app, "systemd", &["-e", "secret.env"]);
    outcome.assert_error(
        "hlocal: error: cannot export API_TOKEN to systemd: systemd refuses control characters other than tab and newline in a value (see docs/export.md, \"What is not expressible\")\n",
    );
}

#[test]
fn kubernetes_puts_secret_looking_names_in_the_secret() {
    let app = app().file(
        "k8s.env",
        "RAILS_ENV=production\nSTRIPE_API_KEY=sk\nDB_PASSWORD=pw\nREDIS_URL=redis://:pw@cache:6379\nCDN_URL=https://cdn\n",
    );
    let out = export_ok(app, "kubernetes", &["-e", "k8s.env"]);
    let text = fs::read_to_string(out.join("shop.yaml")).expect("manifests");
    let (config_map, secret) = text.split_once("kind: Secret").expect("a Secret document");
    for plain in ["RAILS_ENV", "CDN_URL"] {
        assert!(config_map.contains(&format!("\"{plain}\":")), "{plain}");
        assert!(!secret.contains(&format!("\"{plain}\":")), "{plain}");
    }
    for hidden in ["STRIPE_API_KEY", "DB_PASSWORD", "REDIS_URL"] {
        assert!(!config_map.contains(&format!("\"{hidden}\":")), "{hidden}");
        assert!(secret.contains(&format!("\"{hidden}\":")), "{hidden}");
    }
}

/// systemd expands `%` sequences in paths: an app root with `%` in its name stays literal.
#[test]
fn systemd_keeps_percent_signs_in_paths() {
    let app = Hlocal::new().file("100%d app/Procfile", "web: ./serve\n");
    let out = app.dir.join("out");
    let root = app.dir.join("100%d app");
    let outcome = app
        .args([
            "export",
            "systemd",
            "out",
            "--app",
            "shop",
            "-d",
            "100%d app",
        ])
        .run();
    assert_eq!(outcome.code(), Some(0), "{}", outcome.stderr);
    let unit = fs::read_to_string(out.join("shop-web@.service")).expect("unit");
    let expected = format!("WorkingDirectory={}\n", root.display()).replace('%', "%%");
    assert!(unit.contains(&expected), "{unit}");
    let verify = validator(
        "systemd-analyze",
        &[
            "verify",
            "--man=no",
            "--recursive-errors=no",
            "./shop-web@.service",
        ],
        &out,
    );
    assert_clean("systemd-analyze verify", &verify);
}

#[test]
fn kubernetes_says_where_it_cannot_keep_restart_never() {
    let outcome = Hlocal::new()
        .procfile("task: ./run-once\n")
        .file("hlocal.toml", "restart = \"never\"\n")
        .args(["export", "kubernetes", "-", "--dry-run"])
        .run();
    assert_eq!(outcome.code(), Some(0), "{}", outcome.stderr);
    assert!(
        outcome.stdout.contains(
            "# restart = \"never\" is not expressible: a Deployment restarts its containers always.\napiVersion: apps/v1\nkind: Deployment\n"
        ),
        "{}",
        outcome.stdout
    );
}

#[test]
fn the_release_keeps_its_own_stop_settings() {
    let exported = |format: &str| {
        let outcome = Hlocal::new()
            .procfile("release: ./migrate\nweb: ./serve\n")
            .file(
                "hlocal.toml",
                "[process.release]\nstop_signal = \"SIGINT\"\nstop_timeout = \"7s\"\n",
            )
            .args(["export", format, "-", "--dry-run", "--app", "shop"])
            .run();
        assert_eq!(outcome.code(), Some(0), "{}", outcome.stderr);
        outcome.stdout
    };
    for (format, wanted) in [
        ("systemd", "KillSignal=SIGINT\nTimeoutStopSec=7s\n"),
        (
            "compose",
            "    stop_signal: SIGINT\n    stop_grace_period: 7s\n",
        ),
        (
            "kubernetes",
            "# stop_signal = SIGINT is not expressible: Kubernetes stops containers with SIGTERM.\napiVersion: batch/v1\nkind: Job\n",
        ),
        ("kubernetes", "terminationGracePeriodSeconds: 7\n"),
        ("supervisord", "stopsignal=INT\nstopwaitsecs=7\n"),
    ] {
        let text = exported(format);
        assert!(text.contains(wanted), "{format}: {wanted:?} in\n{text}");
    }
}
