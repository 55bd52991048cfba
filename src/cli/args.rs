//! The arguments of each command (clap definitions only).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::network_args::AttachArgs;

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every command's page into this folder (printing each file written) instead of
    /// printing ddcp(1).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example: ddcp clone VLD0:<key>:<secret> bob   (then: cd bob && ddcp serve)"
)]
pub struct CloneArgs {
    /// The remote database's record key, as its `ddcp init` (or `ddcp addr`) printed it ('-'
    /// reads it from stdin, out of the shell's history and `ps`); or a backup file (`ddcp
    /// backup`), to start a new peer from a copy.
    #[arg(allow_hyphen_values = true)]
    pub source: String,

    /// A folder to make the database in (DIR/ddcp.db, state in DIR/.ddcp); created if needed.
    /// Without it, --db-file and --state-dir say where, as for `ddcp init`.
    pub dir: Option<PathBuf>,

    /// The name the remote gets.
    #[arg(long, default_value = "origin")]
    pub name: String,

    #[command(flatten)]
    pub authors: AuthorsArg,

    /// The remote's database identity, its `ddcp id` (as its owner tells you): nothing is made
    /// unless its status names this one, and a status naming another is refused from then on.
    /// Without it, the first status read is trusted and pinned.
    #[arg(long, value_name = "ID")]
    pub owner: Option<String>,

    #[command(flatten)]
    pub attach: AttachArgs,

    /// Print a JSON report for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Example: ddcp share --exclude-tables drafts --exclude-columns users.email")]
pub struct ShareArgs {
    #[command(flatten)]
    pub filter: FilterArgs,

    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Example: ddcp backup /backups/app-$(date +%F).db")]
pub struct BackupArgs {
    /// The backup file to write (mode 0600); one that exists is replaced only with --force.
    pub file: PathBuf,

    /// Replace FILE when it exists (a backup is never replaced by accident).
    #[arg(long)]
    pub force: bool,

    /// ALSO COPY THIS DATABASE'S SECRET KEYS (its record's owner key and its member identity)
    /// into the backup: whoever holds the file can then publish as this database. Needed to
    /// restore on a machine that lost its state dir.
    #[arg(long)]
    pub with_identity: bool,

    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Example: ddcp restore /backups/app-2026-11-27.db   (then: ddcp serve)")]
pub struct RestoreArgs {
    /// The backup file, as `ddcp backup` wrote it.
    pub file: PathBuf,

    /// Restore even when another copy of the database may be serving (or it cannot be
    /// checked): two copies of one site corrupt each other's peers.
    #[arg(long)]
    pub force: bool,

    /// With --force, and no record of removed members in the state dir: keep the backup's
    /// members as they were (remove whoever was removed since before serving).
    #[arg(long)]
    pub keep_members: bool,

    #[command(flatten)]
    pub attach: AttachArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example: ddcp watch --tables bookmarks --since 42 --json   (resume: --since the last db_version you processed whole)"
)]
pub struct WatchArgs {
    /// Only changes of these tables (comma-separated).
    #[arg(long, value_name = "T,...")]
    pub tables: Option<String>,

    /// Start after this db_version of this database (0: everything it holds); without it, only
    /// changes from now on.
    #[arg(
        long,
        value_name = "DB_VERSION",
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i64).range(0..)
    )]
    pub since: Option<i64>,

    /// One JSON object per change, per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Example: ddcp log --remote alice --json")]
pub struct LogArgs {
    /// Only this remote (its pulls, and the changes its site wrote).
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,

    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Make the database private from the start: only members added with `ddcp member add`
    /// can read its status or pull from it.
    #[arg(long)]
    pub private: bool,

    /// Make the CRR tables of this bundle's database (none of its changes): the air-gapped
    /// `ddcp clone`; `bundle apply` then brings the rows.
    #[arg(long, value_name = "BUNDLE")]
    pub schema_from: Option<PathBuf>,

    /// Print JSON for scripts: the record key (whole), the member id and the access mode.
    #[arg(long)]
    pub json: bool,
}

/// Who may read the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AccessMode {
    /// Whoever holds the record key (the default).
    Public,
    /// Members only.
    Private,
}

#[derive(Debug, Args)]
pub struct AccessArgs {
    /// public or private; left out, the current mode is printed.
    #[arg(value_enum)]
    pub mode: Option<AccessMode>,

    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Let a database read this one while it is private.
    #[command(
        after_help = "Example: ddcp member add bob VLD0:<id> --tables bookmarks --where \"owner = 'bob'\""
    )]
    Add {
        /// A short name for the member: letters, digits, '.', '_', '-'.
        name: String,
        /// The member's id, as its `ddcp id` printed it (VLD0:...); '-' reads it from stdin.
        // base64url has '-': an id without its prefix may start with one.
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Change what a member may read (a running `ddcp serve` takes it at once).
    #[command(after_help = "Example: ddcp member set bob --exclude-columns bookmarks.note")]
    Set {
        /// The member's name.
        name: String,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Remove a member: the database's keys and route change, so that it can read nothing
    /// published afterwards; the other members follow without doing anything.
    #[command(visible_alias = "rm", after_help = "Example: ddcp member remove bob")]
    Remove {
        /// The member's name.
        name: String,
    },
    /// List the members.
    #[command(visible_alias = "ls", after_help = "Example: ddcp member list --json")]
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// Whether a remote's schema is followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaMode {
    /// Apply the migrations it publishes, in order, before the changes that need them.
    Follow,
    /// Say when it is ahead (`ddcp status`); `ddcp migrate --from NAME` applies.
    Manual,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The migration: CREATE TABLE, ALTER TABLE ... ADD COLUMN and CREATE INDEX statements
    /// (- reads stdin).
    #[arg(required_unless_present = "from", conflicts_with = "from")]
    pub file: Option<PathBuf>,

    /// Apply the migrations a remote published (as last seen by a pull) that this database
    /// lacks, in order.
    #[arg(long, value_name = "REMOTE")]
    pub from: Option<String>,

    /// Check the migration and say what it would do, changing nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// Run this SQL and exit (several statements allowed).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    pub command: Option<String>,

    /// The same as -c SQL, as sqlite3 takes it: `ddcp shell "select 1"`.
    #[arg(value_name = "SQL", conflicts_with = "command")]
    pub sql: Option<String>,

    /// How query results are printed.
    #[arg(long, value_enum, default_value_t = OutputMode::List)]
    pub mode: OutputMode,

    /// Print column names before the rows (list and csv modes).
    #[arg(long)]
    pub header: bool,
}

/// How the shell prints rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputMode {
    /// Values separated by '|', one row per line (sqlite3's default).
    List,
    /// Comma-separated values, quoted as RFC 4180 says.
    Csv,
    /// A JSON array of objects per statement.
    Json,
    /// A table drawn with box characters, with column names.
    Box,
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Add a remote database by its DHT record key (the VLD0: prefix is optional).
    #[command(
        after_help = "Examples:\n  ddcp remote add alice - < alice.key\n  ddcp remote add alice VLD0:<key>:<secret>\n  ddcp remote add sensors VLD0:<key>:<secret> --into site2_ --tables readings"
    )]
    Add {
        /// A short name for the remote: letters, digits, '.', '_', '-'.
        name: String,
        /// The remote's record key, as its `ddcp init` printed it; '-' reads it from stdin (the
        /// safe form: out of the shell's history and `ps`).
        // base64url has '-': a key without its prefix may start with one.
        #[arg(allow_hyphen_values = true)]
        key: String,
        #[command(flatten)]
        authors: AuthorsArg,
        #[command(flatten)]
        filter: FilterArgs,
        /// Land its tables in mirrors named PREFIX followed by each table's name (made now,
        /// with a view ddcp_all_T over each table T and its mirrors), never in the tables
        /// themselves.
        #[arg(long, value_name = "PREFIX")]
        into: Option<String>,
        /// Serve the mirrors onward like this database's own tables (without it they stay
        /// here).
        #[arg(long, requires = "into")]
        serve_mirrors: bool,
        /// `follow`: apply the migrations the remote publishes, as they come; `manual` (the
        /// default): `ddcp status` says when it is ahead, `ddcp migrate --from NAME` applies.
        #[arg(long, value_enum, conflicts_with = "into")]
        schema: Option<SchemaMode>,
        /// The remote's database identity, its `ddcp id` (as its owner tells you): a status
        /// naming another is refused. Without it, the first status read is trusted and pinned.
        #[arg(long, value_name = "ID")]
        owner: Option<String>,
        /// Print JSON for scripts (the key without its secret).
        #[arg(long)]
        json: bool,
    },
    /// Change what is accepted from a remote (a running `ddcp serve` takes it at once; the
    /// remote's changes are pulled again from the start, so that what is admitted now
    /// arrives).
    #[command(
        after_help = "Examples:\n  ddcp remote set alice --where \"author = 'alice'\"\n  ddcp remote set alice --schema follow\n  ddcp remote set alice --owner VLD0:<alice's ddcp id>"
    )]
    Set {
        /// The remote's name.
        name: String,
        #[command(flatten)]
        authors: AuthorsArg,
        #[command(flatten)]
        filter: FilterArgs,
        /// `follow`: apply the migrations the remote publishes (again from its first, taking
        /// its history as it is now); `manual`: stop.
        #[arg(long, value_enum)]
        schema: Option<SchemaMode>,
        /// Pin another database identity (its `ddcp id`) as the remote's owner, after its
        /// status named another than the one pinned and its owner confirmed the new one.
        #[arg(long, value_name = "ID")]
        owner: Option<String>,
    },
    /// Remove a remote.
    #[command(after_help = "Example: ddcp remote remove alice")]
    #[command(visible_alias = "rm")]
    Remove {
        /// The remote's name.
        name: String,
    },
    /// List the remotes (their keys without the encryption secret, unless asked).
    #[command(after_help = "Example: ddcp remote list --json")]
    #[command(visible_alias = "ls")]
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Print each key whole, with the secret that lets its holder read the remote's
        /// published status.
        #[arg(long)]
        show_secrets: bool,
    },
}

/// Which tables, columns and rows pass (to a reader, or from a remote).
#[derive(Debug, Default, Args)]
pub struct FilterArgs {
    /// Only these tables (comma-separated; '' for all).
    #[arg(long, value_name = "T,...")]
    pub tables: Option<String>,
    /// Never these tables (comma-separated; '' for none).
    #[arg(long, value_name = "T,...")]
    pub exclude_tables: Option<String>,
    /// Never these columns, as TABLE.COLUMN (comma-separated; '' for none). Key columns
    /// cannot be left out.
    #[arg(long, value_name = "T.C,...")]
    pub exclude_columns: Option<String>,
    /// Only rows for which this read-only SQL expression over the row's columns holds
    /// (e.g. "owner = 'bob'"; '' for all rows). See docs/filters.md.
    #[arg(long = "where", value_name = "SQL")]
    pub rows: Option<String>,
    /// Drop every filter: everything passes.
    #[arg(long, conflicts_with_all = ["tables", "exclude_tables", "exclude_columns", "rows"])]
    pub no_filter: bool,
}

/// Whose changes a remote may bring.
#[derive(Debug, Args)]
pub struct AuthorsArg {
    /// Whose changes to accept from this remote: `any` (also those it relays from others),
    /// `direct` (only those it wrote itself), or a list of site ids (hex, comma-separated;
    /// trusts the remote to name relayed authors truly).
    #[arg(long, value_name = "direct|any|SITE,...")]
    pub authors: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write this database's changes (with those it merged from others) to FILE.
    #[command(
        after_help = "Examples:\n  ddcp bundle create changes.ddcp\n  ddcp bundle create --since 42 --encrypt-to bob - | ssh host ddcp bundle apply -"
    )]
    Create {
        /// The bundle file to write; '-' for stdout.
        file: PathBuf,
        /// Only changes after this db_version of this database.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
        since: i64,
        /// Seal the bundle for one database: its member id (what its `ddcp id` prints) or the
        /// name of one of this database's members. Only that database can read or apply it.
        #[arg(long, value_name = "ID|MEMBER")]
        encrypt_to: Option<String>,
        /// Only what this member may read (its filter within `ddcp share`'s), sealed for it.
        #[arg(long = "for", value_name = "MEMBER", conflicts_with = "encrypt_to")]
        for_member: Option<String>,
        /// Only what these filter flags let pass (a row filter needs --since 0: rows that
        /// started to match since could not arrive whole).
        #[command(flatten)]
        filter: FilterArgs,
        /// Print JSON for scripts (not with '-': stdout carries the bundle).
        #[arg(long)]
        json: bool,
    },
    /// Merge the changes of a bundle into this database: all of them or, on any error, none.
    #[command(
        after_help = "Examples:\n  ddcp bundle apply changes.ddcp\n  ddcp init && ddcp bundle apply --create-tables changes.ddcp   (a new peer, air-gapped)"
    )]
    Apply {
        /// The bundle file to read; '-' for stdin.
        file: PathBuf,
        /// On a database without CRR tables yet, make the bundle's first (the air-gapped
        /// `ddcp clone`).
        #[arg(long)]
        create_tables: bool,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Check a bundle and print what it holds, without applying it (a sealed bundle: only the
    /// database it is sealed for can).
    #[command(after_help = "Example: ddcp bundle verify changes.ddcp --json")]
    Verify {
        /// The bundle file to read; '-' for stdin.
        file: PathBuf,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}
