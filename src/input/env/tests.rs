#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use super::vars::{MAX_VAR_BYTES, ValueProblem};
use super::*;
use crate::input::procfile::tests::TempDir;

fn vars(pairs: &[(&str, &str)]) -> Vars {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(text: &str) -> Vars {
    parse_files(&[text]).unwrap().vars
}

/// `(line, error)` of a single text.
fn error(text: &str) -> (usize, EnvError) {
    let e = parse_files(&[text]).unwrap_err();
    assert_eq!(e.file, 0);
    (e.line, e.error)
}

fn invalid(line: usize, key: &str, problem: ValueProblem) -> (usize, EnvError) {
    (line, EnvError::InvalidValue(key.into(), problem))
}

fn bad_key(line: usize, key: &str) -> (usize, EnvError) {
    (line, EnvError::InvalidKey(key.into()))
}

#[test]
fn dotenv_conventions_follow_dotenvy() {
    let text = r#"
# comment
A=1
export B=two
C="double quoted # not a comment"
D='single $A'
E=plain # trailing comment
F="line1
line2"
G=
H="escaped \" quote\nnewline"
"#;
    assert_eq!(
        parse(text),
        vars(&[
            ("A", "1"),
            ("B", "two"),
            ("C", "double quoted # not a comment"),
            ("D", "single $A"),
            ("E", "plain"),
            ("F", "line1\nline2"),
            ("G", ""),
            ("H", "escaped \" quote\nnewline"),
        ])
    );
}

#[test]
fn unquoted_values_keep_inner_blanks_as_foreman_reads_them() {
    let text = "A=two words\nB=one  two\t # comment\nC=a#b\nD=x ${A}\n";
    assert_eq!(
        parse(text),
        vars(&[
            ("A", "two words"),
            ("B", "one  two"),
            ("C", "a#b"),
            ("D", "x two words"),
        ])
    );
}

#[test]
fn expansion_sees_earlier_lines() {
    let text = "HLOCAL_TEST_HOST=db\nHLOCAL_TEST_URL=postgres://${HLOCAL_TEST_HOST}/app\n";
    assert_eq!(parse(text)[1].1, "postgres://db/app");
}

#[test]
fn expansion_sees_earlier_files() {
    let merged = parse_files(&[
        "HLOCAL_TEST_H2=db\n",
        "HLOCAL_TEST_U2=${HLOCAL_TEST_H2}:5432\n",
    ])
    .unwrap()
    .vars;
    assert_eq!(merged[1], ("HLOCAL_TEST_U2".into(), "db:5432".into()));
}

#[test]
fn later_files_override_and_first_seen_order_is_kept() {
    let merged = parse_files(&["A=1\nB=2\n", "C=3\nA=override\n"])
        .unwrap()
        .vars;
    assert_eq!(merged, vars(&[("A", "override"), ("B", "2"), ("C", "3")]));
}

#[test]
fn later_line_in_one_file_wins() {
    assert_eq!(parse("A=1\nB=2\nA=3\n"), vars(&[("A", "3"), ("B", "2")]));
}

#[test]
fn crlf_bom_and_missing_final_newline_are_accepted() {
    assert_eq!(
        parse("\u{feff}A=1\r\nB=\"x\"\r\nC=3"),
        vars(&[("A", "1"), ("B", "x"), ("C", "3")])
    );
}

#[test]
fn files_without_final_newline_do_not_run_together() {
    let merged = parse_files(&["A=1", "B=2"]).unwrap().vars;
    assert_eq!(merged, vars(&[("A", "1"), ("B", "2")]));
}

#[test]
fn empty_files_are_empty() {
    assert_eq!(parse_files(&[]).unwrap(), Merged::default());
    assert_eq!(parse(""), Vars::new());
    assert_eq!(parse("\n# only a comment\n\n"), Vars::new());
}

#[test]
fn backslashes_outside_quotes_are_kept_and_quoted_parts_join() {
    let text = "A=C:\\path\\to\nB=^\\d+$\nC=x\\ y\nD=end\\\nE=\"x\"y\nF='it''s'\nG=\"a\\\\b\"\n";
    assert_eq!(
        parse(text),
        vars(&[
            ("A", "C:\\path\\to"),
            ("B", "^\\d+$"),
            ("C", "x\\ y"),
            ("D", "end\\"),
            ("E", "xy"),
            ("F", "its"),
            ("G", "a\\b"),
        ])
    );
}

#[test]
fn values_are_literal_and_only_braced_references_expand() {
    let text = "A=abc$123\nB=p@ss$word\nC=\"abc$123\"\nD=${HLOCAL_TEST_NEVER:-localhost}\n\
                E='x${A}'\nF=\"\\$HOME\"\nG=\"${A}-x\"\nH=$\nI=a#b\n";
    assert_eq!(
        parse(text),
        vars(&[
            ("A", "abc$123"),
            ("B", "p@ss$word"),
            ("C", "abc$123"),
            ("D", "localhost"),
            ("E", "x${A}"),
            ("F", "$HOME"),
            ("G", "abc$123-x"),
            ("H", "$"),
            ("I", "a#b"),
        ])
    );
}

#[test]
fn a_default_replaces_an_empty_value_and_an_unset_reference_warns() {
    let Merged { vars, warnings, .. } =
        parse_files(&["E=\nA=${E:-d}\n", "\n\nB=\"x${HLOCAL_TEST_NEVER}y\"\n"]).unwrap();
    assert_eq!(vars[1].1, "d");
    assert_eq!(vars[2].1, "xy");
    assert_eq!(
        warnings,
        [Warning {
            file: 1,
            line: 3,
            name: "HLOCAL_TEST_NEVER".into()
        }]
    );
}

#[test]
fn earlier_lines_beat_the_environment() {
    assert_eq!(parse("PATH=mine\nA=${PATH}\n")[1].1, "mine");
}

#[test]
fn a_line_without_equals_names_its_line_only() {
    assert_eq!(
        error("A=1\n\nsk_live_secret\n"),
        (3, EnvError::MissingEquals)
    );
    assert_eq!(
        EnvError::MissingEquals.to_string(),
        r#"expected NAME=value, found no "=""#
    );
}

#[test]
fn line_numbers_count_comments_blank_lines_and_multiline_values() {
    let text = "# c\n\nA=\"one\ntwo\nthree\"\n  # indented comment\nB=1\n-bad=1\n";
    assert_eq!(error(text), bad_key(8, "-bad"));
}

#[test]
fn key_errors_show_the_key_and_never_the_value() {
    let (line, e) = error("A=1\nSTRIPE KEY=sk_live_secret\n");
    assert_eq!((line, &e), (2, &EnvError::InvalidKey("STRIPE KEY".into())));
    assert!(!e.to_string().contains("sk_live"), "{e}");
    assert_eq!(error("export 1A=\"x\ny\"\n"), bad_key(1, "1A"));
}

#[test]
fn value_errors_inside_multiline_values_name_the_later_line() {
    assert_eq!(
        error("A=1\nB=\"x\ny\" junk\nC=2\n"),
        invalid(3, "B", ValueProblem::TextAfterQuote)
    );
    assert_eq!(
        error("B=\"x\n\\q\"\n"),
        invalid(2, "B", ValueProblem::InvalidEscape)
    );
}

#[test]
fn bad_escape_trailing_text_and_bad_references_are_errors() {
    use ValueProblem::*;
    assert_eq!(error("A=\"\\q\"\n"), invalid(1, "A", InvalidEscape));
    assert_eq!(error("A='one' two\n"), invalid(1, "A", TextAfterQuote));
    assert_eq!(error("A=${OPEN\n"), invalid(1, "A", UnterminatedReference));
    assert_eq!(error("A=${A B}\n"), invalid(1, "A", InvalidReference));
    assert_eq!(error("A=${B:-${C}}\n"), invalid(1, "A", NestedReference));
    assert_eq!(
        error("A=\"${B:-x${C}}\"\n"),
        invalid(1, "A", NestedReference)
    );
    let shown = EnvError::InvalidValue("A".into(), TextAfterQuote).to_string();
    assert_eq!(
        shown,
        "the value of A: text after the closing quote (only a # comment may follow)"
    );
}

#[test]
fn unterminated_quote_names_the_line_it_opens() {
    use ValueProblem::*;
    assert_eq!(
        error("A=1\nB=\"open\nC=2\n"),
        invalid(2, "B", UnterminatedDouble)
    );
    assert_eq!(error("A='open"), invalid(1, "A", UnterminatedSingle));
}

#[test]
fn unterminated_quote_does_not_swallow_the_next_file() {
    let e = parse_files(&["A=1\nB=\"open\n", "C=2\"\n"]).unwrap_err();
    assert_eq!((e.file, e.line), (0, 2));
}

#[test]
fn errors_in_a_later_file_name_that_file_and_its_line() {
    let e = parse_files(&["A=1\nB=2\n", "C=3\nnot a line\n"]).unwrap_err();
    assert_eq!((e.file, e.line), (1, 2));
}

#[test]
fn very_long_keys_are_shortened_in_messages() {
    let text = format!("A B{}=1\n", "x".repeat(1000));
    let (line, e) = error(&text);
    assert_eq!(line, 1);
    assert!(e.to_string().len() < 200, "{e}");
}

#[test]
fn long_values_parse_and_values_over_max_arg_strlen_are_errors() {
    let long = "v".repeat(20_000);
    assert_eq!(parse(&format!("A={long}\nB=2\n"))[0].1, long);
    let too_long = "v".repeat(MAX_VAR_BYTES);
    assert_eq!(
        error(&format!("A=1\nB={too_long}\n")),
        (2, EnvError::TooLong("B".into(), MAX_VAR_BYTES))
    );
}

#[test]
fn nul_in_a_value_is_an_error() {
    assert_eq!(
        error("A=1\nB=\"x\0y\"\n"),
        (2, EnvError::NulInValue("B".into()))
    );
}

#[test]
fn json_is_flattened_and_upper_cased() {
    let text = r#"{"top": {"key": "v", "deeper": {"n": 42}}, "flag": true, "ratio": 0.5, "camelCase": "c"}"#;
    assert_eq!(
        parse(text),
        vars(&[
            ("TOP_KEY", "v"),
            ("TOP_DEEPER_N", "42"),
            ("FLAG", "true"),
            ("RATIO", "0.5"),
            ("CAMELCASE", "c"),
        ])
    );
}

#[test]
fn json_arrays_are_keyed_by_index_and_null_sets_nothing() {
    let text = "\n  {\"list\": [\"zero\", {\"x\": 1}], \"gone\": null, \"neg\": -3}";
    assert_eq!(
        parse(text),
        vars(&[("LIST_0", "zero"), ("LIST_1_X", "1"), ("NEG", "-3")])
    );
}

#[test]
fn json_and_dotenv_files_merge_in_order() {
    let merged = parse_files(&["A=1\nB=1\n", r#"{"b": "json", "c": "json"}"#, "C=3\n"])
        .unwrap()
        .vars;
    assert_eq!(merged, vars(&[("A", "1"), ("B", "json"), ("C", "3")]));
}

#[test]
fn each_var_knows_the_file_and_line_that_set_it_last() {
    let merged = parse_files(&["A=1\n\nB=1\n", r#"{"b": "json"}"#, "\nA=2\n"]).unwrap();
    let origin = |file, line| Origin { file, line };
    assert_eq!(merged.origins, [origin(2, Some(2)), origin(1, None)]);
}

#[test]
fn invalid_json_reports_serde_json_line() {
    let (line, e) = error("{\n  \"a\": 1,\n  \"b\" 2\n}\n");
    assert_eq!(line, 3);
    assert_eq!(e, EnvError::Json("expected `:` (column 7)".into()));
    assert_eq!(e.to_string(), "invalid JSON: expected `:` (column 7)");
}

#[test]
fn json_trailing_content_is_an_error() {
    let (line, e) = error("{\"a\": 1}\nB=2\n");
    assert_eq!(line, 2);
    assert!(matches!(e, EnvError::Json(_)), "{e:?}");
}

#[test]
fn json_names_with_equals_nul_or_nothing_are_errors() {
    assert_eq!(
        error("{\n\"a=b\": 1}"),
        (2, EnvError::InvalidName("A=B".into()))
    );
    assert_eq!(
        error(r#"{"": "x"}"#).1,
        EnvError::InvalidName(String::new())
    );
    assert_eq!(
        error(r#"{"a\u0000": "x"}"#).1,
        EnvError::InvalidName("A\0".into())
    );
    assert_eq!(
        EnvError::InvalidName("A=B".into()).to_string(),
        r#"invalid variable name "A=B" (a name cannot be empty or contain "=" or NUL)"#
    );
}

#[test]
fn json_nested_empty_key_keeps_its_separator() {
    assert_eq!(parse(r#"{"": {"a": 1}}"#), vars(&[("_A", "1")]));
}

#[test]
fn json_nul_in_a_value_is_an_error() {
    assert_eq!(
        error(r#"{"a": "x\u0000"}"#).1,
        EnvError::NulInValue("A".into())
    );
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let text = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    assert!(matches!(error(&text).1, EnvError::Json(_)));
}

/// Deterministic pseudo-random texts over the characters that matter to dotenv.
fn arbitrary_texts(seed: u64, count: usize) -> Vec<String> {
    const ALPHABET: &[&str] = &[
        "A", "b", "_", "=", "\"", "'", "\\", "\n", "\r\n", "#", " ", "$", "{", "}", "é", "export ",
    ];
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    (0..count)
        .map(|_| {
            (0..next() % 40)
                .map(|_| ALPHABET[next() % ALPHABET.len()])
                .collect()
        })
        .collect()
}

#[test]
fn arbitrary_input_never_panics_and_errors_point_inside_the_file() {
    for seed in 0..3000 {
        let texts = arbitrary_texts(seed, 1 + seed as usize % 3);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        if let Err(e) = parse_files(&refs) {
            let lines = refs[e.file].split_inclusive('\n').count().max(1);
            assert!(
                (1..=lines).contains(&e.line),
                "seed {seed}: line {} of {lines} in {refs:?}: {e:?}",
                e.line
            );
        }
    }
}

#[test]
fn load_files_reads_in_order_and_locates_errors() {
    let dir = TempDir::new("env-load");
    let first = dir.file(".env", b"A=1\nB=2\n");
    let second = dir.file(".env.local", b"B=3\n\nFOO BAR\n");
    assert_eq!(
        load_files(&[&first]).unwrap().vars,
        vars(&[("A", "1"), ("B", "2")])
    );
    let message = load_files(&[&first, &second]).unwrap_err().to_string();
    assert_eq!(
        message,
        format!(
            r#"{}:3: expected NAME=value, found no "=""#,
            second.display()
        )
    );
}

#[test]
fn load_files_missing_file_is_an_io_error() {
    let message = load_files(&[Path::new("/nonexistent/hlocal/.env")])
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("reading env file /nonexistent/hlocal/.env: "),
        "{message}"
    );
}

#[test]
fn load_files_non_utf8_names_its_line() {
    let dir = TempDir::new("env-utf8");
    let path = dir.file(".env", b"A=1\nB=\xc3\x28\n");
    let message = load_files(&[&path]).unwrap_err().to_string();
    assert_eq!(message, format!("{}:2: not valid UTF-8", path.display()));
}
