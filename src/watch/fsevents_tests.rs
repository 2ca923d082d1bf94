//! The debounce and ignore rules under macOS's FSEvents, run on any platform. FSEvents
//! does not report operations but paths with flags, coalesced over its latency: one
//! report for a file created, written and renamed away, flags that stay set across later
//! reports (a plain write to a file created earlier still says `Created`), renames with
//! no side named, and "rescan this directory" when events were dropped. notify turns
//! each report into one event per flag, in a fixed order (`translate_flags` in notify's
//! `fsevent.rs`); [`reports`] does the same here, and the sequences go through the real
//! `events` → `tree` → `batch` path with synthetic times, against real files in a
//! temporary directory (existence is what FSEvents leaves hlocal to check).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::event::{
    CreateKind, DataChange, EventKind, Flag, MetadataKind, ModifyKind, RemoveKind, RenameMode,
};

use super::batch::{Pending, Root};
use super::events;
use super::rules::IgnoreRules;
use super::tree::{Scope, Tree};

const QUIET_MS: u64 = 200;
const QUIET: Duration = Duration::from_millis(QUIET_MS);

/// FSEvents' item flags that notify reads (`kFSEventStreamEventFlag…`).
#[derive(Clone, Copy, PartialEq)]
enum F {
    MustScanSubDirs,
    Created,
    Removed,
    Renamed,
    InodeMetaMod,
    Modified,
    IsDir,
}

/// The notify events one FSEvents report of `path` becomes, in notify's order.
fn reports(path: &Path, flags: &[F]) -> Vec<notify::Result<notify::Event>> {
    let has = |f| flags.contains(&f);
    let dir = has(F::IsDir);
    let mut kinds = Vec::new();
    if has(F::MustScanSubDirs) {
        kinds.push(None);
    }
    if has(F::Created) {
        kinds.push(Some(EventKind::Create(if dir {
            CreateKind::Folder
        } else {
            CreateKind::File
        })));
    }
    if has(F::Removed) {
        kinds.push(Some(EventKind::Remove(if dir {
            RemoveKind::Folder
        } else {
            RemoveKind::File
        })));
    }
    if has(F::Renamed) {
        kinds.push(Some(EventKind::Modify(ModifyKind::Name(RenameMode::Any))));
    }
    if has(F::InodeMetaMod) {
        kinds.push(Some(EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::Any,
        ))));
    }
    if has(F::Modified) {
        kinds.push(Some(EventKind::Modify(ModifyKind::Data(
            DataChange::Content,
        ))));
    }
    kinds
        .into_iter()
        .map(|kind| {
            let event = match kind {
                Some(kind) => notify::Event::new(kind),
                None => notify::Event::new(EventKind::Other).set_flag(Flag::Rescan),
            };
            Ok(event.add_path(path.to_path_buf()))
        })
        .collect()
}

/// An app directory with a tree watching it, fed by hand instead of by the OS.
struct App {
    root: PathBuf,
    tree: Tree,
    pending: Pending,
    start: Instant,
}

impl App {
    fn new(name: &str, ignore: &[&str]) -> App {
        let root =
            std::env::temp_dir().join(format!("hlocal-fsevents-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("node_modules/pkg")).expect("create app");
        let root = fs::canonicalize(root).expect("canonical");
        fs::write(root.join(".gitignore"), "log/\n").expect(".gitignore");
        fs::write(root.join("app.py"), "print(1)\n").expect("app.py");
        let globs: Vec<String> = ignore.iter().map(|g| g.to_string()).collect();
        let rules = IgnoreRules::new(&root, &globs).expect("rules");
        let scope = Scope::resolve(&root, &[]).expect("scope");
        // The OS's own events go nowhere: the test is the event source.
        let tree = Tree::start(|_: notify::Result<notify::Event>| {}, rules, scope).expect("tree");
        App {
            root,
            tree,
            pending: Pending::new(QUIET),
            start: Instant::now(),
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    fn write(&self, relative: &str) {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, "x").expect("write");
    }

    /// One FSEvents report arriving `at_ms` after the start.
    fn report(&mut self, at_ms: u64, relative: &str, flags: &[F]) {
        let at = self.start + Duration::from_millis(at_ms);
        for event in reports(&self.path(relative), flags) {
            for observation in events::observations(event) {
                for change in self.tree.observe(observation) {
                    self.pending.record(change, at);
                }
            }
        }
    }

    /// The batch, once due `at_ms` after the start (nothing when it is not due).
    fn batch_at(&mut self, at_ms: u64) -> Vec<PathBuf> {
        if !self
            .pending
            .is_due(self.start + Duration::from_millis(at_ms))
        {
            return Vec::new();
        }
        let batch = self.pending.settled(&Root::new(&self.root));
        self.pending.clear();
        batch
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

#[test]
fn an_atomic_save_is_one_change_of_the_saved_file() {
    let mut app = App::new("atomic-save", &[]);
    // The editor wrote `.app.py.swx`, renamed it over `app.py`: the temp file's whole
    // life in one report, the target's rename with the flags it had collected before.
    app.write("app.py");
    let temp = &[F::Created, F::Modified, F::Renamed];
    app.report(0, ".app.py.swx", temp);
    app.report(0, "app.py", &[F::Created, F::Renamed, F::Modified]);
    assert_eq!(app.batch_at(QUIET_MS), paths(&["app.py"]));
}

#[test]
fn a_file_created_and_deleted_within_the_latency_is_no_change() {
    let mut app = App::new("transient", &[]);
    app.report(0, "4913", &[F::Created, F::Modified, F::Removed]);
    app.report(10, "sedAbC123", &[F::Created, F::InodeMetaMod, F::Renamed]);
    assert!(app.pending.due().is_some(), "observed, so the period runs");
    assert_eq!(app.batch_at(QUIET_MS + 10), Vec::<PathBuf>::new());
}

/// FSEvents streams are recursive; notify passes on only the reports for a watched
/// directory and its direct entries, and ignored directories get no watch. So what
/// reaches the rules is an ignored entry of a watched directory, with sticky flags.
#[test]
fn sticky_flags_on_ignored_entries_change_nothing() {
    let mut app = App::new("ignored", &["*.tmp"]);
    app.write("node_modules/pkg/index.js");
    app.write("log/dev.log");
    app.write("cache.tmp");
    app.report(0, "cache.tmp", &[F::Created, F::Modified, F::InodeMetaMod]);
    for dir in ["node_modules", "log"] {
        app.report(0, dir, &[F::Created, F::IsDir, F::InodeMetaMod]);
    }
    assert_eq!(app.pending.due(), None, "nothing counted");
    app.report(50, "app.py", &[F::Created, F::Modified]);
    assert_eq!(app.batch_at(50 + QUIET_MS), paths(&["app.py"]));
}

#[test]
fn repeated_reports_of_one_burst_make_one_batch_after_the_last() {
    let mut app = App::new("burst", &[]);
    for at in (0..=150).step_by(10) {
        app.report(at, "app.py", &[F::Created, F::Modified]);
    }
    assert_eq!(
        app.batch_at(QUIET_MS),
        Vec::<PathBuf>::new(),
        "not quiet yet"
    );
    assert_eq!(app.batch_at(150 + QUIET_MS), paths(&["app.py"]));
    assert_eq!(app.pending.due(), None, "one batch");
}

#[test]
fn a_deleted_directory_counts_by_its_files() {
    let mut app = App::new("rm-r", &[]);
    app.report(0, "src/models.py", &[F::Created, F::Modified, F::Removed]);
    app.report(0, "src", &[F::Created, F::IsDir, F::Removed]);
    // Never existed in this batch: created and gone, as `rm -r` of a fresh tree reads.
    assert_eq!(app.batch_at(QUIET_MS), Vec::<PathBuf>::new());
    app.report(300, "app.py", &[F::Removed]);
    assert_eq!(app.batch_at(300 + QUIET_MS), paths(&["app.py"]));
}

#[test]
fn a_new_directory_reported_alone_still_reports_its_files() {
    let mut app = App::new("mkdir", &[]);
    app.write("lib/util.py");
    app.write("lib/node_modules/x.js");
    app.report(0, "lib", &[F::Created, F::IsDir]);
    assert_eq!(app.batch_at(QUIET_MS), paths(&["lib/util.py"]));
}

#[test]
fn dropped_events_rescan_the_whole_tree() {
    let mut app = App::new("dropped", &[]);
    app.report(0, "", &[F::MustScanSubDirs]);
    assert_eq!(app.batch_at(QUIET_MS), paths(&[super::WHOLE_TREE]));
}
