//! What the watcher leaves alone: version-control metadata, a built-in list of build
//! output, dependencies, runtime files and editor temp files, `--watch-ignore` globs, and
//! the app's `.gitignore` files (at every level, git repository or not) plus
//! `.git/info/exclude`. One [`IgnoreRules`] answers both "do I watch this directory?" during
//! the walk and "does this event count?" afterwards, so the two can never disagree.
//! It does not read anything above the app root, nor git's global excludes file: what
//! restarts an app should not depend on a developer's personal git config.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Version-control metadata, never app source and busy (`git status` rewrites the index).
/// A file counts too: a git worktree's `.git` is one.
const VCS_NAMES: &[&str] = &[".git", ".hg", ".svn", ".jj", ".bzr", "_darcs", ".pijul"];

/// Ignored by default, in gitignore syntax. `--watch-ignore '!GLOB'` re-includes one.
pub(super) const DEFAULT_IGNORES: &[&str] = &[
    // Dependencies and build output: big, rewritten by tools, never edited by hand.
    "node_modules/",
    "target/",
    "__pycache__/",
    "*.py[cod]",
    ".venv/",
    "venv/",
    ".tox/",
    ".nox/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    "*.egg-info/",
    ".bundle/",
    "vendor/bundle/",
    ".gradle/",
    "_build/",
    ".next/",
    ".nuxt/",
    ".svelte-kit/",
    ".parcel-cache/",
    ".turbo/",
    ".cache/",
    // Files apps write while they run (logs, pid files, sockets — hlocal's own control
    // socket included —, SQLite databases and journals): watching them would restart the
    // app in a loop, as nodemon users keep finding out.
    "*.log",
    "*.pid",
    "*.sock",
    "*.db",
    "*.db-*",
    "*.sqlite",
    "*.sqlite-*",
    "*.sqlite3",
    "*.sqlite3-*",
    // Editor swap, backup, lock and safe-write files (vim, emacs, kate, JetBrains) and IDE
    // state; the swap and lock files appear when a file is opened, before any save. The
    // names follow watchexec's defaults (crates/cli/src/filterer.rs).
    "*~",
    ".*.sw?",
    ".*.sw?x",
    // `#` opens a comment in gitignore syntax, hence the backslash.
    "\\#*#",
    ".#*",
    ".*.kate-swp",
    "*___jb_tmp___",
    "*___jb_old___",
    ".DS_Store",
    ".idea/",
    ".vscode/",
];

const GITIGNORE: &str = ".gitignore";

pub(super) struct IgnoreRules {
    root: PathBuf,
    /// The defaults, then `--watch-ignore`: later lines win, so `!GLOB` re-includes.
    fixed: Gitignore,
    /// Each directory's own `.gitignore`, by directory.
    gitignores: HashMap<PathBuf, Gitignore>,
    /// `.git/info/exclude`, below every `.gitignore` as in git.
    exclude: Gitignore,
}

impl IgnoreRules {
    /// `user_globs` are `--watch-ignore` values; an invalid one is the error, quoted.
    pub(super) fn new(root: &Path, user_globs: &[String]) -> Result<IgnoreRules, String> {
        let mut fixed = GitignoreBuilder::new(root);
        for line in DEFAULT_IGNORES {
            fixed
                .add_line(None, line)
                .map_err(|e| format!("built-in watch ignore {line:?}: {e}"))?;
        }
        for glob in user_globs {
            fixed
                .add_line(None, glob)
                .map_err(|e| format!("invalid --watch-ignore glob {glob:?}: {e}"))?;
        }
        let fixed = fixed
            .build()
            .map_err(|e| format!("invalid --watch-ignore glob: {e}"))?;
        Ok(IgnoreRules {
            root: root.to_path_buf(),
            fixed,
            gitignores: HashMap::new(),
            exclude: read_ignore_file(root, &root.join(".git").join("info").join("exclude")),
        })
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `path`, whose parent directory is watched, is to be left alone. Only the path
    /// itself is tested: the walk never enters an ignored directory.
    pub(super) fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        if path
            .file_name()
            .is_some_and(|name| VCS_NAMES.iter().any(|vcs| name == *vcs))
        {
            return true;
        }
        match self.fixed.matched(path, is_dir) {
            Match::Ignore(_) => true,
            Match::Whitelist(_) => false,
            Match::None => self.is_gitignored(path, is_dir),
        }
    }

    /// For a path that is gone, so of unknown kind: ignored if it would be either way.
    pub(super) fn is_ignored_either_kind(&self, path: &Path) -> bool {
        self.is_ignored(path, false) || self.is_ignored(path, true)
    }

    /// The nearest `.gitignore` with an opinion decides, as in git; then `info/exclude`.
    fn is_gitignored(&self, path: &Path, is_dir: bool) -> bool {
        if !self.gitignores.is_empty() {
            for dir in path.ancestors().skip(1) {
                if let Some(gitignore) = self.gitignores.get(dir) {
                    match gitignore.matched(path, is_dir) {
                        Match::Ignore(_) => return true,
                        Match::Whitelist(_) => return false,
                        Match::None => {}
                    }
                }
                if dir == self.root {
                    break;
                }
            }
        }
        self.exclude.matched(path, is_dir).is_ignore()
    }

    /// Re-reads `dir/.gitignore` (or forgets it when it is gone).
    pub(super) fn reload_gitignore(&mut self, dir: &Path) {
        let file = dir.join(GITIGNORE);
        if file.is_file() {
            let rules = read_ignore_file(dir, &file);
            self.gitignores.insert(dir.to_path_buf(), rules);
        } else {
            self.gitignores.remove(dir);
        }
    }

    /// When `path` is a `.gitignore`, brings its directory's rules up to date.
    pub(super) fn notice_if_gitignore(&mut self, path: &Path) {
        if path.file_name().is_some_and(|name| name == GITIGNORE)
            && let Some(dir) = path.parent()
        {
            self.reload_gitignore(dir);
        }
    }

    /// Reads the `.gitignore` files of the directories between the root and `path`, which
    /// apply below it although a walk starting at `path` never sees them.
    pub(super) fn load_ancestors(&mut self, path: &Path) {
        let Ok(below_root) = path.strip_prefix(&self.root) else {
            return;
        };
        let mut dir = self.root.clone();
        self.reload_gitignore(&dir);
        let mut components = below_root.components().peekable();
        while let Some(component) = components.next() {
            if components.peek().is_none() {
                break;
            }
            dir.push(component);
            self.reload_gitignore(&dir);
        }
    }
}

/// A gitignore-syntax file rooted at `dir`. Unreadable or malformed lines are skipped, as
/// git skips them: a typo in `.gitignore` must not stop the app.
fn read_ignore_file(dir: &Path, file: &Path) -> Gitignore {
    if !file.is_file() {
        return Gitignore::empty();
    }
    let mut builder = GitignoreBuilder::new(dir);
    let _partial_error = builder.add(file);
    builder.build().unwrap_or_else(|_| Gitignore::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(globs: &[&str]) -> IgnoreRules {
        let globs: Vec<String> = globs.iter().map(|g| g.to_string()).collect();
        IgnoreRules::new(Path::new("/app"), &globs).expect("valid globs")
    }

    fn with_gitignore(mut rules: IgnoreRules, dir: &str, lines: &[&str]) -> IgnoreRules {
        let dir = Path::new(dir);
        let mut builder = GitignoreBuilder::new(dir);
        for line in lines {
            builder.add_line(None, line).expect("valid line");
        }
        let gitignore = builder.build().expect("builds");
        rules.gitignores.insert(dir.to_path_buf(), gitignore);
        rules
    }

    #[test]
    fn vcs_metadata_is_always_ignored_even_when_whitelisted() {
        let rules = rules(&["!.git"]);
        assert!(rules.is_ignored(Path::new("/app/.git"), true));
        assert!(rules.is_ignored(Path::new("/app/sub/.git"), false));
        assert!(rules.is_ignored(Path::new("/app/.jj"), true));
    }

    #[test]
    fn build_and_dependency_directories_are_ignored_only_as_directories() {
        let rules = rules(&[]);
        for dir in [
            "target",
            "node_modules",
            "web/node_modules",
            "__pycache__",
            ".venv",
        ] {
            assert!(
                rules.is_ignored(&Path::new("/app").join(dir), true),
                "{dir}"
            );
        }
        assert!(!rules.is_ignored(Path::new("/app/target"), false));
        assert!(!rules.is_ignored(Path::new("/app/src"), true));
    }

    #[test]
    fn runtime_and_editor_files_are_ignored_at_any_depth() {
        let rules = rules(&[]);
        for file in [
            "log/development.log",
            "tmp/pids/server.pid",
            "db.sqlite3",
            "db.sqlite3-journal",
            "app.py~",
            "src/.app.py.swp",
            "src/.app.py.swx",
            "#notes.txt#",
            ".#app.py",
            "app.py___jb_tmp___",
            "app.py___jb_old___",
            "mod/x.pyc",
            ".DS_Store",
        ] {
            assert!(
                rules.is_ignored(&Path::new("/app").join(file), false),
                "{file}"
            );
        }
        for file in ["app.py", "src/swap.py", "Procfile", ".env", "src/db.py"] {
            assert!(
                !rules.is_ignored(&Path::new("/app").join(file), false),
                "{file}"
            );
        }
    }

    #[test]
    fn user_globs_match_at_any_depth_and_can_re_include_defaults() {
        let rules = rules(&["*.tmp", "/docs/", "!*.log"]);
        assert!(rules.is_ignored(Path::new("/app/a/b/c.tmp"), false));
        assert!(rules.is_ignored(Path::new("/app/docs"), true));
        assert!(!rules.is_ignored(Path::new("/app/src/docs"), true));
        assert!(!rules.is_ignored(Path::new("/app/app.log"), false));
    }

    #[test]
    fn invalid_user_glob_is_an_error_quoting_it() {
        let err = IgnoreRules::new(Path::new("/app"), &["[z-a]".to_string()])
            .err()
            .expect("rejected");
        assert!(err.contains("\"[z-a]\""), "{err}");
    }

    #[test]
    fn nearest_gitignore_decides() {
        let rules = with_gitignore(rules(&[]), "/app", &["*.secret", "/build"]);
        let rules = with_gitignore(rules, "/app/keep", &["!*.secret"]);
        assert!(rules.is_ignored(Path::new("/app/a.secret"), false));
        assert!(rules.is_ignored(Path::new("/app/sub/a.secret"), false));
        assert!(!rules.is_ignored(Path::new("/app/keep/a.secret"), false));
        assert!(rules.is_ignored(Path::new("/app/build"), true));
        assert!(!rules.is_ignored(Path::new("/app/sub/build"), true));
    }

    #[test]
    fn nested_gitignore_applies_only_below_its_directory() {
        let rules = with_gitignore(rules(&[]), "/app/web", &["*.gen.js"]);
        assert!(rules.is_ignored(Path::new("/app/web/x/a.gen.js"), false));
        assert!(!rules.is_ignored(Path::new("/app/a.gen.js"), false));
    }

    #[test]
    fn a_vanished_path_is_ignored_if_either_kind_would_be() {
        let rules = rules(&[]);
        assert!(rules.is_ignored_either_kind(Path::new("/app/target")));
        assert!(!rules.is_ignored_either_kind(Path::new("/app/app.py")));
    }

    #[test]
    fn paths_outside_the_root_are_matched_by_name_without_panicking() {
        let rules = with_gitignore(rules(&[]), "/app", &["*.secret"]);
        assert!(rules.is_ignored(Path::new("/elsewhere/x.log"), false));
        assert!(!rules.is_ignored(Path::new("/elsewhere/x.py"), false));
    }
}
