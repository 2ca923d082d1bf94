//! `hlocal export FORMAT DIR`: loads the app exactly as `start` would (same files, flags,
//! hlocal.toml and refusals; foreman's port layout, as there is no router), renders it
//! with `export`, and prints the files (`--dry-run`) or writes them into DIR, which must
//! be empty unless `--force`. Messages name files only: values may be secrets.

use std::fs;
use std::path::Path;

use super::check::warn;
use crate::cli::{ExportArgs, StartArgs};
use crate::config;
use crate::error::{self, Error, InputError};
use crate::export::{self, File, Plan};

pub fn export(args: ExportArgs) -> Result<(), Error> {
    let app = config::load_app(&args.app, config::Procfile::Required)?;
    warn(&app.env_warnings);
    // The shell's PORT is not the app's: the files written must not depend on it.
    let port = config::public_port_or(args.port, app.settings.as_ref(), &app, None)?;
    let start = StartArgs {
        app: args.app.clone(),
        formation: args.formation.clone(),
        port: Some(port),
        timeout: args.timeout.clone(),
        no_release: args.no_release,
        no_router: true,
        ..StartArgs::default()
    };
    let naming = export::Naming {
        app: args.app_name.as_deref(),
        user: checked_word("--user", args.user.as_deref())?,
        image: checked_word("--image", args.image.as_deref())?,
        dir: &args.dir,
    };
    let plan = Plan::new(config::resolve_loaded(&start, app)?, &naming)?;
    let files = export::render(args.format, &plan)?;
    if args.dry_run {
        print!("{}", dry_run(&files));
        return Ok(());
    }
    if args.dir == Path::new("-") {
        let message = "- writes nowhere: give a directory, or --dry-run to print the files";
        return Err(Error::named("DIR", message));
    }
    prepare_dir(&args.dir, args.force)?;
    check_targets(&args.dir, &files)?;
    for file in &files {
        let path = args.dir.join(&file.name);
        fs::write(&path, &file.text).map_err(|e| Error::io("writing", &path, e))?;
        println!("wrote {}", error::display_path(&path));
    }
    Ok(())
}

/// `--user` and `--image` go into unit files and YAML as one word.
fn checked_word<'a>(flag: &str, value: Option<&'a str>) -> Result<Option<&'a str>, Error> {
    match value {
        Some(word)
            if word.is_empty() || word.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Err(Error::named(
                flag,
                format!("{word:?}: give a name without spaces"),
            ))
        }
        _ => Ok(value),
    }
}

/// Every file after a `# ==> NAME <==` line: a comment in every format written, so one
/// file's output can be piped to its engine as it is.
fn dry_run(files: &[File]) -> String {
    files
        .iter()
        .map(|file| format!("# ==> {} <==\n{}", file.name, file.text))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every file can be written, checked before the first is: `--force` replaces regular
/// files only, never a directory, and never writes through a link to somewhere else.
fn check_targets(dir: &Path, files: &[File]) -> Result<(), Error> {
    for file in files {
        let path = dir.join(&file.name);
        match fs::symlink_metadata(&path) {
            Ok(meta) if !meta.is_file() => {
                let what = if meta.is_dir() {
                    "a directory"
                } else if meta.file_type().is_symlink() {
                    "a symbolic link"
                } else {
                    "a special file"
                };
                let message = format!("{what} is in the way; nothing was written");
                return Err(Error::named(error::display_path(&path), message));
            }
            _ => {}
        }
    }
    Ok(())
}

/// DIR is created if missing; an existing one must be empty unless `--force`, so an
/// export never mixes with (or silently replaces) files someone else put there.
fn prepare_dir(dir: &Path, force: bool) -> Result<(), Error> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if !force && entries.next().is_some() {
                let dir = error::display_path(dir);
                return Err(InputError::ExportDirNotEmpty(dir).into());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))
        }
        Err(e) => Err(Error::io("reading", dir, e)),
    }
}
