//! Each remote's owner, pinned: the database identity (its member id) the remote's Status named
//! when this database first read it, or as the user gave it (`ddcp remote add|set --owner`).
//! Whoever holds a record's owner key can write any Status into it; a Status that names another
//! database identity than the pinned one is refused, not followed (a stolen record key, or a
//! record given to another database by whoever gave the key).

use rusqlite::OptionalExtension;

use super::remotes::RemoteName;
use super::{Db, DbError};
use crate::sync::MemberId;

/// What a remote's Status named, against its pinned owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerCheck {
    /// None was pinned: this one is now.
    PinnedNow,
    /// The pinned one.
    Same,
    /// Another than the pinned one, or none.
    Changed {
        /// The one pinned.
        pinned: MemberId,
        /// The one named now (`None`: the Status names none).
        now: Option<MemberId>,
    },
    /// The Status names none and none is pinned: nothing to check or pin.
    Unnamed,
}

fn stored_owner(bytes: Option<Vec<u8>>, name: &RemoteName) -> Result<Option<MemberId>, DbError> {
    bytes
        .map(|bytes| MemberId::from_slice(&bytes))
        .transpose()
        .map_err(|_| DbError::CorruptMetadata(format!("remote {:?}'s owner", name.as_str())))
}

impl Db {
    /// The owner pinned for the remote `name`, if any yet.
    pub fn remote_owner(&self, name: &RemoteName) -> Result<Option<MemberId>, DbError> {
        let stored: Option<Option<Vec<u8>>> = self
            .conn()
            .query_row(
                "select owner from ddcp_remotes where name = ?1",
                [name.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        let stored = stored.ok_or_else(|| DbError::NoSuchRemote(name.to_string()))?;
        stored_owner(stored, name)
    }

    /// Checks `seen`, the owner a Status of the remote `name` names (if any), against the
    /// pinned one; pins it when there is none yet. Only the first check of a remote writes: a
    /// check is made at every pull, and must not wait for another writer (an application's
    /// long transaction) to tell the pull what it already knows.
    pub fn check_remote_owner(
        &mut self,
        name: &RemoteName,
        seen: Option<&MemberId>,
    ) -> Result<OwnerCheck, DbError> {
        let compared = |pinned: MemberId| match seen {
            Some(seen) if pinned == *seen => OwnerCheck::Same,
            now => OwnerCheck::Changed {
                pinned,
                now: now.copied(),
            },
        };
        if let Some(pinned) = self.remote_owner(name)? {
            return Ok(compared(pinned));
        }
        let Some(seen) = seen else {
            return Ok(OwnerCheck::Unnamed);
        };
        // One statement: of two checks at once, one pins, the other compares with it.
        let pinned = self.conn().execute(
            "update ddcp_remotes set owner = ?2 where name = ?1 and owner is null",
            (name.as_str(), seen.as_bytes().as_slice()),
        )?;
        match pinned {
            1 => Ok(OwnerCheck::PinnedNow),
            _ => match self.remote_owner(name)? {
                Some(pinned) => Ok(compared(pinned)),
                None => Err(DbError::NoSuchRemote(name.to_string())),
            },
        }
    }

    /// Pins `owner` for the remote `name` (the user's word, as from the remote's `ddcp id`).
    pub fn set_remote_owner(&mut self, name: &RemoteName, owner: &MemberId) -> Result<(), DbError> {
        let updated = self.conn().execute(
            "update ddcp_remotes set owner = ?2 where name = ?1",
            (name.as_str(), owner.as_bytes().as_slice()),
        )?;
        if updated == 0 {
            return Err(DbError::NoSuchRemote(name.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::temp_db;
    use crate::sync::MemberKeys;

    #[test]
    fn the_first_owner_seen_is_pinned_and_another_is_told_apart() {
        let (_dir, mut db) = temp_db();
        let name: RemoteName = "alice".parse().unwrap();
        let key = "VLD0:73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY"
            .parse()
            .unwrap();
        db.add_remote(&name, &key, &Default::default(), false)
            .unwrap();
        let (first, other) = (MemberKeys::generate().id(), MemberKeys::generate().id());
        assert_eq!(db.remote_owner(&name).unwrap(), None);
        assert_eq!(
            db.check_remote_owner(&name, None).unwrap(),
            OwnerCheck::Unnamed
        );
        assert_eq!(
            db.check_remote_owner(&name, Some(&first)).unwrap(),
            OwnerCheck::PinnedNow
        );
        assert_eq!(
            db.check_remote_owner(&name, Some(&first)).unwrap(),
            OwnerCheck::Same
        );
        assert_eq!(
            db.check_remote_owner(&name, Some(&other)).unwrap(),
            OwnerCheck::Changed {
                pinned: first,
                now: Some(other)
            }
        );
        // Once pinned, a Status naming none does not pass either.
        assert_eq!(
            db.check_remote_owner(&name, None).unwrap(),
            OwnerCheck::Changed {
                pinned: first,
                now: None
            }
        );
        assert_eq!(db.remote_owner(&name).unwrap(), Some(first));
        // The user's word moves the pin.
        db.set_remote_owner(&name, &other).unwrap();
        assert_eq!(
            db.check_remote_owner(&name, Some(&other)).unwrap(),
            OwnerCheck::Same
        );
        let nobody: RemoteName = "bob".parse().unwrap();
        assert!(matches!(
            db.check_remote_owner(&nobody, Some(&first)),
            Err(DbError::NoSuchRemote(_))
        ));
        assert!(matches!(
            db.set_remote_owner(&nobody, &first),
            Err(DbError::NoSuchRemote(_))
        ));
    }
}
