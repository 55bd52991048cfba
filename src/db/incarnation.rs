//! This database's incarnation: its life since its last restore. `ddcp restore` brings back the
//! backup's version counter, so the versions after the backup are given again to new changes;
//! a peer's cursor taken before the restore would skip them. The incarnation goes with every
//! page and Status, and the restore draws a new one: a peer whose cursor is of another life
//! starts over.

use rusqlite::OptionalExtension;

use super::{Db, DbError};
use crate::sync::Incarnation;

impl Db {
    /// This database's incarnation (made by migration 009).
    pub fn incarnation(&self) -> Result<Incarnation, DbError> {
        let stored: Option<i64> = self
            .conn()
            .query_row(
                "select value from ddcp_meta where key = 'incarnation'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        match stored {
            // Stored as SQLite's signed integer: the same 64 bits.
            Some(bits) if bits != 0 => Ok(Incarnation(bits as u64)),
            _ => Err(DbError::CorruptMetadata("no incarnation".into())),
        }
    }

    /// Readies a database just restored from a backup, in one transaction: a new incarnation
    /// (peers holding cursors of its previous life start over), and every remote pulled from
    /// the start (what this database wrote after the backup comes back from the peers that
    /// pulled it; merging what it has is a no-op).
    pub fn begin_restored_life(&mut self) -> Result<Incarnation, DbError> {
        let tx = self.conn_mut().transaction()?;
        let new = Incarnation::new_random();
        tx.execute(
            "insert into ddcp_meta (key, value) values ('incarnation', ?1)
             on conflict (key) do update set value = excluded.value",
            [new.0 as i64],
        )?;
        Db::forget_cursors(&tx)?;
        tx.commit()?;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use crate::db::test_support::temp_db;

    #[test]
    fn a_restored_database_begins_another_life_and_pulls_from_the_start() {
        let (_dir, mut db) = temp_db();
        let first = db.incarnation().unwrap();
        assert_ne!(first, crate::sync::Incarnation::UNKNOWN);
        assert_eq!(db.incarnation().unwrap(), first);
        db.conn()
            .execute(
                "insert into ddcp_cursors (site_id, db_version) values (x'01', 9)",
                [],
            )
            .unwrap();
        let second = db.begin_restored_life().unwrap();
        assert_ne!(second, first);
        assert_eq!(db.incarnation().unwrap(), second);
        let cursors: i64 = db
            .conn()
            .query_row("select count(*) from ddcp_cursors", [], |row| row.get(0))
            .unwrap();
        assert_eq!(cursors, 0);
    }
}
