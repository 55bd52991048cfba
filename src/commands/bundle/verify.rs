//! `ddcp bundle verify`: what a bundle holds, every changeset decoded, nothing applied.

use std::path::Path;

use serde::Serialize;

use super::super::CommandError;
use super::super::output::{print_json, print_line};
use super::{bundle_error, open_bundle, read_input, unseal};
use crate::config::Config;
use crate::sync::SiteId;

#[derive(Serialize)]
struct VerifyJson {
    format_version: u32,
    site_id: String,
    since: i64,
    until: i64,
    changes: u64,
    schema_fingerprint: String,
    /// The tables of the schema it carries (the writer's shared tables: a filtered bundle's
    /// changes may touch fewer).
    tables: Vec<String>,
    /// The tables its changes touch, with how many each.
    changed_tables: Vec<TableCount>,
    /// The member id that sealed it for this database, when it is sealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    sealed_by: Option<String>,
    /// Changes per author site: a bundle relays what its database merged from others.
    authors: Vec<AuthorCount>,
}

#[derive(Serialize)]
struct TableCount {
    table: String,
    changes: u64,
}

#[derive(Serialize)]
struct AuthorCount {
    site_id: String,
    changes: u64,
}

pub(super) fn verify(config: &Config, path: &Path, json: bool) -> Result<(), CommandError> {
    let (bytes, sealer) = unseal(config, path, read_input(path)?)?;
    let mut reader = open_bundle(path, &bytes)?;
    // Decoding every changeset also checks the change count against the header.
    let mut authors: std::collections::BTreeMap<SiteId, u64> = Default::default();
    let mut tables: std::collections::BTreeMap<String, u64> = Default::default();
    while let Some(changes) = reader
        .next_changes()
        .map_err(|reason| bundle_error(path, reason))?
    {
        for change in &changes {
            *authors.entry(change.site_id).or_default() += 1;
            // At most one entry per change, and a bundle is read whole within MAX_BUNDLE_BYTES.
            *tables.entry(change.table.clone()).or_default() += 1;
        }
    }
    let header = reader.header();
    let summary = VerifyJson {
        format_version: header.format_version,
        site_id: header.site_id.to_string(),
        since: header.since.0,
        until: header.until.0,
        changes: header.change_count,
        schema_fingerprint: header.schema.fingerprint().to_string(),
        tables: header
            .schema
            .tables
            .iter()
            .map(|t| t.name.clone())
            .collect(),
        changed_tables: tables
            .into_iter()
            .map(|(table, changes)| TableCount { table, changes })
            .collect(),
        sealed_by: sealer.map(|sealer| sealer.to_string()),
        authors: authors
            .into_iter()
            .map(|(site, changes)| AuthorCount {
                site_id: site.to_string(),
                changes,
            })
            .collect(),
    };
    if json {
        print_json(&summary)?;
    } else {
        let sealed = match &summary.sealed_by {
            Some(sealer) => format!(", sealed for this database by {sealer}"),
            None => String::new(),
        };
        let authors: Vec<String> = summary
            .authors
            .iter()
            .map(|author| format!("{} by {}", author.changes, author.site_id))
            .collect();
        let changed: Vec<String> = summary
            .changed_tables
            .iter()
            .map(|table| format!("{} ({})", table.table, table.changes))
            .collect();
        print_line(format_args!(
            "{}: ok, {} changes from site {} (its db_version {}..={}: {}) to {}; schema of tables {}{sealed}",
            path.display(),
            summary.changes,
            summary.site_id,
            summary.since.saturating_add(1),
            summary.until,
            authors.join(", "),
            changed.join(", "),
            summary.tables.join(", ")
        ))?;
    }
    Ok(())
}
