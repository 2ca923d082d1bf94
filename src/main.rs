//! hlocal: run a Procfile app locally the way Heroku runs it.
//!
//! `main` parses the command line (usage errors are clap's own, exit 2), dispatches, and
//! renders any error once, as `hlocal: error: …`, with the exit code the error maps to.

mod cli;
mod commands;
mod complete;
mod config;
mod control;
mod error;
mod export;
mod input;
mod options;
mod output;
mod ports;
mod router;
mod supervisor;
mod sys;
mod watch;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};
use error::Error;

/// The router allocates a few dozen small blocks per request on its worker threads
/// (hyper's buffers and header maps) and frees some of them on the printer's thread;
/// mimalloc's per-thread free lists make that a fraction of glibc malloc's cost.
/// A default feature: `--no-default-features` builds with the platform's malloc.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    complete::answer_shell(Cli::command);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    let result = match cli.command {
        Command::Start(args) => commands::start_or_resume(&args),
        Command::Run(args) => commands::run(args),
        Command::Check(args) => commands::check(args).map(|()| 0),
        Command::Export(args) => commands::export(args).map(|()| 0),
        Command::Ps(args) => commands::ps(args),
        Command::Restart(args) => commands::restart(args),
        Command::Stop(args) => commands::stop(args),
        Command::Scale(args) => commands::scale(args),
        Command::Logs(args) => commands::logs(args),
        Command::Wait(args) => commands::wait(args),
        Command::Attach(args) => commands::attach(args),
        Command::Init(args) => commands::init(&args),
        Command::Completions(args) => commands::completions(args.shell),
        Command::Man(args) => commands::man(&args),
        Command::Schema => commands::schema(),
        Command::Watchdog(args) => Ok(commands::watchdog(&args)),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1)),
        Err(error) => fail(&error),
    }
}

fn fail(error: &Error) -> ExitCode {
    eprintln!("hlocal: error: {error}");
    ExitCode::from(error.exit_code())
}

/// `--help`, `--version` and usage errors exactly as clap renders them, with clap's exit
/// codes: 0 for help and version, 2 for a usage error and for bare `hlocal` (which prints
/// the help because of `arg_required_else_help`). clap's whole message is kept: the name
/// of a missing argument, "a similar subcommand exists", the valid values.
fn usage(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}
