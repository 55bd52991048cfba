//! `ddcp migrate FILE`: additive changes of the schema, all or nothing (see `Db::migrate` and
//! docs/schema-evolution.md).

use std::io::Read;

use serde::Serialize;

use super::CommandError;
use super::output::{print_json, print_line};
use crate::cli::MigrateArgs;
use crate::config::Config;

#[derive(Serialize)]
struct MigratedJson {
    /// What the migration did (or, with --dry-run, would do), in order.
    steps: Vec<String>,
    dry_run: bool,
    /// Changes still held for tables or columns this database lacks.
    still_held: u64,
}

pub fn run(config: &Config, args: &MigrateArgs) -> Result<(), CommandError> {
    let mut sql = String::new();
    let read = if args.file.as_os_str() == "-" {
        std::io::stdin().lock().read_to_string(&mut sql)
    } else {
        std::fs::File::open(&args.file).and_then(|mut file| file.read_to_string(&mut sql))
    };
    read.map_err(|source| CommandError::File {
        what: "cannot read",
        path: args.file.clone(),
        source,
    })?;
    let mut db = super::open_db(config)?;
    let steps = db.migrate(&sql, args.dry_run)?;
    let still_held = db.held()?.iter().map(|group| group.changes).sum();
    db.close()?;
    let migrated = MigratedJson {
        steps: steps.iter().map(ToString::to_string).collect(),
        dry_run: args.dry_run,
        still_held,
    };
    if args.json {
        print_json(&migrated)?;
        return Ok(());
    }
    if args.dry_run {
        print_line("dry run, nothing was applied; the migration would have:")?;
    }
    let indent = if args.dry_run { "  " } else { "" };
    for step in &migrated.steps {
        print_line(format_args!("{indent}{step}"))?;
    }
    if still_held > 0 {
        print_line(format_args!(
            "{still_held} changes are still held for tables or columns this database lacks (`ddcp status` says which)"
        ))?;
    }
    Ok(())
}
