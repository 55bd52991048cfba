//! `ddcp completions SHELL` and `ddcp man`: generated from the same clap definitions the
//! commands parse with, so they never fall behind.

use clap::CommandFactory;

use super::CommandError;
use crate::cli::{Cli, ManArgs};

pub fn completions(shell: clap_complete::Shell) -> Result<(), CommandError> {
    clap_complete::generate(shell, &mut Cli::command(), "ddcp", &mut std::io::stdout());
    Ok(())
}

/// ddcp(1) on stdout; with `--dir`, a page for every command (the ones ddcp(1) lists under
/// its commands, ddcp-remote-add(1) and the like) written into DIR.
pub fn man(args: &ManArgs) -> Result<(), CommandError> {
    let Some(dir) = &args.dir else {
        // As generate_to renders it: no `help` command, which would name a page never made.
        let page = Cli::command().disable_help_subcommand(true);
        clap_mangen::Man::new(page).render(&mut std::io::stdout())?;
        return Ok(());
    };
    if !dir.is_dir() {
        return Err(CommandError::NoSuchFolder(dir.clone()));
    }
    let file_error = |source| CommandError::File {
        what: "cannot write",
        path: dir.clone(),
        source,
    };
    clap_mangen::generate_to(Cli::command(), dir).map_err(file_error)?;
    for page in pages_in(dir).map_err(file_error)? {
        super::output::print_line(dir.join(&page).display())?;
    }
    Ok(())
}

/// The names of the `ddcp*.1` pages in `dir`.
fn pages_in(dir: &std::path::Path) -> std::io::Result<std::collections::BTreeSet<String>> {
    let mut pages = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with("ddcp") && name.ends_with(".1") {
            pages.insert(name);
        }
    }
    Ok(pages)
}
