//! Changes held until this database has their table or column: a remote on a newer version of
//! the app sends changes to a column this database lacks, and everything else it sends goes on
//! replicating (see `sync::schema_fit`). The held changes are kept in the order they came, as
//! the remote named them; once the table or column is here (a migration, `crsql_begin_alter`
//! and `crsql_commit_alter` by hand), [`Db::apply_held`] accepts them as that remote's (its
//! policy, its filters, its row predicate judged on the merge), without pulling them again.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::accept::AcceptPolicy;
use super::accept_page::MAX_JUDGED_TRIES;
use super::changes::{SqlValue, value_from_sql};
use super::judge::{Judgement, RefusedRows, merge_judged};
use super::{Db, DbError};
use crate::sync::filter::SENTINEL_CID;
use crate::sync::schema::SchemaDesc;
use crate::sync::validate::{ChangeValidator, check_shape};
use crate::sync::{Change, DbVersion, Seq, SiteId};

/// Changes held at most for one remote (or for bundles). Past it that remote's pull stops with
/// one line (nothing is lost: its cursor stays) rather than fill the disk with what this
/// database cannot use yet; the other remotes go on.
pub const MAX_HELD: u64 = 1_000_000;

/// Held changes applied in one transaction at most.
const BATCH: usize = 10_000;

/// The site a bundle's held changes are kept under: no remote has it.
pub const BUNDLE_SITE: SiteId = SiteId([0; 16]);

/// Held changes of one table or column, for `ddcp status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldGroup {
    /// The table, as the remote names it.
    pub table: String,
    /// The column this database lacks; `None` when it lacks the whole table.
    pub column: Option<String>,
    /// How many changes wait for it.
    pub changes: u64,
}

/// What [`Db::apply_held`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeldApplied {
    /// Changes merged (or refused by their remote's policy): no longer held.
    pub taken: u64,
    /// Changes still held: their table or column is not here yet.
    pub still_held: u64,
    /// Remotes whose held changes could not be merged (logged).
    pub failed: u64,
}

/// Holds `changes` of the remote `via`, in the transaction of the page they came with.
pub(super) fn hold(conn: &Connection, via: SiteId, changes: &[Change]) -> Result<(), DbError> {
    if changes.is_empty() {
        return Ok(());
    }
    let held: i64 = conn.query_row(
        "select count(*) from ddcp_held where via = ?1",
        [&via.0[..]],
        |row| row.get(0),
    )?;
    if held as u64 + changes.len() as u64 > MAX_HELD {
        return Err(DbError::HeldFull(MAX_HELD));
    }
    let mut insert = conn.prepare_cached(
        "insert or ignore into ddcp_held
           (via, tbl, pk, cid, val, col_version, db_version, author, cl, seq)
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for change in changes {
        // Checked now as far as it can be without its table: a change that could never be
        // merged is refused with its page, not kept to fail later.
        check_shape(change)?;
        insert.execute(params![
            &via.0[..],
            &change.table,
            &change.pk,
            &change.cid,
            SqlValue(&change.val),
            change.col_version,
            change.db_version.0,
            &change.site_id.0[..],
            change.cl,
            change.seq.0,
        ])?;
    }
    Ok(())
}

/// Whether `schema` has what `change` needs: its table, and its column unless it is a sentinel.
pub(super) fn schema_holds(schema: &SchemaDesc, change: &Change) -> bool {
    schema
        .tables
        .iter()
        .find(|table| table.name == change.table)
        .is_some_and(|table| {
            change.cid == SENTINEL_CID || table.columns.iter().any(|c| c.name == change.cid)
        })
}

impl Db {
    /// The held changes, by the table or column they wait for.
    pub fn held(&self) -> Result<Vec<HeldGroup>, DbError> {
        let schema = self.schema()?;
        let mut statement = self
            .conn()
            .prepare("select tbl, cid, count(*) from ddcp_held group by tbl, cid")?;
        let mut groups: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let (table, cid, count): (String, String, i64) =
                (row.get(0)?, row.get(1)?, row.get(2)?);
            let has_table = schema.tables.iter().any(|t| t.name == table);
            let column = (has_table && cid != SENTINEL_CID).then_some(cid);
            *groups.entry((table, column)).or_default() += count as u64;
        }
        Ok(groups
            .into_iter()
            .map(|((table, column), changes)| HeldGroup {
                table,
                column,
                changes,
            })
            .collect())
    }

    /// Accepts the held changes whose table and column are here now, each as its remote's
    /// (that remote's policy as it is now), in the order they came; the changes of a remote
    /// removed since are dropped.
    pub fn apply_held(&mut self) -> Result<HeldApplied, DbError> {
        let vias: Vec<Vec<u8>> = self
            .conn()
            .prepare("select distinct via from ddcp_held")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let mut applied = HeldApplied::default();
        for via in vias {
            let site = SiteId::from_slice(&via)?;
            let Some(policy) = self.policy_of_site(site)? else {
                self.conn()
                    .execute("delete from ddcp_held where via = ?1", [&via])?;
                continue;
            };
            // The remote's tables land in this database's own, or in its mirrors.
            let here = self.fit_here(policy.into.as_ref())?;
            // One remote's held changes failing to merge holds up no other's.
            match self.apply_held_of(site, &policy, &here) {
                Ok(taken) => applied.taken += taken,
                Err(err) => {
                    tracing::warn!(target: "ddcp", site = %site, error = %err,
                        "Cannot merge the changes held for a remote");
                    applied.failed += 1;
                }
            }
        }
        applied.still_held = self
            .conn()
            .query_row("select count(*) from ddcp_held", [], |row| {
                row.get::<_, i64>(0)
            })? as u64;
        Ok(applied)
    }

    /// The accept policy of the remote whose site is `site` (the default one for a bundle's
    /// changes); `None` when no remote has it any more.
    fn policy_of_site(&self, site: SiteId) -> Result<Option<AcceptPolicy>, DbError> {
        if site == BUNDLE_SITE {
            return Ok(Some(AcceptPolicy::default()));
        }
        let name: Option<String> = self
            .conn()
            .query_row(
                "select name from ddcp_remotes where site_id = ?1",
                [&site.0[..]],
                |row| row.get(0),
            )
            .optional()?;
        let Some(name) = name else {
            return Ok(None);
        };
        Ok(self
            .remotes()?
            .into_iter()
            .find(|remote| remote.name.as_str() == name)
            .map(|remote| remote.accept))
    }

    /// [`Db::apply_held`] for one remote: batch by batch, in the order they came.
    fn apply_held_of(
        &mut self,
        site: SiteId,
        policy: &AcceptPolicy,
        here: &SchemaDesc,
    ) -> Result<u64, DbError> {
        let mut taken = 0;
        let mut after = 0i64;
        loop {
            let (batch, ords, last) = self.ready_held(site, here, after)?;
            let Some(last) = last else {
                return Ok(taken);
            };
            after = last;
            if ords.is_empty() {
                continue;
            }
            // As a page of the remote's: its policy, named as this database names them (its
            // mirrors made when missing).
            let mut changes = batch;
            self.admit(site, policy, &mut changes, &mut Vec::new())?;
            // Checked whole now that the table and column are here: what cannot be merged is
            // dropped (it would stop every held change after it).
            let validator = ChangeValidator::new(&self.schema()?);
            changes.retain(|change| validator.check(change).is_ok());
            let mut refused_rows = RefusedRows::default();
            let mut merged = false;
            for _ in 0..MAX_JUDGED_TRIES {
                let mut applier = self.begin_apply()?;
                if let Some(predicate) = &policy.filter.rows {
                    let judged = merge_judged(
                        &mut applier,
                        site,
                        predicate,
                        &[],
                        &changes,
                        &mut refused_rows,
                        false,
                    )?;
                    if judged == Judgement::Refused {
                        continue;
                    }
                } else {
                    applier.apply(&changes)?;
                }
                let mut forget = applier
                    .connection()
                    .prepare_cached("delete from ddcp_held where ord = ?1")?;
                for ord in &ords {
                    forget.execute([ord])?;
                }
                drop(forget);
                applier.note_arrival(site, "held")?;
                applier.commit()?;
                merged = true;
                break;
            }
            if !merged {
                return Err(DbError::RowsKeptChanging);
            }
            taken += ords.len() as u64;
        }
    }

    /// The next held changes of `site` after `after` (by arrival), up to a batch read: those
    /// `here` has room for, their places, and the last place read (`None` when none was left).
    #[allow(clippy::type_complexity)]
    fn ready_held(
        &self,
        site: SiteId,
        here: &SchemaDesc,
        after: i64,
    ) -> Result<(Vec<Change>, Vec<i64>, Option<i64>), DbError> {
        let mut statement = self.conn().prepare_cached(
            "select ord, tbl, pk, cid, val, col_version, db_version, author, cl, seq
             from ddcp_held where via = ?1 and ord > ?2 order by ord limit ?3",
        )?;
        let mut rows = statement.query(params![&site.0[..], after, BATCH as i64])?;
        let (mut ready, mut ords, mut last) = (Vec::new(), Vec::new(), None);
        while let Some(row) = rows.next()? {
            let ord: i64 = row.get(0)?;
            last = Some(ord);
            let change = Change {
                table: row.get(1)?,
                pk: row.get(2)?,
                cid: row.get(3)?,
                val: value_from_sql(row.get_ref(4)?),
                col_version: row.get(5)?,
                db_version: DbVersion(row.get(6)?),
                site_id: SiteId::from_slice(&row.get::<_, Vec<u8>>(7)?)?,
                cl: row.get(8)?,
                seq: Seq(row.get(9)?),
            };
            if schema_holds(here, &change) {
                ready.push(change);
                ords.push(ord);
            }
        }
        Ok((ready, ords, last))
    }
}
