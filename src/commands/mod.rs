//! One file per subcommand: `start` assembles and runs the app, `run` runs a one-off
//! command with the app's config, `check` validates without starting anything,
//! `export` writes the app for another engine.

mod check;
mod export;
mod run;
mod start;

pub use check::check;
pub use export::export;
pub use run::run;
pub use start::start;
