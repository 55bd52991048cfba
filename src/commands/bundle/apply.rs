//! `ddcp bundle apply`: a bundle's changes merged into this database.

use std::path::Path;

use serde::Serialize;

use super::super::CommandError;
use super::super::output::{print_json, print_line};
use super::{open_bundle, read_input, unseal};
use crate::config::Config;

/// What `bundle apply --json` prints.
#[derive(Serialize)]
struct AppliedJson {
    changes: u64,
    from_site: String,
    since: i64,
    until: i64,
    db_version_before: i64,
    db_version_after: i64,
    /// False when the database held every change already.
    changed: bool,
}

pub(super) fn apply(
    config: &Config,
    path: &Path,
    create_tables: bool,
    json: bool,
) -> Result<(), CommandError> {
    // The whole file is checked (checksum) before the database is touched.
    let (bytes, sealer) = unseal(config, path, read_input(path)?)?;
    let mut reader = open_bundle(path, &bytes)?;
    let mut db = super::super::open_db(config)?;
    if create_tables {
        if db.crr_tables()?.is_empty() {
            db.create_tables(&reader.header().schema)?;
        } else {
            tracing::info!(target: "ddcp",
                "The database has CRR tables already: --create-tables makes none");
        }
    }
    let ours = db.shared_schema()?;
    if let Some(difference) = ours.difference(&reader.header().schema) {
        if ours.tables.is_empty() {
            return Err(CommandError::NoTablesYet(path.to_path_buf()));
        }
        return Err(CommandError::SchemaMismatch(difference));
    }
    let mut applier = db.begin_apply()?;
    while let Some(changes) = reader
        .next_changes()
        .map_err(|reason| CommandError::Bundle {
            path: path.display().to_string(),
            reason,
        })?
    {
        applier.refuse_counter_jumps(&changes)?;
        applier.apply(&changes)?;
    }
    applier.note_arrival(reader.header().site_id, "bundle")?;
    let outcome = applier.commit()?;
    db.close()?;
    let header = reader.header();
    tracing::info!(
        target: "ddcp",
        changes = outcome.offered,
        from_site = %header.site_id,
        since = %header.since,
        until = %header.until,
        db_version = %outcome.db_version_after,
        sealed_by = sealer.map(|sealer| sealer.to_string()),
        "Applied bundle"
    );
    let applied = AppliedJson {
        changes: outcome.offered,
        from_site: header.site_id.to_string(),
        since: header.since.0,
        until: header.until.0,
        db_version_before: outcome.db_version_before.0,
        db_version_after: outcome.db_version_after.0,
        changed: outcome.db_version_after != outcome.db_version_before,
    };
    if json {
        print_json(&applied)?;
    } else {
        if applied.changed {
            print_line(format_args!(
                "applied {} changes from site {}: this database is now at db_version {}",
                applied.changes, applied.from_site, applied.db_version_after
            ))?;
        } else {
            // Said as what happened: nothing was applied.
            print_line(format_args!(
                "nothing new in {} changes from site {}: this database held them all",
                applied.changes, applied.from_site
            ))?;
        }
    }
    Ok(())
}
