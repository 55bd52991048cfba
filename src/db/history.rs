//! What this database holds from whom (`ddcp log`): its changes counted by author site, and
//! for each remote the site its Status named, where the pulls stand and when the last was.

use rusqlite::OptionalExtension;

use super::{Db, DbError, RemoteName};
use crate::sync::{DbVersion, SiteId};

/// The changes one author wrote that this database holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorHeld {
    /// The author's site id.
    pub site_id: SiteId,
    /// How many of `crsql_changes`' rows (one per cell, the newest) are theirs.
    pub changes: u64,
    /// The first and last of this database's versions their changes landed at: a bundle
    /// `--since` one before the first holds them all.
    pub first: DbVersion,
    /// The last.
    pub last: DbVersion,
}

/// Where the pulls of one remote stand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemotePulls {
    /// The remote's site id, from its Status at the last pull (none before one).
    pub site_id: Option<SiteId>,
    /// The remote's own db_version this database has pulled up to.
    pub pulled_version: Option<DbVersion>,
    /// Changes received in pages, over all pulls.
    pub changes: u64,
    /// Unix seconds of the last page accepted.
    pub last_at: Option<i64>,
}

impl Db {
    /// The changes held, by author, the most first.
    pub fn authors_held(&self) -> Result<Vec<AuthorHeld>, DbError> {
        let mut statement = self.conn().prepare(
            "select site_id, count(*), min(db_version), max(db_version) from crsql_changes
             group by site_id order by count(*) desc, site_id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (site, changes, first, last) = row?;
            Ok(AuthorHeld {
                site_id: SiteId::from_slice(&site)?,
                changes: changes as u64,
                first: DbVersion(first),
                last: DbVersion(last),
            })
        })
        .collect()
    }

    /// Remembers the site id `name`'s Status named (at the start of a pull). Refused when it
    /// is another remote's: cursors are kept per site, and a remote whose Status claims
    /// another's site would move that remote's cursor (past everything it has yet to send).
    pub fn note_remote_site(&self, name: &RemoteName, site: SiteId) -> Result<(), DbError> {
        // No database has the all-zero site (cr-sqlite's are random): it stands for "nobody"
        // here (the asker of a pull from the start, the changes a bundle brought).
        if site == SiteId([0; 16]) {
            return Err(DbError::NoSite);
        }
        let other: Option<String> = self
            .conn()
            .query_row(
                "select name from ddcp_remotes where site_id = ?1 and name != ?2 limit 1",
                (&site.0[..], name.as_str()),
                |row| row.get(0),
            )
            .optional()?;
        if let Some(other) = other {
            return Err(DbError::SiteOfAnotherRemote(other));
        }
        self.conn().execute(
            "update ddcp_remotes set site_id = ?2 where name = ?1",
            (name.as_str(), &site.0[..]),
        )?;
        Ok(())
    }

    /// Where the pulls of remote `name` stand.
    pub fn remote_pulls(&self, name: &RemoteName) -> Result<RemotePulls, DbError> {
        let site: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "select site_id from ddcp_remotes where name = ?1",
                [name.as_str()],
                |row| row.get(0),
            )
            .optional()?
            .flatten();
        let Some(site) = site else {
            return Ok(RemotePulls {
                site_id: None,
                pulled_version: None,
                changes: 0,
                last_at: None,
            });
        };
        let site_id = SiteId::from_slice(&site)?;
        let pulled_version = self
            .conn()
            .query_row(
                "select db_version from ddcp_cursors where site_id = ?1",
                [&site[..]],
                |row| row.get::<_, i64>(0),
            )
            .optional()?
            .map(DbVersion);
        let (changes, last_at) = self
            .conn()
            .query_row(
                "select changes, last_at from ddcp_pulled where site_id = ?1",
                [&site[..]],
                |row| Ok((row.get::<_, i64>(0)? as u64, Some(row.get::<_, i64>(1)?))),
            )
            .optional()?
            .unwrap_or((0, None));
        Ok(RemotePulls {
            site_id: Some(site_id),
            pulled_version,
            changes,
            last_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::db::test_support::temp_db;

    #[test]
    fn changes_are_counted_by_author() {
        let (_dir, db) = temp_db();
        db.conn()
            .execute_batch(
                "create table t (id text primary key not null, v text);
                 select crsql_as_crr('t');
                 insert into t values ('a', '1');
                 insert into t values ('b', '2');",
            )
            .unwrap();
        let held = db.authors_held().unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].site_id, db.site_id().unwrap());
        assert_eq!((held[0].first.0, held[0].last.0), (1, 2));
        assert_eq!(held[0].changes, 2);
    }

    /// A remote whose Status claims another remote's site would share, and move, its cursor.
    #[test]
    fn a_remote_cannot_claim_another_remotes_site() {
        use crate::db::{AcceptPolicy, DbError};
        use crate::sync::SiteId;
        let (_dir, mut db) = temp_db();
        let key = |k: &str| k.parse().unwrap();
        db.add_remote(
            &"alice".parse().unwrap(),
            &key("VLD0:73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY"),
            &AcceptPolicy::default(),
            false,
        )
        .unwrap();
        db.add_remote(
            &"mallory".parse().unwrap(),
            &key("VLD0:K8OXXcdI0vKnneiuOxD2eYVQqAyYokkl7MPV_1lARAc"),
            &AcceptPolicy::default(),
            false,
        )
        .unwrap();
        let alices = SiteId([1; 16]);
        db.note_remote_site(&"alice".parse().unwrap(), alices)
            .unwrap();
        // Again, by alice herself: fine.
        db.note_remote_site(&"alice".parse().unwrap(), alices)
            .unwrap();
        let claimed = db.note_remote_site(&"mallory".parse().unwrap(), alices);
        assert!(
            matches!(&claimed, Err(DbError::SiteOfAnotherRemote(name)) if name == "alice"),
            "{claimed:?}"
        );
        db.note_remote_site(&"mallory".parse().unwrap(), SiteId([2; 16]))
            .unwrap();
        // The all-zero site stands for "nobody" (a bundle's held changes): no remote's.
        assert!(matches!(
            db.note_remote_site(&"mallory".parse().unwrap(), SiteId([0; 16])),
            Err(DbError::NoSite)
        ));
    }
}
