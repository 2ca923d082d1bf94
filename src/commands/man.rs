//! `hlocal man`: the man page, rendered from the same clap definitions as `--help`;
//! `hlocal man COMMAND` the page of one command (`hlocal-start(1)`), which the main
//! page's list of commands refers to.

use clap::CommandFactory;

use super::print_out;
use crate::cli::{Cli, ManArgs};
use crate::error::Error;

pub fn man(args: &ManArgs) -> Result<i32, Error> {
    let command = match &args.command {
        None => Cli::command(),
        Some(name) => subcommand_page(name)?,
    };
    print_out(&page(command))
}

/// The command `name` as a page of its own: titled `hlocal-NAME`, used as `hlocal NAME`.
fn subcommand_page(name: &str) -> Result<clap::Command, Error> {
    let cli = Cli::command();
    let visible = || cli.get_subcommands().filter(|c| !c.is_hide_set());
    match visible().find(|c| c.get_name() == name) {
        Some(command) => Ok(command
            .clone()
            .name(format!("hlocal-{name}"))
            .bin_name(format!("hlocal {name}"))),
        None => {
            let known: Vec<&str> = visible().map(clap::Command::get_name).collect();
            let message = format!("no command {name:?}; the commands: {}", known.join(", "));
            Err(Error::named("man", message))
        }
    }
}

/// The page in roff, as `man -l -` reads it.
fn page(command: clap::Command) -> Vec<u8> {
    let mut page = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = clap_mangen::Man::new(command).render(&mut page);
    page
}
