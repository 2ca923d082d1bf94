//! `hlocal completions SHELL`: the script a shell sources to complete hlocal. It calls
//! hlocal back at each completion (clap_complete's dynamic completion), so commands and
//! flags always match the installed binary and NAME/TYPE complete to the app's process
//! types and running instances (`crate::complete`).

use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};

use super::print_out;
use crate::cli::Shell;
use crate::complete::ENV_VAR;
use crate::error::Error;

pub fn completions(shell: Shell) -> Result<i32, Error> {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Powershell => &Powershell,
        Shell::Elvish => &Elvish,
    };
    let mut script = Vec::new();
    // The script runs `hlocal` from PATH, as the user does.
    completer
        .write_registration(ENV_VAR, "hlocal", "hlocal", "hlocal", &mut script)
        .map_err(|e| Error::startup("cannot write the completion script", e))?;
    print_out(&script)
}
