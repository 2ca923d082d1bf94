//! One file per subcommand: `start` assembles and runs the app, `run` runs a one-off
//! command with the app's config, `check` validates without starting anything,
//! `export` writes the app for another engine; `watchdog` is the hidden one `start` runs
//! beside itself.

mod check;
mod export;
mod run;
mod start;
mod watchdog;

pub use check::check;
pub use export::export;
pub use run::run;
pub use start::start;
pub use watchdog::watchdog;
