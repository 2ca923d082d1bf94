//! `hlocal check`: validates everything `start` would read (Procfile, env files,
//! hlocal.toml, the formation) without starting anything, and lists the process types
//! found, `release` included, in foreman's words.

use crate::cli::{AppArgs, StartArgs};
use crate::config;
use crate::error::Error;

/// Warnings about the inputs, on stderr (stdout is the command's own output for `run`).
pub fn warn(warnings: &[String]) {
    for warning in warnings {
        eprintln!("hlocal: warning: {warning}");
    }
}

pub fn check(args: AppArgs) -> Result<(), Error> {
    let start = StartArgs {
        app: args,
        ..StartArgs::default()
    };
    let app = config::load_app(&start.app, config::Procfile::Required)?;
    warn(&app.env_warnings);
    warn(&config::discovery_warnings(&app.types));
    let names: Vec<String> = app.types.iter().map(|t| t.name.clone()).collect();
    config::resolve_loaded(&start, app)?;
    println!("valid procfile detected ({})", names.join(", "));
    Ok(())
}
