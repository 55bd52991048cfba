//! The arguments of `ddcp host` (clap definitions only).

use clap::{Args, Subcommand};

use super::args::JsonFlag;

/// `ddcp host`: a running `ddcp serve --databases DIR`, through its socket in DIR/.ddcp.
#[derive(Debug, Args)]
pub struct HostArgs {
    #[command(subcommand)]
    pub command: HostCommand,

    /// The host's folder of databases, as `ddcp serve --databases` was given it.
    #[arg(
        long,
        env = "DDCP_DATABASES",
        value_name = "DIR",
        default_value = ".",
        global = true
    )]
    pub databases: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Every database the host serves: whether it runs, its remotes' lag, its last error.
    #[command(after_help = "Example: ddcp host status --databases /srv/ddcp --json")]
    Status(JsonFlag),
    /// Serve the database of the folder DIR/NAME at once, made there first (file, state dir,
    /// record on the host's node) when it holds none; prints its record key, as `ddcp init`
    /// does.
    #[command(after_help = "Example: ddcp host add site-7 --databases /srv/ddcp")]
    Add {
        /// The folder's name: 1 to 64 of letters, digits, '.', '_', '-'.
        name: String,
    },
    /// Stop serving the database NAME, now and at the host's next start (`ddcp host add`
    /// serves it again); its files stay.
    #[command(
        visible_alias = "rm",
        after_help = "Example: ddcp host remove site-7 --databases /srv/ddcp"
    )]
    Remove {
        /// The folder's name.
        name: String,
    },
}
