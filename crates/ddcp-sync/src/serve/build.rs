//! The page that answers a request for changes: read from the source in cursor order, through
//! the asker's filter, within the page budget.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{ChangeSource, Failure, MAX_PAGE_BUDGET, SourceError};
use crate::change::Change;
use crate::cursor::Cursor;
use crate::filter::ChangeFilter;
use crate::ids::{DbVersion, Incarnation, SiteId};
use crate::page::{PageBuilder, Visit};
use crate::protocol::{ChangesPage, ChangesRequest, ErrorCode, ProtocolError};
use crate::schema::{SchemaDesc, SchemaFingerprint};

/// Where the database stands as a page is built.
pub(super) struct Standing {
    pub(super) schema: SchemaDesc,
    pub(super) db_version: DbVersion,
    pub(super) incarnation: Incarnation,
}

impl Standing {
    pub(super) fn read(source: &impl ChangeSource) -> Result<Standing, SourceError> {
        Ok(Standing {
            schema: source.schema()?,
            db_version: source.db_version()?,
            incarnation: source.incarnation()?,
        })
    }
}

/// The bytes of changes a page answering `request` may hold, `budget` the responder's.
pub(super) fn page_budget(request: &ChangesRequest, budget: u32) -> usize {
    request.max_bytes.clamp(1, budget.clamp(1, MAX_PAGE_BUDGET)) as usize
}

/// What a page read through no filter: the authors of its changes and of the one it stopped
/// at, and the newest version among them.
#[derive(Debug, Default)]
pub(super) struct Read {
    pub(super) authors: BTreeSet<SiteId>,
    pub(super) newest: DbVersion,
}

/// The page that answers `request`, holding what `filter` lets the asker read; `read` gets
/// what it read, when through no filter.
pub(super) fn page(
    source: &impl ChangeSource,
    stand: &Standing,
    request: &ChangesRequest,
    budget: u32,
    filter: &ChangeFilter,
    read: &mut Read,
) -> Result<ChangesPage, Failure> {
    let ours: SchemaFingerprint = stand.schema.fingerprint();
    if ours != request.schema_fingerprint {
        return Err(ProtocolError::new(
            ErrorCode::SchemaMismatch,
            format!(
                "CRR schema {} differs from the asker's {}",
                ours, request.schema_fingerprint
            ),
        )
        .into());
    }
    let db_version = stand.db_version;
    if request.since.db_version > db_version {
        return Err(ProtocolError::new(
            ErrorCode::UnknownCursor,
            format!(
                "cursor at db_version {} is ahead of this database ({db_version})",
                request.since.db_version
            ),
        )
        .into());
    }
    let mut builder = PageBuilder::new(request.since.clone(), page_budget(request, budget));
    if filter.is_open() {
        source.visit_changes(&request.since, request.asker, &mut |change| {
            read.authors.insert(change.site_id);
            read.newest = read.newest.max(change.db_version);
            builder.offer(change)
        })?;
    } else {
        let mut reader = FilteredReader {
            source,
            filter,
            since: &request.since,
            asker: request.asker,
            matches: HashMap::new(),
            revealed: HashSet::new(),
            failure: None,
        };
        source.visit_changes(&request.since, request.asker, &mut |change| {
            reader.visit(&mut builder, change)
        })?;
        if let Some(failure) = reader.failure {
            return Err(failure.into());
        }
    }
    let mut plan = builder.finish();
    // Inside a group, a row's older cells are read through the group's own version: one may
    // be a change this page sends too. Each cell goes once (the puller refuses a page with
    // two of one cell); the change, newest, is the one kept.
    if !plan.rows.is_empty() {
        let sent: HashSet<(&str, &[u8], &str)> = plan
            .changes
            .iter()
            .map(|c| (c.table.as_str(), c.pk.as_slice(), c.cid.as_str()))
            .collect();
        let mut kept = HashSet::new();
        let rows = std::mem::take(&mut plan.rows);
        plan.rows = rows
            .into_iter()
            .filter(|cell| {
                let key = (cell.table.clone(), cell.pk.clone(), cell.cid.clone());
                !sent.contains(&(key.0.as_str(), key.1.as_slice(), key.2.as_str()))
                    && kept.insert(key)
            })
            .collect();
    }
    Ok(ChangesPage {
        site_id: source.site_id()?,
        since: request.since.clone(),
        after: plan.after,
        group_complete: plan.group_complete,
        more: plan.more,
        db_version,
        incarnation: stand.incarnation,
        changes: plan.changes,
        rows: plan.rows,
    })
}

/// Reads changes through a filter into a page. A row predicate is checked on the row as it is
/// now; a change that may have made its row visible to the reader (see
/// [`ChangeFilter::may_reveal_row`]) carries the row's older cells, which the reader skipped
/// while the row did not match.
struct FilteredReader<'a, S> {
    source: &'a S,
    filter: &'a ChangeFilter,
    since: &'a Cursor,
    asker: SiteId,
    /// Rows looked up for this page, and whether they match.
    matches: HashMap<(String, Vec<u8>), bool>,
    /// Rows whose older cells this page carries already.
    revealed: HashSet<(String, Vec<u8>)>,
    failure: Option<SourceError>,
}

impl<S: ChangeSource> FilteredReader<'_, S> {
    fn visit(&mut self, builder: &mut PageBuilder, change: Change) -> Visit {
        match self.admit(change) {
            Ok(Ok((change, rows))) => builder.offer_with_rows(change, rows),
            Ok(Err(change)) => builder.skip(&change),
            Err(failure) => {
                self.failure = Some(failure);
                Visit::Stop
            }
        }
    }

    /// The change with the rows it carries, or the change back when it is left out.
    #[allow(clippy::type_complexity)]
    fn admit(
        &mut self,
        change: Change,
    ) -> Result<Result<(Change, Vec<Change>), Change>, SourceError> {
        if !self.filter.admits(&change) {
            return Ok(Err(change));
        }
        let Some(predicate) = &self.filter.rows else {
            return Ok(Ok((change, Vec::new())));
        };
        if is_deletion(&change) {
            // A deleted row has no columns left to check: the deletion passes, so that a
            // reader holding the row loses it too (it learns the key, nothing else).
            return Ok(Ok((change, Vec::new())));
        }
        let row = (change.table.clone(), change.pk.clone());
        let matches = match self.matches.get(&row) {
            Some(matches) => *matches,
            None => {
                let matches = self
                    .source
                    .row_matches(&change.table, &change.pk, predicate)?;
                self.matches.insert(row.clone(), matches);
                matches
            }
        };
        if !matches {
            return Ok(Err(change));
        }
        // Cells up to the cursor's version only: later ones come in their own groups.
        let mut rows = Vec::new();
        if self.since.db_version.0 > 0
            && self.filter.may_reveal_row(&change)
            && self.revealed.insert(row)
        {
            rows = self
                .source
                .row_cells(&change.table, &change.pk, self.since.db_version)?;
            rows.retain(|cell| self.filter.admits(cell) && cell.site_id != self.asker);
        }
        Ok(Ok((change, rows)))
    }
}

/// A row's delete sentinel: an even causal length.
fn is_deletion(change: &Change) -> bool {
    change.cid == crate::filter::SENTINEL_CID && change.cl % 2 == 0
}
