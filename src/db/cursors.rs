//! The pulling side's bookkeeping: where this database stands in each remote's changes (its
//! cursor, and the remote's incarnation it was taken in), and what was pulled from whom. The
//! cursor moves in the transaction that applies a page (apply.rs), so a crash never applies
//! anything twice or half.

use rusqlite::{Connection, OptionalExtension, params};

use super::accept::AcceptPolicy;
use super::{Db, DbError};
use crate::sync::cursor::{Cursor, RowKey};
use crate::sync::{DbVersion, Incarnation, Seq, SiteId};

pub(super) fn read_cursor(conn: &Connection, remote: SiteId) -> Result<Cursor, DbError> {
    let row = conn
        .query_row(
            "select db_version, seq, tbl, pk, cid from ddcp_cursors where site_id = ?1",
            [&remote.0[..]],
            |row| {
                let within = match (row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?) {
                    (Some(seq), Some(table), Some(pk), Some(cid)) => Some(RowKey {
                        seq: Seq(seq),
                        table,
                        pk,
                        cid,
                    }),
                    _ => None,
                };
                Ok(Cursor {
                    db_version: DbVersion(row.get(0)?),
                    within,
                })
            },
        )
        .optional()?;
    Ok(row.unwrap_or_default())
}

/// Counts a page of `changes` accepted from `remote`, now (for `ddcp log`).
pub(super) fn record_pull(conn: &Connection, remote: SiteId, changes: u64) -> Result<(), DbError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    conn.execute(
        "insert into ddcp_pulled (site_id, last_at, changes) values (?1, ?2, ?3)
         on conflict (site_id) do update set last_at = excluded.last_at,
           changes = changes + excluded.changes",
        params![&remote.0[..], now, changes as i64],
    )?;
    Ok(())
}

/// The incarnation of `remote` that its cursor was taken in.
pub(super) fn read_incarnation(conn: &Connection, remote: SiteId) -> Result<Incarnation, DbError> {
    let bits: Option<i64> = conn
        .query_row(
            "select incarnation from ddcp_cursors where site_id = ?1",
            [&remote.0[..]],
            |row| row.get(0),
        )
        .optional()?;
    Ok(bits.map_or(Incarnation::UNKNOWN, |bits| Incarnation(bits as u64)))
}

pub(super) fn write_cursor(
    conn: &Connection,
    remote: SiteId,
    cursor: &Cursor,
    incarnation: Incarnation,
) -> Result<(), DbError> {
    let within = cursor.within.as_ref();
    conn.execute(
        "insert into ddcp_cursors (site_id, db_version, seq, tbl, pk, cid, incarnation)
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         on conflict (site_id) do update set db_version = excluded.db_version,
           seq = excluded.seq, tbl = excluded.tbl, pk = excluded.pk, cid = excluded.cid,
           incarnation = excluded.incarnation",
        params![
            &remote.0[..],
            cursor.db_version.0,
            within.map(|k| k.seq.0),
            within.map(|k| k.table.as_str()),
            within.map(|k| k.pk.as_slice()),
            within.map(|k| k.cid.as_str()),
            incarnation.0 as i64,
        ],
    )?;
    Ok(())
}

impl Db {
    /// Where this database stands in `remote`'s changes (the start when never pulled).
    pub fn cursor(&self, remote: SiteId) -> Result<Cursor, DbError> {
        read_cursor(self.conn(), remote)
    }

    /// Forgets where this database stood in `remote`'s changes, and any staged part of its
    /// transactions: the next pull starts over (harmless: applying a change twice is a no-op).
    pub fn reset_cursor(&mut self, remote: SiteId) -> Result<(), DbError> {
        let tx = self.conn_mut().transaction()?;
        tx.execute(
            "delete from ddcp_cursors where site_id = ?1",
            [&remote.0[..]],
        )?;
        tx.execute(
            "delete from ddcp_staged where site_id = ?1",
            [&remote.0[..]],
        )?;
        tx.execute(
            "delete from ddcp_staged_parts where site_id = ?1",
            [&remote.0[..]],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets where this database stood in every remote's changes (after a restore): each is
    /// pulled from the start again.
    pub(super) fn forget_cursors(conn: &Connection) -> Result<(), DbError> {
        conn.execute_batch(
            "delete from ddcp_cursors; delete from ddcp_staged; delete from ddcp_staged_parts;",
        )?;
        Ok(())
    }

    /// Readies the cursor in `remote`'s changes for a pull under `policy`: when it moved under
    /// another accept policy it is reset, staged parts included (what was skipped may be
    /// admitted now; what was staged may be refused now), all in one transaction. True when it
    /// was reset.
    pub fn align_cursor(&mut self, remote: SiteId, policy: &AcceptPolicy) -> Result<bool, DbError> {
        let tx = self.conn_mut().transaction()?;
        let site = &remote.0[..];
        let before: Option<String> = tx
            .query_row(
                "select policy from ddcp_cursor_policy where site_id = ?1",
                [site],
                |row| row.get(0),
            )
            .optional()?;
        let now = policy.stored_form();
        let reset = before.as_ref().is_some_and(|before| *before != now);
        if reset {
            tx.execute("delete from ddcp_cursors where site_id = ?1", [site])?;
            tx.execute("delete from ddcp_staged where site_id = ?1", [site])?;
            tx.execute("delete from ddcp_staged_parts where site_id = ?1", [site])?;
        }
        tx.execute(
            "insert into ddcp_cursor_policy (site_id, policy) values (?1, ?2)
             on conflict (site_id) do update set policy = excluded.policy",
            (site, now),
        )?;
        tx.commit()?;
        Ok(reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::staged::stage;
    use crate::db::test_support::temp_db;
    use crate::sync::Change;

    #[test]
    fn a_cursor_moved_under_another_author_policy_starts_over() {
        let (_dir, mut db) = temp_db();
        let remote = SiteId([4; 16]);
        let direct = AcceptPolicy {
            authors: crate::sync::authors::AuthorPolicy::Direct,
            ..AcceptPolicy::default()
        };
        let moved = Cursor {
            db_version: DbVersion(7),
            within: None,
        };
        // The first pull under a policy keeps the cursor it finds.
        write_cursor(db.conn(), remote, &moved, Incarnation(3)).unwrap();
        assert!(!db.align_cursor(remote, &direct).unwrap());
        assert_eq!(db.cursor(remote).unwrap(), moved);
        assert!(!db.align_cursor(remote, &direct).unwrap());
        assert_eq!(db.cursor(remote).unwrap(), moved);
        // Parts of a group staged under `direct` (one by an older ddcp, a row per change).
        db.conn()
            .execute(
                "insert into ddcp_staged (site_id, ord, tbl, pk, cid, val, col_version,
                   db_version, author, cl, seq) values (?1, 0, 't', x'01', 'c', 1, 1, 8, ?1, 1, 0)",
                [&remote.0[..]],
            )
            .unwrap();
        let part = Change {
            table: "t".into(),
            pk: vec![1],
            cid: "c".into(),
            val: crate::sync::Value::Integer(1),
            col_version: 1,
            db_version: DbVersion(8),
            site_id: remote,
            cl: 1,
            seq: Seq(1),
        };
        stage(db.conn(), remote, &[part]).unwrap();
        // Widened (or narrowed): from the start, whatever was staged gone.
        assert!(db.align_cursor(remote, &AcceptPolicy::default()).unwrap());
        assert_eq!(db.cursor(remote).unwrap(), Cursor::START);
        let staged: i64 = db
            .conn()
            .query_row(
                "select (select count(*) from ddcp_staged) + (select count(*) from ddcp_staged_parts)",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(staged, 0);
        // Another site's cursor is its own.
        assert!(!db.align_cursor(SiteId([5; 16]), &direct).unwrap());
    }
}
