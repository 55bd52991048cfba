//! `ddcp completions SHELL` and `ddcp man`: generated from the same clap definitions the
//! commands parse with, so they never fall behind.

use clap::CommandFactory;

use super::CommandError;
use crate::cli::Cli;

pub fn completions(shell: clap_complete::Shell) -> Result<(), CommandError> {
    clap_complete::generate(shell, &mut Cli::command(), "ddcp", &mut std::io::stdout());
    Ok(())
}

pub fn man() -> Result<(), CommandError> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(())
}
