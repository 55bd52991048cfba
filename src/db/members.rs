//! Who may read this database while it is private: the members table, and the access mode and
//! key epoch kept in `ddcp_meta`. Removing a member, and switching to private, move the epoch
//! on in the same transaction, so that the daemon's next Status and route leave behind
//! whatever was known before (see `sync::seal`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension};

use super::filters::{read_share_filter, read_stored_filter, stored_filter};
use super::remotes::is_plain_name;
use super::{Db, DbError};
use crate::sync::filter::ChangeFilter;
use crate::sync::seal::MAX_MEMBERS;
use crate::sync::{Epoch, MemberId};

/// A member's name, as in `ddcp member add NAME ID`: the same rules as a remote's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberName(String);

impl MemberName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for MemberName {
    type Err = DbError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        // A name is said back in lists and messages: one that may be a secret never becomes one.
        if crate::sync::redact::looks_like_a_key(name) {
            return Err(DbError::KeyForMemberName);
        }
        if !is_plain_name(name) {
            return Err(DbError::BadMemberName(name.to_string()));
        }
        Ok(MemberName(name.to_string()))
    }
}

impl fmt::Display for MemberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A member as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The name the owner gave it.
    pub name: MemberName,
    /// Its identity, from its `ddcp id`.
    pub id: MemberId,
    /// When it was added, in unix seconds.
    pub added_at: i64,
    /// What it may read (within what the database shares with every reader).
    pub reads: ChangeFilter,
}

/// Who may read the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Whoever holds the record's key (the default).
    Public,
    /// Its members only.
    Private,
}

impl Access {
    /// The word the CLI and `ddcp_meta` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Private => "private",
        }
    }
}

/// The access mode, the epoch and the members, read together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessState {
    /// Public or private.
    pub access: Access,
    /// The key epoch.
    pub epoch: Epoch,
    /// The members, by name.
    pub members: Vec<Member>,
    /// What every reader may have (`ddcp share`).
    pub shared: ChangeFilter,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

fn meta(conn: &Connection, key: &str) -> Result<Option<rusqlite::types::Value>, DbError> {
    Ok(conn
        .query_row("select value from ddcp_meta where key = ?1", [key], |row| {
            row.get(0)
        })
        .optional()?)
}

fn set_meta(conn: &Connection, key: &str, value: impl rusqlite::ToSql) -> Result<(), DbError> {
    conn.execute(
        "insert into ddcp_meta (key, value) values (?1, ?2)
         on conflict (key) do update set value = excluded.value",
        (key, value),
    )?;
    Ok(())
}

fn read_access(conn: &Connection) -> Result<Access, DbError> {
    use rusqlite::types::Value;
    match meta(conn, "access")? {
        None => Ok(Access::Public),
        Some(Value::Text(text)) if text == "public" => Ok(Access::Public),
        Some(Value::Text(text)) if text == "private" => Ok(Access::Private),
        Some(_) => Err(DbError::CorruptMetadata(
            "access is neither public nor private".into(),
        )),
    }
}

fn read_epoch(conn: &Connection) -> Result<Epoch, DbError> {
    use rusqlite::types::Value;
    match meta(conn, "epoch")? {
        None => Ok(Epoch(0)),
        Some(Value::Integer(epoch)) if epoch >= 0 => Ok(Epoch(epoch as u64)),
        Some(_) => Err(DbError::CorruptMetadata("epoch is not a count".into())),
    }
}

/// Moves the epoch on: what was sealed or signed for the old one stops working.
fn next_epoch(conn: &Connection) -> Result<Epoch, DbError> {
    let next = Epoch(read_epoch(conn)?.0 + 1);
    set_meta(conn, "epoch", next.0 as i64)?;
    Ok(next)
}

fn read_members(conn: &Connection) -> Result<Vec<Member>, DbError> {
    let mut statement = conn
        .prepare("select name, member_id, added_at, read_filter from ddcp_members order by name")?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, Vec<u8>>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, String>(3)?,
        ))
    })?;
    rows.map(|row| {
        let (name, id, added_at, reads) = row?;
        Ok(Member {
            reads: read_stored_filter(&reads, &format!("member {name:?}"))?,
            name: name.parse()?,
            id: MemberId::from_slice(&id).map_err(|_| DbError::StoredMember)?,
            added_at,
        })
    })
    .collect()
}

/// What a restore learned, outside the backup, of the database's access since the backup was
/// taken: the last key epoch used, and members removed since (`ddcp restore`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessSince {
    /// The highest key epoch known to have been used, if any is known.
    pub epoch: Option<Epoch>,
    /// Members removed since the backup (or not in the last Status published).
    pub removed: BTreeSet<MemberId>,
}

/// What a restore changed in the access the backup brought back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoredAccess {
    /// The key epoch the restored database begins with: past every epoch known to be used.
    pub epoch: Epoch,
    /// The backup's members that stay removed.
    pub removed: Vec<Member>,
}

/// Takes the backup's access past what `since` knows: an epoch no older life used, and the
/// members removed since the backup removed again.
pub(super) fn restore_access(
    conn: &Connection,
    since: &AccessSince,
) -> Result<RestoredAccess, DbError> {
    let used = read_epoch(conn)?.max(since.epoch.unwrap_or_default());
    // Stored as SQLite's signed integer: an epoch at its end stays there (never reached by
    // removals, one at a time; a damaged file is refused before it gets here).
    let epoch = Epoch(used.0.saturating_add(1).min(i64::MAX as u64));
    set_meta(conn, "epoch", epoch.0 as i64)?;
    let mut removed = Vec::new();
    for member in read_members(conn)? {
        if since.removed.contains(&member.id) {
            conn.execute(
                "delete from ddcp_members where name = ?1",
                [member.name.as_str()],
            )?;
            removed.push(member);
        }
    }
    Ok(RestoredAccess { epoch, removed })
}

impl Db {
    /// Adds a member. A name or an id already present, or one member too many, is refused and
    /// nothing is written.
    pub fn add_member(
        &mut self,
        name: &MemberName,
        id: MemberId,
        reads: &ChangeFilter,
    ) -> Result<Member, DbError> {
        self.check_read_filter(reads)?;
        let tx = self.conn_mut().transaction()?;
        let members = read_members(&tx)?;
        if members.iter().any(|member| member.name == *name) {
            return Err(DbError::MemberExists(name.to_string()));
        }
        if let Some(member) = members.iter().find(|member| member.id == id) {
            return Err(DbError::MemberIdExists(member.name.to_string()));
        }
        if members.len() >= MAX_MEMBERS {
            return Err(DbError::TooManyMembers(MAX_MEMBERS));
        }
        let added_at = now();
        tx.execute(
            "insert into ddcp_members (name, member_id, added_at, read_filter)
             values (?1, ?2, ?3, ?4)",
            (
                name.as_str(),
                id.as_bytes().as_slice(),
                added_at,
                stored_filter(reads),
            ),
        )?;
        tx.commit()?;
        Ok(Member {
            name: name.clone(),
            id,
            added_at,
            reads: reads.clone(),
        })
    }

    /// Changes what a member may read, after checking the filter against this database.
    pub fn set_member_reads(
        &mut self,
        name: &MemberName,
        reads: &ChangeFilter,
    ) -> Result<(), DbError> {
        self.check_read_filter(reads)?;
        let updated = self.conn().execute(
            "update ddcp_members set read_filter = ?2 where name = ?1",
            (name.as_str(), stored_filter(reads)),
        )?;
        if updated == 0 {
            return Err(DbError::NoSuchMember(name.to_string()));
        }
        Ok(())
    }

    /// Removes a member and moves the epoch on; naming one that does not exist is an error.
    pub fn remove_member(&mut self, name: &MemberName) -> Result<Epoch, DbError> {
        let tx = self.conn_mut().transaction()?;
        let removed = tx.execute("delete from ddcp_members where name = ?1", [name.as_str()])?;
        if removed == 0 {
            return Err(DbError::NoSuchMember(name.to_string()));
        }
        let epoch = next_epoch(&tx)?;
        tx.commit()?;
        Ok(epoch)
    }

    /// The members, by name.
    pub fn members(&self) -> Result<Vec<Member>, DbError> {
        read_members(self.conn())
    }

    /// The member called `name`; naming one that does not exist is an error.
    pub fn member(&self, name: &MemberName) -> Result<Member, DbError> {
        self.members()?
            .into_iter()
            .find(|member| member.name == *name)
            .ok_or_else(|| DbError::NoSuchMember(name.to_string()))
    }

    /// Sets the access mode; going private moves the epoch on (the route and Status known
    /// while public are left behind). True when it changed.
    pub fn set_access(&mut self, access: Access) -> Result<bool, DbError> {
        let tx = self.conn_mut().transaction()?;
        if read_access(&tx)? == access {
            return Ok(false);
        }
        set_meta(&tx, "access", access.as_str())?;
        if access == Access::Private {
            next_epoch(&tx)?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// The access mode, epoch and members, read in one transaction.
    pub fn access_state(&mut self) -> Result<AccessState, DbError> {
        let tx = self.conn_mut().transaction()?;
        let state = AccessState {
            access: read_access(&tx)?,
            epoch: read_epoch(&tx)?,
            members: read_members(&tx)?,
            shared: read_share_filter(&tx)?,
        };
        tx.commit()?;
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::temp_db;
    use crate::sync::MemberKeys;

    #[test]
    fn members_are_added_listed_and_removed_and_removal_moves_the_epoch() {
        let (_dir, mut db) = temp_db();
        let state = db.access_state().unwrap();
        assert_eq!((state.access, state.epoch), (Access::Public, Epoch(0)));
        assert!(db.set_access(Access::Private).unwrap());
        assert!(!db.set_access(Access::Private).unwrap());
        assert_eq!(db.access_state().unwrap().epoch, Epoch(1));

        let bob = MemberKeys::generate().id();
        let name: MemberName = "bob".parse().unwrap();
        db.add_member(&name, bob, &ChangeFilter::default()).unwrap();
        assert!(matches!(
            db.add_member(&name, MemberKeys::generate().id(), &ChangeFilter::default()),
            Err(DbError::MemberExists(_))
        ));
        assert!(matches!(
            db.add_member(&"bobby".parse().unwrap(), bob, &ChangeFilter::default()),
            Err(DbError::MemberIdExists(existing)) if existing == "bob"
        ));
        assert_eq!(db.members().unwrap()[0].id, bob);
        assert_eq!(db.remove_member(&name).unwrap(), Epoch(2));
        assert!(db.members().unwrap().is_empty());
        assert!(matches!(
            db.remove_member(&name),
            Err(DbError::NoSuchMember(_))
        ));
        // Going public and private again leaves the old epochs behind too.
        db.set_access(Access::Public).unwrap();
        db.set_access(Access::Private).unwrap();
        assert_eq!(db.access_state().unwrap().epoch, Epoch(3));
    }

    #[test]
    fn the_member_limit_is_refused_with_nothing_written() {
        let (_dir, mut db) = temp_db();
        for index in 0..MAX_MEMBERS {
            let name: MemberName = format!("m{index}").parse().unwrap();
            db.add_member(&name, MemberKeys::generate().id(), &ChangeFilter::default())
                .unwrap();
        }
        let err = db
            .add_member(
                &"one-more".parse().unwrap(),
                MemberKeys::generate().id(),
                &ChangeFilter::default(),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("a private database has at most {MAX_MEMBERS} members; remove one first")
        );
        assert_eq!(db.members().unwrap().len(), MAX_MEMBERS);
    }
}
