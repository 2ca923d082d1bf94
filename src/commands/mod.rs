//! One file per subcommand: `start` assembles and runs the app, `run` runs a one-off
//! command with the app's config, `check` validates without starting anything,
//! `export` writes the app for another engine; `control` holds the commands that steer
//! a running app through its control socket; `watchdog` is the hidden one `start` runs
//! beside itself.

mod attach;
mod check;
mod completions;
mod control;
mod export;
mod init;
mod man;
mod run;
mod schema;
mod start;
mod watchdog;

pub use attach::attach;
pub use check::check;
pub use completions::completions;
pub use control::{logs, ps, restart, scale, stop, wait};
pub use export::export;
pub use init::init;
pub use man::man;
pub use run::run;
pub use schema::schema;
pub use start::start;
pub use watchdog::watchdog;

use std::io::Write;

use crate::cli::StartArgs;
use crate::config;
use crate::error::Error;

/// `hlocal start`: with names while the app already runs, they are started in it
/// (`hlocal start web.2` after `hlocal stop web.2`); otherwise the app is run.
pub fn start_or_resume(args: &StartArgs) -> Result<i32, Error> {
    if !args.types.is_empty() {
        let root = config::root_from(args.app.root.as_deref(), args.app.procfile.as_deref());
        if let Some(done) = control::start_names(&root, args.socket.as_deref(), &args.types) {
            return done;
        }
    }
    config::resolve_start(args).and_then(start)
}

/// Writes a command's whole output to stdout; a reader that went away (`hlocal man |
/// head`) is no error.
fn print_out(bytes: &[u8]) -> Result<i32, Error> {
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::startup("cannot write to stdout", e))
        }
        _ => Ok(0),
    }
}
