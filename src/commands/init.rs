//! `hlocal init vscode`: VS Code's tasks and launch configuration for this app
//! (docs/editors.md shows what is written and why).
//!
//! `.vscode/tasks.json` gets a background `hlocal start` task whose problem matcher
//! begins at `hlocal | reloading:` and ends at `hlocal | ready:` or `hlocal | error:` (the
//! markers, `output::Marker`), and a `hlocal run TYPE` task per Procfile type;
//! `.vscode/launch.json` a configuration whose `serverReadyAction` opens the ready URL.
//!
//! The files are JSONC (comments, trailing commas) and may hold the user's own tasks: they
//! are edited in place through a concrete syntax tree, so every comment and key stays as
//! written, and an entry is added only when none of the same label or name is there
//! (running it twice changes nothing; a task the user edited is left as it is). A file
//! that cannot be merged (not JSONC, not an object, `tasks` not an array) is refused with
//! its reason, and then neither file is written.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstArray, CstInputValue, CstObject, CstRootNode};
use jsonc_parser::json;

use super::print_out;
use crate::cli::{Editor, InitArgs};
use crate::error::{Error, InputError, display_path};
use crate::input::procfile::ProcessType;
use crate::input::textfile::read_text;

/// The markers as VS Code's background matcher reads them (JavaScript regexes; the same
/// as the `regex` crate's for these).
pub const BEGINS_PATTERN: &str = r"^(\S+ )?hlocal\s+\| reloading: ";
pub const ENDS_PATTERN: &str = r"^(\S+ )?hlocal\s+\| (ready|error): ";
/// `serverReadyAction` opens the URL of the `ready` marker.
pub const READY_URL_PATTERN: &str = r"hlocal\s+\| ready: (https?://\S+)";
/// A problem matcher must have a pattern; hlocal's lines name no source file, so this
/// one never matches (`a^`) and the matcher only tracks the background task.
const NO_PROBLEMS: &str = "a^";

const START_LABEL: &str = "hlocal: start";
const LAUNCH_NAME: &str = "hlocal: open the app when ready";

/// One of VS Code's files: its format version, the array of entries, and the key that
/// names an entry.
struct Layout {
    file: &'static str,
    version: &'static str,
    list: &'static str,
    key: &'static str,
}

const TASKS: Layout = Layout {
    file: "tasks.json",
    version: "2.0.0",
    list: "tasks",
    key: "label",
};

const LAUNCH: Layout = Layout {
    file: "launch.json",
    version: "0.2.0",
    list: "configurations",
    key: "name",
};

/// An entry hlocal adds, by the name it is known by.
struct Entry {
    name: String,
    value: CstInputValue,
}

/// What becomes of one file.
struct Plan {
    path: PathBuf,
    text: String,
    existed: bool,
    added: usize,
}

pub fn init(args: &InitArgs) -> Result<i32, Error> {
    let Editor::Vscode = args.editor;
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("."));
    let Some(types) = crate::config::types_in(&root)? else {
        let place = std::path::absolute(&root).unwrap_or(root);
        let place = place.display().to_string();
        return Err(InputError::NoProcfileToSetUp { place }.into());
    };
    let dir = root.join(".vscode");
    // Both files are merged before either is written: a refusal leaves both untouched.
    let plans = [
        plan(&dir.join(TASKS.file), &TASKS, tasks(&types))?,
        plan(&dir.join(LAUNCH.file), &LAUNCH, vec![launch()])?,
    ];
    let mut said = String::new();
    for plan in &plans {
        if plan.added > 0 {
            fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
            write_whole(&plan.path, &plan.text).map_err(|e| Error::io("writing", &plan.path, e))?;
        }
        said.push_str(&summary(plan));
    }
    print_out(said.as_bytes())
}

fn summary(plan: &Plan) -> String {
    let path = display_path(&plan.path);
    let entries = match plan.added {
        1 => "1 entry".to_string(),
        n => format!("{n} entries"),
    };
    match (plan.added, plan.existed) {
        (0, _) => format!("{path}: up to date\n"),
        (_, false) => format!("{path}: created with {entries}\n"),
        (_, true) => format!("{path}: added {entries}, kept the rest\n"),
    }
}

/// The file's new text, or why it cannot be merged.
fn plan(path: &Path, layout: &Layout, entries: Vec<Entry>) -> Result<Plan, Error> {
    let existed = path.exists();
    let text = if existed {
        read_text(path, "reading")?
    } else {
        String::new()
    };
    let (text, added) = merge(&text, layout, entries).map_err(|refusal| {
        let why = format!("{}; nothing was written", refusal.why);
        match refusal.line {
            Some(line) => Error::located(path, line, why),
            None => Error::named(display_path(path), why),
        }
    })?;
    Ok(Plan {
        path: path.to_path_buf(),
        text,
        existed,
        added,
    })
}

/// Why a file cannot be merged, at a line when the parser knows one.
#[derive(Debug)]
struct Refusal {
    line: Option<usize>,
    why: String,
}

impl Refusal {
    fn new(why: impl Into<String>) -> Refusal {
        Refusal {
            line: None,
            why: why.into(),
        }
    }
}

/// `text` with each entry whose name is not there yet appended to the layout's array;
/// everything else as it was, comments included.
fn merge(text: &str, layout: &Layout, entries: Vec<Entry>) -> Result<(String, usize), Refusal> {
    let root = CstRootNode::parse(text, &ParseOptions::default()).map_err(|e| Refusal {
        line: Some(e.line_display()),
        why: format!("cannot merge: {}", e.kind()),
    })?;
    let object = match root.value() {
        None => root.object_value_or_set(),
        Some(value) => value
            .as_object()
            .ok_or_else(|| Refusal::new("cannot merge: the file is not a JSON object"))?,
    };
    if object.get("version").is_none() {
        object.insert(0, "version", layout.version.into());
    }
    let list = entry_array(&object, layout)?;
    let present = names_in(&list, layout.key);
    let mut added = 0;
    for entry in entries {
        if !present.contains(&entry.name) {
            list.append(entry.value);
            added += 1;
        }
    }
    let mut merged = root.to_string();
    if !merged.ends_with('\n') {
        merged.push('\n');
    }
    Ok((merged, added))
}

fn entry_array(object: &CstObject, layout: &Layout) -> Result<CstArray, Refusal> {
    match object.get(layout.list) {
        None => Ok(object.array_value_or_set(layout.list)),
        Some(prop) => prop.array_value().ok_or_else(|| {
            Refusal::new(format!("cannot merge: \"{}\" is not an array", layout.list))
        }),
    }
}

/// The `key` of every object in `list` (`label` of each task).
fn names_in(list: &CstArray, key: &str) -> Vec<String> {
    list.elements()
        .iter()
        .filter_map(|element| {
            let value = element.as_object()?.get(key)?.value()?;
            value.as_string_lit()?.decoded_value().ok()
        })
        .collect()
}

/// The background `hlocal start` task, then `hlocal run TYPE` for each type.
fn tasks(types: &[ProcessType]) -> Vec<Entry> {
    let mut entries = vec![start_task()];
    entries.extend(types.iter().map(|t| run_task(&t.name)));
    entries
}

fn start_task() -> Entry {
    let (label, begins, ends, never) = (START_LABEL, BEGINS_PATTERN, ENDS_PATTERN, NO_PROBLEMS);
    Entry {
        name: label.to_string(),
        value: json!({
            "label": label,
            "type": "process",
            "command": "hlocal",
            "args": ["start"],
            "isBackground": true,
            "problemMatcher": {
                "owner": "hlocal",
                "pattern": { "regexp": never, "file": 1, "message": 1 },
                "background": {
                    "activeBegin": true,
                    "beginsPattern": begins,
                    "endsPattern": ends
                }
            }
        }),
    }
}

fn run_task(type_name: &str) -> Entry {
    let label = format!("hlocal: run {type_name}");
    let name = type_name.to_string();
    Entry {
        name: label.clone(),
        value: json!({
            "label": label,
            "type": "process",
            "command": "hlocal",
            "args": ["run", name],
            "problemMatcher": []
        }),
    }
}

/// VS Code's own JavaScript debugger runs `hlocal start` in a terminal and watches its
/// output for the `ready` marker (`serverReadyAction` needs a debug session; this one
/// works for any language).
fn launch() -> Entry {
    let (name, pattern) = (LAUNCH_NAME, READY_URL_PATTERN);
    Entry {
        name: name.to_string(),
        value: json!({
            "name": name,
            "type": "node-terminal",
            "request": "launch",
            "command": "hlocal start",
            "serverReadyAction": {
                "action": "openExternally",
                "pattern": pattern,
                "uriFormat": "%s"
            }
        }),
    }
}

/// The new text goes to a file beside the old one first: a failed write never leaves
/// the user's file cut short.
fn write_whole(path: &Path, text: &str) -> io::Result<()> {
    let mut staging = path.as_os_str().to_owned();
    staging.push(".hlocal-new");
    let staging = PathBuf::from(staging);
    fs::write(&staging, text)?;
    fs::rename(&staging, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Entry {
        Entry {
            name: name.to_string(),
            value: json!({ "label": name }),
        }
    }

    fn merged(text: &str, names: &[&str]) -> (String, usize) {
        merge(text, &TASKS, names.iter().map(|n| entry(n)).collect()).expect("merges")
    }

    #[test]
    fn an_empty_file_gets_the_version_and_the_entries() {
        let (text, added) = merged("", &["a"]);
        assert_eq!(added, 1);
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            value,
            serde_json::json!({"version": "2.0.0", "tasks": [{"label": "a"}]})
        );
    }

    #[test]
    fn comments_trailing_commas_and_other_tasks_stay() {
        let text = "{\n  // mine\n  \"version\": \"2.0.0\",\n  \"tasks\": [\n    /* keep */ {\"label\": \"build\", \"command\": \"make\"},\n  ],\n}\n";
        let (out, added) = merged(text, &["build", "new"]);
        assert_eq!(added, 1);
        for kept in ["// mine", "/* keep */", "\"command\": \"make\""] {
            assert!(out.contains(kept), "{kept} lost: {out}");
        }
        assert!(out.contains("\"label\": \"new\""), "{out}");
    }

    #[test]
    fn merging_twice_adds_nothing_more() {
        let (once, _) = merged("", &["a", "b"]);
        let (twice, added) = merged(&once, &["a", "b"]);
        assert_eq!((twice, added), (once, 0));
    }

    #[test]
    fn what_cannot_be_merged_is_refused() {
        let refuse = |text: &str| {
            merge(text, &TASKS, vec![entry("a")])
                .expect_err("refused")
                .why
        };
        assert_eq!(
            refuse("[1, 2]"),
            "cannot merge: the file is not a JSON object"
        );
        assert_eq!(
            refuse("{\"tasks\": {}}"),
            "cannot merge: \"tasks\" is not an array"
        );
        let broken = merge("{\n\"tasks\": [\n", &TASKS, vec![entry("a")]).expect_err("refused");
        assert_eq!(broken.line, Some(2));
    }
}
