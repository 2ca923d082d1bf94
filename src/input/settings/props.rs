//! Property tests (the repo's fuzzing): hlocal.toml text, arbitrary or built from its own
//! keys with values of every TOML type, is settings or a one-line error with a line number.

use proptest::prelude::*;

use super::validate::check;
use super::*;

const TOP_KEYS: &[&str] = &[
    "procfile",
    "env",
    "start_cmd",
    "formation",
    "port",
    "timeout",
    "boot_timeout",
    "request_timeout",
    "watch_debounce",
    "restart",
    "exit_on_exit",
    "no_release",
    "dyno",
    "no_router",
    "preboot",
    "no_timestamp",
    "json",
    "balance",
    "color",
    "log_format",
    "watch",
    "watch_ignore",
];
const PROCESS_KEYS: &[&str] = &[
    "restart",
    "stop_signal",
    "stop_timeout",
    "watch",
    "ready",
    "depends_on",
];

fn toml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| format!("{n:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        "\\PC{0,20}".prop_map(|s| format!("{s:?}")),
        "[a-z0-9=,. ]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ];
    leaf.prop_recursive(2, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|v| {
                let pairs: Vec<String> = v.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", pairs.join(", "))
            }),
        ]
    })
}

fn settings_text() -> impl Strategy<Value = String> {
    let top = prop::collection::vec((prop::sample::select(TOP_KEYS), toml_value()), 0..6);
    let process = (
        "[a-z]{1,5}",
        prop::collection::vec((prop::sample::select(PROCESS_KEYS), toml_value()), 0..4),
    );
    (top, prop::collection::vec(process, 0..3)).prop_map(|(top, processes)| {
        let mut text: String = top.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        for (name, keys) in processes {
            text.push_str(&format!("[process.{name}]\n"));
            text.extend(keys.iter().map(|(k, v)| format!("{k} = {v}\n")));
        }
        text
    })
}

proptest! {
    #[test]
    fn any_text_is_settings_or_a_located_error(text in "\\PC{0,300}", built in settings_text()) {
        for text in [&text, &built] {
            match parse(text) {
                Ok(settings) => {
                    let _ = check(&settings, &["web", "worker"]);
                }
                Err((line, message)) => {
                    prop_assert!(line >= 1 && line <= text.lines().count().max(1), "{line}");
                    prop_assert!(!message.contains('\n'), "{message:?}");
                }
            }
        }
    }
}
