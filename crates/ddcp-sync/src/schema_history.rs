//! A database's schema history: the additive migrations that made its CRR schema, in the order
//! they were applied, as its owner publishes them (docs/schema-evolution.md). Each migration is
//! its statements' text; the history's head is a hash chain over them, so a follower that
//! followed the first N can tell whether a later history still begins with those N or rewrites
//! one of them.

use sha2::{Digest, Sha256};

/// Migrations a history may hold: more is a peer's garbage, not an app's releases.
pub const MAX_MIGRATIONS: usize = 1000;

/// Bytes one migration's text may hold.
pub const MAX_MIGRATION_BYTES: usize = 64 * 1024;

/// Bytes a whole history may hold (it travels in one answer, fragmented).
pub const MAX_HISTORY_BYTES: usize = 1 << 20;

/// A SHA-256 chain over a history's migrations: `head(0)` is all zeros and
/// `head(n) = SHA-256(head(n-1) || SHA-256(migration n))`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HistoryHead(pub [u8; 32]);

impl std::fmt::Display for HistoryHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(&self.0[..8]))
    }
}

impl HistoryHead {
    /// The head after `migration` is added to a history whose head is `self`.
    pub fn then(self, migration: &str) -> HistoryHead {
        let mut hash = Sha256::new();
        hash.update(self.0);
        hash.update(migration_id(migration));
        HistoryHead(hash.finalize().into())
    }
}

/// A migration's own hash: how histories tell one they hold already.
pub fn migration_id(migration: &str) -> [u8; 32] {
    Sha256::digest(migration.as_bytes()).into()
}

/// Where a history stands: how many migrations, and the head over them. Published in the
/// Status, so that a follower asks for the history only when it moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryMark {
    /// Migrations in the history.
    pub length: u32,
    /// The chain's head over them.
    pub head: HistoryHead,
}

/// A history's migrations, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaHistory {
    migrations: Vec<String>,
}

/// Why a history is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HistoryError {
    /// More migrations or bytes than a history may hold.
    #[error(
        "the schema history is over its bounds ({MAX_MIGRATIONS} migrations, {MAX_MIGRATION_BYTES} bytes each, {MAX_HISTORY_BYTES} in all)"
    )]
    TooBig,
    /// It no longer begins with the migrations followed from it before.
    #[error(
        "its schema history rewrites migration {step} of the {followed} followed from it before"
    )]
    Rewritten {
        /// The first migration (1-based) it changed, dropped or moved.
        step: u32,
        /// How many were followed.
        followed: u32,
    },
}

impl SchemaHistory {
    /// A history of `migrations`, oldest first, if within the bounds.
    pub fn new(migrations: Vec<String>) -> Result<Self, HistoryError> {
        let bytes: usize = migrations.iter().map(String::len).sum();
        if migrations.len() > MAX_MIGRATIONS
            || bytes > MAX_HISTORY_BYTES
            || migrations.iter().any(|m| m.len() > MAX_MIGRATION_BYTES)
        {
            return Err(HistoryError::TooBig);
        }
        Ok(SchemaHistory { migrations })
    }

    /// The migrations, oldest first.
    pub fn migrations(&self) -> &[String] {
        &self.migrations
    }

    /// How many migrations it holds.
    pub fn len(&self) -> usize {
        self.migrations.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty()
    }

    /// The head over its first `n` migrations (all of them when `n` is past the end).
    pub fn head_of(&self, n: usize) -> HistoryHead {
        self.migrations
            .iter()
            .take(n)
            .fold(HistoryHead::default(), |head, m| head.then(m))
    }

    /// Where it stands.
    pub fn mark(&self) -> HistoryMark {
        HistoryMark {
            length: self.migrations.len() as u32,
            head: self.head_of(self.migrations.len()),
        }
    }

    /// Whether it still begins with `followed`, the migrations a follower took from it before:
    /// the first one it changed, dropped or moved is refused.
    pub fn extends(&self, followed: &[String]) -> Result<(), HistoryError> {
        let differs = followed
            .iter()
            .enumerate()
            .find(|(index, migration)| self.migrations.get(*index) != Some(*migration));
        match differs {
            None => Ok(()),
            Some((index, _)) => Err(HistoryError::Rewritten {
                step: index as u32 + 1,
                followed: followed.len() as u32,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(migrations: &[&str]) -> SchemaHistory {
        SchemaHistory::new(migrations.iter().map(|m| m.to_string()).collect()).unwrap()
    }

    #[test]
    fn a_longer_history_extends_the_one_it_begins_with() {
        let v2 = history(&["create table a (id)", "alter table a add column b"]);
        let v3 = history(&[
            "create table a (id)",
            "alter table a add column b",
            "create index i on a (b)",
        ]);
        assert_eq!(v3.extends(v2.migrations()), Ok(()));
        assert_eq!(v2.extends(v2.migrations()), Ok(()));
        assert_eq!(v3.extends(&[]), Ok(()));
        assert_ne!(v2.mark(), v3.mark());
        assert_eq!(v3.head_of(2), v2.mark().head);
        assert_eq!(history(&[]).mark(), HistoryMark::default());
    }

    #[test]
    fn a_history_that_changes_drops_or_reorders_a_step_is_a_rewrite() {
        let followed = history(&["a", "b", "c"]);
        for (rewritten, step) in [
            (history(&["a", "B", "c", "d"]), 2),
            (history(&["a", "c", "b"]), 2),
            (history(&["a", "b"]), 3),
            (history(&[]), 1),
        ] {
            assert_eq!(
                rewritten.extends(followed.migrations()),
                Err(HistoryError::Rewritten { step, followed: 3 }),
                "{rewritten:?}"
            );
        }
    }

    #[test]
    fn histories_are_bounded() {
        let big = "x".repeat(MAX_MIGRATION_BYTES + 1);
        assert_eq!(SchemaHistory::new(vec![big]), Err(HistoryError::TooBig));
        let many = vec![String::from("a"); MAX_MIGRATIONS + 1];
        assert_eq!(SchemaHistory::new(many), Err(HistoryError::TooBig));
        let heavy =
            vec!["y".repeat(MAX_MIGRATION_BYTES); MAX_HISTORY_BYTES / MAX_MIGRATION_BYTES + 1];
        assert_eq!(SchemaHistory::new(heavy), Err(HistoryError::TooBig));
    }
}
