//! The remotes table: the peers' databases this one pulls from, by name.

use std::fmt;
use std::str::FromStr;

use rusqlite::OptionalExtension;

use super::accept::AcceptPolicy;
use super::filters::{read_stored_filter, stored_filter};
use super::mirrors::{MirrorPrefix, add_mirror};
use super::{Db, DbError};
use crate::sync::RecordKey;
use crate::sync::redact::looks_like_a_key;

/// A remote's name, as in `ddcp remote add NAME KEY`: letters, digits, '.', '_' and '-', like a
/// git remote, so that it is safe in logs, metric labels and file names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RemoteName(String);

impl RemoteName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RemoteName {
    type Err = DbError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if looks_like_a_key(name) {
            return Err(DbError::KeyForRemoteName);
        }
        if !is_plain_name(name) {
            return Err(DbError::BadRemoteName(name.to_string()));
        }
        Ok(RemoteName(name.to_string()))
    }
}

/// Letters, digits, '.', '_' and '-', at most 64, not starting with '-' and not only dots: the
/// names of remotes and members.
pub(super) fn is_plain_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let dots_only = name.chars().all(|c| c == '.');
    !(name.is_empty()
        || dots_only
        || name.len() > 64
        || name.starts_with('-')
        || !name.chars().all(allowed))
}

impl fmt::Display for RemoteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A remote as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// The name the user gave it.
    pub name: RemoteName,
    /// Its DHT record key.
    pub key: RecordKey,
    /// When it was added, in unix seconds.
    pub added_at: i64,
    /// What it may bring: whose changes, to which tables, columns and rows.
    pub accept: AcceptPolicy,
    /// Whether this database follows its schema (applies the migrations it publishes).
    pub follows_schema: bool,
}

impl Db {
    /// Adds a remote. A name or a record already present is refused and nothing is written.
    /// A remote pulled into mirrors (`accept.into`) gets them made now, with their views;
    /// `serve_mirrors` serves them onward.
    pub fn add_remote(
        &mut self,
        name: &RemoteName,
        key: &RecordKey,
        accept: &AcceptPolicy,
        serve_mirrors: bool,
    ) -> Result<Remote, DbError> {
        self.check_accept_filter(&accept.filter)?;
        let tx = self.conn_mut().transaction()?;
        let existing: Option<String> = tx
            .query_row(
                "select name from ddcp_remotes where name = ?1",
                [name.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        if existing.is_some() {
            return Err(DbError::RemoteExists(name.to_string()));
        }
        for remote in read_remotes(&tx)? {
            // The same record given once with its secret and once without is still one record.
            if remote.key.key() == key.key() {
                return Err(DbError::RemoteKeyExists {
                    existing: remote.name.to_string(),
                    key: key.to_string(),
                });
            }
        }
        let added_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64);
        tx.execute(
            "insert into ddcp_remotes (name, record_key, added_at, authors, accept_filter,
               into_prefix)
             values (?1, ?2, ?3, ?4, ?5, ?6)",
            (
                name.as_str(),
                key.reveal().to_string(),
                added_at,
                accept.authors.to_string(),
                stored_filter(&accept.filter),
                accept.into.as_ref().map(MirrorPrefix::as_str),
            ),
        )?;
        if let Some(into) = &accept.into {
            add_mirror(&tx, into, name.as_str(), serve_mirrors)?;
        }
        tx.commit()?;
        Ok(Remote {
            name: name.clone(),
            key: key.clone(),
            added_at,
            accept: accept.clone(),
            follows_schema: false,
        })
    }

    /// The remote called `name`.
    pub fn remote(&self, name: &RemoteName) -> Result<Remote, DbError> {
        read_remotes(self.conn())?
            .into_iter()
            .find(|remote| remote.name == *name)
            .ok_or_else(|| DbError::NoSuchRemote(name.to_string()))
    }

    /// Changes what a remote may bring, after checking its filter against this database (where
    /// it lands, `accept.into`, stays as it was added). (The next pull of the remote starts
    /// over whenever its policy changed: see [`Db::align_cursor`].)
    pub fn set_remote_accept(
        &mut self,
        name: &RemoteName,
        accept: &AcceptPolicy,
    ) -> Result<(), DbError> {
        self.check_accept_filter(&accept.filter)?;
        let updated = self.conn().execute(
            "update ddcp_remotes set authors = ?2, accept_filter = ?3 where name = ?1",
            (
                name.as_str(),
                accept.authors.to_string(),
                stored_filter(&accept.filter),
            ),
        )?;
        if updated == 0 {
            return Err(DbError::NoSuchRemote(name.to_string()));
        }
        Ok(())
    }

    /// Removes a remote; naming one that does not exist is an error.
    pub fn remove_remote(&mut self, name: &RemoteName) -> Result<(), DbError> {
        // What it sent for tables or columns this database lacks goes with it.
        self.conn().execute(
            "delete from ddcp_held where via = (select site_id from ddcp_remotes where name = ?1)",
            [name.as_str()],
        )?;
        // And what it published as its schema history.
        for table in ["ddcp_remote_histories", "ddcp_remote_migrations"] {
            self.conn().execute(
                &format!("delete from {table} where remote = ?1"),
                [name.as_str()],
            )?;
        }
        let removed = self
            .conn()
            .execute("delete from ddcp_remotes where name = ?1", [name.as_str()])?;
        if removed == 0 {
            return Err(DbError::NoSuchRemote(name.to_string()));
        }
        Ok(())
    }

    /// All remotes, by name.
    pub fn remotes(&self) -> Result<Vec<Remote>, DbError> {
        read_remotes(self.conn())
    }
}

fn read_remotes(conn: &rusqlite::Connection) -> Result<Vec<Remote>, DbError> {
    let mut statement = conn.prepare(
        "select name, record_key, added_at, authors, accept_filter, into_prefix, schema_follow
         from ddcp_remotes order by name",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, Option<String>>(5)?,
            row.get::<_, bool>(6)?,
        ))
    })?;
    let mut remotes = Vec::new();
    for row in rows {
        let (name, key, added_at, authors, filter, into, follows_schema) = row?;
        let key = key.parse().map_err(|reason| DbError::StoredKey {
            name: name.clone(),
            reason,
        })?;
        let authors = authors
            .parse()
            .map_err(|_| DbError::CorruptMetadata(format!("remote {name:?}'s authors")))?;
        let filter = read_stored_filter(&filter, &format!("remote {name:?}"))?;
        let into = into
            .map(|prefix| prefix.parse())
            .transpose()
            .map_err(|_| DbError::CorruptMetadata(format!("remote {name:?}'s --into")))?;
        let name = name.parse()?;
        remotes.push(Remote {
            name,
            key,
            added_at,
            accept: AcceptPolicy {
                authors,
                filter,
                into,
            },
            follows_schema,
        });
    }
    Ok(remotes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::filter_args::FilterFlags;
    use crate::db::test_support::temp_db;
    use crate::sync::authors::AuthorPolicy;
    use crate::sync::filter::ChangeFilter;

    const KEY: &str = "VLD0:73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY";

    #[test]
    fn names_are_checked() {
        assert!("alice".parse::<RemoteName>().is_ok());
        assert!("bob.example_2-x".parse::<RemoteName>().is_ok());
        for bad in ["", ".", "..", "-x", "a b", "a/b", "ä", &"x".repeat(65)] {
            assert!(bad.parse::<RemoteName>().is_err(), "{bad:?}");
        }
    }

    fn accepting(authors: AuthorPolicy) -> AcceptPolicy {
        AcceptPolicy {
            authors,
            ..AcceptPolicy::default()
        }
    }

    /// A write of this database's that reads first (here: is the name taken?) while another
    /// process writes, as `ddcp remote add` while `ddcp serve` applies a page: it waits its
    /// turn. Begun deferred, it read an old snapshot and then failed at once, "database is
    /// locked", when it came to write.
    #[test]
    fn a_write_waits_for_another_writer_instead_of_failing() {
        let (dir, mut db) = temp_db();
        let other = Db::open(&dir.path().join("test.db"), &crate::db::Extension::BuiltIn).unwrap();
        other
            .conn()
            .execute_batch(
                "begin immediate; insert into ddcp_meta (key, value) values ('other', 1);",
            )
            .unwrap();
        let committing = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            other.conn().execute_batch("commit").unwrap();
            other
        });
        let alice: RemoteName = "alice".parse().unwrap();
        let key: RecordKey = KEY.parse().unwrap();
        db.add_remote(&alice, &key, &AcceptPolicy::default(), false)
            .unwrap();
        committing.join().unwrap();
    }

    #[test]
    fn add_list_remove() {
        let (_dir, mut db) = temp_db();
        let alice: RemoteName = "alice".parse().unwrap();
        let key: RecordKey = KEY.parse().unwrap();
        let any = AcceptPolicy::default();
        db.add_remote(&alice, &key, &any, false).unwrap();
        assert!(matches!(
            db.add_remote(&alice, &key, &any, false),
            Err(DbError::RemoteExists(_))
        ));
        let with_secret: RecordKey = format!("{KEY}:{}", &KEY[5..]).parse().unwrap();
        assert!(matches!(
            db.add_remote(&"bob".parse().unwrap(), &with_secret, &any, false),
            Err(DbError::RemoteKeyExists { .. })
        ));
        let remotes = db.remotes().unwrap();
        assert_eq!(remotes.len(), 1);
        assert_eq!(remotes[0].key, key);
        db.remove_remote(&alice).unwrap();
        assert!(matches!(
            db.remove_remote(&alice),
            Err(DbError::NoSuchRemote(_))
        ));
        assert!(db.remotes().unwrap().is_empty());
    }

    #[test]
    fn what_a_remote_may_bring_is_stored_checked_and_changed() {
        let (_dir, mut db) = temp_db();
        db.conn()
            .execute_batch(
                "create table posts (id integer primary key not null, owner text);
                 select crsql_as_crr('posts');",
            )
            .unwrap();
        let alice: RemoteName = "alice".parse().unwrap();
        let key: RecordKey = KEY.parse().unwrap();
        db.add_remote(&alice, &key, &accepting(AuthorPolicy::Direct), false)
            .unwrap();
        assert_eq!(
            db.remote(&alice).unwrap().accept.authors,
            AuthorPolicy::Direct
        );
        let flags = |rows| FilterFlags {
            tables: Some("posts"),
            rows: Some(rows),
            ..FilterFlags::default()
        };
        let filtered = AcceptPolicy {
            authors: AuthorPolicy::Any,
            filter: flags("owner = 'alice'")
                .applied_to(&ChangeFilter::default())
                .unwrap(),
            into: None,
        };
        db.set_remote_accept(&alice, &filtered).unwrap();
        assert_eq!(db.remote(&alice).unwrap().accept, filtered);
        // A filter this database cannot use is refused, and nothing changes.
        let unknown_column = AcceptPolicy {
            filter: flags("author = 'alice'")
                .applied_to(&ChangeFilter::default())
                .unwrap(),
            ..filtered.clone()
        };
        assert!(matches!(
            db.set_remote_accept(&alice, &unknown_column),
            Err(DbError::BadFilter(_))
        ));
        assert_eq!(db.remote(&alice).unwrap().accept, filtered);
        assert!(matches!(
            db.set_remote_accept(&"bob".parse().unwrap(), &filtered),
            Err(DbError::NoSuchRemote(_))
        ));
    }
}
