//! `hlocal man`: the man page, rendered from the same clap definitions as `--help`.

use clap::CommandFactory;

use super::print_out;
use crate::cli::Cli;
use crate::error::Error;

pub fn man() -> Result<i32, Error> {
    print_out(&page())
}

/// The page in roff, as `man -l -` reads it.
fn page() -> Vec<u8> {
    let mut page = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = clap_mangen::Man::new(Cli::command()).render(&mut page);
    page
}
