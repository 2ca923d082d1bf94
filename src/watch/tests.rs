//! A real [`Watcher`] on a temporary app directory, asserting on the batches it sends.
//! Every wait has a deadline. "Nothing was sent" is shown by a sentinel where possible:
//! make the changes that must not count, then change `app.py`, and expect the first batch
//! to be exactly `["app.py"]` — a leaked change would come first, in that batch or in an
//! earlier one.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio::time::timeout;

use super::*;

const DEBOUNCE: Duration = Duration::from_millis(200);
/// Generous: the test machine is shared and busy.
const BATCH_DEADLINE: Duration = Duration::from_secs(10);

/// A directory under the system temp dir, removed on drop.
struct TempApp {
    root: PathBuf,
}

impl TempApp {
    fn new(name: &str) -> TempApp {
        TempApp::new_in(&std::env::temp_dir(), name)
    }

    /// On tmpfs where there is one, for the big trees: creating a file on this test VM's
    /// ext4 costs ~0.8 ms of kernel time, which would swamp what is measured — the
    /// watcher, whose walk reads cached directories either way.
    fn new_in_memory(name: &str) -> TempApp {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            TempApp::new_in(shm, name)
        } else {
            TempApp::new(name)
        }
    }

    fn new_in(base: &Path, name: &str) -> TempApp {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "hlocal-watch-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let root = base.join(unique);
        fs::create_dir_all(&root).expect("create temp app");
        let root = fs::canonicalize(root).expect("canonical temp app");
        TempApp { root }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).expect("create parent");
        }
        fs::write(path, text).expect("write file");
    }

    fn mkdir(&self, relative: &str) {
        fs::create_dir_all(self.path(relative)).expect("create dir");
    }

    fn rename(&self, from: &str, to: &str) {
        fs::rename(self.path(from), self.path(to)).expect("rename");
    }

    fn remove(&self, relative: &str) {
        fs::remove_file(self.path(relative)).expect("remove");
    }
}

impl Drop for TempApp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

struct Session {
    watcher: Watcher,
    batches: mpsc::Receiver<Vec<PathBuf>>,
}

fn config(app: &TempApp, paths: Vec<PathBuf>, ignore: &[&str]) -> WatchConfig {
    WatchConfig {
        root: app.root.clone(),
        paths,
        debounce: DEBOUNCE,
        ignore: ignore.iter().map(|glob| glob.to_string()).collect(),
    }
}

fn watch_paths(app: &TempApp, paths: Vec<PathBuf>, ignore: &[&str]) -> Session {
    let (changes, batches) = mpsc::channel(8);
    let watcher = Watcher::start(config(app, paths, ignore), changes).expect("watcher starts");
    Session { watcher, batches }
}

fn watch(app: &TempApp, ignore: &[&str]) -> Session {
    watch_paths(app, vec![app.root.clone()], ignore)
}

impl Session {
    async fn next_batch(&mut self) -> Vec<PathBuf> {
        match timeout(BATCH_DEADLINE, self.batches.recv()).await {
            Ok(Some(batch)) => batch,
            Ok(None) => panic!("watcher stopped"),
            Err(_) => panic!("no batch within {BATCH_DEADLINE:?}"),
        }
    }

    /// The one kind of wait that has to run out: nothing more comes.
    async fn assert_quiet(&mut self) {
        let wait = DEBOUNCE + Duration::from_millis(500);
        if let Ok(batch) = timeout(wait, self.batches.recv()).await {
            panic!("expected no batch, got {batch:?}");
        }
    }
}

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn writing_a_file_sends_one_batch_naming_it() {
    let app = TempApp::new("write");
    app.write("app.py", "print(1)\n");
    let mut session = watch(&app, &[]);
    app.write("app.py", "print(2)\n");
    assert_eq!(session.next_batch().await, paths(&["app.py"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn touching_a_file_counts() {
    let app = TempApp::new("touch");
    app.write("src/app.py", "");
    let mut session = watch(&app, &[]);
    fs::File::options()
        .write(true)
        .open(app.path("src/app.py"))
        .and_then(|file| file.set_modified(SystemTime::now()))
        .expect("touch");
    assert_eq!(session.next_batch().await, paths(&["src/app.py"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_rapid_writes_send_exactly_one_batch() {
    let app = TempApp::new("burst");
    app.write("app.py", "");
    app.write("lib.py", "");
    let mut session = watch(&app, &[]);
    for n in 0..20 {
        let file = if n % 2 == 0 { "app.py" } else { "lib.py" };
        app.write(file, &format!("version = {n}\n"));
    }
    assert_eq!(session.next_batch().await, paths(&["app.py", "lib.py"]));
    session.assert_quiet().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ignored_changes_send_nothing() {
    let app = TempApp::new("ignored");
    app.write(".gitignore", "*.secret\n/generated/\n");
    app.write("sub/.gitignore", "local.cfg\n");
    app.write("app.py", "");
    app.write("node_modules/pkg/index.js", "");
    app.write(".git/HEAD", "ref: refs/heads/main\n");
    app.mkdir("generated");
    let mut session = watch(&app, &["*.tmp"]);

    app.write("a.secret", "gitignored, no git repository needed");
    app.write("sub/local.cfg", "nested .gitignore");
    app.write(
        "sub/deeper/b.secret",
        "root .gitignore, directory created later",
    );
    app.write("sub/x.tmp", "--watch-ignore at any depth");
    app.write("generated/out.js", "gitignored directory");
    app.write("node_modules/pkg/index.js", "default-ignored, not watched");
    app.write("target/debug/hlocal", "default-ignored, created later");
    app.write("log/development.log", "runtime file");
    app.write(".app.py.swp", "editor swap file");
    app.write(".git/HEAD", "ref: refs/heads/other\n");
    app.write("app.py", "sentinel");

    assert_eq!(session.next_batch().await, paths(&["app.py"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_empty_directory_is_not_a_change_but_files_written_into_it_are() {
    let app = TempApp::new("newdir");
    app.write("app.py", "");
    let mut session = watch(&app, &[]);

    app.mkdir("empty");
    app.write("app.py", "sentinel");
    assert_eq!(session.next_batch().await, paths(&["app.py"]));

    // Written before the new directory's watch can exist: found by scanning it.
    app.mkdir("fresh/a/b");
    app.write("fresh/a/b/c.py", "");
    assert_eq!(session.next_batch().await, paths(&["fresh/a/b/c.py"]));

    // And the new directories are watched from then on.
    app.write("fresh/a/d.py", "");
    assert_eq!(session.next_batch().await, paths(&["fresh/a/d.py"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn rename_and_replace_saves_name_the_real_file() {
    let app = TempApp::new("saves");
    app.write("app.py", "v1");
    let mut session = watch(&app, &[]);

    // vim (`backupcopy=no`): the original becomes the backup, a new file takes its name.
    app.rename("app.py", "app.py~");
    app.write("app.py", "v2");
    app.remove("app.py~");
    assert_eq!(session.next_batch().await, paths(&["app.py"]));

    // JetBrains "safe write": write a temp file, move the original aside, move the temp in.
    app.write("app.py___jb_tmp___", "v3");
    app.rename("app.py", "app.py___jb_old___");
    app.rename("app.py___jb_tmp___", "app.py");
    app.remove("app.py___jb_old___");
    assert_eq!(session.next_batch().await, paths(&["app.py"]));

    // `sed -i` and friends: a temp file no ignore rule knows, renamed over the original.
    app.write("sedK3x9Qa", "v4");
    app.rename("sedK3x9Qa", "app.py");
    assert_eq!(session.next_batch().await, paths(&["app.py"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_and_renaming_files_count() {
    let app = TempApp::new("delete");
    app.write("old.py", "");
    app.write("gone.py", "");
    let mut session = watch(&app, &[]);
    app.remove("gone.py");
    assert_eq!(session.next_batch().await, paths(&["gone.py"]));
    app.rename("old.py", "new.py");
    assert_eq!(session.next_batch().await, paths(&["old.py", "new.py"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_moved_in_reports_its_files_and_is_watched() {
    let app = TempApp::new("movein");
    let outside = TempApp::new("movein-outside");
    app.write("app.py", "");
    outside.write("lib/util.py", "");
    outside.write("lib/node_modules/x.js", "");
    let mut session = watch(&app, &[]);

    fs::rename(outside.path("lib"), app.path("lib")).expect("move in");
    assert_eq!(session.next_batch().await, paths(&["lib/util.py"]));
    app.write("lib/util.py", "changed");
    assert_eq!(session.next_batch().await, paths(&["lib/util.py"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watched_file_is_watched_alone() {
    let app = TempApp::new("onefile");
    app.write("config.yml", "a: 1\n");
    app.write("other.py", "");
    let mut session = watch_paths(&app, vec![app.path("config.yml")], &[]);
    app.write("other.py", "not watched");
    app.write("config.yml", "a: 2\n");
    assert_eq!(session.next_batch().await, paths(&["config.yml"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_filter_finds_its_path_in_a_real_batch() {
    let app = TempApp::new("filter");
    app.write("README.md", "");
    app.write("src/web/app.py", "");
    let mut session = watch(&app, &[]);
    app.write("README.md", "docs");
    app.write("src/web/app.py", "code");
    let batch = session.next_batch().await;
    assert_eq!(batch, paths(&["README.md", "src/web/app.py"]));
    let web = ProcessFilter::new(&["src/**/*.py".to_string()]).expect("valid glob");
    assert_eq!(web.first_match(&batch), Some(Path::new("src/web/app.py")));
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_events_report_the_whole_tree() {
    let app = TempApp::new("overflow");
    let mut session = watch(&app, &[]);
    // What `forward` does when the queue is full.
    session
        .watcher
        .flags
        .overflowed
        .store(true, Ordering::Relaxed);
    let _ = session.watcher.wake.try_send(Observed::Wake);
    assert_eq!(session.next_batch().await, paths(&[WHOLE_TREE]));
}

#[test]
fn a_full_queue_raises_the_overflow_flag() {
    let (queue, _inbox) = sync_channel(1);
    let flags = Flags::default();
    let write = || {
        let kind = notify::EventKind::Modify(notify::event::ModifyKind::Any);
        Ok(notify::Event::new(kind).add_path("/app/a.py".into()))
    };
    forward(&queue, &flags, write());
    assert!(!flags.overflowed.load(Ordering::Relaxed));
    forward(&queue, &flags, write());
    assert!(flags.overflowed.load(Ordering::Relaxed));
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_watcher_stops_it() {
    let app = TempApp::new("drop");
    let Session {
        watcher,
        mut batches,
    } = watch(&app, &[]);
    drop(watcher);
    let closed = timeout(BATCH_DEADLINE, batches.recv()).await;
    assert_eq!(closed, Ok(None));
}

#[test]
fn a_missing_path_is_an_error_naming_it() {
    let app = TempApp::new("missing");
    let missing = app.path("nope");
    let (changes, _batches) = mpsc::channel(1);
    let err = Watcher::start(config(&app, vec![missing.clone()], &[]), changes)
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(message.starts_with("watching "), "{message}");
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn an_invalid_ignore_glob_is_an_error() {
    let app = TempApp::new("badglob");
    let (changes, _batches) = mpsc::channel(1);
    let err = Watcher::start(config(&app, vec![], &["src/[z-a]"]), changes)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("\"src/[z-a]\""), "{err}");
}

/// Builds `dirs` directories of `files_per_dir` files each, two levels deep, plus a
/// `node_modules` of the same size that must cost nothing.
fn build_tree(app: &TempApp, dirs: usize, files_per_dir: usize) {
    for d in 0..dirs {
        for prefix in ["src", "node_modules"] {
            let dir = app.path(&format!("{prefix}/group{}/dir{d}", d % 10));
            fs::create_dir_all(&dir).expect("create dir");
            for f in 0..files_per_dir {
                fs::write(dir.join(format!("file{f}.py")), "").expect("write file");
            }
        }
    }
}

/// Starts a watcher on a tree of `dirs × files_per_dir` watched files and reports setup
/// time, resident memory added, and inotify watches held.
async fn measure_setup(dirs: usize, files_per_dir: usize) -> Duration {
    let app = TempApp::new_in_memory("setup");
    build_tree(&app, dirs, files_per_dir);
    let (rss_before, watches_before) = (resident_kib(), inotify_watches());
    let started = Instant::now();
    let mut session = watch(&app, &[]);
    let setup = started.elapsed();
    let (rss_after, watches_after) = (resident_kib(), inotify_watches());
    eprintln!(
        "watch setup, {} files ({dirs} dirs) + as many in node_modules: {setup:?}, \
         +{} KiB resident, {} inotify watches",
        dirs * files_per_dir,
        rss_after.saturating_sub(rss_before),
        watches_after.saturating_sub(watches_before)
    );
    let deep = format!("src/group{}/dir{}/file0.py", (dirs - 1) % 10, dirs - 1);
    app.write(&deep, "changed");
    assert_eq!(session.next_batch().await, paths(&[&deep]));
    setup
}

#[tokio::test(flavor = "multi_thread")]
async fn setting_up_ten_thousand_files_is_quick() {
    let setup = measure_setup(1_000, 10).await;
    // Well under a second unloaded; the bound only catches a walk gone quadratic.
    assert!(setup < Duration::from_secs(5), "{setup:?}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: builds 200,000 files; run with --ignored --nocapture --test-threads=1"]
async fn setting_up_a_hundred_thousand_files() {
    let setup = measure_setup(10_000, 10).await;
    assert!(setup < Duration::from_secs(5), "{setup:?}");
}

/// VmRSS of this process, in KiB (0 where /proc is missing).
fn resident_kib() -> usize {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// inotify watches held by this process, from /proc/self/fdinfo (0 where it is missing).
fn inotify_watches() -> usize {
    let Ok(fds) = fs::read_dir("/proc/self/fdinfo") else {
        return 0;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| fs::read_to_string(fd.path()).ok())
        .map(|info| {
            info.lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count()
        })
        .sum()
}
