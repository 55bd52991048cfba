//! The command line, clap definitions only: the global options and the list of commands here,
//! each command's own arguments in `args` (`network_args`: those that join the network).

mod args;
mod host_args;
mod network_args;
pub mod stdin_key;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use args::*;
pub use host_args::*;
pub use network_args::*;

use crate::config::Config;
use crate::db::Extension;
use crate::net::NetworkSettings;

/// Database-to-Database Copy: replicate cr-sqlite databases peer to peer over Veilid.
#[derive(Debug, Parser)]
#[command(name = "ddcp", version, propagate_version = true)]
#[command(
    after_help = "Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=ddcp=debug) for more. veilid-core's own debug logs (RUST_LOG=debug) may show record keys whole, secrets included."
)]
pub struct Cli {
    /// The SQLite database ddcp replicates.
    #[arg(
        long,
        env = "DDCP_DB_FILE",
        value_name = "PATH",
        default_value = "ddcp.db",
        global = true,
        help_heading = GLOBAL
    )]
    pub db_file: PathBuf,

    /// Directory for ddcp's own state (identity, keys, shell history).
    #[arg(
        long,
        env = "DDCP_STATE_DIR",
        value_name = "DIR",
        default_value = ".ddcp",
        global = true,
        help_heading = GLOBAL
    )]
    pub state_dir: PathBuf,

    /// A loadable cr-sqlite build to use instead of the one built into ddcp.
    #[arg(
        long,
        env = "DDCP_EXT_FILE",
        value_name = "PATH",
        global = true,
        help_heading = GLOBAL
    )]
    pub ext_file: Option<PathBuf>,

    /// Log only errors (over RUST_LOG).
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = GLOBAL
    )]
    pub quiet: bool,

    /// Log more: -v ddcp's debug lines, -vv also Veilid's info (over RUST_LOG).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,

    /// Bootstrap records of a private Veilid network (comma-separated); default: the public
    /// network.
    #[arg(
        long,
        env = "VEILID_BOOTSTRAP",
        value_name = "RECORD,...",
        value_delimiter = ',',
        global = true,
        help_heading = NETWORK
    )]
    pub bootstrap: Vec<String>,

    /// The shared key of a private Veilid network.
    #[arg(
        long,
        env = "VEILID_NETWORK_KEY",
        value_name = "KEY",
        global = true,
        hide_env_values = true,
        help_heading = NETWORK
    )]
    pub network_key: Option<String>,

    /// host:port the Veilid node listens on (UDP, TCP and WebSocket).
    #[arg(
        long,
        env = "VEILID_LISTEN",
        value_name = "HOST:PORT",
        global = true,
        help_heading = NETWORK
    )]
    pub listen: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// Help headings: every command's own options come first, these after.
const GLOBAL: &str = "Global options";
const NETWORK: &str = "Network options (commands that use Veilid)";

/// Environment variables renamed with the DDCP_ prefix (old name, new name); the old names are
/// still read, when the new one is not set, for a few releases.
pub const RENAMED_ENV: [(&str, &str); 3] = [
    ("DB_FILE", "DDCP_DB_FILE"),
    ("STATE_DIR", "DDCP_STATE_DIR"),
    ("EXT_FILE", "DDCP_EXT_FILE"),
];

impl Cli {
    /// Parses `args` (the first is the program's name) and the environment, as clap's
    /// `try_parse_from` does, and also reads the old environment names of [`RENAMED_ENV`] for
    /// options neither the command line nor the new names set. Returns the old names it used.
    pub fn parse_with_old_env(
        args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
    ) -> Result<(Cli, Vec<&'static str>), clap::Error> {
        use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        let mut used = Vec::new();
        for (old, _) in RENAMED_ENV {
            let id = old.to_lowercase();
            let unset = matches!(
                matches.value_source(&id),
                None | Some(ValueSource::DefaultValue)
            );
            let Some(value) = std::env::var_os(old).filter(|value| !value.is_empty()) else {
                continue;
            };
            if !unset {
                continue;
            }
            let path = PathBuf::from(value);
            match old {
                "DB_FILE" => cli.db_file = path,
                "STATE_DIR" => cli.state_dir = path,
                _ => cli.ext_file = Some(path),
            }
            used.push(old);
        }
        Ok((cli, used))
    }

    /// The paths this invocation works with.
    pub fn config(&self) -> Config {
        Config {
            db_file: self.db_file.clone(),
            state_dir: self.state_dir.clone(),
            extension: self
                .ext_file
                .clone()
                .map_or(Extension::BuiltIn, Extension::File),
            network: NetworkSettings {
                bootstrap_records: self.bootstrap.clone(),
                network_key: self.network_key.clone(),
                listen: self.listen.clone(),
            },
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a ddcp database and its DHT record; prints the record key peers add as a remote.
    #[command(
        after_help = "Examples:\n  ddcp init                 (then give peers the VLD0:... key it prints)\n  ddcp init --private --json\n  ddcp --db-file app.db init   (adopts an existing SQLite database)"
    )]
    Init(InitArgs),
    /// Make a new database that replicates with a remote one: its CRR tables made as the
    /// remote's, the remote added (as `origin`) and pulled; prints the new database's key.
    Clone(CloneArgs),
    /// Print this database's DHT record key again.
    #[command(after_help = "Example: ddcp addr --json")]
    Addr(JsonFlag),
    /// Print this database's member id, which the owner of a private database adds with
    /// `ddcp member add NAME ID`.
    #[command(after_help = "Example: ddcp id   (send it to the owner of a private database)")]
    Id(JsonFlag),
    /// Make the database private (readable by its members only) or public (by whoever holds
    /// its record key); with no argument, print which it is.
    #[command(after_help = "Examples:\n  ddcp access private\n  ddcp access --json")]
    Access(AccessArgs),
    /// Manage who may read this database while it is private.
    #[command(
        subcommand,
        after_help = "Example: ddcp member add bob VLD0:<bob's id, from his `ddcp id`>   (then: ddcp member list)"
    )]
    Member(MemberCommand),
    /// What every reader may have of this database (tables, columns, rows); members of a
    /// private database read within it. With no filter flag, print it.
    Share(ShareArgs),
    /// Run SQL with cr-sqlite loaded: a script on stdin, -c SQL, or an interactive prompt.
    #[command(
        after_help = "Examples:\n  ddcp shell < fixtures/cr_tables.sql\n  ddcp shell \"select * from todos\" --mode box\n  ddcp shell   (a prompt; .help lists the dot-commands)"
    )]
    Shell(ShellArgs),
    /// Manage the remote databases this one pulls from.
    #[command(
        subcommand,
        after_help = "Example: ddcp remote add alice VLD0:<key>:<secret>   (then: ddcp pull alice)"
    )]
    Remote(RemoteCommand),
    /// Change the schema the way peers still on the old version keep replicating with: new
    /// tables (made CRRs), columns and indexes, from a SQL file, all or nothing; or apply the
    /// migrations a remote published (--from). Recorded in the schema history peers follow.
    #[command(after_help = "Examples:
  ddcp migrate v2.sql          (v2.sql: alter table notes add column tag text;)
  ddcp migrate --from alice    (when `ddcp status` says alice's schema is ahead)
Refused, with what to do instead: dropping or renaming a table or column, a NOT NULL column
without a default, a UNIQUE index, anything but CREATE TABLE, ADD COLUMN and CREATE INDEX.")]
    Migrate(MigrateArgs),
    /// Show this database's site id, version, CRR tables and remotes.
    #[command(after_help = "Example: ddcp status --json")]
    Status(JsonFlag),
    /// Print the bearer token the HTTP API (`ddcp serve --api`) asks of every request (made
    /// now if the state dir has none; kept in STATE_DIR/api-token, owner only).
    #[command(
        name = "api-token",
        after_help = "Example: curl -H \"Authorization: Bearer $(ddcp api-token)\" http://127.0.0.1:7700/v1/status"
    )]
    ApiToken,
    /// What this database holds from whom: its changes by author, and each remote's pulls.
    Log(LogArgs),
    /// Stream every change the database gets (local commits, pulls, bundles) until Ctrl-C:
    /// through a running `ddcp serve`, or on its own.
    Watch(WatchArgs),
    /// Write a consistent copy of the database to FILE, even while `ddcp serve` writes to it.
    Backup(BackupArgs),
    /// Bring back a lost database from a backup, as the same database (same site id, record
    /// and keys).
    Restore(RestoreArgs),
    /// Move changes by file, for peers without a network between them.
    #[command(
        subcommand,
        after_help = "Example: ddcp bundle create alice.bundle   (on bob: ddcp bundle apply alice.bundle)"
    )]
    Bundle(BundleCommand),
    /// Replicate until stopped (Ctrl-C): publish this database's status, answer peers, pull
    /// every remote as soon as it changes.
    #[command(after_help = "Examples:\n  ddcp serve\n  ddcp serve --metrics-addr 127.0.0.1:9477")]
    Serve(ServeArgs),
    /// A running host of many databases (`ddcp serve --databases DIR`): its status, and the
    /// databases it serves, added and removed live.
    #[command(
        after_help = "Examples:\n  ddcp host status --databases /srv/ddcp\n  ddcp host add site-7 --databases /srv/ddcp"
    )]
    Host(HostArgs),
    /// Pull the remotes' changes once and exit.
    #[command(
        after_help = "Examples:\n  ddcp pull           (every remote)\n  ddcp pull alice --json"
    )]
    Pull(PullArgs),
    /// Run the plain nodes of a private Veilid network on this machine, for tests and demos
    /// (see scripts/netns.sh); prints the bootstrap record, runs until stopped.
    #[command(
        after_help = "Example: ddcp testnet --hosts h0,h1,h2,h3 --record-file /tmp/bootstrap   (inside scripts/netns.sh)"
    )]
    Testnet(TestnetArgs),
    /// Print a completion script for a shell (bash: save it as
    /// /usr/share/bash-completion/completions/ddcp, or `source <(ddcp completions bash)`).
    #[command(after_help = "Example: ddcp completions zsh > ~/.zfunc/_ddcp")]
    Completions(CompletionsArgs),
    /// Print ddcp's man page (roff), or with --dir write a page for every command into DIR
    /// (ddcp.1, ddcp-remote-add.1, ...), which ddcp(1) refers to.
    #[command(
        after_help = "Example: ddcp man --dir /usr/local/share/man/man1 && man ddcp-remote-add"
    )]
    Man(ManArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command a user runs (not the groups of them), with its path: "ddcp remote add".
    fn leaves(command: &clap::Command, path: &str, found: &mut Vec<(String, clap::Command)>) {
        let path = format!("{path} {}", command.get_name());
        if command.has_subcommands() {
            for sub in command
                .get_subcommands()
                .filter(|sub| sub.get_name() != "help")
            {
                leaves(sub, &path, found);
            }
        } else {
            found.push((path, command.clone()));
        }
    }

    /// Every group of commands ("ddcp remote"), with its path.
    fn groups(command: &clap::Command, path: &str, found: &mut Vec<(String, clap::Command)>) {
        for sub in command
            .get_subcommands()
            .filter(|sub| sub.has_subcommands() && sub.get_name() != "help")
        {
            let path = format!("{path} {}", sub.get_name());
            groups(sub, &path, found);
            found.push((path, sub.clone()));
        }
    }

    #[test]
    fn every_command_has_an_example_and_its_own_options_first() {
        let mut root = Cli::command();
        root.build();
        let mut found = Vec::new();
        for sub in root
            .get_subcommands()
            .filter(|sub| sub.get_name() != "help")
        {
            leaves(sub, "ddcp", &mut found);
        }
        assert!(found.len() > 25, "{}", found.len());
        for (path, mut command) in found {
            let help = command.render_help().to_string();
            assert!(help.contains("Example"), "{path} has no example:\n{help}");
            let own = help.find("Options:").expect("own options");
            let global = help.find("Global options:").expect("global options");
            let network = help.find("Network options").expect("network options");
            assert!(own < global && global < network, "{path}:\n{help}");
        }
        // `ddcp remote --help` and the other groups end with an example too.
        let mut found = Vec::new();
        groups(&root, "ddcp", &mut found);
        assert!(found.len() >= 3, "{}", found.len());
        for (path, mut command) in found {
            let help = command.render_help().to_string();
            assert!(help.contains("Example"), "{path} has no example:\n{help}");
        }
    }
}
