//! Parts of a remote transaction too big for one page, held in the database until its last
//! part arrives so that the transaction is merged whole. Read back one part at a time: a group
//! of any size passes through.

use rusqlite::{Connection, params};

use super::DbError;
use super::changes::value_from_sql;
use crate::sync::codec::{decode_changeset, encode_changeset};
use crate::sync::{Change, DbVersion, Seq, SiteId};

/// Holds `changes` as the next part of `remote`'s open transaction.
pub(super) fn stage(conn: &Connection, remote: SiteId, changes: &[Change]) -> Result<(), DbError> {
    conn.execute(
        "insert into ddcp_staged_parts (site_id, ord, changes)
         values (?1, (select coalesce(max(ord) + 1, 0) from ddcp_staged_parts where site_id = ?1), ?2)",
        params![&remote.0[..], encode_changeset(changes)],
    )?;
    Ok(())
}

/// One part staged for a remote, to be read with [`StagedPart::read`].
#[derive(Clone, Copy, Debug)]
pub(super) enum StagedPart {
    /// What a ddcp before ddcp_staged_parts staged, a change per row: it came first.
    Legacy,
    /// A part of ddcp_staged_parts, by its place.
    Part(i64),
}

/// The parts staged for `remote`, in the order they arrived.
pub(super) fn staged_parts(conn: &Connection, remote: SiteId) -> Result<Vec<StagedPart>, DbError> {
    let site = &remote.0[..];
    let legacy: bool = conn.query_row(
        "select exists (select 1 from ddcp_staged where site_id = ?1)",
        [site],
        |row| row.get(0),
    )?;
    let parts = conn
        .prepare_cached("select ord from ddcp_staged_parts where site_id = ?1 order by ord")?
        .query_map([site], |row| row.get(0).map(StagedPart::Part))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(legacy
        .then_some(StagedPart::Legacy)
        .into_iter()
        .chain(parts)
        .collect())
}

impl StagedPart {
    /// The part's changes.
    pub(super) fn read(self, conn: &Connection, remote: SiteId) -> Result<Vec<Change>, DbError> {
        let ord = match self {
            StagedPart::Legacy => return legacy_part(conn, remote),
            StagedPart::Part(ord) => ord,
        };
        let bytes: Vec<u8> = conn.query_row(
            "select changes from ddcp_staged_parts where site_id = ?1 and ord = ?2",
            params![&remote.0[..], ord],
            |row| row.get(0),
        )?;
        decode_changeset(&mut &bytes[..])
            .map_err(|err| DbError::CorruptMetadata(format!("a staged part: {err}")))
    }
}

/// Forgets every part staged for `remote`.
pub(super) fn forget_staged(conn: &Connection, remote: SiteId) -> Result<(), DbError> {
    let site = &remote.0[..];
    conn.execute("delete from ddcp_staged where site_id = ?1", [site])?;
    conn.execute("delete from ddcp_staged_parts where site_id = ?1", [site])?;
    Ok(())
}

/// What an older ddcp staged for `remote` a change per row, as one part.
fn legacy_part(conn: &Connection, remote: SiteId) -> Result<Vec<Change>, DbError> {
    let mut statement = conn.prepare_cached(
        "select tbl, pk, cid, val, col_version, db_version, author, cl, seq
         from ddcp_staged where site_id = ?1 order by ord",
    )?;
    let mut rows = statement.query([&remote.0[..]])?;
    let mut changes = Vec::new();
    while let Some(row) = rows.next()? {
        changes.push(Change {
            table: row.get(0)?,
            pk: row.get(1)?,
            cid: row.get(2)?,
            val: value_from_sql(row.get_ref(3)?),
            col_version: row.get(4)?,
            db_version: DbVersion(row.get(5)?),
            site_id: SiteId::from_slice(&row.get::<_, Vec<u8>>(6)?)?,
            cl: row.get(7)?,
            seq: Seq(row.get(8)?),
        });
    }
    Ok(changes)
}
