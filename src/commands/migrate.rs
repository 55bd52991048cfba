//! `ddcp migrate FILE` (additive changes of the schema, all or nothing) and `ddcp migrate
//! --from REMOTE` (the migrations a remote published that this database lacks). See
//! `Db::migrate`, `Db::migrate_from` and docs/schema-evolution.md.

use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::CommandError;
use super::output::{print_json, print_line};
use crate::cli::MigrateArgs;
use crate::config::Config;
use crate::db::{Db, MigrationStep, RemoteName};
use crate::sync::text::printable;

#[derive(Serialize)]
struct MigratedJson {
    /// What the migration did (or, with --dry-run, would do), in order.
    steps: Vec<String>,
    /// What this database had already: left as it was.
    present: Vec<String>,
    dry_run: bool,
    /// Changes still held for tables or columns this database lacks.
    still_held: u64,
}

#[derive(Serialize)]
struct FollowedJson {
    /// The remote's migrations this database lacked, by their place in its history.
    migrations: Vec<MigrationJson>,
    dry_run: bool,
    still_held: u64,
}

#[derive(Serialize)]
struct MigrationJson {
    number: usize,
    steps: Vec<String>,
}

pub fn run(config: &Config, args: &MigrateArgs) -> Result<(), CommandError> {
    match (&args.from, &args.file) {
        (Some(remote), _) => from_remote(config, &remote.parse()?, args),
        (None, Some(file)) => from_file(config, file, args),
        // clap requires one of them.
        (None, None) => Err(CommandError::NothingToSet),
    }
}

fn from_file(config: &Config, file: &Path, args: &MigrateArgs) -> Result<(), CommandError> {
    let mut sql = String::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().lock().read_to_string(&mut sql)
    } else {
        std::fs::File::open(file).and_then(|mut file| file.read_to_string(&mut sql))
    };
    read.map_err(|source| CommandError::File {
        what: "cannot read",
        path: file.to_path_buf(),
        source,
    })?;
    let mut db = super::open_db(config)?;
    let migrated = db.migrate(&sql, args.dry_run)?;
    let still_held = still_held(&db)?;
    db.close()?;
    let shown = MigratedJson {
        steps: words(&migrated.applied),
        present: words(&migrated.present),
        dry_run: args.dry_run,
        still_held,
    };
    if args.json {
        return Ok(print_json(&shown)?);
    }
    if args.dry_run {
        print_line("dry run, nothing was applied; the migration would have:")?;
    }
    let indent = if args.dry_run { "  " } else { "" };
    for step in &shown.steps {
        print_line(format_args!("{indent}{step}"))?;
    }
    for step in &shown.present {
        print_line(format_args!("{indent}already here: {step}"))?;
    }
    say_held(still_held)
}

fn from_remote(
    config: &Config,
    remote: &RemoteName,
    args: &MigrateArgs,
) -> Result<(), CommandError> {
    let mut db = super::open_db(config)?;
    let done = db.migrate_from(remote, args.dry_run)?;
    let still_held = still_held(&db)?;
    db.close()?;
    let shown = FollowedJson {
        migrations: done
            .iter()
            .map(|migration| MigrationJson {
                number: migration.number,
                // The remote's table and column names: its own words, made printable.
                steps: words(&migration.steps)
                    .iter()
                    .map(|step| printable(step, 300))
                    .collect(),
            })
            .collect(),
        dry_run: args.dry_run,
        still_held,
    };
    if args.json {
        return Ok(print_json(&shown)?);
    }
    if shown.migrations.is_empty() {
        print_line(format_args!(
            "this database has every migration {remote} published (as its last pull saw them)"
        ))?;
        return Ok(());
    }
    if args.dry_run {
        print_line("dry run, nothing was applied; it would have:")?;
    }
    for migration in &shown.migrations {
        print_line(format_args!(
            "{remote}'s migration {}: {}",
            migration.number,
            migration.steps.join(", ")
        ))?;
    }
    say_held(still_held)
}

fn words(steps: &[MigrationStep]) -> Vec<String> {
    steps.iter().map(ToString::to_string).collect()
}

fn still_held(db: &Db) -> Result<u64, CommandError> {
    Ok(db.held()?.iter().map(|group| group.changes).sum())
}

fn say_held(still_held: u64) -> Result<(), CommandError> {
    if still_held > 0 {
        print_line(format_args!(
            "{still_held} changes are still held for tables or columns this database lacks (`ddcp status` says which)"
        ))?;
    }
    Ok(())
}
