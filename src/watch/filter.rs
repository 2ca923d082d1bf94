//! Per-process `watch = ["src/**/*.py"]`: which changed paths concern a process
//! type. Globs are relative to the app root; `*` stays within a directory and `**` crosses
//! them. The batch itself comes from [`super::Watcher`]; restarting is the supervisor's.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::WHOLE_TREE;

/// Per-process `watch = [globs]`, relative to the app root.
#[derive(Debug, Clone)]
pub struct ProcessFilter {
    globs: GlobSet,
}

impl ProcessFilter {
    /// An invalid glob is an input error (the caller adds file and line).
    pub fn new(globs: &[String]) -> Result<ProcessFilter, String> {
        let mut set = GlobSetBuilder::new();
        for glob in globs {
            let pattern = glob.trim_start_matches("./");
            let compiled = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("invalid watch glob {glob:?}: {}", e.kind()))?;
            set.add(compiled);
        }
        let globs = set
            .build()
            .map_err(|e| format!("invalid watch globs: {e}"))?;
        Ok(ProcessFilter { globs })
    }

    /// The first of `paths` (relative to the root) that the globs match. A glob naming a
    /// directory (`watch = ["app"]`) covers everything below it, and `.` — the whole tree,
    /// reported after lost events — matches every filter: a missed restart is worse than
    /// an extra one.
    pub fn first_match<'a>(&self, paths: &'a [PathBuf]) -> Option<&'a Path> {
        paths
            .iter()
            .find(|path| self.covers(path))
            .map(PathBuf::as_path)
    }

    fn covers(&self, path: &Path) -> bool {
        path == Path::new(WHOLE_TREE)
            || path
                .ancestors()
                .filter(|ancestor| !ancestor.as_os_str().is_empty())
                .any(|ancestor| self.globs.is_match(ancestor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(globs: &[&str]) -> ProcessFilter {
        let globs: Vec<String> = globs.iter().map(|g| g.to_string()).collect();
        ProcessFilter::new(&globs).expect("valid globs")
    }

    fn first<'a>(filter: &ProcessFilter, paths: &'a [PathBuf]) -> Option<&'a Path> {
        filter.first_match(paths)
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn double_star_matches_zero_or_more_directories() {
        let filter = filter(&["src/**/*.py"]);
        for path in ["src/b.py", "src/a/b.py", "src/a/b/c.py"] {
            assert!(filter.covers(Path::new(path)), "{path}");
        }
        for path in ["b.py", "lib/src/b.py", "src/b.pyc", "src/a/b.js"] {
            assert!(!filter.covers(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn single_star_stays_within_one_directory() {
        let filter = filter(&["*.py"]);
        assert!(filter.covers(Path::new("app.py")));
        assert!(!filter.covers(Path::new("src/app.py")));
    }

    #[test]
    fn first_match_is_the_first_changed_path_that_matches() {
        let filter = filter(&["src/**/*.py", "Gemfile"]);
        let changed = paths(&["README.md", "src/web/app.py", "Gemfile"]);
        assert_eq!(first(&filter, &changed), Some(Path::new("src/web/app.py")));
        assert_eq!(first(&filter, &paths(&["README.md"])), None);
    }

    #[test]
    fn a_directory_glob_covers_everything_below_it() {
        let filter = filter(&["app", "./config"]);
        assert!(filter.covers(Path::new("app/models/user.rb")));
        assert!(filter.covers(Path::new("config/routes.rb")));
        assert!(!filter.covers(Path::new("application.rb")));
    }

    #[test]
    fn the_whole_tree_matches_every_filter() {
        let filter = filter(&["src/**/*.py"]);
        let changed = paths(&[WHOLE_TREE]);
        assert_eq!(first(&filter, &changed), Some(Path::new(WHOLE_TREE)));
    }

    #[test]
    fn no_globs_match_nothing() {
        let filter = filter(&[]);
        assert_eq!(first(&filter, &paths(&["app.py"])), None);
    }

    #[test]
    fn invalid_glob_is_an_error_quoting_it() {
        let err = ProcessFilter::new(&["src/[".to_string()]).expect_err("rejected");
        assert!(err.starts_with("invalid watch glob \"src/[\""), "{err}");
    }
}
