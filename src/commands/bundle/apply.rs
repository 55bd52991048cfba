//! `ddcp bundle apply`: a bundle's changes merged into this database.

use std::path::Path;

use serde::Serialize;

use super::super::CommandError;
use super::super::output::{print_json, print_line};
use super::{open_bundle, read_input, unseal};
use crate::config::Config;
use crate::db::{BUNDLE_SITE, DbError};
use crate::sync::Change;
use crate::sync::text::printable;

/// What `bundle apply --json` prints.
#[derive(Serialize)]
struct AppliedJson {
    changes: u64,
    /// Changes held for tables or columns this database lacks (the bundle's app is newer).
    held: u64,
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
    let theirs = &reader.header().schema;
    if db.crr_tables()?.is_empty() && !theirs.tables.is_empty() {
        return Err(CommandError::NoTablesYet(path.to_path_buf()));
    }
    // A bundle of a newer version of the app: what this database lacks waits here, the rest
    // is merged (see docs/schema-evolution.md). A real conflict refuses it whole.
    let fit = match db.schema_fit(theirs, None) {
        Ok(fit) => fit,
        Err(DbError::SchemaConflict(conflict)) => {
            return Err(CommandError::SchemaMismatch(printable(
                &conflict.to_string(),
                300,
            )));
        }
        Err(err) => return Err(err.into()),
    };
    let mut held = 0u64;
    let mut applier = db.begin_apply()?;
    while let Some(mut changes) = reader
        .next_changes()
        .map_err(|reason| CommandError::Bundle {
            path: path.display().to_string(),
            reason,
        })?
    {
        if !fit.is_whole() {
            let waiting: Vec<Change>;
            (waiting, changes) = changes.into_iter().partition(|c| fit.must_wait(c));
            applier.hold(BUNDLE_SITE, &waiting)?;
            held += waiting.len() as u64;
        }
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
        held,
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
        if applied.held > 0 {
            print_line(format_args!(
                "held {} changes for tables or columns this database lacks: they are applied once it has them (`ddcp status` says which)",
                applied.held
            ))?;
        }
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
