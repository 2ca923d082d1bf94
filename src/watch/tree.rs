//! The watched tree: which directories hold an OS watch, and which observed paths count as
//! changes. inotify watches one directory at a time, so instead of notify's recursive mode
//! (which walks everything, `node_modules` and `target` included, and knows nothing of
//! `.gitignore`) the tree walks the scope itself with [`IgnoreRules`], watches each kept
//! directory non-recursively, and watches directories created later as they appear.
//! Debouncing and delivery live in `mod.rs` and `batch.rs`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use notify::{ErrorKind, EventHandler, RecommendedWatcher, RecursiveMode, Watcher as _};

use super::batch::Change;
use super::events::Observation;
use super::rules::IgnoreRules;
use crate::error::{Error, display_path};

/// The `-w` paths, sorted into directories (watched with everything below them) and files
/// (watched through their directory, so an editor replacing the file by rename is seen:
/// notify #165/#166 describe a watch on the file itself following the old inode away).
pub(super) struct Scope {
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

impl Scope {
    /// A path that does not exist is the error; no paths means `root`.
    pub(super) fn resolve(root: &Path, paths: &[PathBuf]) -> Result<Scope, Error> {
        let mut scope = Scope {
            dirs: Vec::new(),
            files: Vec::new(),
        };
        let root = [root.to_path_buf()];
        let paths = if paths.is_empty() { &root[..] } else { paths };
        for path in paths {
            let path = std::path::absolute(path).map_err(|e| Error::io("watching", path, e))?;
            match fs::metadata(&path) {
                Ok(metadata) if metadata.is_dir() => scope.dirs.push(path),
                Ok(_) => scope.files.push(path),
                Err(e) => return Err(Error::io("watching", &path, e)),
            }
        }
        Ok(scope)
    }

    fn contains(&self, path: &Path) -> bool {
        self.is_named_file(path) || self.dirs.iter().any(|dir| path.starts_with(dir))
    }

    /// A file named with `-w` is watched even when an ignore rule matches it: asked for.
    fn is_named_file(&self, path: &Path) -> bool {
        self.files.iter().any(|file| file == path)
    }

    /// A directory whose watch is needed for a named path: failing to watch it is an error.
    fn is_needed_for_named_path(&self, dir: &Path) -> bool {
        self.dirs.iter().any(|named| named == dir)
            || self.files.iter().any(|file| file.parent() == Some(dir))
    }
}

/// Directories the setup walk may find ahead of the watches being added.
const WALK_AHEAD: usize = 1024;

pub(super) struct Tree {
    notify: RecommendedWatcher,
    rules: IgnoreRules,
    scope: Scope,
}

impl Tree {
    /// Sets up every watch before returning, so a change made after this is seen.
    pub(super) fn start(
        handler: impl EventHandler,
        rules: IgnoreRules,
        scope: Scope,
    ) -> Result<Tree, Error> {
        let notify = notify::recommended_watcher(handler)
            .map_err(|e| Error::startup("starting the file watcher", e))?;
        let mut tree = Tree {
            notify,
            rules,
            scope,
        };
        tree.watch_scope()?;
        Ok(tree)
    }

    /// Walks the scope on a second thread while this one adds the watches it finds: each
    /// add is a round trip to notify's thread (its inotify backend has no batch add), so
    /// walking and adding overlap. The adds go into one `paths_mut` commit (FSEvents
    /// restarts its stream once per commit rather than once per directory).
    fn watch_scope(&mut self) -> Result<(), Error> {
        let Tree {
            notify,
            rules,
            scope,
        } = self;
        let (scope, root) = (&*scope, rules.root().to_path_buf());
        let (found, to_watch) = sync_channel(WALK_AHEAD);
        thread::scope(|threads| {
            thread::Builder::new()
                .name("hlocal-watch-walk".into())
                .spawn_scoped(threads, move || directories_in_scope(rules, scope, &found))
                .map_err(|e| Error::startup("starting the file watcher", e))?;
            add_watches(notify, scope, to_watch, &root)
        })
    }

    /// What `observation` changed, as far as the app is concerned.
    pub(super) fn observe(&mut self, observation: Observation) -> Vec<Change> {
        match observation {
            Observation::Changed(path) => self.changed(path),
            Observation::Appeared(path) => self.appeared(path),
            Observation::Vanished(path) => self.vanished(path),
            Observation::Renamed(path) if fs::symlink_metadata(&path).is_ok() => {
                self.appeared(path)
            }
            Observation::Renamed(path) => self.vanished(path),
            Observation::Rescan => self.rescan(),
        }
    }

    fn changed(&mut self, path: PathBuf) -> Vec<Change> {
        // A directory's own metadata (touch, chmod) is not a change to the app's files.
        if path.is_dir() || !self.concerns(&path, false) {
            return Vec::new();
        }
        self.rules.notice_if_gitignore(&path);
        vec![Change::existing(path)]
    }

    fn appeared(&mut self, path: PathBuf) -> Vec<Change> {
        let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if !self.concerns(&path, is_dir) {
            return Vec::new();
        }
        if is_dir {
            return self.watch_new_directory(&path);
        }
        self.rules.notice_if_gitignore(&path);
        vec![Change::appeared(path)]
    }

    fn vanished(&mut self, path: PathBuf) -> Vec<Change> {
        let ignored = !self.scope.is_named_file(&path) && self.rules.is_ignored_either_kind(&path);
        if ignored || !self.scope.contains(&path) {
            return Vec::new();
        }
        self.rules.notice_if_gitignore(&path);
        vec![Change::existing(path)]
    }

    fn concerns(&self, path: &Path, is_dir: bool) -> bool {
        self.scope.is_named_file(path)
            || (self.scope.contains(path) && !self.rules.is_ignored(path, is_dir))
    }

    /// Watches a directory that appeared, and everything in it. It may have been filled
    /// before its watch was in place (`mkdir -p a/b && echo > a/b/c.py`, a directory
    /// renamed into the tree), so the files the walk finds count as created; being in
    /// empty directories only, it reports nothing for `mkdir` alone.
    fn watch_new_directory(&mut self, dir: &Path) -> Vec<Change> {
        let mut found = Vec::new();
        let Tree { notify, rules, .. } = self;
        let mut watch = |dir: &Path| watch_one(notify, dir);
        // At the watch limit the rest of this directory goes unwatched: a runtime
        // condition, not an error (what was found still counts).
        let mut record = |file| found.push(Change::appeared(file));
        let _at_watch_limit = walk(rules, dir, &mut watch, Some(&mut record));
        found
    }

    /// After lost events: walks the scope again so directories created meanwhile get
    /// watched (re-watching a watched one is harmless), and reports the whole tree.
    fn rescan(&mut self) -> Vec<Change> {
        let Tree {
            notify,
            rules,
            scope,
        } = self;
        let mut watch = |dir: &Path| watch_one(notify, dir);
        for dir in &scope.dirs {
            let _at_watch_limit = walk(rules, dir, &mut watch, None);
        }
        vec![Change::existing(rules.root().to_path_buf())]
    }
}

/// Whether `dir` got its watch; `Ok(false)` when it is already gone or unreadable.
fn watch_one(notify: &mut RecommendedWatcher, dir: &Path) -> Result<bool, notify::Error> {
    match notify.watch(dir, RecursiveMode::NonRecursive) {
        Ok(()) => Ok(true),
        Err(err) if matches!(err.kind, ErrorKind::MaxFilesWatch) => Err(err),
        Err(_) => Ok(false),
    }
}

/// Sends every directory to watch: the named files' directories, then each named
/// directory and those below it that the rules keep. Stops once nobody is receiving.
fn directories_in_scope(rules: &mut IgnoreRules, scope: &Scope, found: &SyncSender<PathBuf>) {
    for file in &scope.files {
        rules.load_ancestors(file);
        if let Some(dir) = file.parent()
            && found.send(dir.to_path_buf()).is_err()
        {
            return;
        }
    }
    for dir in &scope.dirs {
        rules.load_ancestors(dir);
        let mut send = |dir: &Path| found.send(dir.to_path_buf()).map(|()| true);
        if walk(rules, dir, &mut send, None).is_err() {
            return;
        }
    }
}

/// Adds a watch for each directory received, until the walk is done. Failing to watch a
/// named path, or reaching the OS limit, is the error; any other directory was removed
/// or made unreadable since the walk listed it, and there is nothing to watch there.
fn add_watches(
    notify: &mut RecommendedWatcher,
    scope: &Scope,
    to_watch: Receiver<PathBuf>,
    root: &Path,
) -> Result<(), Error> {
    let mut watches = notify.paths_mut();
    for dir in to_watch {
        let Err(err) = watches.add(&dir, RecursiveMode::NonRecursive) else {
            continue;
        };
        if scope.is_needed_for_named_path(&dir) || matches!(err.kind, ErrorKind::MaxFilesWatch) {
            return Err(setup_error(err, &dir));
        }
    }
    watches.commit().map_err(|err| setup_error(err, root))
}

/// Depth-first over `top` and the directories below it that the rules keep. `on_dir` gets
/// each directory *before* it is listed, so a caller that starts watching it there misses
/// nothing: entries made earlier are listed, entries made later raise events. It answers
/// whether to list the directory; an error from it stops the walk. Files kept go to
/// `on_file`; without one they are not even matched (most entries are files). Symbolic
/// links are not followed (a link is reported as a file), so links cannot make it loop.
fn walk<E>(
    rules: &mut IgnoreRules,
    top: &Path,
    on_dir: &mut dyn FnMut(&Path) -> Result<bool, E>,
    mut on_file: Option<&mut dyn FnMut(PathBuf)>,
) -> Result<(), E> {
    let mut to_visit = vec![top.to_path_buf()];
    while let Some(dir) = to_visit.pop() {
        if !on_dir(&dir)? {
            continue;
        }
        for entry in kept_entries(rules, &dir, on_file.is_some()) {
            match (entry, on_file.as_mut()) {
                (Entry::Dir(path), _) => to_visit.push(path),
                (Entry::File(path), Some(on_file)) => on_file(path),
                (Entry::File(_), None) => {}
            }
        }
    }
    Ok(())
}

enum Entry {
    Dir(PathBuf),
    File(PathBuf),
}

/// The entries of `dir` the rules keep (directories only, unless `with_files`). Reads the
/// directory's own `.gitignore` first: it applies to its siblings.
fn kept_entries(rules: &mut IgnoreRules, dir: &Path, with_files: bool) -> Vec<Entry> {
    let Ok(listing) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let entries: Vec<(PathBuf, bool)> = listing
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
            (is_dir || with_files).then(|| (entry.path(), is_dir))
        })
        .collect();
    rules.reload_gitignore(dir);
    entries
        .into_iter()
        .filter(|(path, is_dir)| !rules.is_ignored(path, *is_dir))
        .map(|(path, is_dir)| {
            if is_dir {
                Entry::Dir(path)
            } else {
                Entry::File(path)
            }
        })
        .collect()
}

/// One line naming the path, for the watch that could not be set up.
fn setup_error(err: notify::Error, fallback: &Path) -> Error {
    let path = err
        .paths
        .first()
        .cloned()
        .unwrap_or_else(|| fallback.to_path_buf());
    match err.kind {
        ErrorKind::Io(source) => Error::io("watching", &path, source),
        ErrorKind::PathNotFound => Error::io("watching", &path, io::ErrorKind::NotFound.into()),
        ErrorKind::MaxFilesWatch => Error::startup(
            format!("watching {}", display_path(&path)),
            "more directories than the inotify watch limit allows \
             (fs.inotify.max_user_watches); leave some out with --watch-ignore or raise the limit",
        ),
        other => Error::startup(
            format!("watching {}", display_path(&path)),
            notify::Error::new(other),
        ),
    }
}
