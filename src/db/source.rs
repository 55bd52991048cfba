//! This database as the answering side of the protocol sees it.

use std::ops::RangeInclusive;

use rusqlite::{OptionalExtension, params};

use super::changes::{CHANGE_COLUMNS, change_from_row};
use super::{Db, DbError};
use crate::sync::cursor::Cursor;
use crate::sync::filter::RowPredicate;
use crate::sync::page::Visit;
use crate::sync::schema_history::SchemaHistory;
use crate::sync::serve::{ChangeSource, SourceError};
use crate::sync::{Change, DbVersion, Incarnation, SchemaDesc, SiteId};

fn source_error(err: DbError) -> SourceError {
    SourceError(err.to_string())
}

impl ChangeSource for Db {
    fn site_id(&self) -> Result<SiteId, SourceError> {
        Db::site_id(self).map_err(source_error)
    }

    fn db_version(&self) -> Result<DbVersion, SourceError> {
        Db::db_version(self).map_err(source_error)
    }

    fn incarnation(&self) -> Result<Incarnation, SourceError> {
        Db::incarnation(self).map_err(source_error)
    }

    fn schema(&self) -> Result<SchemaDesc, SourceError> {
        // What peers compare and receive: the tables this database shares.
        Db::shared_schema(self).map_err(source_error)
    }

    fn schema_history(&self) -> Result<SchemaHistory, SourceError> {
        Db::schema_history(self).map_err(source_error)
    }

    fn visit_changes(
        &self,
        after: &Cursor,
        except: SiteId,
        visit: &mut dyn FnMut(Change) -> Visit,
    ) -> Result<(), SourceError> {
        self.visit_changes_from(after, Some(except), visit)
            .map_err(source_error)
    }

    fn row_matches(
        &self,
        table: &str,
        pk: &[u8],
        predicate: &RowPredicate,
    ) -> Result<bool, SourceError> {
        Db::row_matches(self, table, pk, predicate).map_err(source_error)
    }

    fn row_cells(
        &self,
        table: &str,
        pk: &[u8],
        through: DbVersion,
    ) -> Result<Vec<Change>, SourceError> {
        Db::row_cells(self, table, pk, through).map_err(source_error)
    }

    fn holds_changes_of(
        &self,
        site: SiteId,
        versions: RangeInclusive<DbVersion>,
    ) -> Result<bool, SourceError> {
        Db::holds_changes_of(self, site, versions).map_err(source_error)
    }
}

impl Db {
    /// Whether a change authored by `site` is at a db_version within `versions`. cr-sqlite
    /// names every other site whose changes it merged in `crsql_site_id`, and its clock tables
    /// hold each change's version and author (by that name's ordinal).
    pub(super) fn holds_changes_of(
        &self,
        site: SiteId,
        versions: RangeInclusive<DbVersion>,
    ) -> Result<bool, DbError> {
        let ordinal: Option<i64> = self
            .conn()
            .query_row(
                "select ordinal from crsql_site_id where site_id = ?1",
                [&site.0[..]],
                |row| row.get(0),
            )
            .optional()?;
        let Some(ordinal) = ordinal else {
            return Ok(false);
        };
        for table in super::schema::crr_tables(self.conn())? {
            let clock = super::rows::quoted(&format!("{table}__crsql_clock"));
            let held: bool = self
                .conn()
                .prepare_cached(&format!(
                    "select exists(select 1 from {clock}
                     where db_version between ?1 and ?2 and site_id = ?3)"
                ))?
                .query_row((versions.start().0, versions.end().0, ordinal), |row| {
                    row.get(0)
                })?;
            if held {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Offers the changes after `after` (not authored by `except`, when given) in cursor order
    /// to `visit`, until it answers [`Visit::Stop`].
    pub(super) fn visit_changes_from(
        &self,
        after: &Cursor,
        except: Option<SiteId>,
        visit: &mut dyn FnMut(Change) -> Visit,
    ) -> Result<(), DbError> {
        // No site has the all-zero id (cr-sqlite's are random): it stands for "nobody".
        let except = except.unwrap_or(SiteId([0; 16]));
        // Inside a group: the rest of that group first, by the full row key.
        if let Some(key) = &after.within
            && super::group::visit_rest_of_group(self.conn(), after.db_version, key, except, visit)?
        {
            return Ok(());
        }
        // Then whole versions, in windows that double: each query reads (and sorts) only its
        // window, where one query for everything after the cursor would read the whole rest of
        // the database for every page.
        let sql = format!(
            "select {CHANGE_COLUMNS} from crsql_changes
             where db_version > ?1 and db_version <= ?2 and site_id != ?3
             order by db_version, seq, \"table\", pk, cid"
        );
        let newest = self.db_version()?.0;
        let mut low = after.db_version.0;
        let mut width: i64 = 1;
        while low < newest {
            let high = low.saturating_add(width).min(newest);
            if high == low + 1 {
                // One version (the first window): read in order from the clocks, only as far
                // as the page goes, so that a big transaction is not read whole for the part of
                // it a page takes.
                let start = super::group::group_start();
                if super::group::visit_rest_of_group(
                    self.conn(),
                    DbVersion(high),
                    &start,
                    except,
                    visit,
                )? {
                    return Ok(());
                }
                low = high;
                width = width.saturating_mul(2);
                continue;
            }
            let mut statement = self.conn().prepare_cached(&sql)?;
            let mut rows = statement.query(params![low, high, &except.0[..]])?;
            while let Some(row) = rows.next()? {
                if visit(change_from_row(row)?) == Visit::Stop {
                    return Ok(());
                }
            }
            low = high;
            width = width.saturating_mul(2);
        }
        Ok(())
    }
}
