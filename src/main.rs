//! hlocal: run a Procfile app locally the way Heroku runs it.

mod cli;
mod duration;
mod env;
mod error;
mod formation;
mod output;
mod procfile;
mod router;
mod settings;
mod supervisor;
mod sys;
mod watch;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let _ = cli;
    ExitCode::SUCCESS
}
