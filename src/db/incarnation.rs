//! This database's incarnation: its life since its last restore. `ddcp restore` brings back the
//! backup's version counter, so the versions after the backup are given again to new changes;
//! a peer's cursor taken before the restore would skip them. The incarnation goes with every
//! page and Status, and the restore draws a new one: a peer whose cursor is of another life
//! starts over.

use rusqlite::OptionalExtension;

use super::members::{AccessSince, RestoredAccess, restore_access};
use super::{Db, DbError};
use crate::sync::Incarnation;

/// What a restore began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoredLife {
    /// The new incarnation.
    pub incarnation: Incarnation,
    /// The access it begins with.
    pub access: RestoredAccess,
}

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
    /// (peers holding cursors of its previous life start over), every remote pulled from
    /// the start (what this database wrote after the backup comes back from the peers that
    /// pulled it; merging what it has is a no-op), and its access taken past what `since`
    /// knows (a new key epoch; members removed since the backup removed again).
    pub fn begin_restored_life(&mut self, since: &AccessSince) -> Result<RestoredLife, DbError> {
        let tx = self.conn_mut().transaction()?;
        let new = Incarnation::new_random();
        tx.execute(
            "insert into ddcp_meta (key, value) values ('incarnation', ?1)
             on conflict (key) do update set value = excluded.value",
            [new.0 as i64],
        )?;
        Db::forget_cursors(&tx)?;
        let access = restore_access(&tx, since)?;
        tx.commit()?;
        Ok(RestoredLife {
            incarnation: new,
            access,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::db::test_support::temp_db;
    use crate::db::{Access, AccessSince};
    use crate::sync::{Epoch, MemberKeys};

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
        let second = db
            .begin_restored_life(&AccessSince::default())
            .unwrap()
            .incarnation;
        assert_ne!(second, first);
        assert_eq!(db.incarnation().unwrap(), second);
        let cursors: i64 = db
            .conn()
            .query_row("select count(*) from ddcp_cursors", [], |row| row.get(0))
            .unwrap();
        assert_eq!(cursors, 0);
    }

    #[test]
    fn a_restored_database_moves_past_the_epochs_used_and_keeps_removed_members_out() {
        let (_dir, mut db) = temp_db();
        db.set_access(Access::Private).unwrap();
        let (bob, dave) = (MemberKeys::generate().id(), MemberKeys::generate().id());
        let open = Default::default();
        db.add_member(&"bob".parse().unwrap(), bob, &open).unwrap();
        db.add_member(&"dave".parse().unwrap(), dave, &open)
            .unwrap();
        assert_eq!(db.access_state().unwrap().epoch, Epoch(1));
        let since = AccessSince {
            epoch: Some(Epoch(5)),
            removed: [bob].into(),
        };
        let life = db.begin_restored_life(&since).unwrap();
        assert_eq!(life.access.epoch, Epoch(6));
        let removed: Vec<_> = life.access.removed.iter().map(|m| m.id).collect();
        assert_eq!(removed, [bob]);
        let state = db.access_state().unwrap();
        assert_eq!(state.epoch, Epoch(6));
        let members: Vec<_> = state.members.iter().map(|m| m.id).collect();
        assert_eq!(members, [dave]);
        // Knowing nothing since, it still moves past its own epoch: never the same twice.
        let life = db.begin_restored_life(&AccessSince::default()).unwrap();
        assert_eq!(life.access.epoch, Epoch(7));
    }
}
