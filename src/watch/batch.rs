//! The changes seen since the last batch went out: deduplicated, in the order they first
//! changed, and due once no change has come for the debounce period. Pure apart
//! from one existence check at delivery; time is passed in so tests need no clock.
//! Which events count as changes is `tree.rs`'s business; sending the batch is `mod.rs`'s.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::WHOLE_TREE;

/// One changed path, absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Change {
    pub(super) path: PathBuf,
    /// First seen being created (or renamed into place) in this batch.
    appeared: bool,
}

impl Change {
    pub(super) fn existing(path: PathBuf) -> Change {
        Change {
            path,
            appeared: false,
        }
    }

    pub(super) fn appeared(path: PathBuf) -> Change {
        Change {
            path,
            appeared: true,
        }
    }

    /// Created and gone again within one batch: the temp file of a write-then-rename save
    /// (`sed -i`'s `sedXXXXXX`, vim's `4913` probe, gedit's `.goutputstream-*`). Nothing
    /// changed as far as the app can tell, and its name would hide the real file's in
    /// `Restarting web.1: … changed`.
    fn is_transient(&self) -> bool {
        self.appeared && std::fs::symlink_metadata(&self.path).is_err()
    }
}

pub(super) struct Pending {
    quiet_period: Duration,
    changes: Vec<Change>,
    seen: HashSet<PathBuf>,
    due: Option<Instant>,
}

impl Pending {
    pub(super) fn new(quiet_period: Duration) -> Pending {
        Pending {
            quiet_period,
            changes: Vec::new(),
            seen: HashSet::new(),
            due: None,
        }
    }

    /// Every change, repeated or not, restarts the quiet period.
    pub(super) fn record(&mut self, change: Change, now: Instant) {
        if self.seen.insert(change.path.clone()) {
            self.changes.push(change);
        }
        self.due = Some(now + self.quiet_period);
    }

    pub(super) fn due(&self) -> Option<Instant> {
        self.due
    }

    pub(super) fn is_due(&self, now: Instant) -> bool {
        self.due.is_some_and(|due| now >= due)
    }

    /// The batch to send: relative to `root`, transient files left out. May be empty.
    pub(super) fn settled(&self, root: &Root) -> Vec<PathBuf> {
        self.changes
            .iter()
            .filter(|change| !change.is_transient())
            .map(|change| root.relative(&change.path))
            .collect()
    }

    pub(super) fn clear(&mut self) {
        self.changes.clear();
        self.seen.clear();
        self.due = None;
    }

    /// Keeps the changes and offers them again after another quiet period.
    pub(super) fn postpone(&mut self, now: Instant) {
        self.due = Some(now + self.quiet_period);
    }
}

/// The app root, as given and as the OS resolves it (FSEvents reports `/private/tmp/…` for
/// `/tmp/…`), for turning reported paths into root-relative ones.
pub(super) struct Root {
    given: PathBuf,
    resolved: Option<PathBuf>,
}

impl Root {
    pub(super) fn new(given: &Path) -> Root {
        let resolved = std::fs::canonicalize(given)
            .ok()
            .filter(|resolved| resolved != given);
        Root {
            given: given.to_path_buf(),
            resolved,
        }
    }

    /// `app.py` for `<root>/app.py`, [`WHOLE_TREE`] for the root itself; a path outside
    /// the root (a `-w` path elsewhere) stays absolute.
    pub(super) fn relative(&self, path: &Path) -> PathBuf {
        let below = path.strip_prefix(&self.given).ok().or_else(|| {
            self.resolved
                .as_deref()
                .and_then(|resolved| path.strip_prefix(resolved).ok())
        });
        match below {
            Some(below) if below.as_os_str().is_empty() => PathBuf::from(WHOLE_TREE),
            Some(below) => below.to_path_buf(),
            None => path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_millis(200);

    fn root() -> Root {
        Root {
            given: PathBuf::from("/app"),
            resolved: None,
        }
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn deduplicates_in_first_changed_order() {
        let mut pending = Pending::new(QUIET);
        let now = Instant::now();
        for path in [
            "/app/b.py",
            "/app/a.py",
            "/app/b.py",
            "/app/src/c.py",
            "/app/a.py",
        ] {
            pending.record(Change::existing(path.into()), now);
        }
        assert_eq!(
            pending.settled(&root()),
            paths(&["b.py", "a.py", "src/c.py"])
        );
    }

    #[test]
    fn due_once_quiet_for_the_period_after_the_last_change() {
        let mut pending = Pending::new(QUIET);
        let start = Instant::now();
        assert_eq!(pending.due(), None);
        pending.record(Change::existing("/app/a.py".into()), start);
        let later = start + Duration::from_millis(150);
        pending.record(Change::existing("/app/a.py".into()), later);
        assert!(!pending.is_due(start + QUIET));
        assert!(pending.is_due(later + QUIET));
        assert_eq!(pending.due(), Some(later + QUIET));
    }

    #[test]
    fn clear_forgets_changes_and_deadline() {
        let mut pending = Pending::new(QUIET);
        let now = Instant::now();
        pending.record(Change::existing("/app/a.py".into()), now);
        pending.clear();
        assert_eq!(pending.due(), None);
        assert!(pending.settled(&root()).is_empty());
        pending.record(Change::existing("/app/a.py".into()), now);
        assert_eq!(pending.settled(&root()), paths(&["a.py"]));
    }

    #[test]
    fn postpone_keeps_changes_and_waits_another_period() {
        let mut pending = Pending::new(QUIET);
        let start = Instant::now();
        pending.record(Change::existing("/app/a.py".into()), start);
        let retry = start + QUIET;
        pending.postpone(retry);
        assert!(!pending.is_due(retry));
        assert!(pending.is_due(retry + QUIET));
        assert_eq!(pending.settled(&root()), paths(&["a.py"]));
    }

    #[test]
    fn files_created_and_gone_within_the_batch_are_left_out() {
        let mut pending = Pending::new(QUIET);
        let now = Instant::now();
        let gone = std::env::temp_dir().join("hlocal-watch-never-created-4913");
        pending.record(Change::appeared(gone), now);
        // A file that existed and was deleted is a change.
        pending.record(Change::existing("/app/deleted.py".into()), now);
        assert_eq!(pending.settled(&root()), paths(&["deleted.py"]));
    }

    #[test]
    fn relative_to_root() {
        let root = root();
        assert_eq!(
            root.relative(Path::new("/app/src/a.py")),
            Path::new("src/a.py")
        );
        assert_eq!(root.relative(Path::new("/app")), Path::new(WHOLE_TREE));
        assert_eq!(
            root.relative(Path::new("/lib/x.rb")),
            Path::new("/lib/x.rb")
        );
        // Component-wise, not textual: /application is not under /app.
        assert_eq!(
            root.relative(Path::new("/application/x")),
            Path::new("/application/x")
        );
    }

    #[test]
    fn relative_to_the_resolved_root_too() {
        let root = Root {
            given: PathBuf::from("/tmp/app"),
            resolved: Some(PathBuf::from("/private/tmp/app")),
        };
        assert_eq!(
            root.relative(Path::new("/private/tmp/app/a.py")),
            Path::new("a.py")
        );
    }
}
