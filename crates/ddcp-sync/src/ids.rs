//! Newtypes for the numbers and ids that must never be mixed up.

use std::fmt;

/// A database's version counter as cr-sqlite keeps it (`crsql_db_version()`): one per local
/// transaction, and the version at which merged changes landed. Versions of different databases
/// are unrelated numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DbVersion(pub i64);

impl fmt::Display for DbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The position of a change within the transaction (db_version) that wrote it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub i64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A cr-sqlite site id: the 16 random bytes that name one database replica.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteId(pub [u8; 16]);

/// A site id was not 16 bytes long.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a site id is 16 bytes, got {0}")]
pub struct BadSiteId(pub usize);

impl SiteId {
    /// The site id in `bytes`, which must be exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, BadSiteId> {
        bytes
            .try_into()
            .map(SiteId)
            .map_err(|_| BadSiteId(bytes.len()))
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_id_needs_sixteen_bytes() {
        assert_eq!(SiteId::from_slice(&[1; 15]), Err(BadSiteId(15)));
        let id = SiteId::from_slice(&[0xab; 16]).unwrap();
        assert_eq!(id.to_string(), "ab".repeat(16));
    }
}

/// A private database's key epoch: it moves on whenever a member is removed, and requests are
/// bound to it, so that what a removed member kept stops working.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which life of a database a version counter belongs to. `ddcp restore` brings a database back
/// with the counter of its backup, so the versions after it are given again to new changes: a
/// cursor taken from the database's previous life would skip them. Each life has its own
/// incarnation (random), and a cursor is only good in the life it was taken from. Zero: not
/// known (a database or puller from before incarnations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Incarnation(pub u64);

impl Incarnation {
    /// Not known.
    pub const UNKNOWN: Incarnation = Incarnation(0);

    /// A new life's: random, never [`Incarnation::UNKNOWN`].
    pub fn new_random() -> Incarnation {
        Incarnation(u64::from_le_bytes(crate::random::bytes()) | 1)
    }

    /// True when a cursor taken in life `self` may be used in life `now`: the same one, or
    /// either not known.
    pub fn continues_in(self, now: Incarnation) -> bool {
        self == Incarnation::UNKNOWN || now == Incarnation::UNKNOWN || self == now
    }
}

impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}
